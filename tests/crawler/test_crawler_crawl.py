"""Whole crawls in a subprocess against shops served on 127.0.0.1 (feed output)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from crawler_helpers import crawl_json, crawler_env, read_jsonl
from PIL import Image

from crawler.testing import MirrorShop


@pytest.mark.real_data
def test_crawl_fur_storefront_to_feed(tmp_path: Path, fur_site: Path, serve_dir) -> None:
    base = serve_dir(fur_site)
    feed = tmp_path / "fur.jsonl"
    summary = crawl_json([base, "-o", str(feed), "--shop", "fur"], crawler_env(tmp_path / "home"))
    records = read_jsonl(feed)
    groups = {r["item_group_id"] for r in records}
    assert groups == {"deer", "elephant", "giraffe", "hog", "lion", "tiger"}
    assert summary["products"] == 6 and summary["product_pages"] == 6
    assert len(records) == 16  # one row per colour
    images = {r["image_link"] for r in records}
    assert len(images) == 16 and all(u.startswith(base + "images/products/") for u in images)
    for r in records:
        assert r["title"] and r["price"] == "9.00 USD" and r["color"]
        assert r["image_link"].endswith(f"/{r['item_group_id']}/{r['color'].lower()}.jpg")
    giraffe = next(r for r in records if r["item_group_id"] == "giraffe")
    assert giraffe["title"] == "Gerald the Giraffe" and giraffe["link"] == base + "products/giraffe/"
    # the footer links to /contact/, which does not exist: counted, the crawl goes on
    assert summary["failed"] == {"http_404": 1}
    assert summary["images_downloaded"] == 16 and summary["images_failed"] == 0
    stored = list((tmp_path / "home" / "crawler" / "images" / "full").iterdir())
    assert len(stored) == 16
    # the ImagesPipeline keeps the shop's bytes (no re-encoding)
    originals = {p.read_bytes() for p in (fur_site / "images" / "products").rglob("*.jpg")}
    assert {p.read_bytes() for p in stored} == originals


@pytest.mark.real_data
def test_mirror_shop_with_broken_pages(tmp_path: Path, luma_dir: Path) -> None:
    """A 404, a 500, a timeout, binary garbage and a broken image: all counted, no product lost."""
    n = 120
    with MirrorShop(luma_dir, n, faults=True) as shop:
        feed = tmp_path / "mirror.jsonl"
        summary = crawl_json(
            [
                shop.base_url,
                "-o",
                str(feed),
                "--timeout",
                "6",  # the slow page takes 15 s; ordinary pages stay far below 6 s even on a busy machine
                "--retries",
                "1",
                "--per-domain",
                "8",
                "--memory-limit-mb",
                "512",
            ],
            crawler_env(tmp_path / "home", CRAWLER_RETRY_BACKOFF="0.1"),
        )
    records = read_jsonl(feed)
    ids = {r.get("item_group_id") or r["id"] for r in records}
    assert ids == {p.sku for p in shop.products}
    assert summary["products"] == n
    assert summary["failed"]["http_404"] >= 1
    assert summary["failed"]["http_500"] == 1
    assert summary["failed"].get("DownloadTimeoutError", 0) + summary["failed"].get("timeout", 0) == 1
    assert summary["retries"] == 2  # the 500 and the timeout, once each
    assert summary["images_failed"] >= 1  # /img/broken.jpg
    assert summary["finish_reason"] == "finished"  # not "memusage_exceeded"
    assert 0 < summary["peak_rss_mb"] < 512
    # traps are not followed: sort links, cart, sign-in
    assert summary["pages"] < n + 60 + len(shop.categories) * 10 + 800
    print(
        f"\nmirror shop ({n} products): {summary['pages_per_min']:.0f} pages/min, "
        f"{summary['products_per_min']:.0f} products/min, peak RSS {summary['peak_rss_mb']} MB"
    )


def _png(path: Path, color: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (240, 320), color).save(path)


def _product_page(sku: str, name: str, img: str) -> str:
    data = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": name,
        "sku": sku,
        "image": img,
        "offers": {"@type": "Offer", "price": "20.00", "priceCurrency": "EUR"},
    }
    script = f'<script type="application/ld+json">{json.dumps(data)}</script>'
    return f"<html><head>{script}</head><body></body></html>"


def test_sitemaps_from_robots_and_robots_disallow(tmp_path: Path, serve_dir) -> None:
    site = tmp_path / "site"
    (site / "p").mkdir(parents=True)
    (site / "private").mkdir()
    _png(site / "img" / "a.png", (200, 30, 30))
    _png(site / "img" / "b.png", (30, 30, 200))
    (site / "p" / "1.html").write_text(_product_page("S-1", "Red Scarf", "/img/a.png"))
    (site / "p" / "2.html").write_text(_product_page("S-2", "Blue Scarf", "/img/b.png"))
    (site / "private" / "secret.html").write_text(_product_page("S-3", "Secret Scarf", "/img/a.png"))
    (site / "index.html").write_text('<html><body><a href="/private/secret.html">secret</a></body></html>')
    base = serve_dir(site)
    (site / "robots.txt").write_text(f"User-agent: *\nDisallow: /private/\nSitemap: {base}sitemap.xml\n")
    (site / "sitemap.xml").write_text(
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{base}products.xml.gz</loc></sitemap></sitemapindex>"
    )
    urlset = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{base}p/1.html</loc></url><url><loc>{base}p/2.html</loc></url>"
        "<url><loc>https://elsewhere.example/p/9.html</loc></url></urlset>"
    )
    (site / "products.xml.gz").write_bytes(gzip.compress(urlset.encode()))

    feed = tmp_path / "out.jsonl"
    summary = crawl_json([base, "-o", str(feed)], crawler_env(tmp_path / "home"))
    assert sorted(r["id"] for r in read_jsonl(feed)) == ["S-1", "S-2"]
    assert summary["robots_forbidden"] == 1  # /private/secret.html was never fetched
    assert summary["products"] == 2


@pytest.mark.real_data
def test_page_limit(tmp_path: Path, luma_dir: Path) -> None:
    with MirrorShop(luma_dir, 300) as shop:
        summary = crawl_json(
            [shop.base_url, "-o", str(tmp_path / "f.jsonl"), "--max-pages", "25", "--no-images"],
            crawler_env(tmp_path / "home"),
        )
    assert summary["finish_reason"] == "closespider_pagecount"
    # requests already handed to the downloader still finish; the shop has over 300 pages
    assert 25 <= summary["pages"] < 70
    assert 0 < summary["products"] < summary["pages"]


@pytest.mark.real_data
def test_depth_limit_does_not_cut_long_pagination(tmp_path: Path, luma_dir: Path) -> None:
    """Home -> category -> product is depth 2; 20 "Next" pages of a category do not add to it."""
    n = 60
    with MirrorShop(luma_dir, n, per_page=3, numbered_pages=False) as shop:
        summary = crawl_json(
            [shop.base_url, "-o", str(tmp_path / "f.jsonl"), "--max-depth", "2", "--no-images"],
            crawler_env(tmp_path / "home"),
        )
    assert summary["products"] == n
    assert max(len(v) for v in shop.categories.values()) // 3 > 2  # the chain is longer than the depth limit
