"""The generic ``products`` spider: start pages -> listings -> product pages -> items.

Start URLs may be a shop's home, category or product pages, or sitemaps
(``.../sitemap.xml``, ``.xml.gz``, sitemap indexes, ``robots.txt``). For a start
page at a site's root the spider also reads the sitemaps its robots.txt names
(``CRAWLER_SITEMAPS``). It stays on the start URLs' domains (and their
subdomains), follows pagination first, product links next and other links last
(``CRAWLER_FOLLOW_LINKS``), within Scrapy's depth and page limits.

A page that fails (HTTP error, timeout, DNS, garbage) is counted in the stats
under ``pages/failed/<reason>`` or ``pages/unparseable`` and the crawl moves on.

Run it with ``fittingroom crawl URL...`` or, inside ``crawler/``,
``scrapy crawl products -a urls=https://shop.example/``.
"""

from __future__ import annotations

import gzip
import io
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import scrapy
from scrapy.http import Response, TextResponse

from crawler.links import discover_links, is_allowed, on_allowed_domain

logger = logging.getLogger(__name__)

#: Request priorities: finish listings, then products, before wandering.
PRIORITY_SITEMAP = 30
PRIORITY_PRODUCT = 20
PRIORITY_PAGINATION = 10
PRIORITY_OTHER = 0
MAX_SITEMAP_BYTES = 50 * 1024 * 1024
#: Failed requests kept by URL (``ProductsSpider.failures``); all are counted in the stats.
MAX_FAILURES = 200


def is_sitemap_url(url: str) -> bool:
    path = urlsplit(url).path.lower()
    return path.endswith(("robots.txt", ".xml", ".xml.gz")) or "sitemap" in path.rsplit("/", 1)[-1]


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


class ProductsSpider(scrapy.Spider):
    """Crawl shops from start URLs and yield a ``ProductItem`` per product page."""

    name = "products"

    def __init__(
        self,
        urls: str | list[str] | None = None,
        allowed_domains: str | list[str] | None = None,
        shop: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(urls, str):
            urls = [u for u in urls.replace(",", " ").split() if u]
        self.start_urls = list(urls or [])
        if not self.start_urls:
            raise ValueError("give at least one start URL (-a urls=https://shop.example/)")
        for u in self.start_urls:
            if urlsplit(u).scheme not in ("http", "https"):
                raise ValueError(f"start URL {u!r} is not an http(s) URL")
        if isinstance(allowed_domains, str):
            allowed_domains = [d for d in allowed_domains.replace(",", " ").split() if d]
        domains = allowed_domains or sorted({_host(u) for u in self.start_urls})
        self.allowed_domains = [d.lower().removeprefix("www.") for d in domains]
        self.allowed = set(self.allowed_domains)
        self.shop = shop
        #: ``{"url", "reason"}`` of failed requests, the first ``MAX_FAILURES`` (progress reports)
        self.failures: list[dict[str, str]] = []
        self.follow = True
        self.sitemaps = True
        self.rules: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> ProductsSpider:
        from crawler.site_rules import load_rules

        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.follow = crawler.settings.getbool("CRAWLER_FOLLOW_LINKS", True)
        spider.sitemaps = crawler.settings.getbool("CRAWLER_SITEMAPS", True)
        spider.rules = load_rules(crawler.settings.get("CRAWLER_SITE_RULES"))
        return spider

    # ---- start -----------------------------------------------------------------------------
    async def start(self) -> AsyncIterator[Any]:
        for url in self.start_urls:
            if is_sitemap_url(url):
                cb = self.parse_robots if url.lower().endswith("robots.txt") else self.parse_sitemap
                yield scrapy.Request(url, callback=cb, errback=self.on_error, priority=PRIORITY_SITEMAP)
                continue
            yield scrapy.Request(
                url, callback=self.parse_page, errback=self.on_error, priority=PRIORITY_PRODUCT
            )
            if self.sitemaps and urlsplit(url).path in ("", "/"):
                p = urlsplit(url)
                robots = urlunsplit((p.scheme, p.netloc, "/robots.txt", "", ""))
                yield scrapy.Request(
                    robots,
                    callback=self.parse_robots,
                    errback=self.on_error,
                    priority=PRIORITY_SITEMAP,
                    meta={"optional": True},
                )

    # ---- pages -----------------------------------------------------------------------------
    def parse_page(self, response: Response) -> Iterator[Any]:
        from crawler.extract.document import load_document
        from crawler.extract.page import parse_document

        stats = self.crawler.stats
        if not isinstance(response, TextResponse):
            stats.inc_value("pages/not_html")
            return
        ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
        if ctype and not any(t in ctype for t in ("html", "xml", "text/plain")):
            stats.inc_value("pages/not_html")
            return
        try:
            doc = load_document(response.text, response.url)
        except ValueError as exc:
            stats.inc_value("pages/unparseable")
            logger.warning("unparseable page %s: %s", response.url, exc)
            return
        parsed = None
        try:
            parsed = parse_document(doc, rules=self.rules)
        except Exception:  # a parser bug on one odd page must not stop the crawl
            stats.inc_value("pages/parse_error")
            logger.exception("parser failed on %s", response.url)
        if parsed is not None:
            if parsed.errors:
                stats.inc_value("pages/structured_data_errors")
            if parsed.product is not None:
                stats.inc_value("pages/product")
                parsed.product.shop = self.shop
                yield parsed.product
            elif parsed.listing_urls:
                stats.inc_value("pages/listing")
        if not self.follow:
            return
        links = discover_links(doc, self.allowed, extra_products=parsed.listing_urls if parsed else None)
        for url in links.pagination:
            yield response.follow(
                url,
                self.parse_page,
                errback=self.on_error,
                priority=PRIORITY_PAGINATION,
                meta={"same_depth": True},
            )
        for url in links.products:
            yield response.follow(url, self.parse_page, errback=self.on_error, priority=PRIORITY_PRODUCT)
        for url in links.other:
            yield response.follow(url, self.parse_page, errback=self.on_error, priority=PRIORITY_OTHER)

    # ---- sitemaps ----------------------------------------------------------------------------
    def parse_robots(self, response: Response) -> Iterator[Any]:
        from scrapy.utils.sitemap import sitemap_urls_from_robots

        if not isinstance(response, TextResponse):
            return
        for url in sitemap_urls_from_robots(response.body, base_url=response.url):
            if on_allowed_domain(url, self.allowed):
                yield scrapy.Request(
                    url, callback=self.parse_sitemap, errback=self.on_error, priority=PRIORITY_SITEMAP
                )
            else:
                self.crawler.stats.inc_value("sitemaps/offsite")

    def parse_sitemap(self, response: Response) -> Iterator[Any]:
        from scrapy.utils.sitemap import Sitemap

        body = response.body
        if body[:2] == b"\x1f\x8b":
            try:
                with gzip.GzipFile(fileobj=io.BytesIO(body)) as gz:
                    body = gz.read(MAX_SITEMAP_BYTES + 1)
            except OSError:
                self.crawler.stats.inc_value("sitemaps/unreadable")
                return
            if len(body) > MAX_SITEMAP_BYTES:
                self.crawler.stats.inc_value("sitemaps/too_large")
                return
        try:
            sitemap = Sitemap(body)
        except Exception:  # lxml raises several error types on garbage
            self.crawler.stats.inc_value("sitemaps/unreadable")
            logger.warning("unreadable sitemap %s", response.url)
            return
        self.crawler.stats.inc_value("sitemaps/read")
        for entry in sitemap:
            loc = entry.get("loc")
            if not loc or not on_allowed_domain(loc, self.allowed):
                continue
            if sitemap.type == "sitemapindex":
                yield scrapy.Request(
                    loc, callback=self.parse_sitemap, errback=self.on_error, priority=PRIORITY_SITEMAP
                )
            elif is_allowed(loc, self.allowed, check_params=False):
                yield scrapy.Request(
                    loc, callback=self.parse_page, errback=self.on_error, priority=PRIORITY_PRODUCT
                )

    # ---- failures ------------------------------------------------------------------------------
    def on_error(self, failure: Any) -> None:
        """Count a failed request by reason; the crawl goes on."""
        from scrapy.exceptions import IgnoreRequest
        from scrapy.spidermiddlewares.httperror import HttpError
        from twisted.internet.error import (
            ConnectionRefusedError,
            DNSLookupError,
            TCPTimedOutError,
            TimeoutError,
        )

        request = getattr(failure, "request", None)
        if request is not None and request.meta.get("optional"):
            return
        if failure.check(HttpError):
            reason = f"http_{failure.value.response.status}"
        elif failure.check(TimeoutError, TCPTimedOutError):
            reason = "timeout"
        elif failure.check(DNSLookupError):
            reason = "dns"
        elif failure.check(ConnectionRefusedError):
            reason = "connection_refused"
        elif failure.check(IgnoreRequest):
            reason = "ignored"
        else:
            reason = failure.type.__name__ if failure.type else "error"
        self.crawler.stats.inc_value("pages/failed")
        self.crawler.stats.inc_value(f"pages/failed/{reason}")
        if request is not None and len(self.failures) < MAX_FAILURES:
            self.failures.append({"url": request.url, "reason": reason})
        logger.info("failed %s: %s", request.url if request is not None else "?", reason)
