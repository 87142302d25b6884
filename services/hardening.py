"""Serve hardening of the all-in-one server, on by default in ``fittingroom serve``.

:func:`harden` wraps the app (outermost first):

1. **security headers** on every response, errors included: ``Content-Security-Policy``
   (:data:`PAGE_CSP`: the page's own scripts, styles and images, ``data:``/``blob:`` images of
   masks and uploaded photos, no framing; the ``/docs`` pages get :data:`DOCS_CSP` for the
   Swagger UI assets), ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
   ``Referrer-Policy: no-referrer``, ``Cross-Origin-Opener-Policy: same-origin``;
2. a **Host allow-list** (starlette's ``TrustedHostMiddleware``): ``localhost``, ``127.0.0.1``,
   ``::1``, the configured ``SERVE_HOST`` (and this machine's host name when it listens on every
   interface) plus ``SERVE_ALLOWED_HOSTS``; any other ``Host`` header is a 400;
3. a **per-client rate limit** on the upload routes (the ``limits`` library, moving window, in
   memory, keyed by the peer address): past ``SERVE_RATE_LIMIT`` a 429 with ``Retry-After``
   (seconds) and ``{"detail": ...}``.

:func:`uvicorn_options` gives uvicorn's connection limits from the same settings:
``timeout_keep_alive`` (idle keep-alive connections closed), ``h11_max_incomplete_event_size``
(request line + headers over it: 400; the h11 HTTP implementation is used so that it applies),
``limit_concurrency`` (connections + tasks past it: 503) and a **header-read timeout**
(``SERVE_HEADER_TIMEOUT_S``: a client that has not sent its request line and headers that long
after connecting, or after the previous response, is disconnected, so a slow-headers client
cannot hold a connection; :class:`HeaderTimeoutH11Protocol`, with the h11 implementation only).
"""

from __future__ import annotations

import asyncio
import fnmatch
import math
import socket
import time
from typing import Any, Literal

from fastapi import FastAPI
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.datastructures import MutableHeaders
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Content-Security-Policy of the page and the APIs.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self' blob:; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: Content-Security-Policy of FastAPI's ``/docs`` and ``/redoc`` pages (inline script, CDN assets).
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; font-src 'self' https://fonts.gstatic.com; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
#: Routes counted by the rate limit: ``"METHOD path-pattern"`` (fnmatch, ``*`` matches ``/`` too).
UPLOAD_ROUTES = (
    "POST /api/retrieval/search/image",
    "POST /api/segmentation/images",
    "POST /api/tryon/persons",
    "POST /api/tryon/garments",
    "POST /api/tryon/tryon",
)
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


class HardeningSettings(BaseSettings):
    """Hardening of ``fittingroom serve`` (env prefix ``SERVE_``); see the module docstring."""

    model_config = SettingsConfigDict(env_prefix="SERVE_", env_file=".env", extra="ignore")

    security_headers: bool = Field(
        default=True, description="Send CSP, nosniff, X-Frame-Options and Referrer-Policy on every response."
    )
    content_security_policy: str = Field(
        default=PAGE_CSP, description="Content-Security-Policy of the page and APIs."
    )
    check_host: bool = Field(default=True, description="Answer 400 to a Host header not in the allow-list.")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names allowed besides localhost, 127.0.0.1, ::1 and SERVE_HOST (JSON list; "
        "'*.example.com' patterns; '*' allows any).",
    )
    rate_limit: str = Field(
        default="60/minute",
        description="Requests per client on the upload routes ('N/second|minute|hour', "
        "e.g. '60/minute'; empty = no limit).",
    )
    rate_limited_routes: list[str] = Field(
        default_factory=lambda: list(UPLOAD_ROUTES),
        description="Routes the rate limit counts: 'METHOD /path' patterns (JSON list).",
    )
    timeout_keep_alive_s: int = Field(
        default=5, ge=1, description="uvicorn: close a keep-alive connection idle this long (seconds)."
    )
    max_header_bytes: int = Field(
        default=16_384,
        ge=1024,
        description="uvicorn (h11): largest request line + headers in bytes; larger is a 400.",
    )
    limit_concurrency: int | None = Field(
        default=200,
        ge=1,
        description="uvicorn: connections + tasks at once; past it a 503 (empty = no limit).",
    )
    header_timeout_s: float | None = Field(
        default=10.0,
        gt=0,
        description="uvicorn (h11): seconds a client has to send its request line and headers (empty = no limit).",
    )
    http: Literal["h11", "httptools", "auto"] = Field(
        default="h11", description="uvicorn HTTP implementation (h11 applies SERVE_MAX_HEADER_BYTES)."
    )

    @field_validator("rate_limit")
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        if value.strip():
            try:
                parse(value)
            except ValueError as exc:
                raise ValueError(f"rate limit {value!r}: {exc}") from None
        return value.strip()

    def hosts(self, host: str) -> list[str]:
        """The Host allow-list for a server listening on ``host``."""
        names = [*LOCAL_HOSTS, *self.allowed_hosts]
        if host in ("0.0.0.0", "::", ""):
            names.append(socket.gethostname())
        else:
            names.append(f"[{host}]" if ":" in host else host)  # an IPv6 Host header is bracketed
        return list(dict.fromkeys(names))


class SecurityHeaders:
    """ASGI middleware: the security headers on every HTTP response (see the module docstring)."""

    def __init__(self, app: ASGIApp, csp: str = PAGE_CSP, docs_csp: str = DOCS_CSP) -> None:
        self.app = app
        self.csp = csp
        self.docs_csp = docs_csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = self.docs_csp if path.endswith(("/docs", "/redoc", "/docs/oauth2-redirect")) else self.csp

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", csp)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RateLimit:
    """ASGI middleware: at most ``rate`` requests per client (peer address) on ``routes``;
    past it a 429 with ``Retry-After`` (whole seconds until a request is allowed again)."""

    def __init__(self, app: ASGIApp, rate: RateLimitItem, routes: list[str]) -> None:
        self.app = app
        self.rate = rate
        self.routes = [tuple(r.split(None, 1)) for r in routes]
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def counts(self, method: str, path: str) -> bool:
        """Whether ``method path`` is one of the limited routes."""
        return any(m.upper() == method and fnmatch.fnmatchcase(path, p) for m, p in self.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.counts(scope.get("method", ""), scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client[0] if client else "unknown"
        if not self.limiter.hit(self.rate, key):
            stats = self.limiter.get_window_stats(self.rate, key)
            retry = max(1, math.ceil(stats.reset_time - time.time()))
            response = JSONResponse(
                {"detail": f"Too many uploads: at most {self.rate} per client; try again in {retry} s."},
                status_code=429,
                headers={"Retry-After": str(retry)},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header-read timeout of ``header_timeout`` seconds, counted
    from the connection (or the end of the previous response) to the end of the request's
    headers; past it the connection is closed (HTTP/1.1 allows no answer before a request)."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a request's headers are in
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)


def harden(app: FastAPI, settings: HardeningSettings | None = None, *, host: str = "127.0.0.1") -> FastAPI:
    """Add the rate limit, the Host allow-list and the security headers to ``app`` (in place;
    returns it). ``host``: the interface the server listens on (it joins the allow-list)."""
    settings = settings or HardeningSettings()
    if settings.rate_limit and settings.rate_limited_routes:
        app.add_middleware(RateLimit, rate=parse(settings.rate_limit), routes=settings.rate_limited_routes)
    if settings.check_host:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.hosts(host), www_redirect=False)
    if settings.security_headers:  # added last = outermost: the 400 and 429 answers get them too
        app.add_middleware(SecurityHeaders, csp=settings.content_security_policy)
    return app


def uvicorn_options(settings: HardeningSettings | None = None) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.Config`` for the connection limits of ``settings``."""
    settings = settings or HardeningSettings()
    http: Any = settings.http
    if settings.http == "h11" and settings.header_timeout_s is not None:
        http = type(
            "HeaderTimeoutH11Protocol",
            (HeaderTimeoutH11Protocol,),
            {"header_timeout": settings.header_timeout_s},
        )
    return {
        "timeout_keep_alive": settings.timeout_keep_alive_s,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "limit_concurrency": settings.limit_concurrency,
        "http": http,
    }
