"""Browser test of the inferred category chip (frontend/src/image-category.ts) against the real
retrieval service over the small colour catalog, the classifier replaced by one that says
"bottom, 90 %": the chip shows next to the colour chip as a suggestion (the server's default does
not filter); pressing it searches again with ``use_category=true`` (the bottoms only, ``cat=1`` in
the photo's URL), removing it with ``use_category=false`` (``cat=0``, kept on reload)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from fittingroom.catalog.models import GarmentCategory
from fittingroom.models.garment_type import CategoryGuess
from tests.frontend.test_page_a11y import violations
from tests.frontend.test_page_chips import chips, click_photo_garment
from tests.frontend.test_page_product import retrieval as retrieval  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser


class Bottoms:
    def guess(self, embedding):  # noqa: ANN001, ANN201
        return CategoryGuess(GarmentCategory.bottom, 0.9, "pants", 0.8)


def use_category_field(body: bytes) -> bytes | None:
    head = b'name="use_category"'
    if head not in body:
        return None
    return body.split(head, 1)[1].split(b"\r\n\r\n", 1)[1].split(b"\r\n", 1)[0]


def test_the_inferred_category_is_a_removable_chip(
    page, stub_server, retrieval, tmp_path, monkeypatch
) -> None:  # noqa: F811
    import services.retrieval.app as app_module
    from tests.frontend.test_page_states import wait_until

    restrict = app_module.restrict_to_image_category

    def one_page_is_two(searcher, inferred, **kw):  # noqa: ANN001, ANN003, ANN202
        searcher.color_filter_min = 2  # "one page" of the 8-product catalog
        return restrict(searcher, inferred, **kw)

    monkeypatch.setattr(app_module, "classifier_for_encoder", lambda enc, shelf: Bottoms())
    monkeypatch.setattr(app_module, "restrict_to_image_category", one_page_is_two)
    bodies = click_photo_garment(page, stub_server, retrieval, tmp_path)
    chip = '#query-chips .chip[data-kind="image-category"]'
    page.wait_for_function(f"() => document.querySelector('{chip}') !== null")
    # the server's default (RETRIEVAL_IMAGE_CATEGORY_FILTER off): a suggestion, all 8 products
    assert chips(page) == ["blue garment", "bottom (90 %)"]
    assert use_category_field(bodies[-1]) is None and page.locator("#results-grid > li").count() == 8
    assert page.locator(chip).get_attribute("data-applied") == "false"
    assert violations(page) == []

    n = len(bodies)
    page.get_by_role("button", name="Show only “bottom”").click()
    wait_until(lambda: len(bodies) > n)
    page.wait_for_function(f"() => document.querySelector('{chip}')?.dataset.applied === 'true'")
    page.wait_for_function("() => document.querySelectorAll('#results-grid > li').length === 2")  # the pants
    assert use_category_field(bodies[-1]) == b"true"
    assert parse_qs(urlparse(page.url).query)["cat"] == ["1"]
    assert chips(page) == ["blue garment", "bottom (90 %)"]

    n = len(bodies)
    page.get_by_role("button", name="Remove category “bottom”").click()
    wait_until(lambda: len(bodies) > n)
    page.wait_for_function(f"() => document.querySelector('{chip}')?.dataset.applied === 'false'")
    page.wait_for_function("() => document.querySelectorAll('#results-grid > li').length === 8")
    assert use_category_field(bodies[-1]) == b"false"
    assert parse_qs(urlparse(page.url).query)["cat"] == ["0"]
    n = len(bodies)
    page.reload()  # the URL keeps the choice
    wait_until(lambda: len(bodies) > n)
    page.locator("#results-grid > li").first.wait_for()
    assert use_category_field(bodies[-1]) == b"false"
