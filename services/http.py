"""What every HTTP service shares: upload limits, error bodies and the fault -> status map.

One fault gets one status in every service (and in OpenAPI, through :func:`error_responses`):

| fault | status |
|---|---|
| body or upload over its byte limit (counted while read, chunked or not) | 413 |
| image over the pixel / side limit | 413 |
| upload that is not a decodable image, or an empty upload | 415 |
| an image URL (JSON parameter) whose content is not an image | 422 |
| unknown id (image, mask, person, product, job) | 404 |
| bad parameters, bad prompt, input rejected with a reason (e.g. no person) | 422 |
| a remote image URL that cannot be fetched | 400 (or the fetcher's own status) |
| nothing to serve yet (no index) / a service still starting | 503 |

Every error body is ``{"detail": "<a sentence>"}`` (:class:`ErrorOut`). Request validation
errors are summarised (field and message, never the input echoed back).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fittingroom.images import ImageDecodeError

if TYPE_CHECKING:
    from fittingroom.models.registry import ModelShelf

log = logging.getLogger(__name__)

#: Description of each status in OpenAPI.
STATUS_TEXT: dict[int, str] = {
    400: "The image URL cannot be fetched.",
    404: "Unknown id.",
    409: "Not ready yet.",
    413: "Body, upload or image too large.",
    415: "The upload is not a decodable image.",
    422: "Input rejected, with the reason.",
    503: "Not ready: nothing to serve yet, or still starting.",
}


class ErrorOut(BaseModel):
    """Body of every error response."""

    detail: str = Field(description="What went wrong, as a sentence a person understands.")


class LoadedModel(BaseModel):
    """One model on the process's shelf (``fittingroom.models.registry``)."""

    name: str
    kind: str
    source: str
    licence: str
    options: dict[str, Any] = Field(default_factory=dict)
    files: list[dict[str, Any]] = Field(default_factory=list)
    model_key: str | None = None
    load_s: float | None = None
    notes: str = ""


def loaded_models(shelf: ModelShelf) -> list[LoadedModel]:
    """``shelf.loaded()`` as health-answer models."""
    return [LoadedModel.model_validate(d) for d in shelf.loaded()]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these status codes, each with :class:`ErrorOut`."""
    return {code: {"model": ErrorOut, "description": STATUS_TEXT.get(code, "Error.")} for code in codes}


class ImageTooLargeError(ValueError):
    """An upload or image over its limit (413)."""


def image_error(exc: ImageDecodeError) -> HTTPException:
    """413 for an image over its pixel or side limit, 415 for anything that is not an image."""
    if getattr(exc, "too_large", False) or "exceeds the limit" in str(exc):
        return HTTPException(413, str(exc))
    return HTTPException(415, str(exc))


async def read_upload(file: UploadFile, limit: int) -> bytes:
    """The upload's bytes, read up to ``limit`` + 1. 413 past the limit, 415 when empty."""
    name = file.filename or "upload"
    data = await file.read(limit + 1)
    await file.close()
    if len(data) > limit:
        raise HTTPException(413, f"{name}: the upload is larger than the {limit}-byte limit")
    if not data:
        raise HTTPException(415, f"{name}: the uploaded file is empty, not an image")
    return data


class BodyLimit:
    """ASGI middleware: 413 once a request body passes ``max_bytes``, counted while it is read.

    A ``Content-Length`` over the limit is refused before the body is read; a chunked body
    (no length) is counted chunk by chunk and cut off at the limit, so nothing larger is ever
    spooled. ``limits`` maps a path suffix to its own limit (e.g. the masks route's JSON).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.limits = limits or {}

    def _limit(self, path: str) -> int:
        for suffix, limit in self.limits.items():
            if path.endswith(suffix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope.get("path", ""))
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _too_large(send, f"the request body of {int(length)} bytes is over the {limit}-byte limit")
            return
        seen = 0
        refused = False
        started = False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # answer 413 now and tell the app the client is gone: it stops reading, and
                    # whatever it still tries to send is dropped
                    refused = True
                    if not started:
                        await _too_large(send, f"the request body is over the {limit}-byte limit")
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracking_send)
        except Exception:
            if not refused:
                raise


async def _too_large(send: Send, message: str) -> None:
    await _send_json(send, 413, message)


class JsonGuard:
    """ASGI middleware: a JSON body with ``NaN`` / ``Infinity`` or a lone surrogate in a string is
    a 422 with a sentence, before any handler sees it (``json.loads`` accepts both, and they
    later break arithmetic or the UTF-8 response). Bodies are already bounded by :class:`BodyLimit`,
    which must wrap this middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        ctype = dict(scope.get("headers") or []).get(b"content-type", b"")
        if not ctype.split(b";")[0].strip().endswith(b"json"):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = json_problem(body)
        if problem is not None:
            await _send_json(send, 422, problem)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def json_problem(body: bytes) -> str | None:
    """Why a JSON body is refused (non-finite numbers, lone surrogates), or None. A body that is
    not JSON at all is left to the route's own validation."""
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:
        if "JSON allows" in str(exc):
            return f"invalid JSON: {exc} (NaN and Infinity are not accepted)"
        return None
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return "invalid JSON: a string holds a lone surrogate (\\ud800-\\udfff) that is not valid Unicode"
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return None


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def guard(app: FastAPI, max_bytes: int, limits: dict[str, int] | None = None) -> None:
    """Install the shared request guards on a service: body limits (outermost), the JSON guard,
    and the fault -> status handlers."""
    app.add_middleware(JsonGuard)
    app.add_middleware(BodyLimit, max_bytes=max_bytes, limits=limits)  # added last = runs first
    install_error_handlers(app)


def _summarise(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more")
    return "invalid request: " + "; ".join(parts)


#: The detail of FastAPI's HTTPException(400) for a request body it cannot parse.
BODY_PARSE_ERROR = "There was an error parsing the body"
UNREADABLE_BODY = (
    "the request body could not be read: send valid JSON, or multipart/form-data with a proper boundary"
)


def _is_body_parse_error(detail: object) -> bool:
    """FastAPI's generic parse error, or Starlette's multipart parser messages ("Missing boundary
    in multipart.", ...): our own routes never raise a 400 that mentions multipart."""
    return isinstance(detail, str) and (detail == BODY_PARSE_ERROR or "multipart" in detail.lower())


def install_error_handlers(app: FastAPI) -> None:
    """The shared fault -> status map: request validation -> 422 with a short summary (the input
    is never echoed back), a body that cannot be parsed -> 422, an unreadable image -> 415 / 413,
    every ``detail`` a string."""

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _summarise(list(exc.errors()))}, status_code=422)

    @app.exception_handler(ImageDecodeError)
    async def _image(_: Request, exc: ImageDecodeError) -> JSONResponse:
        http = image_error(exc)
        return JSONResponse({"detail": http.detail}, status_code=http.status_code)

    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException is a subclass
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and _is_body_parse_error(exc.detail):
            # FastAPI's / Starlette's own 400 for a body they cannot parse (broken multipart or
            # form data): the documented 422 of every route, with a sentence that says what to fix
            return JSONResponse({"detail": UNREADABLE_BODY}, status_code=422)
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)[:500]
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)
