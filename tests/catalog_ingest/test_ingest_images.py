from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import httpcore
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


# ---- local path policy ----------------------------------------------------------------------------
def _in_thread(fn, timeout: float = 5.0) -> BaseException | None:
    """Run ``fn`` in a thread; fail when it blocks; return what it raised."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            raised.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "blocked"
    return raised[0] if raised else None


def test_local_feeds_read_only_regular_files_inside_the_feed_folder(tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    (feed / "img").mkdir(parents=True)
    (feed / "img" / "ok.jpg").write_bytes(image_bytes(1))
    (tmp_path / "secret.jpg").write_bytes(image_bytes(2))
    (feed / "img" / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    os.mkfifo(feed / "img" / "pipe.jpg")
    fetcher = ImageFetcher(tmp_path / "cache", base_dir=feed)
    assert fetcher.fetch("img/ok.jpg").data == image_bytes(1)

    err = _in_thread(lambda: fetcher.fetch("img/pipe.jpg"))
    assert isinstance(err, ImageFetchError) and "not a regular file (a FIFO)" in str(err)
    for escape in ("../secret.jpg", "img/../../secret.jpg", "img/link.jpg", str(tmp_path / "secret.jpg"),
                   (tmp_path / "secret.jpg").as_uri(), "/etc/passwd"):  # fmt: skip
        with pytest.raises(ImageFetchError, match="outside the allowed folders"):
            fetcher.fetch(escape)
    with pytest.raises(ImageFetchError, match="outside the allowed folders"):
        fetcher.fetch("/dev/zero")
    with pytest.raises(ImageFetchError, match="not a regular file \\(a folder\\)"):
        fetcher.fetch("img")
    ok = fetcher.path_for(hashlib.sha256(image_bytes(1)).hexdigest())
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == [ok]  # nothing refused was stored


def test_devices_are_refused_even_inside_an_allowed_root(tmp_path: Path) -> None:
    fetcher = ImageFetcher(tmp_path / "cache", base_dir=tmp_path, local_roots=[tmp_path, "/dev"])
    err = _in_thread(lambda: fetcher.fetch("/dev/zero"))
    assert isinstance(err, ImageFetchError) and "not a regular file (a character device)" in str(err)
    err = _in_thread(lambda: fetcher.fetch("file:///dev/zero"))
    assert isinstance(err, ImageFetchError) and "character device" in str(err)


def test_extra_image_roots(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "a.jpg").write_bytes(image_bytes(3))
    feed = tmp_path / "feed"
    feed.mkdir()
    with pytest.raises(ImageFetchError, match="outside the allowed folders"):
        ImageFetcher(tmp_path / "cache", base_dir=feed).fetch("../shared/a.jpg")
    wider = ImageFetcher(tmp_path / "cache", base_dir=feed, local_roots=[feed, tmp_path / "shared"])
    assert wider.fetch("../shared/a.jpg").data == image_bytes(3)


def test_remote_feeds_and_crawls_get_no_local_files(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(image_bytes(4))
    remote = ImageFetcher(tmp_path / "cache")  # no base_dir: a remote feed or a crawl
    for url in ((tmp_path / "a.jpg").as_uri(), str(tmp_path / "a.jpg"), "file:///etc/passwd"):
        with pytest.raises(ImageFetchError, match="only read for local feeds"):
            remote.fetch(url)
    for url in ("a.jpg", "../a.jpg", "img/../../a.jpg"):
        with pytest.raises(ImageFetchError, match="relative image path needs a local feed"):
            remote.fetch(url)
    with pytest.raises(ImageFetchError, match="another host"):
        ImageFetcher(tmp_path / "cache", base_dir=tmp_path).fetch("file://fileserver/share/a.jpg")
    # what the caller downloaded itself (the crawler's image store) is read with fetch_file
    got = remote.fetch_file(tmp_path / "a.jpg", url="https://shop.example/a.jpg")
    assert got.url == "https://shop.example/a.jpg" and got.data == image_bytes(4)
    err = _in_thread(lambda: remote.fetch_file("/dev/zero"))
    assert isinstance(err, ImageFetchError) and "character device" in str(err)


def test_http_images_go_through_the_guarded_fetcher(tmp_path: Path) -> None:
    """No retries for a refused address, and a private answer is never connected to."""
    lookups: list[str] = []
    connects: list[str] = []

    class Backend(httpcore.MockBackend):
        def connect_tcp(self, host: str, port: int, **kw):  # noqa: ANN003, ANN202
            connects.append(host)
            return super().connect_tcp(host, port, **kw)

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return {"cdn.example": ["93.184.216.34"], "intranet.example": ["10.0.0.5"]}[host]

    data = image_bytes(5)
    body = [b"HTTP/1.1 200 OK\r\n", f"Content-Length: {len(data)}\r\n\r\n".encode(), data]
    fetcher = ImageFetcher(
        tmp_path / "cache", resolver=resolver, network_backend=Backend(body), backoff=0.001
    )
    assert fetcher.fetch("https://cdn.example/a.jpg").data == data
    with pytest.raises(ImageFetchError, match="private or local address \\(10.0.0.5"):
        fetcher.fetch("https://intranet.example/a.jpg")
    with pytest.raises(ImageFetchError, match="private or local"):
        fetcher.fetch("http://169.254.169.254/latest/meta-data")
    assert lookups == ["cdn.example", "intranet.example"] and connects == ["93.184.216.34"]


def test_a_feed_with_escaping_or_device_paths_reports_bad_rows(tmp_path: Path) -> None:
    from ingest_fakes import PixelStatsEncoder, gmc_records, write_jsonl

    from catalog_ingest.runner import ingest_feed
    from fittingroom.catalog.sqlite import SQLiteStore

    (tmp_path / "secret.jpg").write_bytes(image_bytes(6))
    feed_dir = tmp_path / "feed"
    records = gmc_records(3, feed_dir / "img", images_per_product=1)
    records[1]["image_link"] = "../secret.jpg"
    records[2]["image_link"] = "/dev/zero"
    feed = write_jsonl(feed_dir / "shop.jsonl", records)
    with SQLiteStore(tmp_path / "c.db") as store:
        report = ingest_feed(
            feed,
            store=store,
            encoder=PixelStatsEncoder(),
            image_cache=tmp_path / "cache",
            sync=None,
            progress=False,
        )
        assert store.product_keys() == {("shop", "P0")}
    reasons = [b.reason for b in report.bad_rows]
    assert len(reasons) == 2 and all("outside the allowed folders" in r for r in reasons)
