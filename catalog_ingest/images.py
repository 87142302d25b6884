"""Fetch product images (local paths or http(s) URLs) into a content-addressed cache.

Every image is stored once, by the SHA-256 of its bytes, at
``cache_dir/ab/abcdef...`` (``cached_image_path``); the default cache is
``settings.home / 'images'``. Downloads use httpx with connect/read timeouts and
retries with exponential back-off on connection errors, timeouts, 429 and 5xx. For
URLs the cache remembers ``ETag``/``Last-Modified`` and revalidates with a conditional
GET, so re-running an unchanged feed downloads nothing. Local paths are relative to
the feed's folder (``base_dir``) unless absolute; ``file://`` URLs work too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx

from fittingroom.images import sha256_bytes

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
USER_AGENT = "fittingroom-ingest/0.1 (+https://github.com/fittingroom)"


class ImageFetchError(Exception):
    """An image could not be read or downloaded; the message names the URL and the cause."""


def cached_image_path(cache_dir: str | Path, sha256: str) -> Path:
    """Where the image with this SHA-256 lives in the cache (it may not exist)."""
    return Path(cache_dir) / sha256[:2] / sha256


@dataclass
class FetchedImage:
    """An image's identity after fetching. ``data`` is None when a conditional GET said 'not modified'."""

    url: str
    sha256: str
    path: Path
    data: bytes | None

    def read(self) -> bytes:
        """The image bytes (from memory or the cache)."""
        return self.data if self.data is not None else self.path.read_bytes()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ImageFetcher:
    """Thread-safe image fetcher with a content-addressed cache.

    ``timeout``: seconds for connect and for each read; ``retries``: extra attempts after
    a transient failure; ``backoff``: first delay in seconds (doubles each retry);
    ``max_bytes``: larger downloads are refused; ``transport``: an httpx transport
    (tests pass ``httpx.MockTransport``).
    """

    def __init__(
        self,
        cache_dir: str | Path,
        *,
        base_dir: str | Path | None = None,
        timeout: float = 20.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_bytes: int = DEFAULT_MAX_BYTES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir).expanduser()
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.retries = retries
        self.backoff = backoff
        self.max_bytes = max_bytes
        self._client_args: dict[str, Any] = dict(
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT, "Accept": "image/*,*/*;q=0.5"},
            transport=transport,
        )
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    # ---- public ----------------------------------------------------------------------
    def fetch(self, url: str) -> FetchedImage:
        """Fetch one image and make sure it is in the cache. Raises ImageFetchError."""
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https"):
            return self._fetch_http(url)
        if parsed.scheme == "file":
            return self._fetch_file(url, Path(unquote(parsed.path)))
        if parsed.scheme and len(parsed.scheme) > 1:  # 'C:' style drive letters are paths
            raise ImageFetchError(
                f"{url}: unsupported URL scheme {parsed.scheme!r} (use http(s) or a file path)"
            )
        path = Path(url).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return self._fetch_file(url, path)

    def adopt(self, url: str, path: str | Path, sha256: str | None = None) -> FetchedImage:
        """Put an image file that is already on disk (the crawler's download of ``url``) into the
        cache without fetching it: a hard link (one copy of the bytes on disk), or a copy where
        linking is impossible (another file system). ``sha256`` is the file's hash when known
        (else it is computed). The file must not be rewritten in place afterwards.
        Raises ImageFetchError when the file cannot be read."""
        src = Path(path)
        try:
            sha = sha256 or _sha256_file(src)
            target = self.path_for(sha)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, target)
                except FileExistsError:
                    pass  # another thread adopted the same bytes
                except OSError:
                    _atomic_write(target, src.read_bytes())
        except OSError as exc:
            raise ImageFetchError(f"{url}: cannot read {src}: {exc.strerror or exc}") from exc
        return FetchedImage(url=url, sha256=sha, path=target, data=None)

    def path_for(self, sha256: str) -> Path:
        return cached_image_path(self.cache_dir, sha256)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> ImageFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- local files -------------------------------------------------------------------
    def _fetch_file(self, url: str, path: Path) -> FetchedImage:
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise ImageFetchError(f"{url}: {size} bytes exceeds the limit of {self.max_bytes}")
            data = path.read_bytes()
        except FileNotFoundError:
            raise ImageFetchError(f"{url}: file not found ({path})") from None
        except OSError as exc:
            raise ImageFetchError(f"{url}: cannot read {path}: {exc.strerror or exc}") from exc
        return self._store(url, data)

    def _store(self, url: str, data: bytes) -> FetchedImage:
        if not data:
            raise ImageFetchError(f"{url}: empty file")
        sha = sha256_bytes(data)
        path = self.path_for(sha)
        if not path.exists():
            _atomic_write(path, data)
        return FetchedImage(url=url, sha256=sha, path=path, data=data)

    # ---- http --------------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        """One shared connection pool (httpx.Client is thread-safe), created on first use."""
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(**self._client_args)
            return self._client

    def _meta_path(self, url: str) -> Path:
        h = hashlib.sha1(url.encode()).hexdigest()
        return self.cache_dir / "urls" / h[:2] / f"{h}.json"

    def _fetch_http(self, url: str) -> FetchedImage:
        meta_path = self._meta_path(url)
        meta: dict[str, str] = {}
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            meta = {}
        headers = {}
        cached_sha = meta.get("sha256")
        if cached_sha and self.path_for(cached_sha).exists():
            if meta.get("etag"):
                headers["If-None-Match"] = meta["etag"]
            if meta.get("last_modified"):
                headers["If-Modified-Since"] = meta["last_modified"]

        delay = self.backoff
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            try:
                with self.client.stream("GET", url, headers=headers) as resp:
                    if resp.status_code == 304 and cached_sha:
                        return FetchedImage(
                            url=url, sha256=cached_sha, path=self.path_for(cached_sha), data=None
                        )
                    if resp.status_code == 429 or resp.status_code >= 500:
                        last_error = f"HTTP {resp.status_code}"
                        continue
                    if resp.status_code != 200:
                        raise ImageFetchError(f"{url}: HTTP {resp.status_code}")
                    declared = resp.headers.get("Content-Length")
                    if declared and declared.isdigit() and int(declared) > self.max_bytes:
                        raise ImageFetchError(
                            f"{url}: {declared} bytes exceeds the limit of {self.max_bytes}"
                        )
                    chunks, total = [], 0
                    for chunk in resp.iter_bytes():
                        total += len(chunk)
                        if total > self.max_bytes:
                            raise ImageFetchError(f"{url}: more than {self.max_bytes} bytes")
                        chunks.append(chunk)
                    data = b"".join(chunks)
                    etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            fetched = self._store(url, data)
            new_meta = {"url": url, "sha256": fetched.sha256}
            if etag:
                new_meta["etag"] = etag
            if modified:
                new_meta["last_modified"] = modified
            try:
                _atomic_write(meta_path, json.dumps(new_meta).encode())
            except OSError as exc:  # the cache metadata is an optimisation only
                log.debug("cannot write %s: %s", meta_path, exc)
            return fetched
        raise ImageFetchError(f"{url}: failed after {self.retries + 1} attempts ({last_error})")
