"""``fittingroom serve``: ingest the feeds it is given, then run the all-in-one server.

Nothing heavy is imported at module level (``fittingroom --help`` stays fast).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from fastapi import FastAPI

    from catalog_ingest.runner import IngestReport
    from fittingroom.models.encoders.base import Encoder
    from fittingroom.settings import CoreSettings
    from services.app import ServeSettings, ServiceSlot
    from services.hardening import HardeningSettings

log = logging.getLogger(__name__)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def feeds_to_ingest(explicit: Sequence[Path], product_count: int) -> tuple[list[Path], str | None]:
    """Which feeds ``serve`` ingests before serving, and why none when it ingests none.

    Only feeds given explicitly (``--catalog`` or ``SERVE_CATALOGS``) are ingested (ingest is
    idempotent: an unchanged feed embeds nothing). ``serve`` never ingests anything by itself,
    in particular not the development data.
    """
    if explicit:
        return list(explicit), None
    if product_count:
        return [], f"serving the {product_count} products in the catalog (pass --catalog FEED to add a feed)"
    return [], "the catalog is empty: pass --catalog FEED (or run `fittingroom ingest FEED`) to fill it"


#: Feed file stems that say nothing about the shop; the folder name is used instead.
GENERIC_FEED_STEMS = frozenset({"products", "product", "feed", "catalog", "catalogue", "items", "export"})


def source_for_feed(feed: Path) -> str:
    """Source name of a feed: ``catalog_ingest``'s default (the file stem), unless the stem is
    generic (``luma-catalog/products.jsonl``), then the folder name without a ``-catalog`` /
    ``-feed`` suffix (``'luma'``), so two shops' ``products.jsonl`` do not share one source."""
    from catalog_ingest.runner import default_source

    stem = default_source(feed)
    if stem.lower() not in GENERIC_FEED_STEMS:
        return stem
    folder = feed.resolve().parent.name.lower()
    for suffix in ("-catalog", "-catalogue", "-feed", "_catalog", "_feed"):
        folder = folder.removesuffix(suffix)
    return folder or stem


def run_ingest(feeds: Sequence[Path], core: CoreSettings, encoder: Encoder) -> list[IngestReport]:
    """Ingest each feed into the configured store and index, with the eligibility annotator.

    Raises typer.Exit with a clear message on a feed that cannot be read or an aborted run.
    """
    from catalog_ingest.annotators import load_default_annotators
    from catalog_ingest.readers import FeedError
    from catalog_ingest.runner import IngestAborted, ingest_feed
    from fittingroom.catalog.store import open_store

    annotators = load_default_annotators(core)
    reports = []
    with open_store(core.resolved_store_uri) as store:
        for feed in feeds:
            typer.echo(f"Ingesting {feed} ...")
            try:
                report = ingest_feed(
                    feed,
                    source=source_for_feed(feed),
                    store=store,
                    encoder=encoder,
                    annotators=annotators,
                    image_cache=core.home / "images",
                    index_dir=core.resolved_index_dir,
                )
            except FeedError as exc:
                raise _fail(str(exc), 2) from exc
            except IngestAborted as exc:
                raise _fail(f"ingest of {feed} stopped: {exc}") from exc
            reports.append(report)
            bad = f", {len(report.bad_rows)} bad rows skipped" if report.bad_rows else ""
            typer.echo(
                f"  {report.source}: {report.products} products ({report.new} new, "
                f"{report.updated} updated, {report.unchanged} unchanged), "
                f"{report.embedded} images embedded in {report.seconds:.1f}s{bad}"
            )
            for row in report.bad_rows[:5]:
                typer.echo(f"    skipped {row}")
    return reports


def _health_line(report: dict[str, Any]) -> str:
    """One line of what a service reports about itself (its /healthz body, flattened)."""
    if not report.get("started"):
        return f"not started: {report.get('error')}"
    health = report.get("health")
    if not isinstance(health, dict):
        return str(health)[:200]
    parts = []
    for key, value in health.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}={v}" for k, v in value.items() if not isinstance(v, dict | list))
            parts.append(f"{key}({inner})")
        elif isinstance(value, list):
            # the shelf's model descriptions: their names are enough here (details in /healthz)
            shown = [v.get("name", "?") if isinstance(v, dict) else str(v) for v in value]
            parts.append(f"{key}=[{', '.join(shown)}]")
        elif value is not None:
            parts.append(f"{key}={value}")
    return "; ".join(parts)


def announce(url: str, slots: Sequence[ServiceSlot], readiness: dict[str, dict[str, Any]]) -> None:
    """Print the URL and what each service loaded."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="fittingroom services", title_justify="left")
    table.add_column("service", style="bold")
    table.add_column("ready")
    table.add_column("start-up")
    table.add_column("loaded", overflow="fold")
    for slot in slots:
        report = readiness.get(slot.name, {})
        ready = "[green]yes[/green]" if report.get("ready") else "[red]no[/red]"
        took = f"{slot.startup_s:.1f}s" if slot.startup_s is not None else ""
        table.add_row(slot.prefix + "/", ready, took, _health_line(report))
    console.print(table)
    # plain print, one line, never wrapped: scripts and tests read the URL from it
    print(f"fittingroom is running at {url}", flush=True)
    console.print(f"API docs under {url}api/<service>/docs (retrieval, segmentation, tryon). Ctrl-C stops.")


def build_app(
    settings: ServeSettings, encoder: Encoder | None = None, hardening: HardeningSettings | None = None
) -> FastAPI:
    """The all-in-one app; the retrieval service reuses ``encoder`` (already loaded by ingest).

    ``hardening`` (default: ``HardeningSettings()`` from the environment): security headers, the
    Host allow-list and the upload rate limit (``services.hardening``)."""
    from services.app import create_app
    from services.hardening import HardeningSettings, harden

    def retrieval() -> FastAPI:
        from services.retrieval.app import create_app as create_retrieval

        return create_retrieval(encoder=encoder)

    def segmentation() -> FastAPI:
        from services.segmentation.app import create_app as create_segmentation

        return create_segmentation()

    def tryon() -> FastAPI:
        from services.tryon.app import create_app as create_tryon

        return create_tryon()

    def admin() -> FastAPI:
        from services.admin.app import create_app as create_admin

        return create_admin(encoder=encoder)

    factories: dict[str, Callable[[], FastAPI]] = {
        "admin": admin,  # first: its writable store exists before retrieval opens it read-only
        "retrieval": retrieval,
        "segmentation": segmentation,
        "tryon": tryon,
    }
    app = create_app(settings, services=factories)
    return harden(app, hardening or HardeningSettings(), host=settings.host)


#: Services ``fittingroom serve --service NAME`` runs alone (one per container image).
SINGLE_SERVICES = ("retrieval", "segmentation", "tryon", "admin")


def build_service_app(
    name: str, hardening: HardeningSettings | None = None, *, host: str = "127.0.0.1"
) -> FastAPI:
    """One service's app (its module's ``create_app()``, settings from the environment) with the
    same hardening as the all-in-one app (``services.hardening.harden``): what the Docker images
    run (``fittingroom serve --service NAME``). Raises ValueError for a name not in
    :data:`SINGLE_SERVICES`."""
    from services.hardening import HardeningSettings, harden

    create: Callable[[], FastAPI]
    if name == "retrieval":
        from services.retrieval.app import create_app as create_retrieval

        create = create_retrieval
    elif name == "segmentation":
        from services.segmentation.app import create_app as create_segmentation

        create = create_segmentation
    elif name == "tryon":
        from services.tryon.app import create_app as create_tryon

        create = create_tryon
    elif name == "admin":
        from services.admin.app import create_app as create_admin

        create = create_admin
    else:
        raise ValueError(f"unknown service {name!r}: one of {', '.join(SINGLE_SERVICES)}")
    return harden(create(), hardening or HardeningSettings(), host=host)


def serve_app(
    app: FastAPI,
    host: str,
    port: int,
    log_level: str = "info",
    hardening: HardeningSettings | None = None,
    *,
    announce_slots: bool = True,
    forwarded_allow_ips: str | None = None,
) -> None:
    """Run ``app`` with uvicorn; once the socket is bound, print the URL and what is loaded
    (``announce_slots``: the all-in-one app's services; a single service prints its URL only).

    uvicorn's connection limits (keep-alive timeout, header size, concurrency) come from
    ``hardening`` (default: ``HardeningSettings()``; ``services.hardening.uvicorn_options``).
    ``forwarded_allow_ips``: proxies whose X-Forwarded-For is trusted (uvicorn's option; default
    its own, 127.0.0.1)."""
    import asyncio

    import uvicorn

    from services.app import readiness
    from services.hardening import uvicorn_options

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.should_exit or not self.servers:
                return
            bound = self.servers[0].sockets[0].getsockname()[1]
            shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            url = f"http://{shown}:{bound}/"
            if not announce_slots:
                print(f"fittingroom is running at {url}", flush=True)
                return
            slots = app.state.slots
            report = await readiness(slots, timeout=10.0)
            await asyncio.to_thread(announce, url, slots, report)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=10,
        forwarded_allow_ips=forwarded_allow_ips,
        **uvicorn_options(hardening),
    )
    Server(config).run()


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    @app.command("serve")
    def serve(
        catalog: Annotated[
            list[Path] | None,
            typer.Option(
                "--catalog",
                help="Feed to ingest before serving (repeatable). Without it nothing is ingested.",
            ),
        ] = None,
        host: Annotated[str | None, typer.Option(help="Interface (default 127.0.0.1; SERVE_HOST).")] = None,
        port: Annotated[
            int | None,
            typer.Option(min=0, max=65535, help="Port (default 8000; 0 = any free port; SERVE_PORT)."),
        ] = None,
        ingest: Annotated[bool, typer.Option(help="Ingest the --catalog feeds before serving.")] = True,
        frontend_dir: Annotated[
            Path | None, typer.Option(help="Built page folder (default: frontend/dist; SERVE_FRONTEND_DIR).")
        ] = None,
        log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
        service: Annotated[
            str | None,
            typer.Option(
                help="Run this one service alone (retrieval, segmentation, tryon, admin), hardened like "
                "the all-in-one app, no page and no ingest: the command of the Docker images.",
            ),
        ] = None,
        forwarded_allow_ips: Annotated[
            str | None,
            typer.Option(help="Proxies trusted for X-Forwarded-For (uvicorn; '*' behind a proxy)."),
        ] = None,
    ) -> None:
        """Run search, segmentation, try-on and the web page in one process on one port.

        First ingests the feeds given with ``--catalog`` (nothing otherwise), then prints the URL and what each service loaded. ``/healthz`` is
        liveness, ``/readyz`` is 200 once every model and the index are loaded.
        """
        from services.app import ServeSettings

        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        if service is not None:
            from services.hardening import HardeningSettings

            given: dict[str, Any] = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
            base = ServeSettings(**given)
            hardening = HardeningSettings()
            try:
                one = build_service_app(service, hardening, host=base.host)
            except ValueError as exc:
                raise _fail(str(exc), 2) from exc
            serve_app(
                one,
                base.host,
                base.port,
                log_level,
                hardening,
                announce_slots=False,
                forwarded_allow_ips=forwarded_allow_ips,
            )
            return
        overrides: dict[str, Any] = {
            k: v
            for k, v in {"host": host, "port": port, "frontend_dir": frontend_dir, "ingest": ingest}.items()
            if v is not None
        }
        if catalog:
            overrides["catalogs"] = catalog
        settings = ServeSettings(**overrides)
        missing = [str(p) for p in settings.catalogs if not p.is_file()]
        if missing:
            raise _fail(f"catalog feed not found: {', '.join(missing)}", 2)
        if not (settings.resolved_frontend_dir / "index.html").is_file():
            typer.echo(
                f"Warning: the web page is not built ({settings.resolved_frontend_dir}); "
                "run `npm ci && npm run build` in frontend/. The APIs still run.",
                err=True,
            )

        from fittingroom.catalog.store import open_store
        from fittingroom.models.specs import get_encoder
        from fittingroom.retrieval.settings import RetrievalSettings
        from fittingroom.settings import get_settings

        core = get_settings()
        core.home.mkdir(parents=True, exist_ok=True)
        retrieval_settings = RetrievalSettings()
        typer.echo(f"Loading the {retrieval_settings.resolved_encoder} encoder ...")
        try:
            encoder = get_encoder(core, retrieval_settings.resolved_encoder)
        except KeyError as exc:
            raise _fail(str(exc.args[0]), 2) from exc
        except (OSError, RuntimeError, ValueError) as exc:
            raise _fail(f"the {retrieval_settings.resolved_encoder} encoder cannot be loaded: {exc}") from exc
        if settings.ingest:
            with open_store(core.resolved_store_uri) as store:
                count = store.count_products()
            feeds, why_not = feeds_to_ingest(settings.catalogs, count)
            if feeds:
                run_ingest(feeds, core, encoder)
            else:
                typer.echo(f"Skipping ingest: {why_not}.")
        from services.hardening import HardeningSettings

        hardening = HardeningSettings()
        serve_app(build_app(settings, encoder, hardening), settings.host, settings.port, log_level, hardening)
