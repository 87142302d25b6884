"""HTTP API of the retrieval service, against a SQLite store and a fake colour encoder."""

from __future__ import annotations

import io

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from retrieval_fakes import COLORS, ColorEncoder, make_catalog, solid_png

from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.index import sync_index
from fittingroom.retrieval.resources import ImageFetcher
from fittingroom.retrieval.settings import RetrievalSettings
from services.retrieval.app import create_app


def uids(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [r["uid"] for r in resp.json()["results"]]


def upload(client: TestClient, data: bytes, name: str = "q.png", **form):
    return client.post("/search/image", files={"image": (name, data, "image/png")}, data=form)


# ---- happy paths ---------------------------------------------------------------------
def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["encoder"] == "fake-color" and body["products"] == 8
    assert body["index"]["count"] == 9 and body["index"]["kind"] == "flat" and body["index"]["dim"] == 8


def test_text_search_result_fields(client):
    r = client.post("/search", json={"text": "green", "k": 3})
    got = uids(r)
    assert set(got[:2]) == {"test:T2", "test:J2"}
    top = r.json()["results"][0]
    for key in ("uid", "title", "brand", "price", "currency", "category_path", "link", "score", "image"):
        assert key in top
    assert top["currency"] == "USD" and top["score"] > 0.5
    assert top["image"]["image_url"] == f"/images/{top['image']['sha256']}"
    assert r.json()["query"]["text"] == "green" and r.json()["took_ms"] >= 0
    scores = [x["score"] for x in r.json()["results"]]
    assert scores == sorted(scores, reverse=True)


def test_image_upload_search(client):
    got = uids(upload(client, solid_png(COLORS["blue"])))
    assert set(got[:3]) == {"test:T3", "test:P2", "test:H1"}


def test_grouping_returns_each_product_once_with_its_best_image(client):
    r = upload(client, solid_png(COLORS["blue"]), k="10")
    got = uids(r)
    assert len(got) == len(set(got)) == 8  # 9 images, 8 products
    hoodie = next(x for x in r.json()["results"] if x["uid"] == "test:H1")
    assert hoodie["image"]["color"] == "Blue"  # the blue variant matched, not the red main image
    r = upload(client, solid_png(COLORS["red"]), k="10")
    hoodie = next(x for x in r.json()["results"] if x["uid"] == "test:H1")
    assert hoodie["image"]["color"] == "Red"


def test_rgba_cutout_uses_alpha_as_mask(client):
    # Left half red and opaque, right half blue and transparent: the query is the red garment.
    img = Image.new("RGBA", (40, 40), (*COLORS["blue"], 0))
    img.paste((*COLORS["red"], 255), (0, 0, 20, 40))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    got = uids(upload(client, buf.getvalue()))
    assert set(got[:3]) == {"test:T1", "test:P1", "test:H1"}


def test_a_box_in_original_pixels_crops_a_photo_decoded_at_the_working_size(client):
    # 4096x1000 is decoded to 2048x500 (FITTINGROOM_WORKING_SIDE); the box stays in the upload's pixels
    img = Image.new("RGB", (4096, 1000), COLORS["green"])
    img.paste(COLORS["blue"], (3000, 0, 4096, 1000))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    blue = uids(upload(client, buf.getvalue(), box="3100,0,4096,1000"))
    assert set(blue[:3]) == {"test:T3", "test:P2", "test:H1"}
    assert set(uids(upload(client, buf.getvalue(), box="0,0,2900,1000"))[:2]) == {"test:T2", "test:J2"}
    r = upload(client, buf.getvalue(), box="0,0,4097,1000")
    assert r.status_code == 422 and "4096x1000" in r.json()["detail"]


def test_box_crops_the_upload(client):
    img = Image.new("RGB", (40, 20), COLORS["green"])
    img.paste(COLORS["blue"], (20, 0, 40, 20))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    assert set(uids(upload(client, buf.getvalue(), box="0,0,20,20"))[:2]) == {"test:T2", "test:J2"}
    assert set(uids(upload(client, buf.getvalue(), box="20,0,40,20"))[:3]) == {
        "test:T3",
        "test:P2",
        "test:H1",
    }


def test_text_plus_image_weight(client):
    red = solid_png(COLORS["red"])
    image_heavy = uids(upload(client, red, text="green", image_weight="0.9"))
    text_heavy = uids(upload(client, red, text="green", image_weight="0.1"))
    assert image_heavy[0] in {"test:T1", "test:P1", "test:H1"}
    assert text_heavy[0] in {"test:T2", "test:J2"}


def test_pagination(client):
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        r = client.post("/search", json={"text": "blue", "k": 3, "offset": offset})
        page = uids(r)
        assert r.json()["offset"] == offset and len(page) <= 3
        seen += page
        offset = r.json()["next_offset"]
    assert len(seen) == len(set(seen)) == 8
    full = uids(client.post("/search", json={"text": "blue", "k": 8}))
    assert seen == full
    r = client.post("/search", json={"text": "blue", "k": 5, "offset": 8})
    assert uids(r) == [] and r.json()["next_offset"] is None


@pytest.mark.parametrize(
    ("filters", "expect"),
    [
        ({"category": "Tees"}, {"test:T1", "test:T2", "test:T3"}),
        ({"category": "men/tops"}, {"test:T1", "test:T2", "test:J1", "test:H1"}),
        ({"brand": "zed"}, {"test:T3", "test:P1", "test:J1"}),
        ({"min_price": 25, "max_price": 55}, {"test:T3", "test:P1", "test:P2"}),
        ({"eligible": True}, {"test:T1", "test:T3", "test:P2", "test:J1", "test:H1"}),
        ({"category": "Pants", "brand": "Acme"}, {"test:P2"}),
    ],
)
def test_filters(client, filters, expect):
    # "red" ranks red products first; the filter must still fill the page from the allowed ones.
    got = uids(client.post("/search", json={"text": "red", "k": 10, "filters": filters}))
    assert set(got) == expect


def test_misspelt_brand_and_category_filters_are_read_as_known_names(client):
    r = client.post(
        "/search", json={"text": "red", "k": 10, "filters": {"brand": "acmee", "category": "teees"}}
    )
    assert set(uids(r)) == {"test:T1", "test:T2"}
    body = r.json()
    assert body["filter_matches"] == [
        {"field": "brand", "given": "acmee", "used": "Acme", "suggestions": []},
        {"field": "category", "given": "teees", "used": "tees", "suggestions": []},
    ]
    assert body["query"]["filters"]["brand"] == "Acme"
    # exact up to case: nothing to say
    exact = client.post(
        "/search", json={"text": "red", "filters": {"brand": "ZED", "category": "Men > Tops"}}
    )
    assert exact.json()["filter_matches"] == [] and set(uids(exact)) == {"test:J1"}
    # nothing close: no results, and the answer says so
    none = client.post("/search", json={"text": "red", "filters": {"brand": "Qwxyv"}})
    assert uids(none) == []
    assert none.json()["filter_matches"][0]["used"] is None


def test_facets_list_the_brands_and_categories(client):
    r = client.get("/facets")
    assert r.status_code == 200
    assert r.json()["brands"] == ["Acme", "Zed"]
    assert {"tees", "pants", "jackets", "hoodies", "men", "women"} <= set(r.json()["categories"])
    assert all("/" not in c for c in r.json()["categories"])


def test_filtered_query_returns_k_when_k_exist(client):
    got = uids(client.post("/search", json={"text": "red", "k": 2, "filters": {"brand": "Acme"}}))
    assert len(got) == 2 and got[0] in {"test:T1", "test:H1"}


def test_more_like_this_excludes_the_product(client):
    r = client.post("/search", json={"product_id": "test:T3", "k": 3})
    got = uids(r)
    assert "test:T3" not in got
    assert got[0] in {"test:P2", "test:H1"}  # the other blue products
    assert r.json()["query"]["product_id"] == "test:T3"
    steered = uids(
        client.post("/search", json={"product_id": "test:T3", "text": "green", "image_weight": 0.1})
    )
    assert steered[0] in {"test:T2", "test:J2"} and "test:T3" not in steered


def test_tryon_fields(client):
    r = client.post("/search", json={"text": "gray", "k": 8})
    by_uid = {x["uid"]: x for x in r.json()["results"]}
    assert by_uid["test:J1"]["tryon_eligible"] is True
    assert by_uid["test:J1"]["tryon_image"]["sha256"] == by_uid["test:J1"]["image"]["sha256"]
    assert by_uid["test:T2"]["tryon_eligible"] is False and by_uid["test:T2"]["tryon_image"] is None


def test_get_product_and_image(client):
    r = client.get("/products/test:H1")
    assert r.status_code == 200
    body = r.json()
    assert body["title"] == "Hoodie" and body["colors"] == ["Red", "Blue"] and len(body["images"]) == 2
    img = client.get(body["images"][0]["image_url"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    assert "immutable" in img.headers["cache-control"]
    assert Image.open(io.BytesIO(img.content)).getpixel((0, 0)) == COLORS["red"]


def test_image_url_search(client):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/green.png":
            return httpx.Response(
                200, content=solid_png(COLORS["green"]), headers={"content-type": "image/png"}
            )
        if request.url.path == "/moved":
            return httpx.Response(302, headers={"location": "/green.png"})
        if request.url.path == "/page.html":
            return httpx.Response(200, content=b"<html>hello</html>", headers={"content-type": "text/html"})
        if request.url.path == "/slow.png":
            raise httpx.ReadTimeout("timed out", request=request)
        if request.url.path == "/huge.png":
            return httpx.Response(200, content=b"x" * 300_000)
        return httpx.Response(404)

    st = client.app.state.retrieval
    st.fetcher = ImageFetcher(st.settings, transport=httpx.MockTransport(handler))
    assert set(uids(client.post("/search", json={"image_url": "http://shop.example/green.png"}))[:2]) == {
        "test:T2",
        "test:J2",
    }
    assert uids(client.post("/search", json={"image_url": "http://shop.example/moved"}))[0] in {
        "test:T2",
        "test:J2",
    }

    r = client.post("/search", json={"image_url": "http://shop.example/page.html"})
    assert r.status_code == 422 and "not a decodable image" in r.json()["detail"]
    r = client.post("/search", json={"image_url": "http://shop.example/missing.png"})
    assert r.status_code == 400 and "HTTP 404" in r.json()["detail"]
    r = client.post("/search", json={"image_url": "http://shop.example/slow.png"})
    assert r.status_code == 400 and "timed out" in r.json()["detail"]
    r = client.post("/search", json={"image_url": "http://shop.example/huge.png"})
    assert r.status_code == 413


# ---- bad input --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 422, "empty query"),
        ({"text": "   "}, 422, "empty query"),
        ({"text": "red", "k": 0}, 422, "k must be between 1 and 20"),
        ({"text": "red", "k": 21}, 422, "k must be between 1 and 20"),
        ({"text": "red", "offset": 51}, 422, "offset must be between 0 and 50"),
        ({"text": "red", "offset": -1}, 422, "greater than or equal to 0"),
        ({"text": "red", "image_weight": 1.5}, 422, "less than or equal to 1"),
        ({"text": "x" * 1001}, 422, "longer than 1000"),
        ({"text": "red", "colour": "x"}, 422, "Extra inputs are not permitted"),
        ({"text": "red", "filters": {"min_price": 50, "max_price": 10}}, 422, "greater than max_price"),
        ({"product_id": "test:NOPE"}, 404, "no product 'test:NOPE'"),
        ({"product_id": "no-colon"}, 422, "source:id"),
        ({"image_url": "ftp://shop.example/a.png"}, 422, "URL"),
        ({"image_url": "not a url"}, 422, "URL"),
        ({"image_url": "http://a.example/x.png", "product_id": "test:T1"}, 422, "not both"),
    ],
)
def test_bad_json_requests(client, body, status, message):
    r = client.post("/search", json=body)
    assert r.status_code == status, r.text
    assert message in str(r.json()["detail"])


def test_private_url_refused(catalog):
    store, encoder, settings, _ = catalog
    strict = settings.model_copy(update={"allow_private_urls": False})
    with TestClient(create_app(strict, store=store, encoder=encoder)) as c:
        r = c.post("/search", json={"image_url": "http://127.0.0.1:9/x.png"})
        assert r.status_code == 400 and "private or local" in r.json()["detail"]
    off = settings.model_copy(update={"allow_url_fetch": False})
    with TestClient(create_app(off, store=store, encoder=encoder)) as c:
        r = c.post("/search", json={"image_url": "http://shop.example/x.png"})
        assert r.status_code == 400 and "disabled" in r.json()["detail"]


def test_bad_uploads(client):
    r = upload(client, b"this is not an image", name="notes.txt")
    assert r.status_code == 415 and "notes.txt" in r.json()["detail"]
    r = upload(client, b"", name="empty.png")
    assert r.status_code == 415 and "empty" in r.json()["detail"]  # the same status in every service
    big = Image.effect_noise((400, 400), 100).convert("RGB")
    buf = io.BytesIO()
    big.save(buf, format="BMP")  # ~480 kB > 200 kB limit
    r = upload(client, buf.getvalue(), name="big.bmp")
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    png = solid_png(COLORS["red"], size=(40, 40))
    for box, msg in [
        ("1,2,3", "x0,y0,x1,y1"),
        ("a,b,c,d", "4 numbers"),
        ("5,5,5,9", "empty"),
        ("0,0,0,0", "empty"),  # a 0x0 box
        ("20,20,10,10", "empty"),  # inverted
        ("0,0,90,90", "outside"),
    ]:
        r = upload(client, png, box=box)
        assert r.status_code == 422 and msg in r.json()["detail"], (box, r.text)
    r = upload(client, png, k="0")
    assert r.status_code == 422 and "k must be" in r.json()["detail"]
    r = upload(client, png, min_price="9", max_price="1")
    assert r.status_code == 422 and "max_price" in r.json()["detail"]
    r = client.post("/search/image", data={"text": "red"})
    assert r.status_code == 422  # the image field is required


def test_bad_product_and_image_ids(client):
    assert client.get("/products/test:NOPE").status_code == 404
    assert client.get("/products/nocolon").status_code == 422
    assert client.get("/images/" + "0" * 64).status_code == 404
    assert client.get("/images/../../etc/passwd").status_code == 404
    assert client.get("/images/XYZ").status_code == 422


def test_openapi_documents_both_search_forms(client):
    spec = client.get("/openapi.json").json()
    assert "application/json" in spec["paths"]["/search"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in spec["paths"]["/search/image"]["post"]["requestBody"]["content"]
    assert {"/products/{uid}", "/healthz", "/images/{sha256}"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


# ---- lifecycle ---------------------------------------------------------------------------
def test_no_index_yet_then_hot_reload(tmp_path):
    store = SQLiteStore(tmp_path / "c.db")
    encoder = ColorEncoder()
    settings = RetrievalSettings(
        index_dir=tmp_path / "index", image_cache_dir=tmp_path / "img", index_reload_s=0
    )
    with TestClient(create_app(settings, store=store, encoder=encoder)) as c:
        r = c.get("/healthz")
        assert r.status_code == 503 and r.json()["status"] == "no_index"
        assert "fittingroom ingest" in r.json()["detail"]
        r = c.post("/search", json={"text": "red"})
        assert r.status_code == 503 and "fittingroom ingest" in r.json()["detail"]

        make_catalog(store, encoder, tmp_path / "img")  # ingest happens while the service runs
        sync_index(store, encoder.name, tmp_path / "index")
        assert c.get("/healthz").json()["index"]["count"] == 9
        assert uids(c.post("/search", json={"text": "red", "k": 1})) in (
            ["test:T1"],
            ["test:P1"],
            ["test:H1"],
        )
    store.close()


def test_nothing_loads_at_import_or_create(monkeypatch, tmp_path):
    import fittingroom.models.specs as specs

    calls = []
    monkeypatch.setattr(specs, "get_encoder", lambda core, name, **kw: calls.append(name) or ColorEncoder())
    store = SQLiteStore(tmp_path / "c.db")
    settings = RetrievalSettings(
        store_uri=f"sqlite:///{tmp_path / 'c.db'}", index_dir=tmp_path / "i", encoder="whatever"
    )
    app = create_app(settings)
    assert calls == []
    with TestClient(app) as c:
        assert calls == ["whatever"]
        assert c.get("/healthz").json()["encoder"] == "fake-color"
    store.close()


def test_text_is_understood_parsed_constraints_filter(client):
    body = client.post("/search", json={"text": "red tee under $25", "k": 8}).json()
    assert body["results"] and all(r["price"] <= 25 for r in body["results"])
    price = next(c for c in body["parsed"]["constraints"] if c["kind"] == "price")
    assert (price["max_price"], price["currency"], price["text"]) == (25.0, "USD", "under $25")
    assert "red tee under $25"[price["start"] : price["end"]] == "under $25"
    assert body["parsed"]["residual"] == "red tee" and body["corrected"] is None
    assert body["no_good_match"] is False


def test_typos_bad_prices_and_nothing_matching(client):
    body = client.post("/search", json={"text": "red hoddie"}).json()
    assert body["corrected"] == "red hoodie" and body["results"][0]["uid"] == "test:H1"
    body = client.post("/search", json={"text": "tee under $-5"}).json()
    assert body["parsed"]["dropped"][0]["kind"] == "price" and body["results"]
    body = client.post("/search", json={"text": "dress under $5"}).json()
    assert body["results"] == [] and body["no_good_match"] is True
    r = client.post("/search", json={"text": "x" * 10_000})
    assert r.status_code == 422


def test_an_image_search_says_the_garments_dominant_colour(client):
    body = upload(client, solid_png((220, 20, 20))).json()
    assert body["image_color"]["family"] == "red" and body["image_color"]["share"] > 0.99
    assert body["image_color"]["lab"][1] > 40  # CIELAB a*: red
    assert client.post("/search", json={"text": "red"}).json()["image_color"] is None


def test_exact_searches_the_words_as_typed(client):
    fixed = client.post("/search", json={"text": "redd"}).json()
    assert fixed["corrected"] == "red"
    typed = client.post("/search", json={"text": "redd", "exact": True}).json()
    assert typed["corrected"] is None and typed["parsed"]["constraints"] == []


def test_the_image_colour_reranks_unless_use_color_is_off(catalog, monkeypatch):
    from fittingroom.retrieval.garment_color import GarmentColor

    store, encoder, settings, _ = catalog
    # a blue photo whose garment is said to be red, with a margin wide enough to show the re-rank
    monkeypatch.setattr(
        "services.retrieval.app.dominant_color", lambda img: GarmentColor("red", (50.0, 70.0, 50.0), 1.0)
    )
    app = create_app(settings.model_copy(update={"image_color_boost": 2.0}), store=store, encoder=encoder)
    with TestClient(app) as c:
        off = upload(c, solid_png(COLORS["blue"]), use_color="false", k="8")
        on = upload(c, solid_png(COLORS["blue"]), k="8")
    assert set(uids(off)[:3]) == {"test:T3", "test:P2", "test:H1"}  # the embedding: blue first
    assert set(uids(on)[:3]) == {"test:T1", "test:P1", "test:H1"}  # the red ones (H1 has a red image)
    assert on.json()["image_color"]["family"] == off.json()["image_color"]["family"] == "red"


def test_a_cut_out_is_searched_on_the_configured_grey(catalog):
    """The transparent pixels of an uploaded cut-out are filled with RETRIEVAL_CUTOUT_BACKGROUND
    before embedding; the dominant colour still sees the garment's pixels only."""
    store, encoder, settings, _ = catalog
    seen: list[Image.Image] = []
    embed = encoder.query_vectors

    def spy(queries):
        seen.extend(q.image for q in queries if q.image is not None)
        return embed(queries)

    encoder.query_vectors = spy
    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    rgba.paste((220, 20, 20, 255), (10, 10, 30, 30))
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    for grey in (128, 255):
        app = create_app(settings.model_copy(update={"cutout_background": grey, "warmup": False}), store=store,
                         encoder=encoder)  # fmt: skip
        with TestClient(app) as c:
            seen.clear()
            body = upload(c, buf.getvalue()).json()
        assert body["image_color"]["family"] == "red"  # not grey: the background is no garment
        assert seen and seen[-1].mode == "RGB"
        assert seen[-1].getpixel((1, 1)) == (grey, grey, grey) and seen[-1].getpixel((20, 20)) == (
            220,
            20,
            20,
        )
    with TestClient(
        create_app(settings.model_copy(update={"warmup": False}), store=store, encoder=encoder)
    ) as c:
        seen.clear()
        upload(c, solid_png((20, 20, 220)))  # an opaque photo is searched as it is
    assert seen[-1].getpixel((1, 1)) == (20, 20, 220)
