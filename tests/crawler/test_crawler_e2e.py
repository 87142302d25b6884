"""End to end: crawl the Fur storefront on 127.0.0.1 into a temporary catalog, then search it.

Uses the real ingest (``catalog_ingest``), the default offline encoder (real weights from
the package registries) and ``fittingroom search``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from crawler_helpers import crawl_json, crawler_env, run_cli

from fittingroom.catalog.store import open_store

pytestmark = [pytest.mark.real_data, pytest.mark.real_model]

FUR = {"deer": 4, "elephant": 2, "giraffe": 1, "hog": 3, "lion": 1, "tiger": 5}


def test_fur_storefront_into_the_catalog_and_searchable(tmp_path: Path, fur_site: Path, serve_dir) -> None:
    if importlib.util.find_spec("fittingroom.models.encoders.offline") is None:
        pytest.skip("the offline encoder (fittingroom.models.encoders.offline) is not in this checkout")
    base = serve_dir(fur_site)
    db = tmp_path / "catalog.db"
    env = crawler_env(
        tmp_path / "home", FITTINGROOM_STORE_URI=f"sqlite:///{db}", FITTINGROOM_ENCODER="offline"
    )

    summary = crawl_json([base, "--shop", "fur"], env, timeout=1200)
    assert summary["products"] == 6
    assert summary["catalog"]["new"] == 6 and summary["catalog"]["embedded"] == 16
    assert summary["catalog"].get("bad_rows", 0) == 0
    # each image fetched once (by the crawler) and stored once: the catalog's content-addressed
    # cache holds the crawler's own files (hard links), and no temporary JSONL feed was written
    image_gets = [p for p in serve_dir.paths[base] if p.startswith("/images/")]
    assert len(image_gets) == len(set(image_gets)) == 16
    crawled = list((tmp_path / "home" / "crawler" / "images" / "full").iterdir())
    cached = [p for p in (tmp_path / "home" / "images").rglob("*") if p.is_file()]
    assert len(crawled) == len(cached) == 16
    assert len({(p.stat().st_dev, p.stat().st_ino) for p in crawled + cached}) == 16
    assert list(tmp_path.rglob("*.jsonl")) == []

    with open_store(f"sqlite:///{db}", read_only=True) as store:
        products = {p.id: p for p in store.iter_products("fur")}
    assert {k: len(p.images) for k, p in products.items()} == FUR
    for sku, p in products.items():
        assert p.title and p.price == 9.0 and p.currency == "USD" and p.link == f"{base}products/{sku}/"
        assert {i.color for i in p.images} == set(p.colors) and all(i.vector_id for i in p.images)
        assert p.images[0].is_main and p.sizes == ["Small", "Medium", "Large", "XL"]
    assert products["giraffe"].title == "Gerald the Giraffe"

    proc = run_cli(["search", "--text", "giraffe t-shirt", "--json", "-k", "3"], env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hits = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert hits and hits[0]["id"] == "fur:giraffe"

    # a re-crawl of the unchanged shop leaves the catalog untouched
    again = crawl_json([base, "--shop", "fur"], env, timeout=1200)
    assert again["catalog"]["unchanged"] == 6
    assert again["catalog"].get("new", 0) == 0 and again["catalog"].get("embedded", 0) == 0
    assert again["images_cached"] == 16 and again["images_downloaded"] == 0  # ImagesPipeline expiry
