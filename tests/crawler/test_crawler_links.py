"""Link discovery: listing pagination, product links, traps that are not followed."""

from __future__ import annotations

import csv
from pathlib import Path
from urllib.parse import urljoin

import pytest
from parsel import Selector

from crawler.extract.document import load_document
from crawler.links import discover_links, is_allowed


def _hrefs(sel: Selector, css: str, base: str) -> list[str]:
    out = []
    for el in sel.css(css) if css else []:
        a = el.xpath("ancestor-or-self::a[1]")
        a = a if a else el.xpath(".//a[1]")
        href = a.xpath("@href").get() if a else None
        if href and href.startswith(("#", "javascript:")):
            href = a.xpath("@data-href").get()
        if href:
            out.append(urljoin(base, href))
    return out


@pytest.mark.real_data
def test_autopager_pagination(pages_dir: Path) -> None:
    """Every annotated next-page link and every numbered page link is found as pagination."""
    folder = pages_dir / "autopager-listing-pages"
    checked = 0
    with (folder / "data_subset.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        doc = load_document((folder / f"{row['File Name']}.html").read_bytes(), row["Page URL"])
        links = discover_links(doc)
        sel = Selector(root=doc.tree, type="html")
        found = set(links.pagination)
        for kind in ("NEXT", "PAGE"):
            for url in _hrefs(sel, row[kind], doc.base_url):
                if url.split("#")[0] == row["Page URL"]:
                    continue  # the current page
                assert url in found, f"{row['File Name']}: {kind} link {url} not found"
                checked += 1
        assert links.products, f"{row['File Name']}: no product links"
    assert checked >= 60


def test_pagination_and_products_on_a_listing() -> None:
    html = """<html><head><link rel="next" href="/c/tees?page=2"></head><body>
      <ul class="products"><li class="product-card"><a href="/tees/red-tee"><img src="/r.jpg"></a></li>
      <li class="product-card"><a href="/tees/blue-tee"><img src="/b.jpg"></a></li></ul>
      <nav class="pagination"><a href="/c/tees?page=2">2</a><a href="/c/tees?page=3">3</a>
      <a class="next" href="/c/tees?page=2">›</a></nav>
      <a href="/c/tees?sort=price">Sort</a><a href="/cart">Cart</a><a href="/account/login">Sign in</a>
      <a href="/catalog.pdf">PDF</a><a href="https://other.example/x">Elsewhere</a>
      <a href="/about">About</a><div class="slick-slider"><a class="slick-next" href="/promo">Next</a></div>
    </body></html>"""
    links = discover_links(load_document(html, "https://shop.example/c/tees"))
    assert links.pagination == ["https://shop.example/c/tees?page=2", "https://shop.example/c/tees?page=3"]
    assert set(links.products) == {"https://shop.example/tees/red-tee", "https://shop.example/tees/blue-tee"}
    assert "https://shop.example/about" in links.other
    followed = set(links.all())
    for trap in ("/c/tees?sort=price", "/cart", "/account/login", "/catalog.pdf"):
        assert "https://shop.example" + trap not in followed
    assert "https://other.example/x" not in followed
    assert "https://shop.example/promo" not in links.pagination


def test_is_allowed() -> None:
    allowed = {"shop.example"}
    assert is_allowed("https://www.shop.example/p/1", allowed)
    assert is_allowed("https://eu.shop.example/p/1", allowed)
    assert not is_allowed("https://shop.example.evil.com/p/1", allowed)
    assert not is_allowed("mailto:x@shop.example", allowed)
    assert not is_allowed("https://shop.example/checkout/", allowed)
    # a sort parameter the current page already has is fine (paginating a sorted listing)
    assert is_allowed("https://shop.example/c?sort=new&page=2", allowed, "https://shop.example/c?sort=new")
    assert not is_allowed("https://shop.example/c?sort=price", allowed, "https://shop.example/c?sort=new")
