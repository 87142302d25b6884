"""Which links of a shop page to follow: product pages, listing pagination, the rest.

``discover_links(doc)`` sorts a page's links into

- ``pagination``: the next page(s) of a category/listing page (``rel=next``,
  "next"/"›"/"weiter"/... anchors, numbered links in a pagination block, links
  that only change a page parameter);
- ``products``: links from product tiles (an anchor around an image or a
  product name in a product/item/tile/card block, or a URL that looks like a
  product URL);
- ``other``: remaining same-site links (categories, home, info pages).

Links to carts, accounts, searches, sorting/filter variants of a listing and
non-HTML files are dropped: they multiply pages without adding products.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urldefrag, urljoin, urlsplit

from w3lib.url import canonicalize_url

if TYPE_CHECKING:
    from lxml.html import HtmlElement

    from crawler.extract.document import Document

_NEXT_TEXT = re.compile(
    r"^(?:next(?:\s+page)?|more|load\s+more|show\s+more|›|»|>|>>|→|⟩|❯|▶|►|▸|weiter|nächste(?:\s+seite)?|suivante?|"
    r"page\s+suivante|siguiente|avanti|successiva|volgende|próxima|seguinte|następna|dalej|далее|следующая|"
    r"sonraki|nästa|næste|neste|seuraava|下一页|下一頁|次へ|다음)\W*$",
    re.I,
)
_NEXT_ATTR = re.compile(r"(?:^|[\s_-])(?:next|i-next|pagination-next|page-next|pager-next)(?:$|[\s_-])", re.I)
_CAROUSEL = re.compile(r"slick|swiper|owl|carousel|slider|glide|flickity|gallery|lightbox", re.I)
_PAGER_BLOCK = re.compile(r"pag(?:e|er|es|ing|ination)|paginat|page-numbers|pages", re.I)
_PAGE_PARAMS = frozenset(
    {
        "page",
        "p",
        "pg",
        "pagenumber",
        "page_number",
        "pageno",
        "start",
        "offset",
        "from",
        "currentpage",
        "fh_start_index",
        "catlistingoffset",
    }
)
_PRODUCT_BLOCK = re.compile(r"product|item|tile|card|grid|goods|article|listing|offer", re.I)
_PRODUCT_URL = re.compile(
    r"/(?:p|dp|product|products|produkt|produit|producto|prodotto|item|itm|artikel|goods|shop/product)/|"
    r"[/_-]p?\d{5,}(?:\.html?)?/?$|\.html?$",
    re.I,
)
_DENY_PATH = re.compile(
    r"/(?:cart|basket|bag|checkout|account|my-?account|login|log-?in|logout|log-?out|sign-?in|sign-?up|register|"
    r"wishlist|wish-?list|compare|customer|auth|password|newsletter|cdn-cgi|wp-admin|wp-login|feed|rss)(?:/|$|\.)",
    re.I,
)
_DENY_PARAMS = frozenset(
    {
        "sort",
        "sortby",
        "sort_by",
        "order",
        "orderby",
        "dir",
        "direction",
        "limit",
        "mode",
        "view",
        "filter",
        "add-to-cart",
        "add_to_cart",
        "addtocart",
        "returnurl",
        "return_url",
        "redirect",
        "q",
        "search",
        "currency",
        "lang",
    }
)
_FILE_EXT = re.compile(
    r"\.(?:jpe?g|png|gif|webp|avif|svg|ico|bmp|tiff?|pdf|zip|gz|rar|7z|mp[34]|avi|mov|wmv|webm|css|js|json|xml|"
    r"txt|docx?|xlsx?|pptx?|exe|dmg|apk|woff2?|ttf|eot)$",
    re.I,
)


@dataclass
class PageLinks:
    """Links of one page, absolute and canonicalised, each list without duplicates."""

    pagination: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return self.pagination + self.products + self.other


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


def on_allowed_domain(url: str, allowed_domains: set[str] | None) -> bool:
    """http(s) URL on one of ``allowed_domains`` or a subdomain (None = any domain)."""
    if urlsplit(url).scheme not in ("http", "https"):
        return False
    if not allowed_domains:
        return True
    host = _host(url)
    return any(host == d or host.endswith("." + d) for d in allowed_domains)


def is_allowed(
    url: str, allowed_domains: set[str] | None, page_url: str | None = None, *, check_params: bool = True
) -> bool:
    """http(s), not a file download, not a cart/account URL, on an allowed domain, and not a
    sort/filter/search variant of a listing (a parameter the linking ``page_url`` already has
    with the same value is fine, so pagination of a sorted listing is followed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return False
    if _FILE_EXT.search(parts.path) or _DENY_PATH.search(parts.path):
        return False
    current = (
        {k.lower(): v for k, v in parse_qsl(urlsplit(page_url).query, keep_blank_values=True)}
        if page_url
        else {}
    )
    for k, v in parse_qsl(parts.query, keep_blank_values=True) if check_params else ():
        if k.lower() in _DENY_PARAMS and current.get(k.lower()) != v:
            return False
    return on_allowed_domain(url, allowed_domains)


def _href(a: HtmlElement) -> str | None:
    """The anchor's target; script-driven links often keep it in data-href / data-url."""
    href = (a.get("href") or "").strip()
    if not href or href.startswith(("#", "javascript:")):
        href = (a.get("data-href") or a.get("data-url") or "").strip()
    if not href or href.startswith(("#", "javascript:", "mailto:", "tel:", "data:")):
        return None
    return href


def _anchor_label(a: HtmlElement) -> str:
    text = " ".join(a.itertext()).strip()
    return text or a.get("aria-label") or a.get("title") or ""


def _ancestor_attrs(el: HtmlElement, levels: int) -> str:
    out = []
    for i, anc in enumerate(el.iterancestors()):
        if i >= levels or anc.tag == "body":
            break
        out.append(f"{anc.get('class') or ''} {anc.get('id') or ''}")
    return " ".join(out)


def _only_page_param_differs(url: str, page_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(page_url)
    if a.netloc != b.netloc:
        return False
    qa = dict(parse_qsl(a.query))
    qb = dict(parse_qsl(b.query))
    changed = {k for k in set(qa) | set(qb) if qa.get(k) != qb.get(k)}
    if changed and changed <= {k for k in changed if k.lower() in _PAGE_PARAMS} and a.path == b.path:
        return True
    # /page/2/ or /p2 style path pagination on the same listing
    pa, pb = re.sub(r"/(?:page|p)[/-]?\d+/?$", "", a.path), re.sub(r"/(?:page|p)[/-]?\d+/?$", "", b.path)
    return (
        a.path != b.path
        and pa.rstrip("/") == pb.rstrip("/")
        and bool(re.search(r"/(?:page|p)[/-]?\d+/?$", a.path))
    )


def pagination_links(doc: Document) -> list[str]:
    """Next-page and numbered page links of a listing page (absolute, in page order, next first)."""
    nexts: list[str] = []
    pages: list[str] = []
    for href in doc.xpath("//link[contains(concat(' ', normalize-space(@rel), ' '), ' next ')]/@href"):
        nexts.append(urljoin(doc.base_url, href.strip()))
    for a in doc.xpath("//a[@href or @data-href or @data-url]"):
        href = _href(a)
        if not href:
            continue
        url = urljoin(doc.base_url, href)
        rel = (a.get("rel") or "").lower().split()
        label = _anchor_label(a)
        attrs = f"{a.get('class') or ''} {a.get('id') or ''}"
        parent_attrs = _ancestor_attrs(a, 3)
        if _CAROUSEL.search(attrs + " " + parent_attrs):
            continue
        if (
            "next" in rel
            or _NEXT_TEXT.match(label)
            or _NEXT_ATTR.search(attrs)
            or _NEXT_ATTR.search(" ".join(f"{c.get('class') or ''}" for c in a.iterdescendants()))
            or (_NEXT_ATTR.search(" ".join(_ancestor_attrs(a, 1).split())) and not label.strip().isdigit())
        ):
            nexts.append(url)
        elif (label.strip().isdigit() and _PAGER_BLOCK.search(parent_attrs)) or (
            label.strip().isdigit() and _only_page_param_differs(url, doc.url)
        ):
            pages.append(url)
    return _dedupe([u for u in nexts + pages if urldefrag(u)[0] != urldefrag(doc.url)[0]])


def _looks_like_product_link(a: HtmlElement, url: str) -> bool:
    if _PRODUCT_URL.search(urlsplit(url).path):
        return True
    block = _ancestor_attrs(a, 4) + f" {a.get('class') or ''}"
    has_img = bool(a.xpath(".//img"))
    return bool(_PRODUCT_BLOCK.search(block)) and (has_img or len(_anchor_label(a)) > 8)


def discover_links(
    doc: Document, allowed_domains: set[str] | None = None, extra_products: list[str] | None = None
) -> PageLinks:
    """Sort the page's followable links (see the module docstring).

    ``allowed_domains`` limits links to those hosts and their subdomains
    (None = the page's own host); ``extra_products`` adds product URLs known
    from the page's structured data (an ItemList of products).
    """
    allowed = allowed_domains if allowed_domains is not None else {_host(doc.url)}
    out = PageLinks()
    seen: set[str] = {canonicalize_url(doc.url)}

    def add(bucket: list[str], url: str, listing_params_ok: bool = False) -> None:
        url = urldefrag(url)[0]
        key = canonicalize_url(url)
        # the shop's own pagination may carry sort/limit parameters: follow it anyway
        if key in seen or not is_allowed(
            url, allowed, None if listing_params_ok else doc.url, check_params=not listing_params_ok
        ):
            return
        seen.add(key)
        bucket.append(url)

    for u in pagination_links(doc):
        add(out.pagination, u, listing_params_ok=True)
    for u in extra_products or []:
        add(out.products, u)
    for a in doc.xpath("//a[@href or @data-href or @data-url]"):
        href = _href(a)
        if not href:
            continue
        url = urljoin(doc.base_url, href)
        if a.get("rel") and "nofollow" in a.get("rel", "").lower().split():
            continue
        add(out.products if _looks_like_product_link(a, url) else out.other, url)
    return out


def _dedupe(urls: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for u in urls:
        k = canonicalize_url(u)
        if k not in seen:
            seen.add(k)
            out.append(u)
    return out
