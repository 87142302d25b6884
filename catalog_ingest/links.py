"""Shop links of products: the feed's ``link``, or one built from a link template.

A product's shop link is, in order:

1. the feed's ``link`` (Merchant Center field; the crawler writes the crawled page URL there);
2. else a **link template** filled with the record's fields: ``--link-template`` of
   ``fittingroom ingest`` (e.g. ``'https://shop.example/p/{id}'``), or the preset's template:

   ========== ============================================== ==============================
   preset     template                                       store base URL setting
   ========== ============================================== ==============================
   ``luma``   ``{store_url}/{url_key}.html``                 ``INGEST_LUMA_STORE_URL``
   ``saleor`` ``{store_url}/products/{slug}/``               ``INGEST_SALEOR_STORE_URL``
   ========== ============================================== ==============================

   The default store URLs (``https://magento2-demo.example``, ``https://saleor-demo.example``)
   are **placeholders** (the ``.example`` domain never resolves): set the setting to the
   real storefront to get working links.

Only absolute ``http``/``https`` links are kept (``javascript:``, ``data:``, relative paths
are dropped), so a link can go straight into an ``<a href>``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Link templates of the presets; ``{store_url}`` comes from ``LinkSettings``.
PRESET_LINK_TEMPLATES: dict[str, str] = {
    "luma": "{store_url}/{url_key}.html",
    "magento": "{store_url}/{url_key}.html",
    "saleor": "{store_url}/products/{slug}/",
}


class LinkSettings(BaseSettings):
    """Store base URLs of the presets' link templates (env prefix ``INGEST_``)."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", env_file=".env", extra="ignore")

    luma_store_url: str = Field(
        default="https://magento2-demo.example",
        description="Base URL of the Luma/Magento storefront (placeholder by default).",
    )
    saleor_store_url: str = Field(
        default="https://saleor-demo.example",
        description="Base URL of the Saleor storefront (placeholder by default).",
    )

    def store_url(self, preset: str) -> str | None:
        """The base URL for ``preset`` without a trailing slash, None for presets without one."""
        url = {"luma": self.luma_store_url, "magento": self.luma_store_url, "saleor": self.saleor_store_url}
        found = url.get(preset)
        return found.rstrip("/") if found else None


@lru_cache(maxsize=1)
def get_link_settings() -> LinkSettings:
    """Process-wide ``LinkSettings`` (read from the environment once)."""
    return LinkSettings()


def safe_link(value: Any) -> str | None:
    """``value`` as an absolute http(s) URL with a host, else None (``javascript:``, relative...)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if any(c in text for c in "\n\r\t <>\"'"):
        return None
    return text


def check_template(template: str) -> str:
    """``template`` if it is a usable link template (``str.format`` fields, http(s) prefix).

    Raises ValueError with a readable message otherwise.
    """
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"link template {template!r}: {exc}") from None
    if not fields:
        raise ValueError(f"link template {template!r} has no {{field}} to fill (e.g. {{id}})")
    if not template.lower().startswith(("http://", "https://", "{store_url}")):
        raise ValueError(f"link template {template!r} must start with http:// or https://")
    return template


def build_link(template: str, record: Mapping[str, Any], store_url: str | None = None) -> str | None:
    """Fill ``template`` with the record's scalar fields (URL-quoted; dotted names reach into
    ``attributes``). None when a field is missing or empty, or the result is not http(s)."""
    values: dict[str, str] = {}
    attrs = record.get("attributes")
    for _, name, _, _ in string.Formatter().parse(template):
        if name is None:
            continue
        if name == "store_url":
            if not store_url:
                return None
            values[name] = store_url
            continue
        value = record.get(name)
        if value in (None, "") and isinstance(attrs, Mapping):
            value = attrs.get(name.removeprefix("attributes."))
        if value in (None, "") or isinstance(value, Mapping | list | bool):
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        values[name] = quote(str(value).strip(), safe="")
    try:
        return safe_link(template.format_map(values))
    except (KeyError, IndexError, ValueError):
        return None
