"""Fetch product images (local paths or http(s) URLs) into a content-addressed cache.

Every image is stored once, by the SHA-256 of its bytes, at
``cache_dir/ab/abcdef...`` (``cached_image_path``); the default cache is
``settings.home / 'images'``. Downloads go through the one SSRF-guarded fetcher
(``fittingroom.fetch.Fetcher``: http(s) only, every resolved address checked and the
connection pinned to it, redirects re-checked, size counted while streaming, timeouts), with
retries and exponential back-off on connection errors, timeouts, 429 and 5xx. For URLs the
cache remembers ``ETag``/``Last-Modified`` and revalidates with a conditional GET, so
re-running an unchanged feed downloads nothing.

Local paths and ``file://`` URLs are only accepted from LOCAL feeds: a fetcher made with a
``base_dir`` (the feed's folder) reads relative paths from there and accepts only regular
files inside ``local_roots`` (default: ``base_dir``) - no ``../`` escapes, FIFOs, devices or
folders (``fittingroom.fetch.read_regular_file``). A fetcher without ``base_dir``/``local_roots``
(remote feeds, crawls) refuses every local path; files the caller itself downloaded are read
with ``fetch_file``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpcore
import httpx

from fittingroom.atomicio import atomic_write
from fittingroom.catalog.image_cache import cached_image_path
from fittingroom.fetch import Fetcher, FetchError, FetchPolicy, read_regular_file
from fittingroom.images import sha256_bytes

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
USER_AGENT = "fittingroom-ingest/0.1 (+https://github.com/fittingroom)"


#: An image could not be read or downloaded; the message names the URL and the cause.
ImageFetchError = FetchError


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
    atomic_write(path, data)


class ImageFetcher:
    """Thread-safe image fetcher with a content-addressed cache.

    ``base_dir``: folder relative local paths are read from (the feed's folder; None for
    remote feeds and crawls: no local paths then); ``local_roots``: folders local images
    must lie in (default ``[base_dir]``, or none); ``timeout``: seconds for connect and for
    each read; ``retries``: extra attempts after a transient failure; ``backoff``: first delay
    in seconds (doubles each retry); ``max_bytes``: larger images are refused;
    ``allow_private``: fetch from private/loopback addresses (tests, development);
    ``resolver`` / ``network_backend`` / ``transport``: replace DNS, the sockets or the whole
    network (tests, see ``fittingroom.fetch``).
    """

    def __init__(
        self,
        cache_dir: str | Path,
        *,
        base_dir: str | Path | None = None,
        local_roots: Sequence[str | Path] | None = None,
        timeout: float = 20.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_bytes: int = DEFAULT_MAX_BYTES,
        allow_private: bool = False,
        resolver: Callable[[str, int], Sequence[str]] | None = None,
        network_backend: httpcore.NetworkBackend | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir).expanduser()
        self.base_dir = Path(base_dir) if base_dir is not None else None
        if local_roots is None:
            local_roots = [self.base_dir] if self.base_dir is not None else []
        self.local_roots = [Path(r) for r in local_roots]
        self.retries = retries
        self.backoff = backoff
        self.max_bytes = max_bytes
        self.policy = FetchPolicy(
            max_bytes=max_bytes,
            timeout_s=timeout,
            total_timeout_s=max(60.0, 6 * timeout),
            allow_private=allow_private,
            user_agent=USER_AGENT,
        )
        self._fetcher_args = dict(resolver=resolver, network_backend=network_backend, transport=transport)
        self._fetcher: Fetcher | None = None
        self._lock = threading.Lock()

    # ---- public ----------------------------------------------------------------------
    def fetch(self, url: str) -> FetchedImage:
        """Fetch one image and make sure it is in the cache. Raises ImageFetchError."""
        parsed = urlsplit(url)
        scheme = parsed.scheme.lower()
        if scheme in ("http", "https"):
            return self._fetch_http(url)
        if scheme == "file":
            if parsed.netloc not in ("", "localhost"):
                raise ImageFetchError(f"{url}: file:// URLs of another host are not read")
            return self._fetch_local(url, Path(unquote(parsed.path)))
        if scheme and len(scheme) > 1:  # 'C:' style drive letters are paths
            raise ImageFetchError(
                f"{url}: unsupported URL scheme {parsed.scheme!r} (use http(s) or a file path)", 422
            )
        path = Path(url).expanduser()
        if not path.is_absolute():
            if self.base_dir is None:
                raise ImageFetchError(f"{url}: a relative image path needs a local feed; refused")
            path = self.base_dir / path
        return self._fetch_local(url, path)

    def fetch_file(self, path: str | Path, *, url: str | None = None) -> FetchedImage:
        """Store a local file the CALLER vouches for (e.g. one it downloaded itself), wherever it is.

        Still only a regular file within ``max_bytes``. ``url`` (default: the path) is recorded.
        """
        name = url or str(path)
        return self._store(name, self._read(name, Path(path), roots=None))

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
            if self._fetcher is not None:
                self._fetcher.close()
                self._fetcher = None

    def __enter__(self) -> ImageFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- local files -------------------------------------------------------------------
    def _fetch_local(self, url: str, path: Path) -> FetchedImage:
        if not self.local_roots:
            raise ImageFetchError(
                f"{url}: local files and file:// URLs are only read for local feeds, not remote "
                "feeds or crawls; refused"
            )
        return self._store(url, self._read(url, path, roots=self.local_roots))

    def _read(self, url: str, path: Path, *, roots: Sequence[Path] | None) -> bytes:
        try:
            return read_regular_file(path, max_bytes=self.max_bytes, roots=roots)
        except FetchError as exc:
            raise ImageFetchError(f"{url}: {exc}", exc.status) from exc

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
    def fetcher(self) -> Fetcher:
        """One shared SSRF-guarded fetcher (thread-safe connection pool), created on first use."""
        with self._lock:
            if self._fetcher is None:
                self._fetcher = Fetcher(self.policy, **self._fetcher_args)  # type: ignore[arg-type]
            return self._fetcher

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
                got = self.fetcher.get(url, headers=headers)
            except FetchError as exc:
                if not exc.transient:
                    raise ImageFetchError(
                        f"{url}: {exc}", exc.status, upstream_status=exc.upstream_status
                    ) from exc
                cause = exc.__cause__
                last_error = f"{type(cause).__name__}: {exc}" if cause is not None else str(exc)
                continue
            if got.status_code == 304 and cached_sha:
                return FetchedImage(url=url, sha256=cached_sha, path=self.path_for(cached_sha), data=None)
            fetched = self._store(url, got.content)
            new_meta = {"url": url, "sha256": fetched.sha256}
            etag, modified = got.headers.get("ETag"), got.headers.get("Last-Modified")
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
