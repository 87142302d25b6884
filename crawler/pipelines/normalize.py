"""ProductItem -> Google Merchant Center (GMC) feed records, the ingest's feed schema.

One record per colour when the product's images are known per colour (GMC's
variant convention: rows sharing ``item_group_id`` are one product), otherwise
one record. Fields (https://support.google.com/merchants/answer/7052112):

``id``, ``item_group_id``, ``title``, ``description``, ``link``, ``image_link``,
``additional_image_link`` (list), ``price`` (``'12.99 USD'``), ``brand``,
``product_type`` (``'A > B'``), ``color``, ``size``, ``gender``,
``availability`` (``in_stock``...), ``gtin``, ``mpn``, ``condition``, plus the
ingest's list extensions ``sizes``/``colors`` when a row has several.
"""

from __future__ import annotations

import re
from typing import Any

from crawler.items import ProductItem
from fittingroom.values import gmc_gender


def format_price(amount: float | None, currency: str | None) -> str | None:
    """``(12.9, 'USD')`` -> ``'12.90 USD'`` (GMC's price format); None without an amount."""
    if amount is None:
        return None
    text = f"{amount:.2f}"
    return f"{text} {currency}" if currency else text


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def feed_records(item: ProductItem) -> list[dict[str, Any]]:
    """The GMC records of one product (see the module docstring). ``item`` must have an id."""
    pid = item.product_id()
    if not pid:
        raise ValueError(f"{item.url}: product has no id")
    base: dict[str, Any] = {
        "title": item.name,
        "description": item.description or "",
        "link": item.link,
        "price": format_price(item.price, item.currency),
        "brand": item.brand,
        "product_type": " > ".join(item.category_path) if item.category_path else None,
        "gender": gmc_gender(item.gender),
        "availability": item.availability.value if item.availability else None,
        "gtin": item.gtin,
        "mpn": item.mpn,
        "condition": _condition(item.condition),
        "material": item.material,
    }
    images = list(item.images)
    by_color: dict[str, list[str]] = {}
    shared: list[str] = []
    for url in images:
        color = item.image_colors.get(url)
        if color:
            by_color.setdefault(color, []).append(url)
        else:
            shared.append(url)

    sizes = list(item.sizes)
    if not by_color:
        rec = {"id": pid, **base, **_image_fields(images), **_list_field("size", "sizes", sizes)}
        if item.product_group_id and item.sku and item.sku != item.product_group_id:
            rec["item_group_id"] = item.product_group_id
        rec.update(_list_field("color", "colors", item.colors or ([item.color] if item.color else [])))
        return [_clean(rec)]

    variant_sku: dict[str, str] = {}
    for v in item.variants:
        if v.color and v.sku:
            variant_sku.setdefault(v.color.lower(), v.sku)  # the colour's first variant
    variant_sizes: dict[str, list[str]] = {}
    for v in item.variants:
        if v.color and v.size:
            variant_sizes.setdefault(v.color.lower(), []).append(v.size)
    # the colour of the main image first, so the product's main image stays first
    colors = list(by_color)
    main_color = item.image_colors.get(images[0]) if images else None
    if main_color in by_color:
        colors.remove(main_color)
        colors.insert(0, main_color)
    records = []
    for color in colors:
        vid = variant_sku.get(color.lower())
        rid = vid if vid and vid != pid else f"{pid}-{_slug(color)}"
        rec = {
            "id": rid,
            "item_group_id": pid,
            **base,
            "color": color,
            **_image_fields(by_color[color]),
            **_list_field("size", "sizes", list(dict.fromkeys(variant_sizes.get(color.lower(), sizes)))),
        }
        records.append(_clean(rec))
    if shared:  # pictures of the product as a whole (no one colour)
        rec = {
            "id": f"{pid}-all",
            "item_group_id": pid,
            **base,
            **_image_fields(shared),
            **_list_field("size", "sizes", sizes),
        }
        if images and images[0] in shared:
            records.insert(0, _clean(rec))
        else:
            records.append(_clean(rec))
    return records


def _image_fields(urls: list[str]) -> dict[str, Any]:
    if not urls:
        return {}
    return (
        {"image_link": urls[0], "additional_image_link": urls[1:]}
        if len(urls) > 1
        else {"image_link": urls[0]}
    )


def _list_field(single: str, plural: str, values: list[str]) -> dict[str, Any]:
    if not values:
        return {}
    return {single: values[0]} if len(values) == 1 else {plural: values}


def _condition(value: str | None) -> str | None:
    if not value:
        return None
    v = value.lower()
    for c in ("new", "used", "refurbished"):
        if c in v:
            return c
    return None


def _clean(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if v not in (None, "", [])}


class NormalizePipeline:
    """Fill ``item.feed_records`` (GMC records) for the writers."""

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, ProductItem):
            item.feed_records = feed_records(item)
        return item
