"""The per-source dashboard and the prune of products a source's last run did not see, over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from admin_helpers import AUTH, color_feed, wait_job
from fastapi.testclient import TestClient


def upload(client: TestClient, source: str, feed: bytes) -> dict:
    resp = client.post("/feeds", headers=AUTH, data={"source": source}, files={"file": ("f.jsonl", feed)})
    assert resp.status_code == 202, resp.text
    done = wait_job(client, resp.json()["id"])
    assert done["status"] == "done", done["error"]
    return done


def without_link(feed: bytes) -> bytes:
    """The feed with the first product's shop link removed."""
    lines = feed.decode().splitlines()
    first = json.loads(lines[0])
    del first["link"]
    return ("\n".join([json.dumps(first), *lines[1:]]) + "\n").encode()


def test_dashboard_reports_each_source_with_the_index_generation(client: TestClient, tmp_path: Path) -> None:
    assert client.get("/sources/shop", headers=AUTH).status_code == 404
    items = [("R1", "red"), ("G1", "green"), ("B1", "blue")]
    job = upload(client, "shop", without_link(color_feed(tmp_path / "img", items)))
    upload(client, "other", color_feed(tmp_path / "img", [("R9", "red")]))
    rows = {s["name"]: s for s in client.get("/sources", headers=AUTH).json()["sources"]}
    assert list(rows) == ["other", "shop"]
    shop = rows["shop"]
    assert (shop["products"], shop["images"], shop["without_link"], shop["without_image"]) == (3, 3, 1, 0)
    # ingested without the eligibility classifier: no image is known to serve try-on
    assert (shop["tryon_able"], shop["tryon_share"]) == (0, 0.0)
    assert shop["last_job"]["id"] == job["id"]
    assert shop["index_freshness"] == "fresh"
    assert shop["index"]["vectors"] == 4 and shop["index"]["generation"] > 0
    assert client.get("/sources/shop", headers=AUTH).json() == shop
    # the next job moves the generation on
    upload(client, "shop", color_feed(tmp_path / "img", [*items, ("G2", "green")]))
    again = client.get("/sources/shop", headers=AUTH).json()
    assert again["index"]["generation"] != shop["index"]["generation"]
    assert (again["products"], again["without_link"], again["index"]["vectors"]) == (4, 0, 5)


def test_prune_removes_what_the_last_run_did_not_see(client: TestClient, tmp_path: Path) -> None:
    upload(client, "shop", color_feed(tmp_path / "img", [("R1", "red"), ("G1", "green"), ("B1", "blue")]))
    last = upload(client, "shop", color_feed(tmp_path / "img", [("R1", "red")]))  # no prune: 3 stay
    upload(client, "other", color_feed(tmp_path / "img", [("G9", "green")]))
    assert client.get("/sources/shop", headers=AUTH).json()["products"] == 3

    assert client.post("/sources/shop/prune", headers=AUTH, json={}).status_code == 422
    assert client.post("/sources/shop/prune", headers=AUTH, json={"confirm": "other"}).status_code == 422
    assert client.post("/sources/nope/prune", headers=AUTH, json={"confirm": "nope"}).status_code == 404
    assert client.get("/sources/shop", headers=AUTH).json()["products"] == 3  # nothing queued

    resp = client.post("/sources/shop/prune", headers=AUTH, json={"confirm": "shop"})
    assert resp.status_code == 202, resp.text
    done = wait_job(client, resp.json()["id"])
    assert done["status"] == "done" and done["kind"] == "prune", done["error"]
    assert done["report"] == {
        "source": "shop",
        "against": last["id"],
        "seen": 1,
        "deleted": 2,
        "index_vectors": 2,
    }
    rows = {s["name"]: s for s in client.get("/sources", headers=AUTH).json()["sources"]}
    assert (rows["shop"]["products"], rows["other"]["products"]) == (1, 1)
    assert rows["shop"]["index"]["vectors"] == 2 and rows["shop"]["index_freshness"] == "fresh"


def test_a_deleted_source_has_nothing_to_prune(client: TestClient, tmp_path: Path) -> None:
    upload(client, "shop", color_feed(tmp_path / "img", [("R1", "red")]))
    assert wait_job(client, client.delete("/sources/shop", headers=AUTH).json()["id"])["status"] == "done"
    resp = client.post("/sources/shop/prune", headers=AUTH, json={"confirm": "shop"})
    assert resp.status_code == 404


def test_freshness_compares_the_index_with_the_last_job() -> None:
    from datetime import UTC, datetime, timedelta

    from fittingroom.catalog.jobs import JobKind, JobRecord, JobStatus
    from fittingroom.catalog.store import SourceStats
    from fittingroom.index.storage import IndexState
    from services.admin.app import source_row

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    stats = SourceStats("shop", products=4, images=6, tryon_able=1, without_link=1, without_image=0)
    done = JobRecord(kind=JobKind.ingest, source="shop", status=JobStatus.done, started_at=t0)
    index = IndexState("enc", 1, t0 + timedelta(seconds=5), 6)
    row = source_row(stats, [done], index)
    assert (row.index_freshness, row.tryon_share, row.last_job and row.last_job.id) == (
        "fresh",
        0.25,
        done.id,
    )
    assert (
        source_row(stats, [done], IndexState("enc", 1, t0 - timedelta(seconds=5), 6)).index_freshness
        == "stale"
    )
    queued = JobRecord(kind=JobKind.prune, source="shop")
    assert source_row(stats, [queued, done], index).index_freshness == "pending"
    assert source_row(stats, [done], None).index_freshness == "no_index"
