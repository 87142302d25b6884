"""The vocabulary of query understanding (``fittingroom.retrieval.query``): a fixed base lexicon
plus the catalog's own categories, brands, colours and sizes, and the tokenizer.

Base lexicon: colours (canonical US spelling, with a *family* used for filtering: ``navy``
-> ``blue``), garment nouns with their ``GarmentCategory`` (the taxonomy of
``fittingroom.catalog.garments``; ``clothes``/``apparel`` means any apparel), gender words
(``men``, ``women``, ``unisex``, ``kids``), sizes (``XS`` ... ``4XL``, ``small``/``medium``/
``large``), currency words and symbols, and the price cue words.

Catalog vocabulary (``QueryLexicon.from_products``): category path elements, split on ``&``,
``,``, ``/`` and ``and`` (``'Hoodies & Sweatshirts'``), join the base term they name (their
path key is added to its ``catalog_categories``) or become categories of their own
(``'Juices'`` -> ``juice``; garment category = the most common one of their products, none
for ``other``); brands are matched by their name without a parenthesised note (``'Luma
(Magento sample data)'`` -> ``luma``) and by a distinctive first word (``saleor`` for
``'Saleor Loom'``); colours and sizes of the catalog are added when new.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from fittingroom.catalog.models import GarmentCategory, Product

#: Words at least this frequent in symspellpy's English list are never "corrected".
COMMON_WORD_COUNT = 1_000_000


class ConstraintKind(StrEnum):
    price = "price"
    color = "color"
    gender = "gender"
    category = "category"
    brand = "brand"
    size = "size"


# ---- base lexicon ------------------------------------------------------------------------------
#: colour -> (family, synonyms). Canonical names use US spelling ("gray").
COLORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "black": ("black", ()),
    "white": ("white", ("off white", "off-white")),
    "gray": ("gray", ("grey",)),
    "light gray": ("gray", ("light grey",)),
    "dark gray": ("gray", ("dark grey",)),
    "charcoal": ("gray", ()),
    "silver": ("gray", ()),
    "red": ("red", ()),
    "burgundy": ("red", ("maroon", "wine", "bordeaux")),
    "blue": ("blue", ()),
    "light blue": ("blue", ("sky blue", "baby blue")),
    "dark blue": ("blue", ()),
    "navy": ("blue", ("navy blue",)),
    "teal": ("blue", ("turquoise",)),
    "green": ("green", ()),
    "light green": ("green", ()),
    "dark green": ("green", ()),
    "olive": ("green", ("khaki",)),
    "yellow": ("yellow", ("mustard",)),
    "gold": ("yellow", ("golden",)),
    "orange": ("orange", ()),
    "coral": ("orange", ()),
    "purple": ("purple", ("violet", "plum")),
    "lavender": ("purple", ("lilac",)),
    "pink": ("pink", ("hot pink", "rose", "fuchsia", "magenta")),
    "brown": ("brown", ("chocolate",)),
    "beige": ("brown", ("tan", "camel", "sand", "nude")),
    "cream": ("white", ("ivory", "ecru")),
}

#: category term -> (garment category, synonyms). ``None`` garment category = any apparel.
CATEGORIES: dict[str, tuple[GarmentCategory | None, tuple[str, ...]]] = {
    "tee": (GarmentCategory.top, ("t-shirt", "tshirt", "tee shirt", "t shirt")),
    "shirt": (GarmentCategory.top, ("button down", "button-down")),
    "tank top": (GarmentCategory.top, ("tank", "singlet")),
    "top": (GarmentCategory.top, ("tops",)),
    "blouse": (GarmentCategory.top, ()),
    "polo": (GarmentCategory.top, ("polo shirt",)),
    "hoodie": (GarmentCategory.top, ("hoody", "hooded sweatshirt", "hooded top")),
    "sweatshirt": (GarmentCategory.top, ("crewneck", "crew neck sweatshirt")),
    "sweater": (GarmentCategory.top, ("jumper", "pullover", "knit sweater")),
    "cardigan": (GarmentCategory.top, ()),
    "bra": (GarmentCategory.top, ("sports bra",)),
    "camisole": (GarmentCategory.top, ("cami",)),
    "tunic": (GarmentCategory.top, ()),
    "jacket": (GarmentCategory.outerwear, ()),
    "coat": (GarmentCategory.outerwear, ("overcoat",)),
    "parka": (GarmentCategory.outerwear, ()),
    "blazer": (GarmentCategory.outerwear, ()),
    "anorak": (GarmentCategory.outerwear, ()),
    "windbreaker": (GarmentCategory.outerwear, ()),
    "vest": (GarmentCategory.outerwear, ("gilet",)),
    "poncho": (GarmentCategory.outerwear, ()),
    "outerwear": (GarmentCategory.outerwear, ()),
    "pants": (GarmentCategory.bottom, ("pant", "trousers", "trouser", "capri", "capris", "slacks")),
    "jeans": (GarmentCategory.bottom, ("denim jeans",)),
    "leggings": (GarmentCategory.bottom, ("legging", "tights")),
    "joggers": (GarmentCategory.bottom, ("jogger", "sweatpants", "track pants")),
    "shorts": (GarmentCategory.bottom, ("short",)),
    "skirt": (GarmentCategory.bottom, ()),
    "chinos": (GarmentCategory.bottom, ("chino",)),
    "bottoms": (GarmentCategory.bottom, ("bottom",)),
    "dress": (GarmentCategory.one_piece, ()),
    "gown": (GarmentCategory.one_piece, ()),
    "jumpsuit": (GarmentCategory.one_piece, ()),
    "romper": (GarmentCategory.one_piece, ("playsuit",)),
    "overalls": (GarmentCategory.one_piece, ("dungarees",)),
    "bodysuit": (GarmentCategory.one_piece, ()),
    "shoe": (GarmentCategory.footwear, ("footwear",)),
    "sneaker": (GarmentCategory.footwear, ("trainer", "plimsoll", "running shoe")),
    "boot": (GarmentCategory.footwear, ()),
    "sandal": (GarmentCategory.footwear, ()),
    "loafer": (GarmentCategory.footwear, ()),
    "heel": (GarmentCategory.footwear, ("high heel",)),
    "slipper": (GarmentCategory.footwear, ()),
    "flip flop": (GarmentCategory.footwear, ("flip-flop",)),
    "hat": (GarmentCategory.headwear, ("headwear",)),
    "cap": (GarmentCategory.headwear, ("baseball cap",)),
    "beanie": (GarmentCategory.headwear, ()),
    "beret": (GarmentCategory.headwear, ()),
    "headband": (GarmentCategory.headwear, ()),
    "bag": (GarmentCategory.bag_accessory, ()),
    "backpack": (GarmentCategory.bag_accessory, ("rucksack",)),
    "tote": (GarmentCategory.bag_accessory, ("tote bag",)),
    "handbag": (GarmentCategory.bag_accessory, ()),
    "purse": (GarmentCategory.bag_accessory, ()),
    "wallet": (GarmentCategory.bag_accessory, ()),
    "duffle bag": (GarmentCategory.bag_accessory, ("duffel", "duffel bag", "duffle")),
    "watch": (GarmentCategory.bag_accessory, ("wristwatch",)),
    "belt": (GarmentCategory.bag_accessory, ()),
    "scarf": (GarmentCategory.bag_accessory, ("scarves", "neck warmer")),
    "sunglasses": (GarmentCategory.bag_accessory, ("sunnies", "shades")),
    "jewelry": (GarmentCategory.bag_accessory, ("jewellery",)),
    "accessory": (GarmentCategory.bag_accessory, ()),
    "clothes": (None, ("clothing", "apparel", "garment", "outfit")),
}
#: Plural-only category terms keep their form; these words take no plural "s".
UNCOUNTABLE = frozenset({"clothes", "clothing", "apparel", "footwear", "headwear", "outerwear", "jewelry"})

GENDERS: dict[str, tuple[str, ...]] = {
    "men": ("men", "mens", "man", "mans", "male", "males", "guys", "gents", "for him", "boyfriend"),
    "women": (
        "women",
        "womens",
        "woman",
        "womans",
        "female",
        "females",
        "ladies",
        "lady",
        "ladys",
        "for her",
    ),  # fmt: skip
    "unisex": ("unisex", "gender neutral"),
    "kids": ("kids", "kid", "children", "childrens", "child", "boys", "girls", "toddler"),
}

#: size -> synonyms; ``FREE_SIZES`` may stand anywhere, the others need a cue.
SIZES: dict[str, tuple[str, ...]] = {
    "XXS": ("xxs", "2xs"),
    "XS": ("xs", "extra small", "x small", "x-small"),
    "S": ("s", "small", "sm"),
    "M": ("m", "medium", "med"),
    "L": ("l", "large", "lg"),
    "XL": ("xl", "extra large", "x large", "x-large"),
    "XXL": ("xxl", "2xl", "xx large", "xx-large"),
    "XXXL": ("xxxl", "3xl"),
    "XXXXL": ("xxxxl", "4xl"),
}
FREE_SIZES = frozenset(
    {"xxs", "2xs", "xs", "xl", "xxl", "2xl", "xxxl", "3xl", "xxxxl", "4xl", "x-large", "x-small"}
)
SIZE_CUES_BEFORE = frozenset({"size", "sz", "in", "waist", "eu", "uk", "us"})
SIZE_CUES_AFTER = frozenset({"size", "waist"})

#: currency words -> ISO code (symbols are in ``SYMBOLS``).
CURRENCY_WORDS: dict[str, str] = {
    "dollar": "USD", "dollars": "USD", "bucks": "USD", "buck": "USD", "usd": "USD",
    "euro": "EUR", "euros": "EUR", "eur": "EUR",
    "pound": "GBP", "pounds": "GBP", "quid": "GBP", "gbp": "GBP",
    "yen": "JPY", "yuan": "CNY", "rupee": "INR", "rupees": "INR", "franc": "CHF", "francs": "CHF",
    "zloty": "PLN", "zł": "PLN", "kronor": "SEK", "krona": "SEK", "kroner": "NOK", "won": "KRW",
}  # fmt: skip
SYMBOLS: dict[str, str] = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW", "₽": "RUB"}

# price cues: word sequence -> bound kind ("max", "min", "around", "range")
PRICE_CUES: dict[tuple[str, ...], str] = {
    **{(w,): "max" for w in ("under", "below", "max", "maximum", "within", "<", "<=", "≤", "upto")},
    **{
        tuple(p.split()): "max"
        for p in (
            "less than", "cheaper than", "lower than", "up to", "at most", "no more than",
            "not more than", "not over", "for under", "for less than", "for below", "no higher than",
        )
    },
    **{(w,): "min" for w in ("over", "above", "min", "minimum", ">", ">=", "≥", "from")},
    **{
        tuple(p.split()): "min"
        for p in ("more than", "at least", "greater than", "starting at", "upwards of", "no less than", "pricier than")
    },
    **{(w,): "around" for w in ("around", "about", "approximately", "approx", "roughly", "circa", "~")},
    ("between",): "range",
}  # fmt: skip
PRICE_SUFFIX_CUES: dict[tuple[str, ...], str] = {
    ("or", "less"): "max", ("or", "under"): "max", ("and", "under"): "max", ("and", "below"): "max",
    ("or", "more"): "min", ("and", "up"): "min", ("and", "above"): "min", ("or", "above"): "min", ("+",): "min",
}  # fmt: skip
RANGE_JOINERS = frozenset({"and", "to", "-", "–", "—"})
CUE_WORDS = frozenset(
    {w for cue in (*PRICE_CUES, *PRICE_SUFFIX_CUES) for w in cue if w.isalpha()}
    | {"size", "waist", "for", "in", "and", "or", "cheap", "price", "priced"}
)
#: words removed from the residual when next to a removed constraint (cue/filler words).
FILLERS = frozenset(
    {"for", "in", "size", "sz", "waist", "of", "by", "from", "a", "an", "the", "priced", "price"}
)


def plural_forms(word: str) -> set[str]:
    """The word and its plural (plural-only nouns such as "pants" and uncountables stay as they are)."""
    if word in UNCOUNTABLE or (word.endswith("s") and not word.endswith("ss")):
        return {word}
    if word.endswith(("s", "x", "sh", "ch")):
        return {word, word + "es"}
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return {word, word[:-1] + "ies"}
    if word.endswith("f"):
        return {word, word + "s", word[:-1] + "ves"}
    return {word, word + "s"}


def singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


# ---- tokens ---------------------------------------------------------------------------------------
TOKEN = re.compile(
    r"(?P<size>(?<![a-z0-9])[2-4]?x{1,3}[sl](?![a-z0-9]))"
    r"|(?P<num>(?<![\w.])-?\d+(?:[.,]\d+)*(?:e[+-]?\d+)?)"
    r"|(?P<word>[^\W\d_]+(?:['’-][^\W\d_]+)*)"
    r"|(?P<sym>[$€£¥₹₩₽]|<=|>=|[<>≤≥~+]|[-–—])"
)


@dataclass
class Token:
    """One token: ``kind`` word | num | sym, ``norm`` its normalised text, offsets into the text."""

    kind: str  # word | num | sym
    norm: str  # normalised text (words: lower-case, apostrophes removed)
    start: int
    end: int
    used: bool = False
    keep: bool = True  # goes to the residual
    corrected: str | None = None


def _lower_same_length(text: str) -> str:
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def tokenize(text: str) -> list[Token]:
    """Tokens of ``text`` (offsets into ``text``)."""
    low = _lower_same_length(text)
    out = []
    for m in TOKEN.finditer(low):
        kind = m.lastgroup or "word"
        norm = m.group()
        if kind == "size":
            kind = "word"
        if kind == "word" and "-" in norm:  # "t-shirt" -> "t" "shirt"
            pos = m.start()
            for part in norm.split("-"):
                out.append(Token("word", part.replace("'", "").replace("’", ""), pos, pos + len(part)))
                pos += len(part) + 1
            continue
        if kind == "word":
            norm = norm.replace("'", "").replace("’", "")
        out.append(Token(kind, norm, m.start(), m.end()))
    return out


# ---- lexicon ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LexEntry:
    kind: ConstraintKind
    value: str
    family: str | None = None
    garment_category: GarmentCategory | None = None
    catalog_categories: tuple[str, ...] = ()
    apparel: bool = False


@lru_cache(maxsize=1)
def english_word_counts() -> dict[str, int]:
    """symspellpy's English word frequency list (82,765 words) as ``{word: count}``."""
    import symspellpy

    path = Path(symspellpy.__file__).parent / "frequency_dictionary_en_82_765.txt"
    counts: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 2:
                counts[parts[0]] = int(parts[1])
    return counts


def iso_codes() -> frozenset[str]:
    try:
        from price_parser._currencies import CURRENCIES
    except ImportError:  # pragma: no cover - older price-parser
        return frozenset(SYMBOLS.values()) | frozenset(CURRENCY_WORDS.values())
    return frozenset(k for k in CURRENCIES if len(k) == 3 and k.isalpha())


@dataclass
class QueryLexicon:
    """Phrases (tuples of normalised words) -> lexicon entries, plus the spelling vocabulary."""

    phrases: dict[tuple[str, ...], list[LexEntry]] = field(default_factory=dict)
    catalog_sizes: set[str] = field(default_factory=set)
    brands: list[str] = field(default_factory=list)
    _words: set[str] | None = field(default=None, repr=False, compare=False)
    _speller: Any = field(default=None, repr=False, compare=False)

    # -- building -----------------------------------------------------------------------------
    def add(self, phrase: str, entry: LexEntry, *, plurals: bool = False) -> None:
        words = [t.norm for t in tokenize(phrase) if t.kind in ("word", "num")]
        if not words:
            return
        forms = [tuple(words)]
        if plurals:
            forms = [(*words[:-1], last) for last in sorted(plural_forms(words[-1]))]
        if len(words) > 1:  # "t shirt" is also "tshirt"; "flip flop" also "flipflop"
            forms += [(f[0] + f[1], *f[2:]) for f in forms if len(f[0]) <= 2 or len(f) == 2]
        self._words = self._speller = None  # the spelling vocabulary changed
        for form in forms:
            entries = self.phrases.setdefault(form, [])
            if entry not in entries:
                entries.append(entry)

    @classmethod
    def base(cls) -> QueryLexicon:
        """The fixed vocabulary, without a catalog."""
        lex = cls()
        for name, (family, syns) in COLORS.items():
            for phrase in (name, *syns):
                lex.add(phrase, LexEntry(ConstraintKind.color, name, family=family))
        for term, (garment, syns) in CATEGORIES.items():
            entry = LexEntry(
                ConstraintKind.category,
                term,
                garment_category=garment,
                apparel=garment is None or garment is not GarmentCategory.other,
            )
            for phrase in (term, *syns):
                lex.add(phrase, entry, plurals=True)
        for gender, forms in GENDERS.items():
            for phrase in forms:
                lex.add(phrase, LexEntry(ConstraintKind.gender, gender))
        for size, forms in SIZES.items():
            for phrase in forms:
                lex.add(phrase, LexEntry(ConstraintKind.size, size))
        return lex

    @classmethod
    def from_products(cls, products: Iterable[Product]) -> QueryLexicon:
        """Base vocabulary + the catalog's category path elements, brands, colours and sizes.

        A category path element (split on ``&``, ``,``, ``/`` and ``and``) naming a base
        category term adds the element's key to that term's ``catalog_categories``; any
        other element (not a gender word nor a merchandising grouping) becomes a category of
        its own, whose garment category is the most common one of its products.
        """
        lex = cls.base()
        element_garments: dict[str, Counter[GarmentCategory]] = defaultdict(Counter)
        element_keys: dict[str, set[str]] = defaultdict(set)
        brands: dict[str, str] = {}
        for p in products:
            path = [e.strip() for e in p.category_path if e and e.strip()]
            for i, element in enumerate(path):
                key = "/".join(e.lower() for e in path[: i + 1])
                for part in re.split(r"\s*(?:&|,|/|\band\b)\s*", element.lower()):
                    part = part.strip()
                    if part:
                        element_keys[part].add(key)
                        if p.garment_category is not None:
                            element_garments[part][p.garment_category] += 1
            if p.brand and p.brand.strip():
                brands.setdefault(" ".join(p.brand.split()).lower(), " ".join(p.brand.split()))
            for c in p.colors:
                words = tuple(t.norm for t in tokenize(c))
                if words and words not in lex.phrases:
                    lex.add(c, LexEntry(ConstraintKind.color, c.strip().lower(), family=c.strip().lower()))
            for s in p.sizes:
                lex.catalog_sizes.add(s.strip().upper())
        skip = {f for forms in GENDERS.values() for f in forms} | {
            "collections", "collection", "promotions", "promotion", "sale", "sales", "new", "gear",
        }  # fmt: skip
        for part, keys in sorted(element_keys.items()):
            if part in skip:
                continue
            words = tuple(t.norm for t in tokenize(part) if t.kind == "word")
            if not words:
                continue
            single = (*words[:-1], singular(words[-1]))
            known = next(
                (
                    e
                    for form in (words, single)
                    for e in lex.phrases.get(form, [])
                    if e.kind is ConstraintKind.category
                ),
                None,
            )
            if known is not None:
                merged = LexEntry(
                    ConstraintKind.category,
                    known.value,
                    garment_category=known.garment_category,
                    catalog_categories=tuple(sorted({*known.catalog_categories, *keys})),
                    apparel=known.apparel,
                )
                lex._replace(known, merged)
                continue
            counts = element_garments.get(part)
            garment = counts.most_common(1)[0][0] if counts else GarmentCategory.other
            entry = LexEntry(
                ConstraintKind.category,
                " ".join(single),
                garment_category=None if garment is GarmentCategory.other else garment,
                catalog_categories=tuple(sorted(keys)),
                apparel=garment is not GarmentCategory.other,
            )
            lex.add(" ".join(single), entry, plurals=True)
        for key, brand in sorted(brands.items()):
            lex.brands.append(brand)
            entry = LexEntry(ConstraintKind.brand, brand)
            name = re.sub(r"\(.*?\)", " ", key)  # "Luma (Magento sample data)" -> "luma"
            name_words = [t.norm for t in tokenize(name) if t.kind == "word"]
            if not name_words:
                continue
            lex.add(" ".join(name_words), entry)
            first = name_words[0]
            distinctive = len(first) >= 4 and english_word_counts().get(first, 0) < COMMON_WORD_COUNT
            if len(name_words) > 1 and distinctive and (first,) not in lex.phrases:
                lex.add(first, entry)
        return lex

    def _replace(self, old: LexEntry, new: LexEntry) -> None:
        for entries in self.phrases.values():
            for i, e in enumerate(entries):
                if e == old:
                    entries[i] = new

    # -- spelling -----------------------------------------------------------------------------
    @property
    def words(self) -> set[str]:
        """Every word of every phrase, plus the price cue words and currency names."""
        if self._words is None:
            ws = {w for phrase in self.phrases for w in phrase if w.isalpha()}
            ws |= CUE_WORDS | set(CURRENCY_WORDS)
            self._words = ws
        return self._words

    def speller(self) -> Any:
        """A symspellpy ``SymSpell`` over ``words`` (counts from the English list, or 1)."""
        if self._speller is None:
            from symspellpy import SymSpell

            sym = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
            counts = english_word_counts()
            for w in sorted(self.words):
                if len(w) >= 3:
                    sym.create_dictionary_entry(w, max(counts.get(w, 0), 1))
            self._speller = sym
        return self._speller
