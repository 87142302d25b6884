"""Helpers shared by the store implementations to evaluate ``ProductFilter`` the same way.

Category matching: a product's category path ``['Men', 'Tops', 'Tees']`` is indexed
under every *contiguous sub-path*, lower-cased and joined with ``/``
(``men``, ``men/tops``, ``men/tops/tees``, ``tops``, ``tops/tees``, ``tees``), so a
filter value matches when it is a path element, a prefix (the contract of
``ProductFilter.category``) or any other contiguous run of elements. Filter values may
use ``/`` or ``>`` as separator (``'Men > Tops'`` == ``'men/tops'``). The product's
``garment_category`` value (``top``, ``outerwear``...) is indexed as one more key, so
one key lookup answers "path contains it OR garment category equals it".
"""

from __future__ import annotations

import re

from fittingroom.catalog.models import Product

_SEP = re.compile(r"\s*[/>]\s*")


def normalize_category(value: str) -> str:
    """``'Men > Tops '`` -> ``'men/tops'`` (lower-case, ``/``-joined, blanks dropped)."""
    parts = [p.strip().lower() for p in _SEP.split(value.strip())]
    return "/".join(p for p in parts if p)


def category_keys(product: Product) -> list[str]:
    """Every contiguous sub-path of the category path (lower-case, ``/``-joined) plus the
    garment category value, without duplicates."""
    path = [p.strip().lower() for p in product.category_path if p and p.strip()]
    keys: dict[str, None] = {}
    for i in range(len(path)):
        for j in range(i + 1, len(path) + 1):
            keys["/".join(path[i:j])] = None
    if product.garment_category is not None:
        keys[product.garment_category.value] = None
    return list(keys)


def image_vector_ids(product: Product) -> list[int]:
    """The product's image vector ids; ValueError when one appears twice (one image listed twice)."""
    vids = [img.vector_id for img in product.images]
    if len(set(vids)) != len(vids):
        raise ValueError(f"product {product.uid} lists the same image (vector id) twice")
    return vids


def brand_key(brand: str | None) -> str | None:
    """Case- and blank-insensitive brand used for equality filters."""
    if brand is None:
        return None
    key = " ".join(brand.split()).lower()
    return key or None
