"""Extraction evaluation: the scoring rules on a tiny benchmark, and the targets on the real one."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
from crawler_helpers import run_cli

from crawler.evaluation import currency_matches, price_matches, run_eval


def test_scoring_rules() -> None:
    assert price_matches(1299.0, ["1.299,00"]) and price_matches(23450.0, ["23.450"])
    assert not price_matches(12.0, ["12.50"]) and not price_matches(None, ["1"])
    assert currency_matches("CAD", ["$"], "https://www.bestbuy.ca/x")  # any dollar for a bare "$"
    assert currency_matches("EUR", ["€"], "https://x.fi/") and not currency_matches(
        "USD", ["€"], "https://x/"
    )


def _tiny_benchmark(folder: Path) -> None:
    (folder / "html").mkdir(parents=True)
    pages = {
        "a1": (
            "https://shop.example/a",
            {
                "@type": "Product",
                "name": "A",
                "sku": "SKU-A",
                "brand": "Acme",
                "offers": {
                    "price": "10.00",
                    "priceCurrency": "EUR",
                    "availability": "http://schema.org/InStock",
                },
            },
        ),
        "b2": (
            "https://shop.example/b",
            {
                "@type": "Product",
                "name": "B",
                "sku": "WRONG",
                "offers": {"price": "5", "priceCurrency": "USD"},
            },
        ),
    }
    truth = {
        "a1": {
            "url": pages["a1"][0],
            "price": ["10"],
            "currency": ["€"],
            "sku": ["SKU-A"],
            "brand": ["ACME"],
            "availability": ["InStock"],
        },
        "b2": {"url": pages["b2"][0], "price": ["7"], "sku": ["B-1"], "availability": ["OutOfStock"]},
    }
    for pid, (_, data) in pages.items():
        html = f'<html><head><script type="application/ld+json">{json.dumps(data)}</script></head></html>'
        (folder / "html" / f"{pid}.html.gz").write_bytes(gzip.compress(html.encode()))
    (folder / "ground-truth.json").write_text(json.dumps(truth))
    with (folder / "index.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "url", "fashion_shop"])
        w.writerow(["html/a1.html.gz", pages["a1"][0], "True"])
        w.writerow(["html/b2.html.gz", pages["b2"][0], "False"])


def test_tiny_benchmark(tmp_path: Path) -> None:
    _tiny_benchmark(tmp_path)
    result = run_eval(tmp_path).to_json()
    overall, fashion = result["overall"], result["fashion"]
    assert overall["pages"] == 2 and fashion["pages"] == 1
    assert overall["price"] == {"n": 2, "accuracy": 0.5, "baseline": 0.5}
    assert overall["sku"]["accuracy"] == 0.5 and overall["brand"] == {
        "n": 1,
        "accuracy": 1.0,
        "baseline": 1.0,
    }
    assert overall["currency"] == {"n": 1, "accuracy": 1.0}
    assert overall["availability"]["accuracy"] == 0.5  # b2 has a price and no stock statement: in stock
    assert fashion["price"]["accuracy"] == 1.0

    proc = run_cli(["eval", "extraction", "--pages", str(tmp_path), "--json"], env=None)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["overall"]["price"]["accuracy"] == 0.5
    missing = run_cli(["eval", "extraction", "--pages", str(tmp_path / "nope")], env=None)
    assert missing.returncode == 2 and "ground-truth.json" in missing.stderr


@pytest.mark.real_data
def test_zyte_benchmark_meets_targets(pages_dir: Path) -> None:
    """Targets: price >= 0.85, sku >= 0.75, brand >= 0.75, availability >= 0.85 (floor 0.55/0.43/0.45)."""
    report = run_eval(pages_dir / "zyte-benchmark", with_baseline=False)
    overall = report.summary()
    assert overall["pages"] == 98
    assert overall["price"]["accuracy"] >= 0.85
    assert overall["sku"]["accuracy"] >= 0.75
    assert overall["brand"]["accuracy"] >= 0.75
    assert overall["availability"]["accuracy"] >= 0.85
    assert overall["name"]["accuracy"] >= 0.95
    fashion = report.summary(lambda r: r.fashion)
    assert fashion["pages"] == 14
    assert min(fashion[f]["accuracy"] for f in ("price", "sku", "brand", "availability")) >= 0.85
