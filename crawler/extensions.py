"""Crawl summary: what a crawl did, from Scrapy's stats (logged when the spider closes)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.extensions.memusage import MemoryUsage

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


@dataclass
class CrawlSummary:
    """Counts of one crawl. Rates are per minute of wall-clock crawl time."""

    pages: int = 0
    product_pages: int = 0
    listing_pages: int = 0
    products: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    http_status: dict[str, int] = field(default_factory=dict)
    unparseable_pages: int = 0
    parser_errors: int = 0
    retries: int = 0
    robots_forbidden: int = 0
    offsite_filtered: int = 0
    images_downloaded: int = 0
    images_cached: int = 0
    images_failed: int = 0
    feed_records: int = 0
    catalog: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    finish_reason: str = ""
    peak_rss_mb: float | None = None

    @property
    def pages_per_min(self) -> float:
        return 60.0 * self.pages / self.seconds if self.seconds > 0 else 0.0

    @property
    def products_per_min(self) -> float:
        return 60.0 * self.products / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pages_per_min"] = round(self.pages_per_min, 1)
        d["products_per_min"] = round(self.products_per_min, 1)
        return d

    @classmethod
    def from_stats(cls, stats: dict[str, Any]) -> CrawlSummary:
        def pref(prefix: str) -> dict[str, int]:
            return {k[len(prefix) :]: int(v) for k, v in stats.items() if k.startswith(prefix)}

        failed = pref("pages/failed/")
        elapsed = stats.get("elapsed_time_seconds")
        if elapsed is None and stats.get("start_time") and stats.get("finish_time"):
            elapsed = (stats["finish_time"] - stats["start_time"]).total_seconds()
        return cls(
            pages=int(stats.get("response_received_count", 0)),
            product_pages=int(stats.get("pages/product", 0)),
            listing_pages=int(stats.get("pages/listing", 0)),
            products=int(stats.get("item_scraped_count", 0)),
            dropped={k: v for k, v in pref("items/dropped/").items()},
            failed=failed,
            http_status=pref("downloader/response_status_count/"),
            unparseable_pages=int(stats.get("pages/unparseable", 0)) + int(stats.get("pages/not_html", 0)),
            parser_errors=int(stats.get("pages/parse_error", 0))
            + int(stats.get("spider_exceptions/count", 0)),
            retries=int(stats.get("retry/count", 0)),
            robots_forbidden=int(stats.get("robotstxt/forbidden", 0)),
            offsite_filtered=int(stats.get("offsite/filtered", 0)),
            images_downloaded=int(stats.get("file_status_count/downloaded", 0)),
            images_cached=int(stats.get("file_status_count/uptodate", 0))
            + int(stats.get("file_status_count/cached", 0)),
            images_failed=int(stats.get("images/failed", 0)),
            feed_records=int(stats.get("feed/records", 0)),
            catalog=pref("catalog/"),
            seconds=float(elapsed or 0.0),
            finish_reason=str(stats.get("finish_reason", "")),
            peak_rss_mb=round(stats["process/peak_rss_bytes"] / 2**20, 1)
            if stats.get("process/peak_rss_bytes")
            else None,
        )

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs for a printed table."""

        def fmt(d: dict[str, int]) -> str:
            return ", ".join(f"{k}: {v}" for k, v in sorted(d.items())) or "0"

        rows = [
            ("pages fetched", str(self.pages)),
            ("product pages", str(self.product_pages)),
            ("products kept", str(self.products)),
            ("products dropped", fmt(self.dropped)),
            ("failed requests", fmt(self.failed)),
            ("HTTP status", fmt(self.http_status)),
            ("unparseable / non-HTML pages", str(self.unparseable_pages)),
            ("parser errors", str(self.parser_errors)),
            ("retries", str(self.retries)),
            ("robots.txt forbidden", str(self.robots_forbidden)),
            ("off-site links skipped", str(self.offsite_filtered)),
            (
                "images downloaded / up to date / failed",
                f"{self.images_downloaded} / {self.images_cached} / {self.images_failed}",
            ),
        ]
        if self.feed_records:
            rows.append(("feed records written", str(self.feed_records)))
        if self.catalog:
            rows.append(("catalog", fmt(self.catalog)))
        rows += [
            (
                "time",
                f"{self.seconds:.1f} s ({self.pages_per_min:.0f} pages/min, "
                f"{self.products_per_min:.0f} products/min)",
            ),
            ("finish reason", self.finish_reason),
        ]
        if self.peak_rss_mb is not None:
            rows.append(("peak RSS", f"{self.peak_rss_mb:.0f} MB"))
        return rows


class CrawlSummaryExtension:
    """Logs the ``CrawlSummary`` at the end and writes it as JSON to ``CRAWLER_SUMMARY_PATH`` if set."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.path = crawler.settings.get("CRAWLER_SUMMARY_PATH")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlSummaryExtension:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_closed(self, spider: Any, reason: str) -> None:
        assert self.crawler.stats is not None
        # Peak of the sampled *current* RSS (CurrentRSSMemoryUsage), not ru_maxrss: Linux carries
        # ru_maxrss across fork+exec, so a crawl started by a big parent would report its size.
        sampled = self.crawler.stats.get_value("memusage/max") or 0
        self.crawler.stats.set_value("process/peak_rss_bytes", max(int(sampled), current_rss_bytes()))
        stats = dict(self.crawler.stats.get_stats())
        stats.setdefault("finish_reason", reason)
        summary = CrawlSummary.from_stats(stats)
        logger.info("crawl summary: %s", json.dumps(summary.to_dict()))
        if self.path:
            Path(self.path).write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")


def current_rss_bytes() -> int:
    """Resident memory of this process now (Linux ``/proc/self/statm``; else the ru_maxrss peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class CurrentRSSMemoryUsage(MemoryUsage):
    """Scrapy's memory limit (``MEMUSAGE_LIMIT_MB``) on the *current* resident memory.

    Scrapy's ``MemoryUsage`` reads ``ru_maxrss``, which Linux keeps across fork+exec: a crawl
    started from a process that once used 1.4 GB (a test run with models loaded) would be stopped
    at once as ``memusage_exceeded`` before fetching a page.
    """

    def get_virtual_size(self) -> int:
        return current_rss_bytes()


class CrawlProgressExtension:
    """Writes the crawl's progress as JSON to ``CRAWLER_PROGRESS_PATH`` (when set), every
    ``CRAWLER_PROGRESS_INTERVAL`` seconds (default 1) and when the spider closes.

    The file (replaced atomically): ``{"pages": responses, "products": items kept, "failed":
    failed requests, "failed_urls": [{"url", "reason"}...] (the first 200: requests that failed
    and products dropped), "finished": bool, "finish_reason": str | None}``. A background job
    that runs the crawl in a subprocess reads it to report progress.
    """

    def __init__(self, crawler: Crawler, path: Path, interval: float) -> None:
        self.crawler = crawler
        self.path = path
        self.interval = interval
        self.dropped: list[dict[str, str]] = []
        self.task: Any = None
        self.spider: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlProgressExtension:
        from scrapy.exceptions import NotConfigured

        path = crawler.settings.get("CRAWLER_PROGRESS_PATH")
        if not path:
            raise NotConfigured
        ext = cls(crawler, Path(path), crawler.settings.getfloat("CRAWLER_PROGRESS_INTERVAL", 1.0))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.item_dropped, signal=signals.item_dropped)
        return ext

    def spider_opened(self, spider: Any) -> None:
        from twisted.internet import task

        self.spider = spider
        self.write()
        self.task = task.LoopingCall(self.write)
        self.task.start(self.interval, now=False)

    def item_dropped(self, item: Any, response: Any, exception: BaseException, spider: Any) -> None:
        if len(self.dropped) < 200:
            url = getattr(item, "url", None) or getattr(response, "url", "?")
            reason = str(exception).split(": http")[0] or type(exception).__name__
            self.dropped.append({"url": str(url), "reason": f"dropped: {reason}"})

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()
        self.write(finish_reason=reason)

    def snapshot(self, finish_reason: str | None = None) -> dict[str, Any]:
        assert self.crawler.stats is not None
        stats = self.crawler.stats
        failures = list(getattr(self.spider, "failures", []))
        return {
            "pages": int(stats.get_value("response_received_count", 0)),
            "products": int(stats.get_value("item_scraped_count", 0)),
            "failed": int(stats.get_value("pages/failed", 0)),
            "failed_urls": (failures + self.dropped)[:200],
            "finished": finish_reason is not None,
            "finish_reason": finish_reason,
        }

    def write(self, finish_reason: str | None = None) -> None:
        from fittingroom.atomicio import atomic_write

        try:
            atomic_write(self.path, json.dumps(self.snapshot(finish_reason)), fsync=False)
        except OSError as exc:  # progress is best effort: never stop a crawl for it
            logger.warning("could not write crawl progress to %s: %s", self.path, exc)
