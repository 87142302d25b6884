"""Stored catalog documents (one per product) and closed vocabularies.

These are *stored* documents. HTTP APIs define their own schemas
(``services/*/schemas.py``) and map from these.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator


class GarmentCategory(StrEnum):
    """Coarse garment category used for filtering, eligibility and try-on."""

    top = "top"
    bottom = "bottom"
    one_piece = "one_piece"
    outerwear = "outerwear"
    footwear = "footwear"
    headwear = "headwear"
    bag_accessory = "bag_accessory"
    other = "other"


class PhotoType(StrEnum):
    """What a product image shows (try-on needs ``product_only``)."""

    product_only = "product_only"
    on_model = "on_model"
    other = "other"


class TryOnMode(StrEnum):
    """How an image serves try-on: a product-only shot as is, an on-model photo after the worn
    garment is cut out of it, or not at all (``tryon_mode_reason`` says why)."""

    product_only = "product_only"
    on_model = "on_model"
    none = "none"


TRYON_CATEGORIES = frozenset(
    {GarmentCategory.top, GarmentCategory.bottom, GarmentCategory.one_piece, GarmentCategory.outerwear}
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def vector_id_for(source: str, product_id: str, image_sha256: str) -> int:
    """Stable 63-bit FAISS id of one (product, image) pair.

    The same image used by two products gets two vectors (one per product), and
    the id does not depend on the store, so SQLite and MongoDB agree.
    """
    h = hashlib.blake2b(f"{source}\x00{product_id}\x00{image_sha256}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") & 0x7FFF_FFFF_FFFF_FFFF


class ImageRecord(BaseModel):
    """One product image.

    ``sha256`` is the hash of the original image bytes (content address in the
    image cache); ``vector_id`` the id of its embedding in the FAISS index.
    """

    url: str = Field(description="Where the image came from: http(s) URL or local path as given by the feed.")
    sha256: str
    vector_id: int
    color: str | None = Field(default=None, description="Colour variant this image shows, when known.")
    width: int | None = None
    height: int | None = None
    is_main: bool = False
    # Filled by the try-on eligibility classifier (issue: eligibility); None = not classified.
    photo_type: PhotoType | None = None
    photo_type_probs: dict[str, float] | None = None
    garment_category_pred: GarmentCategory | None = None
    garment_category_probs: dict[str, float] | None = None
    tryon_eligible: bool | None = None
    tryon_eligible_prob: float | None = None
    # Derived from the fields above and the product's category (``tryon_mode_for``); None = unclassified.
    tryon_mode: TryOnMode | None = None
    tryon_mode_reason: str | None = Field(default=None, description="Why the image cannot serve try-on.")


class Product(BaseModel):
    """One catalog product, keyed by ``(source, id)``."""

    source: str = Field(description="Feed or shop this product came from, e.g. 'luma'.")
    id: str = Field(description="Product id within the source (SKU or item group id).")
    title: str
    description: str = ""
    link: str | None = None
    brand: str | None = None
    price: float | None = Field(default=None, description="Price in `currency` units (not cents).")
    currency: str | None = Field(default=None, description="ISO 4217 code, e.g. 'USD'.")
    category_path: list[str] = Field(default_factory=list, description="Shop category, root first.")
    garment_category: GarmentCategory | None = None
    colors: list[str] = Field(default_factory=list)
    sizes: list[str] = Field(default_factory=list)
    gender: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    images: list[ImageRecord] = Field(default_factory=list)
    tryon_eligible: bool | None = Field(
        default=None,
        description="Try-on ready: try-on can use one of the images (product-only or on-model, "
        "``tryon_image``); None when no image was classified. Set by ingest.",
    )
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _fill_tryon_modes(self) -> Product:
        """Images classified but without a ``tryon_mode`` get the one ``tryon_mode_for`` derives, so it
        is stored with the product. (The rule itself, :func:`tryon_image`, re-derives the mode from the
        classifier fields, so an ImageRecord shared between products never answers with a stale one.)"""
        fill_tryon_modes(self)
        return self

    @property
    def uid(self) -> str:
        """Global product id used by the APIs: ``'{source}:{id}'``."""
        return f"{self.source}:{self.id}"

    def content_hash(self) -> str:
        """Hash of the feed-derived fields (not timestamps nor classifier output)."""
        payload = self.model_dump(
            mode="json",
            exclude={"created_at", "updated_at", "tryon_eligible", "images"},
        )
        payload["images"] = [(i.url, i.sha256, i.color, i.is_main) for i in self.images]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def split_uid(uid: str) -> tuple[str, str]:
    """``'luma:MH01'`` -> ``('luma', 'MH01')``; raises ValueError without a ':'."""
    source, sep, pid = uid.partition(":")
    if not sep or not source or not pid:
        raise ValueError(f"product id must look like 'source:id', got {uid!r}")
    return source, pid


def tryon_mode_for(
    image: ImageRecord, product_category: GarmentCategory | None = None
) -> tuple[TryOnMode | None, str | None]:
    """(mode, reason for ``none``) of one image from the eligibility classifier's output.

    ``product_only`` when the classifier marks the image try-on eligible; ``on_model`` when it
    says the photo shows the garment on a model and the garment category (the product's, else
    the classifier's) is one try-on renders; ``none`` otherwise; (None, None) when unclassified.
    """
    if image.tryon_eligible is None and image.photo_type is None:
        return None, None
    if image.tryon_eligible:
        return TryOnMode.product_only, None
    category = product_category or image.garment_category_pred
    if image.photo_type is PhotoType.on_model:
        if category is None:
            return TryOnMode.none, "on-model photo of an unknown garment category"
        if category not in TRYON_CATEGORIES:
            return TryOnMode.none, f"on-model photo of a {category.value}, not a try-on category"
        return TryOnMode.on_model, None
    if image.photo_type is PhotoType.product_only:
        return TryOnMode.none, "product-only shot the classifier does not trust for try-on"
    return TryOnMode.none, "not a garment photo (neither product-only nor on-model)"


def fill_tryon_modes(product: Product) -> Product:
    """Set ``tryon_mode`` / ``tryon_mode_reason`` of every image of ``product`` that has none
    from :func:`tryon_mode_for` (in place; returns the product). Validation does this; code that
    builds products with ``model_copy`` (which skips validation) calls it before comparing or storing."""
    for img in product.images:
        if img.tryon_mode is None:
            img.tryon_mode, img.tryon_mode_reason = tryon_mode_for(img, product.garment_category)
    return product


def _mode(image: ImageRecord, product: Product) -> TryOnMode | None:
    derived = tryon_mode_for(image, product.garment_category)[0]
    return derived if derived is not None else image.tryon_mode


def tryon_image(
    product: Product, preferred: ImageRecord | None = None, *, unclassified_ok: bool = False
) -> ImageRecord | None:
    """The one rule for which product image feeds try-on (its ``tryon_mode`` says how).

    ``preferred`` (e.g. the image a search matched) when it is eligible, else the eligible
    product-only image the classifier is most confident about, else an ``on_model`` image
    (``preferred``, then the main image, then the first). With ``unclassified_ok`` (try-on of a
    catalog that was ingested without the classifier), the first image when no image of the
    product was classified and the product is not marked ineligible. None otherwise.
    """
    if preferred is not None and _mode(preferred, product) is TryOnMode.product_only:
        return preferred
    eligible = [img for img in product.images if _mode(img, product) is TryOnMode.product_only]
    if eligible:
        return max(
            eligible, key=lambda img: img.tryon_eligible_prob if img.tryon_eligible_prob is not None else 0.0
        )
    on_model = [img for img in product.images if _mode(img, product) is TryOnMode.on_model]
    if on_model:
        if preferred is not None and preferred in on_model:
            return preferred
        return next((img for img in on_model if img.is_main), on_model[0])
    unclassified = all(img.tryon_eligible is None for img in product.images)
    if unclassified_ok and product.images and unclassified and product.tryon_eligible is not False:
        return product.images[0]
    return None
