"""Small text helpers of the extraction: whitespace, HTML-free text, URLs, schema.org short names."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

from fittingroom.values import clean_text
from fittingroom.values import schema_short_name as short_name

__all__ = ["WS", "abs_url", "as_list", "clean_text", "leading_int", "short_name"]


WS = re.compile(r"\s+")


def as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    if isinstance(v, list | tuple):
        return [x for x in v if x is not None]
    return [v]


def abs_url(base: str, value: Any) -> str | None:
    t = clean_text(value) if not isinstance(value, dict) else None
    if not t or t.startswith(("data:", "javascript:")):
        return None
    try:
        u = urljoin(base, t)
    except ValueError:
        return None
    return u if urlsplit(u).scheme in ("http", "https", "file") else None


def leading_int(v: str | None) -> int | None:
    if not v:
        return None
    m = re.match(r"\s*(\d+)", v)
    return int(m.group(1)) if m else None
