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
exactly (schema.org name). ``name`` is presence of a non-empty product name over
all pages. The baseline reads only the first schema.org Product's
``offers.price`` / ``sku`` / ``brand`` with extruct (the floor in the issue).
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

FIELDS = ("price", "currency", "sku", "brand", "availability", "name")
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


@dataclass
class PageResult:
    page_id: str
    url: str
    fashion: bool
    predicted: dict[str, Any]
    correct: dict[str, bool]  # field -> correct (only fields the ground truth has, plus name)
    baseline: dict[str, bool] = field(default_factory=dict)
    error: str | None = None


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


def evaluate_page(page: Page, *, with_baseline: bool = True) -> PageResult:
    from crawler.extract.page import parse_page

    html = page.html()
    try:
        parsed = parse_page(html, page.url, assume_product=True)
        item = parsed.product
        pred = {
            "price": item.price if item else None,
            "currency": item.currency if item else None,
            "sku": item.sku if item else None,
            "brand": item.brand if item else None,
            "availability": item.availability.schema_org if item and item.availability else None,
            "name": item.name if item else None,
        }
        error = None
    except ValueError as exc:
        pred, error = {}, str(exc)
    res = PageResult(
        page.page_id, page.url, page.fashion, pred, score_fields(pred, page.truth, page.url), error=error
    )
    if with_baseline:
        base = baseline_prediction(html, page.url)
        res.baseline = {
            k: v for k, v in score_fields(base, page.truth, page.url).items() if k in BASELINE_FIELDS
        }
    return res


@dataclass
class Report:
    """Accuracy per field, overall and on the fashion-shop subset."""

    results: list[PageResult]
    seconds: float

    def summary(self, subset: Callable[[PageResult], bool] = lambda r: True) -> dict[str, Any]:
        rs = [r for r in self.results if subset(r)]
        out: dict[str, Any] = {"pages": len(rs)}
        for f in FIELDS:
            scored = [r.correct[f] for r in rs if f in r.correct]
            out[f] = {"n": len(scored), "accuracy": round(sum(scored) / len(scored), 3) if scored else None}
            if f in BASELINE_FIELDS:
                base = [r.baseline[f] for r in rs if f in r.baseline]
                out[f]["baseline"] = round(sum(base) / len(base), 3) if base else None
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": self.summary(),
            "fashion": self.summary(lambda r: r.fashion),
            "seconds": round(self.seconds, 1),
            "seconds_per_page": round(self.seconds / max(1, len(self.results)), 3),
        }


def run_eval(pages_dir: Path, *, with_baseline: bool = True, progress: bool = False) -> Report:
    """Evaluate the parser on every page of ``pages_dir``."""
    pages = load_pages(pages_dir)
    t0 = time.perf_counter()
    it: Any = pages
    if progress:
        from tqdm import tqdm

        it = tqdm(pages, desc="pages", unit="page", disable=None)  # no bar when not on a terminal
    results = [evaluate_page(p, with_baseline=with_baseline) for p in it]
    return Report(results, time.perf_counter() - t0)
