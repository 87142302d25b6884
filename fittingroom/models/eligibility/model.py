"""The eligibility heads: two logistic regressions on EfficientNet-Lite0 features, and the threshold.

``photo_type`` head: multinomial logistic regression (scikit-learn, lbfgs) over the
``PhotoType`` classes present in training; ``garment_category`` head: the same over the
``GarmentCategory`` classes present (rows with an empty category are not used for it).
Both take standardised (N, 1280) GeM features (``fittingroom.models.eligibility.features``).

Eligibility score of an image::

    s = p(product_only) * sum_{c in TRYON_CATEGORIES} p(c)

set to 0 when the arg-max photo type is not ``product_only`` or the arg-max category is not in
``TRYON_CATEGORIES``; the image is try-on eligible when ``s >= threshold``. The threshold is
chosen on the validation split as the lowest one with precision >= ``min_precision``
(``select_threshold``): showing a non-eligible image as eligible is the costly error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fittingroom.catalog.models import TRYON_CATEGORIES, GarmentCategory, PhotoType


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    precision: float
    recall: float
    reached: bool  # False: no threshold reaches min_precision (the most precise one was taken)


def select_threshold(
    scores: np.ndarray, positive: np.ndarray, min_precision: float = 0.99
) -> ThresholdChoice:
    """Lowest score threshold whose precision on (``scores``, ``positive``) is >= ``min_precision``.

    ``scores`` (N,) float, ``positive`` (N,) bool; an item is predicted positive when
    ``score >= threshold``. Among thresholds reaching ``min_precision`` the one with the highest
    recall (then the highest threshold) wins. When none reaches it, the threshold with the best
    precision (then recall) is returned with ``reached=False``.

    Raises ValueError when there are no positives or the arrays differ in length.
    """
    scores = np.asarray(scores, np.float64)
    positive = np.asarray(positive, bool)
    if scores.shape != positive.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and positive {positive.shape} must be equal 1-d shapes")
    n_pos = int(positive.sum())
    if n_pos == 0:
        raise ValueError("no positive examples: cannot choose an eligibility threshold")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], positive[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    # candidate cut after index k is valid only at the end of a run of equal scores
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tp, fp, cut = tp[last_of_tie], fp[last_of_tie], s[last_of_tie]
    precision = tp / (tp + fp)
    recall = tp / n_pos
    ok = precision >= min_precision
    if ok.any():
        # recall grows as the cut goes down: argmax = the highest threshold with the best recall
        best = int(np.flatnonzero(ok)[np.argmax(recall[ok])])
        return ThresholdChoice(float(cut[best]), float(precision[best]), float(recall[best]), True)
    best = int(np.lexsort((-recall, -precision))[0])
    return ThresholdChoice(float(cut[best]), float(precision[best]), float(recall[best]), False)


def eligibility_scores(
    pt_probs: np.ndarray, pt_classes: Sequence[str], cat_probs: np.ndarray, cat_classes: Sequence[str]
) -> np.ndarray:
    """(N,) eligibility score from the two heads' probabilities (see module docstring)."""
    pt_classes, cat_classes = list(pt_classes), list(cat_classes)
    if PhotoType.product_only.value not in pt_classes:
        return np.zeros(len(pt_probs), np.float64)
    po = pt_classes.index(PhotoType.product_only.value)
    tryon = np.array([c in {t.value for t in TRYON_CATEGORIES} for c in cat_classes])
    p_tryon = cat_probs[:, tryon].sum(axis=1) if tryon.any() else np.zeros(len(cat_probs))
    score = pt_probs[:, po] * p_tryon
    gate = (pt_probs.argmax(1) == po) & tryon[cat_probs.argmax(1)]
    return np.where(gate, score, 0.0)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _linear_proba(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Softmax of a linear layer; a 1-row ``w`` is a binary logistic regression (sklearn convention)."""
    z = x @ w.T + b
    if w.shape[0] == 1:
        z = np.concatenate([-z, z], axis=1) / 2.0  # softmax([-z/2, z/2]) = [1 - sigmoid(z), sigmoid(z)]
    return _softmax(z)


@dataclass
class EligibilityHead:
    """Standardiser + two linear softmax heads + threshold, stored as one small ``.npz``.

    ``mean``/``scale`` (D,) float32; ``pt_w`` (Cp, D) / ``pt_b`` (Cp,) over ``pt_classes``;
    ``cat_w`` (Cc, D) / ``cat_b`` (Cc,) over ``cat_classes``; ``threshold`` on the eligibility score.
    """

    mean: np.ndarray
    scale: np.ndarray
    pt_w: np.ndarray
    pt_b: np.ndarray
    pt_classes: list[str]
    cat_w: np.ndarray
    cat_b: np.ndarray
    cat_classes: list[str]
    threshold: float
    feature: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "eligibility-lite0-logreg"))

    def predict(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """(N, D) features -> ``pt_probs`` (N, Cp), ``cat_probs`` (N, Cc), ``score`` (N,), ``eligible`` (N,) bool."""
        x = (np.asarray(features, np.float32) - self.mean) / self.scale
        pt = _linear_proba(x, self.pt_w, self.pt_b)
        cat = _linear_proba(x, self.cat_w, self.cat_b)
        score = eligibility_scores(pt, self.pt_classes, cat, self.cat_classes)
        return {"pt_probs": pt, "cat_probs": cat, "score": score, "eligible": score >= self.threshold}

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            **self.meta,
            "pt_classes": self.pt_classes,
            "cat_classes": self.cat_classes,
            "threshold": self.threshold,
            "feature": self.feature,
        }
        np.savez_compressed(
            path,
            mean=self.mean.astype(np.float32),
            scale=self.scale.astype(np.float32),
            pt_w=self.pt_w.astype(np.float32),
            pt_b=self.pt_b.astype(np.float32),
            cat_w=self.cat_w.astype(np.float32),
            cat_b=self.cat_b.astype(np.float32),
            meta=np.array(json.dumps(meta, sort_keys=True)),
        )
        return path

    @classmethod
    def load(cls, path: Path) -> EligibilityHead:
        """Load a head written by ``save``; FileNotFoundError names the path and the training command."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"eligibility head not found at {path}: run `fittingroom train eligibility` "
                "or set ELIGIBILITY_HEAD_PATH"
            )
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return cls(
                z["mean"],
                z["scale"],
                z["pt_w"],
                z["pt_b"],
                list(meta.pop("pt_classes")),
                z["cat_w"],
                z["cat_b"],
                list(meta.pop("cat_classes")),
                float(meta.pop("threshold")),
                str(meta.pop("feature")),
                meta,
            )


def fit_head(
    x: np.ndarray,
    photo_types: Sequence[str],
    categories: Sequence[str | None],
    *,
    c: float = 1.0,
    seed: int = 0,
    feature: str = "",
) -> EligibilityHead:
    """Fit both heads on (N, D) features (deterministic: lbfgs, fixed data order, ``seed``).

    ``categories[i]`` None = not used for the category head. Threshold is left at 0.5; set it
    with ``select_threshold`` on validation data. Raises ValueError with fewer than 2 classes.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, np.float32)
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    xs = (x - mean) / scale

    def fit(xx: np.ndarray, y: Sequence[str], order: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        classes = [k for k in order if k in set(y)]
        if len(classes) < 2:
            raise ValueError(f"need at least 2 classes to train a head, got {classes}")
        clf = LogisticRegression(C=c, max_iter=2000, random_state=seed, class_weight="balanced")
        clf.fit(xx, np.array([classes.index(v) for v in y]))
        return clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32), classes

    pt_w, pt_b, pt_classes = fit(xs, list(photo_types), [p.value for p in PhotoType])
    has_cat = np.array([v is not None for v in categories])
    cat_w, cat_b, cat_classes = fit(
        xs[has_cat], [v for v in categories if v is not None], [g.value for g in GarmentCategory]
    )
    return EligibilityHead(mean, scale, pt_w, pt_b, pt_classes, cat_w, cat_b, cat_classes, 0.5, feature)
