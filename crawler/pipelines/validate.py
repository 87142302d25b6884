"""Drop products that cannot enter the catalog, with the reason logged and counted."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.exceptions import DropItem

from crawler.items import ProductItem

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

#: Product ids are used in catalog uids ``source:id``; keep them printable and bounded.
MAX_ID_LENGTH = 120


def shop_name(url: str) -> str:
    """Default catalog source of a shop: its host without ``www.`` (``'shop.example.com'``)."""
    host = (urlsplit(url).hostname or "shop").lower().removeprefix("www.")
    return re.sub(r"[^a-z0-9._-]+", "-", host)


class ValidatePipeline:
    """Require an id (SKU, product group id or URL id), a title and at least one image.

    A dropped item raises ``DropItem`` with the reason; the stats count
    ``items/dropped/<reason>``. Kept items get ``image_urls`` (at most
    ``CRAWLER_MAX_IMAGES``) and their ``shop`` (default: the page's host).
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.max_images = crawler.settings.getint("CRAWLER_MAX_IMAGES", 24)
        self.shop = crawler.settings.get("CRAWLER_SHOP")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidatePipeline:
        return cls(crawler)

    def _drop(self, reason: str, item: ProductItem) -> DropItem:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"items/dropped/{reason.replace(' ', '_')}")
        logger.warning("dropped %s: %s", item.url, reason)
        return DropItem(f"{reason}: {item.url}")

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if not isinstance(item, ProductItem):
            return item
        pid = item.product_id()
        if pid:
            pid = re.sub(r"\s+", " ", pid).strip()[:MAX_ID_LENGTH]
        if not pid:
            raise self._drop("no id", item)
        if item.product_group_id:
            item.product_group_id = pid
        elif item.sku:
            item.sku = pid
        if not item.name:
            raise self._drop("no title", item)
        if not item.images:
            raise self._drop("no image", item)
        if item.price is not None and (item.price < 0 or item.price != item.price):
            item.price = None
        item.shop = self.shop or item.shop or shop_name(item.url)
        item.image_urls = item.images[: self.max_images]
        return item
