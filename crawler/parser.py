"""Product extraction from one HTML page (usable without a crawl).

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
   label/value pairs ("SKU: ...", "Brand: ..."), add-to-cart buttons and
   out-of-stock wording.

Prices and currencies are read with ``price-parser`` ("349,95", "$1,299.00",
"15.99 EUR"); currencies are returned as ISO 4217 codes (a bare "$" resolves
by the shop's country domain, USD otherwise).
"""

from __future__ import annotations

import html as html_lib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

from lxml import etree
from lxml.html import HtmlElement

from crawler.items import Availability, ProductItem, Variant

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# small text helpers
# --------------------------------------------------------------------------------------

_WS = re.compile(r"\s+")
_SCHEMA_PREFIXES = (
    "http://schema.org/",
    "https://schema.org/",
    "http://www.schema.org/",
    "https://www.schema.org/",
    "http://data-vocabulary.org/",
    "https://data-vocabulary.org/",
    "schema:",
)
#: schema.org types treated as "a product" besides anything with ``offers``.
PRODUCT_TYPES = frozenset(
    {"Product", "ProductGroup", "ProductModel", "IndividualProduct", "SomeProducts", "Vehicle", "Car"}
)
#: Properties whose nested products are other products, not the page's one.
_RELATED_PROPS = frozenset(
    {
        "isRelatedTo",
        "isSimilarTo",
        "isAccessoryOrSparePartFor",
        "isConsumableFor",
        "related_products",
        "relatedProducts",
        "isVariantOf",
        "hasVariant",
        "itemListElement",
        "review",
        "reviews",
        "mentions",
        "offers",
        "isPartOf",
    }
)


def clean_text(value: Any) -> str | None:
    """Unescape HTML entities, collapse whitespace, strip; None for empty/non-text."""
    if value is None or isinstance(value, dict | list | bool):
        return None
    s = html_lib.unescape(str(value))
    if "<" in s and ">" in s:
        s = _strip_tags(s)
    s = _WS.sub(" ", s).strip()
    return s or None


def _strip_tags(s: str) -> str:
    from w3lib.html import remove_tags

    return html_lib.unescape(remove_tags(s))


def short_name(iri: str) -> str:
    """``'http://schema.org/InStock'`` -> ``'InStock'`` (other strings unchanged but stripped)."""
    s = str(iri).strip()
    for p in _SCHEMA_PREFIXES:
        if s.startswith(p):
            return s[len(p) :]
    return s


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    if isinstance(v, list | tuple):
        return [x for x in v if x is not None]
    return [v]


# --------------------------------------------------------------------------------------
# normalised schema.org nodes
# --------------------------------------------------------------------------------------
# A node is a dict: "@type" -> list[str] of short type names, "@syntax" -> str,
# every other key a short property name -> list of values (str or node dicts).


def _types(node: dict[str, Any]) -> list[str]:
    return node.get("@type", [])


def _is_product(node: dict[str, Any]) -> bool:
    ts = _types(node)
    if any(t in PRODUCT_TYPES or t.endswith("Product") for t in ts):
        return True
    # A thing with an offer and a name (Book, Car, Event tickets...) sells something.
    return bool(node.get("offers")) and bool(node.get("name")) and "Offer" not in ts


def _first_node(node: dict[str, Any], prop: str) -> dict[str, Any] | None:
    for v in node.get(prop, []):
        if isinstance(v, dict):
            return v
    return None


def _first_text(node: dict[str, Any] | None, *props: str) -> str | None:
    """First non-empty text value of the given properties (a node's name/@value counts)."""
    if not node:
        return None
    for prop in props:
        for v in node.get(prop, []):
            t = _node_text(v)
            if t:
                return t
    return None


def _node_text(v: Any) -> str | None:
    if isinstance(v, dict):
        for k in ("name", "@value", "value", "title"):
            for x in _as_list(v.get(k)):
                t = _node_text(x)
                if t:
                    return t
        return None
    return clean_text(v)


def _norm_jsonld(obj: Any, syntax: str, ids: dict[str, dict[str, Any]]) -> Any:
    """Normalise one JSON-LD value into node form, registering nodes with an ``@id``."""
    if isinstance(obj, list):
        return [_norm_jsonld(x, syntax, ids) for x in obj]
    if not isinstance(obj, dict):
        return obj
    if "@value" in obj:
        return obj["@value"]
    node: dict[str, Any] = {"@type": [short_name(t) for t in _as_list(obj.get("@type"))], "@syntax": syntax}
    for k, v in obj.items():
        if k in ("@type", "@context"):
            continue
        if k == "@id":
            node["@id"] = v
            continue
        node[short_name(k)] = [x for x in _as_list(_norm_jsonld(v, syntax, ids)) if x is not None]
    if isinstance(node.get("@id"), str) and len(node) > 3:
        ids.setdefault(node["@id"], node)
    return node


def _resolve_refs(value: Any, ids: dict[str, dict[str, Any]], seen: frozenset[int] = frozenset()) -> Any:
    """Replace ``{"@id": x}`` stubs by the node registered under x (cycle-safe, in place)."""
    if isinstance(value, list):
        return [_resolve_refs(v, ids, seen) for v in value]
    if not isinstance(value, dict):
        return value
    if id(value) in seen:
        return value
    ref = value.get("@id")
    if isinstance(ref, str) and len(value) <= 3 and ref in ids and ids[ref] is not value:
        return _resolve_refs(ids[ref], ids, seen)
    seen = seen | {id(value)}
    for k, v in list(value.items()):
        if not k.startswith("@"):
            value[k] = _resolve_refs(v, ids, seen)
    return value


def _flatten_graph(items: Iterable[Any]) -> Iterator[Any]:
    for it in items:
        if isinstance(it, list):
            yield from _flatten_graph(it)
        elif isinstance(it, dict) and "@graph" in it:
            yield from _flatten_graph(_as_list(it["@graph"]))
            rest = {k: v for k, v in it.items() if k not in ("@graph", "@context")}
            if any(not k.startswith("@") for k in rest):
                yield rest
        else:
            yield it


def _norm_microdata(item: Any) -> Any:
    if isinstance(item, list):
        return [_norm_microdata(x) for x in item]
    if not isinstance(item, dict) or "properties" not in item:
        return item
    node: dict[str, Any] = {
        "@type": [short_name(t) for t in _as_list(item.get("type"))],
        "@syntax": "microdata",
    }
    if item.get("id"):
        node["@id"] = item["id"]
    for k, v in item["properties"].items():
        node[short_name(k)] = [x for x in _as_list(_norm_microdata(v)) if x is not None]
    return node


def _norm_rdfa(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """RDFa (expanded JSON-LD from pyRdfa) -> schema.org nodes; other vocabularies are dropped."""
    raw: dict[str, dict[str, Any]] = {}
    nodes: dict[str, dict[str, Any]] = {}
    for it in items:
        if not isinstance(it, dict) or "@id" not in it:
            continue
        raw[it["@id"]] = it
        types = [short_name(t) for t in _as_list(it.get("@type")) if short_name(t) != t]
        nodes[it["@id"]] = {"@type": types, "@syntax": "rdfa", "@id": it["@id"]}
    for iid, it in raw.items():
        node = nodes[iid]
        for k, vals in it.items():
            if k.startswith("@"):
                continue
            prop = short_name(k)
            if prop == k:
                continue  # not schema.org
            out = []
            for v in _as_list(vals):
                if isinstance(v, dict) and "@value" in v:
                    out.append(v["@value"])
                elif isinstance(v, dict) and "@id" in v:
                    out.append(nodes.get(v["@id"], v["@id"]))
                else:
                    out.append(v)
            node[prop] = out
    referenced = {
        id(v)
        for n in nodes.values()
        for vals in n.values()
        if isinstance(vals, list)
        for v in vals
        if isinstance(v, dict)
    }
    return [n for n in nodes.values() if id(n) not in referenced and (n["@type"] or len(n) > 3)]


# --------------------------------------------------------------------------------------
# currencies, prices, availability
# --------------------------------------------------------------------------------------

_SYMBOL_CURRENCY = {
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "£": "GBP",
    "gbp": "GBP",
    "¥": "JPY",
    "円": "JPY",
    "₹": "INR",
    "₽": "RUB",
    "руб": "RUB",
    "руб.": "RUB",
    "р.": "RUB",
    "zł": "PLN",
    "zl": "PLN",
    "kč": "CZK",
    "r$": "BRL",
    "nt$": "TWD",
    "us$": "USD",
    "usd": "USD",
    "c$": "CAD",
    "ca$": "CAD",
    "cad": "CAD",
    "a$": "AUD",
    "au$": "AUD",
    "hk$": "HKD",
    "s$": "SGD",
    "nz$": "NZD",
    "mx$": "MXN",
    "₩": "KRW",
    "원": "KRW",
    "₺": "TRY",
    "tl": "TRY",
    "₴": "UAH",
    "грн": "UAH",
    "₪": "ILS",
    "lei": "RON",
    "₸": "KZT",
    "тг": "KZT",
    "тг.": "KZT",
    "chf": "CHF",
    "fr.": "CHF",
    "rm": "MYR",
    "฿": "THB",
    "₫": "VND",
    "₱": "PHP",
    "ft": "HUF",
    "kn": "HRK",
    "лв": "BGN",
    "lv": "BGN",
    "元": "CNY",
    "rmb": "CNY",
    "₦": "NGN",
    "د.إ": "AED",
    "ر.س": "SAR",
}
#: Country-code TLD -> currency of a bare "$" / "Rs" / "kr" on that shop.
_TLD_DOLLAR = {
    "ca": "CAD",
    "au": "AUD",
    "nz": "NZD",
    "sg": "SGD",
    "hk": "HKD",
    "tw": "TWD",
    "mx": "MXN",
    "cl": "CLP",
    "ar": "ARS",
    "co": "COP",
    "br": "BRL",
    "uy": "UYU",
}
_TLD_RUPEE = {"in": "INR", "pk": "PKR", "lk": "LKR", "np": "NPR"}
_TLD_KRONA = {"se": "SEK", "dk": "DKK", "no": "NOK", "is": "ISK"}
_ISO_RE = re.compile(r"^[A-Za-z]{3}$")


def _tld(url: str | None) -> str:
    host = urlsplit(url or "").hostname or ""
    return host.rsplit(".", 1)[-1].lower() if "." in host else ""


def currency_code(value: str | None, url: str | None = None) -> str | None:
    """ISO 4217 code for a currency code or symbol (``'€'`` -> ``'EUR'``, ``'usd'`` -> ``'USD'``).

    A bare ``$``, ``Rs`` or ``kr`` resolves by the country domain of ``url``
    (``.ca`` -> CAD, ``.pk`` -> PKR, ``.se`` -> SEK), else USD / INR / SEK.
    Returns None when the value is not recognised.
    """
    if not value:
        return None
    v = str(value).strip().rstrip("~").strip()
    if not v:
        return None
    low = v.lower()
    if low in _SYMBOL_CURRENCY:
        return _SYMBOL_CURRENCY[low]
    if low == "$":
        return _TLD_DOLLAR.get(_tld(url), "USD")
    if low in ("rs", "rs.", "₨"):
        return _TLD_RUPEE.get(_tld(url), "INR")
    if low in ("kr", "kr."):
        return _TLD_KRONA.get(_tld(url), "SEK")
    if _ISO_RE.match(v):
        return v.upper()
    return None


def parse_price(value: Any, currency_hint: str | None = None) -> tuple[float | None, str | None]:
    """``(amount, currency symbol or code as written)`` from a number or a price text.

    JSON numbers are taken as they are; text goes through price-parser, which
    handles decimal and thousands separators ("349,95", "$1,299.00", "1.299,00 €").
    """
    if value is None or isinstance(value, bool):
        return None, None
    if isinstance(value, int | float | Decimal):
        amount = float(value)
        return (amount if amount >= 0 else None), None
    from price_parser import Price

    text = clean_text(value)
    if not text:
        return None, None
    if re.fullmatch(r"\d+(\.\d{1,2})?", text):  # the schema.org form: dot decimal, no grouping
        return float(text), None
    p = Price.fromstring(text, currency_hint=currency_hint)
    return (p.amount_float if p.amount is not None and p.amount >= 0 else None), p.currency


_AVAILABILITY = {
    Availability.in_stock: (
        "instock",
        "in stock",
        "in_stock",
        "available",
        "onlineonly",
        "instoreonly",
        "limitedavailability",
        "true",
        "yes",
        "1",
    ),
    Availability.out_of_stock: (
        "outofstock",
        "out of stock",
        "out_of_stock",
        "soldout",
        "sold out",
        "discontinued",
        "unavailable",
        "oos",
        "false",
        "no",
        "0",
    ),
    Availability.preorder: ("preorder", "pre-order", "pre order", "presale", "preorder_"),
    Availability.backorder: ("backorder", "back order", "back-order"),
}
_AVAILABILITY_LOOKUP = {k: a for a, keys in _AVAILABILITY.items() for k in keys}


def parse_availability(value: Any) -> Availability | None:
    """Map a schema.org ItemAvailability IRI or name, or an OpenGraph value, to ``Availability``."""
    t = _node_text(value) if isinstance(value, dict) else clean_text(value)
    if not t:
        return None
    key = short_name(t).strip().lower()
    key = key.rsplit("/", 1)[-1]
    if key in _AVAILABILITY_LOOKUP:
        return _AVAILABILITY_LOOKUP[key]
    squashed = re.sub(r"[^a-z]", "", key)
    for k, a in _AVAILABILITY_LOOKUP.items():
        if re.sub(r"[^a-z]", "", k) == squashed and squashed:
            return a
    return None


# --------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------

_SIZE_IN_PATH = re.compile(r"[_\-/.](\d{2,4})x(\d{2,4})(?=[_\-/.@]|$)", re.I)
_SIZE_PARAMS = ("w", "width", "wid", "sw", "imwidth", "im_w", "size", "resize", "maxwidth", "fit")
_SIZE_TOKEN = re.compile(r"(?:^|[/,_])w_(\d{2,4})(?=[,/_]|$)")


def image_size_hint(url: str) -> int | None:
    """Pixel width a CDN URL asks for (``_800x800``, ``?w=800``, ``w_800``), or None."""
    parts = urlsplit(url)
    found = list(_SIZE_IN_PATH.finditer(parts.path))
    if found:
        return int(found[-1].group(1))
    for k, v in parse_qsl(parts.query):
        if k.lower() in _SIZE_PARAMS:
            d = re.match(r"(\d{2,4})", v)
            if d:
                return int(d.group(1))
    t = _SIZE_TOKEN.search(parts.path)
    return int(t.group(1)) if t else None


def _image_key(url: str) -> str:
    """URL with size hints removed: two renditions of one picture share the key."""
    parts = urlsplit(url)
    path = _SIZE_IN_PATH.sub("", parts.path)
    path = _SIZE_TOKEN.sub("", path)
    query = "&".join(f"{k}={v}" for k, v in parse_qsl(parts.query) if k.lower() not in _SIZE_PARAMS)
    return urlunsplit((parts.scheme, parts.netloc.lower(), path, query, ""))


def order_images(candidates: Iterable[tuple[str, int | None]]) -> list[str]:
    """Deduplicate ``(absolute url, declared width or None)`` pairs and order them.

    Renditions of the same picture (same URL up to size hints) collapse to the
    largest one; then pictures whose size is known come largest first, and
    pictures of unknown size follow in page order.
    """
    best: dict[str, tuple[str, int, int]] = {}
    for pos, (url, width) in enumerate(candidates):
        if not url:
            continue
        w = width or image_size_hint(url) or 0
        key = _image_key(url)
        if key not in best:
            best[key] = (url, w, pos)
        elif w > best[key][1]:
            best[key] = (url, w, best[key][2])
    ranked = sorted(best.values(), key=lambda t: (-t[1], t[2]))
    return [u for u, _, _ in ranked]


def _abs_url(base: str, value: Any) -> str | None:
    t = clean_text(value) if not isinstance(value, dict) else None
    if not t or t.startswith(("data:", "javascript:")):
        return None
    try:
        u = urljoin(base, t)
    except ValueError:
        return None
    return u if urlsplit(u).scheme in ("http", "https", "file") else None


def _node_images(node: dict[str, Any], base: str) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    for v in node.get("image", []) + node.get("images", []):
        if isinstance(v, dict):
            url = _first_text(v, "contentUrl", "url", "@id")
            width = _int(_first_text(v, "width"))
            u = _abs_url(base, url)
            if u:
                out.append((u, width))
        else:
            u = _abs_url(base, v)
            if u:
                out.append((u, None))
    return out


def _int(v: str | None) -> int | None:
    if not v:
        return None
    m = re.match(r"\s*(\d+)", v)
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------------------
# the document
# --------------------------------------------------------------------------------------


@dataclass
class Document:
    """A parsed page: lxml tree, page URL, base URL for relative links."""

    tree: HtmlElement
    url: str
    base_url: str

    def xpath(self, query: str) -> list[Any]:
        try:
            return self.tree.xpath(query)
        except etree.XPathError:
            logger.debug("bad xpath %r", query)
            return []


def load_document(html: str | bytes, url: str) -> Document:
    """Parse HTML (text, or bytes in any declared/detected encoding) into a ``Document``.

    Raises ValueError when the input is empty or not parseable as HTML.
    """
    from extruct.utils import parse_xmldom_html
    from w3lib.encoding import html_to_unicode

    if isinstance(html, bytes):
        _, html = html_to_unicode(None, html)
    if not html or not html.strip():
        raise ValueError(f"{url}: empty page")
    html = html.replace("\x00", "")
    try:
        tree = parse_xmldom_html(html, encoding="utf-8")
    except (etree.ParserError, ValueError) as exc:
        raise ValueError(f"{url}: not parseable as HTML ({exc})") from exc
    if tree is None:
        raise ValueError(f"{url}: not parseable as HTML")
    base = url
    for href in tree.xpath("//base/@href")[:1]:
        base = urljoin(url, href.strip())
    return Document(tree=tree, url=url, base_url=base)


@dataclass
class StructuredData:
    """Everything machine-readable on a page, normalised."""

    nodes: list[dict[str, Any]] = field(default_factory=list)  # top-level schema.org nodes
    og: list[tuple[str, str]] = field(default_factory=list)  # OpenGraph (property, content) pairs
    errors: list[str] = field(default_factory=list)

    def og_first(self, *props: str) -> str | None:
        for p in props:
            for k, v in self.og:
                if k == p and clean_text(v):
                    return clean_text(v)
        return None

    def og_all(self, prop: str) -> list[str]:
        return [v for k, v in self.og if k == prop and clean_text(v)]


def extract_structured(
    doc: Document, syntaxes: tuple[str, ...] = ("json-ld", "microdata", "rdfa")
) -> StructuredData:
    """Run extruct's JSON-LD, microdata, RDFa and OpenGraph extractors on ``doc``.

    A syntax that fails (broken JSON, odd markup) is recorded in ``errors`` and
    skipped; the others still count.
    """
    from extruct.jsonld import JsonLdExtractor
    from extruct.opengraph import OpenGraphExtractor
    from extruct.rdfa import RDFaExtractor
    from extruct.w3cmicrodata import MicrodataExtractor

    out = StructuredData()
    ids: dict[str, dict[str, Any]] = {}
    if "json-ld" in syntaxes:
        try:
            raw = list(JsonLdExtractor().extract_items(doc.tree, base_url=doc.base_url))
        except Exception as exc:  # extruct raises whatever json/jstyleson raise
            out.errors.append(f"json-ld: {exc}")
            raw = _jsonld_lenient(doc)
        nodes = [_norm_jsonld(it, "json-ld", ids) for it in _flatten_graph(raw)]
        out.nodes.extend(n for n in nodes if isinstance(n, dict))
    if "microdata" in syntaxes:
        try:
            raw = list(MicrodataExtractor().extract_items(doc.tree, base_url=doc.base_url))
            out.nodes.extend(n for n in (_norm_microdata(it) for it in raw) if isinstance(n, dict))
        except Exception as exc:
            out.errors.append(f"microdata: {exc}")
    if "rdfa" in syntaxes and doc.xpath("//*[@typeof or @vocab][1]"):
        # pyRdfa is slow; without typeof/vocab there is no typed RDFa node to read.
        try:
            raw = list(RDFaExtractor().extract_items(doc.tree, base_url=doc.base_url))
            out.nodes.extend(_norm_rdfa(raw))
        except Exception as exc:
            out.errors.append(f"rdfa: {exc}")
    try:
        for item in OpenGraphExtractor().extract_items(doc.tree, base_url=doc.base_url):
            out.og.extend((str(k), str(v)) for k, v in item.get("properties", []))
    except Exception as exc:
        out.errors.append(f"opengraph: {exc}")
    if not out.og:
        # OpenGraph tags written with name= instead of property= (common) are still OpenGraph.
        for m in doc.xpath("//meta[starts-with(@name,'og:') or starts-with(@name,'product:')][@content]"):
            out.og.append((m.get("name"), m.get("content")))
    out.nodes = [_resolve_refs(n, ids) for n in out.nodes]
    return out


def _jsonld_lenient(doc: Document) -> list[Any]:
    """Parse JSON-LD scripts one by one so one broken script does not hide the others."""
    items: list[Any] = []
    for script in doc.xpath('//script[@type="application/ld+json"]/text()'):
        text = script.strip().removeprefix("<!--").removesuffix("-->").strip()
        try:
            items.append(json.loads(text, strict=False))
        except ValueError:
            continue
    return items


# --------------------------------------------------------------------------------------
# finding the page's product
# --------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    node: dict[str, Any]
    depth: int
    related: bool
    order: int
    listed: bool = False  # inside an ItemList (a category page's products)


def _walk_products(nodes: list[dict[str, Any]]) -> list[_Candidate]:
    found: list[_Candidate] = []
    seen: set[int] = set()

    def visit(v: Any, depth: int, related: bool, listed: bool) -> None:
        if isinstance(v, list):
            for x in v:
                visit(x, depth, related, listed)
            return
        if not isinstance(v, dict) or id(v) in seen:
            return
        seen.add(id(v))
        if _is_product(v):
            found.append(_Candidate(v, depth, related, len(found), listed))
            if "ProductGroup" in _types(v):
                return  # its hasVariant products are variants, not candidates
        for k, val in v.items():
            if k.startswith("@"):
                continue
            visit(val, depth + 1, related or k in _RELATED_PROPS, listed or k == "itemListElement")

    for n in nodes:
        visit(n, 0, False, False)
    return found


def _norm_page_url(u: str | None) -> str:
    if not u:
        return ""
    p = urlsplit(u)
    return (p.hostname or "").removeprefix("www.") + p.path.rstrip("/")


_SYNTAX_RANK = {"json-ld": 0.3, "microdata": 0.2, "rdfa": 0.1}


def _score(c: _Candidate, page_urls: set[str], base: str) -> float:
    n = c.node
    s = 0.0
    url = _first_text(n, "url", "@id")
    if url and _norm_page_url(_abs_url(base, url)) in page_urls:
        s += 4
    offers = _offers(n, base)
    if any(o.price is not None for o in offers):
        s += 2
    s += bool(_first_text(n, "name")) + bool(_first_text(n, "sku", "productID", "mpn")) + bool(n.get("image"))
    if c.related:
        s -= 5
    s -= 0.5 * c.depth
    s += _SYNTAX_RANK.get(n.get("@syntax", ""), 0)
    return s


def _same_product(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for props in (("sku",), ("productID",), ("mpn",), ("gtin13", "gtin", "gtin14", "gtin12", "gtin8")):
        x, y = _first_text(a, *props), _first_text(b, *props)
        if x and y:
            return x.lower() == y.lower()
    x, y = _first_text(a, "name"), _first_text(b, "name")
    if x and y:
        return x.lower() == y.lower()
    return False


# --------------------------------------------------------------------------------------
# offers
# --------------------------------------------------------------------------------------


@dataclass
class _Offer:
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


def _offers(node: dict[str, Any], base: str) -> list[_Offer]:
    """Flatten ``offers`` (Offer, list, AggregateOffer with or without nested offers)."""
    out: list[_Offer] = []
    for o in node.get("offers", []):
        if not isinstance(o, dict):
            amount, cur = parse_price(o)
            if amount is not None:
                out.append(_Offer(price=amount, currency=currency_code(cur, base)))
            continue
        nested = [x for x in o.get("offers", []) if isinstance(x, dict)]
        if "AggregateOffer" in _types(o) and nested:
            sub = _offers({"offers": nested}, base)
            cur = _first_text(o, "priceCurrency")
            for s in sub:
                s.currency = s.currency or currency_code(cur, base)
            out.extend(sub)
            if all(s.price is None for s in sub):
                out.append(_one_offer(o, base))
            continue
        out.append(_one_offer(o, base))
    return out


def _one_offer(o: dict[str, Any], base: str) -> _Offer:
    cur_text = _first_text(o, "priceCurrency")
    price_text: Any = None
    for v in o.get("price", []):
        if _node_text(v) is not None or isinstance(v, int | float):
            price_text = v if not isinstance(v, dict) else _node_text(v)
            break
    regular = None
    for spec in o.get("priceSpecification", []):
        if not isinstance(spec, dict):
            continue
        ptype = short_name(_first_text(spec, "priceType") or "")
        sp = next((v for v in spec.get("price", []) if v is not None), None)
        amount, _ = parse_price(sp)
        if ptype in _STRIKE_TYPES:
            regular = amount
            continue
        if price_text is None and sp is not None:
            price_text = sp
        cur_text = cur_text or _first_text(spec, "priceCurrency")
    if price_text is None:
        price_text = next((v for v in o.get("lowPrice", []) if v is not None), None)
    amount, symbol = parse_price(price_text)
    item = _first_node(o, "itemOffered")
    return _Offer(
        price=amount,
        currency=currency_code(cur_text, base) or currency_code(symbol, base),
        regular_price=regular,
        availability=parse_availability(next(iter(o.get("availability", [])), None)),
        sku=_first_text(o, "sku"),
        url=_abs_url(base, _first_text(o, "url")),
        item=item if item and _is_product(item) else None,
        gtin=_gtin(o),
        condition=short_name(_first_text(o, "itemCondition") or "") or None,
    )


def _gtin(node: dict[str, Any]) -> str | None:
    for p in ("gtin13", "gtin", "gtin14", "gtin12", "gtin8", "isbn", "ean"):
        t = _first_text(node, p)
        if t:
            digits = re.sub(r"\D", "", t)
            if 8 <= len(digits) <= 14:
                return digits
    return None


def _pick_offer(offers: list[_Offer], page_url: str) -> _Offer | None:
    for o in offers:
        if o.price is not None and o.price <= 0:
            o.price = None  # 0 means "price on request" / not shown
    priced = [o for o in offers if o.price is not None]
    if not priced:
        return offers[0] if offers else None
    page = _norm_page_url(page_url)
    query = urlsplit(page_url).query
    for o in priced:
        if o.url and (_norm_page_url(o.url) == page and urlsplit(o.url).query == query and query):
            return o
        if o.sku and query and o.sku in query:
            return o
    available = [o for o in priced if o.availability in (Availability.in_stock, None)] or priced
    if len({(o.sku, o.url, id(o.item) if o.item else None) for o in available}) == 1:
        # several offers for the same item (sale price next to a list price, several sellers):
        # the buyer pays the lowest one
        return min(available, key=lambda o: o.price or 0.0)
    return available[0]


# --------------------------------------------------------------------------------------
# building the item
# --------------------------------------------------------------------------------------


_BRAND_PREFIX = re.compile(r"^.*\b(?:brand|marke|marque|marca|merk|marka|бренд)\s*:\s*", re.I)


def _clean_brand(t: str | None) -> str | None:
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
            t = _clean_brand(_node_text(v))
            if t:
                return t
    return None


def _sku(node: dict[str, Any]) -> str | None:
    t = _first_text(node, "sku")
    if t:
        return t
    pid = _first_text(node, "productID")
    if pid:
        return re.sub(r"^(sku|isbn|mpn|gtin\d*|id):", "", pid, flags=re.I).strip() or None
    return None


def _gender(node: dict[str, Any]) -> str | None:
    aud = _first_node(node, "audience")
    g = _first_text(aud, "suggestedGender") if aud else None
    g = g or _first_text(node, "gender", "suggestedGender")
    return normalise_gender(g)


def normalise_gender(g: str | None) -> str | None:
    """'Male'/'men'/'Herren' -> 'male'; 'Female'/'women'/'Damen' -> 'female'; unisex; else None."""
    if not g:
        return None
    k = short_name(g).lower()
    if k in ("male", "men", "man", "mens", "men's", "herren", "homme", "hombre", "uomo"):
        return "male"
    if k in ("female", "women", "woman", "womens", "women's", "damen", "femme", "mujer", "donna"):
        return "female"
    if k in ("unisex", "all"):
        return "unisex"
    return None


def _variant_from(node: dict[str, Any], base: str, page_url: str) -> Variant:
    offers = _offers(node, base)
    o = _pick_offer(offers, page_url)
    return Variant(
        sku=_sku(node) or (o.sku if o else None),
        name=_first_text(node, "name"),
        color=_first_text(node, "color"),
        size=_first_text(node, "size"),
        price=o.price if o else None,
        currency=o.currency if o else None,
        availability=o.availability if o else None,
        gtin=_gtin(node) or (o.gtin if o else None),
        url=_abs_url(base, _first_text(node, "url")) or (o.url if o else None),
        images=[u for u, _ in _node_images(node, base)],
    )


def _set(item: ProductItem, name: str, value: Any, source: str) -> None:
    """Fill ``item.<name>`` when it is still empty, remembering the source."""
    if value in (None, "", [], {}):
        return
    if getattr(item, name) in (None, "", [], {}):
        setattr(item, name, value)
        item.sources[name] = source


def _fill_from_node(item: ProductItem, node: dict[str, Any], doc: Document) -> list[tuple[str, int | None]]:
    """Fill item fields from one schema.org product node; returns its image candidates."""
    base = doc.base_url
    src = node.get("@syntax", "json-ld")
    _set(item, "name", _first_text(node, "name"), src)
    _set(item, "description", _first_text(node, "description"), src)
    _set(item, "sku", _sku(node), src)
    _set(item, "mpn", _first_text(node, "mpn"), src)
    _set(item, "gtin", _gtin(node), src)
    _set(item, "brand", _brand(node), src)
    _set(item, "color", _first_text(node, "color"), src)
    _set(item, "material", _first_text(node, "material"), src)
    _set(item, "gender", _gender(node), src)
    group = _first_text(node, "productGroupID", "inProductGroupWithID")
    parent = _first_node(node, "isVariantOf")
    if parent:
        group = group or _first_text(parent, "productGroupID", "sku")
        _set(item, "brand", _brand(parent), src)
    if "ProductGroup" in _types(node):
        group = group or _sku(node)
    _set(item, "product_group_id", group, src)
    cat = node.get("category", [])
    if cat:
        path = _category_path(cat)
        _set(item, "category_path", path, src)
    _set(item, "sizes", [s for s in (_node_text(v) for v in node.get("size", [])) if s], src)

    images = _node_images(node, base)
    # variants: ProductGroup.hasVariant, or offers each naming their own item
    variant_nodes = [v for v in node.get("hasVariant", []) if isinstance(v, dict)]
    offers = _offers(node, base)
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
    offer = _pick_offer(offers, doc.url)
    if offer is not None and offer.price is not None:
        _set(item, "price", offer.price, src)
        _set(item, "currency", offer.currency, src)
        _set(item, "regular_price", offer.regular_price, src)
        _set(item, "availability", offer.availability, src)
        _set(item, "condition", offer.condition, src)
        if not item.sku and offer.sku:
            _set(item, "sku", offer.sku, src)
        _set(item, "gtin", offer.gtin, src)
    elif variants:
        v = _matching_variant(variants, doc.url)
        _set(item, "price", v.price, src)
        _set(item, "currency", v.currency, src)
        _set(item, "availability", v.availability, src)
    if offer is not None:
        _set(item, "currency", offer.currency, src)
        _set(item, "availability", offer.availability, src)
    if item.availability is None and variants:
        avail = {v.availability for v in variants if v.availability}
        if Availability.in_stock in avail:
            _set(item, "availability", Availability.in_stock, src)
        elif avail:
            _set(item, "availability", sorted(avail)[0], src)
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


def _category_path(values: list[Any]) -> list[str]:
    texts = [t for t in (_node_text(v) for v in values) if t]
    if len(texts) == 1:
        parts = re.split(r"\s*(?:>|/|›|»|\|)\s*", texts[0])
        return [p for p in parts if p]
    return texts


def _breadcrumbs(nodes: list[dict[str, Any]], base: str) -> list[str]:
    """Category path from the first BreadcrumbList (or data-vocabulary Breadcrumb chain)."""
    lists = []

    def visit(v: Any) -> None:
        if isinstance(v, list):
            for x in v:
                visit(x)
        elif isinstance(v, dict):
            if "BreadcrumbList" in _types(v):
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
            pos = _first_text(el, "position")
            item = _first_node(el, "item")
            name = _first_text(el, "name") or (_first_text(item, "name") if item else None)
            url = _first_text(item, "@id", "url") if item else _first_text(el, "item", "url")
            if name:
                try:
                    p = float(pos) if pos else float(i)
                except ValueError:
                    p = float(i)
                crumbs.append((p, name, _abs_url(base, url) if url else None))
        crumbs.sort(key=lambda c: c[0])
        path = [name for _, name, url in crumbs if not (url and urlsplit(url).path in ("", "/"))]
        if path:
            return path
    # data-vocabulary.org Breadcrumb: separate top-level nodes with title/url
    old = [n for n in nodes if "Breadcrumb" in _types(n)]
    path = []
    for n in old:
        t = _first_text(n, "title", "name")
        u = _first_text(n, "url")
        if t and not (u and urlsplit(_abs_url(base, u) or "").path in ("", "/")):
            path.append(t)
    return path


def _drop_self_crumb(path: list[str], name: str | None) -> list[str]:
    if path and name and path[-1].strip().lower() == name.strip().lower():
        return path[:-1]
    return path


# --------------------------------------------------------------------------------------
# OpenGraph / meta / loose itemprops
# --------------------------------------------------------------------------------------


def _fill_from_meta(item: ProductItem, sd: StructuredData, doc: Document) -> list[tuple[str, int | None]]:
    og = sd.og_first
    _set(item, "name", og("og:title"), "opengraph")
    _set(item, "description", og("og:description"), "opengraph")
    for p in ("product:price:amount", "og:price:amount", "product:sale_price:amount"):
        amount, sym = parse_price(og(p))
        if amount is not None:
            cur = og(p.replace("amount", "currency"))
            _set(item, "price", amount, "opengraph")
            _set(item, "currency", currency_code(cur, doc.url) or currency_code(sym, doc.url), "opengraph")
            break
    _set(item, "availability", parse_availability(og("product:availability", "og:availability")), "opengraph")
    _set(item, "brand", _clean_brand(og("product:brand", "og:brand")), "opengraph")
    _set(item, "sku", og("product:retailer_item_id", "product:sku"), "opengraph")
    _set(item, "gtin", og("product:ean", "product:gtin", "product:upc", "product:isbn"), "opengraph")
    _set(item, "mpn", og("product:mfr_part_no"), "opengraph")
    _set(item, "color", og("product:color"), "opengraph")
    _set(item, "gender", normalise_gender(og("product:gender", "product:target_gender")), "opengraph")
    _set(item, "condition", og("product:condition", "og:condition"), "opengraph")
    cat = og("product:category")
    if cat:
        _set(item, "category_path", _category_path([cat]), "opengraph")

    images: list[tuple[str, int | None]] = []
    width = None
    pending: list[tuple[str, int | None]] = []
    for k, v in sd.og:
        if k in ("og:image", "og:image:url", "og:image:secure_url"):
            u = _abs_url(doc.base_url, v)
            if u and not any(u == p[0] for p in pending):
                pending.append((u, None))
        elif k == "og:image:width" and pending:
            width = _int(v)
            pending[-1] = (pending[-1][0], width)
    images.extend(pending)
    for q in (
        "//meta[@name='twitter:image' or @property='twitter:image' or @name='twitter:image:src']/@content",
        "//link[@rel='image_src']/@href",
    ):
        for v in doc.xpath(q):
            u = _abs_url(doc.base_url, v)
            if u:
                images.append((u, None))

    # plain meta tags and loose itemprops (outside any itemscope)
    meta_desc = doc.xpath("//meta[@name='description']/@content")
    _set(item, "description", clean_text(meta_desc[0]) if meta_desc else None, "meta")
    for prop in ("sku", "brand", "mpn", "name"):
        vals = _itemprop_values(doc, prop)
        value = vals[0] if vals else None
        _set(item, prop, _clean_brand(value) if prop == "brand" else value, "meta")
    if item.price is None:
        for v in _itemprop_values(doc, "price") + _itemprop_values(doc, "lowPrice"):
            amount, sym = parse_price(v)
            if amount is not None and amount > 0:
                cur = next(iter(_itemprop_values(doc, "priceCurrency")), None)
                _set(item, "price", amount, "meta")
                _set(item, "currency", currency_code(cur, doc.url) or currency_code(sym, doc.url), "meta")
                break
    if item.currency is None:
        cur = next(iter(_itemprop_values(doc, "priceCurrency")), None)
        _set(item, "currency", currency_code(cur, doc.url), "meta")
    for v in _itemprop_values(doc, "availability"):
        _set(item, "availability", parse_availability(v), "meta")
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


def _canonical(doc: Document, sd: StructuredData) -> str | None:
    for v in doc.xpath("//link[@rel='canonical']/@href"):
        u = _abs_url(doc.base_url, v)
        if u:
            return u
    og_url = sd.og_first("og:url")
    return _abs_url(doc.base_url, og_url) if og_url else None


# --------------------------------------------------------------------------------------
# heuristics for pages without (complete) structured data
# --------------------------------------------------------------------------------------

_PRICE_ATTR = re.compile(r"price|preis|prix|prezzo|precio|preco|cena|hind|цена|價|价", re.I)
_NOT_PRICE = re.compile(
    r"old|was|strike|regular|list|compare|save|saving|discount|unit|per[-_]|shipping|delivery|instal|"
    r"month|crossed|before|original|rrp|msrp|uvp|former|tax|vat|range|filter|slider|label|title|total|"
    r"bundle|points|coupon|voucher|min|max|from",
    re.I,
)
_NOISE_CONTAINER = re.compile(
    r"related|recommend|similar|carousel|upsell|cross-?sell|footer|header|nav|menu|cart|basket|minicart|"
    r"sponsored|also|accessor|bundle|frequently|recently|slider|breadcrumb",
    re.I,
)
_ADD_TO_CART = re.compile(
    r"add[\s_-]*to[\s_-]*(cart|bag|basket|trolley)|buy[\s_-]*(it[\s_-]*)?now|in[\s-]*den[\s-]*warenkorb|"
    r"ajouter[\s-]*au[\s-]*panier|aggiungi[\s-]*al[\s-]*carrello|añadir[\s-]*al[\s-]*carrito|"
    r"agregar[\s-]*al[\s-]*carro|adicionar[\s-]*ao[\s-]*carrinho|comprar|do[\s-]*koszyka|в[\s-]*корзину|"
    r"купить|sepete[\s-]*ekle|ostukorvi|v[\s-]*košarico|pievienot[\s-]*grozam|"
    r"ostoskoriin|lägg[\s-]*i[\s-]*varukorgen|læg[\s-]*i[\s-]*kurv|legg[\s-]*i[\s-]*handlekurv|"
    r"in[\s-]*winkelwagen|加入購物車|加入购物车|購買|カートに入れる|장바구니|구매하기|adaugă[\s-]*în[\s-]*coș|"
    r"kosárba|do[\s-]*košíku|הוספה[\s-]*לסל|הוסף[\s-]*לסל|place[\s-]*(a[\s-]*)?bid|snipcart-add-item",
    re.I,
)
_OUT_OF_STOCK = re.compile(
    r"out[\s-]*of[\s-]*stock|sold[\s-]*out|currently[\s-]*unavailable|no[\s-]*longer[\s-]*available|"
    r"ausverkauft|nicht[\s-]*(mehr[\s-]*)?verfügbar|derzeit[\s-]*nicht|épuisé|rupture[\s-]*de[\s-]*stock|"
    r"actuellement[\s-]*indisponible|esaurito|non[\s-]*disponibile|attualmente[\s-]*non[\s-]*disponibile|"
    r"agotado|sin[\s-]*stock|no[\s-]*disponible|esgotado|indisponível|niedostępny|wyprzedany|"
    r"нет[\s-]*в[\s-]*наличии|tükendi|slutsåld|udsolgt|utsolgt|uitverkocht|loppuunmyyty|nav[\s-]*pieejams|"
    r"ei[\s-]*ole[\s-]*saadaval|ni[\s-]*na[\s-]*zalogi",
    re.I,
)
_IN_STOCK = re.compile(
    r"\bin[\s-]*stock|\bavailable\b|auf[\s-]*lager|sofort[\s-]*lieferbar|en[\s-]*stock|disponible|"
    r"disponibilit[àa][\s-]*immediata|disponibile|disponível|dostępny|в[\s-]*наличии|na[\s-]*zalogi|"
    r"laos|pieejams|på[\s-]*lager|op[\s-]*voorraad|varastossa|dobavljivo",
    re.I,
)
#: Label/value pairs; earlier patterns win (an explicit "SKU" beats "Ref.").
_LABELS: dict[str, list[str]] = {
    "sku": [
        r"sku|asin|item\s*(?:#|no\.?|number|code)|art(?:ikel)?\.?\s*-?\s*(?:nr|nummer|no)\.?|artikelnummer|"
        r"product\s*(?:code|id|number|no\.?)|varenummer|varenr\.?|produktnummer|tootekood|šifra|"
        r"код\s*товара|артикул|kod\s*produktu|codice\s*articolo|código\s*(?:de\s*)?(?:producto|artículo)",
        r"réf(?:érence)?\.?|ref(?:erence)?\.?|código|codice|kod|код|item",
    ],
    "brand": [
        r"brand|marke|marque|marca|merk|marka|бренд|zīmols|znamka|品牌|ブランド|브랜드",
        r"manufacturer|hersteller|fabricant|fabricante|producent|производитель|tootja|proizvajalec|"
        r"ražotājs|gamintojas|valmistaja|tillverkare|produsent",
    ],
    "mpn": [r"mpn|model\s*(?:#|no\.?|number)|mfr\.?\s*part\s*(?:#|no\.?|number)|part\s*(?:#|no\.?|number)"],
    "availability": [
        r"availability|stock(?:\s*status)?|disponibilit\w*|verfügbarkeit|lieferbarkeit|disponibilidad|"
        r"razpoložljivost|наличие|dostępność|pieejamība|saadavus|dostupnost"
    ],
}
_LABEL_RES = {
    f: [re.compile(rf"^\s*(?:{p})\s*(?:[:：#]\s*(?P<value>\S.{{0,60}}?))?\s*[:：]?\s*$", re.I) for p in pats]
    for f, pats in _LABELS.items()
}
_ID_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/\-]{1,40}$")


def _text(el: Any) -> str:
    try:
        return _WS.sub(" ", el.text_content()).strip()
    except (AttributeError, ValueError):
        return ""


def _visible_text(el: HtmlElement) -> str:
    """Text of an element without its scripts and styles."""
    parts = el.xpath(".//text()[not(ancestor::script) and not(ancestor::style)]")
    return _WS.sub(" ", " ".join(parts)).strip()


def _in_noise(el: HtmlElement, stop: int = 12) -> bool:
    for anc in el.iterancestors():
        if stop == 0 or anc.tag in ("body", "main"):
            break
        stop -= 1
        if anc.tag in ("del", "s", "strike", "nav", "footer", "header", "aside"):
            return True
        cls = f"{anc.get('class') or ''} {anc.get('id') or ''}"
        if cls.strip() and _NOISE_CONTAINER.search(cls):
            return True
    return False


_RELATED_CONTAINER = re.compile(
    r"related|recommend|similar|carousel|upsell|cross-?sell|sponsored|also-", re.I
)


def _in_related(el: HtmlElement, stop: int = 10) -> bool:
    """Inside a related/recommended-products block."""
    for anc in el.iterancestors():
        if stop == 0 or anc.tag == "body":
            return False
        stop -= 1
        cls = f"{anc.get('class') or ''} {anc.get('id') or ''}"
        if cls.strip() and _RELATED_CONTAINER.search(cls):
            return True
    return False


def _heuristic_price(doc: Document) -> tuple[float | None, str | None]:
    """The best price-looking element (id/class mentions price) outside related-product blocks."""
    from price_parser import Price

    best: tuple[float, int, float, str | None] | None = None  # (score, -position, amount, symbol)
    for pos, el in enumerate(doc.xpath("//body//*[@id or @class or @data-price]")):
        if el.tag in ("script", "style", "option", "select", "input", "del", "s", "strike"):
            continue
        attrs = f"{el.get('id') or ''} {el.get('class') or ''}"
        if not _PRICE_ATTR.search(attrs) and el.get("data-price") is None:
            continue
        if _NOT_PRICE.search(attrs):
            continue
        text = _WS.sub(
            " ",
            " ".join(
                el.xpath(
                    ".//text()[not(ancestor::del) and not(ancestor::s) and not(ancestor::strike) "
                    "and not(ancestor::script)]"
                )
            ),
        ).strip()
        if not text or len(text) > 40:
            continue
        p = Price.fromstring(text)
        if p.amount is None or p.amount <= 0 or p.amount_float is None:
            continue
        score = 1.0
        if p.currency:
            score += 2
        if "price" in (el.get("id") or "").lower():
            score += 1
        if _in_noise(el):
            score -= 4
        if el.get("data-price") is not None:
            score += 0.5
        cand = (score, -pos, p.amount_float, p.currency)
        if best is None or cand[:2] > best[:2]:
            best = cand
    if best is None or best[0] < 1:
        return None, None
    return best[2], best[3]


def _label_elements(doc: Document) -> list[tuple[HtmlElement, str]]:
    """Short leaf-ish text elements that may be labels (cached per document)."""
    cached = getattr(doc, "_labels", None)
    if cached is None:
        cached = []
        for el in doc.xpath(
            "//body//*[self::span or self::div or self::li or self::p or self::dt or self::th or self::td or "
            "self::strong or self::b or self::label or self::a or self::h3 or self::h4]"
            "[not(*[not(self::br)]) or (count(*)=1 and (strong or b or span))]"
        ):
            t = _text(el)
            if t and len(t) <= 80:
                cached.append((el, t))
        doc._labels = cached  # type: ignore[attr-defined]
    return cached


def _label_value(doc: Document, field_name: str) -> str | None:
    """Value next to a label: "SKU: 12345", <th>Brand</th><td>ACME</td>, <dt>..</dt><dd>..</dd>."""
    for pattern in _LABEL_RES[field_name]:
        for el, text in _label_elements(doc):
            m = pattern.match(text)
            if not m:
                continue
            value = m.group("value")
            if not value:
                nxt = el.getnext()
                if nxt is None:
                    parent = el.getparent()
                    if parent is not None and len(_text(parent)) <= len(text) + 2:
                        nxt = parent.getnext()
                value = _text(nxt) if nxt is not None else None
            value = (value or "").strip(" :：#")
            if not value or len(value) > 60 or (field_name in ("sku", "mpn") and not _ID_LIKE.match(value)):
                continue
            if field_name == "brand" and len(value) < 2:
                continue
            return value
    return None


_EMBEDDED_SKU = re.compile(r'"(?:sku|productSku|product_sku)"\s*:\s*"([A-Za-z0-9][A-Za-z0-9._/\-]{1,40})"')


def _embedded_sku(doc: Document) -> str | None:
    """The first ``"sku": "..."`` in an inline script (Shopify meta, analytics data layers)."""
    for script in doc.xpath("//script[not(@src)]/text()"):
        m = _EMBEDDED_SKU.search(script)
        if m:
            return m.group(1)
    return None


_URL_ID_PARAMS = ("sku", "pid", "productid", "product_id", "products_id", "itemid", "item_id", "item", "id")


def url_product_id(url: str) -> str | None:
    """A product id written in the URL, or None.

    ``?pid=260591``, ``/itm/123808916008``, ``/Prod/101693/``, ``/M14876706.htm``,
    ``/some-slug-1609583.html``, ``/item/93133869_some-slug``.
    """
    parts = urlsplit(url)
    query = {k.lower(): v for k, v in parse_qsl(parts.query)}
    for k in _URL_ID_PARAMS:
        v = query.get(k, "")
        if re.fullmatch(r"[A-Za-z0-9_\-]{3,40}", v) and re.search(r"\d", v):
            return v
    segments = [s for s in parts.path.split("/") if s]
    for seg in reversed(segments[-2:]):
        stem = re.sub(r"\.(html?|php|aspx?|jsp)$", "", seg, flags=re.I)
        if re.fullmatch(r"[A-Za-z]{0,3}\d{5,}[A-Za-z0-9]{0,6}", stem):
            return stem
        m = re.search(r"[-_](\d{5,})$", stem) or re.match(r"^(\d{5,})[-_]", stem)
        if m:
            return m.group(1)
    return None


_AVAILABILITY_LABEL = re.compile(
    r"^\W*(?:availability|in\s*stock\?|stock(?:\s*status)?|disponibilit\w*|verfügbarkeit|disponibilidad|"
    r"razpoložljivost|наличие|dostępność|pieejamība|saadavus)\s*[:：]?\s*",
    re.I,
)


def _availability_text(doc: Document) -> Availability | None:
    for el in doc.xpath(
        "//body//*[contains(translate(@class,'STOCK','stock'),'stock') or "
        "contains(translate(@id,'STOCK','stock'),'stock') or "
        "contains(translate(@class,'AVILBTY','avilbty'),'availab') or "
        "contains(translate(@id,'AVILBTY','avilbty'),'availab')]"
    ):
        if el.tag in ("script", "style") or _in_noise(el):
            continue
        t = _AVAILABILITY_LABEL.sub("", _visible_text(el))
        if not t or len(t) > 250:
            continue
        # the stock wording must lead the element's text ("Image not available" is not about stock)
        if _OUT_OF_STOCK.match(t):
            return Availability.out_of_stock
        if _IN_STOCK.match(t):
            return Availability.in_stock
    return None


def _has_add_to_cart(doc: Document) -> bool:
    for b in doc.xpath(
        "//body//button | //body//input[@type='submit' or @type='button' or @type='image'] | "
        "//body//a[contains(@class,'btn') or contains(@class,'button') or contains(@class,'cart')]"
    ):
        if b.get("disabled") is not None or _in_related(b):
            continue
        label = " ".join(
            x
            for x in (
                _text(b),
                b.get("value"),
                b.get("title"),
                b.get("aria-label"),
                b.get("class"),
                b.get("id"),
                b.get("name"),
            )
            if x
        )
        if label and _ADD_TO_CART.search(label):
            return True
    return False


def _heuristic_availability(doc: Document) -> Availability | None:
    """Stock wording in an availability/stock element, else an enabled add-to-cart button = in stock."""
    found = _availability_text(doc)
    if found is not None:
        return found
    label = _label_value(doc, "availability")
    if label:
        if _OUT_OF_STOCK.match(label):
            return Availability.out_of_stock
        if _IN_STOCK.match(label):
            return Availability.in_stock
    return Availability.in_stock if _has_add_to_cart(doc) else None


def _tokens(s: str) -> set[str]:
    return {t for t in re.split(r"\W+", s.lower()) if len(t) > 1}


def _heuristic_name(doc: Document) -> str | None:
    """The heading that best matches the <title> (product pages title themselves after the product)."""
    titles = [clean_text(t) for t in doc.xpath("//title/text()")]
    title = next((t for t in titles if t), None)
    heads = [
        _text(h)
        for h in doc.xpath(
            "//h1 | //*[@id='productTitle' or @itemprop='name' or contains(@class,'product-title') or "
            "contains(@class,'product-name') or contains(@class,'product_title')]"
        )
    ]
    heads = [h for h in heads if h and len(h) < 300]
    if title and heads:
        tt = _tokens(title)
        scored = [(len(_tokens(h) & tt) / max(1, len(_tokens(h))), -i, h) for i, h in enumerate(heads)]
        best = max(scored)
        if best[0] >= 0.5:
            return best[2]
    if heads and not title:
        return heads[0]
    if title:
        return re.split(r"\s+[|–—]\s+|\s+-\s+(?=[^-]+$)|[｜]", title)[0].strip() or title
    return None


_IMG_SKIP = re.compile(r"logo|icon|sprite|pixel|spacer|blank|placeholder|banner|badge|flag|\.svg|\.gif", re.I)
_IMG_GOOD = re.compile(r"main|primary|product|zoom|hero|landing|gallery|large|big", re.I)


def _heuristic_images(doc: Document, name: str | None) -> list[tuple[str, int | None]]:
    """Product-looking images: in a product/gallery block or named like the product; not logos or banners."""
    scored: list[tuple[float, int, str, int | None]] = []
    name_tokens = _tokens(name or "")
    for pos, img in enumerate(doc.xpath("//body//img")):
        if _in_noise(img):
            continue
        src = (
            img.get("data-old-hires")
            or img.get("data-zoom-image")
            or img.get("data-large")
            or img.get("data-src")
            or img.get("src")
        )
        u = _abs_url(doc.base_url, src)
        if not u or _IMG_SKIP.search(u):
            continue
        w = _int(img.get("width"))
        if w is not None and w < 150:
            continue
        score = 0.0
        attrs = " ".join(x for x in (img.get("id"), img.get("class")) if x)
        parent = img.getparent()
        if parent is not None:
            attrs += " " + " ".join(x for x in (parent.get("id"), parent.get("class")) if x)
        if _IMG_GOOD.search(attrs):
            score += 2
        alt = _tokens(img.get("alt") or "")
        if name_tokens and len(alt & name_tokens) >= max(1, len(name_tokens) // 3):
            score += 2
        if score > 0:
            scored.append((score, -pos, u, w))
    scored.sort(reverse=True)
    return [(u, w) for _, _, u, w in scored[:10]]


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------


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
    from crawler.site_rules import load_rules

    url = doc.url
    sd = extract_structured(doc)
    rules = rules if rules is not None else load_rules()
    site_rule = rules.match(doc)

    canonical = _canonical(doc, sd)
    page_urls = {_norm_page_url(url)}
    if canonical:
        page_urls.add(_norm_page_url(canonical))

    candidates = _walk_products(sd.nodes)
    listing_urls: list[str] = []
    top = [c for c in candidates if not c.related or c.listed]
    urls = {_abs_url(doc.base_url, _first_text(c.node, "url")) for c in top}
    urls.discard(None)
    if len(top) >= 3 and len(urls) >= 3 and not (page_urls & {_norm_page_url(u) for u in urls}):
        listing_urls = sorted(u for u in urls if u)

    item = ProductItem(url=url, canonical_url=_pick_link(url, canonical))
    image_cands: list[tuple[str, int | None]] = []
    if candidates and not listing_urls:
        ranked = sorted(candidates, key=lambda c: (-_score(c, page_urls, doc.base_url), c.order))
        main = ranked[0].node
        image_cands += _fill_from_node(item, main, doc)
        for c in ranked[1:]:
            if c.related or not _same_product(main, c.node):
                continue
            image_cands += _fill_from_node(item, c.node, doc)
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
    meta_images = _fill_from_meta(item, sd, doc)
    image_cands += meta_images

    crumbs = _breadcrumbs(sd.nodes, doc.base_url)
    if crumbs:
        item.category_path = _drop_self_crumb(crumbs, item.name)
        item.sources["category_path"] = "breadcrumbs"

    is_product = structured_product or rule_says_product or og_product
    if heuristics and (is_product or assume_product or not listing_urls):
        _fill_from_heuristics(item, doc)
        if not is_product and item.price is not None and _has_add_to_cart(doc):
            is_product = True  # a price next to an add-to-cart button
        if not image_cands and (is_product or assume_product):
            image_cands = _heuristic_images(doc, item.name)
        if item.sku is None and (is_product or assume_product):
            _set(item, "sku", url_product_id(item.canonical_url or url), "url")
    if item.availability is None and item.price is not None and item.sources.get("price") in _MARKUP_SOURCES:
        # A published offer with a price and no stock statement (schema.org Offer without
        # availability, AggregateOffer with offers, product:price meta) is an offer one can take.
        _set(item, "availability", Availability.in_stock, "offer")

    if not item.colors:
        colors = _unique([v.color for v in item.variants if v.color] or ([item.color] if item.color else []))
        _set(item, "colors", colors, item.sources.get("variants", item.sources.get("color", "json-ld")))
    if item.variants:
        sizes = _unique([v.size for v in item.variants if v.size])
        if sizes and not item.sizes:
            _set(item, "sizes", sizes, item.sources.get("variants", "json-ld"))
    if item.currency is None and item.price is not None:
        _set(item, "currency", _page_currency(doc), "heuristic")
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


def _fill_from_heuristics(item: ProductItem, doc: Document) -> None:
    """Fill what structured data left empty from the page's visible content."""
    if item.price is None:
        amount, sym = _heuristic_price(doc)
        _set(item, "price", amount, "heuristic")
        if sym:
            _set(item, "currency", currency_code(sym, doc.url), "heuristic")
    if item.sku is None:
        _set(item, "sku", _label_value(doc, "sku") or _embedded_sku(doc), "heuristic")
    if item.mpn is None:
        _set(item, "mpn", _label_value(doc, "mpn"), "heuristic")
    if item.brand is None:
        _set(item, "brand", _clean_brand(_label_value(doc, "brand")), "heuristic")
    if item.availability is None:
        _set(item, "availability", _heuristic_availability(doc), "heuristic")
    if item.name is None:
        _set(item, "name", _heuristic_name(doc), "heuristic")


def _page_currency(doc: Document) -> str | None:
    for q in ("//*[@data-currency]/@data-currency", "//meta[@itemprop='priceCurrency']/@content"):
        for v in doc.xpath(q):
            c = currency_code(v, doc.url)
            if c:
                return c
    return None


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
