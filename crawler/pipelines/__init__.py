"""Item pipelines, one concern each (order in ``crawler.settings.ITEM_PIPELINES``):

1. ``validate.ValidatePipeline``: drop items without id/title/image (reason logged and counted);
2. ``images.ProductImagesPipeline``: download images (Scrapy ImagesPipeline; local store,
   dedupe by URL hash, expiry);
3. ``normalize.NormalizePipeline``: Google Merchant Center feed records;
4. ``feed.JsonlFeedPipeline``: write them to a JSONL feed (``-o feed.jsonl``);
5. ``store.CatalogStorePipeline``: ingest them into the catalog store + FAISS index through
   ``catalog_ingest`` in batches.
"""
