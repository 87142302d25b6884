"""Browser tests of the garment dots and "shop the look" (frontend/src/dots.ts).

One with stand-in services (where the dots are, what a press sends, one search per garment), one
with the real segmentation service (SAM + the garment-parsing head) on a shared street photo.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.frontend.test_page_states import photo_services, wait_until

pytestmark = pytest.mark.browser

DOTS = [
    {"mask_id": "parse-h-upper_inner", "group": "upper_inner", "x": 200, "y": 150},
    {"mask_id": "parse-h-lower", "group": "lower", "x": 190, "y": 420},
    {"mask_id": "parse-h-footwear", "group": "footwear", "x": 150, "y": 580},
]


def with_dots(services: dict, dots: list[dict]) -> None:
    """Add ``GET /images/{id}/dots`` (the given dots) to the segmentation stand-in."""
    make = services["segmentation"]

    def factory() -> FastAPI:
        app = make()

        @app.get("/images/{image_id}/dots")
        async def get_dots(image_id: str) -> dict[str, object]:
            return {
                "image_id": image_id,
                "width": 400,
                "height": 600,
                "head": "h",
                "dots": [
                    {**d, "score": 0.9, "area": 5000, "bbox": [0, 0, 400, 600], "cutout_url": "unused"}
                    for d in dots
                ],
            }

        return app

    services["segmentation"] = factory


def test_dots_sit_on_their_pixels_a_key_press_clicks_there_and_shop_the_look_searches_each(
    page, stub_server, shot, tmp_path: Path
) -> None:
    from PIL import Image

    services, calls = photo_services()
    with_dots(services, DOTS)
    url = stub_server(services)
    photo = tmp_path / "street.jpg"
    Image.new("RGB", (400, 600), (180, 170, 160)).save(photo)
    page.goto(url)
    page.set_input_files("#photo-input", str(photo))
    dots = page.locator(".garment-dot")
    dots.first.wait_for()
    assert dots.count() == 3
    assert [dots.nth(i).get_attribute("aria-label") for i in range(3)] == [
        "Select the top",
        "Select the bottoms",
        "Select the shoes",
    ]
    img = page.locator("#photo-img").bounding_box()
    for i, d in enumerate(DOTS):  # each dot's centre is over its pixel of the photo
        b = dots.nth(i).bounding_box()
        cx, cy = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
        assert abs(cx - (img["x"] + (d["x"] + 0.5) * img["width"] / 400)) < 2
        assert abs(cy - (img["y"] + (d["y"] + 0.5) * img["height"] / 600)) < 2
    # keyboard: from the stage, Tab reaches the first dot; Enter presses it (not a stage point)
    page.locator("#photo-stage").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Select the top"
    page.keyboard.press("Enter")
    page.locator("#results-grid > li").first.wait_for()
    assert calls["masks"] == [{"points": [{"x": 200, "y": 150, "label": 1}]}]
    # a second dot is a fresh click, not a correction of the first mask
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    wait_until(lambda: len(calls["masks"]) == 2)
    assert calls["masks"][1] == {"points": [{"x": 190, "y": 420, "label": 1}]}
    page.locator("#shop-look-button").click()
    rows = page.locator("#shop-look .look-row")
    page.wait_for_function("() => document.querySelectorAll('#shop-look .look-row .grid > li').length >= 18")
    assert rows.count() == 3
    assert [rows.nth(i).locator("h4").inner_text() for i in range(3)] == [
        "The top",
        "The bottoms",
        "The shoes",
    ]
    assert {"parse-h-upper_inner", "parse-h-lower", "parse-h-footwear"} <= set(calls["cutouts"])
    shot(page, "shop-the-look")
    page.locator("#photo-close").click()
    assert page.locator(".garment-dot").count() == 0 and page.locator("#shop-look").is_hidden()


def test_real_dots_on_a_street_photo(page, stub_server, shot, shared: Path) -> None:
    """The real segmentation service finds the garments of a shared street photo."""
    from services.segmentation.app import create_app

    services, calls = photo_services()
    services["segmentation"] = create_app
    url = stub_server(services)
    page.set_default_timeout(240_000)  # the image encoder on a loaded 2-core machine
    page.goto(url)
    page.set_input_files("#photo-input", str(shared / "street-photos" / "photos" / "0004.jpg"))
    dots = page.locator(".garment-dot")
    dots.first.wait_for()
    labels = {dots.nth(i).get_attribute("aria-label") for i in range(dots.count())}
    assert len(labels) >= 2, labels
    page.locator("#photo-stage").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('garment-dot')")
    page.keyboard.press("Enter")
    page.locator("#mask-choices").wait_for(state="visible")
    page.locator("#results-grid > li").first.wait_for()
    page.screenshot(path="/tmp/dots.png")
    shot(page, "street-dots", full_page=False)
    page.locator("#shop-look-button").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#shop-look .look-row')]"
        ".filter(r => r.querySelector('.grid > li')).length >= 2"
    )
    assert len(calls["image_searches"]) >= 3  # the click's search + one per garment
