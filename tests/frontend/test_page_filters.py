"""Browser tests of the forgiving brand filter against the real retrieval service over the small
colour catalog (fixture of test_page_product.py): the brand field suggests every known brand
(GET /facets), a misspelt brand is read as the closest and the page says so, an unknown one is
explained with the nearest names."""

from __future__ import annotations

import pytest

from tests.frontend.test_page_product import open_results
from tests.frontend.test_page_product import retrieval as retrieval  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser


def test_a_misspelt_brand_is_read_as_the_known_one(page, stub_server, retrieval, shot) -> None:  # noqa: F811
    url = stub_server({"retrieval": retrieval})
    open_results(page, url, "red")
    page.wait_for_function("() => document.querySelectorAll('#brand-list option').length >= 2")
    assert page.eval_on_selector_all("#brand-list option", "os => os.map(o => o.value)") == ["Acme", "Zed"]
    page.fill("#filter-brand", "acmee")
    page.press("#filter-brand", "Enter")
    page.wait_for_function(
        "() => document.querySelector('#results-status').textContent.includes('Showing the brand')"
    )
    assert "Showing the brand “Acme” for “acmee”." in page.locator("#results-status").inner_text()
    brands = page.locator("#results-grid > li .brand").all_inner_texts()
    assert brands and set(brands) == {"Acme"}
    shot(page, "fuzzy-brand", full_page=False)
    page.fill("#filter-brand", "Qwxyv")
    page.press("#filter-brand", "Enter")
    empty = page.locator("#empty-state")
    empty.wait_for(state="visible")
    assert "No brand is called “Qwxyv”." in empty.inner_text()
    assert page.locator("#results-grid > li").count() == 0
