"""Where catalog images live on disk: one file per image, named by the sha256 of its bytes.

Ingest (feeds and crawls) writes each image once as ``{cache_dir}/{sha[:2]}/{sha}``;
retrieval serves it and try-on reads it from there.
"""

from __future__ import annotations

from pathlib import Path


def cached_image_path(cache_dir: str | Path, sha256: str) -> Path:
    """Where the image with this SHA-256 lives in the cache (it may not exist)."""
    return Path(cache_dir) / sha256[:2] / sha256


def find_cached_image(cache_dir: Path, sha256: str) -> Path | None:
    """Path of the cached original of image ``sha256``, or None.

    The ingest cache stores ``{cache_dir}/{sha[:2]}/{sha}`` (no extension,
    ``catalog_ingest.images.cached_image_path``); ``{sha[:2]}/{sha}.EXT`` and ``{sha}.EXT``
    are accepted too.
    """
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        return None
    exact = cache_dir / sha256[:2] / sha256
    if exact.is_file():
        return exact
    for folder in (cache_dir / sha256[:2], cache_dir):
        if folder.is_dir():
            for p in folder.glob(f"{sha256}.*"):
                if p.is_file():
                    return p
    return None
