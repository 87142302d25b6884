"""``fittingroom train|eval|review eligibility`` (imports nothing heavy at module level)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

LabelsOpt = Annotated[
    Path | None,
    typer.Option(
        "--labels",
        help="labels CSV (path, photo_type, garment_category[, group, source]); "
        "default: <ELIGIBILITY_WORK_DIR>/labels/labels.csv",
    ),
]


def _settings():  # noqa: ANN202
    from fittingroom.models.eligibility.settings import get_eligibility_settings

    return get_eligibility_settings()


def _read(path: Path) -> list:
    from fittingroom.training.eligibility.labels import LabelsError, read_labels

    try:
        return read_labels(path)
    except (FileNotFoundError, LabelsError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--labels") from None


def _fmt(v: Any) -> str:
    return "-" if isinstance(v, float) and math.isnan(v) else f"{v:.4f}" if isinstance(v, float) else str(v)


def print_metrics(metrics: dict[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("images", str(metrics["n_images"]))
    t.add_row("photo_type accuracy", _fmt(metrics["photo_type"]["accuracy"]))
    for k, d in metrics["photo_type"]["per_class"].items():
        if d["support"]:
            t.add_row(
                f"  {k} precision / recall (n={d['support']})",
                f"{_fmt(d['precision'])} / {_fmt(d['recall'])}",
            )
    gc = metrics["garment_category"]
    t.add_row(f"garment_category accuracy (n={gc['n_scored']})", _fmt(gc["accuracy"]))
    for k, d in gc["per_class"].items():
        if d["support"]:
            t.add_row(
                f"  {k} precision / recall (n={d['support']})",
                f"{_fmt(d['precision'])} / {_fmt(d['recall'])}",
            )
    e = metrics["eligibility"]
    t.add_row("eligibility threshold", _fmt(e["threshold"]))
    t.add_row(f"eligibility precision (predicted {e['predicted']})", _fmt(e["precision"]))
    t.add_row(f"eligibility recall (positives {e['positives']})", _fmt(e["recall"]))
    Console().print(t)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    @groups["train"].command("eligibility")
    def train_cmd(
        labels: LabelsOpt = None,
        build_labels: Annotated[
            bool, typer.Option("--build-labels", help="(re)build the labels CSV from --shared-data first")
        ] = False,
        shared_data: Annotated[
            Path | None,
            typer.Option(help="shared data folder for --build-labels (default: FITTINGROOM_SHARED_DATA)"),
        ] = None,
        corrections: Annotated[
            Path | None,
            typer.Option(help="corrected review CSV: its labels replace those of the same images"),
        ] = None,
        out_dir: Annotated[
            Path | None,
            typer.Option(
                help="where to write the head, metrics.json and MODEL_CARD.md "
                "(default: <FITTINGROOM_MODEL_DIR>/eligibility)"
            ),
        ] = None,
        c: Annotated[float, typer.Option(help="inverse L2 regularisation of the logistic regressions")] = 0.3,
        refit: Annotated[
            bool,
            typer.Option(
                help="refit the written head on train + validation (same C and threshold); "
                "--no-refit writes the validated train-only head"
            ),
        ] = True,
        n_collages: Annotated[
            int, typer.Option(min=0, help="synthetic 'other' collages added by --build-labels")
        ] = 60,
    ) -> None:
        """Train the eligibility heads (deterministic); pick the threshold on validation."""
        from rich.console import Console

        from fittingroom.settings import get_settings
        from fittingroom.training.eligibility.labels import apply_corrections, write_labels
        from fittingroom.training.eligibility.labels import build_labels as build
        from fittingroom.training.eligibility.train import train

        s = _settings()
        path = labels or s.default_labels_path
        if build_labels:
            rows = build(
                shared_data or get_settings().shared_data,
                collage_dir=path.parent / "collages",
                n_collages=n_collages,
                val_fraction=s.val_fraction,
                seed=s.seed,
            )
            write_labels(rows, path)
            Console().print(f"wrote {len(rows)} labels to {path}")
        elif not path.is_file():
            raise typer.BadParameter(
                f"{path} not found: pass --labels or --build-labels", param_hint="--labels"
            )
        rows = _read(path)
        if corrections:
            rows = apply_corrections(rows, _read(corrections))
        target = out_dir or s.runs_dir
        try:
            metrics = train(rows, s, target, c=c, labels_path=path, refit=refit)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--labels") from None
        print_metrics(metrics["validation"], f"validation ({metrics['version']})")
        Console().print(f"wrote {target}/eligibility_head.npz, metrics.json, MODEL_CARD.md")

    @groups["eval"].command("eligibility")
    def eval_cmd(
        labels: LabelsOpt = None,
        head: Annotated[
            Path | None, typer.Option(help="head .npz (default: ELIGIBILITY_HEAD_PATH or packaged)")
        ] = None,
        split: Annotated[
            str,
            typer.Option(
                help="score 'all' rows, or only the 'val' / 'train' side of the group-hash split the head "
                "was trained with (seed and fraction stored in the head)"
            ),
        ] = "all",
        as_json: Annotated[bool, typer.Option("--json", help="print the metrics as one JSON object")] = False,
    ) -> None:
        """Score the current model on a labels CSV (empty garment_category = not scored)."""
        from fittingroom.models.eligibility.model import EligibilityHead
        from fittingroom.training.eligibility.labels import split_of
        from fittingroom.training.eligibility.train import evaluate, features_for

        s = _settings()
        rows = _read(labels or s.default_labels_path)
        if split not in ("all", "train", "val"):
            raise typer.BadParameter(f"{split!r} is not one of all, train, val", param_hint="--split")
        h = EligibilityHead.load(head or s.resolved_head_path)
        if s.threshold is not None:
            h.threshold = s.threshold
        if split != "all":
            frac = float(h.meta.get("val_fraction", s.val_fraction))
            seed = int(h.meta.get("seed", s.seed))
            rows = [r for r in rows if split_of(r.group, frac, seed) == split]
            if not rows:
                raise typer.BadParameter(f"no rows in the {split!r} split", param_hint="--split")
        import time

        t0 = time.perf_counter()
        x = features_for(rows, s)
        t1 = time.perf_counter()
        metrics = evaluate(h, rows, x)
        t2 = time.perf_counter()
        metrics["model"] = h.version
        metrics["split"] = split
        metrics["held_out"] = split == "val" and not h.meta.get("refit", False)
        metrics["seconds"] = {"features (incl. cache hits)": round(t1 - t0, 3), "heads": round(t2 - t1, 4)}
        metrics["heads_images_per_s"] = round(len(rows) / max(t2 - t1, 1e-9), 1)
        if as_json:
            typer.echo(json.dumps(metrics, sort_keys=True))
        else:
            note = "" if split != "val" or metrics["held_out"] else ", NOT held out: head refitted on val"
            print_metrics(metrics, f"eligibility ({h.version}, split {split}{note})")

    @groups["review"].command("eligibility-labels")
    def label_sheets_cmd(
        labels: LabelsOpt = None,
        out_dir: Annotated[
            Path | None, typer.Option(help="default: <ELIGIBILITY_WORK_DIR>/labels/sheets")
        ] = None,
        per_sheet: Annotated[int, typer.Option(min=1, help="images per class sheet (evenly sampled)")] = 200,
    ) -> None:
        """One contact sheet per label class of a labels CSV: look at each before trusting it."""
        from rich.console import Console

        from fittingroom.training.eligibility.sheets import label_sheets

        s = _settings()
        path = labels or s.default_labels_path
        rows = _read(path)
        written = label_sheets(rows, out_dir or path.parent / "sheets", per_sheet=per_sheet)
        for p in written:
            Console().print(str(p))

    @groups["review"].command("eligibility")
    def review_cmd(
        labels: LabelsOpt = None,
        out_dir: Annotated[Path | None, typer.Option(help="default: <ELIGIBILITY_WORK_DIR>/review")] = None,
        limit: Annotated[int, typer.Option(min=1, help="images on the sheet")] = 60,
        cross_validate: Annotated[
            bool,
            typer.Option(help="rank by 5-fold out-of-fold predictions (honest on the training images)"),
        ] = True,
    ) -> None:
        """Contact sheet + CSV of the images the model is least sure about or disagrees with."""
        from rich.console import Console

        from fittingroom.models.eligibility.model import EligibilityHead
        from fittingroom.training.eligibility.review import review
        from fittingroom.training.eligibility.train import features_for

        s = _settings()
        rows = _read(labels or s.default_labels_path)
        h = EligibilityHead.load(s.resolved_head_path)
        res = review(
            h,
            rows,
            features_for(rows, s),
            out_dir or s.review_dir,
            limit=limit,
            cross_validate=cross_validate,
        )
        Console().print(
            f"{res.n_disagree} of {len(rows)} images disagree with their label; wrote {res.n_listed} to "
            f"{res.sheet} and {res.csv} (fix photo_type/garment_category there, then "
            f"`fittingroom train eligibility --corrections {res.csv}`)"
        )
