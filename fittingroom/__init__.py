"""fittingroom: garment search and virtual try-on.

This package is the small shared core: typed settings, the catalog document
model and store interface, the FAISS vector index and the image/text encoders.
Components (``catalog_ingest``, ``services.*``, ``crawler``) build on it.
"""

__version__ = "0.1.0"
