"""Catalog jobs that crawl a shop, and the job bodies every worker runs.

A ``crawl`` job runs ``fittingroom crawl URL -o feed.jsonl`` in a subprocess (Twisted's reactor
runs once per process), with the serving process's environment and home, then ingests the feed
it wrote with the same body as an uploaded feed (``catalog_ingest.jobs.ingest_runner``: one
writer, the serving process's encoder). While the crawl runs, the job's progress is the pages
fetched (of ``max_pages``) and its partial report the crawl's progress file
(``crawler.extensions.CrawlProgressExtension``); while the feed is ingested, the products done.
The final report is the ingest report plus ``crawl`` (the crawl summary), ``pages``,
``products`` and ``failed_urls`` ``[{"url", "reason"}...]``.

``check_crawl_target`` refuses start URLs on private / loopback hosts unless allowed;
``default_runners`` builds the bodies of every job kind from settings (the serving process's
worker and a queue worker use it alike).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from catalog_ingest.jobs import (
    AdminSettings,
    JobFailed,
    JobRunner,
    Progress,
    delete_source_runner,
    ingest_runner,
    prune_runner,
)
from fittingroom.catalog.jobs import JobKind, JobRecord
from fittingroom.fetch import FetchError, Resolver, resolve_checked, system_resolver

if TYPE_CHECKING:
    from fittingroom.catalog.store import CatalogStore
    from fittingroom.models.encoders.base import Encoder
    from fittingroom.models.registry import ModelShelf
    from fittingroom.settings import CoreSettings

EMPTY_INGEST = {"new": 0, "updated": 0, "unchanged": 0, "bad_rows": []}


def check_crawl_target(url: str, *, allow_private: bool = False, resolver: Resolver | None = None) -> str:
    """``url`` stripped when it may be crawled: an http(s) URL with a host that, unless
    ``allow_private``, resolves only to public addresses (``fittingroom.fetch`` rules: loopback,
    private, link-local... are refused). Raises ValueError saying why (a person reads it)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"start URL {url!r} is malformed: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"start URL must be an http(s) URL with a host, got {url!r}")
    if not allow_private:
        try:
            resolve_checked(
                parts.hostname,
                port or (443 if parts.scheme.lower() == "https" else 80),
                resolver or system_resolver,
            )
        except FetchError as exc:
            raise ValueError(f"start URL {url!r}: {exc}") from None
    return url


def default_source(url: str) -> str:
    """A source name for a shop URL: its host without ``www.`` (``shop.example``)."""
    return (urlsplit(url).hostname or "shop").lower().removeprefix("www.")


def crawl_command(job: JobRecord, folder: Path, python: str = sys.executable) -> list[str]:
    """The ``fittingroom crawl`` command line of ``job`` (params ``url``, ``max_pages``,
    ``max_depth``); the feed, progress file and summary go to ``folder``."""
    p = job.params
    return [
        python,
        "-m",
        "fittingroom.cli",
        "crawl",
        str(p["url"]),
        "--shop",
        job.source,
        "--max-pages",
        str(int(p["max_pages"])),
        "--max-depth",
        str(int(p["max_depth"])),
        "-o",
        str(folder / "crawl.jsonl"),
        "--no-images",  # the ingest fetches each image once, with its own address checks
        "--progress-file",
        str(folder / "progress.json"),
        "--json",
    ]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def crawl_runner(
    ingest: JobRunner,
    *,
    work_dir: Path,
    home: Path,
    timeout_s: float = 3600.0,
    poll_s: float = 0.5,
    stop: threading.Event | None = None,
    python: str = sys.executable,
    keep_dir: Path | None = None,
) -> JobRunner:
    """The body of ``crawl`` jobs (see the module docstring). ``ingest``: the body that ingests
    the crawled feed; ``work_dir``: where each job's folder (feed, progress, log) is kept (removed
    when the job is done); ``keep_dir``: where a done crawl's feed is kept, as ``{id}.jsonl`` (what
    a prune of the source reads); ``home``: the crawl's ``FITTINGROOM_HOME``. The crawl is killed after
    ``timeout_s`` seconds or when ``stop`` is set (the job fails, saying so)."""

    def run(job: JobRecord, progress: Progress) -> dict[str, Any]:
        folder = work_dir / job.id
        folder.mkdir(parents=True, exist_ok=True)
        max_pages = int(job.params["max_pages"])
        env = dict(os.environ, FITTINGROOM_HOME=str(home))
        detail: dict[str, Any] = {"phase": "crawl", "pages": 0, "products": 0, "failed_urls": []}
        progress(0, max_pages or None, dict(detail))
        started = time.monotonic()
        with (folder / "summary.json").open("wb") as out, (folder / "crawl.log").open("wb") as err:
            proc = subprocess.Popen(crawl_command(job, folder, python), stdout=out, stderr=err, env=env)
            try:
                while proc.poll() is None:
                    if time.monotonic() - started > timeout_s or (stop is not None and stop.is_set()):
                        proc.kill()
                        proc.wait()
                        why = (
                            "stopped"
                            if stop is not None and stop.is_set()
                            else f"timed out after {timeout_s:g} s"
                        )
                        raise JobFailed(f"the crawl {why}", _crawl_detail(folder, detail))
                    now = _read_json(folder / "progress.json")
                    if now is not None:
                        detail = _crawl_detail(folder, detail)
                        progress(int(now.get("pages", 0)), max_pages or None, dict(detail))
                    time.sleep(poll_s)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        detail = _crawl_detail(folder, detail)
        if proc.returncode != 0:
            raise JobFailed(
                f"the crawl failed (exit {proc.returncode}): {_tail(folder / 'crawl.log')}", detail
            )
        summary_lines = (folder / "summary.json").read_text(encoding="utf-8").strip().splitlines()
        try:
            summary = json.loads(summary_lines[-1]) if summary_lines else {}
        except ValueError:
            summary = {}
        crawled = {**detail, "crawl": summary}
        feed = folder / "crawl.jsonl"
        if not feed.is_file() or feed.stat().st_size == 0:
            shutil.rmtree(folder, ignore_errors=True)
            return {**EMPTY_INGEST, **crawled, "phase": "done"}

        def ingest_progress(done: int, total: int | None, _detail: dict[str, Any] | None = None) -> None:
            progress(done, total, {**crawled, "phase": "ingest"})

        sub = JobRecord(
            id=job.id, kind=JobKind.ingest, source=job.source, params={"feed": str(feed), "format": "jsonl"}
        )
        try:
            report = ingest(sub, ingest_progress) or {}
        except JobFailed as exc:
            raise JobFailed(str(exc), {**(exc.report or {}), **crawled}) from exc
        if keep_dir is not None:  # a later prune reads what this crawl saw
            keep_dir.mkdir(parents=True, exist_ok=True)
            feed.replace(keep_dir / f"{job.id}.jsonl")
        shutil.rmtree(folder, ignore_errors=True)
        return {**report, **crawled, "phase": "done"}

    return run


def _crawl_detail(folder: Path, last: dict[str, Any]) -> dict[str, Any]:
    now = _read_json(folder / "progress.json")
    if now is None:
        return last
    return {
        "phase": "crawl",
        "pages": int(now.get("pages", 0)),
        "products": int(now.get("products", 0)),
        "failed_urls": list(now.get("failed_urls") or []),
    }


def default_runners(
    store: CatalogStore,
    core: CoreSettings,
    settings: AdminSettings,
    *,
    encoder: Encoder | None = None,
    shelf: ModelShelf | None = None,
    annotators: bool = True,
    stop: threading.Event | None = None,
) -> dict[JobKind, JobRunner]:
    """The bodies of every job kind on ``store``: ``ingest``, ``delete_source``, ``crawl``.

    The encoder (``encoder`` or ``core.encoder`` from ``shelf``, default the process's shelf)
    and the eligibility annotator (skipped with ``annotators=False``) load on the first job
    that needs them, not here.
    """
    from fittingroom.models.registry import default_shelf

    models = shelf or default_shelf()
    lock = threading.Lock()
    loaded: dict[str, Any] = {}

    def get_encoder() -> Encoder:
        with lock:
            if "encoder" not in loaded:
                from fittingroom.models.specs import get_encoder as build

                loaded["encoder"] = encoder or build(core, core.encoder, shelf=models)
            return loaded["encoder"]  # type: ignore[no-any-return]

    def get_annotators() -> Any:
        if not annotators:
            return ()
        from catalog_ingest.annotators import load_default_annotators

        return load_default_annotators(core, shelf=models)

    def encoder_name() -> str:
        return encoder.name if encoder is not None else get_encoder().name

    common: dict[str, Any] = {
        "index_dir": core.resolved_index_dir,
        "image_cache": core.home / "images",
        "annotators": get_annotators,
    }
    feeds = settings.resolved_feeds_dir(core)
    crawled_ingest = ingest_runner(store, get_encoder, allow_private=settings.allow_private_crawl, **common)
    return {
        JobKind.ingest: ingest_runner(store, get_encoder, image_roots=settings.image_roots, **common),
        JobKind.delete_source: delete_source_runner(store, encoder_name, index_dir=core.resolved_index_dir),
        JobKind.prune: prune_runner(
            store, encoder_name, index_dir=core.resolved_index_dir, crawl_dir=feeds / "crawled"
        ),
        JobKind.crawl: crawl_runner(
            crawled_ingest,
            work_dir=feeds / "crawls",
            home=core.home,
            timeout_s=settings.crawl_timeout_s,
            stop=stop,
            keep_dir=feeds / "crawled",
        ),
    }
