"""Serve hardening over real HTTP (uvicorn on a loopback port): security headers, Host
allow-list, the upload rate limit and uvicorn's connection limits (services/hardening.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, UploadFile

from services.app import ServeSettings, create_app
from services.hardening import PAGE_CSP, HardeningSettings, HeaderTimeoutH11Protocol, harden, uvicorn_options


def fake_service() -> FastAPI:
    app = FastAPI()

    @app.post("/images")
    async def upload(file: UploadFile) -> dict[str, int]:
        return {"bytes": len(await file.read())}

    @app.post("/images/{image_id}/masks")
    async def masks(image_id: str) -> dict[str, str]:
        return {"image_id": image_id}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


class Server:
    """uvicorn in a thread on a free loopback port, with the options of ``serve``."""

    def __init__(self, app: FastAPI, **options: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", **options)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> int:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not (self.server.started and self.server.servers):
            assert time.monotonic() < deadline and self.thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., int]]:
    """``serve(HardeningSettings(...))`` -> port of a hardened all-in-one app over a fake segmentation."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><title>page</title>")
    running: list[Server] = []

    def start(settings: HardeningSettings, host: str = "127.0.0.1") -> int:
        app = create_app(ServeSettings(frontend_dir=dist), services={"segmentation": fake_service})
        server = Server(harden(app, settings, host=host), **uvicorn_options(settings))
        running.append(server)
        return server.__enter__()

    yield start
    for server in running:
        server.__exit__()


def upload(client: httpx.Client) -> httpx.Response:
    return client.post("/api/segmentation/images", files={"file": ("a.png", b"12345", "image/png")})


def test_security_headers_on_every_response_errors_included(serve: Callable[..., int]) -> None:
    port = serve(HardeningSettings(rate_limit="1/minute"))
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        answers = [
            client.get("/"),
            client.get("/healthz"),
            client.get("/api/segmentation/nope"),  # 404
            upload(client),
            upload(client),  # 429
            client.get("/", headers={"Host": "evil.example"}),  # 400
        ]
        docs = client.get("/api/segmentation/docs")
    assert [r.status_code for r in answers] == [200, 200, 404, 200, 429, 400]
    for r in answers:
        assert r.headers["content-security-policy"] == PAGE_CSP
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]  # the Swagger UI still loads
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]


def test_host_allow_list(serve: Callable[..., int]) -> None:
    port = serve(HardeningSettings(allowed_hosts=["shop.example", "*.fitting.example"]), host="10.1.2.3")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:

        def status(host: str) -> int:
            return client.get("/healthz", headers={"Host": host}).status_code

        assert status(f"127.0.0.1:{port}") == 200
        assert status(f"localhost:{port}") == 200
        assert status("10.1.2.3") == 200  # the configured SERVE_HOST
        assert status("shop.example") == 200
        assert status("a.fitting.example") == 200
        assert status("[::1]:8000") == 200
        assert status("evil.example") == 400
        assert status("shop.example.evil.example") == 400
        assert client.get("/healthz", headers={"Host": "evil.example"}).text == "Invalid host header"


def test_host_check_can_be_turned_off(serve: Callable[..., int]) -> None:
    port = serve(HardeningSettings(check_host=False))
    r = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"Host": "anything.example"})
    assert r.status_code == 200


def test_the_upload_rate_limit_is_per_route_and_answers_429_with_retry_after(
    serve: Callable[..., int],
) -> None:
    port = serve(HardeningSettings(rate_limit="3/minute"))
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        assert [upload(client).status_code for _ in range(3)] == [200, 200, 200]
        r = upload(client)
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert "Too many uploads" in r.json()["detail"] and "3 per 1 minute" in r.json()["detail"]
        # routes that are not uploads are not counted
        assert client.post("/api/segmentation/images/abc/masks").status_code == 200
        assert client.get("/healthz").status_code == 200


def test_no_rate_limit_when_empty(serve: Callable[..., int]) -> None:
    port = serve(HardeningSettings(rate_limit=""))
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        assert {upload(client).status_code for _ in range(70)} == {200}


def test_a_bad_rate_limit_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="rate limit"):
        HardeningSettings(rate_limit="lots")


def raw_request(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def test_headers_over_the_header_limit_are_a_400(serve: Callable[..., int]) -> None:
    port = serve(HardeningSettings(max_header_bytes=4096))
    ok = raw_request(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")
    # headers that keep coming (never finished) are cut off once they pass the limit
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answer = b""
        for _ in range(24):  # ~12 KB: under uvicorn's default 16 KiB, over the 4 KiB set here
            try:
                sock.sendall(b"X-Pad: " + b"a" * 500 + b"\r\n")
            except OSError:
                break
            time.sleep(0.01)
        sock.settimeout(5)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400")


def test_an_idle_keep_alive_connection_is_closed(serve: Callable[..., int]) -> None:
    port = serve(HardeningSettings(timeout_keep_alive_s=1))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        assert sock.recv(65536) == b""  # closed by the server ...
        assert time.monotonic() - t0 < 4  # ... after about the keep-alive timeout


def test_a_client_that_sends_its_headers_too_slowly_is_disconnected(serve: Callable[..., int]) -> None:
    port = serve(HardeningSettings(header_timeout_s=1.0, timeout_keep_alive_s=30))
    # a normal client: two requests on one keep-alive connection, each answered
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for _ in range(2):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(1.5)  # idle past the header timeout after a response: closed
        assert sock.recv(65536) == b""
    # slow headers: a byte every 0.2 s never completes the request; cut off after ~1 s
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 4:
            try:
                sock.sendall(b"X")
            except OSError:
                closed = True
                break
            sock.settimeout(0.2)
            try:
                if sock.recv(65536) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed and 0.9 < time.monotonic() - t0 < 2.5


def test_serve_passes_the_connection_limits_to_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    from fittingroom.cli import serve as serve_cli

    seen: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.append(self.config))
    settings = HardeningSettings(timeout_keep_alive_s=3, max_header_bytes=8192, limit_concurrency=17)
    serve_cli.serve_app(FastAPI(), "127.0.0.1", 0, "warning", settings)
    config = seen[0]
    assert (config.timeout_keep_alive, config.h11_max_incomplete_event_size, config.limit_concurrency) == (
        3,
        8192,
        17,
    )
    assert issubclass(config.http, HeaderTimeoutH11Protocol) and config.http.header_timeout == 10.0
    assert uvicorn_options(HardeningSettings(header_timeout_s=None))["http"] == "h11"
    defaults = uvicorn_options()
    assert defaults["limit_concurrency"] == 200 and defaults["timeout_keep_alive"] == 5


def test_serve_builds_a_hardened_app_by_default(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from fittingroom.cli import serve as serve_cli

    app = serve_cli.build_app(ServeSettings(frontend_dir=tmp_path))  # no lifespan: nothing is loaded
    client = TestClient(app, base_url="http://127.0.0.1")
    r = client.get("/healthz")
    assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == PAGE_CSP
    assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 400


def test_an_ipv6_serve_host_is_allowed_in_its_bracketed_form() -> None:
    hosts = HardeningSettings().hosts("fd00::5")
    assert "[fd00::5]" in hosts and "localhost" in hosts
    assert socket.gethostname() in HardeningSettings().hosts("0.0.0.0")
