"""The page in headless Chromium against ``fittingroom serve`` with the real models and the
Luma + Saleor catalogs from ../shared/data (issue 7's browser tests).

Screenshots: test-artifacts/frontend/<test>-<step>.png.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.real_model, pytest.mark.real_data]

STREET_PHOTO = Path("street-photos") / "photos" / "0001.jpg"
BLOUSE = (277, 250)  # a point on the blouse of 0001.jpg, image pixels
PERSON = Path("tryon-examples") / "catvton" / "person" / "men" / "Simon_1.png"


def cards(page: object) -> list[dict[str, str]]:
    return page.eval_on_selector_all(  # type: ignore[attr-defined,no-any-return]
        "#results-grid > li",
        "els => els.map(e => ({uid: e.dataset.uid, eligible: e.dataset.eligible, "
        "category: e.dataset.garmentCategory, path: e.dataset.categoryPath, "
        "badge: !!e.querySelector('.badge'), button: !!e.querySelector('button.try-on'), title: e.querySelector('h3').textContent}))",
    )


def click_image_point(page: object, x: float, y: float) -> None:
    """Click the photo at image pixel (x, y), whatever its displayed size."""
    img = page.locator("#photo-img")  # type: ignore[attr-defined]
    box = img.bounding_box()
    width, height = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    page.mouse.click(box["x"] + x * box["width"] / width, box["y"] + y * box["height"] / height)  # type: ignore[attr-defined]


def test_click_the_blouse_finds_tops(page, live_server: str, shot, shared: Path, require) -> None:
    require(live_server, "segmentation")
    page.goto(live_server)
    page.set_input_files("#photo-input", str(shared / STREET_PHOTO))
    page.locator("#photo-panel").wait_for(state="visible")
    page.locator("#photo-busy").wait_for(state="hidden", timeout=60_000)
    click_image_point(page, *BLOUSE)
    page.locator("#mask-choices").wait_for(state="visible", timeout=60_000)
    options = page.locator("#mask-options input[type=radio]")
    assert options.count() >= 1
    assert options.first.is_checked()  # the best candidate is preselected
    page.wait_for_function(
        "() => document.querySelector('#query-summary').textContent.startsWith('Similar to the garment')"
        " && document.querySelectorAll('#results-grid > li').length > 0",
        timeout=60_000,
    )
    shot(page, "masks-and-results")
    found = cards(page)[:10]
    tops = [c for c in found if c["category"] == "top"]
    assert found[0]["category"] == "top", found[0]
    assert len(tops) >= 7, [(c["title"], c["category"]) for c in found]
    # the overlay was drawn: some pixels of the canvas are coloured
    painted = page.locator("#photo-overlay").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n / (d.length / 4); }"
    )
    assert 0.01 < painted < 0.6


def test_text_search_then_eligible_filter(page, live_server: str, shot) -> None:
    page.goto(live_server)
    page.fill("#text-query", "t-shirt")
    page.press("#text-query", "Enter")
    page.locator("#results-grid > li").first.wait_for(timeout=60_000)
    everything = cards(page)
    assert len(everything) >= 10
    # one rule for the badge and the Try on button: an image try-on uses (product-only or on-model)
    assert all(c["badge"] == c["button"] for c in everything), everything
    shot(page, "text")
    page.check("#filter-eligible")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#results-grid > li')].every(e => e.dataset.eligible === 'true')",
        timeout=60_000,
    )
    eligible = cards(page)
    assert eligible, "no try-on ready product for 't-shirt'"
    assert all(c["badge"] and c["button"] for c in eligible)
    # Saleor's product-only renders and Luma's on-model photos both count
    assert {c["uid"].split(":")[0] for c in eligible} == {"luma", "saleor"}, eligible
    shot(page, "eligible")


def test_try_on_a_saleor_product(page, live_server: str, shot, shared: Path, require) -> None:
    require(live_server, "tryon")
    page.goto(live_server)
    page.check("#filter-eligible")
    page.fill("#text-query", "t-shirt")
    page.press("#text-query", "Enter")
    page.locator("#results-grid > li").first.wait_for(timeout=60_000)
    first = page.locator("#results-grid > li[data-uid^='saleor:']").first  # a product-only render
    first.locator("button.try-on").click()
    dialog = page.locator("#tryon-dialog")
    dialog.wait_for(state="visible")
    page.locator("#tryon-person-step").wait_for(state="visible")
    page.set_input_files("#person-input", str(shared / PERSON))
    page.locator("#tryon-result").wait_for(state="visible", timeout=180_000)
    page.wait_for_function(
        "() => { const i = document.querySelector('#compare-after'); return i && i.complete && i.naturalWidth > 0; }",
        timeout=30_000,
    )
    assert page.locator("#tryon-preview-label").is_visible()  # the CPU backend is labelled a preview
    assert page.locator("#tryon-download").get_attribute("href").startswith("blob:")
    shot(page, "result")
    # the photo is kept for the session: a second try-on does not ask again
    page.keyboard.press("Escape")
    page.locator("#results-grid > li button.try-on").nth(1).click()
    page.locator("#tryon-person-kept").wait_for(state="visible")
    assert page.locator("#tryon-person-step").is_hidden()
    page.click("#person-remove")
    page.locator("#tryon-person-step").wait_for(state="visible")


def test_text_file_as_photo_is_a_readable_error(
    page, live_server: str, shot, tmp_path: Path, require
) -> None:
    require(live_server, "segmentation")
    page.goto(live_server)
    notes = tmp_path / "holiday.jpg"  # a text file with an image name
    notes.write_text("not a photo at all\n")
    page.set_input_files("#photo-input", str(notes))
    toast = page.locator("#toast")
    toast.wait_for(state="visible", timeout=30_000)
    text = toast.inner_text()
    assert "not a photo we can read" in text
    assert "holiday.jpg" in text
    shot(page, "error", full_page=False)


DOCS = Path(__file__).resolve().parents[2] / "docs"
#: Set to rewrite the product-page screenshots in docs/ (a normal test run never touches the checkout).
UPDATE_DOCS = os.environ.get("FITTINGROOM_UPDATE_DOCS_SCREENSHOTS") == "1"


@pytest.mark.parametrize(("text", "source"), [("hoodie", "luma"), ("t-shirt", "saleor")])
def test_open_a_real_product_and_its_shop_link(page, phone, live_server: str, shot, text, source) -> None:
    page.goto(f"{live_server}?q={text}")
    page.locator("#results-grid > li").first.wait_for(timeout=60_000)
    # every card of the page links to its shop, with an http(s) link
    links = page.locator("#results-grid > li").evaluate_all(
        "els => els.map(e => e.querySelector('a.shop')?.getAttribute('href') ?? null)"
    )
    assert links and all(h is not None and h.startswith(("http://", "https://")) for h in links), links
    card = page.locator(f"#results-grid > li[data-uid^='{source}:']").first
    title = card.locator("h3").inner_text()
    uid = card.get_attribute("data-uid")
    card.locator("h3").click()
    page.wait_for_function(
        "t => document.querySelector('#product-title')?.textContent === t", arg=title, timeout=60_000
    )
    href = page.locator("#product-content a.buy").get_attribute("href")
    assert href is not None and href.startswith(("http://", "https://"))
    assert page.locator("#product-content a.buy").inner_text().startswith("Buy at ")
    # the main image loads (it may still be on its way when the title shows)
    page.wait_for_function(
        "() => { const i = document.querySelector('.product-main-img'); return i && i.complete && i.naturalWidth > 0; }",
        timeout=30_000,
    )
    page.locator("#similar-grid > li").first.wait_for(timeout=60_000)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "product", full_page=False)
    if source == "luma":  # Luma has colour variants, sizes and descriptions: the docs' screenshots
        assert page.locator(".variant-name").count() >= 2
        if UPDATE_DOCS:
            page.screenshot(path=str(DOCS / "product-page.png"), full_page=False)
        phone.goto(f"{live_server}product/{uid}")
        phone.wait_for_function(
            "t => document.querySelector('#product-title')?.textContent === t", arg=title, timeout=60_000
        )
        phone.locator("#similar-grid > li").first.wait_for(timeout=60_000)
        shot(phone, "product-phone", full_page=False)
        if UPDATE_DOCS:
            phone.screenshot(path=str(DOCS / "product-page-phone.png"), full_page=False)
    page.go_back()
    page.wait_for_function("() => !document.querySelector('#results-panel').hidden", timeout=60_000)
    assert page.locator("#results-grid > li").first.is_visible()
