"""Query understanding: price bounds, colour, gender, category, brand and size out of English text.

``QueryParser(lexicon).parse(text)`` returns a ``ParsedQuery``: each ``Constraint`` with its
source span (character offsets into the text as given), the constraints that were recognised
but refused (``dropped``, each with a reason), the spelling corrections
(``corrected_text``: "showing results for ...") and the ``residual`` text for the embedding.

The lexicon (``fittingroom.retrieval.lexicon.QueryLexicon.from_products``) is a fixed base
vocabulary plus the catalog's own categories, brands, colours and sizes; build it once per
catalog generation.

Parsing, in order:

1. Tokens: words (lower-cased, apostrophes dropped: ``men's`` -> ``mens``), numbers, currency
   symbols and comparison signs, each with its offsets.
2. Spelling: a word of 4+ letters that is neither in the lexicon nor a common English word
   (symspellpy's English frequency list, count >= ``COMMON_WORD_COUNT``) is replaced by the
   closest lexicon word (SymSpell, Damerau-Levenshtein distance 1 for 4-5 letters, 2 from 6;
   ties: same first letter, then Jaro-Winkler similarity, then word frequency), else by the
   best rapidfuzz match scoring >= ``FUZZY_MIN_SCORE``.
3. Prices: an amount (number with an optional currency symbol, ISO code or name before or
   after it) after a cue (``under``, ``less than``, ``cheaper than``, ``up to``, ``over``,
   ``at least``, ``around`` ...), or in a range (``between 20 and 40``, ``50-80 usd``,
   ``from $40 to $90``); an amount with a currency and no cue means "around" (+-20 %).
   A bare number is not a price (``size 32``). Negative or non-finite amounts, an upper
   bound of 0 and unknown currencies drop the price constraint (reported in ``dropped``).
4. Lexicon phrases, longest first (up to 4 words): colours, gender (``for him``), brands,
   categories (of two adjacent category nouns the last one is kept: "dress shirt" is a
   shirt), sizes (``XS``/``XL``/``2XL`` anywhere; ``M``, ``small``, ``32`` only after
   ``size``/``in``/``waist`` or before ``size``/``waist``).

The residual keeps the words that describe the look (colour and category words, and every
word that is not a constraint) and leaves out prices, sizes, gender, brands and their cue
words; when nothing is left it is the corrected text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fittingroom.catalog.models import GarmentCategory
from fittingroom.retrieval.lexicon import (
    COMMON_WORD_COUNT,
    CURRENCY_WORDS,
    FILLERS,
    FREE_SIZES,
    PRICE_CUES,
    PRICE_SUFFIX_CUES,
    RANGE_JOINERS,
    SIZE_CUES_AFTER,
    SIZE_CUES_BEFORE,
    SYMBOLS,
    ConstraintKind,
    LexEntry,
    QueryLexicon,
    Token,
    english_word_counts,
    iso_codes,
    singular,
    tokenize,
)

#: Least rapidfuzz ``ratio`` for a fuzzy correction when SymSpell finds nothing.
FUZZY_MIN_SCORE = 85.0
#: Longest query parsed; the rest is ignored (and reported in ``dropped``).
MAX_QUERY_CHARS = 500
#: "around $50" and "$50" alone mean 50 +- this fraction.
AROUND_FRACTION = 0.2


@dataclass(frozen=True)
class Constraint:
    """One constraint read from the query.

    ``value``: canonical value (colour ``'gray'``, gender ``'men'``/``'women'``/``'unisex'``/
    ``'kids'``, category term ``'hoodie'``, the catalog's brand string, size ``'M'``/``'32'``,
    price ``'<= 50 USD'``). ``start``/``end``: character span in the query as given; ``text``
    its source text. Price: ``min_price``/``max_price`` (None = open), ``currency`` (ISO 4217,
    None = any). Colour: ``family`` (``navy`` -> ``blue``). Category: ``garment_category``
    (None for catalog categories outside the garment taxonomy and for "clothes") and
    ``catalog_categories`` (normalised category keys of the catalog this term names).
    """

    kind: ConstraintKind
    value: str
    start: int
    end: int
    text: str
    min_price: float | None = None
    max_price: float | None = None
    currency: str | None = None
    family: str | None = None
    garment_category: GarmentCategory | None = None
    catalog_categories: tuple[str, ...] = ()
    apparel: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind.value,
            "value": self.value,
            "text": self.text,
            "start": self.start,
            "end": self.end,
        }
        if self.kind is ConstraintKind.price:
            out |= {"min_price": self.min_price, "max_price": self.max_price, "currency": self.currency}
        if self.kind is ConstraintKind.category:
            out["garment_category"] = self.garment_category.value if self.garment_category else None
        return out


@dataclass(frozen=True)
class Dropped:
    """A constraint recognised but not applied: ``kind``, source ``text`` and span, ``reason``."""

    kind: str
    text: str
    start: int
    end: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Correction:
    start: int
    end: int
    original: str
    corrected: str


@dataclass(frozen=True)
class ParsedQuery:
    """The parse of one query (see the module docstring). ``corrected_text`` is None when
    nothing was corrected."""

    text: str
    constraints: tuple[Constraint, ...]
    dropped: tuple[Dropped, ...]
    corrections: tuple[Correction, ...]
    corrected_text: str | None
    residual: str

    def of(self, kind: ConstraintKind) -> list[Constraint]:
        return [c for c in self.constraints if c.kind is kind]

    def values(self, kind: ConstraintKind) -> list[str]:
        """Distinct values of one kind, in query order."""
        return list(dict.fromkeys(c.value for c in self.of(kind)))

    def price_bounds(self) -> tuple[float | None, float | None, str | None]:
        """``(min, max, currency)`` of all price constraints together (None = open / any)."""
        lo: float | None = None
        hi: float | None = None
        currency: str | None = None
        for c in self.of(ConstraintKind.price):
            if c.min_price is not None:
                lo = c.min_price if lo is None else max(lo, c.min_price)
            if c.max_price is not None:
                hi = c.max_price if hi is None else min(hi, c.max_price)
            currency = currency or c.currency
        return lo, hi, currency

    @property
    def is_garment_query(self) -> bool:
        """A category constraint names apparel (a garment category other than ``other``, or "clothes")."""
        return any(c.apparel for c in self.of(ConstraintKind.category))

    def as_dict(self) -> dict[str, Any]:
        return {
            "constraints": [c.as_dict() for c in self.constraints],
            "dropped": [d.as_dict() for d in self.dropped],
            "corrected": self.corrected_text,
            "residual": self.residual,
        }


# ---- the parser --------------------------------------------------------------------------------------
class QueryParser:
    """Parse English shopping queries against a ``QueryLexicon`` (see the module docstring).

    Thread-safe after construction (parsing does not mutate the lexicon).
    """

    def __init__(self, lexicon: QueryLexicon | None = None, *, max_chars: int = MAX_QUERY_CHARS) -> None:
        self.lexicon = lexicon or QueryLexicon.base()
        self.max_chars = max_chars
        self._iso = iso_codes()
        self._max_phrase = max((len(p) for p in self.lexicon.phrases), default=1)
        self.lexicon.speller()  # build now, not on the first query

    def parse(self, text: str, *, correct: bool = True) -> ParsedQuery:
        """Parse ``text`` (``correct=False``: the words as typed, no spelling correction).
        Raises ValueError when it is empty or blank; never otherwise."""
        if text is None or not text.strip():
            raise ValueError("empty query: give a non-blank text")
        dropped: list[Dropped] = []
        head = text
        if len(text) > self.max_chars:
            cut = text.rfind(" ", 0, self.max_chars)
            cut = cut if cut > self.max_chars // 2 else self.max_chars
            head = text[:cut]
            dropped.append(
                Dropped(
                    "text",
                    text[cut : cut + 40],
                    cut,
                    len(text),
                    f"query longer than {self.max_chars} characters: the rest was ignored",
                )
            )
        toks = tokenize(head)
        corrections = self._correct(toks, text) if correct else []
        constraints: list[Constraint] = []
        self._prices(toks, text, constraints, dropped)
        self._phrases(toks, text, constraints)
        constraints.sort(key=lambda c: (c.start, c.kind.value))
        corrected = _apply_corrections(text, corrections) if corrections else None
        residual = self._residual(toks, text)
        if not residual:
            residual = " ".join((corrected or head).split())
        return ParsedQuery(
            text=text,
            constraints=tuple(constraints),
            dropped=tuple(dropped),
            corrections=tuple(corrections),
            corrected_text=corrected,
            residual=residual,
        )

    # -- spelling -------------------------------------------------------------------------------
    def _correct(self, toks: list[Token], text: str) -> list[Correction]:
        from rapidfuzz import fuzz, process
        from rapidfuzz.distance import JaroWinkler
        from symspellpy import Verbosity

        vocab = self.lexicon.words
        common = english_word_counts()
        speller = self.lexicon.speller()
        out: list[Correction] = []
        for t in toks:
            w = t.norm
            if t.kind != "word" or len(w) < 4 or not w.isalpha() or w in vocab or singular(w) in vocab:
                continue
            if common.get(w, 0) >= COMMON_WORD_COUNT:
                continue
            max_d = 1 if len(w) <= 5 else 2
            found = speller.lookup(w, Verbosity.CLOSEST, max_edit_distance=max_d)
            best: str | None = None
            if found:
                top = [s for s in found if s.distance == found[0].distance]
                # ties: typos rarely change the first letter; Jaro-Winkler rewards swapped
                # letters and a shared prefix; then the more frequent word
                best = max(
                    top,
                    key=lambda s: (s.term[0] == w[0], JaroWinkler.similarity(w, s.term), s.count),
                ).term
            elif len(w) >= 6:
                hit = process.extractOne(w, sorted(vocab), scorer=fuzz.ratio, score_cutoff=FUZZY_MIN_SCORE)
                best = hit[0] if hit else None
            if best and best != w:
                t.corrected = best
                t.norm = best
                out.append(Correction(t.start, t.end, text[t.start : t.end], best))
        return out

    # -- prices ---------------------------------------------------------------------------------
    def _amount(
        self, toks: list[Token], i: int
    ) -> tuple[int, int, float | None, str | None, str | None] | None:
        """The amount whose number is at or right after ``i``: ``(first, last, value, currency,
        unknown_currency)``; value None when the number is not a finite float."""
        n = len(toks)
        first = i
        currency: str | None = None
        if i < n and toks[i].kind == "sym" and toks[i].norm in SYMBOLS:
            currency = SYMBOLS[toks[i].norm]
            i += 1
        elif i + 1 < n and self._is_code(toks[i]) and toks[i + 1].kind == "num":
            currency = toks[i].norm.upper()
            i += 1
        if i >= n or toks[i].kind != "num":
            return None
        value = _number(toks[i].norm)
        last = i
        unknown: str | None = None
        if i + 1 < n and toks[i + 1].start - toks[i].end <= 1:
            nxt = toks[i + 1]
            if nxt.kind == "sym" and nxt.norm in SYMBOLS:
                currency, last = currency or SYMBOLS[nxt.norm], i + 1
            elif nxt.kind == "word" and nxt.norm in CURRENCY_WORDS:
                currency, last = currency or CURRENCY_WORDS[nxt.norm], i + 1
            elif self._is_code(nxt):
                currency, last = currency or nxt.norm.upper(), i + 1
            elif nxt.kind == "word" and currency is None and self._unknown_unit(nxt.norm):
                unknown, last = nxt.norm, i + 1
        return first, last, value, currency, unknown

    def _is_code(self, tok: Token) -> bool:
        """An ISO 4217 code that is not a common English word ("top" is not Tongan pa'anga)."""
        return (
            tok.kind == "word"
            and tok.norm.upper() in self._iso
            and english_word_counts().get(tok.norm, 0) < COMMON_WORD_COUNT
        )

    def _unknown_unit(self, word: str) -> bool:
        """A word right after a price that is no known word: an unknown currency."""
        if word in self.lexicon.words or singular(word) in self.lexicon.words:
            return False
        count = english_word_counts().get(word, 0)
        return count < COMMON_WORD_COUNT and (count == 0 or len(word) == 3)

    def _cue_before(self, toks: list[Token], i: int) -> tuple[int, str] | None:
        for length in (4, 3, 2, 1):
            j = i - length
            if j < 0 or any(t.used for t in toks[j:i]):
                continue
            key = tuple(t.norm for t in toks[j:i])
            if key in PRICE_CUES:
                return j, PRICE_CUES[key]
        return None

    def _prices(self, toks: list[Token], text: str, out: list[Constraint], dropped: list[Dropped]) -> None:
        i = 0
        n = len(toks)
        while i < n:
            amt = None if toks[i].used else self._amount(toks, i)
            if amt is None:
                i += 1
                continue
            first, last, value, currency, unknown = amt
            cue = self._cue_before(toks, first)
            start_tok = cue[0] if cue else first
            mode = cue[1] if cue else None
            hi_value: float | None = None
            # a range: "<amount> (and|to|-) <amount>"
            if last + 1 < n and toks[last + 1].norm in RANGE_JOINERS:
                second = self._amount(toks, last + 2)
                if second is not None and (mode in (None, "range", "min")):
                    _, last2, value2, currency2, unknown2 = second
                    hi_value, last = value2, last2
                    currency = currency or currency2
                    unknown = unknown or unknown2
                    mode = "range"
            if mode is None:
                for length in (2, 1):
                    key = tuple(t.norm for t in toks[last + 1 : last + 1 + length])
                    if len(key) == length and key in PRICE_SUFFIX_CUES:
                        mode, last = PRICE_SUFFIX_CUES[key], last + length
                        break
            if mode is None and currency is not None:
                mode = "around"
            if mode is None:  # a bare number: not a price (maybe a size)
                i = last + 1 if last > i else i + 1
                continue
            span_start, span_end = toks[start_tok].start, toks[last].end
            src = text[span_start:span_end]
            for t in toks[start_tok : last + 1]:
                t.used, t.keep = True, False
            i = last + 1
            reason = _price_problem(value, hi_value if mode == "range" else None, unknown, mode)
            if reason:
                dropped.append(Dropped("price", src, span_start, span_end, reason))
                continue
            assert value is not None
            lo: float | None
            hi: float | None
            if mode == "range":
                assert hi_value is not None
                lo, hi = sorted((value, hi_value))
            elif mode == "max":
                lo, hi = None, value
            elif mode == "min":
                lo, hi = value, None
            else:  # around
                lo, hi = round(value * (1 - AROUND_FRACTION), 2), round(value * (1 + AROUND_FRACTION), 2)
            label = _price_label(lo, hi, currency)
            out.append(
                Constraint(
                    ConstraintKind.price,
                    label,
                    span_start,
                    span_end,
                    src,
                    min_price=lo,
                    max_price=hi,
                    currency=currency,
                )
            )

    # -- lexicon phrases -------------------------------------------------------------------------
    def _phrases(self, toks: list[Token], text: str, out: list[Constraint]) -> None:
        lex = self.lexicon.phrases
        i = 0
        n = len(toks)
        found: list[tuple[int, int, list[LexEntry]]] = []
        while i < n:
            if toks[i].used or toks[i].kind == "sym":
                i += 1
                continue
            match = None
            for length in range(min(self._max_phrase, n - i), 0, -1):
                span = toks[i : i + length]
                if any(t.used for t in span):
                    continue
                key = tuple(t.norm for t in span)
                if key in lex:
                    match = (i, i + length, lex[key])
                    break
            if match is None:
                i += 1
                continue
            found.append(match)
            i = match[1]
        # sizes that need a cue; numbers after a size cue
        chosen: list[tuple[int, int, LexEntry]] = []
        for a, b, entries in found:
            entry = self._pick(toks, a, b, entries)
            if entry is not None:
                chosen.append((a, b, entry))
        for j, t in enumerate(toks):
            if t.kind != "num" or t.used or not re.fullmatch(r"\d{1,3}(?:\.5)?", t.norm):
                continue
            before = toks[j - 1].norm if j > 0 else None
            after = toks[j + 1].norm if j + 1 < n else None
            if (before in SIZE_CUES_BEFORE and before != "in") or after in SIZE_CUES_AFTER:
                chosen.append((j, j + 1, LexEntry(ConstraintKind.size, t.norm)))
        chosen.sort(key=lambda x: x[0])
        # adjacent category nouns: the last one is the head ("dress shirt" is a shirt)
        kept: list[tuple[int, int, LexEntry]] = []
        for a, b, e in chosen:
            if (
                kept
                and e.kind is ConstraintKind.category
                and kept[-1][2].kind is ConstraintKind.category
                and kept[-1][1] == a
                and kept[-1][2].value != e.value
            ):
                kept.pop()
            kept.append((a, b, e))
        for a, b, e in kept:
            for t in toks[a:b]:
                t.used = True
                t.keep = e.kind in (ConstraintKind.color, ConstraintKind.category)
            if (
                e.kind is ConstraintKind.size
                or e.kind is ConstraintKind.gender
                or e.kind is ConstraintKind.brand
            ):
                _drop_fillers(toks, a, b)
            out.append(
                Constraint(
                    e.kind,
                    e.value,
                    toks[a].start,
                    toks[b - 1].end,
                    text[toks[a].start : toks[b - 1].end],
                    family=e.family,
                    garment_category=e.garment_category,
                    catalog_categories=e.catalog_categories,
                    apparel=e.apparel,
                )
            )

    def _pick(self, toks: list[Token], a: int, b: int, entries: list[LexEntry]) -> LexEntry | None:
        """The entry a phrase stands for here (sizes that need a cue only after/before one)."""
        for e in entries:
            if e.kind is not ConstraintKind.size:
                return e
            phrase = " ".join(t.norm for t in toks[a:b])
            before = toks[a - 1].norm if a > 0 else None
            after = toks[b].norm if b < len(toks) else None
            if phrase in FREE_SIZES or before in SIZE_CUES_BEFORE or after in SIZE_CUES_AFTER:
                return e
        return None

    def _residual(self, toks: list[Token], text: str) -> str:
        words = [
            text[t.start : t.end] if t.corrected is None else t.corrected
            for t in toks
            if t.keep and t.kind != "sym"
        ]
        return " ".join(words).strip()


def _drop_fillers(toks: list[Token], a: int, b: int) -> None:
    """Leave the cue words around a removed constraint ("for men", "in size M") out of the residual."""
    j = a - 1
    while j >= 0 and toks[j].norm in FILLERS and not toks[j].used:
        toks[j].keep = False
        j -= 1
    if b < len(toks) and toks[b].norm in SIZE_CUES_AFTER and not toks[b].used:
        toks[b].keep = False


def _number(token: str) -> float | None:
    """``'1,000'`` -> 1000.0, ``'75,50'`` -> 75.5, ``'1e309'`` -> None (not finite)."""
    s = token
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    elif re.fullmatch(r"-?\d+,\d{1,2}", s):
        s = s.replace(",", ".")
    try:
        v = float(s.replace(",", ""))
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _price_problem(
    value: float | None, second: float | None, unknown: str | None, mode: str | None
) -> str | None:
    if unknown is not None:
        return f"unknown currency {unknown!r}"
    if mode == "range" and second is None:
        return "the upper end of the price range is not a finite number"
    for v in (value, second) if mode == "range" else (value,):
        if v is None:
            return "the price is not a finite number"
        if v < 0:
            return f"negative price {v:g}"
    if mode == "max" and value == 0:
        return "an upper price bound of 0 excludes every product"
    return None


def _price_label(lo: float | None, hi: float | None, currency: str | None) -> str:
    cur = f" {currency}" if currency else ""
    if lo is not None and hi is not None:
        return f"{lo:g}-{hi:g}{cur}"
    if hi is not None:
        return f"<= {hi:g}{cur}"
    return f">= {lo:g}{cur}"


def _apply_corrections(text: str, corrections: Sequence[Correction]) -> str:
    out, pos = [], 0
    for c in sorted(corrections, key=lambda c: c.start):
        out.append(text[pos : c.start])
        out.append(c.corrected)
        pos = c.end
    out.append(text[pos:])
    return "".join(out)
