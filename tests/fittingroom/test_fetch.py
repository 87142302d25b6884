"""The one image fetcher: SSRF policy, pinned connections, redirects, limits (no network, no DNS)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from pathlib import Path

import httpcore
import httpx
import pytest
from fetch_fakes import AsyncFakeBackend, FakeBackend, FakeNet, Resolver, response

from fittingroom.fetch import AsyncFetcher, Fetcher, FetchError, FetchPolicy, read_regular_file

PUBLIC = "93.184.216.34"
PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 100


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any DNS lookup or socket connect fails the test."""

    def refuse(*args: object, **kw: object) -> None:
        raise AssertionError(f"the test touched the network: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def serve(routes: dict[str, list[bytes]]) -> FakeNet:
    """A fake network answering ``routes['host/path']`` (404 otherwise)."""

    def handler(address: str, port: int, line: str, headers: dict[str, str]) -> list[bytes]:
        path = line.split(" ")[1]
        return routes.get(headers["host"] + path, response(404))

    return FakeNet(handler)


def fetch(kind: str, url: str, net: FakeNet, resolver: Resolver, **policy: object) -> bytes:
    """Fetch with the sync or the async API over the fake network."""
    pol = FetchPolicy(**policy)  # type: ignore[arg-type]
    if kind == "sync":
        with Fetcher(pol, resolver=resolver, network_backend=FakeBackend(net)) as f:
            return f.fetch(url)

    async def run() -> bytes:
        f = AsyncFetcher(pol, resolver=resolver, network_backend=AsyncFakeBackend(net))
        try:
            return await f.fetch(url)
        finally:
            await f.aclose()

    return asyncio.run(run())


KINDS = pytest.mark.parametrize("kind", ["sync", "async"])


@KINDS
def test_the_connection_goes_to_the_checked_address_with_the_hostname_for_host_and_tls(kind: str) -> None:
    net = serve({"shop.example/a.png": response(200, PNG)})
    dns = Resolver({"shop.example": [[PUBLIC]]})
    assert fetch(kind, "https://shop.example/a.png", net, dns) == PNG
    assert net.addresses == [(PUBLIC, 443)]
    conn = net.connections[0]
    assert conn.server_hostname == "shop.example"  # SNI + certificate check for the name, not the IP
    line, headers = conn.request_head()
    assert line == "GET /a.png HTTP/1.1" and headers["host"] == "shop.example"
    assert headers["accept-encoding"] == "identity"
    assert dns.lookups == ["shop.example"]


@KINDS
@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "169.254.169.254"),
        ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible
        ("::10.0.0.1", "10.0.0.1"),
        ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("2002:7f00:1::1", "127.0.0.1"),  # 6to4
        ("2002:a9fe:a9fe::1", "169.254.169.254"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),  # Teredo, client 127.0.0.1
    ],
)
def test_ipv4_inside_ipv6_is_unwrapped_and_refused(kind: str, address: str, inner: str) -> None:
    net = serve({})
    # as a literal host and as a DNS answer (AAAA record)
    for url, dns in [
        (f"http://[{address}]/x.png", Resolver({})),
        ("http://sneaky.example/x.png", Resolver({"sneaky.example": [[address]]})),
    ]:
        with pytest.raises(FetchError, match="private or local") as err:
            fetch(kind, url, net, dns)
        assert err.value.status == 400 and inner in str(err.value)
    assert net.connections == []


@KINDS
@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "0.0.0.0", "224.0.0.1", "100.64.0.1",
     "[::1]", "[fe80::1]", "[fc00::1]", "[ff02::1]", "[::]", "[64:ff9b:1::808:808]"],
)  # fmt: skip
def test_local_private_and_special_addresses_are_refused(kind: str, host: str) -> None:
    net = serve({})
    with pytest.raises(FetchError, match="private or local"):
        fetch(kind, f"http://{host}/x.png", net, Resolver({}))
    assert net.connections == []


@KINDS
@pytest.mark.parametrize("address", ["::ffff:8.8.8.8", "64:ff9b::808:808", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses_also_in_ipv6_forms_are_fetched(kind: str, address: str) -> None:
    net = serve({"cdn.example/a.png": response(200, PNG)})
    assert fetch(kind, "http://cdn.example/a.png", net, Resolver({"cdn.example": [[address]]})) == PNG
    assert net.addresses == [(str(ipaddress.ip_address(address)), 80)]  # normalised spelling


@KINDS
def test_one_private_address_among_public_ones_refuses_the_host(kind: str) -> None:
    net = serve({})
    dns = Resolver({"mixed.example": [[PUBLIC, "127.0.0.1"]]})
    with pytest.raises(FetchError, match="127.0.0.1"):
        fetch(kind, "http://mixed.example/a.png", net, dns)
    assert net.connections == []


@KINDS
def test_dns_rebinding_cannot_reach_the_second_answer(kind: str) -> None:
    """DNS answers public first, 127.0.0.1 afterwards: one lookup, the connection goes to the
    checked public address; a later lookup (new fetch) answers 127.0.0.1 and is refused."""
    net = serve({"rebind.example/a.png": response(200, PNG)})
    dns = Resolver({"rebind.example": [[PUBLIC], ["127.0.0.1"]]})
    assert fetch(kind, "http://rebind.example/a.png", net, dns) == PNG
    assert dns.lookups == ["rebind.example"] and net.addresses == [(PUBLIC, 80)]
    with pytest.raises(FetchError, match="private or local"):
        fetch(kind, "http://rebind.example/a.png", net, dns)
    assert net.addresses == [(PUBLIC, 80)]  # never 127.0.0.1


@KINDS
def test_every_redirect_hop_is_checked(kind: str) -> None:
    net = serve(
        {
            "shop.example/moved": response(302, headers={"Location": "/a.png"}),
            "shop.example/a.png": response(200, PNG),
            "shop.example/to-metadata": response(302, headers={"Location": "http://169.254.169.254/latest"}),
            "shop.example/to-evil": response(302, headers={"Location": "http://evil.example/x"}),
            "shop.example/to-file": response(302, headers={"Location": "file:///etc/passwd"}),
            "shop.example/loop": response(302, headers={"Location": "/loop"}),
        }
    )
    dns = Resolver({"shop.example": [[PUBLIC]], "evil.example": [["10.0.0.7"]]})
    assert fetch(kind, "http://shop.example/moved", net, dns) == PNG
    with pytest.raises(FetchError, match="169.254.169.254"):
        fetch(kind, "http://shop.example/to-metadata", net, dns)
    with pytest.raises(FetchError, match="10.0.0.7"):
        fetch(kind, "http://shop.example/to-evil", net, dns)
    with pytest.raises(FetchError, match="http\\(s\\) URL") as err:
        fetch(kind, "http://shop.example/to-file", net, dns)
    assert err.value.status == 422
    with pytest.raises(FetchError, match="too many redirects"):
        fetch(kind, "http://shop.example/loop", net, dns, max_redirects=2)
    assert {a for a, _ in net.addresses} == {PUBLIC}
    assert net.requests.count("GET /loop HTTP/1.1") == 3  # 1 + max_redirects hops, then it stopped


@KINDS
@pytest.mark.parametrize("framing", ["chunked", "until_close"])  # neither has a Content-Length
def test_size_limit_is_counted_while_streaming(kind: str, framing: str) -> None:
    big = b"y" * 5000
    net = serve(
        {
            "cdn.example/big": response(200, big, **{framing: True}),
            "cdn.example/ok": response(200, big[:1500], **{framing: True}),
        }
    )
    dns = Resolver({"cdn.example": [[PUBLIC]]})
    with pytest.raises(FetchError, match="exceeds the limit of 2000 bytes") as err:
        fetch(kind, "http://cdn.example/big", net, dns, max_bytes=2000)
    assert err.value.status == 413
    assert fetch(kind, "http://cdn.example/ok", net, dns, max_bytes=2000) == big[:1500]


@KINDS
def test_declared_oversize_is_refused_before_reading(kind: str) -> None:
    net = serve({"cdn.example/big": response(200, b"z" * 3000)})
    with pytest.raises(FetchError, match="3000 bytes, which exceeds the limit of 2000") as err:
        fetch(kind, "http://cdn.example/big", net, Resolver({"cdn.example": [[PUBLIC]]}), max_bytes=2000)
    assert err.value.status == 413


@KINDS
def test_upstream_errors_and_timeouts_say_what_happened(kind: str) -> None:
    net = serve(
        {
            "cdn.example/busy": response(503),
            "cdn.example/slow": [*response(200, b"", {"Content-Length": "50"}), httpcore.ReadTimeout("slow")],
        }
    )
    dns = Resolver({"cdn.example": [[PUBLIC]]})
    with pytest.raises(FetchError, match="HTTP 404") as err:
        fetch(kind, "http://cdn.example/missing", net, dns)
    assert (err.value.status, err.value.upstream_status, err.value.transient) == (400, 404, False)
    with pytest.raises(FetchError, match="HTTP 503") as err:
        fetch(kind, "http://cdn.example/busy", net, dns)
    assert err.value.transient
    with pytest.raises(FetchError, match="timed out after 10s") as err:
        fetch(kind, "http://cdn.example/slow", net, dns)
    assert err.value.transient and isinstance(err.value.__cause__, httpx.ReadTimeout)


@KINDS
@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://shop.example/a.png", "gopher://shop.example/", "not a url", "http:///x.png",
     "http://shop.example:99999/x.png", "/etc/passwd"],
)  # fmt: skip
def test_non_http_urls_are_refused(kind: str, url: str) -> None:
    net = serve({})
    with pytest.raises(FetchError) as err:
        fetch(kind, url, net, Resolver({}))
    assert err.value.status == 422 and "URL" in str(err.value)
    assert net.connections == []


@KINDS
def test_allow_private_lets_tests_and_development_reach_local_servers(kind: str) -> None:
    net = serve({"127.0.0.1:8000/a.png": response(200, PNG)})
    assert fetch(kind, "http://127.0.0.1:8000/a.png", net, Resolver({}), allow_private=True) == PNG
    assert net.addresses == [("127.0.0.1", 8000)]


def test_an_injected_httpx_transport_still_refuses_private_literals() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://[::ffff:127.0.0.1]/"})

    async def run() -> None:
        f = AsyncFetcher(transport=httpx.MockTransport(handler))
        with pytest.raises(FetchError, match="private or local"):
            await f.fetch("http://10.0.0.1/a.png")
        with pytest.raises(FetchError, match="127.0.0.1"):
            await f.fetch("http://shop.example/a.png")
        await f.aclose()

    asyncio.run(run())
    assert seen == ["http://shop.example/a.png"]


def test_a_slow_drip_hits_the_overall_deadline() -> None:
    net = serve({"cdn.example/drip": response(200, b"d" * 3000, chunked=True)})
    with pytest.raises(FetchError, match="timed out"):
        fetch(
            "sync", "http://cdn.example/drip", net, Resolver({"cdn.example": [[PUBLIC]]}), total_timeout_s=0
        )


# ---- local files ---------------------------------------------------------------------------------
def test_read_regular_file_refuses_fifos_devices_folders_and_escapes(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "ok.png").write_bytes(PNG)
    (tmp_path / "secret.png").write_bytes(PNG)
    (tmp_path / "root" / "link.png").symlink_to(tmp_path / "secret.png")
    os.mkfifo(tmp_path / "root" / "pipe.png")
    roots = [tmp_path / "root"]
    assert read_regular_file(tmp_path / "root" / "ok.png", max_bytes=1000, roots=roots) == PNG
    with pytest.raises(FetchError, match="a FIFO"):
        read_regular_file(tmp_path / "root" / "pipe.png", max_bytes=1000, roots=roots)
    with pytest.raises(FetchError, match="a character device"):
        read_regular_file("/dev/zero", max_bytes=1000, roots=["/dev"])
    with pytest.raises(FetchError, match="a folder"):
        read_regular_file(tmp_path / "root", max_bytes=1000, roots=roots)
    for escape in (tmp_path / "root" / ".." / "secret.png", tmp_path / "root" / "link.png"):
        with pytest.raises(FetchError, match="outside the allowed folders"):
            read_regular_file(escape, max_bytes=1000, roots=roots)
    with pytest.raises(FetchError, match="exceeds the limit of 10 bytes") as err:
        read_regular_file(tmp_path / "root" / "ok.png", max_bytes=10, roots=roots)
    assert err.value.status == 413


def test_pooled_connections_are_per_hostname_not_per_address() -> None:
    """Two names on one IP get two connections, each TLS-checked for its own name; one name is
    resolved once and its connection reused."""
    net = serve(
        {
            "a.example/1": response(200, PNG),
            "a.example/2": response(200, PNG),
            "b.example/1": response(200, PNG),
        }
    )
    dns = Resolver({"a.example": [[PUBLIC]], "b.example": [[PUBLIC]]})
    with Fetcher(resolver=dns, network_backend=FakeBackend(net)) as f:
        for url in ("https://a.example/1", "https://a.example/2", "https://b.example/1"):
            assert f.fetch(url) == PNG
    assert [(c.server_hostname, c.requests) for c in net.connections] == [
        ("a.example", ["GET /1 HTTP/1.1", "GET /2 HTTP/1.1"]),
        ("b.example", ["GET /1 HTTP/1.1"]),
    ]
    assert dns.lookups == ["a.example", "b.example"]
