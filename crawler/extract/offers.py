"""schema.org offers: ``Offer``, lists of offers, ``AggregateOffer``, ``priceSpecification``;
choosing the offer a page sells."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from crawler.extract.fields import currency_code, parse_availability, parse_price
from crawler.extract.structured import first_node, first_text, is_product, node_text, node_types
from crawler.extract.text import abs_url, short_name
from crawler.items import Availability


def norm_page_url(u: str | None) -> str:
    if not u:
        return ""
    p = urlsplit(u)
    return (p.hostname or "").removeprefix("www.") + p.path.rstrip("/")


@dataclass
class Offer:
    price: float | None = None
    currency: str | None = None
    regular_price: float | None = None
    availability: Availability | None = None
    sku: str | None = None
    url: str | None = None
    item: dict[str, Any] | None = None
    gtin: str | None = None
    condition: str | None = None


_STRIKE_TYPES = ("StrikethroughPrice", "ListPrice", "MSRP", "SRP", "InvoicePrice")


def node_offers(node: dict[str, Any], base: str) -> list[Offer]:
    """Flatten ``offers`` (Offer, list, AggregateOffer with or without nested offers)."""
    out: list[Offer] = []
    for o in node.get("offers", []):
        if not isinstance(o, dict):
            amount, cur = parse_price(o)
            if amount is not None:
                out.append(Offer(price=amount, currency=currency_code(cur, base)))
            continue
        nested = [x for x in o.get("offers", []) if isinstance(x, dict)]
        if "AggregateOffer" in node_types(o) and nested:
            sub = node_offers({"offers": nested}, base)
            cur = first_text(o, "priceCurrency")
            for s in sub:
                s.currency = s.currency or currency_code(cur, base)
            out.extend(sub)
            if all(s.price is None for s in sub):
                out.append(_one_offer(o, base))
            continue
        out.append(_one_offer(o, base))
    return out


def _one_offer(o: dict[str, Any], base: str) -> Offer:
    cur_text = first_text(o, "priceCurrency", "pricecurrency")  # microdata names are case-sensitive
    price_text: Any = None
    for v in o.get("price", []):
        if node_text(v) is not None or isinstance(v, int | float):
            price_text = v if not isinstance(v, dict) else node_text(v)
            break
    regular = None
    for spec in o.get("priceSpecification", []):
        if not isinstance(spec, dict):
            continue
        ptype = short_name(first_text(spec, "priceType") or "")
        sp = next((v for v in spec.get("price", []) if v is not None), None)
        amount, _ = parse_price(sp)
        if ptype in _STRIKE_TYPES:
            regular = amount
            continue
        if price_text is None and sp is not None:
            price_text = sp
        cur_text = cur_text or first_text(spec, "priceCurrency")
    if price_text is None:
        price_text = next((v for v in o.get("lowPrice", []) if v is not None), None)
    amount, symbol = parse_price(price_text)
    item = first_node(o, "itemOffered")
    return Offer(
        price=amount,
        currency=currency_code(cur_text, base) or currency_code(symbol, base),
        regular_price=regular,
        availability=parse_availability(next(iter(o.get("availability", [])), None)),
        sku=first_text(o, "sku"),
        url=abs_url(base, first_text(o, "url")),
        item=item if item and is_product(item) else None,
        gtin=node_gtin(o),
        condition=short_name(first_text(o, "itemCondition") or "") or None,
    )


def node_gtin(node: dict[str, Any]) -> str | None:
    for p in ("gtin13", "gtin", "gtin14", "gtin12", "gtin8", "isbn", "ean"):
        t = first_text(node, p)
        if t:
            digits = re.sub(r"\D", "", t)
            if 8 <= len(digits) <= 14:
                return digits
    return None


def pick_offer(offers: list[Offer], page_url: str) -> Offer | None:
    for o in offers:
        if o.price is not None and o.price <= 0:
            o.price = None  # 0 means "price on request" / not shown
    priced = [o for o in offers if o.price is not None]
    if not priced:
        return offers[0] if offers else None
    page = norm_page_url(page_url)
    query = urlsplit(page_url).query
    for o in priced:
        if o.url and (norm_page_url(o.url) == page and urlsplit(o.url).query == query and query):
            return o
        if o.sku and query and o.sku in query:
            return o
    available = [o for o in priced if o.availability in (Availability.in_stock, None)] or priced
    if len({(o.sku, o.url, id(o.item) if o.item else None) for o in available}) == 1:
        # several offers for the same item (sale price next to a list price, several sellers):
        # the buyer pays the lowest one
        return min(available, key=lambda o: o.price or 0.0)
    return available[0]
