"""The catalog job worker: persistent job table, progress, reports, restart recovery, preview."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from ingest_fakes import PixelStatsEncoder, RecordingSync, gmc_records, write_jsonl

from catalog_ingest.jobs import (
    INTERRUPTED,
    JobFailed,
    JobWorker,
    delete_source_runner,
    ingest_runner,
    preview_feed,
)
from fittingroom.catalog.jobs import JobKind, JobRecord, JobStatus
from fittingroom.catalog.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteStore(tmp_path / "catalog.db")
    yield s
    s.close()


def runners(store: SQLiteStore, tmp_path: Path, sync: RecordingSync) -> dict:
    enc = PixelStatsEncoder()
    return {
        JobKind.ingest: ingest_runner(
            store,
            lambda: enc,
            index_dir=tmp_path / "index",
            image_cache=tmp_path / "cache",
            image_roots=[tmp_path],
            sync=sync,
        ),
        JobKind.delete_source: delete_source_runner(
            store, lambda: enc.name, index_dir=tmp_path / "index", sync=sync
        ),
    }


def absolute_feed(tmp_path: Path, n: int, name: str = "shop.jsonl", bad: bool = False) -> Path:
    records = gmc_records(n, tmp_path / "img")
    for r in records:  # uploaded feeds have no folder of their own: absolute paths in an image root
        r["image_link"] = str(tmp_path / r["image_link"])
        r["additional_image_link"] = ",".join(
            str(tmp_path / p) for p in r["additional_image_link"].split(",")
        )
    rows: list = list(records)
    if bad:
        rows.insert(1, "{not json")
        rows.append({"id": "NOTITLE", "image_link": records[0]["image_link"]})
    return write_jsonl(tmp_path / name, rows)


def test_ingest_job_runs_in_the_background_and_keeps_its_report(store: SQLiteStore, tmp_path: Path) -> None:
    sync = RecordingSync()
    worker = JobWorker(store, runners(store, tmp_path, sync), progress_every_s=0)
    worker.start()
    try:
        job = worker.submit(JobKind.ingest, "shop", {"feed": str(absolute_feed(tmp_path, 4, bad=True))})
        assert store.get_job(job.id) is not None
        assert worker.wait_idle(60)
    finally:
        worker.stop()
    got = store.get_job(job.id)
    assert got is not None
    assert got.status is JobStatus.done, got.error
    assert (got.done, got.total) == (4, 4)
    assert got.report is not None
    assert got.report["new"] == 4 and got.report["unchanged"] == 0
    lines = sorted((b["line"], b["reason"]) for b in got.report["bad_rows"])
    assert [line for line, _ in lines] == [2, 6]
    assert all(b["file"] == "shop.jsonl" for b in got.report["bad_rows"])
    assert got.started_at is not None and got.finished_at is not None
    assert store.count_products("shop") == 4
    assert sync.index_ids == store.embedding_ids(PixelStatsEncoder.name) and sync.index_ids


def test_second_run_is_unchanged_and_delete_source_empties_it(store: SQLiteStore, tmp_path: Path) -> None:
    sync = RecordingSync()
    worker = JobWorker(store, runners(store, tmp_path, sync), progress_every_s=0)
    worker.start()
    try:
        feed = str(absolute_feed(tmp_path, 3))
        first = worker.submit(JobKind.ingest, "shop", {"feed": feed})
        second = worker.submit(JobKind.ingest, "shop", {"feed": feed})
        other = worker.submit(JobKind.ingest, "other", {"feed": feed})
        assert worker.wait_idle(60)
        assert store.source_counts() == {"other": 3, "shop": 3}
        gone = worker.submit(JobKind.delete_source, "shop")
        assert worker.wait_idle(60)
    finally:
        worker.stop()
    assert store.get_job(first.id).report["new"] == 3  # type: ignore[union-attr]
    assert store.get_job(second.id).report["unchanged"] == 3  # type: ignore[union-attr]
    assert store.get_job(other.id).status is JobStatus.done  # type: ignore[union-attr]
    done = store.get_job(gone.id)
    assert done is not None and done.status is JobStatus.done
    assert done.report == {"source": "shop", "deleted": 3, "index_vectors": 6}
    assert store.source_counts() == {"other": 3}
    assert sync.index_ids == store.embedding_ids(PixelStatsEncoder.name)
    assert [j.id for j in store.list_jobs()][:1] == [gone.id]


def test_a_missing_feed_or_bad_mapping_fails_the_job_with_a_reason(
    store: SQLiteStore, tmp_path: Path
) -> None:
    worker = JobWorker(store, runners(store, tmp_path, RecordingSync()), progress_every_s=0)
    worker.start()
    try:
        missing = worker.submit(JobKind.ingest, "shop", {"feed": str(tmp_path / "nope.csv")})
        badmap = worker.submit(
            JobKind.ingest, "shop", {"feed": str(absolute_feed(tmp_path, 1)), "mapping": ["x=nonsense"]}
        )
        assert worker.wait_idle(60)
    finally:
        worker.stop()
    m = store.get_job(missing.id)
    assert m is not None and m.status is JobStatus.failed and "not found" in (m.error or "")
    b = store.get_job(badmap.id)
    assert b is not None and b.status is JobStatus.failed and "nonsense" in (b.error or "")
    assert store.count_products() == 0


def test_a_job_body_crash_fails_only_that_job(store: SQLiteStore) -> None:
    def boom(job: JobRecord, progress) -> dict:
        if job.source == "bad":
            raise RuntimeError("disk on fire")
        if job.source == "partial":
            raise JobFailed("stopped", {"new": 1})
        return {"ok": True}

    worker = JobWorker(store, {JobKind.ingest: boom})
    worker.start()
    try:
        jobs = [worker.submit(JobKind.ingest, s) for s in ("bad", "partial", "good")]
        assert worker.wait_idle(10)
    finally:
        worker.stop()
    bad, partial, good = (store.get_job(j.id) for j in jobs)
    assert bad is not None and bad.status is JobStatus.failed and bad.error == "RuntimeError: disk on fire"
    assert partial is not None and partial.error == "stopped" and partial.report == {"new": 1}
    assert good is not None and good.status is JobStatus.done and good.report == {"ok": True}
    with pytest.raises(ValueError, match="no runner"):
        worker.submit(JobKind.delete_source, "x")


def test_restart_marks_running_jobs_failed_and_runs_queued_ones(tmp_path: Path) -> None:
    # a first process starts a job that never ends, then dies (its worker thread is simply dropped)
    release = threading.Event()
    started = threading.Event()

    def slow(job: JobRecord, progress) -> dict:
        started.set()
        release.wait(10)
        return {}

    first = SQLiteStore(tmp_path / "catalog.db")
    dead = JobWorker(first, {JobKind.ingest: slow})
    dead.start()
    running = dead.submit(JobKind.ingest, "a")
    assert started.wait(10)
    queued = JobRecord(kind=JobKind.ingest, source="b")
    first.save_job(queued)  # queued by the dead process, never picked up
    assert first.get_job(running.id).status is JobStatus.running  # type: ignore[union-attr]

    second = SQLiteStore(tmp_path / "catalog.db")
    ran: list[str] = []
    worker = JobWorker(second, {JobKind.ingest: lambda job, progress: ran.append(job.source) or {"ok": 1}})
    failed = worker.start()
    try:
        assert [j.id for j in failed] == [running.id]
        assert worker.wait_idle(10)
        interrupted = second.get_job(running.id)  # read while the "dead" one still hangs
    finally:
        worker.stop()
        release.set()
        dead.stop()
        first.close()
    assert interrupted is not None and interrupted.status is JobStatus.failed
    assert interrupted.error == INTERRUPTED and interrupted.finished_at is not None
    assert ran == ["b"]
    assert second.get_job(queued.id).status is JobStatus.done  # type: ignore[union-attr]
    second.close()


def test_preview_shows_the_mapping_and_the_first_bad_rows(tmp_path: Path) -> None:
    feed = tmp_path / "shop.csv"
    feed.write_text(
        "sku,name,cost,picture\n"
        "A1,Blue Tee,10.00 USD,https://cdn.example/a.jpg\n"
        "A2,,12.00 USD,https://cdn.example/b.jpg\n"
        "A3,Red Tee,twelve,https://cdn.example/c.jpg\n"
        "A4,Green Tee,9 USD,https://cdn.example/d.jpg\n"
    )
    out = preview_feed(
        feed, source="shop", mapping=["sku=id", "name=title", "cost=price", "picture=image_link"]
    )
    assert out["format"] == "csv"
    assert out["columns"] == ["sku", "name", "cost", "picture"]
    assert out["mapping"]["sku"] == "id" and out["mapping"]["picture"] == "image_link"
    assert out["rows_read"] == 4 and out["products"] == 2
    assert [(b["line"], b["id"]) for b in out["bad_rows"]] == [(3, "A2"), (4, "A3")]
    assert "title" in out["bad_rows"][0]["reason"]
    assert [s["id"] for s in out["sample"]] == ["A1", "A4"]
    assert store_untouched(tmp_path)


def store_untouched(tmp_path: Path) -> bool:
    return not (tmp_path / "catalog.db").exists()
