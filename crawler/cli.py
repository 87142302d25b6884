"""``fittingroom crawl``, ``fittingroom parse`` and ``fittingroom eval extraction``.

Nothing heavy is imported at module level (``fittingroom --help`` stays fast).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def _print_rows(title: str, rows: list[tuple[str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for label, value in rows:
        table.add_row(label, value)
    Console().print(table)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    @app.command("crawl")
    def crawl(
        urls: Annotated[
            list[str],
            typer.Argument(
                help="Start URLs: shop home, category or product pages, sitemap.xml or robots.txt."
            ),
        ],
        output: Annotated[
            Path | None,
            typer.Option(
                "-o",
                "--output",
                help="Write a JSONL feed (GMC fields) "
                "instead of the catalog, for a later `fittingroom ingest`.",
            ),
        ] = None,
        max_pages: Annotated[
            int | None,
            typer.Option(
                min=0, help="Stop after N pages (0 = no limit). Default: CRAWLER_MAX_PAGES or no limit."
            ),
        ] = None,
        max_depth: Annotated[int | None, typer.Option(min=0, help="Link depth limit (default 8).")] = None,
        shop: Annotated[
            str | None, typer.Option(help="Catalog source name (default: the shop's host).")
        ] = None,
        allow_domain: Annotated[
            list[str] | None,
            typer.Option(
                "--allow-domain", help="Extra domain to stay on (default: the start URLs' hosts); repeatable."
            ),
        ] = None,
        store_uri: Annotated[
            str | None,
            typer.Option(
                "--store", help="Catalog store URI (default: FITTINGROOM_STORE_URI or SQLite in home)."
            ),
        ] = None,
        index_dir: Annotated[
            Path | None, typer.Option(help="FAISS index folder (default: home/index).")
        ] = None,
        encoder: Annotated[
            str | None, typer.Option(help="Encoder name (default: FITTINGROOM_ENCODER).")
        ] = None,
        annotate: Annotated[
            bool, typer.Option(help="Run the try-on eligibility annotator on images.")
        ] = True,
        rules: Annotated[
            Path | None, typer.Option(help="Extra site-rules TOML file (see crawler/README.md).")
        ] = None,
        images: Annotated[bool | None, typer.Option(help="Download product images (ImagesPipeline).")] = None,
        follow: Annotated[
            bool | None, typer.Option(help="Follow listing, pagination and product links.")
        ] = None,
        sitemaps: Annotated[
            bool | None, typer.Option(help="Read robots.txt sitemaps of start pages.")
        ] = None,
        obey_robots: Annotated[
            bool | None, typer.Option("--obey-robots/--ignore-robots", help="Obey robots.txt (default yes).")
        ] = None,
        http_cache: Annotated[
            bool | None, typer.Option(help="Cache responses on disk (development).")
        ] = None,
        concurrency: Annotated[int | None, typer.Option(min=1, help="Requests in flight overall.")] = None,
        per_domain: Annotated[int | None, typer.Option(min=1, help="Requests in flight per domain.")] = None,
        delay: Annotated[
            float | None, typer.Option(min=0, help="Seconds between requests to one domain.")
        ] = None,
        timeout: Annotated[float | None, typer.Option(min=0.1, help="Download timeout, seconds.")] = None,
        retries: Annotated[int | None, typer.Option(min=0, help="Retries of a failed request.")] = None,
        batch_size: Annotated[int | None, typer.Option(min=1, help="Products per catalog batch.")] = None,
        redis_url: Annotated[
            str | None, typer.Option(help="Share the queue via scrapy-redis (or REDIS_URL).")
        ] = None,
        redis_flush: Annotated[
            bool,
            typer.Option(
                help="Clear the shared queue and seen-URL set first (start of a new distributed crawl)."
            ),
        ] = False,
        redis_key: Annotated[str | None, typer.Option(help="Redis key prefix of this crawl job.")] = None,
        memory_limit_mb: Annotated[
            int | None, typer.Option(min=0, help="Stop the crawl above this RSS, MB.")
        ] = None,
        job_dir: Annotated[
            Path | None,
            typer.Option(
                help="Keep the request queue on disk here; the same command resumes an interrupted crawl."
            ),
        ] = None,
        log_level: Annotated[str | None, typer.Option(help="Scrapy log level (default INFO).")] = None,
        progress_file: Annotated[
            Path | None,
            typer.Option(help="Keep a JSON progress file here (pages, products, failed URLs), every second."),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the summary as one JSON object.")
        ] = False,
    ) -> None:
        """Crawl shops into the catalog (or a JSONL feed with -o).

        Obeys robots.txt, throttles per domain, retries with backoff; failing pages are
        counted in the summary and the crawl goes on.
        """
        from urllib.parse import urlsplit

        from pydantic import ValidationError

        from crawler.config import CrawlerSettings
        from crawler.runner import CrawlJob, run_crawl
        from crawler.site_rules import SiteRulesError, read_rules_file

        for u in urls:
            if urlsplit(u).scheme not in ("http", "https") or not urlsplit(u).hostname:
                raise _fail(f"start URL {u!r} is not an http(s) URL")
        if rules is not None:
            try:
                read_rules_file(rules)
            except SiteRulesError as exc:
                raise _fail(str(exc)) from exc
        given: dict[str, Any] = {
            "max_pages": max_pages,
            "max_depth": max_depth,
            "site_rules": rules,
            "images": images,
            "follow_links": follow,
            "sitemaps": sitemaps,
            "obey_robots": obey_robots,
            "http_cache": http_cache,
            "concurrent_requests": concurrency,
            "concurrent_per_domain": per_domain,
            "download_delay": delay,
            "timeout": timeout,
            "retries": retries,
            "batch_size": batch_size,
            "redis_url": redis_url,
            "log_level": log_level,
            "memory_limit_mb": memory_limit_mb,
            "job_dir": job_dir,
        }
        try:
            cfg = CrawlerSettings(**{k: v for k, v in given.items() if v is not None})
        except ValidationError as exc:
            raise _fail(
                f"invalid crawler setting: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
            ) from exc
        if cfg.redis_url:
            try:
                import scrapy_redis  # noqa: F401
            except ModuleNotFoundError:
                raise _fail(
                    "REDIS_URL is set but scrapy-redis is not installed: "
                    "pip install 'fittingroom[distributed]'"
                ) from None
        if shop is not None:
            from catalog_ingest.runner import validate_source

            try:
                validate_source(shop)
            except ValueError as exc:
                raise _fail(str(exc)) from exc
        job = CrawlJob(
            urls=list(urls),
            feed_path=output,
            store_uri=store_uri,
            index_dir=index_dir,
            encoder=encoder,
            annotate=annotate,
            shop=shop,
            allowed_domains=list(allow_domain or []),
            redis_flush=redis_flush,
            redis_key=redis_key,
            progress_path=progress_file,
        )
        summary = run_crawl(job, cfg)
        if as_json:
            typer.echo(json.dumps(summary.to_dict()))
        else:
            _print_rows("Crawl summary", summary.rows())

    jobs_app = typer.Typer(
        help="Catalog jobs on a Redis queue (FITTINGROOM_JOBS_BACKEND=rq).", no_args_is_help=True
    )
    app.add_typer(jobs_app, name="jobs")

    @jobs_app.command("worker")
    def jobs_worker(
        burst: Annotated[bool, typer.Option(help="Run the jobs queued now, then exit.")] = False,
        redis_url: Annotated[
            str | None, typer.Option(help="Redis of the queue (default FITTINGROOM_JOBS_REDIS_URL).")
        ] = None,
        queue: Annotated[
            str | None, typer.Option(help="Queue name (default FITTINGROOM_JOBS_QUEUE).")
        ] = None,
    ) -> None:
        """Run catalog jobs (ingest, delete, crawl) from the RQ queue the admin API fills.

        Uses the same home, store and model settings as the server; models load on the first job
        and stay loaded (jobs run one at a time in this process). Run several for more throughput.
        """
        from crawler.job_queue import JobsSettings, redis_connection, worker_runtime

        given: dict[str, Any] = {"redis_url": redis_url, "queue": queue}
        cfg = JobsSettings(**{k: v for k, v in given.items() if v is not None})
        try:
            connection = redis_connection(cfg.redis_url)
            connection.ping()
        except ModuleNotFoundError as exc:
            raise _fail(str(exc)) from exc
        except Exception as exc:  # redis.ConnectionError and friends
            raise _fail(f"cannot reach Redis at {cfg.redis_url}: {exc}") from exc
        from rq import SimpleWorker

        worker_runtime()  # open the store now: a bad setting fails here, not in the first job
        SimpleWorker([cfg.queue], connection=connection).work(burst=burst)

    @app.command("parse")
    def parse(
        page: Annotated[Path, typer.Argument(help="Saved HTML page (.html or .html.gz).")],
        url: Annotated[str, typer.Option(help="The page's URL (resolves relative links, picks site rules).")],
        rules: Annotated[Path | None, typer.Option(help="Extra site-rules TOML file.")] = None,
        assume_product: Annotated[
            bool, typer.Option(help="Extract even if the page does not look like a product page.")
        ] = False,
    ) -> None:
        """Extract the product of one saved page and print it as JSON."""
        import gzip

        from crawler.extract.page import parse_page, product_to_dict
        from crawler.site_rules import SiteRulesError, load_rules

        if not page.is_file():
            raise _fail(f"{page}: file not found")
        data = page.read_bytes()
        if page.suffix == ".gz":
            try:
                data = gzip.decompress(data)
            except OSError as exc:
                raise _fail(f"{page}: not a gzip file ({exc})") from exc
        try:
            site_rules = load_rules(str(rules) if rules else None)
        except SiteRulesError as exc:
            raise _fail(str(exc)) from exc
        try:
            parsed = parse_page(data, url, rules=site_rules, assume_product=assume_product)
        except ValueError as exc:
            raise _fail(f"{page}: {exc}") from exc
        if parsed.product is None:
            hint = (
                f" ({len(parsed.listing_urls)} product links: a listing page)" if parsed.listing_urls else ""
            )
            raise _fail(f"{page}: no product found{hint}; --assume-product extracts anyway", 1)
        out: dict[str, Any] = product_to_dict(parsed.product)
        if parsed.errors:
            out["structured_data_errors"] = parsed.errors
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))

    @groups["eval"].command("extraction")
    def eval_extraction(
        pages: Annotated[
            Path | None,
            typer.Option(
                help="Benchmark folder (ground-truth.json, html/, index.csv). "
                "Default: SHARED_DATA/product-pages/zyte-benchmark."
            ),
        ] = None,
        baseline: Annotated[bool, typer.Option(help="Also score the extruct first-Product floor.")] = True,
        details: Annotated[bool, typer.Option(help="List every wrong field per page.")] = False,
        loso: Annotated[
            bool,
            typer.Option(
                "--leave-one-shop-out",
                help="Also score every page without the site rules keyed to its own shop "
                "(what an unseen shop gets); --json then reports these figures under 'overall' "
                "and the normal ones under 'normal'.",
            ),
        ] = False,
        sources: Annotated[
            bool, typer.Option(help="Per field, which source gave the value and how often it was right.")
        ] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the metrics as one JSON object.")
        ] = False,
    ) -> None:
        """Product-extraction accuracy on saved pages with ground truth (overall and fashion shops)."""
        from crawler.evaluation import FIELDS, run_eval
        from fittingroom.settings import get_settings

        folder = pages or get_settings().shared_data / "product-pages" / "zyte-benchmark"
        try:
            report = run_eval(folder, with_baseline=baseline, progress=not as_json)
            loso_report = (
                run_eval(folder, with_baseline=False, progress=not as_json, leave_one_shop_out=True)
                if loso
                else None
            )
        except FileNotFoundError as exc:
            raise _fail(str(exc)) from exc
        result = report.to_json(extended=True)
        loso_result = loso_report.to_json(extended=True) if loso_report is not None else None
        if as_json:
            if loso_result is not None:
                loso_result["normal"] = {k: result[k] for k in ("overall", "fashion")}
                loso_result["seconds"] = round(result["seconds"] + loso_result["seconds"], 1)
            typer.echo(json.dumps(loso_result or result))
            return
        from rich.console import Console
        from rich.table import Table

        console = Console()
        table = Table(title=f"Extraction accuracy: {folder}", title_justify="left")
        table.add_column("field", no_wrap=True, min_width=12)
        for short in ("all", "fashion"):
            table.add_column(f"{short} n", justify="right")
            if baseline:
                table.add_column(f"{short} floor", justify="right")
            table.add_column(f"{short} acc", justify="right")
        for f in FIELDS:
            row = [f if f != "name" else "name*"]
            for name in ("overall", "fashion"):
                m = result[name][f]
                row.append(str(m["n"]))
                if baseline:
                    b = m.get("baseline")
                    row.append("-" if b is None else f"{b:.3f}")
                row.append("-" if m["accuracy"] is None else f"{m['accuracy']:.3f}")
            table.add_row(*row)
        console.print(table)
        console.print(
            f"{result['overall']['pages']} pages ({result['fashion']['pages']} fashion shops); floor = first "
            "schema.org Product's offers.price/sku/brand via extruct; name* = a name was found; "
            f"{result['seconds']} s ({result['seconds_per_page']} s/page)"
        )
        _print_field_tables(console, result, loso_result)
        if sources:
            _print_sources(console, (loso_result or result)["by_source"])
        if details:
            for r in (loso_report or report).results:
                wrong = [f for f, ok in r.correct.items() if not ok]
                if wrong:
                    console.print(
                        f"{r.page_id[:12]} {r.url[:70]}: "
                        + ", ".join(f"{f}={r.predicted.get(f)!r}" for f in wrong)
                    )


def _print_field_tables(console: Any, normal: dict[str, Any], loso: dict[str, Any] | None) -> None:
    """Per-field table (field, accuracy, n, shop average) for the normal and leave-one-shop-out runs."""
    from rich.table import Table

    from crawler.evaluation import FIELDS

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    runs = [("normal", normal)] + ([("leave-one-shop-out", loso)] if loso is not None else [])
    for title, res in runs:
        o = res["overall"]
        table = Table(title=f"{title}: {o['pages']} pages, {o['shops']} shops", title_justify="left")
        for col in ("field", "accuracy", "n", "shop avg"):
            table.add_column(col, justify="left" if col == "field" else "right")
        for f in FIELDS:
            m = o[f]
            table.add_row(f, fmt(m["acc"]), str(m["n"]), fmt(m["shop_acc"]))
        console.print(table)


def _print_sources(console: Any, by_source: dict[str, dict[str, dict[str, int]]]) -> None:
    from rich.table import Table

    table = Table(title="Where predicted values came from", title_justify="left")
    for col in ("field", "source", "pages", "correct", "shops correct"):
        table.add_column(col, justify="left" if col in ("field", "source") else "right")
    for f, per in by_source.items():
        for src, d in per.items():
            table.add_row(f, src, str(d["n"]), str(d["correct"]), str(d["shops"]))
    console.print(table)
