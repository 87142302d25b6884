"""Items the crawler produces (dataclasses, see Scrapy's "Item types").

``ProductItem`` is what the parser extracts from one product page; the item
pipelines validate it, download its images, and normalise it into Google
Merchant Center (GMC) feed records (``FeedRecord`` dicts) for the catalog
ingest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Availability(StrEnum):
    """Offer availability, named like GMC's ``availability`` attribute.

    Mapped from schema.org ``ItemAvailability`` (``InStock``, ``OutOfStock``,
    ``PreOrder``, ``BackOrder``, ...), OpenGraph ``product:availability`` and
    page text.
    """

    in_stock = "in_stock"
    out_of_stock = "out_of_stock"
    preorder = "preorder"
    backorder = "backorder"

    @property
    def schema_org(self) -> str:
        """The schema.org ItemAvailability name, e.g. ``'InStock'``."""
        return {
            "in_stock": "InStock",
            "out_of_stock": "OutOfStock",
            "preorder": "PreOrder",
            "backorder": "BackOrder",
        }[self.value]


@dataclass
class Variant:
    """One purchasable variant of a product (a schema.org ``hasVariant`` Product or an Offer).

    ``price`` is in ``currency`` units (not cents); image URLs are absolute.
    """

    sku: str | None = None
    name: str | None = None
    color: str | None = None
    size: str | None = None
    price: float | None = None
    currency: str | None = None
    availability: Availability | None = None
    gtin: str | None = None
    url: str | None = None
    images: list[str] = field(default_factory=list)


@dataclass
class ProductItem:
    """A product extracted from one page.

    Prices are floats in ``currency`` units (ISO 4217 code). ``images`` are
    absolute URLs, the largest rendition of each picture, largest first where
    the page declares sizes. ``image_colors`` maps an image URL to the colour
    variant it shows. ``sources`` records where each field came from
    (``json-ld``, ``microdata``, ``rdfa``, ``opengraph``, ``meta``,
    ``rule:<site>``, ``heuristic``).

    ``image_urls`` / ``images_downloaded`` are the fields Scrapy's
    ``ImagesPipeline`` reads and fills (``IMAGES_URLS_FIELD`` /
    ``IMAGES_RESULT_FIELD``).
    """

    url: str
    canonical_url: str | None = None
    name: str | None = None
    description: str | None = None
    sku: str | None = None
    mpn: str | None = None
    gtin: str | None = None
    product_group_id: str | None = None
    brand: str | None = None
    price: float | None = None
    currency: str | None = None
    regular_price: float | None = None
    availability: Availability | None = None
    condition: str | None = None
    images: list[str] = field(default_factory=list)
    image_colors: dict[str, str] = field(default_factory=dict)
    category_path: list[str] = field(default_factory=list)
    color: str | None = None
    colors: list[str] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)
    gender: str | None = None
    material: str | None = None
    variants: list[Variant] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    #: Shop name or domain the product belongs to (the catalog ``source``).
    shop: str | None = None
    # ---- filled by the pipelines -------------------------------------------------------
    image_urls: list[str] = field(default_factory=list)
    images_downloaded: list[dict[str, Any]] = field(default_factory=list)
    #: Google Merchant Center feed records (``crawler.pipelines.normalize``).
    feed_records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def link(self) -> str:
        """The product's public URL: canonical when known, else the page URL."""
        return self.canonical_url or self.url

    def product_id(self) -> str | None:
        """Catalog id: the product group id, else the SKU, else the GTIN, else the MPN, else None."""
        return self.product_group_id or self.sku or self.gtin or self.mpn
