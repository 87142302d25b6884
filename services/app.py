"""The all-in-one server: retrieval, segmentation, try-on and the web page in one process.

``fittingroom serve`` runs this app with uvicorn on one port (default 127.0.0.1:8000)::

    /api/retrieval/...     services.retrieval.app   (POST /search, /search/image, GET /products/{uid}, ...)
    /api/segmentation/...  services.segmentation.app (POST /images, /images/{id}/masks, .../cutout)
    /api/tryon/...         services.tryon.app       (POST /persons, /tryon, GET /tryon/{job_id}, ...)
    /api/admin/...         services.admin.app       (POST /feeds, GET /jobs, /sources; admin token)
    /healthz, /readyz      this module (liveness; readiness = every service's own /healthz is 200)
    /                      the built page (frontend/dist); /product/<uid> is the page too (deep link)

The docker compose stack exposes exactly the same prefixes through its frontend
container, so the page uses the same URLs in both set-ups.

Starlette runs the lifespan of the *outer* app only, never those of mounted
sub-apps, so this app's lifespan enters each service's own
``router.lifespan_context`` (which loads its models). A service whose start-up
fails does not take the others down: its prefix answers 503 with the reason,
``/healthz`` says "degraded" and ``/readyz`` stays 503.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from fittingroom.models.registry import default_shelf

log = logging.getLogger(__name__)

#: Repository checkout's built page (``npm ci && npm run build`` in ``frontend/``).
DEFAULT_FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend" / "dist"

#: URL prefix names of the mounted services, in start-up order.
SERVICES: tuple[str, ...] = ("retrieval", "segmentation", "tryon")


class ServeSettings(BaseSettings):
    """Settings of ``fittingroom serve`` (env prefix ``SERVE_``).

    The services keep their own settings (``RETRIEVAL_*``, ``SEGMENTATION_*``,
    ``TRYON_*``) and the shared ``FITTINGROOM_*`` ones (home, store, index, model cache).
    """

    model_config = SettingsConfigDict(env_prefix="SERVE_", env_file=".env", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface to listen on (0.0.0.0 = every interface).")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port (0 = any free port).")
    frontend_dir: Path | None = Field(
        default=None,
        description="Folder of the built page (default: frontend/dist of this checkout).",
    )
    catalogs: list[Path] = Field(
        default_factory=list,
        description="Feeds ingested at start-up (JSON list). Empty = nothing is ingested.",
    )
    ingest: bool = Field(default=True, description="Ingest SERVE_CATALOGS at start-up.")
    health_timeout_s: float = Field(
        default=5.0, gt=0, description="Timeout of each service's /healthz in /readyz."
    )

    @property
    def resolved_frontend_dir(self) -> Path:
        return self.frontend_dir or DEFAULT_FRONTEND_DIR


@dataclass
class ServiceSlot:
    """One mounted service and what happened when it started."""

    name: str
    app: FastAPI
    started: bool = False
    error: str | None = None
    startup_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"/api/{self.name}"


class _Guard:
    """ASGI wrapper of a mounted service: 503 with the start-up error when it failed to start."""

    def __init__(self, slot: ServiceSlot) -> None:
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.slot.started:
            reason = self.slot.error or "it is still starting"
            response = JSONResponse(
                {"detail": f"The {self.slot.name} service is unavailable: {reason}"}, status_code=503
            )
            await response(scope, receive, send)
            return
        await self.slot.app(scope, receive, send)


def _retrieval() -> FastAPI:
    from services.retrieval.app import create_app as create

    return create()


def _segmentation() -> FastAPI:
    from services.segmentation.app import create_app as create

    return create()


def _tryon() -> FastAPI:
    from services.tryon.app import create_app as create

    return create()


def _admin() -> FastAPI:
    from services.admin.app import create_app as create

    return create()


def _default_factories() -> dict[str, Callable[[], FastAPI]]:
    """Each service's ``create_app()`` with its settings from the environment; all of them take
    their models from the one process-wide model shelf, so each model is built once."""
    return {"retrieval": _retrieval, "segmentation": _segmentation, "tryon": _tryon}


_MISSING_FRONTEND = """<!doctype html><html lang="en"><meta charset="utf-8"><title>fittingroom</title>
<body style="font-family:system-ui;max-width:40rem;margin:3rem auto;line-height:1.5">
<h1>fittingroom</h1><p>The APIs are running, but the web page has not been built.</p>
<p>Build it once with <code>npm ci &amp;&amp; npm run build</code> in the <code>frontend/</code> folder
(or set <code>SERVE_FRONTEND_DIR</code>), then reload.</p>
<p>API docs: <a href="/api/retrieval/docs">retrieval</a>, <a href="/api/segmentation/docs">segmentation</a>,
<a href="/api/tryon/docs">try-on</a>.</p></body></html>"""


async def _probe(slot: ServiceSlot, timeout: float) -> dict[str, Any]:
    """Call the service's own ``GET /healthz`` in-process (no network) and report it."""
    if not slot.started:
        return {"ready": False, "started": False, "error": slot.error}
    transport = httpx.ASGITransport(app=slot.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://local", timeout=timeout) as client:
            resp = await client.get("/healthz")
    except Exception as exc:  # a crashing health route is "not ready", never a 500 here
        return {"ready": False, "started": True, "error": f"/healthz failed: {exc}"}
    try:
        health: Any = resp.json()
    except ValueError:
        health = resp.text
    return {
        "ready": resp.status_code == 200,
        "started": True,
        "status_code": resp.status_code,
        "health": health,
    }


def _build_slot(name: str, factory: Callable[[], FastAPI]) -> ServiceSlot:
    """Build one service's app; a service that cannot be built (missing module or optional
    dependency, bad settings) gets an empty app and its error, so the others still run."""
    try:
        return ServiceSlot(name, factory())
    except Exception as exc:
        log.exception("the %s service could not be created", name)
        return ServiceSlot(name, FastAPI(), error=f"{type(exc).__name__}: {exc}")


async def readiness(slots: list[ServiceSlot], timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    """Each service's readiness: its own ``/healthz`` answer, called in-process."""
    return {slot.name: await _probe(slot, timeout) for slot in slots}


def create_app(
    settings: ServeSettings | None = None,
    *,
    services: dict[str, Callable[[], FastAPI]] | None = None,
    on_ready: Callable[[list[ServiceSlot]], None] | None = None,
) -> FastAPI:
    """Build the all-in-one app. Nothing is loaded until the lifespan starts.

    ``services`` maps a prefix name to a factory of that service's FastAPI app
    (default: :data:`SERVICES` and the catalog admin, each module's ``create_app()`` with its
    settings read from the environment). ``on_ready`` is called once every service has started
    (or failed to), e.g. to print what is loaded.
    """
    settings = settings or ServeSettings()
    # the admin first: its writable store exists before the retrieval service opens it read-only
    factories = services if services is not None else {"admin": _admin, **_default_factories()}
    slots = [_build_slot(name, factory) for name, factory in factories.items()]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        merged_state: dict[str, Any] = {}
        async with AsyncExitStack() as stack:
            for slot in slots:
                if slot.error is not None:  # its app could not even be built
                    continue
                t0 = time.perf_counter()
                try:
                    state = await stack.enter_async_context(slot.app.router.lifespan_context(slot.app))
                except Exception as exc:
                    slot.error = f"{type(exc).__name__}: {exc}"
                    log.exception("the %s service failed to start", slot.name)
                else:
                    slot.started = True
                    if isinstance(state, dict):  # lifespan state is shared with every request's scope
                        merged_state.update(state)
                slot.startup_s = round(time.perf_counter() - t0, 2)
            if on_ready is not None:
                on_ready(slots)
            yield merged_state

    app = FastAPI(
        title="fittingroom",
        version="0.1.0",
        description="All-in-one server: the retrieval, segmentation and try-on APIs under /api/<service>/ "
        "(each with its own /docs) and the web page at /.",
        lifespan=lifespan,
    )
    app.state.slots = slots

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, Any]:
        """Liveness: 200 while the process serves. ``status`` is 'ok' when every service started,
        'degraded' when one failed (its error is given); ``models``: every model this process
        loaded (one shelf for all services), with source and licence."""
        return {
            "status": "ok" if all(s.started for s in slots) else "degraded",
            "services": {
                s.name: {"started": s.started, "error": s.error, "startup_s": s.startup_s} for s in slots
            },
            "models": default_shelf().loaded(),
        }

    @app.get("/readyz", tags=["health"], responses={503: {"description": "A service is not ready."}})
    async def readyz() -> JSONResponse:
        """Readiness: 200 when every service's own ``/healthz`` answers 200 (models loaded, index
        opened); 503 otherwise, with each service's answer."""
        report = await readiness(slots, settings.health_timeout_s)
        ready = all(r["ready"] for r in report.values())
        return JSONResponse({"ready": ready, "services": report}, status_code=200 if ready else 503)

    for slot in slots:
        app.mount(slot.prefix, _Guard(slot), name=slot.name)

    frontend = settings.resolved_frontend_dir
    if (frontend / "index.html").is_file():

        @app.get("/product/{uid}", include_in_schema=False)
        async def product_page(uid: str) -> FileResponse:
            """A deep link into the page (its router shows the product): the page itself."""
            return FileResponse(frontend / "index.html", headers={"Cache-Control": "no-cache"})

        app.mount("/", StaticFiles(directory=frontend, html=True), name="frontend")
    else:
        log.warning("no built page in %s: run `npm ci && npm run build` in frontend/", frontend)

        @app.get("/", include_in_schema=False)
        async def missing_frontend() -> HTMLResponse:
            return HTMLResponse(_MISSING_FRONTEND, status_code=503)

    return app
