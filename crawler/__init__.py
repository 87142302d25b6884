"""The Scrapy project that fills the catalog from shops (see ``crawler/README.md``).

``crawler.extract`` extracts products from single pages (no crawl needed);
``crawler.spiders.products`` crawls shops; ``crawler.pipelines`` validates, downloads
images, normalises to Google Merchant Center records and writes a feed or the catalog;
``crawler.cli`` adds ``fittingroom crawl``, ``fittingroom parse`` and
``fittingroom eval extraction``.
"""
