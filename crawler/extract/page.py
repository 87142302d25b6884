"""Product extraction from one HTML page (usable without a crawl): the public entry points.

Entry points:

- ``parse_page(html, url)`` -> ``ParsedPage``: the page's main product (or
  None), whether the page looks like a product page, and the product URLs a
  listing page's structured data points to.
- ``extract_product(html, url)`` -> ``ProductItem | None``: the main product only.

Sources, in order of trust (a later source only fills fields still missing):

1. schema.org ``Product`` / ``ProductGroup`` (``hasVariant``) / any node with
   ``offers``, read with extruct from JSON-LD, microdata and RDFa; offers as
   ``Offer``, lists of offers, ``AggregateOffer`` and ``priceSpecification``;
   ``BreadcrumbList`` for the category path.
2. Per-site rules (``crawler.site_rules``) for the shops that have them.
3. OpenGraph (``og:*``, ``product:*``) and other ``<meta>``/``<link>`` tags,
   and loose ``itemprop`` attributes outside any ``itemscope``.
4. Generic page heuristics: ``<h1>``, elements whose id/class says "price",
   label/value pairs ("SKU: ...", "Brand: ..."), elements named ``sku``/``brand``,
   an agreeing data-layer brand, GTINs (check digit verified), add-to-cart buttons
   and out-of-stock wording. A published price the page shows struck through
   gives way to the current price beside it.

Prices and currencies are read with ``price-parser`` ("349,95", "$1,299.00",
"15.99 EUR"); currencies are returned as ISO 4217 codes (a bare "$" resolves
by the shop's country domain, USD otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from crawler.extract.document import Document, load_document
from crawler.extract.heuristics import (
    correct_struck_price,
    fill_from_heuristics,
    has_add_to_cart,
    heuristic_images,
    page_currency,
    url_product_id,
)
from crawler.extract.images import order_images
from crawler.extract.meta import canonical_url, fill_from_meta
from crawler.extract.offers import norm_page_url
from crawler.extract.product import (
    breadcrumbs,
    drop_self_crumb,
    fill_from_node,
    same_product,
    score_candidate,
    set_field,
    walk_products,
)
from crawler.extract.structured import extract_structured, first_text
from crawler.extract.text import abs_url
from crawler.items import Availability, ProductItem
from crawler.site_rules import load_rules


@dataclass
class ParsedPage:
    """Result of ``parse_page``.

    ``product`` is the page's main product (None on non-product pages);
    ``listing_urls`` are product URLs named by the page's structured data when
    it describes several products (a category page); ``errors`` lists
    structured-data blocks that could not be read.
    """

    url: str
    product: ProductItem | None
    is_product_page: bool
    listing_urls: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_page(
    html: str | bytes,
    url: str,
    *,
    rules: Any | None = None,
    heuristics: bool = True,
    assume_product: bool = False,
) -> ParsedPage:
    """Extract the main product of one page.

    ``rules`` is a ``crawler.site_rules.SiteRules`` (None = the bundled rules).
    ``assume_product=True`` extracts even when nothing says the page is a
    product page (for evaluation on known product pages).
    Raises ValueError for an empty/unparseable document.
    """
    return parse_document(
        load_document(html, url), rules=rules, heuristics=heuristics, assume_product=assume_product
    )


def parse_document(
    doc: Document,
    *,
    rules: Any | None = None,
    heuristics: bool = True,
    assume_product: bool = False,
) -> ParsedPage:
    """``parse_page`` on an already loaded ``Document`` (the spider reuses the tree for links)."""

    url = doc.url
    sd = extract_structured(doc)
    rules = rules if rules is not None else load_rules()
    site_rule = rules.match(doc)

    canonical = canonical_url(doc, sd)
    page_urls = {norm_page_url(url)}
    if canonical:
        page_urls.add(norm_page_url(canonical))

    candidates = walk_products(sd.nodes)
    listing_urls: list[str] = []
    top = [c for c in candidates if not c.related or c.listed]
    urls = {abs_url(doc.base_url, first_text(c.node, "url")) for c in top}
    urls.discard(None)
    if len(top) >= 3 and len(urls) >= 3 and not (page_urls & {norm_page_url(u) for u in urls}):
        listing_urls = sorted(u for u in urls if u)

    item = ProductItem(url=url, canonical_url=_pick_link(url, canonical))
    image_cands: list[tuple[str, int | None]] = []
    if candidates and not listing_urls:
        ranked = sorted(candidates, key=lambda c: (-score_candidate(c, page_urls, doc.base_url), c.order))
        main = ranked[0].node
        image_cands += fill_from_node(item, main, doc)
        for c in ranked[1:]:
            if c.related or not same_product(main, c.node):
                continue
            image_cands += fill_from_node(item, c.node, doc)
    structured_product = bool(candidates) and not listing_urls

    rule_says_product = False
    if site_rule is not None:
        rule_says_product = site_rule.is_product_page(doc)
        if rule_says_product:
            image_cands = site_rule.apply(item, doc) + image_cands

    og_type = (sd.og_first("og:type") or "").lower()
    og_product = (
        og_type.startswith("product") or sd.og_first("product:price:amount", "og:price:amount") is not None
    )
    meta_images = fill_from_meta(item, sd, doc)
    image_cands += meta_images

    crumbs = breadcrumbs(sd.nodes, doc.base_url)
    if crumbs:
        item.category_path = drop_self_crumb(crumbs, item.name)
        item.sources["category_path"] = "breadcrumbs"

    is_product = structured_product or rule_says_product or og_product
    if heuristics and (is_product or assume_product or not listing_urls):
        if item.sources.get("price") in _MARKUP_SOURCES:
            correct_struck_price(item, doc)
        fill_from_heuristics(item, doc)
        if not is_product and item.price is not None and has_add_to_cart(doc):
            is_product = True  # a price next to an add-to-cart button
        if not image_cands and (is_product or assume_product):
            image_cands = heuristic_images(doc, item.name)
        if item.sku is None and (is_product or assume_product):
            set_field(item, "sku", url_product_id(item.canonical_url or url), "url")
    if item.availability is None and item.price is not None and item.sources.get("price") in _MARKUP_SOURCES:
        # A published offer with a price and no stock statement (schema.org Offer without
        # availability, AggregateOffer with offers, product:price meta) is an offer one can take.
        set_field(item, "availability", Availability.in_stock, "offer")

    if not item.colors:
        colors = _unique([v.color for v in item.variants if v.color] or ([item.color] if item.color else []))
        set_field(item, "colors", colors, item.sources.get("variants", item.sources.get("color", "json-ld")))
    if item.variants:
        sizes = _unique([v.size for v in item.variants if v.size])
        if sizes and not item.sizes:
            set_field(item, "sizes", sizes, item.sources.get("variants", "json-ld"))
    if item.currency is None and item.price is not None:
        set_field(item, "currency", page_currency(doc), "heuristic")
    item.images = order_images(image_cands)
    item.image_colors = {u: c for u, c in item.image_colors.items() if u in set(item.images)}
    if item.description:
        item.description = item.description[:5000]
    if not (is_product or assume_product):
        return ParsedPage(
            url=url, product=None, is_product_page=False, listing_urls=listing_urls, errors=sd.errors
        )
    return ParsedPage(
        url=url, product=item, is_product_page=is_product, listing_urls=listing_urls, errors=sd.errors
    )


_MARKUP_SOURCES = ("json-ld", "microdata", "rdfa", "opengraph", "meta")


def _pick_link(url: str, canonical: str | None) -> str | None:
    """The canonical URL when it is on the page's own site, else None (the page URL is used).

    A canonical URL on another host (a staging build, a copied template) would
    send users to a shop that is not the one crawled.
    """
    if not canonical:
        return None
    a = (urlsplit(url).hostname or "").removeprefix("www.")
    b = (urlsplit(canonical).hostname or "").removeprefix("www.")
    return canonical if a == b else None


def _unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        if v and v.lower() not in {k.lower() for k in seen}:
            seen[v] = None
    return list(seen)


def extract_product(html: str | bytes, url: str, **kwargs: Any) -> ProductItem | None:
    """The main product of a page, or None when the page is not a product page (see ``parse_page``)."""
    return parse_page(html, url, **kwargs).product


def product_to_dict(item: ProductItem) -> dict[str, Any]:
    """JSON-ready dict of a ProductItem (enums as their values, pipeline fields left out)."""
    from dataclasses import asdict

    d = asdict(item)
    d.pop("image_urls", None)
    d.pop("images_downloaded", None)
    if item.availability is not None:
        d["availability"] = item.availability.value
    for v in d.get("variants", []):
        if v.get("availability") is not None:
            v["availability"] = str(v["availability"])
    return d
