"""The page model: a parsed HTML page (lxml tree, page URL, base URL)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from lxml import etree
from lxml.html import HtmlElement

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# the document
# --------------------------------------------------------------------------------------


@dataclass
class Document:
    """A parsed page: lxml tree, page URL, base URL for relative links."""

    tree: HtmlElement
    url: str
    base_url: str

    def xpath(self, query: str) -> list[Any]:
        try:
            return self.tree.xpath(query)
        except etree.XPathError:
            logger.debug("bad xpath %r", query)
            return []


def load_document(html: str | bytes, url: str) -> Document:
    """Parse HTML (text, or bytes in any declared/detected encoding) into a ``Document``.

    Raises ValueError when the input is empty or not parseable as HTML.
    """
    from extruct.utils import parse_xmldom_html
    from w3lib.encoding import html_to_unicode

    if isinstance(html, bytes):
        _, html = html_to_unicode(None, html)
    if not html or not html.strip():
        raise ValueError(f"{url}: empty page")
    html = html.replace("\x00", "")
    try:
        tree = parse_xmldom_html(html, encoding="utf-8")
    except (etree.ParserError, ValueError) as exc:
        raise ValueError(f"{url}: not parseable as HTML ({exc})") from exc
    if tree is None:
        raise ValueError(f"{url}: not parseable as HTML")
    base = url
    for href in tree.xpath("//base/@href")[:1]:
        base = urljoin(url, href.strip())
    return Document(tree=tree, url=url, base_url=base)
