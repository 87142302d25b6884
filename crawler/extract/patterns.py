"""Common DOM patterns that shop templates share, read when structured data is missing:

- ``class_value(doc, "sku" | "brand")``: an element named for the field
  (``<span class="sku">``, ``<div class="product-brand">``, ``<a id="brand-name">``);
- ``data_layer_value(doc, "brand")``: the one value analytics data layers and inline
  product JSON give (``"brand": "ACME"``, ``"item_brand": "ACME"``), only when every such
  value on the page agrees (a page listing other products names several);
- ``gtin_candidates(doc)`` / ``valid_gtin(value)``: GTIN-8/12/13/14 from loose
  ``itemprop="gtin13"`` (etc.) attributes and EAN/GTIN/UPC/barcode labels, check digit verified.

No pattern names a shop: each is a markup convention many shop platforms use.
"""

from __future__ import annotations

import re

from lxml.html import HtmlElement

from crawler.extract.document import Document
from crawler.extract.text import WS

#: id/class tokens naming a field's element; a token is a class name or an id.
_FIELD_TOKENS: dict[str, re.Pattern[str]] = {
    "sku": re.compile(r"^(?:product[-_]?)?(?:sku|sku[-_]?(?:number|value|code|id))$", re.I),
    "brand": re.compile(
        r"^(?:product[-_]?|pdp[-_]?)?(?:brand|brand[-_]?(?:name|title|link|value))$|^manufacturer[-_]?name$",
        re.I,
    ),
}
#: Label text in front of a value inside the same element ("SKU: 123", "Brand - ACME").
_LEADING_LABEL = re.compile(r"^[^:：]{0,30}[:：]\s*")
_ID_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/\-]{1,40}$")
_SKIP_TAGS = frozenset({"script", "style", "meta", "link", "input", "select", "option", "button", "form"})
_NOISE = re.compile(
    r"related|recommend|similar|carousel|upsell|cross-?sell|footer|header|nav|menu|mini-?cart|sponsored|"
    r"also|recently|breadcrumb|filter|facet",
    re.I,
)


def _text(el: HtmlElement) -> str:
    parts = el.xpath(".//text()[not(ancestor::script) and not(ancestor::style)]")
    return WS.sub(" ", " ".join(parts)).strip()


def _in_noise(el: HtmlElement, stop: int = 10) -> bool:
    for anc in el.iterancestors():
        if stop == 0 or anc.tag == "body":
            return False
        stop -= 1
        if anc.tag in ("nav", "footer", "header", "aside"):
            return True
        cls = f"{anc.get('class') or ''} {anc.get('id') or ''}"
        if cls.strip() and _NOISE.search(cls):
            return True
    return False


def class_value(doc: Document, field_name: str) -> str | None:
    """The text of the first element whose id or one of whose classes names ``field_name``
    (``"sku"`` or ``"brand"``), outside navigation and related-product blocks.

    A leading label inside the element is dropped ("SKU: A-1" -> "A-1"); an image's ``alt``
    or ``title`` stands in for text (brand logos). A sku must look like an id (letters,
    digits, ``._/-``, 2-41 chars); a brand is 2-50 chars and not a bare number. None if none.
    """
    token_re = _FIELD_TOKENS[field_name]
    for el in doc.xpath("//body//*[@class or @id]"):
        if el.tag in _SKIP_TAGS:
            continue
        tokens = (el.get("class") or "").split() + ([el.get("id")] if el.get("id") else [])
        if not any(token_re.match(t) for t in tokens):
            continue
        if _in_noise(el):
            continue
        text = _text(el)
        if not text:
            img = el if el.tag == "img" else next(iter(el.xpath(".//img")), None)
            text = (img.get("alt") or img.get("title") or "").strip() if img is not None else ""
        text = _LEADING_LABEL.sub("", text).strip(" :：#-")
        if field_name == "sku":
            if _ID_LIKE.match(text) and any(c.isdigit() for c in text):
                return text
        elif 2 <= len(text) <= 50 and not text.replace(" ", "").isdigit():
            return text
    return None


_DATA_LAYER_KEYS = {"brand": ("brand", "item_brand", "productBrand", "product_brand", "brandName")}


def data_layer_value(doc: Document, field_name: str) -> str | None:
    """The value of ``"<key>": "<text>"`` pairs in inline scripts (analytics data layers,
    inline product JSON) when all of them on the page agree; None when absent or when the
    page names several (a page about many products)."""
    keys = "|".join(_DATA_LAYER_KEYS[field_name])
    pattern = re.compile(rf"""["']?(?:{keys})["']?\s*:\s*["']([^"'\\<>{{}}]{{2,50}})["']""")
    found: set[str] = set()
    original: dict[str, str] = {}
    for script in doc.xpath("//script[not(@src)][not(@type='application/ld+json')]/text()"):
        for m in pattern.finditer(script):
            v = WS.sub(" ", m.group(1)).strip()
            if v and v.lower() not in ("null", "none", "undefined", "n/a", "brand"):
                found.add(v.lower())
                original.setdefault(v.lower(), v)
    if len(found) == 1:
        return original[next(iter(found))]
    return None


def valid_gtin(value: str | None) -> str | None:
    """The digits of a GTIN-8/12/13/14 whose check digit is right (spaces and dashes allowed),
    else None. ``"4006381333931"`` -> ``"4006381333931"``; a wrong last digit -> None."""
    if not value:
        return None
    digits = re.sub(r"[\s-]", "", str(value))
    if not digits.isdigit() or len(digits) not in (8, 12, 13, 14):
        return None
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return digits if (10 - total % 10) % 10 == check else None


_GTIN_PROPS = ("gtin13", "gtin", "gtin14", "gtin12", "gtin8", "ean")
_GTIN_LABEL = re.compile(
    r"^\s*(?:ean(?:[-\s]?13)?|gtin(?:[-\s]?1[234])?|upc|barcode|bar\s*code|código\s*de\s*barras|"
    r"штрих-?код|strichcode)\s*[:：#]?\s*(?P<value>[\d\s-]{8,18})?\s*$",
    re.I,
)


def gtin_candidates(doc: Document) -> str | None:
    """A valid GTIN from loose ``itemprop`` attributes (``gtin13``, ``gtin``, ..., ``ean``) or an
    EAN/GTIN/UPC/barcode label ("EAN: 4006381333931", ``<th>EAN</th><td>...</td>``); None."""
    for prop in _GTIN_PROPS:
        for el in doc.xpath(f"//*[@itemprop='{prop}']"):
            g = valid_gtin(el.get("content") or el.get("value") or _text(el))
            if g:
                return g
    for el in doc.xpath(
        "//body//*[self::span or self::div or self::li or self::p or self::dt or self::th or "
        "self::td or self::strong or self::b or self::label][not(*[not(self::br)])]"
    ):
        text = _text(el)
        if not text or len(text) > 40:
            continue
        m = _GTIN_LABEL.match(text)
        if not m:
            continue
        value = m.group("value")
        if not value:
            nxt = el.getnext()
            value = _text(nxt) if nxt is not None else None
        g = valid_gtin(value)
        if g:
            return g
    return None
