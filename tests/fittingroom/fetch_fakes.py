"""A fake network below ``fittingroom.fetch``'s pinning: httpcore backends that record where
connections go (address, port, TLS server name, the raw request) and answer scripted HTTP/1.1."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore

#: ``(address, port, request_line, headers) -> response chunks``
Handler = Callable[[str, int, str, dict[str, str]], Sequence[bytes]]


def response(
    status: int = 200,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    chunked: bool = False,
    until_close: bool = False,
) -> list[bytes]:
    """Raw HTTP/1.1 response chunks: Content-Length framing, chunked in 1000-byte pieces, or
    (``until_close``) no length at all: the body ends when the connection closes."""
    reason = {200: "OK", 302: "Found", 304: "Not Modified", 404: "Not Found", 503: "Unavailable"}.get(
        status, "X"
    )
    head = {**(headers or {})}
    if chunked:
        head["Transfer-Encoding"] = "chunked"
    elif until_close:
        head["Connection"] = "close"
    elif "Content-Length" not in head and status != 304:
        head["Content-Length"] = str(len(body))
    lines = [f"HTTP/1.1 {status} {reason}\r\n".encode()]
    lines += [f"{k}: {v}\r\n".encode() for k, v in head.items()]
    lines.append(b"\r\n")
    if chunked:
        for i in range(0, len(body), 1000):
            piece = body[i : i + 1000]
            lines.append(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        lines.append(b"0\r\n\r\n")
    elif until_close:
        lines += [body[i : i + 1000] for i in range(0, len(body), 1000)]
    elif body:
        lines.append(body)
    return lines


@dataclass
class Connection:
    address: str
    port: int
    server_hostname: str | None = None
    written: bytearray = field(default_factory=bytearray)
    requests: list[str] = field(default_factory=list)  # request lines, in order

    def request_head(self) -> tuple[str, dict[str, str]]:
        head = bytes(self.written).split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in head[1:])
        return head[0], {k.lower(): v for k, v in headers.items()}


class FakeNet:
    """Shared state of the sync and async fake backends: every connection, in order."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections: list[Connection] = []

    def open(self, address: str, port: int) -> Connection:
        conn = Connection(address, port)
        self.connections.append(conn)
        return conn

    def answer(self, conn: Connection, head: bytes) -> list[bytes]:
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        return list(self.handler(conn.address, conn.port, lines[0], headers))

    @property
    def requests(self) -> list[str]:
        return [r for c in self.connections for r in c.requests]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(c.address, c.port) for c in self.connections]


class _Stream:
    def __init__(self, net: FakeNet, conn: Connection) -> None:
        self.net, self.conn = net, conn
        self.out: list[bytes] = []
        self.pending = b""

    def _write(self, buffer: bytes) -> None:
        """Answer each complete request head (GETs have no body; keep-alive reuse works)."""
        self.conn.written += buffer
        self.pending += buffer
        while b"\r\n\r\n" in self.pending:
            head, self.pending = self.pending.split(b"\r\n\r\n", 1)
            self.conn.requests.append(head.decode("latin-1").split("\r\n")[0])
            self.out += self.net.answer(self.conn, head)

    def _read(self) -> bytes:
        if not self.out:
            return b""
        chunk = self.out.pop(0)
        if isinstance(chunk, Exception):
            raise chunk
        return chunk

    def get_extra_info(self, info: str) -> Any:
        return None


class FakeStream(_Stream, httpcore.NetworkStream):
    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._read()

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._write(buffer)

    def close(self) -> None:
        pass

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        self.conn.server_hostname = server_hostname
        return self


class FakeBackend(httpcore.NetworkBackend):
    def __init__(self, net: FakeNet) -> None:
        self.net = net

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, **kw: Any) -> FakeStream:
        return FakeStream(self.net, self.net.open(host, port))

    def sleep(self, seconds: float) -> None:
        pass


class AsyncFakeStream(_Stream, httpcore.AsyncNetworkStream):
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._read()

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._write(buffer)

    async def aclose(self) -> None:
        pass

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        self.conn.server_hostname = server_hostname
        return self


class AsyncFakeBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, net: FakeNet) -> None:
        self.net = net

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, **kw: Any
    ) -> AsyncFakeStream:
        return AsyncFakeStream(self.net, self.net.open(host, port))

    async def sleep(self, seconds: float) -> None:
        pass


class Resolver:
    """Scripted DNS: ``answers[host]`` is a list of answers, one per lookup (the last repeats)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        todo = self.answers[host]
        return todo.pop(0) if len(todo) > 1 else todo[0]
