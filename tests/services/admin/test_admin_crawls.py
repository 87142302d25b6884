"""Crawls from the admin API: a crawl of a local shop over HTTP (subprocess crawl -> ingest ->
search without a restart), the private-address refusal and the limits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from admin_helpers import AUTH, TOKEN, wait_job
from fastapi.testclient import TestClient

from catalog_ingest.jobs import AdminSettings
from crawler.testing import MirrorShop
from fittingroom.catalog.store import open_store
from fittingroom.retrieval.settings import RetrievalSettings
from fittingroom.settings import CoreSettings
from services.admin.app import create_app as create_admin
from services.app import ServeSettings, create_app
from services.retrieval.app import create_app as create_retrieval


def _luma_dir() -> Path:
    path = CoreSettings().shared_data / "luma-catalog"
    if not (path / "products.jsonl").is_file():
        pytest.skip(f"shared data not found: {path}")
    return path


@pytest.fixture
def fast_crawls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The crawl subprocess inherits these: no politeness delays on loopback, short timeouts."""
    for name, value in {
        "CRAWLER_AUTOTHROTTLE": "false",
        "CRAWLER_DOWNLOAD_DELAY": "0",
        "CRAWLER_LOG_LEVEL": "WARNING",
        "CRAWLER_TIMEOUT": "3",
        "CRAWLER_RETRIES": "0",
        "CRAWLER_SITEMAPS": "false",
    }.items():
        monkeypatch.setenv(name, value)


def _search(client: TestClient, text: str) -> list[str]:
    resp = client.post("/api/retrieval/search", json={"text": text, "k": 50})
    assert resp.status_code == 200, resp.text
    return [r["uid"] for r in resp.json()["results"]]


@pytest.mark.real_data
def test_crawl_a_local_shop_over_http_then_search_it(tmp_path: Path, fast_crawls: None) -> None:
    from tests.services.retrieval.retrieval_fakes import ColorEncoder

    encoder = ColorEncoder()
    core = CoreSettings(home=tmp_path / "home")
    retrieval = RetrievalSettings(
        store_uri=core.resolved_store_uri,
        index_dir=core.resolved_index_dir,
        image_cache_dir=core.home / "images",
        index_reload_s=3600,  # only the end of the job makes it re-open the index
        warmup=False,
    )
    admin = AdminSettings(token=TOKEN, allow_private_crawl=True, crawl_max_pages=200, crawl_max_depth=4)
    app = create_app(
        ServeSettings(frontend_dir=tmp_path / "no-page"),
        services={
            "admin": lambda: create_admin(admin, core=core, encoder=encoder, annotators=False),
            "retrieval": lambda: create_retrieval(retrieval, encoder=encoder),
        },
    )
    n = 8
    with MirrorShop(_luma_dir(), n, per_page=4, faults=True) as shop, TestClient(app) as client:
        t0 = time.monotonic()
        resp = client.post(
            "/api/admin/crawls",
            headers=AUTH,
            json={"url": shop.base_url, "max_pages": 150, "source": "mirror"},
        )
        assert resp.status_code == 202, resp.text
        job = resp.json()
        assert job["kind"] == "crawl" and job["source"] == "mirror"
        assert job["params"] == {"url": shop.base_url, "max_pages": 150, "max_depth": 4}

        seen_running = False
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            now = client.get(f"/api/admin/jobs/{job['id']}", headers=AUTH).json()
            if now["status"] == "running" and now["report"] and now["report"].get("phase") == "crawl":
                seen_running = True
                assert now["total"] == 150 and now["done"] <= 150
            if now["status"] in ("done", "failed"):
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
        assert now["status"] == "done", now["error"]
        assert seen_running  # progress was reported while the crawl ran
        report = now["report"]
        assert report["phase"] == "done" and report["products"] == n
        # the shop's broken image (/img/broken.jpg) costs its product, reported by feed line
        [bad] = report["bad_rows"]
        assert bad["file"] == "crawl.jsonl" and bad["line"] > 0 and "/img/broken.jpg" in bad["reason"]
        assert report["new"] == n - 1
        assert report["crawl"]["products"] == n and report["pages"] == report["crawl"]["pages"] > n
        failed = {
            f["url"].removeprefix(shop.base_url.rstrip("/")): f["reason"] for f in report["failed_urls"]
        }
        assert failed["/broken/500/"] == "http_500"
        assert failed["/broken/slow/"] in ("timeout", "DownloadTimeoutError")
        print(f"\ncrawl job of a {n}-product shop: {elapsed:.1f} s, {report['pages']} pages")

        with open_store(core.resolved_store_uri, read_only=True) as store:
            ids = {p.id for p in store.iter_products("mirror")}
        assert ids == {p.sku for p in shop.products} - {bad["id"]}
        assert set(_search(client, "shirt")) == {f"mirror:{i}" for i in ids}
        # the crawl's working folder is gone once its products are in
        assert not any((core.home / "feeds" / "crawls").iterdir())
        # a prune reads the feed the crawl kept: every stored product was seen, none goes
        resp = client.post("/api/admin/sources/mirror/prune", headers=AUTH, json={"confirm": "mirror"})
        assert resp.status_code == 202, resp.text
        for _ in range(600):
            pruned = client.get(f"/api/admin/jobs/{resp.json()['id']}", headers=AUTH).json()
            if pruned["status"] in ("done", "failed"):
                break
            time.sleep(0.05)
        assert pruned["status"] == "done", pruned["error"]
        assert (pruned["report"]["against"], pruned["report"]["deleted"]) == (job["id"], 0)
        assert pruned["report"]["seen"] == n


def test_crawl_targets_on_private_addresses_are_refused(core: CoreSettings) -> None:
    resolved = {"shop.internal": ["10.0.0.7"], "shop.example": ["93.184.216.34"]}
    settings = AdminSettings(token=TOKEN, crawl_max_pages=100, crawl_max_depth=5)
    app = create_admin(settings, core=core, runners={}, resolver=lambda host, port: resolved[host])
    with TestClient(app) as client:
        for url in ("http://127.0.0.1:8080/", "http://shop.internal/", "http://[::1]/", "http://10.1.2.3/"):
            resp = client.post("/crawls", headers=AUTH, json={"url": url})
            assert resp.status_code == 422, (url, resp.text)
            assert "private or local address" in resp.json()["detail"]
        for url in ("ftp://shop.example/", "not a url", "http:///nohost"):
            assert client.post("/crawls", headers=AUTH, json={"url": url}).status_code == 422
        too_many = client.post(
            "/crawls", headers=AUTH, json={"url": "http://shop.example/", "max_pages": 101}
        )
        assert too_many.status_code == 422 and "max_pages <= 100" in too_many.json()["detail"]
        too_deep = client.post("/crawls", headers=AUTH, json={"url": "http://shop.example/", "max_depth": 6})
        assert too_deep.status_code == 422
        assert client.post("/crawls", json={"url": "http://shop.example/"}).status_code == 401
        assert client.get("/jobs", headers=AUTH).json()["jobs"] == []  # nothing was queued


def test_a_public_crawl_target_is_queued_with_the_default_limits(core: CoreSettings) -> None:
    settings = AdminSettings(token=TOKEN, crawl_max_pages=100, crawl_max_depth=5)
    ran: list[dict] = []

    def crawl(job, progress):  # noqa: ANN001, ANN202 - a stand-in job body
        ran.append(job.params | {"source": job.source})
        return {"pages": 0}

    from fittingroom.catalog.jobs import JobKind

    app = create_admin(
        settings, core=core, runners={JobKind.crawl: crawl}, resolver=lambda host, port: ["93.184.216.34"]
    )
    with TestClient(app) as client:
        resp = client.post("/crawls", headers=AUTH, json={"url": " https://www.Shop.example/women/ "})
        assert resp.status_code == 202, resp.text
        assert wait_job(client, resp.json()["id"])["status"] == "done"
    assert ran == [
        {"url": "https://www.Shop.example/women/", "max_pages": 100, "max_depth": 5, "source": "shop.example"}
    ]


def test_private_targets_are_allowed_by_the_setting(core: CoreSettings) -> None:
    from fittingroom.catalog.jobs import JobKind

    settings = AdminSettings(token=TOKEN, allow_private_crawl=True)
    app = create_admin(settings, core=core, runners={JobKind.crawl: lambda job, progress: {}})
    with TestClient(app) as client:
        resp = client.post("/crawls", headers=AUTH, json={"url": "http://127.0.0.1:9/", "source": "local"})
        assert resp.status_code == 202, resp.text
        assert resp.json()["source"] == "local"
