"""Parsed query constraints as an id filter inside the index search (``CatalogFacets``).

``CatalogFacets.from_products`` reads the catalog once per generation into per-image facets
(one row per image vector id) with inverted indexes; ``allowed_ids(parsed)`` turns a
``ParsedQuery`` into the int64 vector ids the index may return (``None`` when the query
has no constraint), which ``Searcher.search`` hands to the index's id selector, so a
filtered page is still full when enough products match.

Semantics (constraints of one kind are OR-ed, kinds are AND-ed):

* **price**: the product has a price within the bounds (inclusive); with a currency, the
  product is priced in it (no conversion). Products without a price never match.
* **category**: the image's garment category (``image_garment``: the product's, see
  ``product_garment``; for a product nothing describes, the classifier's reading of the image)
  equals the term's garment category; a catalog category outside the garment taxonomy
  (``juice``) matches its category path; ``clothes`` matches every apparel category (all but
  ``other``). Images of unknown garment (nothing describes the product, the image is not
  classified) are kept, ranked by the embedding.
* **brand**: the product's brand (case- and blank-insensitive).
* **gender** (``effective_gender``: ``Product.gender``, else a gender word of its category
  path or title): equal, or ``unisex``, or unknown.
* **colour** (``mask(parsed, color=True)`` only): the image's colour family is one the query
  names (families from the lexicon: the catalog's colour names plus the base synonyms, so
  "navy" finds "Blue"). Each image's family: its variant's colour, else the product's
  colours, else its title's colour words; images of unknown colour do not match.
  ``Searcher.search_text`` applies it only when at least one page of products matches
  (``product_count``), else ranks by the embedded colour words and reports the colour as
  relaxed. The colour words stay in the embedded text either way.
* **size**: the product is offered in the size; unknown sizes match.
* **apparel gate**: a query with a gender or size and no category keeps apparel only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from fittingroom.catalog._filters import brand_key, category_keys
from fittingroom.catalog.garments import garment_category_for
from fittingroom.catalog.models import GarmentCategory, ImageRecord, PhotoType, Product
from fittingroom.retrieval.lexicon import GENDERS, ConstraintKind, QueryLexicon, tokenize
from fittingroom.retrieval.query import ParsedQuery

#: Garment categories that are apparel (worn or carried): every one but ``other``.
APPAREL = frozenset(c for c in GarmentCategory if c is not GarmentCategory.other)

_GENDER_WORDS = {w: g for g, forms in GENDERS.items() for w in forms if " " not in w}
_FEED_GENDERS = {
    "boys": "kids",
    "girls": "kids",
    "kids": "kids",
    "men": "men",
    "women": "women",
    "unisex": "unisex",
}


def effective_gender(product: Product) -> str | None:
    """``men`` / ``women`` / ``unisex`` / ``kids`` from the product's gender, category path or
    title (in this order), or None when none says."""
    if product.gender:
        g = product.gender.strip().lower()
        return _FEED_GENDERS.get(g, _GENDER_WORDS.get(g, g))
    for text in (*product.category_path, product.title):
        for tok in tokenize(text):
            if tok.norm in _GENDER_WORDS:
                return _GENDER_WORDS[tok.norm]
    return None


def product_garment(product: Product) -> GarmentCategory:
    """The product's ``garment_category``, else the taxonomy's category of its path and title."""
    if product.garment_category is not None:
        return product.garment_category
    return garment_category_for(product.category_path, title=product.title)


#: Least probability of the eligibility classifier's garment category for it to place an image that
#: nothing else describes under a category constraint (``image_garment``).
CLASSIFIER_CATEGORY_FLOOR = 0.8


def garment_unknown(product: Product) -> bool:
    """Nothing says what ``product`` is: no category, no category path, a title naming no garment."""
    return (
        not product.category_path
        and product.garment_category in (None, GarmentCategory.other)
        and garment_category_for([], title=product.title) is GarmentCategory.other
    )


def _classifier_reading(image: ImageRecord) -> GarmentCategory | None:
    """The eligibility classifier's confident reading of ``image``: ``other`` for a photo it finds
    to be no garment photo, else its garment category at ``CLASSIFIER_CATEGORY_FLOOR`` or more
    (an unclassified image has probabilities None: its prediction is taken as is); None otherwise."""
    if image.photo_type is PhotoType.other:
        return GarmentCategory.other
    pred = image.garment_category_pred
    if pred is None:
        return None
    prob = (image.garment_category_probs or {}).get(pred.value)
    # a coin flip between two categories (a tee read 0.51 one-piece / 0.49 top) must not hide the
    # product from either: below the floor the image stays unknown, kept and ranked by the embedding
    return pred if prob is None or prob >= CLASSIFIER_CATEGORY_FLOOR else None


#: Readings that overrule an apparel product's own category for one of its images: a shop's
#: wrong photo (a tote bag among a bra top's colour photos, as in the Luma sample data) must not
#: answer a garment query.
_NOT_APPAREL = (GarmentCategory.bag_accessory, GarmentCategory.other)


def image_garment(product: Product, image: ImageRecord) -> GarmentCategory | None:
    """The garment category one image of ``product`` shows, or None when unknown.

    The product's (``product_garment``) when its feed says what it is, except for an image the
    eligibility classifier confidently reads as no garment (``photo_type`` ``other``, or
    ``bag_accessory`` / ``other`` at ``CLASSIFIER_CATEGORY_FLOOR`` or more) while the product is a
    garment: that reading wins. For a product nothing describes, the classifier's confident
    reading (``_classifier_reading``); None (unknown) when it is unsure or the image is not
    classified.
    """
    if not garment_unknown(product):
        own = product_garment(product)
        if own in _NOT_APPAREL:
            return own
        reading = _classifier_reading(image)
        return reading if reading in _NOT_APPAREL else own
    return _classifier_reading(image)


def gender_allows(wanted: Iterable[str], gender: str | None) -> bool:
    """The gender rule above: unknown and unisex products match every wanted gender."""
    return gender is None or gender == "unisex" or gender in set(wanted)


@dataclass
class CatalogFacets:
    """Per-image facets of one catalog generation (row ``i`` = ``vector_ids[i]``)."""

    vector_ids: np.ndarray  # int64 (N,)
    price: np.ndarray  # float64 (N,), NaN = no price
    currency: np.ndarray  # object (N,), upper-case code or ""
    garment: np.ndarray  # object (N,), GarmentCategory value or ""
    index: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (facet, value) -> rows
    unknown: dict[str, np.ndarray] = field(default_factory=dict)  # facet -> bool (N,) unknown
    product_row: np.ndarray | None = None  # int64 (N,): ordinal of the image's product

    @classmethod
    def from_products(cls, products: Iterable[Product], lexicon: QueryLexicon) -> CatalogFacets:
        """Facets of every image of ``products``; colours mapped to families with ``lexicon``."""
        vids: list[int] = []
        price: list[float] = []
        currency: list[str] = []
        garment: list[str] = []
        rows: dict[tuple[str, str], list[int]] = defaultdict(list)
        unknown: dict[str, list[bool]] = {"color": [], "size": [], "gender": [], "garment": []}
        prow: list[int] = []
        for pi, p in enumerate(products):
            pfam = _families(p.colors, lexicon)
            tfam = _families([p.title], lexicon, words=True) if not pfam else set()
            gender = effective_gender(p)
            sizes = {s.strip().upper() for s in p.sizes if s.strip()}
            keys = category_keys(p)
            bkey = brand_key(p.brand)
            for img in p.images:
                # nothing says what it is, not even the classifier: unknown, kept under a
                # category constraint like unknown gender or size (ranked by the embedding)
                igarment = image_garment(p, img)
                r = len(vids)
                vids.append(img.vector_id)
                prow.append(pi)
                price.append(float(p.price) if p.price is not None else np.nan)
                currency.append((p.currency or "").upper())
                garment.append(igarment.value if igarment is not None else "")
                fams = _families([img.color], lexicon) if img.color else (pfam or tfam)
                for f in fams:
                    rows[("color", f)].append(r)
                for s in sizes:
                    rows[("size", s)].append(r)
                for k in keys:
                    rows[("category", k)].append(r)
                if gender:
                    rows[("gender", gender)].append(r)
                if bkey:
                    rows[("brand", bkey)].append(r)
                unknown["color"].append(not fams)
                unknown["size"].append(not sizes)
                unknown["gender"].append(gender is None or gender == "unisex")
                unknown["garment"].append(igarment is None)
        return cls(
            vector_ids=np.asarray(vids, dtype=np.int64),
            price=np.asarray(price, dtype=np.float64),
            currency=np.asarray(currency, dtype=object),
            garment=np.asarray(garment, dtype=object),
            index={k: np.asarray(v, dtype=np.int64) for k, v in rows.items()},
            unknown={k: np.asarray(v, dtype=bool) for k, v in unknown.items()},
            product_row=np.asarray(prow, dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.vector_ids)

    def _rows(self, facet: str, values: Iterable[str]) -> np.ndarray:
        mask = np.zeros(len(self), dtype=bool)
        for v in values:
            rows = self.index.get((facet, v))
            if rows is not None:
                mask[rows] = True
        return mask

    def color_rows(self, family: str) -> np.ndarray:
        """bool (N,): the images of colour ``family`` (e.g. ``"blue"``; unknown family: none)."""
        return self._rows("color", [family])

    def mask(self, parsed: ParsedQuery, *, color: bool = False) -> np.ndarray | None:
        """bool (N,) of the images ``parsed`` allows, or None when it has no constraint.

        ``color``: also keep only images of a colour family the query names (when it names one).
        """
        masks: list[np.ndarray] = []
        colors = parsed.of(ConstraintKind.color)
        if color and colors:
            masks.append(self._rows("color", {c.family or c.value for c in colors}))
        lo, hi, cur = parsed.price_bounds()
        if parsed.of(ConstraintKind.price):
            with np.errstate(invalid="ignore"):
                m = ~np.isnan(self.price)
                if lo is not None:
                    m &= self.price >= lo
                if hi is not None:
                    m &= self.price <= hi
            if cur:
                m &= self.currency == cur
            masks.append(m)
        cats = parsed.of(ConstraintKind.category)
        if cats:
            m = np.zeros(len(self), dtype=bool)
            for c in cats:
                if c.garment_category is not None:
                    m |= self.garment == c.garment_category.value
                elif c.apparel:
                    m |= np.isin(self.garment, [g.value for g in APPAREL])
                else:
                    m |= self._rows("category", c.catalog_categories)
            masks.append(m | self.unknown["garment"])
        elif parsed.of(ConstraintKind.gender) or parsed.of(ConstraintKind.size):
            masks.append(np.isin(self.garment, [g.value for g in APPAREL]) | self.unknown["garment"])
        brands = parsed.values(ConstraintKind.brand)
        if brands:
            masks.append(self._rows("brand", [k for b in brands if (k := brand_key(b))]))
        genders = parsed.values(ConstraintKind.gender)
        if genders:
            masks.append(self._rows("gender", genders) | self.unknown["gender"])
        sizes = parsed.values(ConstraintKind.size)
        if sizes:
            masks.append(self._rows("size", sizes) | self.unknown["size"])
        if not masks:
            return None
        out = masks[0]
        for m in masks[1:]:
            out = out & m
        return out

    def allowed_ids(self, parsed: ParsedQuery, *, color: bool = False) -> np.ndarray | None:
        """int64 vector ids ``parsed`` allows (possibly empty), or None when it has no constraint
        (``color``: see ``mask``)."""
        m = self.mask(parsed, color=color)
        return None if m is None else self.vector_ids[m]

    def product_count(self, mask: np.ndarray | None) -> int:
        """Distinct products among the images of ``mask`` (bool (N,); None: all images)."""
        rows = self.product_row if self.product_row is not None else np.arange(len(self))
        return int(len(np.unique(rows if mask is None else rows[mask])))


def _families(texts: Iterable[str | None], lexicon: QueryLexicon, *, words: bool = False) -> set[str]:
    """Colour families named by ``texts`` (whole colour names, or any colour word with ``words``)."""
    out: set[str] = set()
    for text in texts:
        if not text:
            continue
        toks = tuple(t.norm for t in tokenize(text) if t.kind == "word")
        spans = [toks[i : i + n] for n in (2, 1) for i in range(len(toks) - n + 1)] if words else [toks]
        for span in spans:
            for e in lexicon.phrases.get(span, []):
                if e.kind is ConstraintKind.color:
                    out.add(e.family or e.value)
    return out
