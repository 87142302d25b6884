"""Garment-type head: P(GarmentCategory | image) from the offline encoder's image embedding.

A multinomial logistic regression (scikit-learn) on the GeM-pooled EfficientNet-Lite0
embedding (``fittingroom.models.encoders.offline``), trained on the product-only garment photos
of ``<shared_data>/garment-photos`` (CC0-1.0; 10 classes mapped to ``GarmentCategory``
by ``GARMENT_PHOTO_CLASSES``). Nothing from the evaluation catalogs or street photos is
used for training.

The trained head is small (6 x 1280 float32 + bias, ~30 KB) and ships with the package
(``data/garment_type_head.npz``); ``fittingroom train type-head`` reproduces it
(deterministic: lbfgs, fixed data order).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from fittingroom.catalog.models import GarmentCategory

#: garment-photos class -> GarmentCategory
GARMENT_PHOTO_CLASSES: dict[str, GarmentCategory] = {
    "t-shirt": GarmentCategory.top,
    "shirt": GarmentCategory.top,
    "longsleeve": GarmentCategory.top,
    "outwear": GarmentCategory.outerwear,
    "pants": GarmentCategory.bottom,
    "shorts": GarmentCategory.bottom,
    "skirt": GarmentCategory.bottom,
    "dress": GarmentCategory.one_piece,
    "hat": GarmentCategory.headwear,
    "shoes": GarmentCategory.footwear,
}

#: Order of the type part of the offline encoder's vectors (every GarmentCategory value).
TYPE_ORDER: list[GarmentCategory] = list(GarmentCategory)


def default_head_path() -> Path:
    return Path(str(resources.files("fittingroom.models.encoders") / "data" / "garment_type_head.npz"))


@dataclass
class GarmentTypeHead:
    """Linear softmax head. ``weights`` (C, D) float32, ``bias`` (C,), ``classes`` C GarmentCategory values."""

    weights: np.ndarray
    bias: np.ndarray
    classes: list[GarmentCategory]
    feature: str

    @classmethod
    def load(cls, path: str | Path | None = None) -> GarmentTypeHead:
        """Load a head saved by ``save``; raises FileNotFoundError naming the path and the command."""
        p = Path(path) if path else default_head_path()
        if not p.is_file():
            raise FileNotFoundError(f"garment-type head not found at {p}: run `fittingroom train type-head`")
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return cls(
                z["weights"].astype(np.float32),
                z["bias"].astype(np.float32),
                [GarmentCategory(c) for c in meta["classes"]],
                meta["feature"],
            )

    def save(self, path: str | Path, **extra: object) -> None:
        meta = {"classes": [c.value for c in self.classes], "feature": self.feature, **extra}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, weights=self.weights, bias=self.bias, meta=json.dumps(meta))

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(N, D) image embeddings -> (N, len(TYPE_ORDER)) probabilities in ``TYPE_ORDER``."""
        z = np.asarray(features, np.float32) @ self.weights.T + self.bias
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        out = np.zeros((len(p), len(TYPE_ORDER)), np.float32)
        for j, c in enumerate(self.classes):
            out[:, TYPE_ORDER.index(c)] = p[:, j]
        return out


def one_hot(category: GarmentCategory | None) -> np.ndarray:
    """(len(TYPE_ORDER),) float32 one-hot of ``category`` (zeros for None)."""
    v = np.zeros(len(TYPE_ORDER), np.float32)
    if category is not None:
        v[TYPE_ORDER.index(category)] = 1.0
    return v


def read_garment_photos(
    folder: Path, splits: Sequence[str] = ("train", "validation")
) -> list[tuple[Path, str]]:
    """(image path, class) rows of ``folder/index.csv`` (columns path, split, label).

    Raises FileNotFoundError / ValueError naming the file and line of a bad row.
    """
    index = folder / "index.csv"
    rows: list[tuple[Path, str]] = []
    with index.open(newline="") as f:
        for line, rec in enumerate(csv.DictReader(f), start=2):
            if rec.get("split") not in splits:
                continue
            label = rec.get("label", "")
            if label not in GARMENT_PHOTO_CLASSES:
                raise ValueError(f"{index}:{line}: unknown class {label!r}")
            rows.append((folder / rec["path"], label))
    return rows


def train_type_head(
    features: np.ndarray, labels: Sequence[str], feature: str, c: float = 1.0
) -> GarmentTypeHead:
    """Fit the head on (N, D) embeddings and garment-photos class names."""
    from sklearn.linear_model import LogisticRegression

    y = [GARMENT_PHOTO_CLASSES[label].value for label in labels]
    clf = LogisticRegression(C=c, max_iter=5000).fit(features, y)
    return GarmentTypeHead(
        clf.coef_.astype(np.float32),
        clf.intercept_.astype(np.float32),
        [GarmentCategory(x) for x in clf.classes_],
        feature,
    )
