"""Retrieval evaluation on real data (``fittingroom eval retrieval``, issue 2 section 8).

Four tasks, all against the Luma catalog (``products.jsonl`` + ``images/``):

1. **Other colour** - every colour variant's main image of a product with 2+ colours is a
   query; every image of that colour variant is left out of the search (inside the index,
   with an id filter); hit = the same product (through its other colours) among the top
   k products. Reports hit rate@1 and @10 over these queries, and precision@10 of the
   query's *leaf category* (the full path of the product's main category, e.g.
   ``Men/Tops/Tees``; ``luma_leaf_name_p10`` compares the last element only, so men's and
   women's tees match).
2. **Street photos** - the box of each pixel-labelled garment of over 3000 pixels in the
   Clothing Co-Parsing photos whose label maps to a garment type (``STREET_LABEL_TYPES``)
   is an image query; precision@10 of products of that garment type
   (``LUMA_LEAF_TYPES``; Luma tanks, bras and gear are of no type), per type and overall.
3. **Text** - ``"<colour> <type>"`` for every colour x type pair present in Luma;
   precision@10 of products of that type offered in that colour. Many pairs have fewer
   than 10 such products, so the headline ``text_p10`` divides by ``min(10, #relevant)``
   (the best achievable precision is 1.0); ``text_p10_raw`` divides by 10.
4. **Text + image** - a colour variant's main image plus the name of *another* colour of
   the same product (e.g. the gray hoodie + ``"orange"``), the query variant's images left
   out as in task 1. Hit = that product in the top 10 *with its best-matching image in the
   asked colour*; ``tti_color_p10`` = precision@10 of products offered in the asked colour
   (capped like the text task; ``tti_color_p10_raw`` divides by 10).

Products and images are matched to the ground truth by product id (= Luma ``sku``) and by
the sha256 of the image bytes, so the evaluation does not depend on how ingest names
sources or stores paths. Metric functions are pure (``hit_at_k``, ``precision_at_k``, ...).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from fittingroom.images import crop_box, load_image, sha256_bytes


class GarmentType(StrEnum):
    """Garment types compared across the street photos and the Luma catalog."""

    tee = "tee"
    hoodie = "hoodie"
    jacket = "jacket"
    pants = "pants"
    shorts = "shorts"


#: Clothing Co-Parsing label -> garment type (labels not listed are not evaluated).
STREET_LABEL_TYPES: dict[str, GarmentType] = {
    "t-shirt": GarmentType.tee,
    "top": GarmentType.tee,
    "blouse": GarmentType.tee,
    "shirt": GarmentType.tee,
    "sweater": GarmentType.hoodie,
    "sweatshirt": GarmentType.hoodie,
    "hoodie": GarmentType.hoodie,
    "jumper": GarmentType.hoodie,
    "jacket": GarmentType.jacket,
    "coat": GarmentType.jacket,
    "blazer": GarmentType.jacket,
    "pants": GarmentType.pants,
    "jeans": GarmentType.pants,
    "leggings": GarmentType.pants,
    "shorts": GarmentType.shorts,
}

#: Luma leaf category name (lower case) -> garment type; tanks, bras and gear map to none.
LUMA_LEAF_TYPES: dict[str, GarmentType] = {
    "tees": GarmentType.tee,
    "hoodies & sweatshirts": GarmentType.hoodie,
    "jackets": GarmentType.jacket,
    "pants": GarmentType.pants,
    "shorts": GarmentType.shorts,
}

#: Category roots that are marketing groupings, not the product taxonomy.
MARKETING_ROOTS = frozenset({"collections", "promotions"})

STREET_MIN_PIXELS = 3000


# ---- pure metrics -------------------------------------------------------------------------
def hit_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> bool:
    """True when any of the first ``k`` ranked ids is relevant."""
    return any(r in relevant for r in ranked[:k])


def precision_at_k(
    ranked: Sequence[str], relevant: Collection[str], k: int, *, capped: bool = False
) -> float:
    """Relevant ids among the first ``k``, divided by ``k`` (missing ranks count as misses).

    ``capped=True`` divides by ``min(k, len(relevant))`` instead, so 1.0 is reachable when
    fewer than ``k`` relevant items exist; NaN when nothing is relevant.
    """
    hits = sum(1 for r in ranked[:k] if r in relevant)
    denom = min(k, len(relevant)) if capped else k
    return hits / denom if denom else math.nan


def mean(values: Iterable[float]) -> float:
    """Mean ignoring NaN; NaN for no values."""
    vals = [v for v in values if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


# ---- ground truth ---------------------------------------------------------------------------
def category_paths(categories: Sequence[str]) -> list[list[str]]:
    """Luma ``categories`` -> category paths.

    Entries with ``/`` are full paths; consecutive single-element entries are a root and
    its child (``['Gear', 'Bags', 'Collections', 'Erin Recommends']`` ->
    ``[['Gear', 'Bags'], ['Collections', 'Erin Recommends']]``); a lone last element is a root.
    """
    paths: list[list[str]] = []
    pending: str | None = None
    for entry in categories:
        if "/" in entry:
            if pending is not None:
                paths.append([pending])
                pending = None
            paths.append([p.strip() for p in entry.split("/") if p.strip()])
        elif pending is None:
            pending = entry.strip()
        else:
            paths.append([pending, entry.strip()])
            pending = None
    if pending is not None:
        paths.append([pending])
    return paths


def main_category(categories: Sequence[str]) -> str | None:
    """The product's taxonomy leaf as a path ('Men/Tops/Tees'): the first, deepest path whose
    root is not a marketing grouping (Collections, Promotions)."""
    paths = [p for p in category_paths(categories) if p and p[0].lower() not in MARKETING_ROOTS]
    if not paths:
        return None
    best = max(paths, key=len)  # max keeps the first of equal depth
    return "/".join(best)


def garment_type_of_category(path: str | None) -> GarmentType | None:
    if not path:
        return None
    return LUMA_LEAF_TYPES.get(path.split("/")[-1].strip().lower())


@dataclass
class LumaProduct:
    sku: str
    name: str
    category: str | None
    garment_type: GarmentType | None
    colors: list[str]
    #: colour -> image paths (relative to the catalog folder), main image first
    variants: dict[str, list[str]]
    images: list[str]

    @property
    def colors_lc(self) -> set[str]:
        return {c.lower() for c in self.colors}


def load_luma(path: str | Path) -> list[LumaProduct]:
    """Read the Luma ``products.jsonl``; raises ValueError naming the line of a bad record."""
    out: list[LumaProduct] = []
    p = Path(path)
    with p.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                variants: dict[str, list[str]] = {}
                for v in rec.get("variants") or []:
                    color = v.get("color")
                    if color and v.get("images"):
                        variants.setdefault(color, list(v["images"]))
                cat = main_category(rec.get("categories") or [])
                out.append(
                    LumaProduct(
                        sku=str(rec["sku"]),
                        name=rec.get("name", ""),
                        category=cat,
                        garment_type=garment_type_of_category(cat),
                        colors=list(rec.get("colors") or []),
                        variants=variants,
                        images=list(rec.get("images") or []),
                    )
                )
            except (KeyError, TypeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{p}:{n}: bad product record ({exc})") from exc
    return out


@dataclass(frozen=True)
class StreetItem:
    photo: Path
    label: str
    garment_type: GarmentType
    box: tuple[int, int, int, int]
    pixels: int


def load_street_items(folder: str | Path, min_pixels: int = STREET_MIN_PIXELS) -> list[StreetItem]:
    """Pixel-labelled garments of over ``min_pixels`` pixels whose label has a garment type."""
    root = Path(folder)
    ann = json.loads((root / "annotations.json").read_text())
    items: list[StreetItem] = []
    for _, rec in sorted(ann["images"].items()):
        if rec.get("annotation") != "pixel-level":
            continue
        for it in rec.get("items", []):
            gtype = STREET_LABEL_TYPES.get(it["label"])
            if gtype is None or int(it.get("pixels", 0)) <= min_pixels:
                continue
            x0, y0, x1, y1 = (int(v) for v in it["bbox_xyxy"])
            items.append(
                StreetItem(root / rec["image"], it["label"], gtype, (x0, y0, x1, y1), int(it["pixels"]))
            )
    return items


def street_query(it: StreetItem) -> Any:
    """The crop eval's query of a street garment: its ground-truth box cropped from the photo
    (clipped to the image), as a ``fittingroom.models.encoders.Query``."""
    from fittingroom.models.encoders.base import Query

    img = load_image(it.photo)
    x0, y0, x1, y1 = it.box
    return Query(image=crop_box(img, (max(0, x0), max(0, y0), min(img.width, x1), min(img.height, y1))))


# ---- running the queries ---------------------------------------------------------------------
@dataclass(frozen=True)
class RankedProduct:
    """One result of the evaluated search: product id (sku) and the matching image's sha256."""

    product_id: str
    image_sha256: str
    score: float


#: ``search(queries, vectors (Q, D) float32 = encode(queries), k, leave_out: per-query sets of
#: image sha256 to leave out of the search)`` -> per query, the ranked products.
SearchFn = Callable[[Sequence[Any], np.ndarray, int, Sequence[Collection[str]]], list[list[RankedProduct]]]
#: ``encode(queries)`` -> (Q, D) float32, queries being fittingroom.models.encoders.Query.
EncodeFn = Callable[[Sequence[Any]], np.ndarray]


@dataclass
class RetrievalReport:
    metrics: dict[str, float]
    counts: dict[str, int]
    per_type: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        def clean(v: float) -> float | None:
            return None if isinstance(v, float) and math.isnan(v) else round(v, 4)

        return {
            **{k: clean(v) for k, v in self.metrics.items()},
            "street_type_p10_by_type": {k: clean(v["p10"]) for k, v in self.per_type.items()},
            "counts": self.counts,
        }


def evaluate_retrieval(
    luma: Sequence[LumaProduct],
    catalog_dir: str | Path,
    street_items: Sequence[StreetItem],
    encode: EncodeFn,
    search: SearchFn,
    *,
    k: int = 10,
    batch_size: int = 32,
    progress: Callable[[str, int], None] | None = None,
) -> RetrievalReport:
    """Run the four tasks (see the module docstring) with ``encode`` + ``search``."""
    from fittingroom.models.encoders.base import Query

    catalog_dir = Path(catalog_dir)
    by_sku = {p.sku: p for p in luma}
    sha_of: dict[str, str] = {}
    for p in luma:
        for rel in p.images + [i for imgs in p.variants.values() for i in imgs]:
            if rel not in sha_of:
                sha_of[rel] = sha256_bytes((catalog_dir / rel).read_bytes())
    # (sku, sha) -> colour of that image
    color_of: dict[tuple[str, str], str] = {}
    for p in luma:
        for color, imgs in p.variants.items():
            for rel in imgs:
                color_of.setdefault((p.sku, sha_of[rel]), color.lower())
    products_in_color: dict[str, set[str]] = defaultdict(set)
    for p in luma:
        for c in p.colors_lc:
            products_in_color[c].add(p.sku)

    def tick(task: str, n: int) -> None:
        if progress:
            progress(task, n)

    def run(
        items: Sequence[Any], make_query: Callable[[Any], Any], leave_out: Sequence[set[str]], task: str
    ) -> list[list[RankedProduct]]:
        """Search every item; queries (decoded images) are built one batch at a time."""
        ranked: list[list[RankedProduct]] = []
        for start in range(0, len(items), batch_size):
            qs = [make_query(it) for it in items[start : start + batch_size]]
            vecs = encode(qs)
            ranked += search(qs, np.asarray(vecs, dtype=np.float32), k, leave_out[start : start + batch_size])
            tick(task, len(qs))
        return ranked

    metrics: dict[str, float] = {}
    counts: dict[str, int] = {}
    notes: list[str] = []

    # 1. other colour + leaf category ------------------------------------------------------
    multi = [p for p in luma if len(p.variants) >= 2]
    q1: list[tuple[LumaProduct, str]] = [(p, c) for p in multi for c in p.variants]
    lo1 = [{sha_of[r] for r in p.variants[c]} for p, c in q1]
    res1 = run(
        q1,
        lambda pc: Query(image=load_image(catalog_dir / pc[0].variants[pc[1]][0])),
        lo1,
        "luma other colour",
    )
    same_cat: dict[str, set[str]] = defaultdict(set)
    same_leaf_name: dict[str, set[str]] = defaultdict(set)
    for p in luma:
        if p.category:
            same_cat[p.category].add(p.sku)
            same_leaf_name[p.category.split("/")[-1]].add(p.sku)
    hits1, hits10, cat_p, leaf_p = [], [], [], []
    for (p, _), ranked in zip(q1, res1, strict=True):
        ids = [r.product_id for r in ranked]
        hits1.append(float(hit_at_k(ids, {p.sku}, 1)))
        hits10.append(float(hit_at_k(ids, {p.sku}, k)))
        if p.category:
            cat_p.append(precision_at_k(ids, same_cat[p.category], k))
            leaf_p.append(precision_at_k(ids, same_leaf_name[p.category.split("/")[-1]], k))
    metrics["luma_other_color_hit@1"] = mean(hits1)
    metrics["luma_other_color_hit@10"] = mean(hits10)
    metrics["luma_leaf_category_p10"] = mean(cat_p)
    metrics["luma_leaf_name_p10"] = mean(leaf_p)
    counts["luma_queries"] = len(q1)
    counts["luma_products_2plus_colors"] = len(multi)

    # 2. street photos -------------------------------------------------------------------------
    of_type: dict[GarmentType, set[str]] = defaultdict(set)
    for p in luma:
        if p.garment_type is not None:
            of_type[p.garment_type].add(p.sku)

    res2 = run(street_items, street_query, [set() for _ in street_items], "street photos")
    per_type_scores: dict[str, list[float]] = defaultdict(list)
    for it, ranked in zip(street_items, res2, strict=True):
        per_type_scores[it.garment_type.value].append(
            precision_at_k([r.product_id for r in ranked], of_type[it.garment_type], k)
        )
    per_type = {
        t.value: {"p10": mean(per_type_scores[t.value]), "n": float(len(per_type_scores[t.value]))}
        for t in GarmentType
    }
    metrics["street_type_p10"] = mean(v for vs in per_type_scores.values() for v in vs)
    metrics["street_type_p10_worst"] = min((v["p10"] for v in per_type.values() if v["n"]), default=math.nan)
    counts["street_queries"] = len(street_items)

    # 3. text "<colour> <type>" ---------------------------------------------------------------
    pairs: dict[tuple[str, GarmentType], set[str]] = defaultdict(set)
    for p in luma:
        if p.garment_type is None:
            continue
        for c in p.colors_lc:
            pairs[(c, p.garment_type)].add(p.sku)
    pair_list = sorted(pairs, key=lambda x: (x[1].value, x[0]))
    res3 = run(pair_list, lambda ct: Query(text=f"{ct[0]} {ct[1].value}"), [set() for _ in pair_list], "text")
    metrics["text_p10"], metrics["text_p10_raw"] = _mean_precisions(res3, [pairs[pr] for pr in pair_list], k)
    counts["text_queries"] = len(pair_list)

    # 4. text + image ------------------------------------------------------------------------------
    q4 = [(p, a, b) for p in multi for a in p.variants for b in p.variants if a != b]
    lo4 = [{sha_of[r] for r in p.variants[a]} for p, a, _ in q4]
    res4 = run(
        q4,
        lambda pab: Query(image=load_image(catalog_dir / pab[0].variants[pab[1]][0]), text=pab[2].lower()),
        lo4,
        "text+image",
    )
    metrics["tti_hit@10"] = mean(
        float(
            any(
                r.product_id == p.sku and color_of.get((p.sku, r.image_sha256)) == b.lower()
                for r in ranked[:k]
            )
        )
        for (p, _, b), ranked in zip(q4, res4, strict=True)
    )
    metrics["tti_color_p10"], metrics["tti_color_p10_raw"] = _mean_precisions(
        res4, [products_in_color[b.lower()] for _, _, b in q4], k
    )
    counts["tti_queries"] = len(q4)
    missing = {r.product_id for rs in res1 for r in rs} - set(by_sku)
    if missing:
        notes.append(f"{len(missing)} result products are not in the evaluated catalog file")
    return RetrievalReport(metrics=metrics, counts=counts, per_type=per_type, notes=notes)


#: Targets of issue 2 (offline encoder): metric -> minimum.
TARGETS: dict[str, float] = {
    "luma_other_color_hit@1": 0.97,
    "luma_leaf_category_p10": 0.8,
    "street_type_p10": 0.7,
    "street_type_p10_worst": 0.4,
    "text_p10": 0.8,
    "tti_hit@10": 0.8,
}


def _mean_precisions(
    results: Sequence[Sequence[RankedProduct]], relevant: Sequence[Collection[str]], k: int
) -> tuple[float, float]:
    """Mean (capped, raw) precision@k of ranked product ids against per-query relevant sets."""
    ids = [[r.product_id for r in ranked] for ranked in results]
    capped = mean(precision_at_k(i, rel, k, capped=True) for i, rel in zip(ids, relevant, strict=True))
    raw = mean(precision_at_k(i, rel, k) for i, rel in zip(ids, relevant, strict=True))
    return capped, raw


def detect_source(store: Any, skus: Collection[str]) -> str:
    """The store source whose product ids overlap ``skus`` most; raises ValueError when none does."""
    overlap: dict[str, int] = defaultdict(int)
    skus = set(skus)
    for source, pid in store.product_keys():
        if pid in skus:
            overlap[source] += 1
    if not overlap:
        raise ValueError("no product of the catalog file is in the store: ingest it first")
    return max(overlap, key=lambda s: overlap[s])


#: ``restrict(query, query_vector, allowed_ids or None) -> allowed_ids or None``: a further id
#: filter per query (``fittingroom.retrieval.image_category.eval_restrictor``).
RestrictFn = Callable[[Any, np.ndarray, "np.ndarray | None"], "np.ndarray | None"]


def searcher_search_fn(
    searcher: Any, source: str | None = None, restrict: RestrictFn | None = None
) -> SearchFn:
    """A ``SearchFn`` over a ``fittingroom.retrieval.search.Searcher``: results restricted to
    ``source`` and leave-out images removed inside the index search (id filter); ``restrict``,
    when given, narrows each query's allowed ids further (the inferred image category)."""
    from fittingroom.catalog.store import ProductFilter

    store = searcher.store
    flt = ProductFilter(source=source)
    base_ids = store.vector_ids_matching(flt) if source is not None else None
    vids_of_sha: dict[str, list[int]] = defaultdict(list)
    for p in store.iter_products(source):
        for img in p.images:
            vids_of_sha[img.sha256].append(img.vector_id)
    all_ids = base_ids if base_ids is not None else np.asarray(searcher.index.ids(), dtype=np.int64)

    def search(
        queries: Sequence[Any], vectors: np.ndarray, k: int, leave_out: Sequence[Collection[str]]
    ) -> list[list[RankedProduct]]:
        out = []
        for q, v, lo in zip(queries, vectors, leave_out, strict=True):
            allowed = base_ids
            if lo:
                drop = np.asarray([vid for sha in lo for vid in vids_of_sha.get(sha, ())], dtype=np.int64)
                allowed = np.setdiff1d(all_ids, drop)
            if restrict is not None:
                allowed = restrict(q, v, allowed)
            page = searcher.search(q, vector=v, k=k, allowed_ids=allowed)
            out.append([RankedProduct(h.product.id, h.image.sha256, h.score) for h in page.hits])
        return out

    return search
