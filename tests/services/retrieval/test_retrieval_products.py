"""GET /products/{uid} (a product page) and GET /products/{uid}/similar over the colour catalog."""

from __future__ import annotations


def test_product_page_has_everything_the_page_shows(client):
    r = client.get("/products/test:H1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["title"] == "Hoodie" and body["brand"] == "Acme"
    assert body["price"] == 80.0 and body["currency"] == "USD"
    assert body["link"] == "https://shop.example/H1"
    assert [g["color"] for g in body["image_groups"]] == ["Red", "Blue"]
    assert [len(g["images"]) for g in body["image_groups"]] == [1, 1]
    assert body["main_image"]["color"] == "Red" and body["main_image"]["is_main"]
    assert all(i["image_url"].startswith("/images/") for g in body["image_groups"] for i in g["images"])
    assert body["tryon_ready"] is True and body["tryon_image"]["sha256"] in {
        i["sha256"] for i in body["images"]
    }
    assert "availability" in body and body["availability"] is None
    assert "sizes" in body and "description" in body


def test_not_try_on_able_product(client):
    body = client.get("/products/test:T2").json()
    assert body["tryon_ready"] is False and body["tryon_image"] is None


def test_unknown_and_malformed_product_ids(client):
    r = client.get("/products/test:NOPE")
    assert r.status_code == 404
    assert r.json()["detail"] == "There is no product 'test:NOPE' in the catalog."
    r = client.get("/products/nocolon")
    assert r.status_code == 422 and "source:id" in r.json()["detail"]
    assert client.get("/products/test:NOPE/similar").status_code == 404
    assert client.get("/products/nocolon/similar").status_code == 422


def test_similar_products_nearest_first_itself_excluded(client):
    r = client.get("/products/test:T1/similar", params={"k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    got = [x["uid"] for x in body["results"]]
    assert body["uid"] == "test:T1" and len(got) == 3 and "test:T1" not in got
    assert set(got[:2]) == {"test:P1", "test:H1"}  # the other red products first
    scores = [x["score"] for x in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all("tryon_ready" in x and x["image"]["image_url"] for x in body["results"])
    assert len(client.get("/products/test:T1/similar").json()["results"]) == 7  # default k=8, 7 others
    assert client.get("/products/test:T1/similar", params={"k": 0}).status_code == 422
    assert client.get("/products/test:T1/similar", params={"k": 999}).status_code == 422


def test_search_results_say_whether_try_on_is_offered(client):
    results = client.post("/search", json={"text": "red", "k": 10}).json()["results"]
    by_uid = {r["uid"]: r for r in results}
    assert by_uid["test:T1"]["tryon_ready"] is True and by_uid["test:T1"]["tryon_image"] is not None
    assert by_uid["test:T2"]["tryon_ready"] is False
