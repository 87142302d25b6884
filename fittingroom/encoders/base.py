"""Encoder interface: images and texts -> L2-normalised float32 embeddings.

Every encoder also defines how one *indexed image* becomes one stored vector
(``document_vectors``) and how a query (image, text, or both with a weight)
becomes a query vector in the same space (``query_vectors``), so that the
inner product of the two is the relevance score. The index never needs to know
which encoder made its vectors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from fittingroom.catalog.models import ImageRecord, Product


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation; returns float32 of the same shape."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(n, eps)).astype(np.float32)


def document_text(product: Product, image: ImageRecord | None = None) -> str:
    """The text embedded next to one product image.

    Title, the image's colour (or all colours), the category path, brand and
    the start of the description, in that order (short text encoders truncate).
    """
    color = image.color if image is not None and image.color else ", ".join(product.colors)
    parts = [product.title]
    if color:
        parts.append(f"Color: {color}.")
    if product.category_path:
        parts.append("Category: " + " > ".join(product.category_path) + ".")
    if product.gender:
        parts.append(f"For {product.gender}.")
    if product.brand:
        parts.append(f"Brand: {product.brand}.")
    if product.description:
        parts.append(product.description[:300])
    return " ".join(parts)


@dataclass(frozen=True)
class Query:
    """One search query: an image (RGB, or RGBA whose alpha is the garment mask), a text, or both.

    ``image_weight`` in [0, 1] weighs the image against the text when both are given.
    """

    image: Image.Image | None = None
    text: str | None = None
    image_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.image is None and not (self.text and self.text.strip()):
            raise ValueError("a query needs an image, a non-empty text, or both")
        if not 0.0 <= self.image_weight <= 1.0:
            raise ValueError(f"image_weight must be in [0, 1], got {self.image_weight}")


class Encoder(ABC):
    """Base class of the encoder registry (see ``fittingroom.encoders.registry``).

    Models load in ``__init__`` (called at service start-up, never at import).
    """

    #: Registry name plus configuration; stored embeddings are namespaced by it.
    name: str
    #: Dimension of stored document vectors and query vectors.
    dim: int

    @abstractmethod
    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N, D_image) float32, L2-normalised. RGBA images are composited on a neutral background."""

    @abstractmethod
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D_text) float32, L2-normalised."""

    @abstractmethod
    def document_vectors(self, images: Sequence[Image.Image], texts: Sequence[str]) -> np.ndarray:
        """(N, dim) float32: one stored vector per product image, ``texts[i]`` = ``document_text`` of it."""

    @abstractmethod
    def query_vectors(self, queries: Sequence[Query]) -> np.ndarray:
        """(N, dim) float32 query vectors; inner product with document vectors = relevance."""
