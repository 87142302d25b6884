"""Run-time resources of the retrieval service: the hot-reloaded index, image URL
fetching (size-limited, SSRF-guarded) and the ingest image cache."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import httpx

from fittingroom.fetch import AsyncFetcher, FetchError, FetchPolicy
from fittingroom.images import parse_box as parse_box  # re-exported: the service's import
from fittingroom.index import AnyIndex, IndexMismatchError, IndexNotFoundError, open_index
from fittingroom.index.storage import saved_generation
from fittingroom.retrieval.settings import RetrievalSettings

log = logging.getLogger(__name__)


class IndexUnavailableError(RuntimeError):
    """No index is loaded (nothing ingested yet for this encoder)."""


class EncoderIndexMismatch(IndexUnavailableError):
    """The index found for the encoder was built by another encoder (name or dimension differ):
    ``fittingroom.index.IndexMismatchError`` as the service reports it (503, never a search
    over vectors that are not comparable). ``__cause__`` is that error."""


class IndexHolder:
    """The current read-only ``VectorIndex`` of one encoder, re-opened when ingest replaces it
    (or its ``MilvusIndex`` with ``FITTINGROOM_INDEX_BACKEND=milvus``: opened once, live).

    ``get()`` checks the file at most every ``reload_s`` seconds, and at once after this process
    saved an index (a catalog job of the all-in-one server: ``storage.saved_generation``), so a
    job's new generation is served as soon as the job ends; it returns ``None`` while no
    index exists or the index does not match the encoder (name, or ``dim`` when given):
    ``error`` then says why. Thread-safe.
    """

    def __init__(
        self, index_dir: Path, encoder_name: str, *, reload_s: float = 5.0, dim: int | None = None
    ) -> None:
        self.index_dir = Path(index_dir)
        self.encoder_name = encoder_name
        self.dim = dim
        self.reload_s = reload_s
        self.error: str | None = None
        self._mismatch: IndexMismatchError | None = None
        self._index: AnyIndex | None = None
        self._checked = float("-inf")
        self._generation = -1
        self._lock = threading.Lock()

    def get(self) -> AnyIndex | None:
        now = time.monotonic()
        generation = saved_generation()
        if now - self._checked < self.reload_s and generation == self._generation:
            return self._index
        with self._lock:
            if now - self._checked < self.reload_s and generation == self._generation:
                return self._index
            self._generation = generation
            try:
                if self._index is None:
                    self._index = open_index(self.index_dir, self.encoder_name, read_only=True, dim=self.dim)
                    log.info("opened %s index of %d vectors", self._index.kind, len(self._index))
                else:
                    fresh = self._index.reloaded()  # checks the new file against this dim
                    if fresh is not self._index:
                        log.info("index replaced on disk: %d -> %d vectors", len(self._index), len(fresh))
                        self._index = fresh
                self.error = None
                self._mismatch = None
            except IndexMismatchError as exc:  # never search another encoder's vectors
                self.error = str(exc)
                self._mismatch = exc
                self._index = None
                log.error("%s", exc)
            except IndexNotFoundError as exc:
                if self._index is None and self.error != str(exc):  # once, not at every health check
                    log.warning("%s", exc)
                self.error = str(exc)
            except Exception as exc:  # a half-visible file during a copy: keep the old index
                self.error = f"could not open the index: {exc}"
                log.warning("%s", self.error)
            self._checked = now
            return self._index

    def require(self) -> AnyIndex:
        """The current index; raises IndexUnavailableError (with the reason) when there is none,
        EncoderIndexMismatch (a subclass) when the index on disk is another encoder's."""
        index = self.get()
        if index is None:
            if self._mismatch is not None:
                raise EncoderIndexMismatch(str(self._mismatch)) from self._mismatch
            raise IndexUnavailableError(self.error or f"no index for encoder {self.encoder_name!r}")
        return index


#: What the app catches: every fetch failure, with ``status`` to answer with.
ImageFetchError = FetchError


class ImageFetcher(AsyncFetcher):
    """The retrieval service's URL fetcher: the one SSRF-guarded fetcher (``fittingroom.fetch``)
    with the service's limits. ``transport`` replaces the network (tests)."""

    def __init__(
        self, settings: RetrievalSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        super().__init__(
            FetchPolicy(
                max_bytes=settings.max_upload_bytes,
                timeout_s=settings.url_timeout_s,
                max_redirects=settings.url_max_redirects,
                allow_private=settings.allow_private_urls,
                user_agent="fittingroom-retrieval/0.1 (+image search)",
            ),
            transport=transport,
        )


def image_media_type(path: Path) -> str:
    """MIME type of an image file from its content (cache files have no extension)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return Image.MIME.get(img.format or "", "application/octet-stream")
    except (UnidentifiedImageError, OSError):
        return "application/octet-stream"
