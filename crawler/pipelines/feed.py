"""Write normalised products to a JSONL feed (``fittingroom crawl ... -o feed.jsonl``).

One GMC record per line (see ``crawler.pipelines.normalize``), ready for
``fittingroom ingest feed.jsonl``. The file is written next to the target as
``<name>.partial`` and renamed when the crawl closes, so a reader never sees a
half-written feed; a crawl that dies leaves the ``.partial`` file for inspection.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured

from crawler.items import ProductItem

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class JsonlFeedPipeline:
    """Append each item's ``feed_records`` to ``CRAWLER_FEED_PATH`` (enabled when that is set)."""

    def __init__(self, crawler: Crawler, path: Path) -> None:
        self.crawler = crawler
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.fh: IO[str] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> JsonlFeedPipeline:
        path = crawler.settings.get("CRAWLER_FEED_PATH")
        if not path:
            raise NotConfigured  # no -o: products go to the catalog
        return cls(crawler, Path(path))

    def open_spider(self, spider: Any = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = self.partial.open("w", encoding="utf-8")

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, ProductItem) and self.fh is not None:
            for rec in item.feed_records:
                self.fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.fh.flush()
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("feed/products")
            self.crawler.stats.inc_value("feed/records", len(item.feed_records))
        return item

    def close_spider(self, spider: Any = None) -> None:
        if self.fh is None:
            return
        self.fh.close()
        self.fh = None
        os.replace(self.partial, self.path)
        logger.info("feed written: %s", self.path)
