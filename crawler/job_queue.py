"""Catalog jobs on a Redis queue (RQ), for scale-out: the same job bodies and job table.

With ``FITTINGROOM_JOBS_BACKEND=rq`` the admin API saves each job in the catalog store's job
table (``queued``) and enqueues ``run_queued_job(job_id)`` on the RQ queue
``FITTINGROOM_JOBS_QUEUE`` at ``FITTINGROOM_JOBS_REDIS_URL``; any number of ``fittingroom jobs
worker`` (or plain ``rq worker QUEUE``) processes, with the same home / store settings, take
the jobs and run them with ``catalog_ingest.jobs.run_job`` (``running`` with progress, then
``done`` with the report or ``failed``), exactly as the serving process's thread does. A worker's
index is written where the serving process reads it; the retrieval service picks the new
generation up on its next check (``RETRIEVAL_INDEX_RELOAD_S``).

``RqJobQueue.recover`` (at admin start-up) re-enqueues store jobs still ``queued`` that Redis
no longer has and fails ``running`` ones whose RQ job is gone or ended (a worker died): no job is
lost or left running forever.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from catalog_ingest.jobs import JobRunner, run_job
from fittingroom.catalog.jobs import JobKind, JobRecord, JobStatus
from fittingroom.catalog.models import utcnow

if TYPE_CHECKING:
    from fittingroom.catalog.store import CatalogStore

log = logging.getLogger(__name__)

WORKER_LOST = "its queue worker stopped before the job ended"


class JobsSettings(BaseSettings):
    """Where catalog jobs run (env prefix ``FITTINGROOM_JOBS_``)."""

    model_config = SettingsConfigDict(env_prefix="FITTINGROOM_JOBS_", env_file=".env", extra="ignore")

    backend: Literal["thread", "rq"] = Field(
        default="thread",
        description="'thread': jobs run in the serving process's background thread; 'rq': they are "
        "enqueued on Redis and run by `fittingroom jobs worker` processes (pip install 'fittingroom[distributed]').",
    )
    redis_url: str = Field(default="redis://localhost:6379/0", description="Redis of the 'rq' job queue.")
    queue: str = Field(default="fittingroom-catalog", description="RQ queue name of catalog jobs.")
    job_timeout_s: int = Field(
        default=4 * 3600, ge=1, description="RQ kills a catalog job running longer than this (seconds)."
    )


def redis_connection(url: str) -> Any:
    """A Redis client of ``url`` (raises ModuleNotFoundError naming the extra when rq is absent)."""
    try:
        import rq  # noqa: F401
        from redis import Redis
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "FITTINGROOM_JOBS_BACKEND=rq needs rq: pip install 'fittingroom[distributed]'"
        ) from exc
    return Redis.from_url(url)


class RqJobQueue:
    """The admin API's job submitter on RQ: ``submit`` / ``start`` / ``stop`` like ``JobWorker``."""

    def __init__(
        self, store: CatalogStore, settings: JobsSettings, kinds: set[JobKind], connection: Any = None
    ) -> None:
        from rq import Queue

        self.store = store
        self.settings = settings
        self.kinds = set(kinds)
        self.connection = connection if connection is not None else redis_connection(settings.redis_url)
        self.queue = Queue(settings.queue, connection=self.connection)

    def submit(
        self, kind: JobKind, source: str, params: dict[str, Any] | None = None, job_id: str | None = None
    ) -> JobRecord:
        """Save a new queued job and enqueue it. Raises ValueError for an unknown kind."""
        if kind not in self.kinds:
            raise ValueError(f"no runner for {kind} jobs")
        job = JobRecord(kind=kind, source=source, params=params or {})
        if job_id is not None:
            job.id = job_id
        self.store.save_job(job)
        self._enqueue(job.id)
        return job

    def _enqueue(self, job_id: str) -> None:
        self.queue.enqueue_call(
            run_queued_job,
            args=(job_id,),
            job_id=job_id,
            timeout=self.settings.job_timeout_s,
            result_ttl=24 * 3600,
            failure_ttl=7 * 24 * 3600,
            description=f"catalog job {job_id}",
        )

    def recover(self) -> list[JobRecord]:
        """Re-enqueue ``queued`` store jobs Redis lost; fail ``running`` ones whose RQ job is gone
        or ended without saving (see the module docstring). Returns the jobs marked failed."""
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        def rq_status(job_id: str) -> str | None:
            try:
                return str(Job.fetch(job_id, connection=self.connection).get_status())
            except NoSuchJobError:
                return None

        failed = []
        for job in self.store.list_jobs(limit=10_000, statuses=[JobStatus.running.value]):
            if rq_status(job.id) in (None, "finished", "failed", "stopped", "canceled"):
                job.status, job.error, job.finished_at = JobStatus.failed, WORKER_LOST, utcnow()
                self.store.save_job(job)
                failed.append(job)
        for job in reversed(self.store.list_jobs(limit=10_000, statuses=[JobStatus.queued.value])):
            if rq_status(job.id) is None:
                self._enqueue(job.id)
        return failed

    def start(self) -> list[JobRecord]:
        return self.recover()

    def stop(self, timeout: float = 30.0) -> None:
        self.connection.close()


# ---- the worker side -------------------------------------------------------------------------
@dataclass
class WorkerRuntime:
    """What a queue worker process runs jobs with: the store and the job bodies."""

    store: CatalogStore
    runners: Mapping[JobKind, JobRunner]


_runtime: WorkerRuntime | None = None
_runtime_lock = threading.Lock()


def set_worker_runtime(runtime: WorkerRuntime | None) -> None:
    """Use ``runtime`` for the jobs this process runs (``fittingroom jobs worker``, tests);
    None: build it from settings on the next job."""
    global _runtime
    with _runtime_lock:
        _runtime = runtime


def worker_runtime() -> WorkerRuntime:
    """This process's runtime: the one set, else the store and job bodies the settings name
    (``crawler.jobs.default_runners``), built once."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            from catalog_ingest.jobs import AdminSettings
            from crawler.jobs import default_runners
            from fittingroom.catalog.store import open_store
            from fittingroom.settings import get_settings

            core = get_settings()
            store = open_store(core.resolved_store_uri)
            _runtime = WorkerRuntime(store, default_runners(store, core, AdminSettings()))
        return _runtime


def run_queued_job(job_id: str) -> str | None:
    """The RQ task: run the catalog job ``job_id`` of the store (when it is still ``queued``).
    Returns its final status, or None when there was nothing to run (unknown or taken)."""
    rt = worker_runtime()
    job = rt.store.get_job(job_id)
    if job is None or job.status is not JobStatus.queued:
        log.warning("catalog job %s: nothing to run (%s)", job_id, "unknown" if job is None else job.status)
        return None
    return run_job(rt.store, rt.runners, job).status.value
