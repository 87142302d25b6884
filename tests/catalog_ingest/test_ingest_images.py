from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from ingest_fakes import image_bytes

from catalog_ingest.images import ImageFetcher, ImageFetchError
from fittingroom.catalog.image_cache import cached_image_path


def test_local_paths_are_relative_to_the_feed_folder_and_stored_once(tmp_path: Path) -> None:
    data = image_bytes(1)
    (tmp_path / "feed" / "img").mkdir(parents=True)
    (tmp_path / "feed" / "img" / "a.jpg").write_bytes(data)
    (tmp_path / "feed" / "img" / "copy.jpg").write_bytes(data)
    cache = tmp_path / "cache"
    fetcher = ImageFetcher(cache, base_dir=tmp_path / "feed")
    a = fetcher.fetch("img/a.jpg")
    b = fetcher.fetch(str(tmp_path / "feed" / "img" / "copy.jpg"))
    c = fetcher.fetch((tmp_path / "feed" / "img" / "a.jpg").as_uri())
    sha = hashlib.sha256(data).hexdigest()
    assert a.sha256 == b.sha256 == c.sha256 == sha
    assert a.path == cached_image_path(cache, sha) == cache / sha[:2] / sha
    assert a.path.read_bytes() == data
    assert [p for p in cache.rglob("*") if p.is_file()] == [a.path]


def test_local_errors_name_the_image(tmp_path: Path) -> None:
    fetcher = ImageFetcher(tmp_path / "cache", base_dir=tmp_path)
    with pytest.raises(ImageFetchError, match="missing.jpg: file not found"):
        fetcher.fetch("missing.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageFetchError, match="empty file"):
        fetcher.fetch("empty.jpg")
    with pytest.raises(ImageFetchError, match="unsupported URL scheme 'ftp'"):
        fetcher.fetch("ftp://host/a.jpg")


class Server:
    """Scripted responses per URL; counts requests."""

    def __init__(self, script: dict[str, list]) -> None:
        self.script = script
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        todo = self.script[str(request.url)]
        step = todo.pop(0) if len(todo) > 1 else todo[0]
        if isinstance(step, Exception):
            raise step
        return step(request) if callable(step) else step


def fetcher_for(tmp_path: Path, server: Server, **kw) -> ImageFetcher:
    return ImageFetcher(tmp_path / "cache", transport=httpx.MockTransport(server), backoff=0.001, **kw)


def test_http_retries_transient_failures(tmp_path: Path) -> None:
    data = image_bytes(2)
    url = "https://cdn.example/a.jpg"
    server = Server(
        {url: [httpx.Response(503), httpx.ConnectError("reset"), httpx.Response(200, content=data)]}
    )
    got = fetcher_for(tmp_path, server, retries=3).fetch(url)
    assert got.sha256 == hashlib.sha256(data).hexdigest() and got.path.read_bytes() == data
    assert len(server.requests) == 3


def test_http_gives_up_after_the_retries(tmp_path: Path) -> None:
    url = "https://cdn.example/slow.jpg"
    server = Server({url: [httpx.ReadTimeout("timed out")]})
    with pytest.raises(ImageFetchError, match=r"slow\.jpg: failed after 3 attempts \(ReadTimeout"):
        fetcher_for(tmp_path, server, retries=2).fetch(url)
    assert len(server.requests) == 3


def test_http_client_errors_are_not_retried(tmp_path: Path) -> None:
    url = "https://cdn.example/gone.jpg"
    server = Server({url: [httpx.Response(404)]})
    with pytest.raises(ImageFetchError, match="HTTP 404"):
        fetcher_for(tmp_path, server).fetch(url)
    assert len(server.requests) == 1


def test_http_revalidates_with_etag_instead_of_downloading(tmp_path: Path) -> None:
    data = image_bytes(3)
    url = "https://cdn.example/etag.jpg"

    def respond(request: httpx.Request) -> httpx.Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, content=data, headers={"ETag": '"v1"'})

    server = Server({url: [respond]})
    fetcher = fetcher_for(tmp_path, server)
    first = fetcher.fetch(url)
    second = fetcher.fetch(url)
    assert first.data == data
    assert second.data is None and second.sha256 == first.sha256 and second.read() == data
    assert "If-None-Match" not in server.requests[0].headers
    assert server.requests[1].headers["If-None-Match"] == '"v1"'


def test_http_size_limit(tmp_path: Path) -> None:
    url = "https://cdn.example/huge.jpg"
    server = Server({url: [httpx.Response(200, content=b"x" * 2000)]})
    with pytest.raises(ImageFetchError, match="exceeds the limit"):
        fetcher_for(tmp_path, server, max_bytes=1000).fetch(url)
