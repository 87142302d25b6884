"""Write products to the catalog store + FAISS index through ``catalog_ingest``.

Products are buffered and ingested in batches of ``CRAWLER_BATCH_SIZE`` with
``catalog_ingest.runner.ingest_records`` (the same mapping, image hashing,
embedding, eligibility annotation and index sync as ``fittingroom ingest``), in
a worker thread so the crawl goes on meanwhile. The batch's GMC records go to the
ingest in memory (no feed file). Each image is fetched once and stored once: the
ImagesPipeline's download is linked into the ingest's content-addressed cache under
the SHA-256 it recorded (``ImageFetcher.adopt``), never fetched, hashed or copied again.

Re-crawls: ingest is idempotent per ``(source, id)``, so an unchanged product
is left untouched (nothing embedded or written); a changed one is updated and
only its changed images are embedded. The stats count ``catalog/new``,
``catalog/updated``, ``catalog/unchanged``, ``catalog/embedded`` and
``catalog/bad_rows``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured
from twisted.internet.defer import Deferred, DeferredLock, succeed
from twisted.internet.threads import deferToThread

from crawler.items import ProductItem

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from catalog_ingest.images import FetchedImage, ImageFetcher

logger = logging.getLogger(__name__)


def crawled_image_fetcher(cache_dir: Path, local: dict[str, dict[str, Any]]) -> ImageFetcher:
    """An ingest ``ImageFetcher`` that adopts already-downloaded URLs instead of fetching them.

    ``local``: image URL -> its ``ProductItem.images_downloaded`` entry (``path``, and
    ``sha256`` when the ImagesPipeline recorded it). Other URLs are fetched as usual.
    """
    from catalog_ingest.images import ImageFetcher

    class CrawledImageFetcher(ImageFetcher):
        def fetch(self, url: str) -> FetchedImage:
            done = local.get(url)
            if done and done.get("path") and Path(done["path"]).is_file():
                return self.adopt(url, done["path"], done.get("sha256"))
            return super().fetch(url)

    return CrawledImageFetcher(cache_dir)


class CatalogStorePipeline:
    """Batch products into the catalog (enabled when ``CRAWLER_STORE_URI`` is set)."""

    def __init__(self, crawler: Crawler, store_uri: str) -> None:
        self.crawler = crawler
        self.store_uri = store_uri
        self.batch_size = crawler.settings.getint("CRAWLER_BATCH_SIZE", 64)
        self.encoder_name = crawler.settings.get("CRAWLER_ENCODER")
        self.index_dir = crawler.settings.get("CRAWLER_INDEX_DIR")
        self.annotate = crawler.settings.getbool("CRAWLER_ANNOTATE", True)
        self.state_dir = Path(crawler.settings.get("CRAWLER_STATE_DIR") or tempfile.gettempdir())
        self.buffer: list[ProductItem] = []
        self.lock = DeferredLock()
        self.store: Any = None
        self.encoder: Any = None
        self.annotators: list[Any] = []
        self.batches = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CatalogStorePipeline:
        uri = crawler.settings.get("CRAWLER_STORE_URI")
        if not uri:
            raise NotConfigured  # -o given: feed output only
        return cls(crawler, uri)

    def open_spider(self, spider: Any = None) -> None:
        from catalog_ingest.annotators import load_default_annotators
        from fittingroom.catalog.store import open_store
        from fittingroom.models.specs import get_encoder
        from fittingroom.settings import get_settings

        settings = get_settings()
        self.settings = settings
        self.store = open_store(self.store_uri)
        self.encoder = get_encoder(settings, self.encoder_name or settings.encoder)
        self.annotators = load_default_annotators(settings) if self.annotate else []
        self.index_dir = Path(self.index_dir) if self.index_dir else settings.resolved_index_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if not isinstance(item, ProductItem):
            return item
        self.buffer.append(item)
        if len(self.buffer) < self.batch_size:
            return item
        batch, self.buffer = self.buffer, []
        d = self._flush(batch)
        d.addCallback(lambda _: item)
        return d

    def close_spider(self, spider: Any = None) -> Deferred[None]:
        batch, self.buffer = self.buffer, []
        d = self._flush(batch)

        def close(_: Any) -> None:
            if self.store is not None:
                self.store.close()

        d.addBoth(close)
        return d

    def _flush(self, batch: list[ProductItem]) -> Deferred[None]:
        if not batch:
            return succeed(None)
        return self.lock.run(deferToThread, self._ingest, batch)

    def _ingest(self, batch: list[ProductItem]) -> None:
        """Runs in a worker thread, one batch at a time (the DeferredLock)."""
        from catalog_ingest.runner import IngestAborted, ingest_records

        stats = self.crawler.stats
        assert stats is not None
        by_shop: dict[str, list[ProductItem]] = {}
        for it in batch:
            by_shop.setdefault(it.shop or "crawl", []).append(it)
        for shop, items in by_shop.items():
            self.batches += 1
            local = {d["url"]: d for it in items for d in it.images_downloaded}
            records = [rec for it in items for rec in it.feed_records]
            fetcher = crawled_image_fetcher(self.settings.home / "images", local)
            try:
                report = ingest_records(
                    records,
                    store=self.store,
                    encoder=self.encoder,
                    source=shop,
                    name=f"crawl batch {self.batches} ({shop})",
                    annotators=self.annotators,
                    fetcher=fetcher,
                    index_dir=self.index_dir,
                    progress=False,
                )
            except IngestAborted as exc:
                report = exc.report
                logger.error("catalog batch of %s failed: %s", shop, exc)
                stats.inc_value("catalog/failed_batches")
            finally:
                fetcher.close()
            for key in ("new", "updated", "unchanged", "embedded", "annotated"):
                stats.inc_value(f"catalog/{key}", getattr(report, key))
            stats.inc_value("catalog/bad_rows", len(report.bad_rows))
            for bad in report.bad_rows:
                logger.warning("catalog skipped %s", bad)
