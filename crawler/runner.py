"""Run a crawl in this process (Scrapy ``CrawlerProcess``) and return its summary.

Twisted's reactor cannot be restarted, so ``run_crawl`` may be called once per
process; tests and tools that need several crawls run ``fittingroom crawl`` in
a subprocess.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.config import CrawlerSettings, scrapy_settings
from crawler.extensions import CrawlSummary

logger = logging.getLogger(__name__)


@dataclass
class CrawlJob:
    """What to crawl and where the products go.

    ``feed_path`` set: write a JSONL feed (no store). Otherwise products go to
    the catalog store ``store_uri`` (default: ``FITTINGROOM_STORE_URI`` / SQLite
    in home) and its FAISS index (``index_dir``).
    """

    urls: list[str]
    feed_path: Path | None = None
    store_uri: str | None = None
    index_dir: Path | None = None
    encoder: str | None = None
    annotate: bool = True
    shop: str | None = None
    allowed_domains: list[str] = field(default_factory=list)
    redis_flush: bool = False
    redis_key: str | None = None
    #: write progress JSON here as the crawl goes (``CrawlProgressExtension``)
    progress_path: Path | None = None
    extra_settings: dict[str, Any] = field(default_factory=dict)


def build_settings(job: CrawlJob, cfg: CrawlerSettings) -> Any:
    """Scrapy ``Settings``: ``crawler.settings`` + ``cfg`` + the job's outputs."""
    from scrapy.settings import Settings

    from fittingroom.settings import get_settings

    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    overrides: dict[str, Any] = {"CRAWLER_SHOP": job.shop}
    if job.progress_path is not None:
        overrides["CRAWLER_PROGRESS_PATH"] = str(job.progress_path)
    if job.feed_path is not None:
        overrides["CRAWLER_FEED_PATH"] = str(job.feed_path)
    else:
        core = get_settings()
        overrides.update(
            CRAWLER_STORE_URI=job.store_uri or core.resolved_store_uri,
            CRAWLER_INDEX_DIR=str(job.index_dir or core.resolved_index_dir),
            CRAWLER_ENCODER=job.encoder or core.encoder,
            CRAWLER_ANNOTATE=job.annotate,
        )
    if cfg.redis_url:
        key = job.redis_key or "fittingroom"
        overrides.update(
            SCHEDULER_QUEUE_KEY=f"{key}:%(spider)s:requests",
            SCHEDULER_DUPEFILTER_KEY=f"{key}:%(spider)s:dupefilter",
            SCHEDULER_FLUSH_ON_START=job.redis_flush,
        )
    overrides.update(job.extra_settings)
    settings.setdict(scrapy_settings(cfg, overrides), priority="cmdline")
    return settings


def run_crawl(job: CrawlJob, cfg: CrawlerSettings | None = None) -> CrawlSummary:
    """Crawl ``job.urls`` to completion in this process; returns the summary.

    Raises ValueError for bad start URLs. Failing pages never raise: they are
    counted in the summary.
    """
    from scrapy.crawler import CrawlerProcess

    from crawler.spiders.products import ProductsSpider

    cfg = cfg or CrawlerSettings()
    settings = build_settings(job, cfg)
    if cfg.redis_url:
        import warnings

        from scrapy.exceptions import ScrapyDeprecationWarning

        # scrapy-redis 0.9.1 still uses APIs Scrapy 2.13+ deprecates; the warnings are not ours to fix
        warnings.filterwarnings("ignore", category=ScrapyDeprecationWarning, module="scrapy_redis")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(ProductsSpider)
    process.crawl(
        crawler,
        urls=job.urls,
        allowed_domains=job.allowed_domains or None,
        shop=job.shop,
    )
    process.start()
    assert crawler.stats is not None
    stats = dict(crawler.stats.get_stats())
    if not stats.get("start_time"):
        raise RuntimeError("the crawl did not start (see the log above)")
    return CrawlSummary.from_stats(stats)
