"""Extraction accuracy on saved product pages with ground truth.

Data format (that of ``../shared/data/product-pages/zyte-benchmark``, the Zyte
article-extraction benchmark):

- ``ground-truth.json``: ``{page_id: {"url": ..., "price": [...], "currency": [...],
  "sku": [...], "brand": [...], "availability": ["InStock"|"OutOfStock"], ...}}``;
  every field is a list of accepted values, a missing field means "not on the page".
- ``html/<page_id>.html.gz`` (or ``.html``): the saved page.
- ``index.csv`` (optional): columns ``path``, ``url``, ``fashion_shop`` (True/False)
  mark the fashion-shop subset.

Per field, accuracy = correct / pages whose ground truth has the field:
price matches numerically (to the cent, ground truth read with price-parser),
currency by ISO code (a ground-truth "$" accepts any dollar/peso code, "Rs" any
rupee, "kr" any krona), sku and brand case- and space-insensitively, availability
exactly (schema.org name), gtin by its digits (leading zeros ignored: a GTIN-13 equals
its GTIN-14 form). ``name`` is presence of a non-empty product name over all pages.
The baseline reads only the first schema.org Product's ``offers.price`` / ``sku`` /
``brand`` with extruct (the floor in the issue).

Leave-one-shop-out (``run_eval(..., leave_one_shop_out=True)``): every page is parsed
with the site rules less those keyed to its own shop (``SiteRules.without_shop``; a
shop is ``crawler.site_rules.shop_key`` of the URL, so ``amazon.fr`` and ``amazon.it``
are one shop). The figures then say what a shop the rules were never derived from gets.
Besides the page-level ``accuracy`` (``acc``), ``shop_acc`` averages the per-shop
accuracies, so a shop with many saved pages weighs as much as one with a single page.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIELDS = ("price", "currency", "sku", "brand", "availability", "gtin", "name")
BASELINE_FIELDS = ("price", "sku", "brand")

_DOLLARS = {"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "TWD", "MXN", "CLP", "ARS", "COP", "UYU", "BRL"}
_FAMILIES = {"$": _DOLLARS, "rs": {"INR", "PKR", "LKR", "NPR"}, "kr": {"SEK", "DKK", "NOK", "ISK"}}


@dataclass
class Page:
    page_id: str
    url: str
    path: Path
    truth: dict[str, Any]
    fashion: bool = False

    def html(self) -> bytes:
        data = self.path.read_bytes()
        return gzip.decompress(data) if self.path.suffix == ".gz" else data

    @property
    def shop(self) -> str:
        from crawler.site_rules import shop_key

        return shop_key(self.url)


@dataclass
class PageResult:
    page_id: str
    url: str
    fashion: bool
    predicted: dict[str, Any]
    correct: dict[str, bool]  # field -> correct (only fields the ground truth has, plus name)
    baseline: dict[str, bool] = field(default_factory=dict)
    error: str | None = None
    shop: str = ""
    sources: dict[str, str] = field(default_factory=dict)  # field -> where the value came from


def load_pages(pages_dir: Path) -> list[Page]:
    """Read a benchmark folder; raises FileNotFoundError naming what is missing."""
    gt_path = pages_dir / "ground-truth.json"
    if not gt_path.is_file():
        raise FileNotFoundError(f"{gt_path}: no ground-truth.json in the pages folder")
    truth = json.loads(gt_path.read_text(encoding="utf-8"))
    fashion: dict[str, bool] = {}
    index = pages_dir / "index.csv"
    if index.is_file():
        with index.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                pid = Path(row["path"]).name.split(".")[0]
                fashion[pid] = row.get("fashion_shop", "").strip().lower() == "true"
    pages = []
    for pid, gt in sorted(truth.items()):
        for cand in (pages_dir / "html" / f"{pid}.html.gz", pages_dir / "html" / f"{pid}.html"):
            if cand.is_file():
                pages.append(Page(pid, gt["url"], cand, gt, fashion.get(pid, False)))
                break
        else:
            raise FileNotFoundError(f"{pages_dir / 'html'}: no saved page for ground-truth id {pid}")
    return pages


def _norm(s: Any) -> str:
    return re.sub(r"\s+", " ", str(s)).replace("®", "").replace("™", "").strip().lower()


def price_matches(pred: float | None, truth: list[str]) -> bool:
    from fittingroom.values import parse_price

    if pred is None:
        return False
    for t in truth:
        p = parse_price(str(t))
        if p.amount is not None and abs(p.amount - pred) < 0.005:
            return True
    return False


def currency_matches(pred: str | None, truth: list[str], url: str) -> bool:
    from fittingroom.values import currency_code

    if not pred:
        return False
    for t in truth:
        key = str(t).strip().rstrip("~").strip().lower().rstrip(".")
        if key in _FAMILIES and pred in _FAMILIES[key]:
            return True
        if currency_code(t, url) == pred:
            return True
    return False


def _gtin_digits(value: Any) -> str:
    return re.sub(r"\D", "", str(value)).lstrip("0")


def gtin_matches(pred: str | None, truth: list[str]) -> bool:
    """Same GTIN digits (leading zeros ignored: GTIN-12/13/14 forms of one number match)."""
    if not pred or not _gtin_digits(pred):
        return False
    return _gtin_digits(pred) in {_gtin_digits(t) for t in truth}


def score_fields(pred: dict[str, Any], truth: dict[str, Any], url: str) -> dict[str, bool]:
    """Per-field correctness of one prediction (only fields present in ``truth``, plus ``name``)."""
    out: dict[str, bool] = {}
    if truth.get("price"):
        out["price"] = price_matches(pred.get("price"), truth["price"])
    if truth.get("currency"):
        out["currency"] = currency_matches(pred.get("currency"), truth["currency"], url)
    for f in ("sku", "brand"):
        if truth.get(f):
            out[f] = pred.get(f) is not None and _norm(pred[f]) in {_norm(x) for x in truth[f]}
    if truth.get("availability"):
        out["availability"] = pred.get("availability") in set(truth["availability"])
    if truth.get("gtin"):
        out["gtin"] = gtin_matches(pred.get("gtin"), truth["gtin"])
    out["name"] = bool(pred.get("name"))
    return out


def baseline_prediction(html: bytes, url: str) -> dict[str, Any]:
    """The floor: first schema.org Product (extruct, uniform), its offers.price, sku and brand."""
    import extruct

    from crawler.extract.fields import parse_price

    try:
        data = extruct.extract(
            html, base_url=url, syntaxes=["json-ld", "microdata", "rdfa"], uniform=True, errors="ignore"
        )
    except Exception:  # the floor is allowed to fail on odd pages
        return {}
    for syntax in ("json-ld", "microdata", "rdfa"):
        for it in data.get(syntax, []):
            types = it.get("@type")
            types = types if isinstance(types, list) else [types]
            if not any(str(t).rsplit("/", 1)[-1] == "Product" for t in types):
                continue
            offers = it.get("offers")
            offer = offers[0] if isinstance(offers, list) and offers else offers
            price = offer.get("price") if isinstance(offer, dict) else None
            brand = it.get("brand")
            if isinstance(brand, dict):
                brand = brand.get("name")
            if isinstance(brand, list):
                brand = brand[0] if brand else None
            return {"price": parse_price(price)[0], "sku": it.get("sku"), "brand": brand}
    return {}


def evaluate_page(page: Page, *, with_baseline: bool = True, rules: Any | None = None) -> PageResult:
    """Parse one page (with ``rules``, a ``SiteRules``; None = the bundled ones) and score it."""
    from crawler.extract.page import parse_page

    html = page.html()
    sources: dict[str, str] = {}
    try:
        parsed = parse_page(html, page.url, rules=rules, assume_product=True)
        item = parsed.product
        sources = dict(item.sources) if item else {}
        pred = {
            "price": item.price if item else None,
            "currency": item.currency if item else None,
            "sku": item.sku if item else None,
            "brand": item.brand if item else None,
            "availability": item.availability.schema_org if item and item.availability else None,
            "gtin": item.gtin if item else None,
            "name": item.name if item else None,
        }
        error = None
    except ValueError as exc:
        pred, error = {}, str(exc)
    res = PageResult(
        page.page_id,
        page.url,
        page.fashion,
        pred,
        score_fields(pred, page.truth, page.url),
        error=error,
        shop=page.shop,
        sources=sources,
    )
    if with_baseline:
        base = baseline_prediction(html, page.url)
        res.baseline = {
            k: v for k, v in score_fields(base, page.truth, page.url).items() if k in BASELINE_FIELDS
        }
    return res


@dataclass
class Report:
    """Accuracy per field, overall and on the fashion-shop subset.

    ``mode`` is ``"normal"`` or ``"leave-one-shop-out"`` (see the module docstring).
    """

    results: list[PageResult]
    seconds: float
    mode: str = "normal"

    def summary(
        self, subset: Callable[[PageResult], bool] = lambda r: True, *, extended: bool = False
    ) -> dict[str, Any]:
        """``{"pages": int, "shops": int, <field>: {"n", "accuracy"[, "baseline"]}}``; ``extended``
        adds ``"acc"`` (= ``accuracy``) and ``"shop_acc"`` (mean of per-shop accuracies) per field.
        Accuracies are fractions in [0, 1] rounded to 3 places, None where no page has the field."""
        rs = [r for r in self.results if subset(r)]
        out: dict[str, Any] = {"pages": len(rs), "shops": len({r.shop for r in rs})}
        for f in FIELDS:
            scored = [r.correct[f] for r in rs if f in r.correct]
            acc = round(sum(scored) / len(scored), 3) if scored else None
            per_shop: dict[str, list[bool]] = {}
            for r in rs:
                if f in r.correct:
                    per_shop.setdefault(r.shop, []).append(r.correct[f])
            shop_acc = (
                round(sum(sum(v) / len(v) for v in per_shop.values()) / len(per_shop), 3)
                if per_shop
                else None
            )
            out[f] = {"n": len(scored), "accuracy": acc}
            if extended:
                out[f] |= {"acc": acc, "shop_acc": shop_acc}
            if f in BASELINE_FIELDS:
                base = [r.baseline[f] for r in rs if f in r.baseline]
                out[f]["baseline"] = round(sum(base) / len(base), 3) if base else None
        return out

    def by_source(self) -> dict[str, dict[str, dict[str, int]]]:
        """Per field, per source of the predicted value (``json-ld``, ``heuristic``, ``url``,
        ``rule:<site>``...): ``{"n": pages, "correct": pages, "shops": distinct shops correct}``.
        A source right on a single shop only is a rule that does not generalise."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for f in FIELDS:
            if f == "name":
                continue
            per: dict[str, dict[str, Any]] = {}
            for r in self.results:
                if f not in r.correct or r.predicted.get(f) is None:
                    continue
                src = r.sources.get(f, "?")
                d = per.setdefault(src, {"n": 0, "correct": 0, "shops": set()})
                d["n"] += 1
                if r.correct[f]:
                    d["correct"] += 1
                    d["shops"].add(r.shop)
            out[f] = {k: {**v, "shops": len(v["shops"])} for k, v in sorted(per.items())}
        return out

    def to_json(self, *, extended: bool = False) -> dict[str, Any]:
        """The metrics as JSON (``extended``: see ``summary``; the CLI's ``--json`` is extended)."""
        return {
            "mode": self.mode,
            "overall": self.summary(extended=extended),
            "fashion": self.summary(lambda r: r.fashion, extended=extended),
            "by_source": self.by_source(),
            "seconds": round(self.seconds, 1),
            "seconds_per_page": round(self.seconds / max(1, len(self.results)), 3),
        }


def run_eval(
    pages_dir: Path,
    *,
    with_baseline: bool = True,
    progress: bool = False,
    leave_one_shop_out: bool = False,
    rules: Any | None = None,
) -> Report:
    """Evaluate the parser on every page of ``pages_dir``.

    ``rules``: the ``SiteRules`` to parse with (None = the bundled ones). With
    ``leave_one_shop_out`` each page is parsed without the rules keyed to its own shop.
    Raises FileNotFoundError when the folder lacks ground truth or a saved page.
    """
    from crawler.site_rules import load_rules

    pages = load_pages(pages_dir)
    all_rules = rules if rules is not None else load_rules()
    t0 = time.perf_counter()
    it: Any = pages
    if progress:
        from tqdm import tqdm

        it = tqdm(pages, desc="pages", unit="page", disable=None)  # no bar when not on a terminal
    results = [
        evaluate_page(
            p,
            with_baseline=with_baseline,
            rules=all_rules.without_shop(p.url) if leave_one_shop_out else all_rules,
        )
        for p in it
    ]
    return Report(results, time.perf_counter() - t0, "leave-one-shop-out" if leave_one_shop_out else "normal")
