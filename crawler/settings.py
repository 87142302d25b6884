"""Scrapy settings module of the crawler project (``scrapy.cfg`` points here).

Static defaults only; the values a user tunes come from ``crawler.config.CrawlerSettings``
(``CRAWLER_*`` environment variables and ``fittingroom crawl`` options), which
``crawler.runner`` layers on top of this module.
"""

from crawler.config import DEFAULT_USER_AGENT

BOT_NAME = "fittingroom"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

USER_AGENT = DEFAULT_USER_AGENT
ROBOTSTXT_OBEY = True

# Politeness: few parallel requests per shop, AutoThrottle adapts the delay to the server.
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0.25
DOWNLOAD_DELAY_JITTER = 0.5
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0

# Robustness: timeouts, retries with exponential backoff, limits.
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
# A page that still fails is counted in the crawl summary, not an error of the crawler.
RETRY_GIVE_UP_LOG_LEVEL = "WARNING"
RETRY_BACKOFF_BASE = 1.0
RETRY_BACKOFF_MAX = 60.0
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.BackoffRetryMiddleware": 550,
}
SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "crawler.middlewares.ListingDepthMiddleware": 900,
}
# Link hops from the start pages; a listing's next pages do not count (ListingDepthMiddleware).
DEPTH_LIMIT = 8
DEPTH_STATS_VERBOSE = False
REDIRECT_MAX_TIMES = 10

# Development: an on-disk HTTP cache makes re-runs instant (``--http-cache``).
HTTPCACHE_ENABLED = False
HTTPCACHE_POLICY = "scrapy.extensions.httpcache.DummyPolicy"
HTTPCACHE_IGNORE_HTTP_CODES = [500, 502, 503, 504, 408, 429]

ITEM_PIPELINES = {
    "crawler.pipelines.validate.ValidatePipeline": 100,
    "crawler.pipelines.images.ProductImagesPipeline": 200,
    "crawler.pipelines.normalize.NormalizePipeline": 300,
    "crawler.pipelines.feed.JsonlFeedPipeline": 400,
    "crawler.pipelines.store.CatalogStorePipeline": 500,
}
IMAGES_URLS_FIELD = "image_urls"
IMAGES_RESULT_FIELD = "images_downloaded"
IMAGES_EXPIRES = 30
IMAGES_MIN_WIDTH = 100
IMAGES_MIN_HEIGHT = 100
MEDIA_ALLOW_REDIRECTS = True

# Memory budget (``--memory-limit-mb``): checked every few seconds, the crawl closes above it.
MEMUSAGE_CHECK_INTERVAL_SECONDS = 5

EXTENSIONS = {
    "crawler.extensions.CrawlSummaryExtension": 500,
    # progress JSON for a job that runs the crawl in a subprocess (CRAWLER_PROGRESS_PATH)
    "crawler.extensions.CrawlProgressExtension": 510,
    # the memory limit on current RSS, not the ru_maxrss peak inherited across fork+exec
    "scrapy.extensions.memusage.MemoryUsage": None,
    "crawler.extensions.CurrentRSSMemoryUsage": 0,
}
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
