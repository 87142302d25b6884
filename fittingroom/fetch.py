"""One image fetcher for every component: http(s) downloads under one SSRF policy.

The policy (``FetchPolicy``):

* only ``http``/``https`` URLs with a host;
* the host is resolved ONCE per connection and EVERY resolved address is checked; IPv4
  addresses carried inside IPv6 ones are unwrapped and checked too (IPv4-mapped
  ``::ffff:0:0/96``, IPv4-compatible ``::/96`` such as ``[::127.0.0.1]``, NAT64
  ``64:ff9b::/96`` (the local-use ``64:ff9b:1::/48`` is refused whole), 6to4 ``2002::/16``, Teredo ``2001::/32``);
  loopback, private, link-local, multicast, reserved, unspecified and other
  not-globally-reachable addresses are refused (``allow_private=True`` lifts this for
  tests and development);
* the connection goes to the address that was checked (pinned): no second DNS lookup,
  so DNS rebinding cannot swap in another address between the check and the connect;
* redirects are followed by hand, at most ``max_redirects`` hops, each hop checked again;
* the body is counted while it streams and refused past ``max_bytes`` (with or without a
  ``Content-Length``; chunked bodies included); connect/read timeouts plus an overall
  deadline (``total_timeout_s``) against servers that drip bytes.

How the pinning works: httpx hands every new connection to an httpcore *network backend*
(``connect_tcp(host, port)``). ``PinnedBackend`` / ``AsyncPinnedBackend`` resolve ``host``
with the injectable resolver, check all addresses, then open the TCP connection to the checked
IP literal through the real (or an injected) backend. Everything above the socket is
untouched: the URL keeps its hostname, so httpx sends the right ``Host`` header, the
connection pool is keyed by hostname (a pooled connection is only reused for the hostname it
was verified for), and httpcore starts TLS with ``server_hostname=<hostname>``, so SNI and
the certificate check (``check_hostname``) are against the hostname, not the IP. Rewriting the
URL to the IP with an ``sni_hostname`` extension would also work but lets the pool reuse one
IP's connection (verified for hostname A) for hostname B.

Errors: every failure is a ``FetchError`` with ``status`` (the HTTP status a service should
answer with: 422 malformed URL, 400 refused address / unreachable host / upstream error /
timeout, 413 too large), ``upstream_status`` (the remote HTTP status, if any) and
``transient`` (worth retrying: timeouts, connection errors, 429, 5xx).

Injection for tests: ``resolver`` (``(host, port) -> [address, ...]``) replaces DNS;
``network_backend`` (an httpcore backend, e.g. ``httpcore.MockBackend``) replaces the sockets
below the pinning; ``transport`` (an httpx transport, e.g. ``httpx.MockTransport``) replaces
the whole network stack, address check included (IP-literal hosts are still checked).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio.to_thread
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``(host, port) -> addresses`` (strings such as ``'93.184.216.34'`` or ``'2606:2800::1'``).
Resolver = Callable[[str, int], Sequence[str]]

DEFAULT_USER_AGENT = "fittingroom/0.1 (+image fetcher)"
_REDIRECTS = (301, 302, 303, 307, 308)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: inside one network only
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class FetchError(Exception):
    """A URL or file could not be fetched. ``str()`` says why, for a person.

    ``status``: HTTP status to answer a client with (400, 413, 422); ``upstream_status``: the
    remote server's status when it answered with an error; ``transient``: a retry may succeed.
    """

    def __init__(
        self, message: str, status: int = 400, *, upstream_status: int | None = None, transient: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.upstream_status = upstream_status
        self.transient = transient


#: The name the services used for the same thing.
ImageFetchError = FetchError


@dataclass(frozen=True)
class FetchPolicy:
    """Limits of one fetcher. Seconds for timeouts, bytes for ``max_bytes``."""

    max_bytes: int = 20 * 1024 * 1024
    timeout_s: float = 10.0
    total_timeout_s: float | None = 60.0
    max_redirects: int = 3
    allow_private: bool = False
    user_agent: str = DEFAULT_USER_AGENT
    accept: str = "image/*,*/*;q=0.5"


# ---- addresses -----------------------------------------------------------------------------
def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo), or None."""
    if ip.teredo is not None:
        return ip.teredo[1]  # the client address (de-obfuscated by ipaddress)
    if ip.sixtofour is not None:
        return ip.sixtofour
    return _translated_ipv4(ip)


def _translated_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address of an IPv6 address that only *names* it (mapped, compatible, NAT64)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be fetched from (``'loopback'``, ``'private'``, ...), or None when public.

    An IPv6 address carrying an IPv4 one is refused when that IPv4 address is; mapped,
    compatible and NAT64 addresses are judged by their IPv4 address alone (they reach it),
    6to4 and Teredo ones by both.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_unspecified or ip.is_loopback:
            return "unspecified" if ip.is_unspecified else "loopback"
        if ip in _LOCAL_NAT64:
            return "local-use NAT64"
        inner = embedded_ipv4(ip)
        if inner is not None:
            reason = refusal_reason(inner)
            if reason is not None:
                return f"{reason} IPv4 {inner} inside IPv6"
            if _translated_ipv4(ip) is not None:
                return None
    for attr, word in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, attr):
            return word
    if not ip.is_global:
        return "not globally reachable"
    return None


def parse_address(text: str) -> IPAddress:
    """An address as a resolver gives it (``'fe80::1%eth0'`` zone ids dropped); ValueError if not one."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def check_address(host: str, address: str, *, allow_private: bool = False) -> str:
    """``address`` (one of ``host``'s) unchanged when it may be fetched from; raises FetchError (400)."""
    try:
        ip = parse_address(address)
    except ValueError:
        raise FetchError(f"{host!r} resolved to {address!r}, which is not an IP address") from None
    if not allow_private:
        reason = refusal_reason(ip)
        if reason is not None:
            raise FetchError(f"{host} points at a private or local address ({ip}: {reason}); refused", 400)
    return str(ip)


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's addresses of ``host`` (``socket.getaddrinfo``); raises FetchError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise FetchError(f"cannot resolve the host {host!r}: {exc}", transient=True) from exc
    return [str(info[4][0]) for info in infos]


def resolve_checked(host: str, port: int, resolver: Resolver, *, allow_private: bool = False) -> list[str]:
    """All addresses of ``host``, each checked (``check_address``), duplicates dropped.

    An IP literal is not looked up. Raises FetchError when there is no address or ANY address is
    refused (a host with one public and one private address is refused as a whole).
    """
    try:
        addresses: Sequence[str] = [str(parse_address(host))]
    except ValueError:
        addresses = list(resolver(host, port))
    if not addresses:
        raise FetchError(f"the host {host!r} has no address", transient=True)
    checked = [check_address(host, a, allow_private=allow_private) for a in addresses]
    return list(dict.fromkeys(checked))


def check_url(url: str, *, allow_private: bool = True) -> str:
    """``url`` when it is an absolute http(s) URL with a host; raises FetchError (422) otherwise.

    With ``allow_private=False`` an IP-literal host is checked too (400); host names are
    checked when connecting (``PinnedBackend``), where they are resolved.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise FetchError(f"image URL {url!r} is malformed: {exc}", 422) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FetchError(f"image URL must be an http(s) URL with a host, got {url!r}", 422)
    if not allow_private:
        try:
            parse_address(parts.hostname)
        except ValueError:
            return url
        check_address(parts.hostname, parts.hostname, allow_private=False)
    return url


# ---- pinned network backends -------------------------------------------------------------------
class PinnedBackend(httpcore.NetworkBackend):
    """httpcore backend: resolve once, check every address, connect to a checked one (see module doc)."""

    def __init__(
        self,
        resolver: Resolver | None = None,
        *,
        allow_private: bool = False,
        inner: httpcore.NetworkBackend | None = None,
    ) -> None:
        self.resolver = resolver or system_resolver
        self.allow_private = allow_private
        self.inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve_checked(host, port, self.resolver, allow_private=self.allow_private)
        error: Exception | None = None
        for address in addresses:
            try:
                return self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        raise FetchError("unix sockets are never fetched from")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class AsyncPinnedBackend(httpcore.AsyncNetworkBackend):
    """The asyncio/anyio twin of ``PinnedBackend`` (the resolver runs in a worker thread)."""

    def __init__(
        self,
        resolver: Resolver | None = None,
        *,
        allow_private: bool = False,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.resolver = resolver or system_resolver
        self.allow_private = allow_private
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await anyio.to_thread.run_sync(
            lambda: resolve_checked(host, port, self.resolver, allow_private=self.allow_private)
        )
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> Any:
        raise FetchError("unix sockets are never fetched from")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _pool_args(limits: httpx.Limits) -> dict[str, Any]:
    return dict(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
    )


class PinnedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connection pool connects through a ``PinnedBackend``.

    (httpx builds its httpcore pool in ``__init__`` without a backend argument; this class
    builds the same pool with one. No proxies: environment proxy settings are ignored.)
    """

    def __init__(self, backend: PinnedBackend, *, limits: httpx.Limits | None = None) -> None:
        self._pool = httpcore.ConnectionPool(network_backend=backend, **_pool_args(limits or httpx.Limits()))


class AsyncPinnedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` connecting through an ``AsyncPinnedBackend``."""

    def __init__(self, backend: AsyncPinnedBackend, *, limits: httpx.Limits | None = None) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            network_backend=backend, **_pool_args(limits or httpx.Limits())
        )


# ---- the fetch loop, shared by both APIs --------------------------------------------------------
@dataclass
class FetchResult:
    """One finished fetch: the final ``url`` after redirects, ``status_code`` (200, or 304 for a
    conditional GET), the response ``headers`` and the body (``b''`` for 304)."""

    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes


class _Body:
    """Counts a body while it streams; refuses it past the byte limit or the deadline."""

    def __init__(self, url: str, policy: FetchPolicy, deadline: float | None, headers: httpx.Headers) -> None:
        self.url, self.limit, self.deadline = url, policy.max_bytes, deadline
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            raise FetchError(
                f"image at {url} is {int(declared)} bytes, which exceeds the limit of {self.limit} bytes", 413
            )
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise FetchError(f"image at {self.url} exceeds the limit of {self.limit} bytes", 413)
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise FetchError(f"fetching {self.url} timed out (too slow)", transient=True)
        self.chunks.append(chunk)

    def result(self, resp: httpx.Response) -> FetchResult:
        return FetchResult(self.url, resp.status_code, resp.headers, b"".join(self.chunks))


def _next_url(url: str, resp: httpx.Response, policy: FetchPolicy) -> str | None:
    """Where a redirect response points (checked), or None when it is not a redirect."""
    if resp.status_code not in _REDIRECTS or "location" not in resp.headers:
        return None
    return check_url(urljoin(url, resp.headers["location"]), allow_private=policy.allow_private)


def _check_status(url: str, resp: httpx.Response, accept_not_modified: bool) -> bool:
    """True when the body should be read (200); False for an accepted 304; raises otherwise."""
    if resp.status_code == 200:
        return True
    if resp.status_code == 304 and accept_not_modified:
        return False
    code = resp.status_code
    raise FetchError(
        f"fetching {url} failed: HTTP {code}", upstream_status=code, transient=code == 429 or code >= 500
    )


def _mapped(url: str, policy: FetchPolicy, exc: Exception) -> FetchError:
    """An httpx/httpcore exception as a FetchError (the original stays as ``__cause__``)."""
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        msg = f"fetching {url} timed out after {policy.timeout_s:g}s ({name})"
    else:
        msg = f"fetching {url} failed ({name}: {exc})" if str(exc) else f"fetching {url} failed ({name})"
    err = FetchError(msg, transient=isinstance(exc, httpx.TransportError))
    err.__cause__ = exc
    return err


def _client_args(policy: FetchPolicy, headers: dict[str, str] | None) -> dict[str, Any]:
    return dict(
        timeout=httpx.Timeout(policy.timeout_s),
        follow_redirects=False,
        trust_env=False,
        # identity: an image needs no transfer compression, and a gzip body could inflate far
        # beyond the bytes counted per chunk before the limit check sees it
        headers={
            "User-Agent": policy.user_agent,
            "Accept": policy.accept,
            "Accept-Encoding": "identity",
            **(headers or {}),
        },
    )


class Fetcher:
    """Synchronous fetcher (thread-safe: one shared httpx.Client). See the module docstring."""

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        resolver: Resolver | None = None,
        network_backend: httpcore.NetworkBackend | None = None,
        transport: httpx.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.policy = policy or FetchPolicy()
        if transport is None:
            backend = PinnedBackend(resolver, allow_private=self.policy.allow_private, inner=network_backend)
            transport = PinnedTransport(backend)
        self._client = httpx.Client(transport=transport, **_client_args(self.policy, headers))

    def get(self, url: str, *, headers: dict[str, str] | None = None) -> FetchResult:
        """GET ``url`` under the policy; a 304 answer to conditional ``headers`` is returned as is.

        Raises FetchError for anything else than a 200 (or accepted 304) within the limits.
        """
        policy = self.policy
        deadline = None if policy.total_timeout_s is None else time.monotonic() + policy.total_timeout_s
        conditional = any(k.lower().startswith("if-") for k in headers or {})
        url = check_url(url, allow_private=policy.allow_private)
        for _ in range(policy.max_redirects + 1):
            try:
                with self._client.stream("GET", url, headers=headers) as resp:
                    target = _next_url(url, resp, policy)
                    if target is not None:
                        url = target
                        continue
                    body = _Body(url, policy, deadline, resp.headers)
                    if _check_status(url, resp, conditional):
                        for chunk in resp.iter_bytes():
                            body.add(chunk)
                    return body.result(resp)
            except httpx.HTTPError as exc:
                raise _mapped(url, policy, exc) from exc
        raise FetchError(f"too many redirects fetching {url} (more than {policy.max_redirects})")

    def fetch(self, url: str) -> bytes:
        """The body of ``url`` (at most ``policy.max_bytes`` bytes); raises FetchError."""
        return self.get(url).content

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncFetcher:
    """Asynchronous fetcher for the services: ``await fetcher.fetch(url) -> bytes``."""

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        resolver: Resolver | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.policy = policy or FetchPolicy()
        if transport is None:
            backend = AsyncPinnedBackend(
                resolver, allow_private=self.policy.allow_private, inner=network_backend
            )
            transport = AsyncPinnedTransport(backend)
        self._client = httpx.AsyncClient(transport=transport, **_client_args(self.policy, headers))

    async def get(self, url: str, *, headers: dict[str, str] | None = None) -> FetchResult:
        """Async ``Fetcher.get``."""
        policy = self.policy
        deadline = None if policy.total_timeout_s is None else time.monotonic() + policy.total_timeout_s
        conditional = any(k.lower().startswith("if-") for k in headers or {})
        url = check_url(url, allow_private=policy.allow_private)
        for _ in range(policy.max_redirects + 1):
            try:
                async with self._client.stream("GET", url, headers=headers) as resp:
                    target = _next_url(url, resp, policy)
                    if target is not None:
                        url = target
                        continue
                    body = _Body(url, policy, deadline, resp.headers)
                    if _check_status(url, resp, conditional):
                        async for chunk in resp.aiter_bytes():
                            body.add(chunk)
                    return body.result(resp)
            except httpx.HTTPError as exc:
                raise _mapped(url, policy, exc) from exc
        raise FetchError(f"too many redirects fetching {url} (more than {policy.max_redirects})")

    async def fetch(self, url: str) -> bytes:
        """The body of ``url`` (at most ``policy.max_bytes`` bytes); raises FetchError."""
        return (await self.get(url)).content

    async def aclose(self) -> None:
        await self._client.aclose()

    def close(self) -> None:
        """Close from sync code too (schedules the close when an event loop is running)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._client.aclose())
        else:
            loop.create_task(self._client.aclose())


# ---- local files --------------------------------------------------------------------------------
def read_regular_file(
    path: str | Path, *, max_bytes: int, roots: Sequence[str | Path] | None = None
) -> bytes:
    """The bytes of a regular file, at most ``max_bytes``; raises FetchError naming the path.

    Symlinks are resolved first; with ``roots`` the real path must lie inside one of them
    (``../`` escapes and links out are refused). FIFOs, devices (``/dev/zero``), sockets and
    folders are refused from ``os.stat`` before opening; the file is opened ``O_NONBLOCK`` and
    checked again with ``fstat`` (same inode, still regular), so nothing can block or stream forever.
    """
    p = Path(path)
    try:
        real = p.resolve(strict=True)
    except FileNotFoundError:
        raise FetchError(f"file not found ({p})", 404) from None
    except (OSError, RuntimeError) as exc:
        raise FetchError(f"cannot read {p}: {exc}") from exc
    if roots is not None:
        allowed = [Path(r).resolve() for r in roots]
        if not any(real.is_relative_to(root) for root in allowed):
            raise FetchError(f"{p} is outside the allowed folders ({', '.join(map(str, allowed))}); refused")
    try:
        before = os.stat(real)
        if not stat.S_ISREG(before.st_mode):
            raise FetchError(f"{p} is not a regular file ({_kind(before.st_mode)}); refused")
        if before.st_size > max_bytes:
            raise FetchError(
                f"{p} is {before.st_size} bytes, which exceeds the limit of {max_bytes} bytes", 413
            )
        fd = os.open(
            real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
        )
        with os.fdopen(fd, "rb") as f:
            now = os.fstat(f.fileno())
            if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
                raise FetchError(f"{p} changed while being opened; refused")
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise FetchError(f"cannot read {p}: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise FetchError(f"{p} exceeds the limit of {max_bytes} bytes", 413)
    return data


def _kind(mode: int) -> str:
    for test, word in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return word
    return "not a plain file"
