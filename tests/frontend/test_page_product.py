"""Browser tests of the product view (`/product/<uid>`) against the real retrieval service over
a small colour catalog (the fake encoder of tests/services/retrieval): open a product from a
result card (click or Enter), its shop link, similar products, Try on from a card and from the
product, Back / Forward / reload, and the errors a shopper reads. (The screenshots in docs/ come
from the real catalogs: test_page_real.py.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from fastapi import FastAPI, HTTPException

from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.index import sync_index
from fittingroom.retrieval.settings import RetrievalSettings
from services.retrieval.app import create_app
from tests.services.retrieval.retrieval_fakes import ColorEncoder, make_catalog

pytestmark = pytest.mark.browser


@pytest.fixture
def retrieval(tmp_path: Path) -> Iterator[Callable[[], FastAPI]]:
    """A factory of the real retrieval app over the 8-product colour catalog."""
    store = SQLiteStore(tmp_path / "catalog.db")
    encoder = ColorEncoder()
    make_catalog(store, encoder, tmp_path / "images")
    sync_index(store, encoder.name, tmp_path / "index")
    settings = RetrievalSettings(
        store_uri=f"sqlite:///{tmp_path / 'catalog.db'}",
        index_dir=tmp_path / "index",
        image_cache_dir=tmp_path / "images",
        index_reload_s=0,
        warmup=False,
    )
    yield lambda: create_app(settings, store=store, encoder=encoder)
    store.close()


def path_of(page) -> str:  # noqa: ANN001
    return unquote(urlparse(page.url).path)


def open_results(page, url: str, text: str = "red") -> None:  # noqa: ANN001
    page.goto(f"{url}?q={text}")
    page.locator("#results-grid > li").first.wait_for()


def wait_product(page, title: str) -> None:  # noqa: ANN001
    page.wait_for_function(
        "t => document.querySelector('#product-title')?.textContent === t && "
        "!document.querySelector('#product-panel').hidden",
        arg=title,
    )


def test_open_a_product_from_a_result_and_its_shop_link(page, stub_server, retrieval) -> None:
    url = stub_server({"retrieval": retrieval})
    open_results(page, url, "red")
    card = page.locator("#results-grid > li").first
    uid = card.get_attribute("data-uid")
    title = card.locator("h3").inner_text()
    card.locator("h3").click()
    wait_product(page, title)
    assert path_of(page) == f"/product/{uid}"
    assert page.locator("#results-panel").is_hidden()
    buy = page.locator("#product-content a.buy")
    href = buy.get_attribute("href")
    assert href is not None and urlparse(href).scheme in ("http", "https")
    assert href == f"https://shop.example/{uid.split(':')[1]}"
    assert buy.inner_text() == "Buy at shop.example"
    assert buy.get_attribute("target") == "_blank" and "noopener" in (buy.get_attribute("rel") or "")
    assert page.locator("#product-content .product-price").inner_text().endswith("0.00")
    assert page.locator(".product-main-img").evaluate("i => i.complete && i.naturalWidth > 0")
    # similar products: the product itself is not among them, and they open too
    similar = page.locator("#similar-grid > li")
    similar.first.wait_for()
    assert uid not in similar.evaluate_all("els => els.map(e => e.dataset.uid)")
    other_uid = similar.first.get_attribute("data-uid")
    other_title = similar.first.locator("h3").inner_text()
    similar.first.locator("h3").click()
    wait_product(page, other_title)
    assert path_of(page) == f"/product/{other_uid}"
    # Back: the first product, then the results as they were; Forward: the product again
    page.go_back()
    wait_product(page, title)
    page.go_back()
    page.wait_for_function("() => !document.querySelector('#results-panel').hidden")
    assert page.locator("#product-panel").is_hidden()
    assert page.locator("#results-grid > li").first.get_attribute("data-uid") == uid
    assert "q=red" in page.url and page.input_value("#text-query") == "red"
    page.go_forward()
    wait_product(page, title)


def test_enter_on_a_focused_card_opens_the_product(page, stub_server, retrieval) -> None:
    url = stub_server({"retrieval": retrieval})
    open_results(page, url, "blue")
    card = page.locator("#results-grid > li").nth(1)
    title = card.locator("h3").inner_text()
    card.focus()
    assert page.evaluate("document.activeElement.tagName") == "LI"
    page.keyboard.press("Enter")
    wait_product(page, title)
    assert page.evaluate("document.activeElement.id") == "product-title"
    page.click("#product-back")
    page.wait_for_function("() => !document.querySelector('#results-panel').hidden")
    assert "q=blue" in page.url


def test_reload_of_a_product_url_reopens_it_with_grouped_images(page, stub_server, retrieval, shot) -> None:
    url = stub_server({"retrieval": retrieval})
    page.goto(url + "product/test:H1")
    wait_product(page, "Hoodie")
    page.reload()
    wait_product(page, "Hoodie")
    names = page.locator(".variant-name").all_inner_texts()
    assert names == ["Red", "Blue"]
    assert page.locator(".thumb-btn img").count() == 2
    # a thumbnail of the other colour shows it
    page.locator(".thumb-btn").nth(1).click()
    assert page.locator(".product-main-img").get_attribute("alt") == "Hoodie in Blue"
    assert page.locator(".thumb-btn").nth(1).get_attribute("aria-current") == "true"
    page.locator("#similar-grid > li").first.wait_for()
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "desktop", full_page=False)
    # Back to results from a product opened by its URL goes to the start page
    page.click("#product-back")
    page.wait_for_function("() => !document.querySelector('#results-panel').hidden")
    assert path_of(page) == "/"


def test_product_page_on_a_phone(phone, stub_server, retrieval, shot) -> None:
    url = stub_server({"retrieval": retrieval})
    phone.goto(url + "product/test:H1")
    wait_product(phone, "Hoodie")
    phone.locator("#similar-grid > li").first.wait_for()
    overflow = phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    buy = phone.locator("#product-content a.buy").bounding_box()
    assert buy is not None and buy["y"] + buy["height"] <= 844  # the Buy button is above the fold
    shot(phone, "phone", full_page=False)


def test_try_on_from_every_try_on_able_card_and_from_the_product(page, stub_server, retrieval) -> None:
    url = stub_server({"retrieval": retrieval})
    open_results(page, url, "red")
    assert not page.is_checked("#filter-eligible")
    cards = page.locator("#results-grid > li")
    ready = {"test:T1", "test:T3", "test:P2", "test:J1", "test:H1"}  # try-on eligible in the catalog
    for i in range(cards.count()):
        card = cards.nth(i)
        has_button = card.locator("button.try-on").count() == 1
        assert has_button == (card.get_attribute("data-uid") in ready)
    card = page.locator("#results-grid > li[data-uid='test:T1']")
    card.locator("button.try-on").click()
    dialog = page.locator("#tryon-dialog")
    dialog.wait_for(state="visible")
    assert "Red tee" in page.locator("#tryon-product").inner_text()
    assert page.locator("#tryon-person-step").is_visible()
    assert path_of(page) == "/"  # the button did not open the product
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    page.goto(url + "product/test:J1")
    wait_product(page, "Gray jacket")
    page.locator("#product-content .product-actions button.try-on").click()
    dialog.wait_for(state="visible")
    assert "Gray jacket" in page.locator("#tryon-product").inner_text()
    page.keyboard.press("Escape")
    page.goto(url + "product/test:T2")  # not try-on-able: no button
    wait_product(page, "Green tee")
    assert page.locator("#product-content .product-actions button.try-on").count() == 0


def test_unknown_product_is_a_sentence(page, stub_server, retrieval) -> None:
    url = stub_server({"retrieval": retrieval})
    page.goto(url + "product/test:NOPE")
    wait_product(page, "This product is not in the catalog.")
    assert "Search for something similar" in page.locator("#product-content").inner_text()


def test_min_price_above_max_is_explained_before_searching(page, stub_server, retrieval) -> None:
    url = stub_server({"retrieval": retrieval})
    open_results(page, url, "red")
    searches: list[str] = []
    page.on("request", lambda r: searches.append(r.url) if "/search" in r.url else None)
    page.fill("#filter-min-price", "50")
    page.fill("#filter-max-price", "20")
    page.click("#filters button[type=submit]")
    toast = page.locator("#toast")
    toast.wait_for(state="visible")
    text = toast.inner_text()
    assert "minimum price (50) is higher than the maximum price (20)" in text
    assert "min_price" not in text and "validation" not in text.lower()
    assert searches == []
    page.fill("#filter-max-price", "60")
    page.click("#filters button[type=submit]")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#results-grid > li')].every(e => e.dataset.uid !== 'test:T1')"
    )
    assert len(searches) == 1


def failing_retrieval() -> FastAPI:
    app = FastAPI()

    @app.post("/search")
    async def search() -> None:
        raise HTTPException(
            422,
            [
                {
                    "type": "greater_than_equal",
                    "loc": ["body", "filters", "max_price"],
                    "msg": "Input should be greater than or equal to 0",
                },
                {"type": "missing", "loc": ["body", "text"], "msg": "Field required"},
            ],
        )

    @app.get("/products/{uid}")
    async def product(uid: str) -> None:
        raise HTTPException(500, "cannot identify image file <_io.BytesIO object at 0x7f3a2b1c9d00>")

    return app


def test_api_errors_are_sentences_without_reprs(page, stub_server) -> None:
    url = stub_server({"retrieval": failing_retrieval})
    page.goto(url + "?q=tee")
    toast = page.locator("#toast")
    toast.wait_for(state="visible")
    assert toast.inner_text().startswith("The maximum price cannot be negative. The search text is missing.")
    page.goto(url + "product/x:1")
    wait_product(page, "The product cannot be shown right now.")
    text = page.locator("#product-content").inner_text()
    assert "cannot identify image file the file" in text and "object at 0x" not in text


def unsafe_link_retrieval() -> FastAPI:
    """A product whose shop link is a javascript: URL (a hostile or broken feed)."""
    app = FastAPI()
    product = {
        "uid": "bad:1",
        "source": "bad",
        "id": "1",
        "title": "Odd tee",
        "brand": None,
        "price": 5.0,
        "currency": "USD",
        "category_path": [],
        "garment_category": None,
        "link": "javascript:alert(1)",
        "tryon_eligible": None,
        "tryon_image": None,
        "tryon_ready": False,
    }

    @app.post("/search")
    async def search() -> dict[str, object]:
        image = {"sha256": "0" * 64, "url": "x", "image_url": None, "color": None, "is_main": True}
        result = {**product, "score": 0.9, "image": image}
        return {"results": [result], "k": 24, "offset": 0, "next_offset": None, "query": {}, "took_ms": 1}

    @app.get("/products/{uid}")
    async def get(uid: str) -> dict[str, object]:
        extra = {"description": "", "colors": [], "sizes": [], "gender": None, "attributes": {}}
        return {
            **product,
            **extra,
            "images": [],
            "image_groups": [],
            "main_image": None,
            "availability": None,
        }

    @app.get("/products/{uid}/similar")
    async def similar(uid: str) -> dict[str, object]:
        return {"uid": uid, "results": []}

    return app


def test_only_http_shop_links_are_rendered(page, stub_server) -> None:
    url = stub_server({"retrieval": unsafe_link_retrieval})
    open_results(page, url, "tee")
    assert page.locator("#results-grid a.shop").count() == 0
    page.locator("#results-grid > li h3").click()
    wait_product(page, "Odd tee")
    assert page.locator("#product-content a").count() == 0
    assert "did not give a link" in page.locator("#product-content").inner_text()
    page.locator("#similar-status").wait_for()
    assert page.locator("#similar-status").inner_text() == "No similar products in the catalog."


def test_filters_are_in_the_url_back_undoes_them_and_a_reload_keeps_them(
    page, stub_server, retrieval
) -> None:
    url = stub_server({"retrieval": retrieval})
    open_results(page, url, "red")
    all_red = page.locator("#results-grid > li").count()
    page.fill("#filter-max-price", "30")
    page.click("#filters button[type=submit]")
    page.wait_for_function("() => location.search.includes('max=30')")
    prices = "[...document.querySelectorAll('#results-grid > li')].map(e => e.dataset.uid)"
    page.wait_for_function(f"() => {prices}.length > 0 && {prices}.length < {all_red}")
    cheap = set(page.evaluate(prices))
    assert cheap <= {"test:T1", "test:T2", "test:T3"}  # the products of 30 or less
    page.reload()
    page.locator("#results-grid > li").first.wait_for()
    assert page.input_value("#filter-max-price") == "30" and page.input_value("#text-query") == "red"
    assert set(page.evaluate(prices)) == cheap
    page.go_back()
    page.wait_for_function(f"() => {prices}.length === {all_red}")
    assert page.input_value("#filter-max-price") == ""
