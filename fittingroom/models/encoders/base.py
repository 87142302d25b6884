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
    """The text embedded next to one product image: two lines.

    Line 1, the descriptive text: ``"{colour} {category leaf}: {colour} {title}"``
    (the image's colour variant, else all colours); line 2, the category path
    (``"Men > Tops > Tees"``). Short and structured on purpose: with a long
    description appended, "<colour> <type>" queries lost a fifth of their
    precision on the Luma catalog (all-MiniLM-L6-v2 mean-pools the tokens).
    Encoders may embed the two lines separately (offline) or joined (open_clip).
    """
    color = image.color if image is not None and image.color else " ".join(product.colors)
    leaf = product.category_path[-1] if product.category_path else ""
    head = f"{color} {leaf}".strip()
    line1 = f"{head}: {color} {product.title}".strip() if head else product.title
    if product.gender:
        line1 += f" ({product.gender})"
    return line1.replace("\n", " ") + "\n" + " > ".join(product.category_path)


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
    """Base class of the encoder registry (see ``fittingroom.models.encoders.registry``).

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
        """(N, dim) float32: one stored vector per product image, ``texts[i]`` = ``document_text`` of it.

        A document vector is a concatenation of parts (image, text, ...), each part
        L2-normalised; the whole vector need not have unit norm (scores are inner products).
        """

    @abstractmethod
    def query_vectors(self, queries: Sequence[Query]) -> np.ndarray:
        """(N, dim) float32 query vectors; inner product with document vectors = relevance."""

    #: Pseudo-relevance feedback: how many first-pass neighbours ``expand_query`` wants
    #: for an image query (0 = no second pass).
    expansion_neighbors: int = 0

    def expand_query(
        self,
        query: Query,
        query_vector: np.ndarray,
        neighbor_vectors: np.ndarray,
        neighbor_scores: np.ndarray | None = None,
    ) -> np.ndarray:
        """Second-pass query vector from the first-pass hits' document vectors (M, dim), best first.

        Default: unchanged. Searchers call it when ``expansion_neighbors > 0``.
        """
        return query_vector
