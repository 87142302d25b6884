"""OpenGraph (``og:*``, ``product:*``), other ``<meta>``/``<link>`` tags and loose ``itemprop``
attributes outside any ``itemscope``."""

from __future__ import annotations

from crawler.extract.document import Document
from crawler.extract.fields import currency_code, normalise_gender, parse_availability, parse_price
from crawler.extract.product import clean_brand, set_field, split_category
from crawler.extract.structured import StructuredData
from crawler.extract.text import abs_url, clean_text, leading_int
from crawler.items import ProductItem


def fill_from_meta(item: ProductItem, sd: StructuredData, doc: Document) -> list[tuple[str, int | None]]:
    og = sd.og_first
    set_field(item, "name", og("og:title"), "opengraph")
    set_field(item, "description", og("og:description"), "opengraph")
    for p in ("product:price:amount", "og:price:amount", "product:sale_price:amount"):
        amount, sym = parse_price(og(p))
        if amount is not None:
            cur = og(p.replace("amount", "currency"))
            set_field(item, "price", amount, "opengraph")
            set_field(
                item, "currency", currency_code(cur, doc.url) or currency_code(sym, doc.url), "opengraph"
            )
            break
    set_field(
        item, "availability", parse_availability(og("product:availability", "og:availability")), "opengraph"
    )
    set_field(item, "brand", clean_brand(og("product:brand", "og:brand")), "opengraph")
    set_field(item, "sku", og("product:retailer_item_id", "product:sku"), "opengraph")
    set_field(item, "gtin", og("product:ean", "product:gtin", "product:upc", "product:isbn"), "opengraph")
    set_field(item, "mpn", og("product:mfr_part_no"), "opengraph")
    set_field(item, "color", og("product:color"), "opengraph")
    set_field(item, "gender", normalise_gender(og("product:gender", "product:target_gender")), "opengraph")
    set_field(item, "condition", og("product:condition", "og:condition"), "opengraph")
    cat = og("product:category")
    if cat:
        set_field(item, "category_path", split_category([cat]), "opengraph")

    images: list[tuple[str, int | None]] = []
    width = None
    pending: list[tuple[str, int | None]] = []
    for k, v in sd.og:
        if k in ("og:image", "og:image:url", "og:image:secure_url"):
            u = abs_url(doc.base_url, v)
            if u and not any(u == p[0] for p in pending):
                pending.append((u, None))
        elif k == "og:image:width" and pending:
            width = leading_int(v)
            pending[-1] = (pending[-1][0], width)
    images.extend(pending)
    for q in (
        "//meta[@name='twitter:image' or @property='twitter:image' or @name='twitter:image:src']/@content",
        "//link[@rel='image_src']/@href",
    ):
        for v in doc.xpath(q):
            u = abs_url(doc.base_url, v)
            if u:
                images.append((u, None))

    # plain meta tags and loose itemprops (outside any itemscope)
    meta_desc = doc.xpath("//meta[@name='description']/@content")
    set_field(item, "description", clean_text(meta_desc[0]) if meta_desc else None, "meta")
    for prop in ("sku", "brand", "mpn", "name"):
        vals = _itemprop_values(doc, prop)
        value = vals[0] if vals else None
        set_field(item, prop, clean_brand(value) if prop == "brand" else value, "meta")
    if item.price is None:
        for v in _itemprop_values(doc, "price") + _itemprop_values(doc, "lowPrice"):
            amount, sym = parse_price(v)
            if amount is not None and amount > 0:
                cur = next(iter(_itemprop_values(doc, "priceCurrency")), None)
                set_field(item, "price", amount, "meta")
                set_field(
                    item, "currency", currency_code(cur, doc.url) or currency_code(sym, doc.url), "meta"
                )
                break
    if item.currency is None:
        cur = next(iter(_itemprop_values(doc, "priceCurrency")), None)
        set_field(item, "currency", currency_code(cur, doc.url), "meta")
    for v in _itemprop_values(doc, "availability"):
        set_field(item, "availability", parse_availability(v), "meta")
    return images


def _itemprop_values(doc: Document, prop: str) -> list[str]:
    out = []
    for el in doc.xpath(f"//*[@itemprop='{prop}']"):
        v = el.get("content") or el.get("href") or el.get("value")
        if v is None and el.tag not in ("meta", "link"):
            v = el.text_content()
        t = clean_text(v)
        if t:
            out.append(t)
    return out


def canonical_url(doc: Document, sd: StructuredData) -> str | None:
    for v in doc.xpath("//link[@rel='canonical']/@href"):
        u = abs_url(doc.base_url, v)
        if u:
            return u
    og_url = sd.og_first("og:url")
    return abs_url(doc.base_url, og_url) if og_url else None
