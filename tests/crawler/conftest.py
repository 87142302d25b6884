"""Fixtures of the crawler tests: shared data folders and loopback HTTP servers."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from crawler_helpers import need, shared_data


@pytest.fixture(scope="session")
def pages_dir() -> Path:
    return need(shared_data() / "product-pages")


@pytest.fixture(scope="session")
def fur_site() -> Path:
    return need(shared_data() / "storefront-fur" / "site")


@pytest.fixture(scope="session")
def luma_dir() -> Path:
    return need(shared_data() / "luma-catalog")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        return

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()


@pytest.fixture
def serve_dir() -> Iterator[Any]:
    """``serve_dir(path) -> base URL``: serve a folder on 127.0.0.1 (random port) during the test.

    ``serve_dir.paths[base]`` lists the paths GET-requested from that server, in order.
    """
    servers: list[ThreadingHTTPServer] = []
    paths: dict[str, list[str]] = {}

    def start(path: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(path))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        server.paths = paths.setdefault(base, [])  # type: ignore[attr-defined]
        return base

    start.paths = paths  # type: ignore[attr-defined]
    yield start
    for s in servers:
        s.shutdown()
        s.server_close()
