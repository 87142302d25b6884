"""``fittingroom parse`` and the crawl command's argument checks."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from crawler_helpers import run_cli


@pytest.mark.real_data
def test_parse_prints_the_product(fur_site: Path, tmp_path: Path) -> None:
    page = tmp_path / "giraffe.html.gz"
    page.write_bytes(gzip.compress((fur_site / "products" / "giraffe" / "index.html").read_bytes()))
    proc = run_cli(["parse", str(page), "--url", "http://127.0.0.1:9/products/giraffe/"], None)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["name"], out["sku"], out["price"], out["currency"]) == (
        "Gerald the Giraffe",
        "giraffe",
        9.0,
        "USD",
    )
    assert out["images"] == ["http://127.0.0.1:9/images/products/giraffe/green.jpg"]
    assert out["availability"] == "in_stock" and out["colors"] == ["Green"]


def test_parse_errors(tmp_path: Path) -> None:
    missing = run_cli(["parse", str(tmp_path / "nope.html"), "--url", "https://s/x"], None)
    assert missing.returncode == 2 and "nope.html: file not found" in missing.stderr
    about = tmp_path / "about.html"
    about.write_text("<html><body><h1>About us</h1></body></html>")
    proc = run_cli(["parse", str(about), "--url", "https://s/about"], None)
    assert proc.returncode == 1 and "no product found" in proc.stderr
    bad_rules = tmp_path / "rules.toml"
    bad_rules.write_text('[[site]]\nname = "x"\n')
    proc = run_cli(["parse", str(about), "--url", "https://s/about", "--rules", str(bad_rules)], None)
    assert proc.returncode == 2 and "give 'domains' or 'detect'" in proc.stderr


def test_crawl_rejects_bad_input(tmp_path: Path) -> None:
    proc = run_cli(["crawl", "ftp://shop.example/"], None)
    assert proc.returncode == 2 and "not an http(s) URL" in proc.stderr
    proc = run_cli(["crawl", "https://shop.example/", "--shop", "bad:name"], None)
    assert proc.returncode == 2 and "invalid source name" in proc.stderr
