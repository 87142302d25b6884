"""Retrieval sees catalog jobs without a restart: the all-in-one app with the real retrieval
service and the admin service on one store and index (fake colour encoder, real FAISS)."""

from __future__ import annotations

from pathlib import Path

from admin_helpers import AUTH, TOKEN, color_feed, wait_job
from fastapi.testclient import TestClient

from catalog_ingest.jobs import AdminSettings
from fittingroom.retrieval.settings import RetrievalSettings
from fittingroom.settings import CoreSettings
from services.admin.app import create_app as create_admin
from services.app import ServeSettings, create_app
from services.retrieval.app import create_app as create_retrieval


def uids(client: TestClient, text: str, source: str | None = None) -> list[str]:
    body: dict = {"text": text, "k": 20}
    if source:
        body["filters"] = {"source": source}
    resp = client.post("/api/retrieval/search", json=body)
    assert resp.status_code == 200, resp.text
    return [r["uid"] for r in resp.json()["results"]]


def test_ingest_and_delete_through_the_admin_api_show_in_search_without_a_restart(tmp_path: Path) -> None:
    from tests.services.retrieval.retrieval_fakes import ColorEncoder

    encoder = ColorEncoder()
    home = tmp_path / "home"  # an empty home: no catalog, no index yet
    core = CoreSettings(home=home)
    retrieval = RetrievalSettings(
        store_uri=core.resolved_store_uri,
        index_dir=core.resolved_index_dir,
        image_cache_dir=home / "images",
        index_reload_s=3600,  # no polling: only the end of a job can make it re-open the index
        warmup=False,
    )
    admin = AdminSettings(token=TOKEN, image_roots=[tmp_path / "img"])
    app = create_app(
        ServeSettings(frontend_dir=tmp_path / "no-page"),
        services={
            "admin": lambda: create_admin(admin, core=core, encoder=encoder, annotators=False),
            "retrieval": lambda: create_retrieval(retrieval, encoder=encoder),
        },
    )
    with TestClient(app) as client:
        health = client.get("/healthz").json()
        assert health["services"]["admin"]["started"] and health["services"]["retrieval"]["started"]
        assert client.post("/api/retrieval/search", json={"text": "red"}).status_code == 503  # no index yet
        assert client.get("/api/admin/healthz").json() == {"status": "ok", "enabled": True}
        assert client.get("/api/admin/jobs").status_code == 401  # the token rules hold under the mount
        assert client.get("/api/admin/docs").status_code == 200
        assert client.get("/readyz").json()["services"]["admin"]["ready"]

        feed = color_feed(tmp_path / "img", [("R1", "red"), ("G1", "green")])
        job = client.post(
            "/api/admin/feeds", headers=AUTH, data={"source": "shop"}, files={"file": ("s.jsonl", feed)}
        )
        assert job.status_code == 202
        assert wait_job_at(client, job.json()["id"])["status"] == "done"
        found = uids(client, "red")
        assert found[0] == "shop:R1" and set(found) == {"shop:R1", "shop:G1"}

        feed2 = color_feed(tmp_path / "img", [("B1", "blue")])
        job = client.post(
            "/api/admin/feeds", headers=AUTH, data={"source": "other"}, files={"file": ("o.jsonl", feed2)}
        )
        assert wait_job_at(client, job.json()["id"])["status"] == "done"
        assert uids(client, "blue")[0] == "other:B1"  # the new generation, no restart

        gone = client.delete("/api/admin/sources/shop", headers=AUTH)
        assert gone.status_code == 202
        assert wait_job_at(client, gone.json()["id"])["status"] == "done"
        assert uids(client, "red") == ["other:B1"]
        assert client.get("/api/retrieval/products/shop:R1").status_code == 404


def wait_job_at(client: TestClient, job_id: str) -> dict:
    class Prefixed:
        def get(self, path: str, **kw):  # noqa: ANN202 - a tiny adapter for wait_job
            return client.get("/api/admin" + path, **kw)

    return wait_job(Prefixed(), job_id)  # type: ignore[arg-type]
