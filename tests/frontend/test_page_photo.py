"""Browser tests of getting a photo in (frontend/src/photo-prep.ts, main.ts): clicks made while
the photo is being read wait and then run, big photos are downscaled in the browser before the
upload, tiny ones are refused with a sentence before any upload. Stand-in services of
test_page_states.py."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi import HTTPException, Request
from fastapi.responses import Response
from PIL import Image

from tests.frontend.test_page_states import photo_services, wait_until

pytestmark = pytest.mark.browser


def gated_upload(services: dict, gate: threading.Event) -> None:
    """Hold every POST /images of the segmentation stand-in until ``gate`` is set."""
    make = services["segmentation"]

    def factory():  # type: ignore[no-untyped-def]
        app = make()

        @app.middleware("http")
        async def hold(request: Request, call_next):  # type: ignore[no-untyped-def]
            if request.method == "POST" and request.url.path.endswith("/images"):
                for _ in range(600):
                    if gate.is_set():
                        break
                    await asyncio.sleep(0.05)
            return await call_next(request)

        return app

    services["segmentation"] = factory


def test_a_click_while_reading_waits_and_runs_when_ready(page, stub_server, shot, tmp_path: Path) -> None:
    services, calls = photo_services()
    gate = threading.Event()
    gated_upload(services, gate)
    url = stub_server(services)
    photo = tmp_path / "street.jpg"
    Image.new("RGB", (400, 600), (180, 170, 160)).save(photo)
    page.goto(url)
    page.set_input_files("#photo-input", str(photo))
    page.wait_for_function("() => document.querySelector('#photo-img').naturalWidth > 0")
    assert "Reading the photo" in page.locator("#photo-busy").inner_text()
    box = page.locator("#photo-img").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    # kept, drawn pending, said in the status line; nothing sent yet
    page.locator("#photo-stage[data-pending='1']").wait_for()
    assert "waiting" in page.locator("#results-status").inner_text()
    shot(page, "pending", full_page=False)
    assert calls["masks"] == []
    gate.set()
    page.locator("#mask-choices").wait_for(state="visible")
    assert calls["masks"][0] == {"points": [{"x": 200, "y": 300, "label": 1}]}
    assert page.locator("#photo-stage").get_attribute("data-pending") is None
    page.locator("#results-grid > li").first.wait_for()


def test_an_8000x8000_photo_is_downscaled_and_accepted(page, stub_server, tmp_path: Path) -> None:
    services, calls = photo_services()
    url = stub_server(services)
    photo = tmp_path / "big.jpg"
    big = Image.linear_gradient("L").resize((8000, 8000)).convert("RGB")
    big.save(photo, quality=80)
    page.goto(url)
    with page.expect_response(lambda r: r.url.endswith("/images") and r.request.method == "POST") as info:
        page.set_input_files("#photo-input", str(photo))
    uploaded = info.value
    assert uploaded.ok
    assert (uploaded.json()["width"], uploaded.json()["height"]) == (2048, 2048)
    assert len(uploaded.request.post_data_buffer or b"") < 4_000_000
    page.locator("#photo-busy").wait_for(state="hidden")
    box = page.locator("#photo-img").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 4, box["y"] + box["height"] / 4)
    wait_until(lambda: len(calls["masks"]) == 1)
    point = calls["masks"][0]["points"][0]  # type: ignore[index]
    assert abs(point["x"] - 512) <= 4 and abs(point["y"] - 512) <= 4  # in the uploaded image's pixels


def test_a_10x10_image_is_refused_before_upload(page, stub_server, tmp_path: Path) -> None:
    services, _ = photo_services()
    url = stub_server(services)
    tiny = tmp_path / "icon.png"
    Image.new("RGB", (10, 10), (10, 200, 10)).save(tiny)
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if r.method == "POST" else None)
    page.goto(url)
    page.set_input_files("#photo-input", str(tiny))
    toast = page.locator("#toast")
    toast.wait_for(state="visible")
    assert "only 10×10 pixels" in toast.inner_text() and "at least 64 pixels" in toast.inner_text()
    assert page.locator("#photo-panel").is_hidden()
    assert uploads == []


def with_image_route(services: dict, photo: Path) -> None:
    """Add ``GET /images/{image_id}`` (the kept photo; 404 for any other id) to the stand-in."""
    make = services["segmentation"]

    def factory():  # type: ignore[no-untyped-def]
        app = make()

        @app.get("/images/{image_id}")
        async def image(image_id: str) -> Response:
            if image_id != "b" * 64:
                raise HTTPException(
                    404, f"unknown image_id {image_id!r}: upload the image with POST /images first"
                )
            return Response(photo.read_bytes(), media_type="image/jpeg")

        return app

    services["segmentation"] = factory


def test_a_reload_reopens_the_photo_with_its_points_and_mask(page, stub_server, shot, tmp_path: Path) -> None:
    services, calls = photo_services()
    photo = tmp_path / "street.jpg"
    Image.new("RGB", (400, 600), (180, 170, 160)).save(photo)
    with_image_route(services, photo)
    url = stub_server(services)
    page.goto(url)
    page.set_input_files("#photo-input", str(photo))
    page.locator("#photo-busy").wait_for(state="hidden")
    assert "photo=" + "b" * 64 in page.url
    box = page.locator("#photo-img").bounding_box()
    sx, sy = box["width"] / 400, box["height"] / 600
    page.mouse.click(box["x"] + 200 * sx, box["y"] + 300 * sy)
    page.locator("#mask-choices").wait_for(state="visible")
    page.keyboard.down("Shift")
    page.mouse.click(box["x"] + 50 * sx, box["y"] + 50 * sy)
    page.keyboard.up("Shift")
    wait_until(lambda: len(calls["masks"]) == 2)
    page.locator("#photo-busy").wait_for(state="hidden")
    page.locator(".mask-option").nth(1).click()
    page.wait_for_function("() => location.search.includes('mask=1')")
    query = parse_qs(urlparse(page.url).query)
    assert query["pts"] == ["200,300,1;50,50,0"]
    n = len(calls["masks"])
    page.reload()
    page.locator("#mask-choices").wait_for(state="visible")
    wait_until(lambda: len(calls["masks"]) > n)
    # the same prompts are sent again, the chosen candidate is chosen again and searched with
    assert calls["masks"][-1]["points"] == [  # type: ignore[index]
        {"x": 200, "y": 300, "label": 1},
        {"x": 50, "y": 50, "label": 0},
    ]
    assert page.locator("#mask-options input[type=radio]").nth(1).is_checked()
    wait_until(lambda: calls["cutouts"][-1] == "m1")
    page.locator("#results-grid > li").first.wait_for()
    assert not page.locator("#undo-point").is_disabled()
    shot(page, "restored", full_page=False)
    # a new photo: its prompts start empty (and the URL says so)
    other = tmp_path / "other.jpg"
    Image.new("RGB", (400, 600), (60, 70, 160)).save(other)
    page.set_input_files("#photo-input", str(other))
    page.locator("#photo-busy").wait_for(state="hidden")
    page.wait_for_function("() => !location.search.includes('pts=')")
    assert page.locator("#mask-choices").is_hidden()


def test_a_url_of_a_photo_that_is_gone_says_so(page, stub_server, tmp_path: Path) -> None:
    services, _ = photo_services()
    photo = tmp_path / "street.jpg"
    Image.new("RGB", (400, 600), (180, 170, 160)).save(photo)
    with_image_route(services, photo)
    url = stub_server(services)
    page.goto(url + "?photo=" + "c" * 64 + "&pts=10,10,1")
    empty = page.locator("#empty-state")
    empty.wait_for(state="visible")
    assert "That photo is gone" in empty.inner_text()
    assert "Choose it again" in page.locator("#toast").inner_text()
    assert page.locator("#photo-panel").is_hidden()
    assert "photo=" not in page.url


def test_phone_shows_the_first_results_of_a_photo_click(phone, stub_server, shot, tmp_path: Path) -> None:
    services, calls = photo_services()
    photo = tmp_path / "street.jpg"
    Image.new("RGB", (1200, 1800), (180, 170, 160)).save(photo)  # a tall phone photo
    url = stub_server(services)
    phone.goto(url)
    phone.set_input_files("#photo-input", str(photo))
    phone.locator("#photo-busy").wait_for(state="hidden")
    img = phone.locator("#photo-img")
    img.scroll_into_view_if_needed()
    box = img.bounding_box()
    phone.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    phone.locator("#photo-panel.compact").wait_for()
    first = phone.locator("#results-grid > li").first
    first.wait_for()
    top = first.evaluate("el => el.getBoundingClientRect().top")
    assert 0 <= top < 844 - 150, top  # the first card starts well within the 390x844 viewport
    shot(phone, "results", full_page=False)
    from tests.frontend.test_page_a11y import violations

    assert violations(phone) == [], "the phone's folded photo and results"
    # the folded photo opens again (a tap, or Enter on its button) with the choices
    phone.click("#photo-expand")
    assert phone.locator("#photo-panel.compact").count() == 0
    assert phone.locator("#mask-choices").is_visible()
    n = len(calls["masks"])
    box = img.bounding_box()
    phone.mouse.click(box["x"] + box["width"] / 3, box["y"] + box["height"] / 3)
    wait_until(lambda: len(calls["masks"]) > n)  # clicks on the unfolded photo add points again


def tab_to(page, selector: str, limit: int = 40) -> None:  # noqa: ANN001
    """Press Tab until the focused element matches ``selector``."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_the_photo_flow_from_the_keyboard_alone(page, stub_server, tmp_path: Path) -> None:
    from tests.frontend.test_page_a11y import violations

    services, calls = photo_services()
    url = stub_server(services)
    photo = tmp_path / "street.jpg"
    Image.new("RGB", (400, 600), (180, 170, 160)).save(photo)
    page.goto(url)
    page.locator("#empty-state").wait_for(state="visible")  # the page's script is running
    # Enter on the button opens the file picker (the input's click); the picker itself is
    # answered by set_input_files (Chromium's chooser event is unreliable on a loaded machine)
    page.evaluate(
        "document.getElementById('photo-input').addEventListener('click', e => {"
        " window.pickerOpened = true; e.preventDefault(); })"
    )
    tab_to(page, "#photo-button")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.pickerOpened === true")
    page.set_input_files("#photo-input", str(photo))
    page.locator("#photo-busy").wait_for(state="hidden")
    assert page.evaluate("document.activeElement.id") == "photo-stage"
    page.keyboard.press("ArrowLeft")  # the cursor starts in the middle; one step left
    page.keyboard.press("Enter")
    page.locator("#mask-choices").wait_for(state="visible")
    point = calls["masks"][0]["points"][0]  # type: ignore[index]
    assert point["label"] == 1 and point["x"] < 200 and point["y"] == 300
    page.locator("#results-grid > li").first.wait_for()
    assert violations(page) == [], "photo view with its masks and results"
    tab_to(page, "#mask-options input[type=radio]")
    page.keyboard.press("ArrowRight")  # the other candidate
    wait_until(lambda: calls["cutouts"][-1] == "m1")
    tab_to(page, "#results-grid > li button.try-on")
    page.keyboard.press("Enter")
    page.locator("#tryon-dialog[open]").wait_for()


def test_back_from_a_product_returns_to_the_photo_and_its_results(page, stub_server, tmp_path: Path) -> None:
    services, calls = photo_services()
    photo = tmp_path / "street.jpg"
    Image.new("RGB", (400, 600), (180, 170, 160)).save(photo)
    with_image_route(services, photo)
    url = stub_server(services)
    page.goto(url)
    page.set_input_files("#photo-input", str(photo))
    page.locator("#photo-busy").wait_for(state="hidden")
    box = page.locator("#photo-img").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.locator("#results-grid > li").first.wait_for()
    photo_url = page.url
    assert "pts=200,300,1" in photo_url
    page.locator("#results-grid > li h3").first.click()
    page.wait_for_function("() => location.pathname.startsWith('/product/')")
    n = len(calls["masks"])
    page.go_back()
    page.wait_for_function(
        "() => !document.querySelector('#results-panel').hidden && !location.pathname.startsWith('/product/')"
    )
    assert page.url == photo_url
    assert page.locator("#photo-panel").is_visible() and page.locator("#mask-choices").is_visible()
    assert page.locator("#results-grid > li").count() == 6
    assert len(calls["masks"]) == n  # the open photo session is kept, not reopened
