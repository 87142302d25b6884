"""Browser tests of getting a photo in (frontend/src/photo-prep.ts, main.ts): clicks made while
the photo is being read wait and then run, big photos are downscaled in the browser before the
upload, tiny ones are refused with a sentence before any upload. Stand-in services of
test_page_states.py."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from fastapi import Request
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
    page.wait_for_function("document.querySelector('#photo-img').naturalWidth > 0")
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
