"""Catalog jobs run in the serving process: ingest an uploaded feed, delete a source.

``JobWorker`` keeps the job table in the catalog store (``CatalogStore.save_job``) and runs
the jobs one at a time in one background thread, in submission order (one writer: ingest
batches and index syncs never interleave). A job moves ``queued -> running -> done |
failed``; progress (products done / total) is saved at most every ``progress_every_s``
seconds. On start-up, jobs a dead process left ``running`` are marked failed ("interrupted
by a restart") and ``queued`` ones are queued again, so no job is lost.

``ingest_runner`` / ``delete_source_runner`` are the job bodies (``catalog_ingest.runner`` and
``fittingroom.index.sync_index`` do the work); ``preview_feed`` reads the first rows of a feed
and says how they would map, without writing anything.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from catalog_ingest.mapper import CANONICAL_FIELDS, FeedMapper, FieldMapping
from catalog_ingest.readers import FeedError, read_feed
from catalog_ingest.runner import IngestAborted, IngestInterrupted, validate_source
from fittingroom.catalog.jobs import JobKind, JobRecord, JobStatus
from fittingroom.catalog.models import utcnow

if TYPE_CHECKING:
    from catalog_ingest.annotators import ImageAnnotator
    from catalog_ingest.images import ImageFetcher
    from fittingroom.catalog.store import CatalogStore
    from fittingroom.models.encoders.base import Encoder
    from fittingroom.settings import CoreSettings

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted by a restart"


class AdminSettings(BaseSettings):
    """Settings of the catalog admin API (env prefix ``FITTINGROOM_ADMIN_``)."""

    model_config = SettingsConfigDict(env_prefix="FITTINGROOM_ADMIN_", env_file=".env", extra="ignore")

    token: SecretStr | None = Field(
        default=None,
        description="Bearer token of the admin API (/api/admin). Unset = the admin routes are off (404).",
    )
    max_feed_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1, description="Largest feed upload, bytes (413 past it)."
    )
    feeds_dir: Path | None = Field(
        default=None, description="Folder uploaded feeds are kept in (default: home/feeds)."
    )
    image_roots: list[Path] = Field(
        default_factory=list,
        description="Folders that local image paths of uploaded feeds may lie in (JSON list; "
        "default none: only http(s) images).",
    )
    preview_rows: int = Field(default=200, ge=1, description="Rows the feed preview reads.")
    crawl_max_pages: int = Field(
        default=500,
        ge=1,
        description="Most pages a crawl started from the admin API may fetch (its default).",
    )
    crawl_max_depth: int = Field(
        default=8,
        ge=1,
        description="Deepest link depth a crawl started from the admin API may go (its default).",
    )
    crawl_timeout_s: float = Field(
        default=3600.0,
        gt=0,
        description="A crawl job's crawl is stopped (the job fails) after this many seconds.",
    )
    allow_private_crawl: bool = Field(
        default=False,
        description="Let crawls start at private / loopback addresses and fetch images from them "
        "(development, tests). Off: such start URLs are refused (422).",
    )

    def resolved_feeds_dir(self, core: CoreSettings) -> Path:
        return self.feeds_dir or core.home / "feeds"

    def token_value(self) -> str | None:
        """The token, or None when unset or empty (admin off)."""
        value = self.token.get_secret_value() if self.token is not None else ""
        return value or None


class JobFailed(Exception):
    """A job body's failure: ``message`` is the job's error, ``report`` what was done before it."""

    def __init__(self, message: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.report = report


class Progress(Protocol):
    """``progress(done, total, detail=None)``: a job body calls it as it goes; ``detail`` (a
    JSON object) is shown as the job's report while it runs."""

    def __call__(self, done: int, total: int | None, detail: dict[str, Any] | None = None, /) -> None: ...


#: A job body: runs the job, returns its report (a JSON object) or raises JobFailed.
JobRunner = Callable[[JobRecord, Progress], dict[str, Any] | None]


class JobWorker:
    """Runs catalog jobs in one background thread; the job table lives in ``store``.

    ``runners`` maps each job kind to its body. Thread-safe. ``start()`` recovers what a dead
    process left (see the module docstring) and starts the thread; ``stop()`` lets the job in
    flight finish (bounded by ``timeout``) and stops.
    """

    def __init__(
        self,
        store: CatalogStore,
        runners: Mapping[JobKind, JobRunner],
        *,
        progress_every_s: float = 0.5,
        on_finished: Callable[[JobRecord], None] | None = None,
    ) -> None:
        self.store = store
        self.runners = dict(runners)
        self.progress_every_s = progress_every_s
        self.on_finished = on_finished
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()

    # ---- lifecycle --------------------------------------------------------------------
    def recover(self) -> list[JobRecord]:
        """Mark jobs left ``running`` failed (interrupted by a restart); queue ``queued`` ones
        again (oldest first). Returns the jobs marked failed."""
        failed = []
        for job in self.store.list_jobs(limit=10_000, statuses=[JobStatus.running.value]):
            job.status, job.error, job.finished_at = JobStatus.failed, INTERRUPTED, utcnow()
            self.store.save_job(job)
            failed.append(job)
        for job in reversed(self.store.list_jobs(limit=10_000, statuses=[JobStatus.queued.value])):
            self._enqueue(job.id)
        if failed:
            log.warning("%d catalog job(s) were %s", len(failed), INTERRUPTED)
        return failed

    def start(self) -> list[JobRecord]:
        """Recover, then start the worker thread. Returns the jobs marked interrupted."""
        failed = self.recover()
        self._thread = threading.Thread(target=self._loop, name="catalog-jobs", daemon=True)
        self._thread.start()
        return failed

    def stop(self, timeout: float = 30.0) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # ---- jobs ---------------------------------------------------------------------------
    def submit(
        self, kind: JobKind, source: str, params: dict[str, Any] | None = None, job_id: str | None = None
    ) -> JobRecord:
        """Save a new queued job (id ``job_id`` or a new one) and queue it. Raises ValueError for a
        kind without a runner."""
        if kind not in self.runners:
            raise ValueError(f"no runner for {kind} jobs")
        job = JobRecord(kind=kind, source=source, params=params or {})
        if job_id is not None:
            job.id = job_id
        self.store.save_job(job)
        self._enqueue(job.id)
        return job

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no job is queued or running (tests). False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._idle.wait(0.05) and self._queue.unfinished_tasks == 0:
                return True
        return False

    def _enqueue(self, job_id: str) -> None:
        self._idle.clear()
        self._queue.put(job_id)

    def _loop(self) -> None:
        while True:
            job_id = self._queue.get()
            try:
                if job_id is None:
                    return
                job = self.store.get_job(job_id)
                if job is not None and job.status is JobStatus.queued:
                    self._run(job)
            except Exception:  # the store failed: keep serving the next jobs
                log.exception("catalog job %s could not be run", job_id)
            finally:
                self._queue.task_done()
                if self._queue.unfinished_tasks == 0:
                    self._idle.set()

    def _run(self, job: JobRecord) -> None:
        run_job(self.store, self.runners, job, progress_every_s=self.progress_every_s)
        if self.on_finished is not None:
            try:
                self.on_finished(job)
            except Exception:
                log.exception("on_finished of job %s failed", job.id)


def run_job(
    store: CatalogStore,
    runners: Mapping[JobKind, JobRunner],
    job: JobRecord,
    *,
    progress_every_s: float = 0.5,
) -> JobRecord:
    """Run one queued ``job`` with its kind's body, keeping its record in ``store`` up to date:
    ``running`` (progress saved at most every ``progress_every_s`` s), then ``done`` with the
    body's report or ``failed`` with the error. The same code runs in the serving process's
    ``JobWorker`` and in a queue worker (``catalog_ingest.queue``). Never raises for a failing
    body (the store's own errors propagate). Returns the job as saved."""
    job.status, job.started_at = JobStatus.running, utcnow()
    store.save_job(job)
    last = 0.0

    def progress(done: int, total: int | None, detail: dict[str, Any] | None = None) -> None:
        nonlocal last
        job.done, job.total = done, total
        if detail is not None:
            job.report = detail
        now = time.monotonic()
        if now - last >= progress_every_s:
            last = now
            store.save_job(job)

    try:
        runner = runners.get(job.kind)
        if runner is None:
            raise JobFailed(f"this worker has no runner for {job.kind} jobs")
        job.report = runner(job, progress)
        job.status = JobStatus.done
    except JobFailed as exc:
        job.status, job.error, job.report = JobStatus.failed, str(exc), exc.report
    except (Exception, KeyboardInterrupt) as exc:
        log.exception("catalog job %s failed", job.id)
        job.status, job.error = JobStatus.failed, f"{type(exc).__name__}: {exc}"
    job.finished_at = utcnow()
    store.save_job(job)
    log.info("catalog job %s (%s %s) %s", job.id, job.kind, job.source, job.status)
    return job


# ---- job bodies -----------------------------------------------------------------------------
def ingest_runner(
    store: CatalogStore,
    encoder: Callable[[], Encoder],
    *,
    index_dir: Path,
    image_cache: Path,
    image_roots: Sequence[Path] = (),
    annotators: Callable[[], Sequence[ImageAnnotator]] = tuple,
    fetcher: Callable[[], ImageFetcher] | None = None,
    sync: Any = None,
    allow_private: bool = False,
) -> JobRunner:
    """The body of ``ingest`` jobs: ``ingest_feed`` of ``job.params['feed']`` (a path) with the
    job's ``mapping`` (``--map`` values), ``format`` and ``prune``; the index is synced.

    ``encoder`` / ``annotators`` / ``fetcher`` are factories called when a job runs (the models
    load on the first job, not at start-up). ``sync`` replaces the index sync (tests);
    ``allow_private``: images may come from private / loopback hosts (crawls of such shops).
    """
    from catalog_ingest.runner import ingest_feed
    from catalog_ingest.writer import default_index_sync

    def run(job: JobRecord, progress: Progress) -> dict[str, Any]:
        params = job.params
        feed = Path(params["feed"])
        try:
            mapping = FieldMapping.parse(list(params.get("mapping") or []))
        except ValueError as exc:
            raise JobFailed(str(exc)) from exc
        own = None
        if fetcher is not None:
            own = fetcher()
        else:
            from catalog_ingest.images import ImageFetcher

            own = ImageFetcher(
                image_cache, base_dir=None, local_roots=list(image_roots), allow_private=allow_private
            )
        try:
            report = ingest_feed(
                feed,
                store=store,
                encoder=encoder(),
                source=job.source,
                mapping=mapping,
                feed_format=params.get("format"),
                prune=bool(params.get("prune", False)),
                annotators=annotators(),
                fetcher=own,
                index_dir=index_dir,
                sync=sync or default_index_sync,
                progress=False,
                on_progress=progress,
            )
        except (IngestAborted, IngestInterrupted) as exc:
            raise JobFailed(_hide_path(str(exc), feed), _relabel(exc.report.to_dict(), feed)) from exc
        except (FeedError, ValueError) as exc:
            raise JobFailed(_hide_path(str(exc), feed)) from exc
        finally:
            own.close()
        return _relabel(report.to_dict(), feed)

    return run


def _hide_path(text: str, feed: Path) -> str:
    """Messages name the feed by its file name, never by where the server keeps it."""
    return text.replace(str(feed), feed.name)


def _relabel(report: dict[str, Any], feed: Path) -> dict[str, Any]:
    report["feed"] = feed.name
    for bad in report.get("bad_rows", []):
        bad["file"] = _hide_path(str(bad["file"]), feed)
    if report.get("error"):
        report["error"] = _hide_path(str(report["error"]), feed)
    return report


def delete_source_runner(
    store: CatalogStore, encoder_name: Callable[[], str], *, index_dir: Path, sync: Any = None
) -> JobRunner:
    """The body of ``delete_source`` jobs: delete every product of ``job.source`` (their
    embeddings go with them), then sync the index. The report: ``{"deleted": N, "index": ...}``."""

    def run(job: JobRecord, progress: Progress) -> dict[str, Any]:
        keys = sorted(store.product_keys(job.source))
        progress(0, len(keys))
        deleted = store.delete_products(keys) if keys else 0
        progress(len(keys), len(keys))
        if sync is not None:
            result = sync(store, encoder_name(), index_dir)
        else:
            from fittingroom.index import sync_index

            result = sync_index(store, encoder_name(), index_dir)
        count = getattr(result, "count", None)
        if count is None and isinstance(result, dict):
            count = result.get("count")
        return {"source": job.source, "deleted": deleted, "index_vectors": count}

    return run


def seen_keys(job: JobRecord, crawl_dir: Path) -> set[tuple[str, str]]:
    """The product keys the successful ingest or crawl ``job`` saw: its feed (an upload's kept
    file, a crawl's kept ``crawl_dir/{id}.jsonl``) read and mapped again, as the ingest
    did (same mapping and format). Raises JobFailed when the feed is gone or yields no product."""
    fmt: str | None = "jsonl"
    specs: list[str] = []
    if job.kind is JobKind.crawl:
        feed = crawl_dir / f"{job.id}.jsonl"
    else:
        feed, fmt = Path(job.params["feed"]), job.params.get("format")
        specs = list(job.params.get("mapping") or [])
    if not feed.is_file():
        raise JobFailed(f"the feed of job {job.id} is no longer kept: nothing to prune against")
    records = list(read_feed(feed, fmt, on_error=lambda _err: None))
    drafts, _issues = FeedMapper(job.source, FieldMapping.parse(specs)).map_records(records)
    if not drafts:
        raise JobFailed(f"the feed of job {job.id} yields no product: nothing pruned")
    return {(d.product.source, d.product.id) for d in drafts}


def prune_runner(
    store: CatalogStore,
    encoder_name: Callable[[], str],
    *,
    index_dir: Path,
    crawl_dir: Path,
    sync: Any = None,
) -> JobRunner:
    """The body of ``prune`` jobs: delete the products of ``job.source`` its last successful
    ingest or crawl did not see (``seen_keys``; what ``ingest_feed(prune=True)`` deletes), then
    sync the index. The report: ``{"source", "against": job id, "seen", "deleted", "index_vectors"}``."""

    def run(job: JobRecord, progress: Progress) -> dict[str, Any]:
        done = store.list_jobs(limit=10_000, statuses=[JobStatus.done.value])
        last = next(
            (j for j in done if j.source == job.source and j.kind in (JobKind.ingest, JobKind.crawl)), None
        )
        if last is None:
            raise JobFailed(f"source {job.source!r} has no successful ingest or crawl to prune against")
        seen = seen_keys(last, crawl_dir)
        gone = sorted(store.product_keys(job.source) - seen)
        progress(0, len(gone))
        deleted = store.delete_products(gone) if gone else 0
        progress(len(gone), len(gone))
        result = (sync or _sync_index)(store, encoder_name(), index_dir)
        count = getattr(result, "count", None)
        if count is None and isinstance(result, dict):
            count = result.get("count")
        return {
            "source": job.source,
            "against": last.id,
            "seen": len(seen),
            "deleted": deleted,
            "index_vectors": count,
        }

    return run


def _sync_index(store: CatalogStore, encoder_name: str, index_dir: Path) -> Any:
    from fittingroom.index import sync_index

    return sync_index(store, encoder_name, index_dir)


# ---- preview --------------------------------------------------------------------------------
def preview_feed(
    feed: Path,
    *,
    source: str,
    mapping: Sequence[str] = (),
    feed_format: str | None = None,
    rows: int = 200,
    bad_rows: int = 20,
) -> dict[str, Any]:
    """How the first ``rows`` records of ``feed`` map, without fetching images or writing.

    Returns ``{"source", "format", "preset", "columns": [feed field...], "mapping": {feed field:
    product field} (renamed or already a product field; other fields become attributes), "rows_read", "products", "bad_rows": [{"file", "line", "id", "reason"}...],
    "sample": [{"id", "title", "price", "currency", "brand", "images"}...]}``. Raises FeedError
    (file unreadable, no header), MappingError / ValueError (bad mapping or source name).
    """
    from catalog_ingest.readers import detect_format

    validate_source(source)
    field_mapping = FieldMapping.parse(list(mapping))
    bad: list[dict[str, Any]] = []
    unreadable = 0
    records: list[tuple[int, Mapping[str, Any]]] = []
    name = feed.name

    def on_error(err: FeedError) -> None:
        nonlocal unreadable
        unreadable += 1
        bad.append({"file": name, "line": err.line, "id": None, "reason": err.message})

    for line, record in read_feed(feed, feed_format, on_error=on_error):
        records.append((line, record))
        if len(records) >= rows:
            break
    first = records[0][1] if records else None
    columns: list[str] = list(dict.fromkeys(k for _, r in records for k in r))
    resolved = field_mapping.resolved(first)
    drafts, issues = FeedMapper(source, field_mapping).map_records(records)
    bad += [{"file": name, "line": i.line, "id": i.product_id, "reason": i.reason} for i in issues]
    bad.sort(key=lambda b: (b["line"] is None, b["line"] or 0))
    return {
        "source": source,
        "format": str(feed_format or detect_format(feed)),
        "preset": field_mapping.preset_for(first),
        "columns": columns,
        "mapping": {
            **{c: c for c in columns if c in CANONICAL_FIELDS and c not in resolved.values()},
            **{src: dst for src, dst in resolved.items() if src.split(".")[0] in columns},
        },
        "rows_read": len(records) + unreadable,
        "products": len(drafts),
        "bad_rows": bad[:bad_rows],
        "sample": [
            {
                "id": d.product.id,
                "title": d.product.title,
                "price": d.product.price,
                "currency": d.product.currency,
                "brand": d.product.brand,
                "images": len(d.images),
            }
            for d in drafts[:5]
        ],
    }
