"""``fittingroom eval retrieval --end-to-end / --product-only``: the evaluations of
``fittingroom.retrieval.click_eval`` run from the CLI (models from the shelf, temporary stores)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from fittingroom.retrieval.click_eval import (
    CLASS_TYPES,
    END_TO_END_TARGET,
    NO_CLASS_STREET_LABELS,
    UNTYPED_CLASSES,
    ClickSearchReport,
    TypeP10Report,
)


def run_end_to_end(
    searcher: Any,
    encoder: Any,
    source: str | None,
    luma: list[Any],
    street_photos: Path,
    *,
    limit: int | None,
    quiet: bool,
) -> ClickSearchReport:
    """Click -> top mask -> the page's image search over ``searcher``'s store and index (restricted
    to ``source``), on the first ``limit`` labelled street photos (None: all)."""
    from rich.console import Console

    from fittingroom.retrieval.click_eval import (
        crop_search_fn,
        evaluate_click_search,
        load_click_photos,
        page_image_search,
        products_of_type,
        service_top_mask,
    )
    from fittingroom.retrieval.evaluation import searcher_search_fn
    from fittingroom.retrieval.search import Searcher
    from fittingroom.retrieval.settings import RetrievalSettings
    from fittingroom.segmentation.service import SegmentationService
    from fittingroom.segmentation.settings import SegmentationSettings

    rs = RetrievalSettings()
    page_searcher = Searcher(  # as the retrieval service builds its searcher (services/retrieval/app.py)
        searcher.store,
        searcher.index,
        encoder,
        candidate_multiplier=rs.candidate_multiplier,
        text_relevance_floor=rs.text_relevance_floor,
        color_boost=rs.image_color_boost,
    )
    service = SegmentationService(SegmentationSettings(disk_cache=False))
    validation = service.parser.meta.get("validation_photos") if service.parser is not None else None
    photos = load_click_photos(street_photos, limit=limit)
    console = Console(stderr=True, quiet=quiet)
    with console.status("end to end") as status:
        return evaluate_click_search(
            photos,
            products_of_type(luma),
            service_top_mask(service),
            page_image_search(
                page_searcher,
                source=source,
                working_side=rs.core().working_side,
                max_pixels=rs.max_image_pixels,
                cutout_background=rs.cutout_background,
            ),
            crop_search=crop_search_fn(encoder.query_vectors, searcher_search_fn(searcher, source)),
            validation_photos=set(validation) if validation else None,
            progress=lambda pid: status.update(f"end to end: photo {pid}"),
        )


def run_product_only(
    encoder: Any,
    street_photos: Path,
    garment_photos: Path,
    *,
    limit: int | None,
    quiet: bool,
    split: str = "validation",
) -> TypeP10Report:
    """Ingest the garment-photos ``split`` as a catalog in a temporary folder (the normal ingest
    runner) and search the crop eval's street crops (first ``limit`` photos) against it."""

    from catalog_ingest.runner import ingest_feed
    from fittingroom.catalog.store import open_store
    from fittingroom.index import VectorIndex
    from fittingroom.retrieval.click_eval import (
        crop_search_fn,
        evaluate_product_only,
        load_click_photos,
        write_product_feed,
    )
    from fittingroom.retrieval.evaluation import searcher_search_fn
    from fittingroom.retrieval.search import Searcher

    items = [it.street for ph in load_click_photos(street_photos, limit=limit) for it in ph.items]
    with tempfile.TemporaryDirectory(prefix="fittingroom-product-only-") as tmp:
        work = Path(tmp)
        feed = work / "garment-photos.jsonl"
        classes = write_product_feed(garment_photos, feed, split=split)
        uri = f"sqlite:///{work / 'catalog.db'}"
        with open_store(uri) as store:
            ingest_feed(
                feed,
                store=store,
                encoder=encoder,
                source="garment-photos",
                image_cache=work / "images",
                image_roots=[garment_photos.resolve()],
                index_dir=work / "index",
                progress=not quiet,
            )
        store = open_store(uri, read_only=True)
        try:
            searcher = Searcher(store, VectorIndex.open(work / "index", encoder.name), encoder)
            indexed = {pid for _, pid in store.product_keys()}
            report = evaluate_product_only(
                items,
                {pid: cls for pid, cls in classes.items() if pid in indexed},
                crop_search_fn(encoder.query_vectors, searcher_search_fn(searcher, None)),
            )
        finally:
            store.close()
    if len(indexed) < len(classes):
        report.notes.append(f"{len(classes) - len(indexed)} of {len(classes)} photos were not ingested")
    report.notes.append(f"catalog: {len(indexed)} {split} photos of garment-photos")
    return report


def product_only_json(report: TypeP10Report) -> dict[str, Any]:
    """The product-only summary plus the class mapping it was scored with."""
    return {
        **report.summary(),
        "class_types": {c: t.value for c, t in CLASS_TYPES.items()},
        "untyped_classes": list(UNTYPED_CLASSES),
        "street_labels_without_class": list(NO_CLASS_STREET_LABELS),
        "notes": report.notes,
    }


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def print_end_to_end(report: ClickSearchReport) -> None:
    from rich.console import Console
    from rich.table import Table

    data = report.as_json()
    console = Console()
    table = Table(
        title=f"End to end: click -> top mask -> image search ({data['garments']} garments on "
        f"{data['photos']} photos; target type P@10 >= {END_TO_END_TARGET})"
    )
    for col in ("type", "garments", "click P@10", "GT-crop P@10", "top-mask IoU"):
        table.add_column(col, justify="left" if col == "type" else "right")
    for t, n in data["garments_by_type"].items():
        table.add_row(
            t,
            str(n),
            _fmt(data["type_p10_by_type"][t]),
            _fmt(data.get("crop_type_p10_by_type", {}).get(t)),
            _fmt(data["top_mask_miou_by_type"][t]),
        )
    table.add_row(
        "all",
        str(data["garments"]),
        _fmt(data["type_p10"]),
        _fmt(data.get("crop_type_p10")),
        _fmt(data["top_mask_miou"]),
    )
    console.print(table)
    console.print(f"clicks with no mask: {data['no_mask']}; worst type P@10 {_fmt(data['type_p10_worst'])}")
    val = data.get("validation")
    if val:
        console.print(
            f"parsing head's validation photos only ({val['garments']} garments on {val['photos']} photos): "
            f"click P@10 {_fmt(val['type_p10'])}, GT-crop P@10 {_fmt(val.get('crop_type_p10'))}, "
            f"top-mask IoU {_fmt(val['top_mask_miou'])}"
        )


def print_product_only(report: TypeP10Report) -> None:
    from rich.console import Console
    from rich.table import Table

    data = product_only_json(report)
    console = Console()
    table = Table(
        title=f"Product-only catalog: street GT crops ({data['garments']} on {data['photos']} photos)"
    )
    table.add_column("type")
    table.add_column("classes")
    table.add_column("garments", justify="right")
    table.add_column("P@10", justify="right")
    for t, n in data["garments_by_type"].items():
        classes = ", ".join(c for c, ct in data["class_types"].items() if ct == t)
        table.add_row(t, classes, str(n), _fmt(data["type_p10_by_type"][t]))
    table.add_row("all", "", str(data["garments"]), _fmt(data["type_p10"]))
    console.print(table)
    console.print(
        f"classes of no type (distractors): {', '.join(data['untyped_classes'])}; street labels with no "
        f"class of their own: {', '.join(data['street_labels_without_class'])}"
    )
    for note in data["notes"]:
        console.print(f"[yellow]{note}[/yellow]")
