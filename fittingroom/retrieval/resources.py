"""Run-time resources of the retrieval service: the hot-reloaded index, image URL
fetching (size-limited, SSRF-guarded) and the ingest image cache."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from fittingroom.index import IndexNotFoundError, VectorIndex
from fittingroom.retrieval.settings import RetrievalSettings

log = logging.getLogger(__name__)


class IndexUnavailableError(RuntimeError):
    """No index is loaded (nothing ingested yet for this encoder)."""


class IndexHolder:
    """The current read-only ``VectorIndex`` of one encoder, re-opened when ingest replaces it.

    ``get()`` checks the file at most every ``reload_s`` seconds; it returns ``None`` while no
    index exists (``error`` then says why). Thread-safe.
    """

    def __init__(self, index_dir: Path, encoder_name: str, *, reload_s: float = 5.0) -> None:
        self.index_dir = Path(index_dir)
        self.encoder_name = encoder_name
        self.reload_s = reload_s
        self.error: str | None = None
        self._index: VectorIndex | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def get(self) -> VectorIndex | None:
        now = time.monotonic()
        if now - self._checked < self.reload_s:
            return self._index
        with self._lock:
            if now - self._checked < self.reload_s:
                return self._index
            try:
                if self._index is None:
                    self._index = VectorIndex.open(self.index_dir, self.encoder_name, read_only=True)
                    log.info("opened %s index of %d vectors", self._index.kind, len(self._index))
                else:
                    fresh = self._index.reloaded()
                    if fresh is not self._index:
                        log.info("index replaced on disk: %d -> %d vectors", len(self._index), len(fresh))
                        self._index = fresh
                self.error = None
            except IndexNotFoundError as exc:
                self.error = str(exc)
                if self._index is None:
                    log.warning("%s", exc)
            except Exception as exc:  # a half-visible file during a copy: keep the old index
                self.error = f"could not open the index: {exc}"
                log.warning("%s", self.error)
            self._checked = now
            return self._index

    def require(self) -> VectorIndex:
        """The current index; raises IndexUnavailableError (with the reason) when there is none."""
        index = self.get()
        if index is None:
            raise IndexUnavailableError(self.error or f"no index for encoder {self.encoder_name!r}")
        return index


class ImageFetchError(Exception):
    """An image URL could not be fetched; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _is_public(addr: str) -> bool:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


class ImageFetcher:
    """Download query images from http(s) URLs with a timeout, a size limit and redirects
    checked hop by hop; loopback/private/link-local hosts are refused unless
    ``settings.allow_private_urls``. ``transport`` replaces the network (tests)."""

    def __init__(
        self, settings: RetrievalSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.url_timeout_s),
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": "fittingroom-retrieval/0.1 (+image search)"},
        )

    async def _check_host(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImageFetchError(f"image_url must be an http(s) URL with a host, got {url!r}", 422)
        if self.settings.allow_private_urls:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 0)
        except socket.gaierror as exc:
            raise ImageFetchError(f"cannot resolve the host of {url}: {exc}") from exc
        if not infos or not all(_is_public(str(info[4][0])) for info in infos):
            raise ImageFetchError(f"image_url {url} points at a private or local address; refused")

    async def fetch(self, url: str) -> bytes:
        """The body of ``url`` (at most ``max_upload_bytes``); raises ImageFetchError."""
        limit = self.settings.max_upload_bytes
        for _ in range(self.settings.url_max_redirects + 1):
            await self._check_host(url)
            try:
                async with self._client.stream("GET", url) as resp:
                    if resp.is_redirect and "location" in resp.headers:
                        url = urljoin(url, resp.headers["location"])
                        continue
                    if resp.status_code != 200:
                        raise ImageFetchError(f"fetching {url} failed: HTTP {resp.status_code}")
                    length = resp.headers.get("content-length")
                    if length and length.isdigit() and int(length) > limit:
                        raise ImageFetchError(f"image at {url} exceeds the {limit}-byte limit", 413)
                    buf = bytearray()
                    async for chunk in resp.aiter_bytes():
                        buf += chunk
                        if len(buf) > limit:
                            raise ImageFetchError(
                                f"image at {url} is larger than the {limit}-byte limit", 413
                            )
                    return bytes(buf)
            except httpx.TimeoutException as exc:
                raise ImageFetchError(
                    f"fetching {url} timed out after {self.settings.url_timeout_s:g}s"
                ) from exc
            except httpx.HTTPError as exc:
                raise ImageFetchError(f"fetching {url} failed: {exc}") from exc
        raise ImageFetchError(f"too many redirects fetching {url}")

    def close(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._client.aclose())
        else:
            loop.create_task(self._client.aclose())


def image_media_type(path: Path) -> str:
    """MIME type of an image file from its content (cache files have no extension)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return Image.MIME.get(img.format or "", "application/octet-stream")
    except (UnidentifiedImageError, OSError):
        return "application/octet-stream"


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``'x0,y0,x1,y1'`` (pixels) -> tuple; raises ValueError with a clear message."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise ValueError(f"box must be 'x0,y0,x1,y1', got {text!r}")
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"box must hold 4 numbers 'x0,y0,x1,y1', got {text!r}") from None
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box {text!r} is empty: need x0 < x1 and y0 < y1")
    return x0, y0, x1, y1
