"""CLI of the retrieval component: ``fittingroom search``, ``fittingroom eval retrieval`` and
``fittingroom eval queries``.

Nothing heavy is imported at module level (``fittingroom --help`` stays fast).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from fittingroom.catalog.store import CatalogStore
    from fittingroom.models.encoders.base import Encoder
    from fittingroom.retrieval.search import Searcher


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def _load_encoder(name: str) -> Encoder:
    """The registered encoder ``name``; a clear CLI error when it is unknown or its weights are missing."""
    from fittingroom.models.specs import get_encoder
    from fittingroom.settings import get_settings

    try:
        return get_encoder(get_settings(), name)
    except KeyError as exc:
        raise _fail(str(exc.args[0]), 2) from exc
    except ValueError as exc:  # an option the encoder does not take (FITTINGROOM_ENCODER_OPTIONS)
        raise _fail(str(exc), 2) from exc
    except (FileNotFoundError, OSError, RuntimeError) as exc:
        raise _fail(f"cannot load encoder {name!r}: {exc}") from exc


def _open_searcher(
    store_uri: str | None, index_dir: Path | None, encoder_name: str | None
) -> tuple[Searcher, CatalogStore, Encoder]:
    from fittingroom.catalog.store import open_store
    from fittingroom.index import IndexNotFoundError, open_index
    from fittingroom.retrieval.search import Searcher
    from fittingroom.retrieval.settings import RetrievalSettings

    settings = RetrievalSettings()
    settings.apply_faiss_threads()
    uri = store_uri or settings.resolved_store_uri
    try:
        store = open_store(uri, read_only=True)
    except FileNotFoundError as exc:
        raise _fail(f"{exc}") from exc
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
    name = encoder_name or settings.resolved_encoder
    try:
        encoder = _load_encoder(name)
    except typer.Exit:
        store.close()
        raise
    try:  # IndexMismatchError (another encoder's index) is an IndexNotFoundError
        index = open_index(
            index_dir or settings.resolved_index_dir, encoder.name, read_only=True, dim=encoder.dim
        )
    except IndexNotFoundError as exc:
        store.close()
        raise _fail(str(exc)) from exc
    searcher = Searcher(
        store,
        index,
        encoder,
        candidate_multiplier=settings.candidate_multiplier,
        text_relevance_floor=settings.text_relevance_floor,
        color_boost=settings.image_color_boost,
    )
    return searcher, store, encoder


def _resolve_product(store: CatalogStore, ref: str) -> str:
    """'source:id' as given, or a bare id when exactly one source has it."""
    if ":" in ref:
        return ref
    matches = sorted(f"{s}:{i}" for s, i in store.product_keys() if i == ref)
    if not matches:
        raise _fail(f"--product: no product with id {ref!r} in the catalog", 2)
    if len(matches) > 1:
        raise _fail(f"--product: {ref!r} is ambiguous, use one of {', '.join(matches)}", 2)
    return matches[0]


def search_command(
    image: Annotated[
        Path | None,
        typer.Option("--image", help="Query photo (JPEG/PNG/...; RGBA = cut-out with alpha mask)."),
    ] = None,
    box: Annotated[
        str | None, typer.Option("--box", help="Crop the photo first: x0,y0,x1,y1 in pixels.")
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", help="Text query, e.g. 'black hooded sweatshirt'.")
    ] = None,
    image_weight: Annotated[
        float | None,
        typer.Option("--image-weight", min=0.0, max=1.0, help="Image vs text weight (default 0.5)."),
    ] = None,
    product: Annotated[
        str | None, typer.Option("--product", help="More like this product ('source:id' or a unique id).")
    ] = None,
    category: Annotated[
        str | None, typer.Option(help="Category path element or prefix, e.g. 'Men/Tops'.")
    ] = None,
    brand: Annotated[str | None, typer.Option(help="Exact brand (case-insensitive).")] = None,
    min_price: Annotated[float | None, typer.Option("--min-price", min=0.0)] = None,
    max_price: Annotated[float | None, typer.Option("--max-price", min=0.0)] = None,
    eligible: Annotated[
        bool | None,
        typer.Option("--eligible/--not-eligible", help="Only products that can / cannot be tried on."),
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=1000, help="Number of products.")] = 10,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many products (pagination).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line per result.")] = False,
    store_uri: Annotated[str | None, typer.Option("--store", help="Store URI (default: settings).")] = None,
    index_dir: Annotated[
        Path | None, typer.Option("--index-dir", help="Index folder (default: settings).")
    ] = None,
    encoder_name: Annotated[
        str | None, typer.Option("--encoder", help="Encoder name (default: settings).")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            metavar="URL",
            help="Send the query to a running 'fittingroom serve' at URL (e.g. http://127.0.0.1:8000) "
            "instead of loading models; --product then takes 'source:id'. Default: FITTINGROOM_SERVER; "
            "'' searches locally.",
        ),
    ] = None,
) -> None:
    """Search the catalog with a photo (optionally a box of it), a text, both, or a product."""
    if image is None and not (text and text.strip()) and product is None:
        raise typer.BadParameter("give --image, --text or --product (or a combination)")
    if image is not None and product is not None:
        raise typer.BadParameter("--image and --product are two query images: give one")
    if box is not None and image is None:
        raise typer.BadParameter("--box crops --image: give --image too", param_hint="--box")
    if min_price is not None and max_price is not None and min_price > max_price:
        raise typer.BadParameter(f"--min-price {min_price} is greater than --max-price {max_price}")
    remote = _server_url(server, local_options=(store_uri, index_dir, encoder_name))
    filters = {"category": category, "brand": brand, "min_price": min_price, "max_price": max_price}
    if remote is not None:
        _search_on_server(
            remote,
            text=text,
            image=image,
            box=box,
            image_weight=image_weight,
            product=product,
            filters={**filters, "eligible": eligible},
            k=k,
            offset=offset,
            as_json=as_json,
        )
        return
    from fittingroom.catalog.store import ProductFilter
    from fittingroom.cli.search_output import page_results, print_results
    from fittingroom.images import ImageDecodeError, crop_box, load_image, parse_box
    from fittingroom.models.encoders.base import Query
    from fittingroom.retrieval.search import NoIndexedImageError, ProductNotFoundError

    img = None
    if image is not None:
        try:
            img = load_image(image)
        except FileNotFoundError:
            raise typer.BadParameter(f"{image}: no such file", param_hint="--image") from None
        except (ImageDecodeError, IsADirectoryError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--image") from None
        if box is not None:
            try:
                img = crop_box(img, parse_box(box))
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--box") from None

    searcher, store, _ = _open_searcher(store_uri, index_dir, encoder_name)
    try:
        flt = ProductFilter(
            category=category, brand=brand, min_price=min_price, max_price=max_price, tryon_eligible=eligible
        )
        weight = 0.5 if image_weight is None else image_weight
        try:
            if product is not None:
                uid = _resolve_product(store, product)
                page = searcher.more_like_this(
                    uid, text=text, image_weight=weight, k=k, offset=offset, flt=flt
                )
            elif (
                text and text.strip() and img is None
            ):  # understood: constraints filter, the rest is embedded
                page = searcher.search_text(text, k=k, offset=offset, flt=flt)
            else:
                page = searcher.search(
                    Query(image=img, text=text, image_weight=weight), k=k, offset=offset, flt=flt
                )
        except (ProductNotFoundError, NoIndexedImageError, ValueError) as exc:
            raise _fail(str(exc)) from exc
        print_results(page_results(page), offset, as_json)
    finally:
        store.close()


def _server_url(option: str | None, *, local_options: tuple[object, ...]) -> str | None:
    """The server ``fittingroom search`` sends its query to: ``--server`` (``''``: none), else
    ``FITTINGROOM_SERVER`` unless a local-only option (``--store``, ``--index-dir``,
    ``--encoder``) is given; None = search locally."""
    if option is None:
        from fittingroom.settings import get_settings

        setting = get_settings().server
        return None if setting is None or any(v is not None for v in local_options) else str(setting)
    if not option.strip():
        return None
    from pydantic import AnyHttpUrl, TypeAdapter, ValidationError

    if any(v is not None for v in local_options):
        raise typer.BadParameter(
            "--store, --index-dir and --encoder choose a local search: not with --server",
            param_hint="--server",
        )
    try:
        return str(TypeAdapter(AnyHttpUrl).validate_python(option))
    except ValidationError:
        raise typer.BadParameter(f"{option!r} is not an http(s) URL", param_hint="--server") from None


def _search_on_server(server: str, *, image: Path | None, as_json: bool, offset: int, **query: Any) -> None:
    """``server_search`` and print its answer as a local search would (errors: exit 1 or 2)."""
    from fittingroom.cli.search_client import ServerSearchError, server_search
    from fittingroom.cli.search_output import print_results

    if image is not None and not image.is_file():
        raise typer.BadParameter(f"{image}: no such file", param_hint="--image")
    product = query.pop("product")
    try:
        results = server_search(server, image=image, product_id=product, offset=offset, **query)
    except ServerSearchError as exc:
        raise _fail(str(exc), exc.exit_code) from exc
    except OSError as exc:
        raise typer.BadParameter(f"{image}: {exc}", param_hint="--image") from None
    print_results(results, offset, as_json)


# ---- options shared by the evaluations -----------------------------------------------------------
EvalEncoder = Annotated[str | None, typer.Option("--encoder", help="Encoder name (default: settings).")]
EvalStore = Annotated[
    str | None,
    typer.Option(
        "--store", help="Evaluate an already ingested store (else ingest the catalog(s) into a temp one)."
    ),
]
EvalIndexDir = Annotated[Path | None, typer.Option("--index-dir", help="Index folder of --store.")]
EvalWorkdir = Annotated[
    Path | None, typer.Option(help="Keep the temporary store/index here (default: a temp dir, deleted).")
]
EvalJson = Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object.")]


# ---- eval retrieval -------------------------------------------------------------------------------
def eval_retrieval_command(
    catalog: Annotated[
        Path | None,
        typer.Option(help="Luma-format products.jsonl (or its folder). Default: SHARED_DATA/luma-catalog."),
    ] = None,
    street_photos: Annotated[
        Path | None,
        typer.Option(
            "--street-photos", help="Clothing Co-Parsing folder. Default: SHARED_DATA/street-photos."
        ),
    ] = None,
    encoder_name: EvalEncoder = None,
    store_uri: EvalStore = None,
    index_dir: EvalIndexDir = None,
    workdir: EvalWorkdir = None,
    as_json: EvalJson = False,
    standard: Annotated[
        bool, typer.Option("--standard/--no-standard", help="Run the four tasks of issue 2 (crop eval).")
    ] = True,
    end_to_end: Annotated[
        bool,
        typer.Option(
            "--end-to-end", help="Also click each street garment -> top mask -> the page's image search."
        ),
    ] = False,
    product_only: Annotated[
        bool,
        typer.Option(
            "--product-only",
            help="Also search street crops in the garment-photos validation split as a catalog.",
        ),
    ] = False,
    garment_photos: Annotated[
        Path | None,
        typer.Option("--garment-photos", help="garment-photos folder. Default: SHARED_DATA/garment-photos."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=1, help="--end-to-end / --product-only: the first N labelled street photos only."
        ),
    ] = None,
    image_category: Annotated[
        bool,
        typer.Option(
            "--image-category",
            help="Run the four tasks again with every image query restricted to its inferred garment "
            "category, as POST /search/image does (both tables are printed; JSON: 'image_category').",
        ),
    ] = False,
    category_min_prob: Annotated[
        float | None,
        typer.Option(
            "--category-min-prob", min=0.0, max=1.0, help="Default: RETRIEVAL_IMAGE_CATEGORY_MIN_PROB."
        ),
    ] = None,
) -> None:
    """Retrieval quality on the Luma catalog and the street photos (issue 2, section 8); with
    --end-to-end / --product-only also the evaluations of issue 16 step 6 (retrieval/click_eval.py)."""
    from fittingroom.retrieval.evaluation import (
        detect_source,
        evaluate_retrieval,
        load_luma,
        load_street_items,
        searcher_search_fn,
    )
    from fittingroom.settings import get_settings

    if not (standard or end_to_end or product_only):
        raise typer.BadParameter(
            "nothing to evaluate: --no-standard needs --end-to-end and/or --product-only",
            param_hint="--no-standard",
        )
    if limit is not None and not (end_to_end or product_only):
        raise typer.BadParameter(
            "--limit applies to --end-to-end / --product-only only; add one of them", param_hint="--limit"
        )
    if image_category and not standard:
        raise typer.BadParameter(
            "--image-category re-runs the standard evaluation: drop --no-standard", param_hint="--image-category"
        )
    if garment_photos is not None and not product_only:
        raise typer.BadParameter("--garment-photos needs --product-only", param_hint="--garment-photos")
    shared = get_settings().shared_data
    catalog = catalog or shared / "luma-catalog" / "products.jsonl"
    if catalog.is_dir():
        catalog = catalog / "products.jsonl"
    street_photos = street_photos or shared / "street-photos"
    gp = garment_photos or shared / "garment-photos"
    # every input is checked before the first (long) evaluation starts
    searches_luma = standard or end_to_end
    if searches_luma and not catalog.is_file():
        raise typer.BadParameter(f"{catalog}: no such file", param_hint="--catalog")
    if not (street_photos / "annotations.json").is_file():
        raise typer.BadParameter(f"{street_photos}: no annotations.json there", param_hint="--street-photos")
    if product_only and not (gp / "index.csv").is_file():
        raise typer.BadParameter(f"{gp}: no index.csv there", param_hint="--garment-photos")
    try:
        luma = load_luma(catalog) if searches_luma else []
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--catalog") from None

    report = e2e = with_category = None
    encoder: Any = None
    if searches_luma:
        with _eval_searcher(
            [(catalog, "luma")], store_uri, index_dir, workdir, encoder_name, quiet=as_json
        ) as (searcher, store, encoder):
            source = detect_source(store, [p.sku for p in luma])
            street = load_street_items(street_photos) if (standard or image_category) else []
            encode = encoder.query_vectors
            if image_category:  # the second run reuses the query vectors of the first
                from fittingroom.cli.retrieval_category import cached_encode

                encode = cached_encode(encode)
            if standard:
                report = evaluate_retrieval(
                    luma,
                    catalog.parent,
                    street,
                    encode,
                    searcher_search_fn(searcher, source),
                    progress=None if as_json else _progress_printer(),
                )
            if image_category:
                from fittingroom.cli.retrieval_category import run_with_image_category

                with_category = run_with_image_category(
                    searcher, encoder, encode, source, luma, catalog.parent, street, category_min_prob
                )
            if end_to_end:
                from fittingroom.cli.retrieval_click import run_end_to_end

                e2e = run_end_to_end(
                    searcher, encoder, source, luma, street_photos, limit=limit, quiet=as_json
                )
    product = None
    if product_only:
        from fittingroom.cli.retrieval_click import run_product_only

        encoder = encoder or _load_encoder(encoder_name or get_settings().encoder)
        product = run_product_only(encoder, street_photos, gp, limit=limit, quiet=as_json)
    if as_json:
        out: dict[str, Any] = {"encoder": encoder.name, **(report.as_json() if report else {})}
        if with_category is not None:
            out["image_category"] = with_category.as_json()
        if e2e is not None:
            out["end_to_end"] = e2e.as_json()
        if product is not None:
            from fittingroom.cli.retrieval_click import product_only_json

            out["product_only"] = product_only_json(product)
        typer.echo(json.dumps(out))
        return
    if report is not None:
        _print_report(report, encoder.name)
    if with_category is not None:
        _print_report(with_category.report, with_category.title(encoder.name))
    if e2e is not None:
        from fittingroom.cli.retrieval_click import print_end_to_end

        print_end_to_end(e2e)
    if product is not None:
        from fittingroom.cli.retrieval_click import print_product_only

        print_product_only(product)


def _open_searcher_with(
    store_uri: str, index_dir: Path, encoder: Encoder
) -> tuple[Searcher, CatalogStore, Encoder]:
    from fittingroom.catalog.store import open_store
    from fittingroom.index import VectorIndex
    from fittingroom.retrieval.search import Searcher

    store = open_store(store_uri, read_only=True)
    return Searcher(store, VectorIndex.open(index_dir, encoder.name), encoder), store, encoder


@contextmanager
def _eval_searcher(
    feeds: list[tuple[Path, str | None]],
    store_uri: str | None,
    index_dir: Path | None,
    workdir: Path | None,
    encoder_name: str | None,
    *,
    quiet: bool,
) -> Iterator[tuple[Any, Any, Encoder]]:
    """(searcher, store, encoder) an evaluation runs on: the already ingested ``store_uri``, or
    ``feeds`` ((feed, source or None for the feed's default) pairs) ingested into a store in
    ``workdir`` (default: a temporary folder, removed afterwards). The store is closed on exit."""
    import tempfile

    tmp = (
        tempfile.TemporaryDirectory(prefix="fittingroom-eval-")
        if workdir is None and store_uri is None
        else None
    )
    try:
        if store_uri is None:
            work = Path(tmp.name) if tmp is not None else workdir
            assert work is not None
            work.mkdir(parents=True, exist_ok=True)
            store_uri = f"sqlite:///{work / 'catalog.db'}"
            index_dir = work / "index"
            encoder: Encoder | None = None
            for feed, source in feeds:
                encoder = _ingest_feed_for_eval(
                    feed,
                    store_uri,
                    index_dir,
                    work / "images",
                    encoder_name,
                    encoder,
                    source=source,
                    quiet=quiet,
                )
            assert encoder is not None
            searcher, store, encoder = _open_searcher_with(store_uri, index_dir, encoder)
        else:
            searcher, store, encoder = _open_searcher(store_uri, index_dir, encoder_name)
        try:
            yield searcher, store, encoder
        finally:
            store.close()
    finally:
        if tmp is not None:
            tmp.cleanup()


def _progress_printer() -> Any:
    from rich.console import Console

    console = Console(stderr=True)
    done: dict[str, int] = {}

    def progress(task: str, n: int) -> None:
        if task not in done and done and not console.is_terminal:
            last = next(reversed(done))
            console.print(f"  {last}: {done[last]} queries")
        done[task] = done.get(task, 0) + n
        if console.is_terminal:
            console.print(f"  {task}: {done[task]} queries ", end="\r")

    return progress


def _print_report(report: Any, encoder_name: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from fittingroom.retrieval.evaluation import TARGETS

    console = Console()
    labels = {
        "luma_other_color_hit@1": "Luma other colour hit rate@1",
        "luma_other_color_hit@10": "Luma other colour hit rate@10",
        "luma_leaf_category_p10": "Luma leaf-category precision@10",
        "luma_leaf_name_p10": "  (leaf name only, any gender)",
        "street_type_p10": "Street photos garment-type precision@10",
        "street_type_p10_worst": "  worst type",
        "text_p10": "Text '<colour> <type>' precision@10 (capped)",
        "text_p10_raw": "  raw (/10)",
        "tti_hit@10": "Text+image hit rate@10",
        "tti_color_p10": "Text+image colour precision@10 (capped)",
        "tti_color_p10_raw": "  raw (/10)",
    }
    table = Table(title=f"Retrieval evaluation - encoder {encoder_name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    for key, label in labels.items():
        v = report.metrics.get(key, math.nan)
        target = TARGETS.get(key)
        ok = (
            ""
            if target is None or math.isnan(v)
            else (" [green]ok[/green]" if v >= target else " [red]below[/red]")
        )
        table.add_row(label, "n/a" if math.isnan(v) else f"{v:.3f}", f">= {target}{ok}" if target else "")
    console.print(table)
    per = Table(title="Street photos: garment-type precision@10 per type")
    per.add_column("type")
    per.add_column("queries", justify="right")
    per.add_column("precision@10", justify="right")
    for t, v in report.per_type.items():
        per.add_row(t, str(int(v["n"])), "n/a" if math.isnan(v["p10"]) else f"{v['p10']:.3f}")
    console.print(per)
    console.print(", ".join(f"{k}: {v}" for k, v in report.counts.items()))
    for note in report.notes:
        console.print(f"[yellow]{note}[/yellow]")


# ---- eval queries ---------------------------------------------------------------------------------
def _default_query_set() -> Path:
    """The query set kept with the tests of this checkout."""
    return (
        Path(__file__).resolve().parents[2] / "tests" / "fittingroom" / "retrieval" / "data" / "queries.jsonl"
    )


def eval_queries_command(
    queries: Annotated[
        Path | None,
        typer.Option(help="Query set (JSONL). Default: tests/fittingroom/retrieval/data/queries.jsonl."),
    ] = None,
    catalog: Annotated[
        list[Path] | None,
        typer.Option(
            "--catalog",
            help="Feeds to ingest (repeatable). Default: SHARED_DATA/luma-catalog and SHARED_DATA/saleor-catalog.",
        ),
    ] = None,
    encoder_name: EvalEncoder = None,
    store_uri: EvalStore = None,
    index_dir: EvalIndexDir = None,
    workdir: EvalWorkdir = None,
    as_json: EvalJson = False,
) -> None:
    """Query understanding: parse accuracy, results breaking a parsed constraint, non-apparel
    results of garment queries, and the relevance floor calibrated on the Luma catalog."""

    from fittingroom.retrieval.evaluation import load_luma
    from fittingroom.retrieval.query_eval import (
        calibrate_floor,
        evaluate_queries,
        load_query_set,
        luma_text_pairs,
    )
    from fittingroom.settings import get_settings

    shared = get_settings().shared_data
    queries = queries or _default_query_set()
    if not queries.is_file():
        raise typer.BadParameter(f"{queries}: no such file", param_hint="--queries")
    try:
        cases = load_query_set(queries)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--queries") from None
    feeds = [c / "products.jsonl" if c.is_dir() else c for c in (catalog or [])] or [
        shared / "luma-catalog" / "products.jsonl",
        shared / "saleor-catalog" / "products.jsonl",
    ]
    for feed in feeds:
        if not feed.is_file():
            raise typer.BadParameter(f"{feed}: no such file", param_hint="--catalog")
    luma_feed = next((f for f in feeds if "luma" in str(f).lower()), feeds[0])
    luma = load_luma(luma_feed)
    with _eval_searcher(
        [(f, None) for f in feeds], store_uri, index_dir, workdir, encoder_name, quiet=as_json
    ) as (
        searcher,
        store,
        encoder,
    ):
        from fittingroom.retrieval.evaluation import detect_source

        source = detect_source(store, [p.sku for p in luma])
        report = evaluate_queries(searcher, cases)
        report.calibration = calibrate_floor(
            searcher, luma_text_pairs(luma), [c.q for c in cases if c.no_match], source=source
        )
        report.metrics["relevance_floor"] = (
            math.nan if searcher.text_relevance_floor is None else searcher.text_relevance_floor
        )
    if as_json:
        typer.echo(json.dumps({"encoder": encoder.name, **report.as_json()}))
        return
    _print_query_report(report, encoder.name)


def _ingest_feed_for_eval(
    feed: Path,
    store_uri: str,
    index_dir: Path,
    image_dir: Path,
    encoder_name: str | None,
    encoder: Encoder | None,
    *,
    source: str | None = None,
    quiet: bool,
) -> Encoder:
    """Ingest ``feed`` (as ``source``, default: the feed's own) into the store + index; returns the encoder."""
    from catalog_ingest.runner import default_source, ingest_feed
    from fittingroom.catalog.store import open_store
    from fittingroom.settings import get_settings

    encoder = encoder or _load_encoder(encoder_name or get_settings().encoder)
    with open_store(store_uri) as store:
        report = ingest_feed(
            feed,
            store=store,
            encoder=encoder,
            source=source or default_source(feed),
            image_cache=image_dir,
            index_dir=index_dir,
            progress=not quiet,
        )
    if report.bad_rows and not quiet:
        typer.echo(f"ingest of {feed} skipped {len(report.bad_rows)} bad rows", err=True)
    return encoder


def _print_query_report(report: Any, encoder_name: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Query understanding - encoder {encoder_name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    m = report.metrics
    rows = [
        (
            "Parse accuracy (every constraint right)",
            f"{m['parse_accuracy']:.3f}",
            ">= 0.95",
            m["parse_accuracy"] >= 0.95,
        ),
        ("Top-10 results breaking a parsed constraint", f"{m['violations']:.0f}", "0", m["violations"] == 0),
        ("Non-apparel results of garment queries", f"{m['non_apparel']:.0f}", "0", m["non_apparel"] == 0),
        ("No-match queries flagged 'no good match'", f"{m['no_match_flagged']:.3f}", "", None),
        ("Answerable queries with a good first hit", f"{m['answerable_good']:.3f}", "", None),
        (
            "Relevance floor used",
            "n/a" if math.isnan(m["relevance_floor"]) else f"{m['relevance_floor']:.4f}",
            "",
            None,
        ),
    ]
    for label, value, target, ok in rows:
        mark = "" if ok is None else (" [green]ok[/green]" if ok else " [red]missed[/red]")
        table.add_row(label, value, target + mark)
    console.print(table)
    cal = report.calibration
    if cal:
        console.print(
            f"Floor calibration on Luma: floor {cal['floor']:.4f}, balanced accuracy "
            f"{cal['balanced_accuracy']:.3f} ({cal['positive_hits']:.0f} relevant / {cal['negative_hits']:.0f} "
            f"irrelevant hits; relevant p05 {cal['positive_p05']:.3f}, irrelevant p95 {cal['negative_p95']:.3f})"
        )
    console.print(", ".join(f"{k}: {v}" for k, v in report.counts.items()))
    for f in report.failures:
        console.print(f"[yellow]parse: {f['q']!r}: {'; '.join(f['errors'])}[/yellow]")
    for v in report.violations[:20]:
        console.print(f"[red]violation: {v['q']!r} #{v['rank']} {v['id']}: {v['why']}[/red]")


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("search")(search_command)
    groups["eval"].command("retrieval")(eval_retrieval_command)
    groups["eval"].command("queries")(eval_queries_command)
