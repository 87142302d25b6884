"""schema.org nodes from JSON-LD, microdata and RDFa (extruct), and OpenGraph pairs.

A node is a dict: ``"@type"`` -> list[str] of short type names, ``"@syntax"`` -> str,
every other key a short property name -> list of values (str or node dicts).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from crawler.extract.document import Document
from crawler.extract.text import as_list, clean_text, short_name

#: schema.org types treated as "a product" besides anything with ``offers``.
PRODUCT_TYPES = frozenset(
    {"Product", "ProductGroup", "ProductModel", "IndividualProduct", "SomeProducts", "Vehicle", "Car"}
)
#: Properties whose nested products are other products, not the page's one.
RELATED_PROPS = frozenset(
    {
        "isRelatedTo",
        "isSimilarTo",
        "isAccessoryOrSparePartFor",
        "isConsumableFor",
        "related_products",
        "relatedProducts",
        "isVariantOf",
        "hasVariant",
        "itemListElement",
        "review",
        "reviews",
        "mentions",
        "offers",
        "isPartOf",
    }
)


def node_types(node: dict[str, Any]) -> list[str]:
    return node.get("@type", [])


def is_product(node: dict[str, Any]) -> bool:
    ts = node_types(node)
    if any(t in PRODUCT_TYPES or t.endswith("Product") for t in ts):
        return True
    # A thing with an offer and a name (Book, Car, Event tickets...) sells something.
    return bool(node.get("offers")) and bool(node.get("name")) and "Offer" not in ts


def first_node(node: dict[str, Any], prop: str) -> dict[str, Any] | None:
    for v in node.get(prop, []):
        if isinstance(v, dict):
            return v
    return None


def first_text(node: dict[str, Any] | None, *props: str) -> str | None:
    """First non-empty text value of the given properties (a node's name/@value counts)."""
    if not node:
        return None
    for prop in props:
        for v in node.get(prop, []):
            t = node_text(v)
            if t:
                return t
    return None


def node_text(v: Any) -> str | None:
    if isinstance(v, dict):
        for k in ("name", "@value", "value", "title"):
            for x in as_list(v.get(k)):
                t = node_text(x)
                if t:
                    return t
        return None
    return clean_text(v)


def _norm_jsonld(obj: Any, syntax: str, ids: dict[str, dict[str, Any]]) -> Any:
    """Normalise one JSON-LD value into node form, registering nodes with an ``@id``."""
    if isinstance(obj, list):
        return [_norm_jsonld(x, syntax, ids) for x in obj]
    if not isinstance(obj, dict):
        return obj
    if "@value" in obj:
        return obj["@value"]
    node: dict[str, Any] = {"@type": [short_name(t) for t in as_list(obj.get("@type"))], "@syntax": syntax}
    for k, v in obj.items():
        if k in ("@type", "@context"):
            continue
        if k == "@id":
            node["@id"] = v
            continue
        node[short_name(k)] = [x for x in as_list(_norm_jsonld(v, syntax, ids)) if x is not None]
    if isinstance(node.get("@id"), str) and len(node) > 3:
        ids.setdefault(node["@id"], node)
    return node


def _resolve_refs(value: Any, ids: dict[str, dict[str, Any]], seen: frozenset[int] = frozenset()) -> Any:
    """Replace ``{"@id": x}`` stubs by the node registered under x (cycle-safe, in place)."""
    if isinstance(value, list):
        return [_resolve_refs(v, ids, seen) for v in value]
    if not isinstance(value, dict):
        return value
    if id(value) in seen:
        return value
    ref = value.get("@id")
    if isinstance(ref, str) and len(value) <= 3 and ref in ids and ids[ref] is not value:
        return _resolve_refs(ids[ref], ids, seen)
    seen = seen | {id(value)}
    for k, v in list(value.items()):
        if not k.startswith("@"):
            value[k] = _resolve_refs(v, ids, seen)
    return value


def _flatten_graph(items: Iterable[Any]) -> Iterator[Any]:
    for it in items:
        if isinstance(it, list):
            yield from _flatten_graph(it)
        elif isinstance(it, dict) and "@graph" in it:
            yield from _flatten_graph(as_list(it["@graph"]))
            rest = {k: v for k, v in it.items() if k not in ("@graph", "@context")}
            if any(not k.startswith("@") for k in rest):
                yield rest
        else:
            yield it


def _norm_microdata(item: Any) -> Any:
    if isinstance(item, list):
        return [_norm_microdata(x) for x in item]
    if not isinstance(item, dict) or "properties" not in item:
        return item
    node: dict[str, Any] = {
        "@type": [short_name(t) for t in as_list(item.get("type"))],
        "@syntax": "microdata",
    }
    if item.get("id"):
        node["@id"] = item["id"]
    for k, v in item["properties"].items():
        node[short_name(k)] = [x for x in as_list(_norm_microdata(v)) if x is not None]
    return node


def _norm_rdfa(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """RDFa (expanded JSON-LD from pyRdfa) -> schema.org nodes; other vocabularies are dropped."""
    raw: dict[str, dict[str, Any]] = {}
    nodes: dict[str, dict[str, Any]] = {}
    for it in items:
        if not isinstance(it, dict) or "@id" not in it:
            continue
        raw[it["@id"]] = it
        types = [short_name(t) for t in as_list(it.get("@type")) if short_name(t) != t]
        nodes[it["@id"]] = {"@type": types, "@syntax": "rdfa", "@id": it["@id"]}
    for iid, it in raw.items():
        node = nodes[iid]
        for k, vals in it.items():
            if k.startswith("@"):
                continue
            prop = short_name(k)
            if prop == k:
                continue  # not schema.org
            out = []
            for v in as_list(vals):
                if isinstance(v, dict) and "@value" in v:
                    out.append(v["@value"])
                elif isinstance(v, dict) and "@id" in v:
                    out.append(nodes.get(v["@id"], v["@id"]))
                else:
                    out.append(v)
            node[prop] = out
    referenced = {
        id(v)
        for n in nodes.values()
        for vals in n.values()
        if isinstance(vals, list)
        for v in vals
        if isinstance(v, dict)
    }
    return [n for n in nodes.values() if id(n) not in referenced and (n["@type"] or len(n) > 3)]


@dataclass
class StructuredData:
    """Everything machine-readable on a page, normalised."""

    nodes: list[dict[str, Any]] = field(default_factory=list)  # top-level schema.org nodes
    og: list[tuple[str, str]] = field(default_factory=list)  # OpenGraph (property, content) pairs
    errors: list[str] = field(default_factory=list)

    def og_first(self, *props: str) -> str | None:
        for p in props:
            for k, v in self.og:
                if k == p and clean_text(v):
                    return clean_text(v)
        return None

    def og_all(self, prop: str) -> list[str]:
        return [v for k, v in self.og if k == prop and clean_text(v)]


def extract_structured(
    doc: Document, syntaxes: tuple[str, ...] = ("json-ld", "microdata", "rdfa")
) -> StructuredData:
    """Run extruct's JSON-LD, microdata, RDFa and OpenGraph extractors on ``doc``.

    A syntax that fails (broken JSON, odd markup) is recorded in ``errors`` and
    skipped; the others still count.
    """
    from extruct.jsonld import JsonLdExtractor
    from extruct.opengraph import OpenGraphExtractor
    from extruct.rdfa import RDFaExtractor
    from extruct.w3cmicrodata import MicrodataExtractor

    out = StructuredData()
    ids: dict[str, dict[str, Any]] = {}
    if "json-ld" in syntaxes:
        try:
            raw = list(JsonLdExtractor().extract_items(doc.tree, base_url=doc.base_url))
        except Exception as exc:  # extruct raises whatever json/jstyleson raise
            out.errors.append(f"json-ld: {exc}")
            raw = _jsonld_lenient(doc)
        nodes = [_norm_jsonld(it, "json-ld", ids) for it in _flatten_graph(raw)]
        out.nodes.extend(n for n in nodes if isinstance(n, dict))
    if "microdata" in syntaxes:
        try:
            raw = list(MicrodataExtractor().extract_items(doc.tree, base_url=doc.base_url))
            out.nodes.extend(n for n in (_norm_microdata(it) for it in raw) if isinstance(n, dict))
        except Exception as exc:
            out.errors.append(f"microdata: {exc}")
    if "rdfa" in syntaxes and doc.xpath("//*[@typeof or @vocab][1]"):
        # pyRdfa is slow; without typeof/vocab there is no typed RDFa node to read.
        try:
            raw = list(RDFaExtractor().extract_items(doc.tree, base_url=doc.base_url))
            out.nodes.extend(_norm_rdfa(raw))
        except Exception as exc:
            out.errors.append(f"rdfa: {exc}")
    try:
        for item in OpenGraphExtractor().extract_items(doc.tree, base_url=doc.base_url):
            out.og.extend((str(k), str(v)) for k, v in item.get("properties", []))
    except Exception as exc:
        out.errors.append(f"opengraph: {exc}")
    if not out.og:
        # OpenGraph tags written with name= instead of property= (common) are still OpenGraph.
        for m in doc.xpath("//meta[starts-with(@name,'og:') or starts-with(@name,'product:')][@content]"):
            out.og.append((m.get("name"), m.get("content")))
    out.nodes = [_resolve_refs(n, ids) for n in out.nodes]
    return out


def _jsonld_lenient(doc: Document) -> list[Any]:
    """Parse JSON-LD scripts one by one so one broken script does not hide the others."""
    items: list[Any] = []
    for script in doc.xpath('//script[@type="application/ld+json"]/text()'):
        text = script.strip().removeprefix("<!--").removesuffix("-->").strip()
        try:
            items.append(json.loads(text, strict=False))
        except ValueError:
            continue
    return items
