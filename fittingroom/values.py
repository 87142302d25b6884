"""Product field values shared by the crawler and the feed ingest: prices, currencies,
gender, availability and colours.

Core layer: imports only the standard library and third-party packages (price-parser,
w3lib), never ``crawler``, ``catalog_ingest`` or ``services``.

- ``parse_price(value)`` -> ``ParsedPrice``: amount (float, currency units, not cents),
  ISO 4217 currency, the currency text as written, and a ``reason`` when no amount could be
  read. Text goes through price-parser ("349,95", "$1,299.00", "1.299,00 €"); a non-finite
  (``1e309``, ``NaN``), negative or absurd (> ``MAX_PRICE``) amount is rejected.
- ``currency_code(value, url)``: symbol/name/code -> ISO 4217 code from ONE table
  (``CURRENCY_SYMBOLS``); an ambiguous ``$``, ``Rs`` or ``kr`` resolves by the shop's
  country domain.
- ``normalise_gender(value)``: ONE vocabulary (``GENDERS``) -> catalog values ``men``,
  ``women``, ``unisex``, ``boys``, ``girls``, ``kids``; ``gmc_gender`` gives Google
  Merchant Center's ``male``/``female``/``unisex``.
- ``normalise_availability(value)``: schema.org ``ItemAvailability`` IRIs/names, OpenGraph
  and GMC values -> ``in_stock``/``out_of_stock``/``preorder``/``backorder``.
- ``normalise_color(value)``: cleaned colour name (``'  navy   blue '`` -> ``'Navy blue'``),
  None for placeholders; ``color_key`` compares colours case-insensitively.
"""

from __future__ import annotations

import html as html_lib
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "AVAILABILITY_VALUES",
    "CURRENCY_SYMBOLS",
    "GENDERS",
    "MAX_PRICE",
    "ParsedPrice",
    "clean_text",
    "color_key",
    "currency_code",
    "gmc_gender",
    "normalise_availability",
    "normalise_color",
    "normalise_gender",
    "parse_price",
    "schema_short_name",
]

# ---- text --------------------------------------------------------------------------------------

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


def clean_text(value: Any) -> str | None:
    """Unescaped, tag-free, whitespace-collapsed text; None for empty or non-text values."""
    if value is None or isinstance(value, dict | list | bool):
        return None
    s = html_lib.unescape(str(value))
    if "<" in s and ">" in s:
        from w3lib.html import remove_tags

        s = html_lib.unescape(remove_tags(s))
    s = _WS.sub(" ", s).strip()
    return s or None


def schema_short_name(iri: str) -> str:
    """``'http://schema.org/InStock'`` -> ``'InStock'`` (other strings unchanged but stripped)."""
    s = str(iri).strip()
    for p in _SCHEMA_PREFIXES:
        if s.startswith(p):
            return s[len(p) :]
    return s


# ---- currencies --------------------------------------------------------------------------------

#: The one currency table: lower-case symbol, name or code as shops write it -> ISO 4217.
#: (Three-letter codes not listed here are accepted as they are, upper-cased.)
CURRENCY_SYMBOLS: dict[str, str] = {
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "£": "GBP",
    "gbp": "GBP",
    "¥": "JPY",
    "円": "JPY",
    "₹": "INR",
    "₽": "RUB",
    "rur": "RUB",  # the pre-1998 ruble code, still written by many Russian shops
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
#: Country-code TLD -> currency of an ambiguous "$" / "Rs" / "kr" on that shop.
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
    """ISO 4217 code for a currency code, name or symbol (``'€'`` -> ``'EUR'``, ``'usd'`` -> ``'USD'``).

    A bare ``$``, ``Rs`` or ``kr`` resolves by the country domain of ``url`` (``.ca`` -> CAD,
    ``.pk`` -> PKR, ``.se`` -> SEK), else USD / INR / SEK. Returns None when not recognised.
    """
    if not value:
        return None
    v = str(value).strip().rstrip("~").strip()
    if not v:
        return None
    low = v.lower()
    if low in CURRENCY_SYMBOLS:
        return CURRENCY_SYMBOLS[low]
    if low == "$":
        return _TLD_DOLLAR.get(_tld(url), "USD")
    if low in ("rs", "rs.", "₨"):
        return _TLD_RUPEE.get(_tld(url), "INR")
    if low in ("kr", "kr."):
        return _TLD_KRONA.get(_tld(url), "SEK")
    if _ISO_RE.match(v):
        return v.upper()
    return None


# ---- prices ------------------------------------------------------------------------------------

#: Larger amounts are rejected as absurd (room for a luxury item in VND or IDR, not for 1e20).
MAX_PRICE = 1e11

_PLAIN_NUMBER = re.compile(r"\d+(\.\d{1,2})?")  # the schema.org form: dot decimal, no grouping
_SCIENTIFIC = re.compile(
    r"(?<![\w.])[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)[eE][-+]?\d+|inf(?:inity)?|nan)(?![\w.])", re.I
)


@dataclass(frozen=True)
class ParsedPrice:
    """Result of ``parse_price``.

    ``amount``: float in currency units (not cents), None when no acceptable amount was found
    (``reason`` then says why: ``'empty'``, ``'no amount'``, ``'negative'``, ``'not finite'``,
    ``'absurd'``). ``symbol``: the currency text as written (``'$'``, ``'EUR'``) or None;
    ``currency``: its ISO 4217 code (``currency_code``) or None.
    """

    amount: float | None
    currency: str | None = None
    symbol: str | None = None
    reason: str | None = None


def _checked(amount: float, symbol: str | None, currency: str | None) -> ParsedPrice:
    if not math.isfinite(amount):
        return ParsedPrice(None, currency, symbol, "not finite")
    if amount < 0:
        return ParsedPrice(None, currency, symbol, "negative")
    if amount > MAX_PRICE:
        return ParsedPrice(None, currency, symbol, "absurd")
    return ParsedPrice(amount, currency, symbol, None)


_NOT_SYMBOL = re.compile(r"[\d\s.,'’\u00a0\u202f+-]+")


def _table_symbol(text: str) -> str | None:
    """A word of ``CURRENCY_SYMBOLS`` written beside the amount that price-parser does not know
    (``'44 890 тг.'`` -> ``'тг.'``); None when there is none."""
    for word in _NOT_SYMBOL.split(text):
        if word and word.lower() in CURRENCY_SYMBOLS:
            return word
    return None


def parse_price(value: Any, currency_hint: str | None = None, *, url: str | None = None) -> ParsedPrice:
    """Parse a price given as a number or a text (see ``ParsedPrice``).

    JSON numbers are taken as they are; text in the schema.org form (``'119.99'``) as a plain
    number; other text goes through price-parser, which handles decimal and thousands
    separators. Scientific notation (``'1e309 USD'``) is read as a float, so an overflowing
    value is rejected instead of being read as ``1``. ``currency_hint`` helps price-parser
    find the currency; ``url`` resolves an ambiguous ``$`` (see ``currency_code``).
    """
    if value is None or isinstance(value, bool):
        return ParsedPrice(None, reason="empty")
    if isinstance(value, int | float | Decimal):
        try:
            amount = float(value)
        except OverflowError:
            return ParsedPrice(None, reason="not finite")
        return _checked(amount, None, None)
    text = clean_text(value)
    if not text:
        return ParsedPrice(None, reason="empty")
    if _PLAIN_NUMBER.fullmatch(text):
        return _checked(float(text), None, None)
    from price_parser import Price

    p = Price.fromstring(text, currency_hint=currency_hint)
    symbol = p.currency or _table_symbol(text)
    currency = currency_code(symbol, url)
    sci = _SCIENTIFIC.search(text)
    if sci is not None and not re.search(r"\d", text[: sci.start()] + text[sci.end() :]):
        return _checked(float(sci.group(0)), symbol, currency)
    if p.amount is None:
        return ParsedPrice(None, currency, symbol, "no amount")
    if text.lstrip().startswith("-"):
        return ParsedPrice(None, currency, symbol, "negative")
    return _checked(float(p.amount), symbol, currency)


# ---- gender ------------------------------------------------------------------------------------

#: The one gender vocabulary: lower-case word as feeds and pages write it -> catalog value.
GENDERS: dict[str, str] = {
    **dict.fromkeys(
        ("men", "man", "male", "m", "mens", "men's", "herren", "homme", "hommes", "hombre", "uomo"), "men"
    ),
    **dict.fromkeys(
        (
            "women",
            "woman",
            "female",
            "f",
            "w",
            "womens",
            "women's",
            "ladies",
            "damen",
            "femme",
            "femmes",
            "mujer",
            "donna",
        ),
        "women",
    ),
    **dict.fromkeys(("unisex", "all", "adult unisex"), "unisex"),
    **dict.fromkeys(("boys", "boy"), "boys"),
    **dict.fromkeys(("girls", "girl"), "girls"),
    **dict.fromkeys(("kids", "children", "child", "kid"), "kids"),
}
_GMC_GENDER = {"men": "male", "women": "female", "unisex": "unisex", "boys": "male", "girls": "female"}


def normalise_gender(value: Any) -> str | None:
    """Catalog gender (``men``/``women``/``unisex``/``boys``/``girls``/``kids``) or None.

    Accepts schema.org IRIs (``https://schema.org/Female``) and several values in one text
    (``'Men\\nWomen'``, ``'men, women'``): different genders together are ``unisex``.
    Unknown words give None.
    """
    if value is None or isinstance(value, dict | list | bool):
        return None
    parts = [clean_text(p) for p in re.split(r"[\n,;/|]+", str(value))]
    found: list[str] = []
    for p in parts:
        g = GENDERS.get(schema_short_name(p).lower()) if p else None
        if g is not None and g not in found:
            found.append(g)
    if not found:
        return None
    if len(found) > 1 or "unisex" in found:
        return "unisex"
    return found[0]


def gmc_gender(value: Any) -> str | None:
    """Google Merchant Center ``gender``: ``male``/``female``/``unisex``, or None (kids, unknown)."""
    g = normalise_gender(value)
    return _GMC_GENDER.get(g) if g else None


# ---- availability ------------------------------------------------------------------------------

#: Normalised availability values (the GMC names; ``crawler.items.Availability`` values).
AVAILABILITY_VALUES = ("in_stock", "out_of_stock", "preorder", "backorder")
_AVAILABILITY: dict[str, tuple[str, ...]] = {
    "in_stock": (
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
    "out_of_stock": (
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
    "preorder": ("preorder", "pre-order", "pre order", "presale", "preorder_"),
    "backorder": ("backorder", "back order", "back-order"),
}
_AVAILABILITY_LOOKUP = {k: a for a, keys in _AVAILABILITY.items() for k in keys}
_AVAILABILITY_SQUASHED = {re.sub(r"[^a-z]", "", k): a for k, a in reversed(_AVAILABILITY_LOOKUP.items())}


def normalise_availability(value: Any) -> str | None:
    """schema.org ItemAvailability IRI or name, OpenGraph or GMC value -> one of
    ``AVAILABILITY_VALUES``; None when not recognised."""
    t = clean_text(value)
    if not t:
        return None
    key = schema_short_name(t).strip().lower().rsplit("/", 1)[-1]
    if key in _AVAILABILITY_LOOKUP:
        return _AVAILABILITY_LOOKUP[key]
    squashed = re.sub(r"[^a-z]", "", key)
    return _AVAILABILITY_SQUASHED.get(squashed) if squashed else None


# ---- colours -----------------------------------------------------------------------------------

_COLOR_PLACEHOLDERS = frozenset({"n/a", "na", "none", "null", "-", "--", "default", "as shown", "see image"})


def normalise_color(value: Any) -> str | None:
    """A colour name cleaned up: whitespace collapsed, an all-lower-case name capitalised
    (``'  navy   blue '`` -> ``'Navy blue'``; ``'Navy/White'`` stays), None for empty values
    and placeholders (``'n/a'``, ``'default'``)."""
    text = clean_text(value)
    if not text or text.lower() in _COLOR_PLACEHOLDERS:
        return None
    if text.islower():
        text = text[0].upper() + text[1:]
    return text


def color_key(value: str) -> str:
    """Comparison key of a colour name (``'Navy Blue'`` and ``'navy  blue'`` share it)."""
    return _WS.sub(" ", value).strip().casefold()
