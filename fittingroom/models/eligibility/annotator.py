"""The ingest annotator: backbone + ``EligibilityHead`` -> ``ImageRecord`` eligibility fields."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fittingroom.catalog.models import GarmentCategory, PhotoType
from fittingroom.models.eligibility.features import FEATURE_NAME
from fittingroom.models.eligibility.model import EligibilityHead

if TYPE_CHECKING:
    from PIL import Image


class EligibilityAnnotator:
    """Classifies product images for try-on (``catalog_ingest.annotators.ImageAnnotator``).

    ``features``: maps a list of PIL images (RGB or RGBA; alpha composited on the neutral
    background) to (N, 1280) float32 features, batched (``EfficientNetLiteFeatures``).
    ``head``: the trained heads and threshold. ``name`` is the model version (ingest stores it).
    """

    def __init__(
        self,
        features: Callable[[Sequence[Image.Image]], np.ndarray],
        head: EligibilityHead,
        *,
        threshold: float | None = None,
        batch_size: int = 32,
        feature_name: str = FEATURE_NAME,
    ) -> None:
        self.features = features
        self.head = head
        self.threshold = head.threshold if threshold is None else threshold
        self.batch_size = batch_size
        self.name = head.version
        #: The feature ``features`` computes (see ``annotate_features``).
        self.feature_name = feature_name

    def predict(self, images: Sequence[Image.Image]) -> dict[str, np.ndarray]:
        """Raw head output for ``images`` (see ``EligibilityHead.predict``), threshold applied."""
        import torch

        if not images:
            return self.head.predict(np.zeros((0, len(self.head.mean)), np.float32))
        chunks = []
        with torch.inference_mode():
            for i in range(0, len(images), self.batch_size):
                chunks.append(np.asarray(self.features(list(images[i : i + self.batch_size])), np.float32))
        return self.predict_features(np.concatenate(chunks))

    def predict_features(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Head output for precomputed (N, 1280) features (``feature_name``), threshold applied."""
        out = self.head.predict(np.asarray(features, np.float32))
        out["eligible"] = out["score"] >= self.threshold
        return out

    def annotate_features(self, features: np.ndarray) -> list[dict[str, Any]]:
        """``annotate`` for precomputed features: ingest passes the offline encoder's image
        embeddings when its ``image_feature_name`` equals ``feature_name`` (one backbone pass)."""
        return self._records(self.predict_features(features), len(features))

    def annotate(self, images: Sequence[Image.Image]) -> list[dict[str, Any]]:
        """One dict per image with ``photo_type``, ``photo_type_probs``, ``garment_category_pred``,
        ``garment_category_probs`` (``{name: probability}`` over every enum value, 0.0 for classes
        the head was not trained on), ``tryon_eligible`` (bool) and ``tryon_eligible_prob``
        (the eligibility score in [0, 1])."""
        return self._records(self.predict(images), len(images))

    def _records(self, out: dict[str, np.ndarray], n_images: int) -> list[dict[str, Any]]:
        pt_idx = {c: i for i, c in enumerate(self.head.pt_classes)}
        cat_idx = {c: i for i, c in enumerate(self.head.cat_classes)}
        results = []
        for n in range(n_images):
            pt = out["pt_probs"][n]
            cat = out["cat_probs"][n]
            results.append(
                {
                    "photo_type": PhotoType(self.head.pt_classes[int(pt.argmax())]),
                    "photo_type_probs": {
                        p.value: round(float(pt[pt_idx[p.value]]) if p.value in pt_idx else 0.0, 6)
                        for p in PhotoType
                    },
                    "garment_category_pred": GarmentCategory(self.head.cat_classes[int(cat.argmax())]),
                    "garment_category_probs": {
                        g.value: round(float(cat[cat_idx[g.value]]) if g.value in cat_idx else 0.0, 6)
                        for g in GarmentCategory
                    },
                    "tryon_eligible": bool(out["eligible"][n]),
                    "tryon_eligible_prob": round(float(out["score"][n]), 6),
                }
            )
        return results
