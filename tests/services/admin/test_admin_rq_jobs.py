"""Catalog jobs on a real local redis-server (RQ): the admin API enqueues, a queue worker runs
the same job body and updates the same job table; jobs a lost worker left are not lost."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from admin_helpers import AUTH, TOKEN, color_feed
from fastapi.testclient import TestClient

from catalog_ingest.jobs import AdminSettings
from fittingroom.catalog.jobs import JobKind, JobRecord, JobStatus
from fittingroom.catalog.store import open_store
from fittingroom.settings import CoreSettings
from services.admin.app import create_app

rq = pytest.importorskip("rq", reason="rq not installed: pip install 'fittingroom[distributed]'")


def test_an_ingest_job_enqueued_by_the_admin_api_runs_on_an_rq_worker(tmp_path: Path, redis_url: str) -> None:
    from redis import Redis

    from crawler.job_queue import JobsSettings, WorkerRuntime, set_worker_runtime
    from crawler.jobs import default_runners
    from tests.services.retrieval.retrieval_fakes import ColorEncoder

    core = CoreSettings(home=tmp_path / "home")
    admin = AdminSettings(token=TOKEN, image_roots=[tmp_path / "img"])
    jobs = JobsSettings(backend="rq", redis_url=redis_url, queue="catalog-test")
    app = create_app(admin, core=core, encoder=ColorEncoder(), annotators=False, jobs_settings=jobs)
    feed = color_feed(tmp_path / "img", [("R1", "red"), ("G1", "green"), ("B1", "blue")], bad=True)
    with TestClient(app) as client:
        resp = client.post("/feeds", headers=AUTH, data={"source": "shop"}, files={"file": ("s.jsonl", feed)})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        time.sleep(0.3)
        assert client.get(f"/jobs/{job_id}", headers=AUTH).json()["status"] == "queued"  # no thread ran it
        connection = Redis.from_url(redis_url)
        assert rq.Queue("catalog-test", connection=connection).job_ids == [job_id]

        # the worker side: its own store connection and the default job bodies
        worker_store = open_store(core.resolved_store_uri)
        set_worker_runtime(
            WorkerRuntime(
                worker_store,
                default_runners(worker_store, core, admin, encoder=ColorEncoder(), annotators=False),
            )
        )
        try:
            t0 = time.monotonic()
            assert rq.SimpleWorker(["catalog-test"], connection=connection).work(burst=True)
            seconds = time.monotonic() - t0
        finally:
            set_worker_runtime(None)
            worker_store.close()
        print(f"\nrq burst worker ran a 3-product ingest job in {seconds:.2f} s")

        done = client.get(f"/jobs/{job_id}", headers=AUTH).json()
        assert done["status"] == "done", done["error"]
        assert (done["done"], done["total"], done["progress"]) == (3, 3, 1.0)
        assert (done["report"]["new"], done["report"]["updated"]) == (3, 0)
        assert sorted(b["line"] for b in done["report"]["bad_rows"]) == [2, 3]
        assert rq.job.Job.fetch(job_id, connection=connection).return_value() == "done"
        row = client.get("/sources", headers=AUTH).json()["sources"][0]
        assert {k: row[k] for k in ("name", "products")} == {"name": "shop", "products": 3}
        assert (row["images"], row["index"]["vectors"], row["index_freshness"]) == (3, 3, "fresh")


def test_recovery_on_rq_fails_lost_running_jobs_and_requeues_lost_queued_ones(
    tmp_path: Path, redis_url: str
) -> None:
    from redis import Redis

    from crawler.job_queue import WORKER_LOST, JobsSettings, RqJobQueue

    connection = Redis.from_url(redis_url)
    settings = JobsSettings(backend="rq", redis_url=redis_url, queue="recover-test")
    with open_store(f"sqlite:///{tmp_path / 'c.db'}") as store:
        running = JobRecord(kind=JobKind.ingest, source="a", status=JobStatus.running)
        queued = JobRecord(kind=JobKind.ingest, source="b")
        store.save_job(running)
        store.save_job(queued)
        q = RqJobQueue(store, settings, {JobKind.ingest}, connection=connection)
        failed = q.start()
        assert [j.id for j in failed] == [running.id]
        assert store.get_job(running.id).status is JobStatus.failed
        assert store.get_job(running.id).error == WORKER_LOST
        assert rq.Queue("recover-test", connection=connection).job_ids == [queued.id]
        q.recover()  # a second start-up enqueues nothing twice
        assert rq.Queue("recover-test", connection=connection).job_ids == [queued.id]
        with pytest.raises(ValueError, match="no runner"):
            q.submit(JobKind.crawl, "c")


def test_jobs_worker_command_runs_the_queue_in_burst_mode(tmp_path: Path, redis_url: str) -> None:
    """``fittingroom jobs worker --burst`` over an empty queue: reaches Redis, opens the store, exits 0;
    an unreachable Redis is one error line and exit status 2."""
    import os
    import sys

    env = dict(os.environ, FITTINGROOM_HOME=str(tmp_path / "home"), FITTINGROOM_JOBS_REDIS_URL=redis_url)
    cmd = [sys.executable, "-m", "fittingroom.cli", "jobs", "worker", "--burst"]
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert (tmp_path / "home" / "catalog.db").exists()
    bad = subprocess.run(
        [*cmd, "--redis-url", "redis://127.0.0.1:1/0"], env=env, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "cannot reach Redis" in bad.stderr
