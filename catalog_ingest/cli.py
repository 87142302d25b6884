"""``fittingroom ingest FEED``: load a product feed into the catalog store and the FAISS index.

Nothing heavy is imported at module level (``fittingroom --help`` stays fast).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from catalog_ingest.runner import IngestReport

MAX_BAD_ROWS_SHOWN = 50


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def _print_report(report: IngestReport, *, as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    console = Console()
    if report.bad_rows:
        # Plain compiler-style lines (FILE:LINE: reason), never cut by the terminal width.
        typer.echo(f"Skipped rows ({len(report.bad_rows)}):", err=True)
        for row in report.bad_rows[:MAX_BAD_ROWS_SHOWN]:
            where = f"{row.file}:{row.line}" if row.line is not None else row.file
            pid = f" [{row.product_id}]" if row.product_id else ""
            typer.echo(f"{where}:{pid} {row.reason}", err=True)
        if len(report.bad_rows) > MAX_BAD_ROWS_SHOWN:
            console.print(
                f"... and {len(report.bad_rows) - MAX_BAD_ROWS_SHOWN} more (use --json to list all)"
            )
    if report.warnings:
        typer.echo(f"Rows kept with a value dropped ({len(report.warnings)}):", err=True)
        for row in report.warnings[:MAX_BAD_ROWS_SHOWN]:
            where = f"{row.file}:{row.line}" if row.line is not None else row.file
            pid = f" [{row.product_id}]" if row.product_id else ""
            typer.echo(f"{where}:{pid} {row.reason}", err=True)
    table = Table(title="Ingest summary", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for label, value in report.summary_rows():
        table.add_row(label, value)
    console.print(table)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    @app.command("ingest")
    def ingest(
        feed: Annotated[Path, typer.Argument(help="Feed file: CSV, TSV or JSONL (optionally .gz).")],
        map_: Annotated[
            list[str] | None,
            typer.Option(
                "--map",
                help="Field mapping, repeatable: SRC=DST (e.g. sku=id, offer.price=price), a preset "
                "(gmc, luma) or a .json/.toml file of SRC: DST pairs. Default: Merchant Center names, "
                "Luma layout detected automatically.",
            ),
        ] = None,
        link_template: Annotated[
            str | None,
            typer.Option(
                help="Shop link of products whose feed row has no link, e.g. "
                "'https://shop.example/p/{id}' ({FIELD} = a feed field, URL-quoted). Default: the "
                "preset's (luma: INGEST_LUMA_STORE_URL/{url_key}.html, saleor: "
                "INGEST_SALEOR_STORE_URL/products/{slug}/).",
            ),
        ] = None,
        source: Annotated[
            str | None,
            typer.Option(
                help="Source name (products are keyed by source + id). Default: the feed file stem, "
                "or its folder for generic names (luma-catalog/products.jsonl -> luma)."
            ),
        ] = None,
        prune: Annotated[
            bool, typer.Option(help="Delete this source's products that are not in the feed.")
        ] = False,
        encoder: Annotated[
            str | None, typer.Option(help="Encoder registry name (default: FITTINGROOM_ENCODER, 'offline').")
        ] = None,
        batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Images per encoder call.")] = 32,
        workers: Annotated[
            int, typer.Option(min=1, max=64, help="Threads fetching and decoding images.")
        ] = 4,
        feed_format: Annotated[
            str | None, typer.Option("--format", help="csv, tsv or jsonl (default: from the file name).")
        ] = None,
        store_uri: Annotated[
            str | None,
            typer.Option("--store", help="Store URI (default: FITTINGROOM_STORE_URI or SQLite in home)."),
        ] = None,
        index_dir: Annotated[
            Path | None, typer.Option(help="FAISS index folder (default: home/index).")
        ] = None,
        image_root: Annotated[
            list[Path] | None,
            typer.Option(
                help="Folder local image paths of the feed may lie in, repeatable (default: only "
                "the feed's folder)."
            ),
        ] = None,
        annotate: Annotated[
            bool, typer.Option(help="Classify images with the try-on eligibility annotator when installed.")
        ] = True,
        strict: Annotated[bool, typer.Option(help="Exit with status 1 when any row was skipped.")] = False,
        progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the summary as one JSON object.")
        ] = False,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
    ) -> None:
        """Ingest a product feed: fetch images, embed them, upsert products, sync the index.

        Re-running an unchanged feed embeds nothing.

        Bad rows are reported with file and line, and skipped.

        Ctrl-C keeps what was committed: run the same command again to resume.
        """
        from catalog_ingest.annotators import load_default_annotators
        from catalog_ingest.links import check_template
        from catalog_ingest.mapper import FieldMapping, MappingError
        from catalog_ingest.readers import FeedError, FeedFormat
        from catalog_ingest.runner import (
            IngestAborted,
            IngestInterrupted,
            default_source,
            ingest_feed,
            validate_source,
        )
        from fittingroom.catalog.store import open_store
        from fittingroom.models.specs import get_encoder
        from fittingroom.settings import get_settings

        if not logging.getLogger().handlers:
            logging.basicConfig(
                level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
            )
        settings = get_settings()
        if not feed.is_file():
            raise _fail(f"{feed}: feed file not found", 2)
        try:
            mapping = FieldMapping.parse(map_ or [])
            if link_template:
                mapping = dataclasses.replace(mapping, link_template=check_template(link_template))
        except (MappingError, ValueError) as exc:
            raise _fail(str(exc), 2) from exc
        fmt = None
        if feed_format is not None:
            try:
                fmt = FeedFormat(feed_format.lower())
            except ValueError:
                raise _fail(f"--format {feed_format!r}: use csv, tsv or jsonl", 2) from None
        try:
            source = validate_source(source or default_source(feed))
        except ValueError as exc:
            raise _fail(str(exc), 2) from exc
        try:
            store = open_store(store_uri or settings.resolved_store_uri)
        except ValueError as exc:
            raise _fail(str(exc), 2) from exc
        try:
            try:
                enc = get_encoder(settings, encoder or settings.encoder)
            except KeyError as exc:
                raise _fail(str(exc.args[0]), 2) from exc
            except ValueError as exc:  # an option the encoder does not take
                raise _fail(str(exc), 2) from exc
            annotators = load_default_annotators(settings) if annotate else []
            try:
                report = ingest_feed(
                    feed,
                    store=store,
                    encoder=enc,
                    source=source,
                    mapping=mapping,
                    feed_format=fmt,
                    prune=prune,
                    batch_size=batch_size,
                    workers=workers,
                    annotators=annotators,
                    image_cache=settings.home / "images",
                    image_roots=image_root,
                    index_dir=index_dir or settings.resolved_index_dir,
                    progress=progress,
                )
            except FeedError as exc:
                raise _fail(str(exc), 2) from exc
            except IngestInterrupted as exc:
                _print_report(exc.report, as_json=as_json)
                raise _fail(
                    "interrupted; committed batches are kept, run the same command again to resume", 130
                ) from None
            except IngestAborted as exc:
                _print_report(exc.report, as_json=as_json)
                raise _fail(str(exc)) from exc
        finally:
            store.close()
        _print_report(report, as_json=as_json)
        if strict and report.bad_rows:
            raise typer.Exit(1)
