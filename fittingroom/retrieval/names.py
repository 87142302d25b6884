"""Forgiving brand and category filters: a filter value that names no brand (category) of the
catalog exactly is read as the closest known name (rapidfuzz), and the known names are listed
for the page to suggest.

Exact means equal after the catalog filters' own normalisation (``brand_key``: case and blanks;
``normalize_category``: case, blanks, ``/`` or ``>`` separators), so a value that filters today
keeps filtering the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz, process, utils

from fittingroom.catalog._filters import brand_key, category_keys, normalize_category
from fittingroom.catalog.models import Product

#: Lowest WRatio (0-100) at which a misspelt name is read as a known one.
MATCH_CUTOFF = 80.0
#: Lowest WRatio of the names suggested when nothing matches.
SUGGEST_CUTOFF = 50.0
#: Shorter values are only matched exactly (a partial match of one letter is in every name).
MIN_FUZZY_CHARS = 3


@dataclass(frozen=True)
class NameMatch:
    """How one filter value was read: ``used`` is the known name applied (None: none close enough),
    ``suggestions`` the closest known names (best first, at most 3) when ``used`` is None;
    ``exact`` when the value names ``used`` up to the filters' normalisation (nothing to say)."""

    given: str
    used: str | None
    suggestions: tuple[str, ...] = ()
    exact: bool = False


@dataclass(frozen=True)
class KnownNames:
    """The brand names (as the feeds spell them) and category keys (lower-case path elements and
    sub-paths, garment categories) of one catalog; sorted, unique."""

    brands: tuple[str, ...]
    categories: tuple[str, ...]

    @classmethod
    def from_products(cls, products: Iterable[Product]) -> KnownNames:
        brands: dict[str, str] = {}
        categories: set[str] = set()
        for p in products:
            key = brand_key(p.brand)
            if key is not None and p.brand is not None:
                brands.setdefault(key, " ".join(p.brand.split()))
            categories.update(category_keys(p))
        return cls(tuple(sorted(brands.values(), key=str.lower)), tuple(sorted(categories)))

    @property
    def category_names(self) -> tuple[str, ...]:
        """The single-element categories (no sub-paths): what a page suggests."""
        return tuple(c for c in self.categories if "/" not in c)

    def match_brand(self, value: str) -> NameMatch:
        """``value`` read as a brand of the catalog."""
        key = brand_key(value)
        exact = next((b for b in self.brands if brand_key(b) == key), None)
        if exact is not None:
            return NameMatch(value, exact, exact=True)
        return _closest(value, self.brands)

    def match_category(self, value: str) -> NameMatch:
        """``value`` read as a category key of the catalog (its normalised form when exact)."""
        key = normalize_category(value)
        if key in self.categories:
            return NameMatch(value, key, exact=True)
        return _closest(key, self.categories, given=value)


def _closest(value: str, choices: tuple[str, ...], given: str | None = None) -> NameMatch:
    given = value if given is None else given
    if len(utils.default_process(value)) < MIN_FUZZY_CHARS:
        return NameMatch(given, None)
    best = process.extractOne(
        value, choices, scorer=fuzz.WRatio, processor=utils.default_process, score_cutoff=MATCH_CUTOFF
    )
    if best is not None:
        return NameMatch(given, best[0])
    near = process.extract(
        value,
        choices,
        scorer=fuzz.WRatio,
        processor=utils.default_process,
        score_cutoff=SUGGEST_CUTOFF,
        limit=3,
    )
    return NameMatch(given, None, tuple(n[0] for n in near))
