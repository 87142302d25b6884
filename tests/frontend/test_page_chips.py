"""Browser tests of the query chips (frontend/src/chips.ts) against the real retrieval service over
the small colour catalog (fixture of test_page_product.py): each parsed constraint is a chip with a
remove button; removing one searches again without its words (and the URL says so); a colour with
too few matches is relaxed and the page says so; an image search's colour chip removed searches
again with ``use_color=false`` (kept in the photo's URL); axe finds no serious violation."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.frontend.test_page_a11y import violations
from tests.frontend.test_page_product import retrieval as retrieval  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser


class ImageSearchBodies:
    """ASGI middleware keeping the bodies of ``POST /search/image`` (the multipart form the page sent)."""

    def __init__(self, app, bodies: list[bytes]) -> None:  # noqa: ANN001
        self.app, self.bodies = app, bodies

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http" or not scope["path"].endswith("/search/image"):
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []

        async def recording():  # noqa: ANN202
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    self.bodies.append(b"".join(chunks))
            return message

        return await self.app(scope, recording, send)


def use_color_field(body: bytes) -> bytes | None:
    """The value of the multipart field ``use_color`` in ``body``, None when it is not there."""
    head = b'name="use_color"'
    if head not in body:
        return None
    return body.split(head, 1)[1].split(b"\r\n\r\n", 1)[1].split(b"\r\n", 1)[0]


def chips(page) -> list[str]:  # noqa: ANN001
    return page.locator("#query-chips .chip > span:not(.chip-swatch)").all_inner_texts()


def prices(page) -> list[float]:  # noqa: ANN001
    return [
        float(t.strip().lstrip("$").replace(",", ""))
        for t in page.locator("#results-grid > li .price").all_inner_texts()
    ]


def test_chips_show_the_parsed_query_and_remove_its_constraints(page, stub_server, retrieval, shot) -> None:  # noqa: F811
    url = stub_server({"retrieval": retrieval})
    page.goto(url)
    page.fill("#text-query", "red top under 60")
    page.press("#text-query", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#query-chips .chip').length >= 3")
    assert chips(page) == ["red", "top", "under 60"]
    assert page.locator("#query-chips").is_visible()
    # 2 red products only: the colour ranks (red first) and the page says it was relaxed
    assert "showing other colours too" in page.locator("#query-chips").inner_text()
    first = page.locator("#results-grid > li h3").all_inner_texts()
    assert first[0] == "Red tee" and all(p <= 60 for p in prices(page))
    assert page.locator("#results-grid > li").count() == 3  # the tops under 60: three tees
    page.screenshot(path="/tmp/chips.png", full_page=False)
    shot(page, "chips", full_page=False)
    assert violations(page) == []

    remove = page.get_by_role("button", name="Remove colour “red”")
    remove.focus()
    page.keyboard.press("Enter")  # keyboard works
    page.wait_for_function(
        "() => [...document.querySelectorAll('#query-chips .chip > span')].every(s => s.textContent !== 'red')"
        " && document.querySelectorAll('#query-chips .chip').length === 2"
    )
    assert chips(page) == ["top", "under 60"]
    assert parse_qs(urlparse(page.url).query)["q"] == ["top under 60"]
    assert page.input_value("#text-query") == "top under 60"
    assert "other colours" not in page.locator("#query-chips").inner_text()

    page.get_by_role("button", name="Remove price “under 60”").click()
    page.wait_for_function("() => document.querySelectorAll('#query-chips .chip').length === 1")
    assert parse_qs(urlparse(page.url).query)["q"] == ["top"]
    page.wait_for_function("() => document.querySelectorAll('#results-grid > li').length > 3")
    assert max(prices(page)) > 60  # the price bound is gone: the 80 hoodie is back
    # the last chip would leave no text: no remove button
    assert page.locator("#query-chips .chip-remove").count() == 0
    page.go_back()
    page.wait_for_function("() => document.querySelectorAll('#query-chips .chip').length === 2")
    assert chips(page) == ["top", "under 60"]


def click_photo_garment(page, stub_server, retrieval, tmp_path) -> list[bytes]:  # noqa: ANN001, F811
    """Upload a photo, click its middle (the stand-in segmentation cuts out a blue garment) and wait
    for the results; returns the bodies of every ``POST /search/image`` the page sends."""
    from PIL import Image

    from tests.frontend.test_page_photo import with_image_route
    from tests.frontend.test_page_states import photo_services

    services, _ = photo_services()
    bodies: list[bytes] = []

    def recorded_retrieval():  # noqa: ANN202
        app = retrieval()
        app.add_middleware(ImageSearchBodies, bodies=bodies)
        return app

    services["retrieval"] = recorded_retrieval
    photo = tmp_path / "street.jpg"
    Image.new("RGB", (400, 600), (180, 170, 160)).save(photo)
    with_image_route(services, photo)  # the photo can be read back (a reload reopens it)
    page.goto(stub_server(services))
    page.set_input_files("#photo-input", str(photo))
    page.locator("#photo-busy").wait_for(state="hidden")
    box = page.locator("#photo-img").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.locator("#results-grid > li").first.wait_for()
    return bodies


def test_an_image_search_shows_the_garments_colour_chip(page, stub_server, retrieval, tmp_path) -> None:  # noqa: F811
    from tests.frontend.test_page_states import wait_until

    bodies = click_photo_garment(page, stub_server, retrieval, tmp_path)
    page.wait_for_function(
        "() => document.querySelector('#query-chips .chip[data-kind=\"image-color\"]') !== null"
    )
    assert chips(page) == ["blue garment"]
    assert bodies and use_color_field(bodies[-1]) is None  # the colour re-ranks (the default)
    page.screenshot(path="/tmp/chips-photo.png", full_page=False)
    assert violations(page) == []

    # removing the chip searches again without the colour re-rank, and the URL keeps it
    n = len(bodies)
    page.get_by_role("button", name="Remove colour “blue”").click()
    page.wait_for_function(
        "() => document.querySelector('#query-chips .chip[data-kind=\"image-color\"]') === null"
    )
    page.locator("#results-grid > li").first.wait_for()
    assert chips(page) == []  # the chip is gone
    assert len(bodies) == n + 1 and use_color_field(bodies[-1]) == b"false"
    assert parse_qs(urlparse(page.url).query)["color"] == ["0"]
    n = len(bodies)
    page.reload()  # the URL keeps the colour off
    wait_until(lambda: len(bodies) > n)
    page.locator("#results-grid > li").first.wait_for()
    assert use_color_field(bodies[-1]) == b"false"
    assert chips(page) == [] and parse_qs(urlparse(page.url).query)["color"] == ["0"]


def test_a_spelling_correction_can_be_undone(page, stub_server, retrieval) -> None:  # noqa: F811
    url = stub_server({"retrieval": retrieval})
    page.goto(f"{url}?q=redd")
    page.wait_for_function(
        "() => document.querySelector('#query-chips').textContent.includes('Showing results for')"
    )
    assert "Showing results for “red”." in page.locator("#query-chips").inner_text()
    assert chips(page) == ["redd"]  # the colour, as typed
    page.get_by_role("button", name="Search instead for “redd”").click()
    page.wait_for_function("() => location.search.includes('exact=1')")
    page.wait_for_function(
        "() => !document.querySelector('#query-chips').textContent.includes('Showing results')"
    )
    assert parse_qs(urlparse(page.url).query) == {"q": ["redd"], "exact": ["1"]}
    assert chips(page) == []
    page.reload()  # the URL keeps it
    page.locator("#results-grid > li").first.wait_for()
    assert "Showing results" not in page.locator("#query-chips").inner_text()
