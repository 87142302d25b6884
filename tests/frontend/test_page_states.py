"""Browser tests of the page's states against stand-in services (no models): a service
that is down, an upload that is not an image, no results, paging, phone width,
keyboard use. The real services are driven by test_page_real.py.

The stand-ins answer with the response shapes of the services' schemas
(services/*/schemas.py); they are deliberately tiny.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from PIL import Image
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (60, 80), color).save(buf, format="PNG")
    return buf.getvalue()


def _result(i: int, *, eligible: bool) -> dict[str, object]:
    sha = f"{i:064x}"
    image = {
        "sha256": sha,
        "url": f"img{i}.jpg",
        "image_url": f"/images/{sha}",
        "color": None,
        "is_main": True,
        "tryon_eligible": eligible,
    }
    return {
        "uid": f"stub:{i}",
        "source": "stub",
        "id": str(i),
        "title": f"Stub tee {i}",
        "brand": "Stubbrand" if i % 2 else "Other & Co",
        "price": 10.0 + i,
        "currency": "EUR",
        "category_path": ["Tops", "Tees"],
        "garment_category": "top",
        "link": f"https://shop.example/p/{i}",
        "tryon_eligible": eligible,
        "tryon_image": image if eligible else None,
        "score": 1.0 - i / 100,
        "image": image,
    }


HOSTILE_TITLE = '<img src=x onerror="window.__pwned=1">Tee</h3><script>window.__pwned=2</script>'
HOSTILE_BRAND = "<b onmouseover=alert(1)>Brand</b>"


def retrieval_stub(total: int = 30, *, hostile: bool = False) -> Callable[[], FastAPI]:
    """POST /search answers ``total`` products for any text (none for 'nothing'), paged.
    ``hostile``: titles/brands hold HTML and links are ``javascript:`` / ``data:`` URLs."""

    def factory() -> FastAPI:
        app = FastAPI()
        seen: list[dict[str, object]] = []
        app.state.requests = seen

        @app.post("/search")
        async def search(request: Request) -> dict[str, object]:
            body = await request.json()
            seen.append(body)
            if (body.get("text") or "") == "nothing":
                items: list[dict[str, object]] = []
            else:
                only = (body.get("filters") or {}).get("eligible")
                items = [_result(i, eligible=i % 3 == 0) for i in range(total)]
                if hostile:
                    for i, item in enumerate(items):
                        item["title"], item["brand"] = HOSTILE_TITLE, HOSTILE_BRAND
                        item["link"] = "javascript:window.__pwned=3" if i % 2 else "data:text/html,<b>x</b>"
                if only:
                    items = [r for r in items if r["tryon_eligible"]]
            k, offset = body.get("k") or 10, body.get("offset") or 0
            page = items[offset : offset + k]
            nxt = offset + k if offset + k < len(items) else None
            return {
                "results": page,
                "k": k,
                "offset": offset,
                "next_offset": nxt,
                "query": {},
                "took_ms": 1.0,
            }

        @app.get("/images/{sha}")
        async def image(sha: str) -> Response:
            return Response(_png((200, 120 + int(sha[-2:], 16) % 100, 90)), media_type="image/png")

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        return app

    return factory


def failing_service(reason: str) -> Callable[[], FastAPI]:
    def factory() -> FastAPI:
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            raise RuntimeError(reason)
            yield

        return FastAPI(lifespan=lifespan)

    return factory


def segmentation_stub() -> Callable[[], FastAPI]:
    """POST /images rejects anything that is not a decodable image with 415, like the service."""

    def factory() -> FastAPI:
        app = FastAPI()

        @app.post("/images")
        async def upload(request: Request) -> dict[str, object]:
            form = await request.form()
            upload = next(iter(form.values()))
            data = await upload.read()  # type: ignore[union-attr]
            try:
                img = Image.open(io.BytesIO(data))
                img.load()
            except Exception:
                raise HTTPException(
                    415, f"{upload.filename}: not an image (cannot identify image file)"
                ) from None
            return {"image_id": "a" * 64, "width": img.width, "height": img.height}

        return app

    return factory


def test_service_down_is_a_clear_error_state(page, stub_server, shot) -> None:
    url = stub_server({"retrieval": failing_service("index file is corrupt")})
    page.goto(url)
    page.fill("#text-query", "red tee")
    page.press("#text-query", "Enter")
    empty = page.locator("#empty-state")
    # the start page's own empty state ("Find a garment.") shows until the failed search answers
    expect(empty).to_contain_text("Search is unavailable", timeout=20_000)
    assert "index file is corrupt" in empty.inner_text()
    toast = page.locator("#toast")
    assert toast.is_visible()
    assert "retrieval service is unavailable" in toast.inner_text()
    shot(page, "service-down")


def test_not_an_image_upload_is_a_readable_error(page, stub_server, shot, tmp_path: Path) -> None:
    url = stub_server({"retrieval": retrieval_stub(), "segmentation": segmentation_stub()})
    page.goto(url)
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not a photo\n")
    page.set_input_files("#photo-input", str(notes))
    toast = page.locator("#toast")
    toast.wait_for(state="visible")
    text = toast.inner_text()
    assert "not a photo we can read" in text and "notes.txt" in text
    assert page.locator("#photo-panel").is_hidden()
    shot(page, "not-an-image")


def test_text_search_filters_and_paging(page, stub_server, shot) -> None:
    url = stub_server({"retrieval": retrieval_stub(total=30)})
    page.goto(url)
    assert "Find a garment" in page.locator("#empty-state").inner_text()
    page.fill("#text-query", "tee")
    page.press("#text-query", "Enter")
    cards = page.locator("#results-grid > li")
    cards.first.wait_for()
    assert cards.count() == 24
    first = cards.first
    assert first.locator("h3").inner_text() == "Stub tee 0"
    assert first.locator(".price").inner_text() in ("€10.00", "€ 10.00", "10.00 €")
    assert first.locator("a.shop").get_attribute("href") == "https://shop.example/p/0"
    assert first.locator(".badge").inner_text() == "Try-on ready"
    assert first.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    # paging: the second page is appended, then the button goes away
    page.click("#load-more")
    page.wait_for_function("() => document.querySelectorAll('#results-grid > li').length === 30")
    assert page.locator("#load-more").is_hidden()
    # eligible only: every card is badged
    page.check("#filter-eligible")
    page.wait_for_function("() => document.querySelectorAll('#results-grid > li').length === 10")
    assert page.locator("#results-grid > li .badge").count() == 10
    assert page.locator("#results-grid > li[data-eligible=false]").count() == 0
    shot(page, "eligible")
    # the query is in the URL: reloading repeats it
    assert "q=tee" in page.url


def test_no_results_is_an_empty_state(page, stub_server) -> None:
    url = stub_server({"retrieval": retrieval_stub()})
    page.goto(url + "?q=nothing")
    empty = page.locator("#empty-state")
    empty.wait_for(state="visible")
    assert "No products match" in empty.inner_text()
    assert page.locator("#results-grid > li").count() == 0


def test_keyboard_only_search(page, stub_server) -> None:
    url = stub_server({"retrieval": retrieval_stub()})
    page.goto(url)
    page.keyboard.press("Tab")  # skip link
    page.keyboard.press("Tab")  # logo
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "text-query"
    page.keyboard.type("tee")
    page.keyboard.press("Enter")
    page.locator("#results-grid > li").first.wait_for()
    more = page.locator("#results-grid > li").first.locator("button.more-like")
    more.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('#query-summary').textContent.startsWith('More like')"
    )
    assert page.locator("#refine-field").is_visible()


def test_phone_width_has_no_horizontal_scroll(phone, stub_server, shot) -> None:
    url = stub_server({"retrieval": retrieval_stub()})
    phone.goto(url + "?q=tee")
    phone.locator("#results-grid > li").first.wait_for()
    overflow = phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    columns = phone.evaluate("getComputedStyle(document.querySelector('#results-grid')).gridTemplateColumns")
    assert len(columns.split()) == 2
    assert not phone.locator("#filters-box").evaluate("d => d.open")  # folded on a phone
    shot(phone, "phone", full_page=False)
    phone.click("#filters-box > summary")
    assert phone.locator("#filter-eligible").is_visible()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _mask_png(width: int, height: int, box: tuple[int, int, int, int]) -> bytes:
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, box)
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    return buf.getvalue()


def photo_services() -> tuple[dict[str, Callable[[], FastAPI]], dict[str, list[object]]]:
    """Segmentation + retrieval stand-ins for the photo flow; records what the page sent."""
    import base64

    calls: dict[str, list[object]] = {"masks": [], "cutouts": [], "image_searches": []}
    size = {"w": 0, "h": 0}

    def segmentation() -> FastAPI:
        app = FastAPI()

        @app.post("/images")
        async def upload(request: Request) -> dict[str, object]:
            form = await request.form()
            data = await next(iter(form.values())).read()  # type: ignore[union-attr]
            img = Image.open(io.BytesIO(data))
            size.update(w=img.width, h=img.height)
            return {"image_id": "b" * 64, "width": img.width, "height": img.height}

        @app.post("/images/{image_id}/masks")
        async def masks(image_id: str, request: Request) -> dict[str, object]:
            body = await request.json()
            calls["masks"].append(body)
            x, y = body["points"][0]["x"], body["points"][0]["y"]
            w, h = size["w"], size["h"]
            boxes = [(max(0, x - 60), max(0, y - 80), min(w, x + 60), min(h, y + 80)), (0, 0, w, h // 2)]
            return {
                "image_id": image_id,
                "candidates": [
                    {
                        "mask_id": f"m{i}",
                        "score": 0.9 - i / 10,
                        "area": (b[2] - b[0]) * (b[3] - b[1]),
                        "bbox": list(b),
                        "mask_png": base64.b64encode(_mask_png(w, h, b)).decode(),
                    }
                    for i, b in enumerate(boxes)
                ],
            }

        @app.get("/images/{image_id}/masks/{mask_id}/cutout")
        async def cutout(image_id: str, mask_id: str) -> Response:
            calls["cutouts"].append(mask_id)
            buf = io.BytesIO()
            Image.new("RGBA", (40, 60), (20, 40, 200, 255)).save(buf, format="PNG")
            return Response(buf.getvalue(), media_type="image/png")

        return app

    def retrieval() -> FastAPI:
        app = retrieval_stub(total=12)()

        @app.post("/search/image")
        async def search_image(request: Request) -> dict[str, object]:
            form = await request.form()
            calls["image_searches"].append({k: v for k, v in form.items() if k != "image"})
            results = [_result(i, eligible=True) for i in range(6)]
            return {"results": results, "k": 24, "offset": 0, "next_offset": None, "query": {}, "took_ms": 1}

        return app

    return {"retrieval": retrieval, "segmentation": segmentation}, calls


def test_photo_click_shows_masks_and_searches_with_the_cutout(
    page, stub_server, shot, tmp_path: Path
) -> None:
    services, calls = photo_services()
    url = stub_server(services)
    photo = tmp_path / "street.jpg"
    Image.new("RGB", (400, 600), (180, 170, 160)).save(photo)
    page.goto(url)
    page.set_input_files("#photo-input", str(photo))
    page.locator("#photo-busy").wait_for(state="hidden")
    img = page.locator("#photo-img")
    box = img.bounding_box()
    page.mouse.click(box["x"] + 200 * box["width"] / 400, box["y"] + 300 * box["height"] / 600)
    page.locator("#mask-choices").wait_for(state="visible")
    page.locator("#results-grid > li").first.wait_for()
    # the click reached the service in image pixels, as an include point
    assert calls["masks"][0] == {"points": [{"x": 200, "y": 300, "label": 1}]}
    radios = page.locator("#mask-options input[type=radio]")
    assert radios.count() == 2 and radios.first.is_checked()
    assert calls["cutouts"] == ["m0"]  # the best candidate is searched at once
    assert "Similar to the garment" in page.locator("#query-summary").inner_text()
    painted = page.locator("#photo-overlay").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n / (d.length / 4); }"
    )
    assert 0.05 < painted < 0.25  # the 120x160 box of 400x600, plus the point markers and outline
    shot(page, "masks")
    # picking the other candidate searches with its cut-out
    page.locator(".mask-option").nth(1).click()
    page.wait_for_function("() => document.querySelectorAll('#results-grid > li').length > 0")
    assert calls["cutouts"][-1] == "m1"
    # refine: text + image
    page.fill("#refine-text", "in black")
    page.press("#refine-text", "Enter")
    page.wait_for_function("() => document.querySelector('#query-summary').textContent.includes('in black')")
    # the summary changes before the request is sent: wait for the request itself
    wait_until(lambda: calls["image_searches"][-1].get("text") == "in black")  # type: ignore[union-attr]
    # shift-click adds an exclude point; the keyboard adds points too
    page.keyboard.down("Shift")
    page.mouse.click(box["x"] + 50, box["y"] + 50)
    page.keyboard.up("Shift")
    wait_until(lambda: len(calls["masks"]) >= 2)
    page.locator("#photo-busy").wait_for(state="hidden")  # the corrected masks are on screen
    page.locator("#photo-stage").focus()
    page.keyboard.press("Enter")
    wait_until(lambda: len(calls["masks"]) >= 3)
    labels = [[p["label"] for p in c["points"]] for c in calls["masks"]]  # type: ignore[index]
    assert [1, 0] in labels and [1, 0, 1] in labels
    # each added point corrects the mask on screen (SAM's mask prompt): first the picked
    # candidate m1, then the new best m0; the first click has none
    assert "previous_mask_id" not in calls["masks"][0]
    assert [c.get("previous_mask_id") for c in calls["masks"][1:3]] == ["m1", "m0"]  # type: ignore[union-attr]


def tryon_stub() -> Callable[[], FastAPI]:
    """POST /persons (422 when the file name says 'empty'), POST /tryon, GET /tryon/{id} (two
    polls of progress, then done, preview backend), GET /tryon/{id}/result.png."""

    def factory() -> FastAPI:
        app = FastAPI()
        polls: dict[str, int] = {}

        @app.post("/persons")
        async def persons(request: Request) -> dict[str, object]:
            form = await request.form()
            upload = next(iter(form.values()))
            if "empty" in (upload.filename or ""):  # type: ignore[union-attr]
                raise HTTPException(422, "no person found in the photo")
            return {"person_id": "p" * 16, "width": 300, "height": 600}

        @app.post("/tryon")
        async def tryon(request: Request) -> dict[str, object]:
            body = await request.json()
            if body["person_id"] != "p" * 16:
                raise HTTPException(404, "unknown person")
            polls[body["product_id"]] = 0
            return job(body["product_id"], "queued", 0.0)

        def job(job_id: str, status: str, progress: float) -> dict[str, object]:
            done = status == "done"
            return {
                "job_id": job_id,
                "status": status,
                "progress": progress,
                "stage": None if done else "warping the garment",
                "backend": "preview",
                "preview": True,
                "error": None,
                "result_url": f"/tryon/{job_id}/result.png" if done else None,
            }

        @app.get("/tryon/{job_id}")
        async def status(job_id: str) -> dict[str, object]:
            polls[job_id] += 1
            return (
                job(job_id, "done", 1.0) if polls[job_id] >= 3 else job(job_id, "running", polls[job_id] / 3)
            )

        @app.get("/tryon/{job_id}/result.png")
        async def result(job_id: str) -> Response:
            return Response(_png((30, 90, 200)), media_type="image/png")

        return app

    return factory


def test_try_on_flow_progress_result_and_kept_photo(page, stub_server, shot, tmp_path: Path) -> None:
    url = stub_server({"retrieval": retrieval_stub(), "tryon": tryon_stub()})
    person = tmp_path / "me.png"
    Image.new("RGB", (300, 600), (200, 180, 160)).save(person)
    nobody = tmp_path / "empty-room.png"
    Image.new("RGB", (300, 600), (90, 90, 90)).save(nobody)
    page.goto(url + "?q=tee")
    page.locator("#results-grid > li button.try-on").first.click()
    page.locator("#tryon-person-step").wait_for(state="visible")
    # a photo without a person: the reason is shown, nothing is kept
    page.set_input_files("#person-input", str(nobody))
    error = page.locator("#tryon-error")
    error.wait_for(state="visible")
    assert "no person found" in error.inner_text()
    assert page.evaluate("sessionStorage.getItem('fittingroom.person')") is None
    # a good photo: progress, then the before/after with a download and the preview label
    page.set_input_files("#person-input", str(person))
    page.locator("#tryon-result").wait_for(state="visible")
    assert page.locator("#tryon-preview-label").is_visible()
    assert page.locator("#compare-after").evaluate("i => i.naturalWidth > 0")
    assert page.locator("#tryon-download").get_attribute("href").startswith("blob:")
    assert page.locator("#tryon-download").get_attribute("download") == "fittingroom-stub-0.png"
    page.locator("#compare-slider").fill("20")
    assert page.locator("#compare").evaluate("c => c.style.getPropertyValue('--split')") == "20%"
    shot(page, "result", full_page=False)
    # kept for the session: the next try-on starts at once; the photo can be removed
    page.keyboard.press("Escape")
    page.reload()
    page.locator("#results-grid > li button.try-on").nth(1).click()
    page.locator("#tryon-result").wait_for(state="visible")
    assert page.locator("#tryon-person-kept").is_visible()
    page.click("#person-remove")
    page.locator("#tryon-person-step").wait_for(state="visible")
    assert page.evaluate("sessionStorage.getItem('fittingroom.person')") is None


def test_refine_text_resets_when_a_new_photo_comes(page, stub_server, tmp_path: Path) -> None:
    services, calls = photo_services()
    url = stub_server(services)
    first, second = tmp_path / "a.jpg", tmp_path / "b.jpg"
    Image.new("RGB", (400, 600), (180, 170, 160)).save(first)
    Image.new("RGB", (400, 600), (60, 70, 160)).save(second)
    page.goto(url)
    page.set_input_files("#photo-input", str(first))
    page.locator("#photo-busy").wait_for(state="hidden")
    box = page.locator("#photo-img").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.locator("#refine-field").wait_for(state="visible")
    page.fill("#refine-text", "in black")
    page.press("#refine-text", "Enter")
    wait_until(lambda: any(s.get("text") == "in black" for s in calls["image_searches"]))
    page.set_input_files("#photo-input", str(second))
    page.locator("#photo-busy").wait_for(state="hidden")
    assert page.input_value("#refine-text") == ""
    n = len(calls["image_searches"])
    box = page.locator("#photo-img").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_until(lambda: len(calls["image_searches"]) > n)
    assert "text" not in calls["image_searches"][-1]  # the new photo is searched without the old words


def test_stored_html_and_script_links_are_shown_as_text_not_run(page, stub_server) -> None:
    url = stub_server({"retrieval": retrieval_stub(total=4, hostile=True)})
    page.goto(url + "?q=tee")
    cards = page.locator("#results-grid > li")
    cards.first.wait_for()
    assert cards.count() == 4
    first = cards.first
    assert first.locator("h3").inner_text() == HOSTILE_TITLE  # the markup is text
    assert first.locator(".brand").inner_text() == HOSTILE_BRAND
    assert page.locator("#results-grid script, #results-grid b, #results-grid img[src=x]").count() == 0
    assert page.locator("#results-grid a.shop").count() == 0  # no javascript:/data: link is rendered
    first.hover()
    assert page.evaluate("window.__pwned") is None
