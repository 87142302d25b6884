"""Accessibility of each view, checked by axe-core (frontend devDependency) injected into real
Chromium: the start view, results, the product page and the try-on dialog have no serious or
critical violation. Real retrieval service over the small colour catalog (test_page_product.py),
the try-on stand-in of test_page_states.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.frontend.conftest import ROOT
from tests.frontend.test_page_product import open_results, wait_product
from tests.frontend.test_page_product import retrieval as retrieval  # noqa: F401  (the fixture)
from tests.frontend.test_page_states import tryon_stub

pytestmark = pytest.mark.browser

AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"


def violations(page) -> list[dict[str, object]]:  # noqa: ANN001
    """axe-core's serious and critical violations of the page as it is now."""
    if not Path(AXE).is_file():
        pytest.fail(f"axe-core is not installed ({AXE}): run `npm ci` in frontend/")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # evaluated through the DevTools protocol: the page's CSP (script-src 'self') forbids inline tags
        page.evaluate(Path(AXE).read_text(encoding="utf-8") + "\n;void 0")
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ')),
        }))"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def test_no_serious_violation_in_any_view(page, stub_server, retrieval) -> None:  # noqa: F811
    url = stub_server({"retrieval": retrieval, "tryon": tryon_stub()})
    found: dict[str, list[dict[str, object]]] = {}
    page.goto(url)
    page.locator("#empty-state").wait_for(state="visible")
    found["start view"] = violations(page)
    open_results(page, url, "red")
    found["results"] = violations(page)
    card = page.locator("#results-grid > li").first
    title = card.locator("h3").inner_text()
    card.locator("h3").click()
    wait_product(page, title)
    page.locator("#similar-grid > li").first.wait_for()
    found["product page"] = violations(page)
    page.locator("#product-content button.try-on").first.click()
    page.locator("#tryon-person-step").wait_for(state="visible")
    found["try-on dialog"] = violations(page)
    assert found == {view: [] for view in found}
