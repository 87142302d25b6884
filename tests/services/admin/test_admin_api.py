"""The admin API over HTTP: token rules, feed upload -> job -> report, preview, sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from admin_helpers import AUTH, TOKEN, color_feed, wait_job
from fastapi.testclient import TestClient

from catalog_ingest.jobs import AdminSettings
from fittingroom.settings import CoreSettings
from services.admin.app import create_app

ROUTES = [
    ("get", "/jobs"),
    ("get", "/jobs/abc"),
    ("get", "/sources"),
    ("delete", "/sources/shop"),
    ("get", "/sources/shop"),
    ("post", "/sources/shop/prune"),
    ("post", "/feeds"),
    ("post", "/feeds/preview"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_token_rules(client: TestClient, method: str, path: str) -> None:
    no_token = client.request(method, path)
    assert no_token.status_code == 401
    assert no_token.headers["www-authenticate"] == "Bearer"
    assert "Bearer" in no_token.json()["detail"]
    assert client.request(method, path, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.request(method, path, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.request(method, path, headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 403


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_admin_routes_are_off_without_a_token(core: CoreSettings, method: str, path: str) -> None:
    for token in (None, ""):
        app = create_app(AdminSettings(token=token), core=core)
        with TestClient(app) as c:
            assert c.request(method, path, headers=AUTH).status_code == 404
            assert c.request(method, path).status_code == 404
            assert c.get("/healthz").json() == {"status": "ok", "enabled": False}
    assert not (core.home / "catalog.db").exists()  # nothing opened


def test_api_docs_are_open_only_while_the_admin_api_is_on(client: TestClient, core: CoreSettings) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    with TestClient(create_app(AdminSettings(), core=core)) as off:
        assert off.get("/docs").status_code == 404
        assert off.get("/openapi.json").status_code == 404


def test_compare_is_constant_time() -> None:
    import inspect

    from services.admin import app as admin_app

    assert "hmac.compare_digest" in inspect.getsource(admin_app.AdminAuth)


def test_upload_runs_an_ingest_job_with_its_report(client: TestClient, tmp_path: Path) -> None:
    feed = color_feed(tmp_path / "img", [("R1", "red"), ("G1", "green"), ("B1", "blue")], bad=True)
    resp = client.post("/feeds", headers=AUTH, data={"source": "shop"}, files={"file": ("shop.jsonl", feed)})
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert job["status"] in ("queued", "running", "done") and job["kind"] == "ingest"
    assert "feed" not in job["params"] and job["params"]["file"] == "shop.jsonl"
    done = wait_job(client, job["id"])
    assert done["status"] == "done", done["error"]
    assert (done["done"], done["total"], done["progress"]) == (3, 3, 1.0)
    report = done["report"]
    assert (report["new"], report["updated"], report["unchanged"]) == (3, 0, 0)
    bad = sorted((b["line"], b["reason"]) for b in report["bad_rows"])
    assert [line for line, _ in bad] == [2, 3]
    assert all(b["file"] == "shop.jsonl" for b in report["bad_rows"])  # never the server's path
    assert report["feed"] == "shop.jsonl"
    assert "image" in bad[1][1]
    # the upload is kept under the home folder
    assert list((tmp_path / "home" / "feeds" / job["id"]).iterdir())[0].name == "shop.jsonl"
    # listed, newest first; sources with counts and the last job
    assert client.get("/jobs", headers=AUTH).json()["jobs"][0]["id"] == job["id"]
    sources = client.get("/sources", headers=AUTH).json()["sources"]
    assert [(s["name"], s["products"], s["last_job"]["id"]) for s in sources] == [("shop", 3, job["id"])]

    again = client.post(
        "/feeds", headers=AUTH, data={"source": "shop"}, files={"file": ("shop.jsonl", feed)}
    ).json()
    assert wait_job(client, again["id"])["report"]["unchanged"] == 3


def test_delete_source_removes_its_products(client: TestClient, tmp_path: Path) -> None:
    for source, items in (("a", [("R1", "red")]), ("b", [("G1", "green"), ("B1", "blue")])):
        feed = color_feed(tmp_path / "img", items)
        job = client.post("/feeds", headers=AUTH, data={"source": source}, files={"file": ("f.jsonl", feed)})
        assert wait_job(client, job.json()["id"])["status"] == "done"
    assert client.delete("/sources/nope", headers=AUTH).status_code == 404
    resp = client.delete("/sources/b", headers=AUTH)
    assert resp.status_code == 202
    done = wait_job(client, resp.json()["id"])
    assert done["status"] == "done" and done["kind"] == "delete_source"
    assert done["report"] == {"source": "b", "deleted": 2, "index_vectors": 1}
    assert [s["name"] for s in client.get("/sources", headers=AUTH).json()["sources"]] == ["a"]


def test_bad_uploads_are_refused_with_a_reason(client: TestClient, tmp_path: Path) -> None:
    feed = color_feed(tmp_path / "img", [("R1", "red")])
    post = lambda data, files: client.post("/feeds", headers=AUTH, data=data, files=files)  # noqa: E731
    r = post({"source": "bad:name"}, {"file": ("f.jsonl", feed)})
    assert r.status_code == 422 and "source" in r.json()["detail"]
    r = post({"source": "shop"}, {"file": ("f.exe", feed)})
    assert r.status_code == 415
    r = post({"source": "shop", "mapping": ["x=nonsense"]}, {"file": ("f.jsonl", feed)})
    assert r.status_code == 422 and "nonsense" in r.json()["detail"]
    r = post({"source": "shop", "mapping": ["/etc/fittingroom.json"]}, {"file": ("f.jsonl", feed)})
    assert r.status_code == 422
    r = post({"source": "shop"}, {"file": ("f.jsonl", b"")})
    assert r.status_code == 422 and "empty" in r.json()["detail"]
    assert client.get("/jobs", headers=AUTH).json()["jobs"] == []


def test_an_upload_over_the_limit_is_413_counted_while_streamed(client: TestClient) -> None:
    big = b"x" * 30_000  # the fixture's limit is 20,000 bytes
    r = client.post("/feeds", headers=AUTH, data={"source": "shop"}, files={"file": ("f.csv", big)})
    assert r.status_code == 413

    def chunks():
        yield b'--b\r\nContent-Disposition: form-data; name="source"\r\n\r\nshop\r\n'
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="f.csv"\r\n\r\n'
        for _ in range(10):
            yield b"y" * 5000
        yield b"\r\n--b--\r\n"

    r = client.post(
        "/feeds", headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"}, content=chunks()
    )
    assert r.status_code == 413
    assert client.get("/jobs", headers=AUTH).json()["jobs"] == []


def test_preview_shows_mapping_and_bad_rows_and_stores_nothing(client: TestClient, tmp_path: Path) -> None:
    csv = (
        b"sku,name,cost,picture\n"
        b"A1,Blue Tee,10.00 USD,https://cdn.example/a.jpg\n"
        b"A2,,12.00 USD,https://cdn.example/b.jpg\n"
        b"A3,Red Tee,9 USD,https://cdn.example/c.jpg\n"
    )
    r = client.post(
        "/feeds/preview",
        headers=AUTH,
        data={"source": "shop", "mapping": ["sku=id", "name=title", "cost=price", "picture=image_link"]},
        files={"file": ("shop.csv", csv)},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["columns"] == ["sku", "name", "cost", "picture"]
    assert out["mapping"] == {"sku": "id", "name": "title", "cost": "price", "picture": "image_link"}
    assert out["products"] == 2 and out["rows_read"] == 3
    assert [(b["line"], b["id"]) for b in out["bad_rows"]] == [(3, "A2")]
    assert client.get("/jobs", headers=AUTH).json()["jobs"] == []
    assert client.get("/sources", headers=AUTH).json()["sources"] == []
    assert list((tmp_path / "home" / "feeds").iterdir()) == []
