"""Query understanding evaluation (``fittingroom eval queries``) and the relevance-floor calibration.

The query set (``tests/fittingroom/retrieval/data/queries.jsonl``, one JSON object a line):
``q`` the query, ``expect`` the expected constraints (``price``: ``{min, max, currency}``;
``color``, ``gender``, ``category``, ``brand``, ``size``: lists of canonical values; absent =
none), optionally ``corrected`` (the expected "showing results for" text), ``dropped`` (the
kinds expected to be dropped) and ``no_match`` (the catalog has nothing relevant).

Metrics:

* ``parse_accuracy``: share of queries whose every constraint, correction and dropped kind
  is as expected.
* ``violations``: top-10 results (over the ingested Luma + Saleor catalog) that break a
  parsed price, category or gender constraint, checked here from the product fields
  (``violation``), independently of the id filter that produced them.
* ``non_apparel``: top-10 results of garment queries whose garment category is ``other``
  (or unknown).
* ``no_match_flagged``: share of ``no_match`` queries whose page says ``no_good_match``;
  ``answerable_good``: share of the other queries with results whose first hit is a good match.

Relevance floor (``calibrate_floor``): on the Luma catalog, searched as served
(``Searcher.search_text``: constraints filter, the residual is embedded), *positive* scores
are those of the relevant hits in the top 10 of ``"<colour> <term>"`` queries (like the text
evaluation of ``fittingroom.retrieval.evaluation``, task 3, with every leaf category of Luma:
``luma_text_pairs``), *negative* scores those of the top
10 of the query set's ``no_match`` queries and of ``OFF_CATALOG_QUERIES``; the floor is the
threshold of the best balanced accuracy ((true positive rate + true negative rate) / 2),
in the middle of the lowest interval reaching it (``best_threshold``).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fittingroom.catalog.models import GarmentCategory, ImageRecord, Product
from fittingroom.retrieval.constraints import (
    effective_gender,
    gender_allows,
    image_garment,
    product_garment,
)
from fittingroom.retrieval.lexicon import ConstraintKind
from fittingroom.retrieval.query import ParsedQuery, QueryParser

#: Targets of issue 16.
QUERY_TARGETS: dict[str, float] = {"parse_accuracy": 0.95}
_LIST_KINDS = ("color", "gender", "category", "brand", "size")


@dataclass(frozen=True)
class QueryCase:
    q: str
    expect: dict[str, Any]
    corrected: str | None = None
    dropped: tuple[str, ...] = ()
    no_match: bool = False
    check_corrected: bool = False


def load_query_set(path: str | Path) -> list[QueryCase]:
    """Read the query set; ValueError naming the line of a bad record."""
    out = []
    p = Path(path)
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out.append(
                QueryCase(
                    q=str(rec["q"]),
                    expect=dict(rec.get("expect") or {}),
                    corrected=rec.get("corrected"),
                    dropped=tuple(rec.get("dropped") or ()),
                    no_match=bool(rec.get("no_match", False)),
                    check_corrected="corrected" in rec,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{p}:{n}: bad query record ({exc})") from exc
    return out


def parse_summary(parsed: ParsedQuery) -> dict[str, Any]:
    """The parse in the query set's ``expect`` format (empty kinds left out)."""
    got: dict[str, Any] = {}
    if parsed.of(ConstraintKind.price):
        lo, hi, cur = parsed.price_bounds()
        got["price"] = {"min": lo, "max": hi, "currency": cur}
    for kind in _LIST_KINDS:
        values = parsed.values(ConstraintKind(kind))
        if values:
            got[kind] = values
    return got


def _norm_expect(expect: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in expect.items():
        if not v:
            continue
        if k == "price":
            out[k] = {
                "min": None if v.get("min") is None else float(v["min"]),
                "max": None if v.get("max") is None else float(v["max"]),
                "currency": v.get("currency"),
            }
        else:
            out[k] = list(v)
    return out


def case_errors(case: QueryCase, parsed: ParsedQuery) -> list[str]:
    """What the parse got wrong (empty when every constraint is right)."""
    errors = []
    got, want = parse_summary(parsed), _norm_expect(case.expect)
    for kind in sorted(set(got) | set(want)):
        if got.get(kind) != want.get(kind):
            errors.append(f"{kind}: got {got.get(kind)}, want {want.get(kind)}")
    if case.check_corrected and parsed.corrected_text != case.corrected:
        errors.append(f"corrected: got {parsed.corrected_text!r}, want {case.corrected!r}")
    if sorted(d.kind for d in parsed.dropped) != sorted(case.dropped):
        errors.append(f"dropped: got {[d.kind for d in parsed.dropped]}, want {list(case.dropped)}")
    return errors


def violation(product: Product, parsed: ParsedQuery, image: ImageRecord | None = None) -> str | None:
    """Which parsed price / category / gender constraint ``product`` breaks, or None.

    With the hit's ``image``: its garment category (``image_garment``, the classifier's for a
    product nothing describes); unknown counts as ``other``."""
    lo, hi, cur = parsed.price_bounds()
    if parsed.of(ConstraintKind.price):
        if product.price is None:
            return "price: none"
        if (lo is not None and product.price < lo) or (hi is not None and product.price > hi):
            return f"price: {product.price}"
        if cur and (product.currency or "").upper() != cur:
            return f"currency: {product.currency}"
    cats = parsed.of(ConstraintKind.category)
    if cats:
        ok = False
        path = "/".join(product.category_path).lower()
        garment = hit_garment(product, image)
        for c in cats:
            if c.garment_category is not None:
                ok |= garment is c.garment_category
            elif c.apparel:
                ok |= garment is not GarmentCategory.other
            else:
                ok |= any(path == k or path.startswith(k + "/") for k in c.catalog_categories)
        if not ok:
            return f"category: {garment.value} {path}"
    genders = parsed.values(ConstraintKind.gender)
    if genders and not gender_allows(genders, effective_gender(product)):
        return f"gender: {effective_gender(product)}"
    return None


def hit_garment(product: Product, image: ImageRecord | None = None) -> GarmentCategory:
    """The garment category a hit shows (``image_garment`` with its image, else the
    product's); unknown is ``other``."""
    g = product_garment(product) if image is None else image_garment(product, image)
    return g if g is not None else GarmentCategory.other


@dataclass
class QueryReport:
    metrics: dict[str, float]
    counts: dict[str, int]
    failures: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        def clean(v: float) -> float | None:
            return None if isinstance(v, float) and math.isnan(v) else round(v, 4)

        return {
            **{k: clean(v) for k, v in self.metrics.items()},
            "counts": self.counts,
            "calibration": {k: clean(v) for k, v in self.calibration.items()},
            "parse_failures": self.failures,
            "violating_results": self.violations,
        }


def evaluate_parsing(parser: QueryParser, cases: Sequence[QueryCase]) -> tuple[float, list[dict[str, Any]]]:
    """``(parse accuracy, failures)``; each failure: query, errors."""
    failures = []
    for case in cases:
        errors = case_errors(case, parser.parse(case.q))
        if errors:
            failures.append({"q": case.q, "errors": errors})
    return (1 - len(failures) / len(cases)) if cases else math.nan, failures


def evaluate_queries(searcher: Any, cases: Sequence[QueryCase], *, k: int = 10) -> QueryReport:
    """Parse accuracy, constraint violations and non-apparel results with a ``Searcher``."""
    parser, _ = searcher.understanding()
    accuracy, failures = evaluate_parsing(parser, cases)
    n_viol = n_non_apparel = garment_queries = 0
    flagged = answerable_good = n_no_match = n_answerable = 0
    bad: list[dict[str, Any]] = []
    for case in cases:
        page = searcher.search_text(case.q, k=k)
        parsed = page.parsed
        for rank, h in enumerate(page.hits, 1):
            why = violation(h.product, parsed, h.image)
            if why:
                n_viol += 1
                bad.append({"q": case.q, "rank": rank, "id": h.product.uid, "why": why})
        if parsed.is_garment_query:
            garment_queries += 1
            n_non_apparel += sum(
                1 for h in page.hits if hit_garment(h.product, h.image) is GarmentCategory.other
            )
        if case.no_match:
            n_no_match += 1
            flagged += int(page.no_good_match)
        elif page.hits:
            n_answerable += 1
            answerable_good += int(page.hits[0].match in ("good", None))
    metrics = {
        "parse_accuracy": accuracy,
        "violations": float(n_viol),
        "non_apparel": float(n_non_apparel),
        "no_match_flagged": flagged / n_no_match if n_no_match else math.nan,
        "answerable_good": answerable_good / n_answerable if n_answerable else math.nan,
    }
    counts = {
        "queries": len(cases),
        "garment_queries": garment_queries,
        "no_match_queries": n_no_match,
        "answerable_with_results": n_answerable,
    }
    return QueryReport(metrics=metrics, counts=counts, failures=failures, violations=bad)


# ---- relevance floor -------------------------------------------------------------------------------
def best_threshold(positives: Sequence[float], negatives: Sequence[float]) -> tuple[float, float]:
    """``(threshold, balanced accuracy)``: scores >= threshold are called relevant.

    Balanced accuracy is constant between consecutive observed scores; the threshold is the
    middle of the lowest interval of the best accuracy (between the score below it and the
    first score it accepts). ValueError without positives or negatives.
    """
    if not positives or not negatives:
        raise ValueError("need positive and negative scores to calibrate")
    pos = np.sort(np.asarray(positives, dtype=np.float64))
    neg = np.sort(np.asarray(negatives, dtype=np.float64))
    scores = np.unique(np.concatenate([pos, neg]))
    best_i, best_acc = 0, -1.0
    for i, t in enumerate(scores):
        tpr = 1 - np.searchsorted(pos, t, side="left") / len(pos)
        tnr = np.searchsorted(neg, t, side="left") / len(neg)
        acc = float((tpr + tnr) / 2)
        if acc > best_acc + 1e-12:
            best_i, best_acc = i, acc
    lo = scores[best_i]
    below = scores[best_i - 1] if best_i > 0 else lo
    return round(float((lo + below) / 2), 4), best_acc


#: Queries for products a clothing catalog does not sell (negatives of the floor calibration).
OFF_CATALOG_QUERIES = (
    "laptop charger", "garden hose", "car tyres", "diamond ring", "silk tie", "kitchen knife set",
    "dog food", "office chair", "phone case", "bicycle helmet", "tennis racket", "coffee machine",
    "paint brush", "guitar strings", "baby stroller", "printer ink", "light bulb", "toothpaste",
    "umbrella", "board game", "cordless drill", "scented candle", "wine glasses", "sofa cushion",
)  # fmt: skip


def luma_text_pairs(luma: Sequence[Any]) -> dict[tuple[str, str], set[str]]:
    """``(colour, term) -> skus`` of Luma products offered in that colour that are of the term:
    terms are the ``&``-parts of the leaf category, singular; a product of a leaf of two
    parts ("Bras & Tanks") is of the part its title names ("Lucia Cross-Fit Bra": bra)."""
    pairs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for p in luma:  # fittingroom.retrieval.evaluation.LumaProduct
        if not p.category:
            continue
        parts = [t.strip() for t in p.category.split("/")[-1].lower().split("&") if t.strip()]
        title = p.name.lower()
        for part in parts:
            term = part[:-1] if part.endswith("s") and not part.endswith("ss") else part
            if len(parts) > 1 and term not in title:
                continue
            for color in p.colors_lc:
                pairs[(color, term)].add(p.sku)
    return dict(pairs)


def calibrate_floor(
    searcher: Any,
    luma_pairs: dict[tuple[str, str], set[str]],
    negatives: Sequence[str],
    *,
    source: str,
    k: int = 10,
) -> dict[str, float]:
    """Relevance floor of ``searcher``'s encoder for text queries (see the module docstring).

    ``luma_pairs``: ``(colour, term) -> relevant product ids`` (``luma_text_pairs``);
    ``negatives``: queries with nothing relevant in the catalog; searches restricted to
    ``source`` (the Luma products). Returns floor, balanced accuracy, score quantiles.
    """
    from fittingroom.catalog.store import ProductFilter

    flt = ProductFilter(source=source)
    pos: list[float] = []
    top1_pos: list[float] = []
    for (color, gtype), relevant in sorted(luma_pairs.items()):
        page = searcher.search_text(f"{color} {gtype}", k=k, flt=flt)
        scores = [h.score for h in page.hits if h.product.id in relevant]
        pos += scores
        if scores:
            top1_pos.append(max(scores))
    neg: list[float] = []
    top1_neg: list[float] = []
    for q in dict.fromkeys([*negatives, *OFF_CATALOG_QUERIES]):
        page = searcher.search_text(q, k=k, flt=flt)  # as served: constraints filter first
        neg += [h.score for h in page.hits]
        if page.hits:
            top1_neg.append(page.hits[0].score)
    floor, acc = best_threshold(pos, neg)
    by = defaultdict(float)
    by["floor"] = floor
    by["balanced_accuracy"] = acc
    by["positive_p05"] = float(np.percentile(pos, 5))
    by["positive_median"] = float(np.median(pos))
    by["negative_median"] = float(np.median(neg))
    by["negative_p95"] = float(np.percentile(neg, 95))
    by["answerable_top1_above_floor"] = (
        float(np.mean([s >= floor for s in top1_pos])) if top1_pos else math.nan
    )
    by["no_match_top1_below_floor"] = float(np.mean([s < floor for s in top1_neg])) if top1_neg else math.nan
    by["positive_hits"] = float(len(pos))
    by["negative_hits"] = float(len(neg))
    return dict(by)
