"""Catalog admin service (FastAPI): upload feeds, watch jobs, list and delete sources.

Mounted by the all-in-one server at ``/api/admin``; run alone with ``uvicorn --factory
services.admin.app:create_app``. Every route but ``/healthz`` needs ``Authorization: Bearer
<FITTINGROOM_ADMIN_TOKEN>``: 404 when no token is configured (the admin API is off), 401
without a token, 403 with a wrong one (compared in constant time). The token is checked before
any body is read.

Endpoints: ``POST /feeds`` (multipart: file + source + mapping values + prune) -> 202 with the
ingest job; ``POST /feeds/preview`` (same form) -> the detected mapping and first bad rows;
``POST /crawls`` (JSON: url, max_pages, max_depth, source) -> 202 with the crawl job;
``GET /jobs``, ``GET /jobs/{id}``; ``GET /sources`` and ``GET /sources/{name}`` (the per-source
dashboard: products, images, try-on-able share, products without a link or an image, the index
generation and its freshness, the last job); ``DELETE /sources/{name}`` -> 202 with the deletion
job; ``POST /sources/{name}/prune`` (JSON ``{"confirm": name}``) -> 202 with a job deleting the
products the source's last successful ingest or crawl did not see. Jobs run in this process's background worker (``catalog_ingest.jobs``), or with
``FITTINGROOM_JOBS_BACKEND=rq`` in queue workers (``crawler.job_queue``); the retrieval service re-opens the index each job leaves behind.
"""

from __future__ import annotations

import hmac
import logging
import re
import shutil
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from catalog_ingest.jobs import AdminSettings, JobRunner, JobWorker, preview_feed
from catalog_ingest.mapper import FieldMapping, MappingError
from catalog_ingest.readers import FeedError
from catalog_ingest.runner import validate_source
from crawler.job_queue import JobsSettings, RqJobQueue
from crawler.jobs import check_crawl_target, default_runners, default_source
from fittingroom.catalog.jobs import JobKind, JobRecord, JobStatus, new_job_id
from fittingroom.catalog.store import CatalogStore, SourceStats
from fittingroom.fetch import Resolver
from fittingroom.index.storage import IndexState, index_state
from fittingroom.models.encoders.base import Encoder
from fittingroom.models.registry import ModelShelf, default_shelf
from fittingroom.settings import CoreSettings, get_settings
from services.admin.schemas import (
    CrawlIn,
    Health,
    IndexOut,
    JobList,
    JobOut,
    PreviewOut,
    PruneIn,
    SourceList,
    SourceOut,
)
from services.http import error_responses, guard

log = logging.getLogger(__name__)

SEEN_KINDS = (JobKind.ingest, JobKind.crawl)


def source_row(stats: SourceStats, jobs: list[JobRecord], index: IndexState | None) -> SourceOut:
    """The dashboard row of one source from its figures, its jobs (newest first) and the index."""
    freshness = "no_index"
    if any(not j.status.finished for j in jobs):
        freshness = "pending"
    elif index is not None:
        started = next((j.started_at for j in jobs if j.started_at is not None), None)
        freshness = "fresh" if started is None or index.written_at >= started else "stale"
    return SourceOut(
        name=stats.source,
        products=stats.products,
        images=stats.images,
        tryon_able=stats.tryon_able,
        tryon_share=None if stats.tryon_share is None else round(stats.tryon_share, 4),
        without_link=stats.without_link,
        without_image=stats.without_image,
        index=None if index is None else IndexOut(**vars(index)),
        index_freshness=freshness,
        last_job=JobOut.of(jobs[0]) if jobs else None,
    )


_ERRORS = error_responses(401, 403, 404, 413, 422)
FEED_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".csv.gz", ".tsv.gz", ".jsonl.gz", ".ndjson.gz")
OPEN_PATHS = ("/healthz",)
#: Open too while the admin API is on: the API description (Swagger's "Authorize" takes the token).
DOC_PATHS = ("/docs", "/docs/oauth2-redirect", "/openapi.json")


class AdminAuth:
    """ASGI middleware: the admin token rules (see the module docstring), before any body is read."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").removeprefix(scope.get("root_path", ""))
        if scope["type"] != "http" or path in OPEN_PATHS or (self.token is not None and path in DOC_PATHS):
            await self.app(scope, receive, send)
            return
        status, detail, headers = self._check(dict(scope.get("headers") or []).get(b"authorization", b""))
        if status is None:
            await self.app(scope, receive, send)
            return
        response = JSONResponse({"detail": detail}, status_code=status, headers=headers)
        await response(scope, receive, send)

    def _check(self, header: bytes) -> tuple[int | None, str, dict[str, str] | None]:
        if self.token is None:
            return 404, "Not Found", None
        scheme, _, given = header.partition(b" ")
        if scheme.lower() != b"bearer" or not given.strip():
            return (
                401,
                "the admin API needs an 'Authorization: Bearer <token>' header",
                {"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(given.strip(), self.token):
            return 403, "wrong admin token", None
        return None, "", None


def safe_feed_name(filename: str | None) -> str:
    """The upload's base name with path-unsafe characters replaced; 415 for a non-feed suffix."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename or "").name).strip("._") or "feed"
    if not name.lower().endswith(FEED_SUFFIXES):
        raise HTTPException(
            415,
            f"{filename or 'the upload'}: a feed must be CSV, TSV or JSON Lines ({', '.join(FEED_SUFFIXES)})",
        )
    return name


def check_mapping(specs: list[str]) -> list[str]:
    """``--map`` values of a form: presets and SRC=DST pairs only (never a server-side file)."""
    cleaned = [s.strip() for s in specs if s and s.strip()]
    for spec in cleaned:
        if "=" not in spec and spec.lower().endswith((".json", ".toml")):
            raise HTTPException(422, f"mapping {spec!r}: mapping files are not accepted here; use SRC=DST")
    try:
        FieldMapping.parse(cleaned)
    except MappingError as exc:
        raise HTTPException(422, str(exc)) from exc
    return cleaned


class AdminState:
    """What the lifespan opens: the writable store and the job worker."""

    def __init__(self, store: CatalogStore, worker: JobWorker | RqJobQueue, feeds_dir: Path) -> None:
        self.store = store
        self.worker = worker
        self.feeds_dir = feeds_dir


def create_app(
    settings: AdminSettings | None = None,
    *,
    core: CoreSettings | None = None,
    store: CatalogStore | None = None,
    encoder: Encoder | None = None,
    shelf: ModelShelf | None = None,
    runners: Mapping[JobKind, JobRunner] | None = None,
    annotators: bool = True,
    resolver: Resolver | None = None,
    jobs_settings: JobsSettings | None = None,
) -> FastAPI:
    """Build the admin app; nothing is opened until the lifespan starts, and nothing at all
    when no token is configured.

    ``store`` / ``encoder`` replace the ones named by ``core`` (an injected store is not
    closed); the encoder and the eligibility annotator load on the first ingest job, from
    ``shelf`` (default: the process's model shelf). ``runners`` replace the job bodies (tests);
    ``annotators=False`` skips the eligibility annotator; ``resolver`` replaces the system's
    (the private-address check of crawl start URLs; tests). ``jobs_settings`` (default from
    the environment) says where jobs run: this process's thread or an RQ queue.
    """
    settings = settings or AdminSettings()
    core = core or get_settings()
    token = settings.token_value()
    queue_settings = jobs_settings or JobsSettings()
    models = shelf or default_shelf()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if token is None:
            log.info("admin API off: FITTINGROOM_ADMIN_TOKEN is not set")
            yield
            return
        own_store = store is None

        stop = threading.Event()

        def load() -> AdminState:
            from fittingroom.catalog.store import open_store

            st = store or open_store(core.resolved_store_uri)
            jobs = (
                dict(runners)
                if runners is not None
                else default_runners(
                    st, core, settings, encoder=encoder, shelf=models, annotators=annotators, stop=stop
                )
            )
            worker: JobWorker | RqJobQueue = (
                RqJobQueue(st, queue_settings, set(jobs))
                if queue_settings.backend == "rq"
                else JobWorker(st, jobs)
            )
            worker.start()
            feeds = settings.resolved_feeds_dir(core)
            feeds.mkdir(parents=True, exist_ok=True)
            return AdminState(st, worker, feeds)

        state = await run_in_threadpool(load)
        app.state.admin = state
        try:
            yield
        finally:
            stop.set()  # a crawl in flight is killed; the job fails saying so
            await run_in_threadpool(state.worker.stop)
            if own_store:
                state.store.close()

    app = FastAPI(
        title="fittingroom admin",
        version="0.1.0",
        description="Catalog operations: upload a feed, watch its ingest job, list and delete sources. "
        "Every route needs `Authorization: Bearer <FITTINGROOM_ADMIN_TOKEN>`.",
        lifespan=lifespan,
        # documents the bearer scheme in OpenAPI; AdminAuth enforces it before any body is read
        dependencies=[Depends(HTTPBearer(auto_error=False, description="FITTINGROOM_ADMIN_TOKEN"))],
    )
    guard(app, settings.max_feed_bytes + 64 * 1024)
    app.add_middleware(AdminAuth, token=token)  # added last = runs before the body limit

    def state_of(request: Request) -> AdminState:
        return request.app.state.admin  # type: ignore[no-any-return]

    @app.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        """Liveness; ``enabled`` says whether the admin API is on (a token is configured)."""
        return Health(status="ok", enabled=token is not None)

    async def save_upload(st: AdminState, file: UploadFile, job_id: str) -> Path:
        name = safe_feed_name(file.filename)
        folder = st.feeds_dir / job_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        written = 0
        try:
            with path.open("wb") as out:
                while chunk := await file.read(1 << 20):
                    written += len(chunk)
                    if written > settings.max_feed_bytes:
                        raise HTTPException(
                            413, f"{name}: the feed is larger than the {settings.max_feed_bytes}-byte limit"
                        )
                    out.write(chunk)
            if written == 0:
                raise HTTPException(422, f"{name}: the uploaded feed is empty")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            await file.close()
        return path

    def checked_source(source: str) -> str:
        try:
            return validate_source(source.strip())
        except ValueError as exc:
            raise HTTPException(422, str(exc).replace("; pass --source NAME", "")) from None

    @app.post("/feeds", status_code=202, response_model=JobOut, responses=_ERRORS, tags=["feeds"])
    async def upload_feed(
        request: Request,
        file: Annotated[UploadFile, File(description="The feed: CSV, TSV or JSON Lines (optionally .gz).")],
        source: Annotated[str, Form(description="Source (shop) name: letters, digits, '.', '_', '-'.")],
        mapping: Annotated[
            list[str], Form(description="Mapping values: a preset (luma, saleor, gmc) or SRC=DST.")
        ] = [],  # noqa: B006 - FastAPI copies form defaults
        prune: Annotated[
            bool, Form(description="Delete the source's products absent from this feed.")
        ] = False,
    ) -> JobOut:
        """Store the upload under the home folder and queue its ingest; 202 with the job (poll
        ``GET /jobs/{id}`` for progress and the report)."""
        st = state_of(request)
        src = checked_source(source)
        specs = check_mapping(mapping)
        job_id = new_job_id()
        path = await save_upload(st, file, job_id)
        params = {"feed": str(path), "file": path.name, "mapping": specs, "prune": prune}
        job = await run_in_threadpool(st.worker.submit, JobKind.ingest, src, params, job_id)
        return JobOut.of(job)

    @app.post("/feeds/preview", response_model=PreviewOut, responses=_ERRORS, tags=["feeds"])
    async def preview(
        request: Request,
        file: Annotated[UploadFile, File(description="The feed: CSV, TSV or JSON Lines (optionally .gz).")],
        source: Annotated[str, Form()] = "preview",
        mapping: Annotated[list[str], Form()] = [],  # noqa: B006
    ) -> PreviewOut:
        """A dry run: the columns found, the mapping in force and the first bad rows of the
        first rows of the feed. Nothing is stored (the upload is deleted afterwards)."""
        st = state_of(request)
        src = checked_source(source)
        specs = check_mapping(mapping)
        job_id = "preview-" + new_job_id()
        path = await save_upload(st, file, job_id)
        try:
            out = await run_in_threadpool(
                preview_feed, path, source=src, mapping=specs, rows=settings.preview_rows
            )
        except (FeedError, ValueError) as exc:
            raise HTTPException(422, str(exc).replace(str(path.parent) + "/", "")) from exc
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)
        return PreviewOut.model_validate(out)

    @app.post("/crawls", status_code=202, response_model=JobOut, responses=_ERRORS, tags=["crawls"])
    async def start_crawl(request: Request, body: CrawlIn) -> JobOut:
        """Queue a crawl of a shop from ``url`` (robots.txt obeyed; links followed on its host
        only); its products are ingested when it ends. 202 with the job. 422 for a start URL on
        a private or loopback address (unless FITTINGROOM_ADMIN_ALLOW_PRIVATE_CRAWL) or limits
        above the configured ones."""
        st = state_of(request)
        max_pages = body.max_pages or settings.crawl_max_pages
        max_depth = body.max_depth or settings.crawl_max_depth
        if max_pages > settings.crawl_max_pages or max_depth > settings.crawl_max_depth:
            raise HTTPException(
                422,
                f"limits above the allowed ones: max_pages <= {settings.crawl_max_pages}, "
                f"max_depth <= {settings.crawl_max_depth}",
            )
        try:
            url = await run_in_threadpool(
                check_crawl_target, body.url, allow_private=settings.allow_private_crawl, resolver=resolver
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        src = checked_source(body.source or default_source(url))
        params = {"url": url, "max_pages": max_pages, "max_depth": max_depth}
        job = await run_in_threadpool(st.worker.submit, JobKind.crawl, src, params)
        return JobOut.of(job)

    @app.get("/jobs", response_model=JobList, responses=_ERRORS, tags=["jobs"])
    async def list_jobs(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> JobList:
        """Jobs, newest first."""
        jobs = await run_in_threadpool(state_of(request).store.list_jobs, limit=limit)
        return JobList(jobs=[JobOut.of(j) for j in jobs])

    @app.get("/jobs/{job_id}", response_model=JobOut, responses=_ERRORS, tags=["jobs"])
    async def get_job(request: Request, job_id: str) -> JobOut:
        job = await run_in_threadpool(state_of(request).store.get_job, job_id)
        if job is None:
            raise HTTPException(404, f"unknown job {job_id!r}")
        return JobOut.of(job)

    def dashboard(st: AdminState, only: str | None = None) -> list[SourceOut]:
        stats = st.store.source_stats(only)
        recent = st.store.list_jobs(limit=500)
        index = index_state(core.resolved_index_dir, encoder.name if encoder is not None else None)
        jobs: dict[str, list[JobRecord]] = {}
        for job in recent:
            jobs.setdefault(job.source, []).append(job)
        names = sorted(set(stats) | ({only} if only is not None and only in jobs else set()))
        return [source_row(stats.get(n) or SourceStats(n), jobs.get(n, []), index) for n in names]

    @app.get("/sources", response_model=SourceList, responses=_ERRORS, tags=["sources"])
    async def list_sources(request: Request) -> SourceList:
        """Every source with products: the dashboard figures (products, images, try-on-able share,
        products without a link or an image), the index generation and its freshness, the newest job."""
        return SourceList(sources=await run_in_threadpool(dashboard, state_of(request)))

    @app.get("/sources/{name}", response_model=SourceOut, responses=_ERRORS, tags=["sources"])
    async def get_source(request: Request, name: str) -> SourceOut:
        """One source's dashboard row; 404 for a source without products or jobs."""
        rows = await run_in_threadpool(dashboard, state_of(request), name)
        if not rows:
            raise HTTPException(404, f"unknown source {name!r}")
        return rows[0]

    @app.post(
        "/sources/{name}/prune", status_code=202, response_model=JobOut, responses=_ERRORS, tags=["sources"]
    )
    async def prune_source(request: Request, name: str, body: PruneIn) -> JobOut:
        """Queue the deletion of the source's products not seen in its last successful ingest or
        crawl (the index follows); ``confirm`` must repeat the name (422 otherwise). 202 with the job;
        404 for an unknown source, 409 when it has no successful run to prune against."""
        if body.confirm != name:
            raise HTTPException(422, f"confirm must repeat the source name {name!r}")
        st = state_of(request)
        count = await run_in_threadpool(st.store.count_products, name)
        if count == 0:
            raise HTTPException(404, f"unknown source {name!r} (no products)")
        recent = await run_in_threadpool(st.store.list_jobs, limit=500, statuses=[JobStatus.done.value])
        if not any(j.source == name and j.kind in SEEN_KINDS for j in recent):
            raise HTTPException(409, f"source {name!r} has no successful ingest or crawl to prune against")
        job = await run_in_threadpool(st.worker.submit, JobKind.prune, name)
        return JobOut.of(job)

    @app.delete(
        "/sources/{name}", status_code=202, response_model=JobOut, responses=_ERRORS, tags=["sources"]
    )
    async def delete_source(request: Request, name: str) -> JobOut:
        """Queue the deletion of every product of the source (the index follows); 202 with the job."""
        st = state_of(request)
        count = await run_in_threadpool(st.store.count_products, name)
        pending = await run_in_threadpool(
            st.store.list_jobs, limit=500, statuses=[JobStatus.queued.value, JobStatus.running.value]
        )
        if count == 0 and not any(j.source == name for j in pending):
            raise HTTPException(404, f"unknown source {name!r} (no products)")
        job = await run_in_threadpool(st.worker.submit, JobKind.delete_source, name)
        return JobOut.of(job)

    return app
