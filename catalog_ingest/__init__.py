"""Product feed ingest: reader -> mapper -> image fetch -> writer (embed + store) -> index sync.

Entry points: ``fittingroom ingest FEED`` (``catalog_ingest.cli``) and
``catalog_ingest.runner.ingest_feed`` (a feed file) / ``ingest_records`` (records in memory,
the crawler's path).
"""
