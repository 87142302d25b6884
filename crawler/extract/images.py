"""Product image candidates: size hints in CDN URLs, de-duplication of renditions, ordering."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from crawler.extract.structured import first_text
from crawler.extract.text import abs_url, leading_int

_SIZE_IN_PATH = re.compile(r"[_\-/.](\d{2,4})x(\d{2,4})(?=[_\-/.@]|$)", re.I)
_SIZE_PARAMS = ("w", "width", "wid", "sw", "imwidth", "im_w", "size", "resize", "maxwidth", "fit")
_SIZE_TOKEN = re.compile(r"(?:^|[/,_])w_(\d{2,4})(?=[,/_]|$)")


def image_size_hint(url: str) -> int | None:
    """Pixel width a CDN URL asks for (``_800x800``, ``?w=800``, ``w_800``), or None."""
    parts = urlsplit(url)
    found = list(_SIZE_IN_PATH.finditer(parts.path))
    if found:
        return int(found[-1].group(1))
    for k, v in parse_qsl(parts.query):
        if k.lower() in _SIZE_PARAMS:
            d = re.match(r"(\d{2,4})", v)
            if d:
                return int(d.group(1))
    t = _SIZE_TOKEN.search(parts.path)
    return int(t.group(1)) if t else None


def _image_key(url: str) -> str:
    """URL with size hints removed: two renditions of one picture share the key."""
    parts = urlsplit(url)
    path = _SIZE_IN_PATH.sub("", parts.path)
    path = _SIZE_TOKEN.sub("", path)
    query = "&".join(f"{k}={v}" for k, v in parse_qsl(parts.query) if k.lower() not in _SIZE_PARAMS)
    return urlunsplit((parts.scheme, parts.netloc.lower(), path, query, ""))


def order_images(candidates: Iterable[tuple[str, int | None]]) -> list[str]:
    """Deduplicate ``(absolute url, declared width or None)`` pairs and order them.

    Renditions of the same picture (same URL up to size hints) collapse to the
    largest one; then pictures whose size is known come largest first, and
    pictures of unknown size follow in page order.
    """
    best: dict[str, tuple[str, int, int]] = {}
    for pos, (url, width) in enumerate(candidates):
        if not url:
            continue
        w = width or image_size_hint(url) or 0
        key = _image_key(url)
        if key not in best:
            best[key] = (url, w, pos)
        elif w > best[key][1]:
            best[key] = (url, w, best[key][2])
    ranked = sorted(best.values(), key=lambda t: (-t[1], t[2]))
    return [u for u, _, _ in ranked]


def node_images(node: dict[str, Any], base: str) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    for v in node.get("image", []) + node.get("images", []):
        if isinstance(v, dict):
            url = first_text(v, "contentUrl", "url", "@id")
            width = leading_int(first_text(v, "width"))
            u = abs_url(base, url)
            if u:
                out.append((u, width))
        else:
            u = abs_url(base, v)
            if u:
                out.append((u, None))
    return out
