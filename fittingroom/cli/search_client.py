"""``fittingroom search --server URL``: the query sent to a running ``fittingroom serve``.

The all-in-one server (or the compose stack's proxy, same prefixes) answers at
``URL/api/retrieval/search`` (JSON: text, product_id, filters) and
``URL/api/retrieval/search/image`` (multipart: the photo file and the same fields); its JSON
answer is what ``search_output.print_results`` prints, so the output equals a local search's.
No model, store or index is loaded here; httpx is imported on first use.
"""

from __future__ import annotations

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
    import httpx

    flt = {key: v for key, v in (filters or {}).items() if v is not None}
    url = search_url(server, image=image is not None)
    # certificates are loaded for https only: building a verifying SSL context (the CA bundle)
    # costs ~0.2 s of a cold start that a plain-http loopback server never uses
    verify = url.startswith("https://")
    try:
        if image is None:
            body: dict[str, Any] = {"text": text, "product_id": product_id, "image_weight": image_weight}
            body = {key: v for key, v in body.items() if v is not None}
            resp = httpx.post(
                url, json={**body, "filters": flt, "k": k, "offset": offset}, timeout=timeout_s, verify=verify
            )
        else:
            fields = {"text": text, "image_weight": image_weight, "box": box, **flt, "k": k, "offset": offset}
            form = {key: _form_value(v) for key, v in fields.items() if v is not None}
            files = {"image": (image.name, image.read_bytes())}
            resp = httpx.post(url, data=form, files=files, timeout=timeout_s, verify=verify)
    except httpx.TransportError as exc:  # refused, DNS, timeout, a broken connection
        raise ServerSearchError(
            f"cannot reach the fittingroom server at {server} ({type(exc).__name__}: {exc or 'no answer'}); "
            "is 'fittingroom serve' running there? (--server '' searches locally)",
            2,
        ) from exc
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text[:300]
        code = 2 if 400 <= resp.status_code < 500 and resp.status_code != 404 else 1
        raise ServerSearchError(f"the server at {server} answered {resp.status_code}: {detail}", code)
    try:
        results: dict[str, Any] = resp.json()
        results["results"]  # noqa: B018 -- a search answer, not some other JSON
    except (ValueError, KeyError, TypeError) as exc:
        raise ServerSearchError(f"{url} did not answer with search results: {resp.text[:200]!r}", 1) from exc
    return results


def _form_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
