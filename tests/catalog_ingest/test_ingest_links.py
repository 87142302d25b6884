"""Shop links: feed ``link``, preset templates (Luma ``url_key``, Saleor ``slug``), http(s) only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from catalog_ingest.links import LinkSettings, build_link, check_template, safe_link
from catalog_ingest.mapper import FeedMapper, FieldMapping

DATA = Path("/work/shared/data")
LINKS = LinkSettings(luma_store_url="https://luma.test/", saleor_store_url="https://saleor.test")


def map_one(record: dict[str, Any], mapping: FieldMapping | None = None) -> Any:
    drafts, issues = FeedMapper("shop", mapping, links=LINKS).map_records([(2, record)])
    assert not issues, issues
    return drafts[0].product


LUMA = {
    "sku": "MH01",
    "name": "Chaz Hoodie",
    "url_key": "chaz-kangeroo-hoodie",
    "main_image": "a.jpg",
    "images": ["a.jpg"],
}
SALEOR = {"id": 7, "name": "Tee", "slug": "blue-tee", "price_usd_min": 5.0, "images": ["t.png"]}


def test_luma_and_saleor_presets_build_links_from_the_configured_store_url() -> None:
    assert map_one(LUMA).link == "https://luma.test/chaz-kangeroo-hoodie.html"
    assert map_one(SALEOR).link == "https://saleor.test/products/blue-tee/"


def test_the_store_url_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_LUMA_STORE_URL", "https://my.shop/")
    assert LinkSettings().store_url("luma") == "https://my.shop"
    assert LinkSettings().store_url("gmc") is None


def test_a_feed_link_wins_over_the_template_but_only_when_it_is_http() -> None:
    assert map_one({**LUMA, "link": "https://real.shop/x"}).link == "https://real.shop/x"
    assert (
        map_one({**LUMA, "link": "javascript:alert(1)"}).link == "https://luma.test/chaz-kangeroo-hoodie.html"
    )
    gmc = {"id": "A", "title": "A", "image_link": "a.jpg"}
    assert map_one({**gmc, "link": "javascript:alert(1)"}).link is None
    assert map_one({**gmc, "link": "/relative/page"}).link is None
    assert map_one(gmc).link is None


def test_a_custom_link_template_fills_and_quotes_feed_fields() -> None:
    gmc = {"id": "A 1/2", "title": "A", "image_link": "a.jpg"}
    product = map_one(gmc, FieldMapping(link_template="https://shop.example/p/{id}"))
    assert product.link == "https://shop.example/p/A%201%2F2"
    # a record without the field gets no link (and is not rejected)
    assert map_one({**LUMA, "url_key": ""}).link is None


@pytest.mark.parametrize(
    "value, expected",
    [
        ("https://a.example/x?y=1", "https://a.example/x?y=1"),
        ("HTTP://A.example", "HTTP://A.example"),
        ("javascript:alert(1)", None),
        ("data:text/html,hi", None),
        ("https:///nohost", None),
        ("https://a.example/x y", None),
        (None, None),
    ],
)
def test_safe_link_keeps_only_absolute_http_links(value: Any, expected: str | None) -> None:
    assert safe_link(value) == expected


def test_templates_are_checked() -> None:
    assert check_template("https://s.example/{id}") == "https://s.example/{id}"
    for bad in ("javascript:{id}", "https://s.example/static", "https://s.example/{id"):
        with pytest.raises(ValueError):
            check_template(bad)
    assert build_link("{store_url}/{url_key}.html", {"url_key": "x"}, None) is None


@pytest.mark.parametrize("source", ["luma", "saleor"])
def test_every_product_of_the_real_catalogs_gets_a_link(source: str) -> None:
    feed = DATA / f"{source}-catalog" / "products.jsonl"
    if not feed.is_file():
        pytest.skip(f"{feed} not present")
    lines = feed.read_text(encoding="utf-8").splitlines()
    drafts, _ = FeedMapper(source, links=LINKS).map_records(
        (i + 2, json.loads(line)) for i, line in enumerate(lines)
    )
    assert drafts and all(d.product.link and d.product.link.startswith("https://") for d in drafts)
