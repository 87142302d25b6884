"""Per-site extraction rules (CSS/XPath selectors in a TOML file).

The bundled rules live in ``crawler/site_rules.toml`` (format documented at
the top of that file and in ``crawler/README.md``); ``CRAWLER_SITE_RULES`` or
``fittingroom crawl --rules FILE`` adds a file of your own (its sites are
checked first). A rule applies to a page whose host is one of its ``domains``
(or a subdomain), or where its ``detect`` selector matches.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crawler.extract.fields import currency_code, parse_availability, parse_price
from crawler.extract.text import abs_url

if TYPE_CHECKING:
    from parsel import Selector

    from crawler.extract.document import Document
    from crawler.items import ProductItem

BUNDLED_RULES = Path(__file__).with_name("site_rules.toml")

#: ProductItem fields a rule may set, and whether they hold a list.
RULE_FIELDS: dict[str, bool] = {
    "name": False,
    "description": False,
    "sku": False,
    "mpn": False,
    "gtin": False,
    "brand": False,
    "price": False,
    "currency": False,
    "availability": False,
    "gender": False,
    "material": False,
    "product_group_id": False,
    "images": True,
    "colors": True,
    "sizes": True,
    "category_path": True,
}
_SITE_KEYS = {"name", "domains", "detect", "product", "override", "pair_images_with_colors", "fields"}
_FIELD_KEYS = {"css", "xpath", "all", "split", "join"}


class SiteRulesError(ValueError):
    """A rules file is malformed (message names the file and the site)."""


@dataclass(frozen=True)
class FieldRule:
    """One field's selector: CSS (with ``::text``/``::attr()``) or XPath, plus post-processing."""

    css: str | None = None
    xpath: str | None = None
    all: bool = False
    split: str | None = None
    join: str | None = None

    def values(self, sel: Selector) -> list[str]:
        res = sel.css(self.css) if self.css else sel.xpath(self.xpath or "")
        raw = [v for v in (x.strip() for x in res.getall()) if v]
        if self.join is not None:
            joined = self.join.join(raw).strip()
            return [joined] if joined else []
        if not self.all:
            raw = raw[:1]
        if self.split:
            raw = [p.strip() for v in raw for p in v.split(self.split) if p.strip()]
        return raw


@dataclass
class SiteRule:
    """The rules for one shop (see ``site_rules.toml``)."""

    name: str
    domains: tuple[str, ...] = ()
    detect: str | None = None
    product: str | None = None
    override: bool = False
    pair_images_with_colors: bool = False
    fields: dict[str, FieldRule] = field(default_factory=dict)

    def matches(self, doc: Document) -> bool:
        host = (urlsplit(doc.url).hostname or "").lower()
        if any(host == d or host.endswith("." + d) for d in self.domains):
            return True
        return bool(self.detect) and bool(_selector(doc).css(self.detect or ""))

    def is_product_page(self, doc: Document) -> bool:
        return not self.product or bool(_selector(doc).css(self.product))

    def apply(self, item: ProductItem, doc: Document) -> list[tuple[str, int | None]]:
        """Set the rule's fields on ``item`` (fill or override); returns image candidates."""
        sel = _selector(doc)
        src = f"rule:{self.name}"
        images: list[tuple[str, int | None]] = []

        def put(name: str, value: Any) -> None:
            if value in (None, "", []):
                return
            if self.override or getattr(item, name) in (None, "", []):
                setattr(item, name, value)
                item.sources[name] = src

        for name, rule in self.fields.items():
            vals = rule.values(sel)
            if not vals:
                continue
            if name == "price":
                amount, sym = parse_price(vals[0])
                put("price", amount)
                if sym:
                    put("currency", currency_code(sym, doc.url))
            elif name == "currency":
                put("currency", currency_code(vals[0], doc.url))
            elif name == "availability":
                put("availability", parse_availability(vals[0]))
            elif name == "images":
                images = [(u, None) for u in (abs_url(doc.base_url, v) for v in vals) if u]
            elif RULE_FIELDS[name]:
                put(name, vals)
            else:
                put(name, vals[0])
        if images:
            item.sources["images"] = src
        if self.pair_images_with_colors and images:
            colors = self.fields["colors"].values(sel) if "colors" in self.fields else []
            for (u, _), color in zip(images, colors, strict=False):
                item.image_colors[u] = color
        return images


def _selector(doc: Document) -> Selector:
    from parsel import Selector

    cached = getattr(doc, "_selector", None)
    if cached is None:
        cached = Selector(root=doc.tree, type="html")
        doc._selector = cached  # type: ignore[attr-defined]
    return cached


@dataclass
class SiteRules:
    """An ordered list of site rules; the first matching one applies."""

    sites: list[SiteRule] = field(default_factory=list)

    def match(self, doc: Document) -> SiteRule | None:
        for s in self.sites:
            if s.matches(doc):
                return s
        return None

    def names(self) -> list[str]:
        return [s.name for s in self.sites]

    def without_shop(self, url: str) -> SiteRules:
        """These rules less every rule keyed to the shop of ``url`` (a ``domains`` entry with the
        same ``shop_key``), for scoring what a shop the rules were never derived from gets.

        Rules with only a ``detect`` selector (page-template rules, not keyed to a shop) stay.
        """
        shop = shop_key(url)
        return SiteRules([s for s in self.sites if not any(shop_key(d) == shop for d in s.domains)])


#: Second-level labels under a country code that are part of the public suffix (``co.uk``, ``com.tw``).
_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "gov", "edu", "ac", "or", "ne", "go", "gob", "nic"})


def shop_key(url_or_host: str) -> str:
    """The shop a URL or host belongs to: its registrable name without the public suffix.

    ``https://www.amazon.co.uk/x`` -> ``'amazon'``, ``'birmingham.craigslist.org'`` ->
    ``'craigslist'``, ``'zalando.fi'`` -> ``'zalando'`` (one shop's country sites share
    templates, so they count as one shop). An IP address or a single-label host is returned
    as it is (lower case); ``''`` for an empty value.
    """
    text = url_or_host.strip().lower()
    host = (urlsplit(text).hostname or "") if "/" in text else text.split(":")[0]
    labels = [x for x in host.split(".") if x]
    if not labels:
        return ""
    if len(labels) == 1 or labels[-1].isdigit():
        return host
    labels = labels[:-1]  # the top-level domain
    if len(labels) > 1 and labels[-1] in _SECOND_LEVEL:
        labels = labels[:-1]
    return labels[-1]


def parse_rules(data: dict[str, Any], origin: str = "<rules>") -> SiteRules:
    """Build SiteRules from parsed TOML; raises SiteRulesError naming ``origin`` and the site."""
    from parsel import Selector

    probe = Selector(text="<html></html>")
    sites = []
    for i, raw in enumerate(data.get("site", [])):
        where = f"{origin}: site #{i + 1} ({raw.get('name', 'unnamed')})"
        unknown = set(raw) - _SITE_KEYS
        if unknown:
            raise SiteRulesError(f"{where}: unknown keys {sorted(unknown)}")
        if not raw.get("name"):
            raise SiteRulesError(f"{where}: 'name' is required")
        if not raw.get("domains") and not raw.get("detect"):
            raise SiteRulesError(f"{where}: give 'domains' or 'detect'")
        fields: dict[str, FieldRule] = {}
        for fname, spec in (raw.get("fields") or {}).items():
            if fname not in RULE_FIELDS:
                raise SiteRulesError(f"{where}: unknown field {fname!r}; known: {', '.join(RULE_FIELDS)}")
            if isinstance(spec, str):
                spec = {"xpath": spec[6:]} if spec.startswith("xpath:") else {"css": spec}
            if (
                not isinstance(spec, dict)
                or set(spec) - _FIELD_KEYS
                or not (spec.get("css") or spec.get("xpath"))
            ):
                raise SiteRulesError(
                    f"{where}: field {fname!r} needs a selector string or a table with css/xpath"
                )
            spec = dict(spec)
            spec.setdefault("all", RULE_FIELDS[fname])
            rule = FieldRule(**spec)
            try:
                rule.values(probe)
            except Exception as exc:  # parsel/cssselect raise several error types
                raise SiteRulesError(f"{where}: field {fname!r} has a bad selector: {exc}") from exc
            fields[fname] = rule
        for key in ("detect", "product"):
            if raw.get(key):
                try:
                    probe.css(raw[key])
                except Exception as exc:
                    raise SiteRulesError(f"{where}: bad '{key}' selector: {exc}") from exc
        sites.append(
            SiteRule(
                name=raw["name"],
                domains=tuple(d.lower().removeprefix("www.") for d in raw.get("domains", [])),
                detect=raw.get("detect"),
                product=raw.get("product"),
                override=bool(raw.get("override", False)),
                pair_images_with_colors=bool(raw.get("pair_images_with_colors", False)),
                fields=fields,
            )
        )
    return SiteRules(sites)


def read_rules_file(path: str | Path) -> SiteRules:
    """Read one TOML rules file; raises SiteRulesError (with file and line for TOML syntax errors)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SiteRulesError(f"{p}: rules file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SiteRulesError(f"{p}: {exc}") from exc
    return parse_rules(data, str(p))


@lru_cache(maxsize=8)
def load_rules(extra: str | None = None) -> SiteRules:
    """Rules from ``extra`` (if given; checked first) followed by the bundled rules."""
    bundled = read_rules_file(BUNDLED_RULES)
    if not extra:
        return bundled
    return SiteRules(read_rules_file(extra).sites + bundled.sites)
