"""Feed records -> product drafts (``Product`` fields + the images to fetch).

Field names are Google Merchant Center's (https://support.google.com/merchants/answer/7052112):

=========================== ============================================================
field                       use
=========================== ============================================================
id                          required; the product id unless ``item_group_id`` is set
title                       required
description, brand          copied
link                        the shop link (http(s) only); without one, built from a link
                            template (``catalog_ingest.links``: ``luma`` / ``saleor`` presets)
image_link                  required (or ``images``); the main image of the row
additional_image_link       more images: a comma-separated string or a list
price                       ``'52.00 USD'``, ``'$52'``, ``'52,00 €'`` or a number; parsed
                            with price-parser; an unparsable price is a bad row
product_type                shop category ``'A > B > C'`` (``'A/B/C'`` also works); a list
                            of such paths picks the first that is not a merchandising
                            collection (``Collections``, ``Promotions``, ``Sale``...)
google_product_category     Google taxonomy text (a numeric id is kept as an attribute)
color, size, gender         per row; rows of a group add up to colours/sizes lists
item_group_id               rows sharing it are colour/size variants of one product:
                            they merge into one product whose id is the group id
=========================== ============================================================

Extensions for nested feeds: ``currency`` (with a numeric price), ``colors`` and
``sizes`` (lists), ``images`` (list of image links), ``variants`` (list of objects with
``color``, ``size``, ``image_link``/``additional_image_link``/``images``), ``attributes``
(object), ``garment_category`` (a ``GarmentCategory`` value; otherwise derived by
``catalog_ingest.garments``). Any other scalar field is kept in ``Product.attributes``.

Images: ``images[0]`` of a product is its main image. Every image gets the colour of the
variant (or row) that lists it, and ``is_main`` is set on the main image of each colour
variant (the first image a variant or row lists), so the product's main image and each
colour's main image are flagged.

Other field names: ``FieldMapping`` renames feed fields (``sku=id``, dotted paths such
as ``offer.price=price`` reach into nested objects) and/or selects a preset; ``luma`` is
the preset for the Magento/Luma layout of ``../shared/data/luma-catalog/products.jsonl``
(``sku``, ``name``, ``categories``, ``main_image``, ``images``, ``variants[]``) and
``saleor`` for Saleor's export (``name``, ``category``, ``price_usd_min`` in USD,
``attributes.Brand``); both are detected automatically when the records look like them.
Text fields are HTML-unescaped (``&reg;`` -> ``®``).
"""

from __future__ import annotations

import html
import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from catalog_ingest.links import PRESET_LINK_TEMPLATES, LinkSettings, build_link, get_link_settings, safe_link
from fittingroom.catalog.garments import garment_category_for
from fittingroom.catalog.models import GarmentCategory, Product
from fittingroom.values import currency_code, normalise_color, normalise_gender, parse_price

#: Canonical field names a mapping may target (besides ``attributes.NAME``).
CANONICAL_FIELDS = frozenset(
    {
        "id",
        "title",
        "description",
        "link",
        "image_link",
        "additional_image_link",
        "price",
        "brand",
        "product_type",
        "google_product_category",
        "color",
        "size",
        "gender",
        "item_group_id",
        "currency",
        "colors",
        "sizes",
        "images",
        "variants",
        "attributes",
        "garment_category",
    }
)

#: Named mappings (feed field -> canonical field).
PRESETS: dict[str, dict[str, str]] = {
    "gmc": {},
    "luma": {
        "sku": "id",
        "name": "title",
        "categories": "product_type",
        "main_image": "image_link",
        "url_key": "attributes.url_key",
    },
}
PRESETS["magento"] = PRESETS["luma"]
#: Saleor's demo-store export (``../shared/data/saleor-catalog/products.jsonl``).
PRESETS["saleor"] = {
    "name": "title",
    "category": "product_type",
    "price_usd_min": "price",
    "slug": "attributes.slug",
    "attributes.Brand": "brand",
}

#: Constant fields a preset adds to every record (a record's own value wins).
PRESET_DEFAULTS: dict[str, dict[str, Any]] = {"saleor": {"currency": "USD"}}

#: Category roots that are merchandising collections, not product categories.
MERCHANDISING_ROOTS = frozenset(
    {
        "collections",
        "collection",
        "promotions",
        "promotion",
        "sale",
        "sales",
        "new",
        "new arrivals",
        "featured",
        "gifts",
        "outlet",
        "clearance",
        "erin recommends",
        "what's new",
    }
)


class MappingError(ValueError):
    """A ``--map`` value or mapping file that cannot be used."""


@dataclass(frozen=True)
class FieldMapping:
    """Renames (feed field -> canonical field) and an optional preset applied first.

    ``preset=None`` auto-detects a preset from the first record (``luma`` layout or plain GMC).
    ``link_template`` builds the shop link of records without a ``link`` (``catalog_ingest.links``;
    default: the preset's template).
    """

    renames: Mapping[str, str] = field(default_factory=dict)
    preset: str | None = None
    link_template: str | None = None

    @classmethod
    def parse(cls, specs: Sequence[str]) -> FieldMapping:
        """Build from ``--map`` values: ``SRC=DST``, a preset name, or a ``.json``/``.toml`` file
        holding ``{"SRC": "DST", ...}`` or ``{"preset": "...", "fields": {...}}``.

        Later values override earlier ones. Raises MappingError naming the bad value.
        """
        renames: dict[str, str] = {}
        preset: str | None = None
        for spec in specs:
            spec = spec.strip()
            if "=" in spec and Path(spec).suffix.lower() not in (".json", ".toml"):
                src, _, dst = spec.partition("=")
                renames[_check_src(src.strip(), spec)] = _check_dst(dst.strip(), spec)
            elif spec.lower() in PRESETS:
                preset = spec.lower()
            elif Path(spec).suffix.lower() in (".json", ".toml"):
                file_preset, file_renames = _load_mapping_file(Path(spec))
                preset = file_preset or preset
                renames.update(file_renames)
            else:
                raise MappingError(
                    f"--map {spec!r}: expected SRC=DST, a preset ({', '.join(sorted(PRESETS))}) "
                    "or a .json/.toml mapping file"
                )
        return cls(renames=renames, preset=preset)

    def preset_for(self, first_record: Mapping[str, Any] | None) -> str:
        """The preset in force: the given one, else detected from the first record, else ``gmc``."""
        return self.preset or (detect_preset(first_record) if first_record is not None else None) or "gmc"

    def resolved(self, first_record: Mapping[str, Any] | None) -> dict[str, str]:
        """The effective renames: the preset's (given or detected), then the explicit ones."""
        return {**PRESETS[self.preset_for(first_record)], **self.renames}


def _check_src(src: str, spec: str) -> str:
    if not src:
        raise MappingError(f"--map {spec!r}: empty source field name")
    return src


def _check_dst(dst: str, spec: str) -> str:
    if dst in CANONICAL_FIELDS or (dst.startswith("attributes.") and len(dst) > len("attributes.")):
        return dst
    raise MappingError(
        f"--map {spec!r}: unknown target field {dst!r}; use one of {', '.join(sorted(CANONICAL_FIELDS))} "
        "or attributes.NAME"
    )


def _load_mapping_file(path: Path) -> tuple[str | None, dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except FileNotFoundError:
        raise MappingError(f"mapping file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise MappingError(f"mapping file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise MappingError(f"mapping file {path}: expected an object of SRC: DST pairs")
    preset = data.pop("preset", None)
    if preset is not None and (not isinstance(preset, str) or preset.lower() not in PRESETS):
        raise MappingError(
            f"mapping file {path}: unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}"
        )
    fields = data.pop("fields", data)
    renames = {}
    for src, dst in fields.items():
        if not isinstance(dst, str):
            raise MappingError(f"mapping file {path}: target of {src!r} must be a field name, got {dst!r}")
        renames[_check_src(src, f"{src}={dst}")] = _check_dst(dst, f"{src}={dst} in {path}")
    return (preset.lower() if preset else None), renames


def detect_preset(record: Mapping[str, Any]) -> str | None:
    """``'luma'`` for Magento/Luma-style records (``sku``, ``name``, ``variants``/``images``, no ``id``);
    ``'saleor'`` for Saleor exports (``id``, ``name``, ``slug``, ``price_usd_min``)."""
    if {"id", "name", "slug", "price_usd_min"} <= record.keys() and "title" not in record:
        return "saleor"
    if (
        "id" not in record
        and "sku" in record
        and "name" in record
        and ("variants" in record or "images" in record)
    ):
        return "luma"
    return None


# ---- drafts ----------------------------------------------------------------------------


@dataclass
class ImageRef:
    """One image of a product as the feed gives it (not fetched yet)."""

    url: str
    color: str | None
    is_main: bool
    line: int


@dataclass
class ProductDraft:
    """A mapped product before its images are fetched: ``product.images`` is empty."""

    product: Product
    images: list[ImageRef]
    lines: list[int]

    @property
    def key(self) -> tuple[str, str]:
        return (self.product.source, self.product.id)

    @property
    def line(self) -> int:
        return self.lines[0]


@dataclass
class RowIssue:
    """A record that was skipped: where and why."""

    line: int
    reason: str
    product_id: str | None = None


class RowError(ValueError):
    pass


@dataclass
class _Row:
    line: int
    id: str
    group: str | None
    title: str
    description: str
    link: str | None
    brand: str | None
    price: float | None
    currency: str | None
    category_path: list[str]
    google_category: str | None
    garment_category: GarmentCategory | None
    colors: list[str]
    sizes: list[str]
    gender: str | None
    attributes: dict[str, str]
    images: list[ImageRef]


class FeedMapper:
    """Maps feed records of one source to ``ProductDraft``s (see the module docstring)."""

    def __init__(
        self, source: str, mapping: FieldMapping | None = None, *, links: LinkSettings | None = None
    ) -> None:
        if not source:
            raise ValueError("source must be a non-empty name")
        self.source = source
        self.mapping = mapping or FieldMapping()
        self.links = links
        self._renames: dict[str, str] | None = None
        self._defaults: dict[str, Any] = {}
        self._link_template: str | None = None
        self._store_url: str | None = None
        #: Rows that were kept with a value dropped (an unsafe shop link), filled by ``map_records``.
        self.notices: list[RowIssue] = []

    def map_records(
        self, records: Iterable[tuple[int, Mapping[str, Any]]]
    ) -> tuple[list[ProductDraft], list[RowIssue]]:
        """Map all records; rows of one ``item_group_id`` merge into one product.

        Returns the drafts in feed order and the skipped rows (missing id/title/image,
        unparsable price, duplicate id).
        """
        issues: list[RowIssue] = []
        groups: dict[str, list[_Row]] = {}
        for line, record in records:
            if self._renames is None:
                self._renames = self.mapping.resolved(record)
                preset = self.mapping.preset_for(record)
                self._defaults = PRESET_DEFAULTS.get(preset, {})
                self._link_template = self.mapping.link_template or PRESET_LINK_TEMPLATES.get(preset)
                self._store_url = (self.links or get_link_settings()).store_url(preset)
            try:
                renamed = _rename(record, self._renames)
                for name, value in self._defaults.items():
                    if renamed.get(name) in (None, ""):
                        renamed[name] = value
                given_link = _text(renamed.get("link"))
                unsafe_link = bool(given_link) and safe_link(given_link) is None
                if safe_link(renamed.get("link")) is None and self._link_template:
                    renamed["link"] = build_link(self._link_template, {**record, **renamed}, self._store_url)
                row = self._row(line, renamed)
                if unsafe_link:
                    self.notices.append(
                        RowIssue(
                            line,
                            f"link {given_link[:80]!r} dropped: only absolute http(s) links are kept",
                            row.id,
                        )
                    )
            except RowError as exc:
                pid = record.get("id") or record.get("sku")
                issues.append(RowIssue(line, str(exc), str(pid) if pid not in (None, "") else None))
                continue
            key = row.group or row.id
            rows = groups.setdefault(key, [])
            if row.group is None and rows:
                issues.append(
                    RowIssue(line, f"duplicate id {row.id!r} (first seen on line {rows[0].line})", row.id)
                )
                continue
            if rows and any(r.id == row.id for r in rows):
                first = next(r for r in rows if r.id == row.id)
                issues.append(
                    RowIssue(line, f"duplicate id {row.id!r} (first seen on line {first.line})", row.id)
                )
                continue
            if rows and (rows[0].group is None) != (row.group is None):
                issues.append(
                    RowIssue(line, f"id {key!r} is used both as a product id and as an item_group_id", row.id)
                )
                continue
            rows.append(row)
        drafts = []
        for key, rows in groups.items():
            try:
                drafts.append(self._merge(key, rows))
            except RowError as exc:
                issues.append(RowIssue(rows[0].line, str(exc), key))
        issues.sort(key=lambda i: i.line)
        return drafts, issues

    # ---- one record -----------------------------------------------------------------
    def _row(self, line: int, rec: dict[str, Any]) -> _Row:
        pid = _text(rec.get("id"))
        if not pid:
            raise RowError("missing id")
        title = _text(rec.get("title"))
        if not title:
            raise RowError(f"product {pid!r}: missing title")
        price, currency = _parse_price(rec.get("price"), _text(rec.get("currency")))
        paths = _category_paths(rec.get("product_type"))
        google = _text(rec.get("google_product_category"))
        google_text = google if google and not google.isdigit() else None
        category_path = paths[0] if paths else (_split_path(google_text) if google_text else [])
        attributes = _attributes(rec)
        if len(paths) > 1:
            attributes["other_categories"] = " | ".join(" > ".join(p) for p in paths[1:])
        if google and google.isdigit():
            attributes["google_product_category"] = google
        garment = None
        if rec.get("garment_category") not in (None, ""):
            try:
                garment = GarmentCategory(str(rec["garment_category"]).strip().lower())
            except ValueError:
                raise RowError(
                    f"product {pid!r}: unknown garment_category {rec['garment_category']!r}; "
                    f"use one of {', '.join(c.value for c in GarmentCategory)}"
                ) from None
        variants = [v for v in _list(rec.get("variants")) if isinstance(v, Mapping)]
        row_color = _color(rec.get("color"))
        colors = _unique(
            [
                *(_color(c) for c in _list(rec.get("colors"))),
                row_color,
                *(_color(v.get("color")) for v in variants),
            ]
        )
        sizes = _unique(
            [
                *(_text(s) for s in _list(rec.get("sizes"))),
                _text(rec.get("size")),
                *(_text(v.get("size")) for v in variants),
            ]
        )
        images = _images(line, rec, variants, row_color)
        if not images:
            raise RowError(f"product {pid!r}: no image (image_link is empty)")
        return _Row(
            line=line,
            id=pid,
            group=_text(rec.get("item_group_id")) or None,
            title=title,
            description=_text(rec.get("description")),
            link=safe_link(_text(rec.get("link"))),
            brand=_text(rec.get("brand")) or None,
            price=price,
            currency=currency,
            category_path=category_path,
            google_category=google_text,
            garment_category=garment,
            colors=colors,
            sizes=sizes,
            gender=_gender(rec.get("gender")),
            attributes=attributes,
            images=images,
        )

    # ---- rows -> product -----------------------------------------------------------------
    def _merge(self, key: str, rows: list[_Row]) -> ProductDraft:
        first = rows[0]
        images: list[ImageRef] = []
        seen: dict[str, ImageRef] = {}
        for row in rows:
            for ref in row.images:
                if ref.url in seen:
                    seen[ref.url].is_main |= ref.is_main
                    continue
                seen[ref.url] = ref
                images.append(ref)
        priced = [r for r in rows if r.price is not None]
        cheapest = min(priced, key=lambda r: r.price or 0.0) if priced else None
        attributes: dict[str, str] = {}
        for row in reversed(rows):
            attributes.update(row.attributes)
        if len(rows) > 1:
            attributes["variant_ids"] = ",".join(r.id for r in rows)
        category_path = next((r.category_path for r in rows if r.category_path), [])
        google = next((r.google_category for r in rows if r.google_category), None)
        garment = next((r.garment_category for r in rows if r.garment_category), None)
        if garment is None:
            garment = garment_category_for(category_path, google_category=google, title=first.title)
        try:
            product = Product(
                source=self.source,
                id=key,
                title=first.title,
                description=next((r.description for r in rows if r.description), ""),
                link=next((r.link for r in rows if r.link), None),
                brand=next((r.brand for r in rows if r.brand), None),
                price=cheapest.price if cheapest else None,
                currency=cheapest.currency if cheapest else None,
                category_path=category_path,
                garment_category=garment,
                colors=_unique([c for r in rows for c in r.colors]),
                sizes=_unique([s for r in rows for s in r.sizes]),
                gender=next((r.gender for r in rows if r.gender), None),
                attributes=attributes,
            )
        except ValidationError as exc:
            raise RowError(f"product {key!r}: {exc.errors()[0]['msg']}") from exc
        return ProductDraft(product=product, images=images, lines=[r.line for r in rows])


# ---- field helpers ---------------------------------------------------------------------


def _get_path(record: Mapping[str, Any], path: str) -> Any:
    if path in record:
        return record[path]
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _canonical_name(key: str) -> str:
    """Merchant Center also accepts 'image link' and 'g:image_link' (RSS/XML exports) for 'image_link'."""
    name = key.strip().lower().removeprefix("g:").replace(" ", "_")
    return name if name in CANONICAL_FIELDS else key


def _rename(record: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    """Apply renames at the top level and inside each variant object."""
    if any(_canonical_name(k) != k for k in record):
        record = {
            _canonical_name(k): v
            for k, v in record.items()
            if _canonical_name(k) == k or _canonical_name(k) not in record
        }
    sources = {s.split(".", 1)[0] for s in renames}
    out: dict[str, Any] = {k: v for k, v in record.items() if k not in sources}
    attrs: dict[str, Any] = {}
    for src, dst in renames.items():
        value = _get_path(record, src)
        if value is None or value == "":
            continue
        if dst.startswith("attributes."):
            attrs[dst.removeprefix("attributes.")] = value
        else:
            out[dst] = value
    if attrs:
        base = out.get("attributes")
        out["attributes"] = {**(base if isinstance(base, Mapping) else {}), **attrs}
    if isinstance(out.get("variants"), list):
        out["variants"] = [_rename(v, renames) if isinstance(v, Mapping) else v for v in out["variants"]]
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    # Feeds often carry HTML entities in text ("HeatTec&reg;"): unescape them.
    return html.unescape(" ".join(str(value).split()) if not isinstance(value, str) else value.strip())


def _list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _links(value: Any) -> list[str]:
    """Image links from a list or a comma-separated string (Merchant Center's CSV convention)."""
    out = []
    for item in _list(value):
        if isinstance(item, str):
            out += [u.strip() for u in re.split(r",\s*(?=\S)", item) if u.strip()]
        elif isinstance(item, Mapping) and isinstance(item.get("url"), str):
            out.append(item["url"].strip())
    return out


def _images(
    line: int, rec: Mapping[str, Any], variants: list[Mapping[str, Any]], row_color: str
) -> list[ImageRef]:
    main = _links(rec.get("image_link"))
    listed = _links(rec.get("additional_image_link")) + _links(rec.get("images"))
    variant_color: dict[str, str] = {}
    variant_main: set[str] = set()
    variant_urls: list[str] = []
    for v in variants:
        urls = _links(v.get("image_link")) + _links(v.get("additional_image_link")) + _links(v.get("images"))
        v_color = _color(v.get("color"))
        if urls:
            variant_main.add(urls[0])
        for u in urls:
            if v_color:
                variant_color.setdefault(u, v_color)
            variant_urls.append(u)
    ordered = _unique(main + listed + variant_urls)
    if not ordered:
        return []
    product_main = ordered[0]
    refs = []
    for url in ordered:
        # without variants every image of the row shows the row's colour
        color = variant_color.get(url) or (None if variants else row_color or None)
        refs.append(
            ImageRef(url=url, color=color, is_main=url == product_main or url in variant_main, line=line)
        )
    return refs


def _parse_price(value: Any, currency: str) -> tuple[float | None, str | None]:
    """``(amount, ISO currency)`` of a feed price (``fittingroom.values.parse_price``); an explicit
    ``currency`` field wins over the currency written in the price. Raises RowError."""
    if value is None or value == "":
        return None, currency_code(currency)
    if isinstance(value, bool):
        raise RowError(f"unparsable price {value!r}")
    parsed = parse_price(value)
    if parsed.amount is None:
        if parsed.reason in ("empty", "no amount") or (
            parsed.reason == "negative" and isinstance(value, str)
        ):
            raise RowError(f"unparsable price {value!r}")
        raise RowError(f"invalid price {value!r} ({parsed.reason})")
    return parsed.amount, (currency_code(currency) if currency else parsed.currency)


def _color(value: Any) -> str:
    """A colour name (``fittingroom.values.normalise_color``), '' when there is none."""
    return normalise_color(_text(value)) or ""


def _split_path(text: str) -> list[str]:
    sep = ">" if ">" in text else "/"
    return [p.strip() for p in text.split(sep) if p.strip()]


def _category_paths(value: Any) -> list[list[str]]:
    """Category paths, product categories first and merchandising collections last.

    A list of single-element entries (``['Gear', 'Bags', 'Collections', 'Erin Recommends']``,
    a flattened path) joins consecutive entries into one path until a merchandising root.
    """
    entries = [_split_path(e) for e in (_text(x) for x in _list(value)) if e]
    entries = [e for e in entries if e]
    if not entries:
        return []
    paths: list[list[str]] = []
    i = 0
    while i < len(entries):
        path = list(entries[i])
        i += 1
        if len(path) == 1:
            while (
                i < len(entries)
                and len(entries[i]) == 1
                and entries[i][0].lower() not in MERCHANDISING_ROOTS
                and path[0].lower() not in MERCHANDISING_ROOTS
            ):
                path.append(entries[i][0])
                i += 1
        paths.append(path)
    product = [p for p in paths if p[0].lower() not in MERCHANDISING_ROOTS]
    merch = [p for p in paths if p[0].lower() in MERCHANDISING_ROOTS]
    return product + merch


def _gender(value: Any) -> str | None:
    """Catalog gender from the shared vocabulary (``fittingroom.values.normalise_gender``)."""
    return normalise_gender(_text(value))


def _attributes(rec: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    nested = rec.get("attributes")
    items = list(nested.items()) if isinstance(nested, Mapping) else []
    items += [(k, v) for k, v in rec.items() if k not in CANONICAL_FIELDS]
    for key, value in items:
        if value is None or value == "" or isinstance(value, Mapping):
            continue
        if isinstance(value, list):
            if not value or any(isinstance(v, Mapping | list) for v in value):
                continue
            text = ", ".join(_text(v) for v in value)
        else:
            text = _text(value)
        text = ", ".join(p.strip() for p in text.splitlines() if p.strip())
        if text:
            out[str(key)] = text
    return out
