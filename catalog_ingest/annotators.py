"""Image annotators: models that fill ``ImageRecord`` fields during ingest.

The try-on eligibility classifier (``fittingroom.models.eligibility``) is one: the ingest writer
runs every annotator batched on the same decoded images it embeds, and sets
``Product.tryon_eligible`` (try-on can use one of its images, in either mode; see
``product_tryon_eligible``).

By default the runner takes the eligibility annotator from the model shelf
(``load_default_annotators``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fittingroom.catalog.models import Product, tryon_image

if TYPE_CHECKING:
    from PIL import Image

    from fittingroom.catalog.models import ImageRecord
    from fittingroom.models.registry import ModelShelf
    from fittingroom.settings import CoreSettings

log = logging.getLogger(__name__)

#: ``ImageRecord`` fields an annotator may set.
ANNOTATION_FIELDS = frozenset(
    {
        "photo_type",
        "photo_type_probs",
        "garment_category_pred",
        "garment_category_probs",
        "tryon_eligible",
        "tryon_eligible_prob",
    }
)


@runtime_checkable
class ImageAnnotator(Protocol):
    """Annotates product images.

    ``annotate`` gets RGB (or RGBA) images as decoded by ``fittingroom.images.decode_image``
    and returns one dict per image, in order, holding ``ImageRecord`` field values from
    ``ANNOTATION_FIELDS`` (``photo_type``, ``photo_type_probs``, ``garment_category_pred``,
    ``garment_category_probs``, ``tryon_eligible``, ``tryon_eligible_prob``). Missing keys
    leave the field as it is.
    """

    name: str

    def annotate(self, images: Sequence[Image.Image]) -> list[dict[str, Any]]: ...


def is_annotated(record: ImageRecord) -> bool:
    """True when an annotator already filled any annotation field of this image."""
    return any(getattr(record, name) is not None for name in ANNOTATION_FIELDS)


def product_tryon_eligible(product: Product) -> bool | None:
    """The product's "try-on ready" flag (the retrieval filter, the page's badge): True when try-on
    can use one of its images, a product-only shot or an on-model photo of a try-on category
    (``tryon_image``, the one rule); None when no image was classified."""
    if all(r.tryon_eligible is None for r in product.images):
        return None
    return tryon_image(product) is not None


def load_default_annotators(
    settings: CoreSettings, *, shelf: ModelShelf | None = None
) -> list[ImageAnnotator]:
    """``[the try-on eligibility annotator]`` from the model shelf, or ``[]`` when it cannot load.

    The annotator is the shelf's ``eligibility`` entry (one per process and device); an
    error while loading it (missing head file, bad settings) is logged as a WARNING and
    ingest goes on without classifying images.
    """
    from fittingroom.models.registry import default_shelf
    from fittingroom.models.specs import ELIGIBILITY

    try:
        annotator = (shelf or default_shelf()).get(ELIGIBILITY, device=settings.device)
    except Exception as exc:  # an optional component must not stop ingest
        log.warning("eligibility annotator could not be loaded, images are not classified: %s", exc)
        return []
    log.info("annotating images with %s", getattr(annotator, "name", type(annotator).__name__))
    return [annotator]
