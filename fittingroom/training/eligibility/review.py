"""Review loop: the images the model is least sure about or disagrees with, as a sheet + CSV.

``review`` ranks labelled images by (1) disagreement with the label (photo type, category or
eligibility) and (2) uncertainty (eligibility score close to the threshold, or a low top
photo-type probability), writes the top ``limit`` as a contact sheet PNG (``sheets.py``) and a
labels CSV (same columns as the input plus the predictions) that an operator corrects and hands
back with ``fittingroom train eligibility --corrections review.csv``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fittingroom.models.eligibility.model import EligibilityHead
from fittingroom.training.eligibility.labels import LabelRow, write_labels
from fittingroom.training.eligibility.sheets import SheetItem, contact_sheet
from fittingroom.training.eligibility.train import is_eligible_label


@dataclass(frozen=True)
class ReviewResult:
    sheet: Path
    csv: Path
    n_disagree: int
    n_listed: int


def out_of_fold_predictions(
    head: EligibilityHead, rows: Sequence[LabelRow], x: np.ndarray, *, folds: int = 5, seed: int = 0
) -> dict[str, np.ndarray]:
    """``head.predict``-like output where every row is predicted by heads fitted without its group.

    A head scores its own training images almost perfectly, so reviewing them with it finds
    nothing; ``folds`` group-wise folds (hash of ``group``) with the head's ``c`` give honest
    predictions. Class lists follow ``head``; the threshold is ``head.threshold``.
    """
    from fittingroom.models.eligibility.model import eligibility_scores, fit_head

    fold = np.array([_fold_of(r.group, folds, seed) for r in rows])
    pt = np.zeros((len(rows), len(head.pt_classes)))
    cat = np.zeros((len(rows), len(head.cat_classes)))
    for k in range(folds):
        test, train_idx = np.flatnonzero(fold == k), np.flatnonzero(fold != k)
        if len(test) == 0:
            continue
        h = fit_head(
            x[train_idx],
            [rows[i].photo_type.value for i in train_idx],
            [rows[i].garment_category.value if rows[i].garment_category else None for i in train_idx],
            c=float(head.meta.get("c", 0.3)),
            seed=seed,
            feature=head.feature,
        )
        o = h.predict(x[test])
        for j, name in enumerate(h.pt_classes):
            pt[test, head.pt_classes.index(name)] = o["pt_probs"][:, j]
        for j, name in enumerate(h.cat_classes):
            cat[test, head.cat_classes.index(name)] = o["cat_probs"][:, j]
    score = eligibility_scores(pt, head.pt_classes, cat, head.cat_classes)
    return {"pt_probs": pt, "cat_probs": cat, "score": score, "eligible": score >= head.threshold}


def _fold_of(group: str, folds: int, seed: int) -> int:
    h = hashlib.blake2b(f"fold\x00{seed}\x00{group}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") % folds


def rank_for_review(
    head: EligibilityHead, rows: Sequence[LabelRow], out: dict[str, np.ndarray]
) -> tuple[np.ndarray, list[str]]:
    """Row indices, most worth reviewing first, and a reason per row ('disagree: ...' or 'unsure').

    ``out``: predictions for ``rows`` (``head.predict(x)`` or ``out_of_fold_predictions``).
    """
    pt_pred = [head.pt_classes[i] for i in out["pt_probs"].argmax(1)]
    cat_pred = [head.cat_classes[i] for i in out["cat_probs"].argmax(1)]
    reasons: list[str] = []
    priority = np.zeros(len(rows))
    for n, r in enumerate(rows):
        why = []
        if pt_pred[n] != r.photo_type.value:
            why.append("photo_type")
        if r.garment_category is not None and cat_pred[n] != r.garment_category.value:
            why.append("category")
        if bool(out["eligible"][n]) != is_eligible_label(r):
            why.append("eligible")
        reasons.append("disagree: " + ",".join(why) if why else "unsure")
        # uncertainty in [0, 1]: 1 = score at the threshold or a coin-flip photo type
        margin = abs(float(out["score"][n]) - head.threshold)
        unsure = max(
            1.0 - margin / max(head.threshold, 1 - head.threshold), 1.0 - float(out["pt_probs"][n].max())
        )
        priority[n] = (2.0 if why else 0.0) + unsure
    return np.argsort(-priority, kind="stable"), reasons


def review(
    head: EligibilityHead,
    rows: Sequence[LabelRow],
    x: np.ndarray,
    out_dir: Path,
    *,
    limit: int = 60,
    cross_validate: bool = True,
) -> ReviewResult:
    """Write ``review.png`` and ``review.csv`` to ``out_dir`` for the top ``limit`` rows to review.

    ``cross_validate``: rank by out-of-fold predictions (``out_of_fold_predictions``), so the
    images the head was trained on are judged honestly; False = the head as it is.
    """
    full = out_of_fold_predictions(head, rows, x) if cross_validate else head.predict(x)
    order, reasons = rank_for_review(head, rows, full)
    top = [int(i) for i in order[:limit]]
    out = {k: v[top] for k, v in full.items()}
    picked = [rows[i] for i in top]
    pt_pred = [head.pt_classes[i] for i in out["pt_probs"].argmax(1)]
    cat_pred = [head.cat_classes[i] for i in out["cat_probs"].argmax(1)]
    items = [
        SheetItem(
            r.path,
            f"{reasons[i]}\nlabel {r.photo_type.value}/{r.garment_category.value if r.garment_category else '-'}\n"
            f"pred {pt_pred[k]}/{cat_pred[k]} e={out['score'][k]:.2f}",
        )
        for k, (i, r) in enumerate(zip(top, picked, strict=True))
    ]
    out_dir = Path(out_dir)
    sheet = contact_sheet(
        items, out_dir / "review.png", title=f"eligibility review: {len(top)} images ({head.version})"
    )
    csv_path = write_labels(
        picked,
        out_dir / "review.csv",
        extra={
            "pred_photo_type": pt_pred,
            "pred_garment_category": cat_pred,
            "tryon_eligible_prob": [f"{s:.4f}" for s in out["score"]],
            "reason": [reasons[i] for i in top],
        },
    )
    return ReviewResult(
        sheet, csv_path, sum(reasons[i].startswith("disagree") for i in range(len(rows))), len(top)
    )
