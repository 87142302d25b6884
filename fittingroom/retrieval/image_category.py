"""The inferred category of an image query, as a filter inside the index search.

``infer_category`` reads the query image's embedding (the image part of the query vector the
search uses anyway, so no second forward pass) with the garment-type classifier
(``fittingroom.models.garment_type``) and gives the most likely ``GarmentCategory`` and its
probability. ``category_allowed_ids`` turns it into the vector ids the index may return: the
images of products of that category (``CatalogFacets.garment``; products whose category is
unknown stay, as for a typed category), within the request's filters, when at least
``min_products`` products (one page) match; else None, the category is *relaxed* and the
results are ranked by the embedding alone (the page says so, like a relaxed colour).

The retrieval service's ``POST /search/image`` and ``fittingroom eval retrieval
--image-category`` both go through ``restrict_to_image_category``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from fittingroom.catalog.models import GarmentCategory
from fittingroom.models.encoders.base import l2_normalize

if TYPE_CHECKING:
    from PIL import Image

    from fittingroom.catalog.store import ProductFilter
    from fittingroom.models.garment_type import GarmentTypeClassifier
    from fittingroom.retrieval.search import Searcher

#: The kind a relaxed inferred category is reported as (``SearchPage.relaxed``).
RELAXED_KIND = "image_category"


@dataclass(frozen=True)
class InferredCategory:
    """The category inferred from a query image: ``probability`` 0..1 (its classes summed),
    the most likely garment-photos class, whether it passed the confidence setting and
    whether it restricted the results (``applied``; False when relaxed or turned off)."""

    category: GarmentCategory
    probability: float
    garment_class: str
    confident: bool
    applied: bool = False
    relaxed: bool = False


def query_image_embedding(encoder: Any, query_vector: np.ndarray, image: Image.Image | None) -> np.ndarray:
    """float32 ``(D,)`` unit image embedding of a query: the image part of ``query_vector`` when the
    encoder exposes it (``image_features``; the offline encoder), else ``embed_images([image])``."""
    features = getattr(encoder, "image_features", None)
    if callable(features):
        v = np.asarray(features(np.asarray(query_vector, np.float32).reshape(1, -1)), np.float32)
        if float(np.linalg.norm(v)) > 0:
            return l2_normalize(v)[0]
    if image is None:
        raise ValueError("the query has no image to infer a category from")
    return np.asarray(encoder.embed_images([image]), np.float32)[0]


def infer_category(
    classifier: GarmentTypeClassifier, embedding: np.ndarray, min_prob: float
) -> InferredCategory:
    """The most likely category of ``embedding`` (float32 (D,)); ``confident`` when its
    probability is at least ``min_prob``."""
    g = classifier.guess(embedding)
    return InferredCategory(g.category, round(g.probability, 4), g.garment_class, g.probability >= min_prob)


def category_allowed_ids(
    searcher: Searcher,
    category: GarmentCategory,
    *,
    flt: ProductFilter | None = None,
    allowed_ids: np.ndarray | None = None,
    min_products: int = 10,
) -> np.ndarray | None:
    """int64 vector ids of the images of ``category`` (and unknown-category products) within
    ``flt`` and ``allowed_ids``, or None when fewer than ``min_products`` products match."""
    _, facets = searcher.understanding()
    mask = (facets.garment == category.value) | facets.unknown["garment"]
    if flt is not None and not flt.is_empty():
        mask &= np.isin(facets.vector_ids, searcher.store.vector_ids_matching(flt))
    if allowed_ids is not None:
        mask &= np.isin(facets.vector_ids, np.asarray(allowed_ids, np.int64))
    if facets.product_count(mask) < min_products:
        return None
    return np.asarray(facets.vector_ids[mask], np.int64)


def restrict_to_image_category(
    searcher: Searcher,
    inferred: InferredCategory,
    *,
    flt: ProductFilter | None = None,
    allowed_ids: np.ndarray | None = None,
) -> tuple[InferredCategory, np.ndarray | None]:
    """(the inference with ``applied`` / ``relaxed`` set, the ids the search may return).

    Not confident: ``allowed_ids`` unchanged. Confident: the category's ids when one page of
    products (``searcher.color_filter_min``) matches, else ``allowed_ids`` unchanged and relaxed.
    """
    if not inferred.confident:
        return inferred, allowed_ids
    ids = category_allowed_ids(
        searcher, inferred.category, flt=flt, allowed_ids=allowed_ids, min_products=searcher.color_filter_min
    )
    if ids is None:
        return replace(inferred, applied=False, relaxed=True), allowed_ids
    return replace(inferred, applied=True, relaxed=False), ids


@dataclass
class RestrictionStats:
    """How often the inferred category was confident, applied and relaxed (per image query)."""

    image_queries: int = 0
    confident: int = 0
    applied: int = 0
    relaxed: int = 0

    def as_json(self) -> dict[str, int]:
        return dict(self.__dict__)


def eval_restrictor(
    searcher: Searcher, classifier: GarmentTypeClassifier, min_prob: float, stats: RestrictionStats
) -> Any:
    """A ``RestrictFn`` for ``fittingroom.retrieval.evaluation.searcher_search_fn``: every image
    query is restricted to its inferred category exactly as ``POST /search/image`` does."""

    def restrict(query: Any, vector: np.ndarray, allowed: np.ndarray | None) -> np.ndarray | None:
        if getattr(query, "image", None) is None:
            return allowed
        stats.image_queries += 1
        inferred = infer_category(
            classifier, query_image_embedding(searcher.encoder, vector, query.image), min_prob
        )
        stats.confident += inferred.confident
        inferred, ids = restrict_to_image_category(searcher, inferred, allowed_ids=allowed)
        stats.applied += inferred.applied
        stats.relaxed += inferred.relaxed
        return ids

    return restrict
