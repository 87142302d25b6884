"""What a product page shows: one product's images grouped by colour variant, its availability,
the image try-on uses, and its nearest products.

The HTTP route (``GET /products/{uid}``, ``GET /products/{uid}/similar``) only maps these to
its schemas; the rules live here.
"""

from __future__ import annotations

from dataclasses import dataclass

from fittingroom.catalog.models import ImageRecord, Product, split_uid, tryon_image
from fittingroom.catalog.store import CatalogStore
from fittingroom.retrieval.search import (
    NoIndexedImageError,
    ProductNotFoundError,
    Searcher,
    SearchHit,
    main_image,
)
from fittingroom.values import normalise_availability

#: Attribute keys a feed may carry the stock state under (first one found wins).
AVAILABILITY_KEYS = ("availability", "stock_status", "in_stock")


@dataclass(frozen=True)
class ColorGroup:
    """The images of one colour variant (``color`` None: images without a colour)."""

    color: str | None
    images: list[ImageRecord]


@dataclass(frozen=True)
class ProductPage:
    """Everything a product page needs besides its similar products."""

    product: Product
    groups: list[ColorGroup]
    main_image: ImageRecord | None
    #: The image try-on uses (``fittingroom.catalog.models.tryon_image``); None = not try-on-able.
    tryon_image: ImageRecord | None
    #: One of ``fittingroom.values.AVAILABILITY_VALUES``, None when the feed does not say.
    availability: str | None

    @property
    def tryon_ready(self) -> bool:
        return self.tryon_image is not None


def group_images(product: Product) -> list[ColorGroup]:
    """The product's images grouped by colour variant (case-insensitive), each image once.

    The group of the main image comes first, then the colours in ``product.colors`` order, then
    other colours in order of appearance; images without a colour form the last group (or the
    only one). Within a group the main image comes first, the rest keep the feed's order.
    """
    main = main_image(product)
    groups: dict[str | None, list[ImageRecord]] = {}
    names: dict[str | None, str | None] = {None: None}
    seen: set[str] = set()
    for img in product.images:
        if img.sha256 in seen:
            continue
        seen.add(img.sha256)
        key = img.color.strip().casefold() if img.color and img.color.strip() else None
        names.setdefault(key, img.color.strip() if img.color else None)
        groups.setdefault(key, []).append(img)
    order = {c.strip().casefold(): n for n, c in enumerate(product.colors)}

    def rank(key: str | None) -> tuple[int, int]:
        if main is not None and any(i is main for i in groups[key]):
            return (0, 0)
        if key is None:
            return (3, 0)
        return (1, order[key]) if key in order else (2, 0)

    keys = sorted(groups, key=rank)  # stable: other colours keep their order of appearance
    out = []
    for key in keys:
        imgs = sorted(groups[key], key=lambda i: 0 if i is main else 1)
        out.append(ColorGroup(color=names[key], images=imgs))
    return out


def availability_of(product: Product) -> str | None:
    """The product's stock state from its attributes, normalised; None when unknown."""
    for key in AVAILABILITY_KEYS:
        value = product.attributes.get(key)
        if value:
            found = normalise_availability(value)
            if found is not None:
                return found
    return None


def build_page(product: Product) -> ProductPage:
    return ProductPage(
        product=product,
        groups=group_images(product),
        main_image=main_image(product),
        tryon_image=tryon_image(product),
        availability=availability_of(product),
    )


def product_page(store: CatalogStore, uid: str) -> ProductPage:
    """The page of product ``uid`` ('source:id').

    Raises ValueError for a malformed uid, ProductNotFoundError when it is not in the catalog.
    """
    source, pid = split_uid(uid)
    product = store.get_product(source, pid)
    if product is None:
        raise ProductNotFoundError(f"There is no product {uid!r} in the catalog.")
    return build_page(product)


def similar_products(searcher: Searcher, uid: str, k: int = 8) -> list[SearchHit]:
    """Up to ``k`` products nearest to ``uid``'s main-image embedding, itself excluded, best first.

    Raises ValueError for a malformed uid, ProductNotFoundError for an unknown product; a product
    without an indexed image has no similar products (empty list).
    """
    try:
        return searcher.more_like_this(uid, k=k).hits
    except NoIndexedImageError:
        return []
