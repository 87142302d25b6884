"""Product assembly from schema.org nodes: the page's main product among the candidates,
its fields, variants, images and category path (breadcrumbs)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from crawler.extract.document import Document
from crawler.extract.fields import normalise_gender
from crawler.extract.images import node_images
from crawler.extract.offers import node_gtin, node_offers, norm_page_url, pick_offer
from crawler.extract.structured import (
    RELATED_PROPS,
    first_node,
    first_text,
    is_product,
    node_text,
    node_types,
)
from crawler.extract.text import abs_url, clean_text
from crawler.items import Availability, ProductItem, Variant


@dataclass
class Candidate:
    node: dict[str, Any]
    depth: int
    related: bool
    order: int
    listed: bool = False  # inside an ItemList (a category page's products)


def walk_products(nodes: list[dict[str, Any]]) -> list[Candidate]:
    found: list[Candidate] = []
    seen: set[int] = set()

    def visit(v: Any, depth: int, related: bool, listed: bool) -> None:
        if isinstance(v, list):
            for x in v:
                visit(x, depth, related, listed)
            return
        if not isinstance(v, dict) or id(v) in seen:
            return
        seen.add(id(v))
        if is_product(v):
            found.append(Candidate(v, depth, related, len(found), listed))
            if "ProductGroup" in node_types(v):
                return  # its hasVariant products are variants, not candidates
        for k, val in v.items():
            if k.startswith("@"):
                continue
            visit(val, depth + 1, related or k in RELATED_PROPS, listed or k == "itemListElement")

    for n in nodes:
        visit(n, 0, False, False)
    return found


_SYNTAX_RANK = {"json-ld": 0.3, "microdata": 0.2, "rdfa": 0.1}


def score_candidate(c: Candidate, page_urls: set[str], base: str) -> float:
    n = c.node
    s = 0.0
    url = first_text(n, "url", "@id")
    if url and norm_page_url(abs_url(base, url)) in page_urls:
        s += 4
    offers = node_offers(n, base)
    if any(o.price is not None for o in offers):
        s += 2
    s += bool(first_text(n, "name")) + bool(first_text(n, "sku", "productID", "mpn")) + bool(n.get("image"))
    if c.related:
        s -= 5
    s -= 0.5 * c.depth
    s += _SYNTAX_RANK.get(n.get("@syntax", ""), 0)
    return s


def same_product(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for props in (("sku",), ("productID",), ("mpn",), ("gtin13", "gtin", "gtin14", "gtin12", "gtin8")):
        x, y = first_text(a, *props), first_text(b, *props)
        if x and y:
            return x.lower() == y.lower()
    x, y = first_text(a, "name"), first_text(b, "name")
    if x and y:
        return x.lower() == y.lower()
    return False


_BRAND_PREFIX = re.compile(r"^.*\b(?:brand|marke|marque|marca|merk|marka|бренд)\s*:\s*", re.I)


def clean_brand(t: str | None) -> str | None:
    """Drop label text around a brand ("See more from the brand: ACME" -> "ACME"); None for non-brands."""
    if not t:
        return None
    t = _BRAND_PREFIX.sub("", t).strip()
    if not t or t.startswith(("http://", "https://")) or t.lower() in ("brand", "null", "none", "n/a", "-"):
        return None
    return t


def _brand(node: dict[str, Any]) -> str | None:
    for prop in ("brand", "manufacturer"):
        for v in node.get(prop, []):
            t = clean_brand(node_text(v))
            if t:
                return t
    return None


def _sku(node: dict[str, Any]) -> str | None:
    t = first_text(node, "sku")
    if t:
        return t
    pid = first_text(node, "productID")
    if pid:
        return re.sub(r"^(sku|isbn|mpn|gtin\d*|id):", "", pid, flags=re.I).strip() or None
    return None


def _gender(node: dict[str, Any]) -> str | None:
    aud = first_node(node, "audience")
    g = first_text(aud, "suggestedGender") if aud else None
    g = g or first_text(node, "gender", "suggestedGender")
    return normalise_gender(g)


def _variant_from(node: dict[str, Any], base: str, page_url: str) -> Variant:
    offers = node_offers(node, base)
    o = pick_offer(offers, page_url)
    return Variant(
        sku=_sku(node) or (o.sku if o else None),
        name=first_text(node, "name"),
        color=first_text(node, "color"),
        size=first_text(node, "size"),
        price=o.price if o else None,
        currency=o.currency if o else None,
        availability=o.availability if o else None,
        gtin=node_gtin(node) or (o.gtin if o else None),
        url=abs_url(base, first_text(node, "url")) or (o.url if o else None),
        images=[u for u, _ in node_images(node, base)],
    )


def set_field(item: ProductItem, name: str, value: Any, source: str) -> None:
    """Fill ``item.<name>`` when it is still empty, remembering the source."""
    if value in (None, "", [], {}):
        return
    if getattr(item, name) in (None, "", [], {}):
        setattr(item, name, value)
        item.sources[name] = source


def fill_from_node(item: ProductItem, node: dict[str, Any], doc: Document) -> list[tuple[str, int | None]]:
    """Fill item fields from one schema.org product node; returns its image candidates."""
    base = doc.base_url
    src = node.get("@syntax", "json-ld")
    set_field(item, "name", first_text(node, "name"), src)
    set_field(item, "description", first_text(node, "description"), src)
    set_field(item, "sku", _sku(node), src)
    set_field(item, "mpn", first_text(node, "mpn"), src)
    set_field(item, "gtin", node_gtin(node), src)
    set_field(item, "brand", _brand(node), src)
    set_field(item, "color", first_text(node, "color"), src)
    set_field(item, "material", first_text(node, "material"), src)
    set_field(item, "gender", _gender(node), src)
    group = first_text(node, "productGroupID", "inProductGroupWithID")
    parent = first_node(node, "isVariantOf")
    if parent:
        group = group or first_text(parent, "productGroupID", "sku")
        set_field(item, "brand", _brand(parent), src)
    if "ProductGroup" in node_types(node):
        group = group or _sku(node)
    set_field(item, "product_group_id", group, src)
    cat = node.get("category", [])
    if cat:
        path = split_category(cat)
        set_field(item, "category_path", path, src)
    set_field(item, "sizes", [s for s in (node_text(v) for v in node.get("size", [])) if s], src)

    images = node_images(node, base)
    # variants: ProductGroup.hasVariant, or offers each naming their own item
    variant_nodes = [v for v in node.get("hasVariant", []) if isinstance(v, dict)]
    offers = node_offers(node, base)
    if not variant_nodes:
        variant_nodes = [o.item for o in offers if o.item is not None and o.item is not node]
    variants = [_variant_from(v, base, doc.url) for v in variant_nodes]
    if variants and not item.variants:
        item.variants = variants
        item.sources["variants"] = src
    for v in variants:
        for u in v.images:
            images.append((u, None))
            if v.color:
                item.image_colors.setdefault(u, v.color)

    # price: the product's own offers, else the variant that matches the page, else the cheapest
    offer = pick_offer(offers, doc.url)
    if offer is not None and offer.price is not None:
        set_field(item, "price", offer.price, src)
        set_field(item, "currency", offer.currency, src)
        set_field(item, "regular_price", offer.regular_price, src)
        set_field(item, "availability", offer.availability, src)
        set_field(item, "condition", offer.condition, src)
        if not item.sku and offer.sku:
            set_field(item, "sku", offer.sku, src)
        set_field(item, "gtin", offer.gtin, src)
    elif variants:
        v = _matching_variant(variants, doc.url)
        set_field(item, "price", v.price, src)
        set_field(item, "currency", v.currency, src)
        set_field(item, "availability", v.availability, src)
    if offer is not None:
        set_field(item, "currency", offer.currency, src)
        set_field(item, "availability", offer.availability, src)
    if item.availability is None and variants:
        avail = {v.availability for v in variants if v.availability}
        if Availability.in_stock in avail:
            set_field(item, "availability", Availability.in_stock, src)
        elif avail:
            set_field(item, "availability", sorted(avail)[0], src)
    return images


def _matching_variant(variants: list[Variant], page_url: str) -> Variant:
    query = urlsplit(page_url).query
    for v in variants:
        if v.sku and query and v.sku in query:
            return v
        if v.url and v.url == page_url:
            return v
    priced = [v for v in variants if v.price is not None]
    return priced[0] if priced else variants[0]


def split_category(values: list[Any]) -> list[str]:
    texts = [t for t in (node_text(v) for v in values) if t]
    if len(texts) == 1:
        parts = re.split(r"\s*(?:>|/|›|»|\|)\s*", texts[0])
        return [p for p in parts if p]
    return texts


def breadcrumbs(nodes: list[dict[str, Any]], base: str) -> list[str]:
    """Category path from the first BreadcrumbList (or data-vocabulary Breadcrumb chain)."""
    lists = []

    def visit(v: Any) -> None:
        if isinstance(v, list):
            for x in v:
                visit(x)
        elif isinstance(v, dict):
            if "BreadcrumbList" in node_types(v):
                lists.append(v)
                return
            for k, val in v.items():
                if not k.startswith("@"):
                    visit(val)

    visit(nodes)
    for bl in lists:
        crumbs: list[tuple[float, str, str | None]] = []
        for i, el in enumerate(bl.get("itemListElement", [])):
            if not isinstance(el, dict):
                t = clean_text(el)
                if t:
                    crumbs.append((i, t, None))
                continue
            pos = first_text(el, "position")
            item = first_node(el, "item")
            name = first_text(el, "name") or (first_text(item, "name") if item else None)
            url = first_text(item, "@id", "url") if item else first_text(el, "item", "url")
            if name:
                try:
                    p = float(pos) if pos else float(i)
                except ValueError:
                    p = float(i)
                crumbs.append((p, name, abs_url(base, url) if url else None))
        crumbs.sort(key=lambda c: c[0])
        path = [name for _, name, url in crumbs if not (url and urlsplit(url).path in ("", "/"))]
        if path:
            return path
    # data-vocabulary.org Breadcrumb: separate top-level nodes with title/url
    old = [n for n in nodes if "Breadcrumb" in node_types(n)]
    path = []
    for n in old:
        t = first_text(n, "title", "name")
        u = first_text(n, "url")
        if t and not (u and urlsplit(abs_url(base, u) or "").path in ("", "/")):
            path.append(t)
    return path


def drop_self_crumb(path: list[str], name: str | None) -> list[str]:
    if path and name and path[-1].strip().lower() == name.strip().lower():
        return path[:-1]
    return path
