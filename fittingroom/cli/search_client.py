"""``fittingroom search --server URL``: the query sent to a running ``fittingroom serve``.

The all-in-one server (or the compose stack's proxy, same prefixes) answers at
``URL/api/retrieval/search`` (JSON: text, product_id, filters) and
``URL/api/retrieval/search/image`` (multipart: the photo file and the same fields); its JSON
answer is what ``search_output.print_results`` prints, so the output equals a local search's.
No model, store or index is loaded here. A text query goes through the standard library's
``urllib.request`` (JSON POST; httpx's import is most of a cold ``--server`` query's time); a
photo query through httpx (multipart), imported on first use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Where the all-in-one server mounts the retrieval service.
RETRIEVAL_PREFIX = "/api/retrieval"


class ServerSearchError(Exception):
    """The server could not be reached or refused the query: ``str(exc)`` names the URL and the
    reason; ``exit_code`` is 2 for an unreachable server or a query it rejects (4xx but 404),
    1 for anything else (no such product, no index yet, a server error)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def search_url(server: str, *, image: bool) -> str:
    """The search endpoint of the server at ``server`` (``http://host:port``, any trailing slash)."""
    return server.rstrip("/") + RETRIEVAL_PREFIX + ("/search/image" if image else "/search")


def server_search(
    server: str,
    *,
    text: str | None = None,
    image: Path | None = None,
    box: str | None = None,
    image_weight: float | None = None,
    product_id: str | None = None,
    filters: dict[str, Any] | None = None,
    k: int = 10,
    offset: int = 0,
    timeout_s: float = 60.0,
) -> dict[str, Any]:
    """Run one search on the server; returns its ``SearchResponse`` JSON as a dict.

    ``image``: a photo file, uploaded as is (the server decodes and crops it to ``box``,
    ``'x0,y0,x1,y1'`` pixels); ``filters``: ``category``, ``brand``, ``min_price``,
    ``max_price``, ``eligible`` (None values are left out). Raises ``ServerSearchError``
    (unreachable, timed out, an error status: the server's own ``detail`` is quoted) and
    ``OSError`` when ``image`` cannot be read.
    """
    flt = {key: v for key, v in (filters or {}).items() if v is not None}
    url = search_url(server, image=image is not None)
    if image is None:
        body: dict[str, Any] = {"text": text, "product_id": product_id, "image_weight": image_weight}
        body = {key: v for key, v in body.items() if v is not None}
        status, raw = _post_json(server, url, {**body, "filters": flt, "k": k, "offset": offset}, timeout_s)
    else:
        fields = {"text": text, "image_weight": image_weight, "box": box, **flt, "k": k, "offset": offset}
        form = {key: _form_value(v) for key, v in fields.items() if v is not None}
        status, raw = _post_form(server, url, form, image, timeout_s)
    text_body = raw.decode("utf-8", "replace")
    if status >= 400:
        try:
            detail = json.loads(text_body).get("detail", text_body)
        except (ValueError, AttributeError):
            detail = text_body[:300]
        code = 2 if 400 <= status < 500 and status != 404 else 1
        raise ServerSearchError(f"the server at {server} answered {status}: {detail}", code)
    try:
        results: dict[str, Any] = json.loads(text_body)
        results["results"]  # noqa: B018 -- a search answer, not some other JSON
    except (ValueError, KeyError, TypeError) as exc:
        raise ServerSearchError(f"{url} did not answer with search results: {text_body[:200]!r}", 1) from exc
    return results


def _unreachable(server: str, exc: BaseException) -> ServerSearchError:
    return ServerSearchError(
        f"cannot reach the fittingroom server at {server} ({type(exc).__name__}: {exc or 'no answer'}); "
        "is 'fittingroom serve' running there? (--server '' searches locally)",
        2,
    )


def _post_json(server: str, url: str, payload: dict[str, Any], timeout_s: float) -> tuple[int, bytes]:
    """(status, body) of a JSON POST with ``urllib.request``; raises ServerSearchError when the
    server cannot be reached (refused, DNS, timeout, a broken connection)."""
    import http.client
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json", "accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 -- http(s) URL of --server
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:  # an error status: its body carries the detail
        return int(exc.code), exc.read()
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise _unreachable(server, exc) from exc


def _post_form(
    server: str, url: str, form: dict[str, str], image: Path, timeout_s: float
) -> tuple[int, bytes]:
    """(status, body) of a multipart POST of ``form`` and the ``image`` file with httpx."""
    import httpx

    files = {"image": (image.name, image.read_bytes())}
    # certificates are loaded for https only: building a verifying SSL context (the CA bundle)
    # costs ~0.2 s of a cold start that a plain-http loopback server never uses
    verify = url.startswith("https://")
    try:
        resp = httpx.post(url, data=form, files=files, timeout=timeout_s, verify=verify)
    except httpx.TransportError as exc:  # refused, DNS, timeout, a broken connection
        raise _unreachable(server, exc) from exc
    return resp.status_code, resp.content


def _form_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
