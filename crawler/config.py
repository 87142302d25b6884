"""Typed crawler settings (env prefix ``CRAWLER_``), turned into Scrapy settings.

Every ``fittingroom crawl`` option has a setting here; the command line wins
over the environment. ``REDIS_URL`` (or ``CRAWLER_REDIS_URL``) switches the
scheduler and duplicate filter to scrapy-redis so several crawler processes
share one queue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fittingroom import __version__ as _fr_version

DEFAULT_USER_AGENT = (
    f"fittingroom-crawler/{_fr_version} (+https://github.com/fittingroom/fittingroom; "
    "product catalog crawler; obeys robots.txt)"
)


class CrawlerSettings(BaseSettings):
    """Crawler settings read from ``CRAWLER_*`` environment variables (or ``.env``)."""

    model_config = SettingsConfigDict(
        env_prefix="CRAWLER_", env_file=".env", extra="ignore", populate_by_name=True
    )

    user_agent: str = Field(
        default=DEFAULT_USER_AGENT, description="User-Agent header; name the bot and a contact."
    )
    obey_robots: bool = Field(default=True, description="Obey robots.txt (Scrapy ROBOTSTXT_OBEY).")
    concurrent_requests: int = Field(default=16, ge=1, description="Requests in flight overall.")
    concurrent_per_domain: int = Field(default=4, ge=1, description="Requests in flight per domain.")
    download_delay: float = Field(
        default=0.25, ge=0, description="Minimum seconds between requests to one domain."
    )
    autothrottle: bool = Field(
        default=True, description="Adapt the delay to the server's latency (AutoThrottle)."
    )
    autothrottle_target: float = Field(
        default=2.0, gt=0, description="AutoThrottle target concurrency per domain."
    )
    autothrottle_max_delay: float = Field(
        default=30.0, gt=0, description="Longest AutoThrottle delay, seconds."
    )
    timeout: float = Field(default=30.0, gt=0, description="Download timeout per request, seconds.")
    retries: int = Field(
        default=3, ge=0, description="Retries of a failed request (5xx, 429, 408, timeouts)."
    )
    retry_backoff: float = Field(
        default=1.0, ge=0, description="First retry waits this many seconds, then x2 each."
    )
    retry_backoff_max: float = Field(default=60.0, ge=0, description="Longest wait before a retry, seconds.")
    max_pages: int = Field(default=0, ge=0, description="Stop after this many responses (0 = no limit).")
    max_depth: int = Field(
        default=8, ge=0, description="Link depth limit from the start URLs (0 = no limit)."
    )
    follow_links: bool = Field(default=True, description="Follow listing, pagination and product links.")
    sitemaps: bool = Field(
        default=True, description="Also read the sitemaps robots.txt names for start pages."
    )
    http_cache: bool = Field(default=False, description="Cache responses on disk (for development re-runs).")
    http_cache_dir: Path | None = Field(
        default=None, description="HTTP cache folder (default: home/crawler/httpcache)."
    )
    http_cache_expiration: int = Field(
        default=0, ge=0, description="HTTP cache entry lifetime, s (0 = never)."
    )
    images: bool = Field(default=True, description="Download product images with Scrapy's ImagesPipeline.")
    images_dir: Path | None = Field(default=None, description="Image store (default: home/crawler/images).")
    images_expires_days: int = Field(default=30, ge=0, description="Re-download an image older than this.")
    images_min_side: int = Field(
        default=100, ge=0, description="Ignore images smaller than this many pixels a side."
    )
    max_images_per_product: int = Field(default=24, ge=1, description="Images kept per product.")
    batch_size: int = Field(default=64, ge=1, description="Products per catalog write batch.")
    site_rules: Path | None = Field(default=None, description="Extra site-rules TOML file (checked first).")
    state_dir: Path | None = Field(
        default=None, description="Crawl state (re-crawl hashes; default home/crawler)."
    )
    memory_limit_mb: int = Field(
        default=0, ge=0, description="Close the crawl above this RSS (0 = no limit)."
    )
    job_dir: Path | None = Field(default=None, description="Scrapy JOBDIR: disk request queue, pause/resume.")
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CRAWLER_REDIS_URL", "REDIS_URL"),
        description="redis://host:6379/0 to share the scheduler queue and dupefilter (scrapy-redis).",
    )
    log_level: str = Field(default="INFO", description="Scrapy log level.")

    def resolved_dir(self, name: str, value: Path | None) -> Path:
        from fittingroom.settings import get_settings

        return value or get_settings().home / "crawler" / name


def scrapy_settings(cfg: CrawlerSettings, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Scrapy settings for ``cfg`` (on top of ``crawler.settings``); ``overrides`` win."""
    s: dict[str, Any] = {
        "USER_AGENT": cfg.user_agent,
        "ROBOTSTXT_OBEY": cfg.obey_robots,
        "CONCURRENT_REQUESTS": cfg.concurrent_requests,
        "CONCURRENT_REQUESTS_PER_DOMAIN": cfg.concurrent_per_domain,
        "DOWNLOAD_DELAY": cfg.download_delay,
        "AUTOTHROTTLE_ENABLED": cfg.autothrottle,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": cfg.autothrottle_target,
        "AUTOTHROTTLE_MAX_DELAY": cfg.autothrottle_max_delay,
        "AUTOTHROTTLE_START_DELAY": max(cfg.download_delay, 0.5),
        "DOWNLOAD_TIMEOUT": cfg.timeout,
        "RETRY_ENABLED": cfg.retries > 0,
        "RETRY_TIMES": cfg.retries,
        "RETRY_BACKOFF_BASE": cfg.retry_backoff,
        "RETRY_BACKOFF_MAX": cfg.retry_backoff_max,
        "CLOSESPIDER_PAGECOUNT": cfg.max_pages,
        "DEPTH_LIMIT": cfg.max_depth,
        "HTTPCACHE_ENABLED": cfg.http_cache,
        "HTTPCACHE_DIR": str(cfg.resolved_dir("httpcache", cfg.http_cache_dir)),
        "HTTPCACHE_EXPIRATION_SECS": cfg.http_cache_expiration,
        "IMAGES_STORE": str(cfg.resolved_dir("images", cfg.images_dir)),
        "IMAGES_EXPIRES": cfg.images_expires_days,
        "IMAGES_MIN_WIDTH": cfg.images_min_side,
        "IMAGES_MIN_HEIGHT": cfg.images_min_side,
        "CRAWLER_IMAGES": cfg.images,
        "CRAWLER_MAX_IMAGES": cfg.max_images_per_product,
        "CRAWLER_BATCH_SIZE": cfg.batch_size,
        "CRAWLER_FOLLOW_LINKS": cfg.follow_links,
        "CRAWLER_SITEMAPS": cfg.sitemaps,
        "CRAWLER_SITE_RULES": str(cfg.site_rules) if cfg.site_rules else None,
        "CRAWLER_STATE_DIR": str(cfg.resolved_dir("state", cfg.state_dir)),
        "LOG_LEVEL": cfg.log_level,
        "MEMUSAGE_LIMIT_MB": cfg.memory_limit_mb,
    }
    if cfg.job_dir:
        s["JOBDIR"] = str(cfg.job_dir)
    if cfg.redis_url:
        s.update(
            {
                "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
                "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
                "SCHEDULER_PERSIST": True,
                "REDIS_URL": cfg.redis_url,
            }
        )
    s.update(overrides or {})
    return s
