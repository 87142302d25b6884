"""Garment-type classifier: 10 garment-photo classes from the catalog encoder's image embedding.

Input: image embeddings float32 ``(N, D)`` (``Encoder.embed_images`` of the encoder the
classifier was trained for; ``D`` = 1280 for the offline encoder's GeM-pooled
EfficientNet-Lite0). Output: probabilities float32 ``(N, 10)`` over ``classes`` (dress, hat,
longsleeve, outwear, pants, shirt, shoes, shorts, skirt, t-shirt), and from them the coarse
``GarmentCategory`` (the class probabilities summed per category, ``CLASS_CATEGORIES``).

A multinomial logistic regression (scikit-learn, trained by ``fittingroom train
garment-type``, ``fittingroom.training.garment_type``) on the product-only photos of
``<shared_data>/garment-photos`` (CC0-1.0). Weights ship as a small float16 ``.npz`` next to
its model card (``data/garment_type/``) with the class names and the encoder (name and image
feature) it was trained for. A missing or unreadable file raises :class:`GarmentTypeModelError`
naming the file and the rebuild command.

(The offline encoder's own ``type_head`` is a different, 6-category soft prior inside its
query expansion; this classifier gives the 10 classes and a probability the page can show.)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fittingroom.catalog.models import GarmentCategory
from fittingroom.models.encoders.type_head import GARMENT_PHOTO_CLASSES

log = logging.getLogger(__name__)

#: Folder of the committed classifier, its model card and metrics.
MODEL_DIR = Path(__file__).resolve().parent / "data" / "garment_type"
MODEL_FILENAME = "garment_type.npz"
DEFAULT_MODEL_PATH = MODEL_DIR / MODEL_FILENAME
REBUILD_COMMAND = "fittingroom train garment-type"

#: garment-photos class -> coarse category of the catalog (the mapping the offline encoder's
#: type head was trained with: t-shirt / shirt / longsleeve -> top, outwear -> outerwear,
#: pants / shorts / skirt -> bottom, dress -> one_piece, shoes -> footwear, hat -> headwear).
CLASS_CATEGORIES: dict[str, GarmentCategory] = GARMENT_PHOTO_CLASSES


class GarmentTypeModelError(RuntimeError):
    """The garment-type classifier file is missing, unreadable or inconsistent."""


def encoder_feature_id(encoder: Any) -> str:
    """The id of the image embedding an encoder produces: ``image_feature_name`` when it has
    one (the offline encoder: ``efficientnet-lite0-gem224``), else its ``name``."""
    return str(getattr(encoder, "image_feature_name", None) or encoder.name)


@dataclass(frozen=True)
class CategoryGuess:
    """The most likely category of one image: ``category``, its probability (0..1, the sum of
    its classes' probabilities) and the most likely class with its own probability."""

    category: GarmentCategory
    probability: float
    garment_class: str
    class_probability: float


@dataclass(frozen=True)
class GarmentTypeClassifier:
    """Linear softmax classifier. ``weights`` float32 ``(C, D)``, ``bias`` float32 ``(C,)``,
    ``classes`` C garment-photos class names; ``encoder`` / ``image_feature``: the encoder name
    and image-embedding id it was trained on (``encoder_feature_id``)."""

    weights: np.ndarray
    bias: np.ndarray
    classes: tuple[str, ...]
    encoder: str
    image_feature: str
    meta: dict[str, Any]

    @property
    def dim(self) -> int:
        return int(self.weights.shape[1])

    @property
    def name(self) -> str:
        return f"garment-type-{self.image_feature}"

    @classmethod
    def load(cls, path: str | Path | None = None) -> GarmentTypeClassifier:
        """Read a classifier saved by :meth:`save` (default: the committed one).

        Raises GarmentTypeModelError naming the file and ``fittingroom train garment-type``
        when it is missing, unreadable or its arrays disagree.
        """
        p = Path(path) if path else DEFAULT_MODEL_PATH
        hint = f"rebuild it with `{REBUILD_COMMAND}`"
        if not p.is_file():
            raise GarmentTypeModelError(f"garment-type classifier not found at {p}: {hint}")
        try:
            with np.load(p, allow_pickle=False) as z:
                weights = z["weights"].astype(np.float32)
                bias = z["bias"].astype(np.float32)
                meta = json.loads(str(z["meta"]))
            classes = tuple(str(c) for c in meta["classes"])
            encoder, feature = str(meta["encoder"]), str(meta["image_feature"])
        except Exception as exc:  # zip / key / JSON errors: all mean "this file is not a classifier"
            raise GarmentTypeModelError(f"garment-type classifier {p} is unreadable ({exc}): {hint}") from exc
        unknown = sorted(set(classes) - set(CLASS_CATEGORIES))
        if weights.ndim != 2 or weights.shape[0] != len(classes) or bias.shape != (len(classes),) or unknown:
            raise GarmentTypeModelError(
                f"garment-type classifier {p} is inconsistent (weights {weights.shape}, bias {bias.shape}, "
                f"classes {list(classes)}): {hint}"
            )
        return cls(weights, bias, classes, encoder, feature, meta)

    def save(self, path: str | Path) -> None:
        """Write weights and bias as float16 plus a JSON ``meta`` (classes, encoder, metrics)."""
        meta = {**self.meta, "classes": list(self.classes), "encoder": self.encoder}
        meta["image_feature"] = self.image_feature
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            weights=self.weights.astype(np.float16),
            bias=self.bias.astype(np.float16),
            meta=json.dumps(meta, sort_keys=True),
        )

    def fits(self, encoder: Any) -> bool:
        """Whether ``encoder`` makes the image embedding this classifier was trained on."""
        return encoder_feature_id(encoder) == self.image_feature

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """float32 ``(N, D)`` image embeddings -> float32 ``(N, C)`` class probabilities
        (order of ``classes``). ValueError when D differs from the classifier's."""
        x = np.asarray(embeddings, np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected (N, {self.dim}) image embeddings, got {x.shape}")
        z = x @ self.weights.T + self.bias
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)

    def category_proba(self, embeddings: np.ndarray) -> tuple[list[GarmentCategory], np.ndarray]:
        """(categories, float32 ``(N, K)``): class probabilities summed per category."""
        p = self.predict_proba(embeddings)
        cats = list(dict.fromkeys(CLASS_CATEGORIES[c] for c in self.classes))
        out = np.zeros((len(p), len(cats)), np.float32)
        for j, c in enumerate(self.classes):
            out[:, cats.index(CLASS_CATEGORIES[c])] += p[:, j]
        return cats, out

    def guess(self, embedding: np.ndarray) -> CategoryGuess:
        """The most likely category of one float32 ``(D,)`` image embedding."""
        p = self.predict_proba(embedding)[0]
        cats, pc = self.category_proba(embedding)
        j, k = int(p.argmax()), int(pc[0].argmax())
        return CategoryGuess(cats[k], float(pc[0, k]), self.classes[j], float(p[j]))


def classifier_for_encoder(encoder: Any, shelf: Any = None) -> GarmentTypeClassifier | None:
    """The committed classifier from the model shelf when it was trained for ``encoder``'s
    image embedding; None (with a log line) when it was trained for another encoder.

    Raises GarmentTypeModelError when the file is missing or unreadable.
    """
    from fittingroom.models.registry import default_shelf
    from fittingroom.models.specs import GARMENT_TYPE

    clf: GarmentTypeClassifier = (shelf or default_shelf()).get(GARMENT_TYPE)
    if not clf.fits(encoder):
        log.info(
            "garment-type classifier off: trained for image feature %r (encoder %s), the catalog "
            "encoder %s gives %r",
            clf.image_feature,
            clf.encoder,
            getattr(encoder, "name", "?"),
            encoder_feature_id(encoder),
        )
        return None
    return clf
