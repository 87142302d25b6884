"""Retrieval evaluations that match the product (issue 16, step 6).

**End to end** (``evaluate_click_search``): for every street garment the crop eval scores
(``evaluation.load_street_items``: pixel-labelled, over 3000 pixels, label with a garment type),
one positive click at the garment's most interior pixel (``segmentation.garments.interior_point``,
the click of ``fittingroom eval segmentation``) -> the segmentation service's top-ranked mask ->
the request the page sends for a selected mask: the mask's cut-out PNG (``GET
/images/{id}/masks/{mask_id}/cutout``, RGBA cropped to the mask box) uploaded to ``POST
/search/image`` with the colour re-rank on and ``k`` = the page size (``frontend/src/main.ts``
``searchWithMask`` / ``PAGE_SIZE``). The first 10 results are scored exactly like the crop eval:
precision@10 of products of the garment's type (``LUMA_LEAF_TYPES``), per type and overall. A
click that returns no mask scores 0 (the shopper sees no results). The same items are also
searched with their ground-truth box crop the way the crop eval does (``crop_type_p10``), so the
two numbers are paired, and the top mask's IoU with the ground-truth garment is reported.

The page's image search is one function, ``page_image_search``: it does what the
``/search/image`` route does with an upload (decode at the working resolution, dominant colour,
``Searcher.search`` with ``prefer_color``), so whatever ``Searcher.search`` adds applies here.

**Product only** (``write_product_feed`` + ``evaluate_product_only``): the garment-photos split
(default ``validation``) written as a JSONL feed (one product per photo, its class as the
category) for the normal ingest, and the street crops of the crop eval searched against that
catalog; precision@10 of photos whose class has the query's type (``CLASS_TYPES``). Classes with
no type (dress, hat, shoes, skirt) stay in the catalog as distractors, like Luma's tanks and gear.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fittingroom.images import decode_image_sized, flatten_alpha
from fittingroom.retrieval.evaluation import (
    STREET_LABEL_TYPES,
    STREET_MIN_PIXELS,
    GarmentType,
    LumaProduct,
    RankedProduct,
    StreetItem,
    mean,
    precision_at_k,
)
from fittingroom.retrieval.settings import CUTOUT_BACKGROUND
from fittingroom.segmentation.garments import interior_point

#: Results per page of the photo search (``PAGE_SIZE`` of frontend/src/main.ts).
PAGE_K = 24
#: Street type precision@10 end to end from one click (issue 16, step 6).
END_TO_END_TARGET = 0.65

#: garment-photos class -> street garment type (the crop eval's types); absent: no type.
CLASS_TYPES: dict[str, GarmentType] = {
    "t-shirt": GarmentType.tee,
    "shirt": GarmentType.tee,
    "longsleeve": GarmentType.hoodie,  # long-sleeved tops: sweaters, sweatshirts, hoodies
    "outwear": GarmentType.jacket,
    "pants": GarmentType.pants,
    "shorts": GarmentType.shorts,
}
#: garment-photos classes with no street type (kept in the catalog as distractors).
UNTYPED_CLASSES = ("dress", "hat", "shoes", "skirt")
#: Street labels of the crop eval whose garment has no garment-photos class of its own (scored
#: against the nearest class's type): tops and blouses (t-shirt/shirt), knitwear (longsleeve),
#: coats and blazers (outwear), jeans and leggings (pants).
NO_CLASS_STREET_LABELS = ("top", "blouse", "sweater", "sweatshirt", "hoodie", "jumper", "coat", "blazer",
                          "jeans", "leggings")  # fmt: skip


# ---- street items with their ground-truth masks ----------------------------------------------------
@dataclass(frozen=True)
class ClickItem:
    """A crop-eval street garment with the label-map id of its pixels."""

    street: StreetItem
    label_id: int


@dataclass(frozen=True)
class ClickPhoto:
    photo_id: str
    photo: Path
    label_map: Path
    items: tuple[ClickItem, ...]


def load_click_photos(
    folder: str | Path,
    *,
    limit: int | None = None,
    min_pixels: int = STREET_MIN_PIXELS,
    photo_ids: Collection[str] | None = None,
) -> list[ClickPhoto]:
    """The photos of ``evaluation.load_street_items`` (same items, same order) with their label
    maps; ``limit``: the first that many photos (id order); ``photo_ids``: only these photos."""
    root = Path(folder)
    ann = json.loads((root / "annotations.json").read_text())
    out: list[ClickPhoto] = []
    for pid, rec in sorted(ann["images"].items()):
        if rec.get("annotation") != "pixel-level" or not rec.get("label_map"):
            continue
        if photo_ids is not None and pid not in photo_ids:
            continue
        items = []
        for it in rec.get("items", []):
            gtype = STREET_LABEL_TYPES.get(it["label"])
            if gtype is None or int(it.get("pixels", 0)) <= min_pixels:
                continue
            x0, y0, x1, y1 = (int(v) for v in it["bbox_xyxy"])
            street = StreetItem(root / rec["image"], it["label"], gtype, (x0, y0, x1, y1), int(it["pixels"]))
            items.append(ClickItem(street, int(it["label_id"])))
        if items:
            out.append(ClickPhoto(pid, root / rec["image"], root / rec["label_map"], tuple(items)))
            if limit is not None and len(out) >= limit:
                break
    return out


def products_of_type(luma: Iterable[LumaProduct]) -> dict[GarmentType, set[str]]:
    """Garment type -> Luma skus of that type (the crop eval's relevant sets)."""
    of_type: dict[GarmentType, set[str]] = defaultdict(set)
    for p in luma:
        if p.garment_type is not None:
            of_type[p.garment_type].add(p.sku)
    return of_type


# ---- the click and the page's search -----------------------------------------------------------------
@dataclass(frozen=True)
class TopMask:
    """The segmentation's top-ranked mask of a click and the cut-out the page searches with."""

    mask: np.ndarray  # bool [H, W] at the service's working resolution
    cutout_png: bytes  # RGBA PNG cropped to the mask box (GET .../masks/{mask_id}/cutout)


#: ``top_mask(photo, (x, y) click in original pixels)`` -> the top mask, or None (no candidate).
TopMaskFn = Callable[[Path, tuple[int, int]], TopMask | None]
#: ``search(uploaded image bytes)`` -> ranked products (the page's ``POST /search/image``).
ImageSearchFn = Callable[[bytes], list[RankedProduct]]
#: ``search(street item)`` -> ranked products for its ground-truth box crop (the crop eval).
CropSearchFn = Callable[[StreetItem], list[RankedProduct]]


def service_top_mask(service: Any) -> TopMaskFn:
    """A ``TopMaskFn`` over a ``fittingroom.segmentation.service.SegmentationService``: upload the
    photo (cached per photo by the service), one positive click, the first candidate and its cut-out."""

    def top_mask(photo: Path, click: tuple[int, int]) -> TopMask | None:
        entry = service.add_image(photo.read_bytes(), str(photo))
        segs = service.segment(entry.image_id, [click], [1])
        if not segs or not segs[0].mask.any():
            return None
        buf = io.BytesIO()
        service.cutout(entry.image_id, segs[0].mask_id).save(buf, format="PNG")
        return TopMask(segs[0].mask, buf.getvalue())

    return top_mask


def page_image_search(
    searcher: Any,
    *,
    source: str | None = None,
    k: int = PAGE_K,
    use_color: bool = True,
    working_side: int | None = None,
    max_pixels: int | None = None,
    cutout_background: int = CUTOUT_BACKGROUND,
) -> ImageSearchFn:
    """The page's image search as ``POST /search/image`` runs it for an uploaded cut-out: decode
    at the working resolution, the dominant colour of its opaque pixels as ``prefer_color``
    (unless ``use_color`` is false), the transparent pixels filled with the grey
    ``cutout_background`` (``RETRIEVAL_CUTOUT_BACKGROUND``), ``searcher.search`` (a ``fittingroom.retrieval.search.Searcher``)
    for the first page of ``k`` products. ``source`` restricts to one catalog source (the crop
    eval scores Luma only); None searches every source like the page."""
    from fittingroom.catalog.store import ProductFilter
    from fittingroom.models.encoders.base import Query
    from fittingroom.retrieval.garment_color import dominant_color

    flt = ProductFilter(source=source) if source else None

    def search(data: bytes) -> list[RankedProduct]:
        img, _ = decode_image_sized(
            data, max_pixels=max_pixels, name="garment.png", working_side=working_side
        )
        color = dominant_color(img) if use_color else None
        page = searcher.search(
            Query(image=flatten_alpha(img, (cutout_background,) * 3)),
            k=k,
            flt=flt,
            prefer_color=color.family if color is not None else None,
        )
        return [RankedProduct(h.product.id, h.image.sha256, h.score) for h in page.hits]

    return search


def crop_search_fn(encode: Callable[[Sequence[Any]], np.ndarray], search: Any, k: int = 10) -> CropSearchFn:
    """A ``CropSearchFn`` from the crop eval's ``encode`` + ``SearchFn`` (``searcher_search_fn``)."""
    from fittingroom.retrieval.evaluation import street_query

    def crop(item: StreetItem) -> list[RankedProduct]:
        q = street_query(item)
        vec = np.asarray(encode([q]), dtype=np.float32)
        return search([q], vec, k, [set()])[0]

    return crop


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks of one shape; 0.0 when both are empty."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def _at_size(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` resized (nearest) to ``shape`` (H, W) when the service worked at another size."""
    if mask.shape == shape:
        return mask
    img = Image.fromarray(mask.astype(np.uint8) * 255).resize((shape[1], shape[0]), Image.Resampling.NEAREST)
    return np.asarray(img) > 127


# ---- scoring ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemScore:
    photo_id: str
    label: str
    garment_type: str
    p10: float  # end to end (0 when the click gave no mask)
    iou: float  # top mask vs ground truth (0 when no mask)
    crop_p10: float | None = None  # the same garment's ground-truth crop, crop-eval style


@dataclass
class TypeP10Report:
    """Per-item scores of a type-precision@10 evaluation and their summaries."""

    scores: list[ItemScore] = field(default_factory=list)
    photos: int = 0
    notes: list[str] = field(default_factory=list)

    def _by_type(self, values: Callable[[ItemScore], float | None]) -> dict[str, float]:
        out: dict[str, list[float]] = {t.value: [] for t in GarmentType}
        for s in self.scores:
            v = values(s)
            if v is not None:
                out[s.garment_type].append(v)
        return {t: mean(vs) for t, vs in out.items()}

    def summary(self, subset: Collection[str] | None = None) -> dict[str, Any]:
        """JSON-ready metrics (NaN -> None); ``subset``: only the scores of these photo ids."""
        part = TypeP10Report(
            [s for s in self.scores if subset is None or s.photo_id in subset], photos=self.photos
        )
        if subset is not None:
            part.photos = len({s.photo_id for s in part.scores})
        counts = {t.value: 0 for t in GarmentType}
        for s in part.scores:
            counts[s.garment_type] += 1
        by_type = part._by_type(lambda s: s.p10)
        out: dict[str, Any] = {
            "photos": part.photos,
            "garments": len(part.scores),
            "type_p10": _clean(mean(s.p10 for s in part.scores)),
            "type_p10_worst": _clean(min((v for t, v in by_type.items() if counts[t]), default=math.nan)),
            "type_p10_by_type": {t: _clean(v) for t, v in by_type.items()},
            "garments_by_type": counts,
        }
        if any(s.crop_p10 is not None for s in part.scores):
            out["crop_type_p10"] = _clean(mean(s.crop_p10 for s in part.scores if s.crop_p10 is not None))
            out["crop_type_p10_by_type"] = {
                t: _clean(v) for t, v in part._by_type(lambda s: s.crop_p10).items()
            }
        return out


def _clean(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 4)


@dataclass
class ClickSearchReport(TypeP10Report):
    """End-to-end scores; ``validation_photos``: the parsing head's held-out photos, if known."""

    no_mask: int = 0
    validation_photos: frozenset[str] | None = None

    def as_json(self) -> dict[str, Any]:
        """``summary()`` plus the top-mask IoU (overall, per type), the clicks with no mask, the
        target, and the same summary over the parsing head's validation photos (``validation``)."""
        out = self.summary()
        out["top_mask_miou"] = _clean(mean(s.iou for s in self.scores))
        out["top_mask_miou_by_type"] = {t: _clean(v) for t, v in self._by_type(lambda s: s.iou).items()}
        out["no_mask"] = self.no_mask
        out["target_type_p10"] = END_TO_END_TARGET
        if self.validation_photos is not None:
            val = self.summary(self.validation_photos)
            val["top_mask_miou"] = _clean(
                mean(s.iou for s in self.scores if s.photo_id in self.validation_photos)
            )
            out["validation"] = val
        return out


def evaluate_click_search(
    photos: Sequence[ClickPhoto],
    of_type: Mapping[GarmentType, Collection[str]],
    top_mask: TopMaskFn,
    search: ImageSearchFn,
    *,
    crop_search: CropSearchFn | None = None,
    k: int = 10,
    validation_photos: Collection[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ClickSearchReport:
    """One click per garment -> top mask -> the page's image search; type precision@``k`` as the
    crop eval scores it (``of_type``: products relevant to each type). ``crop_search``: also score
    each garment's ground-truth crop (paired baseline). See the module docstring."""
    report = ClickSearchReport(
        photos=len(photos),
        validation_photos=frozenset(validation_photos) if validation_photos is not None else None,
    )
    for ph in photos:
        label_map = np.asarray(Image.open(ph.label_map))
        for it in ph.items:
            gt = label_map == it.label_id
            if not gt.any():
                report.notes.append(f"{ph.photo_id} {it.street.label}: no pixel of label {it.label_id}")
                continue
            relevant = of_type.get(it.street.garment_type, set())
            top = top_mask(ph.photo, interior_point(gt))
            if top is None:
                report.no_mask += 1
                p10, m_iou = 0.0, 0.0
            else:
                ranked = search(top.cutout_png)
                p10 = precision_at_k([r.product_id for r in ranked], relevant, k)
                m_iou = iou(_at_size(top.mask, gt.shape), gt)
            crop = None
            if crop_search is not None:
                crop = precision_at_k([r.product_id for r in crop_search(it.street)], relevant, k)
            report.scores.append(
                ItemScore(ph.photo_id, it.street.label, it.street.garment_type.value, p10, m_iou, crop)
            )
        if progress:
            progress(ph.photo_id)
    return report


# ---- product-only catalog --------------------------------------------------------------------------
def write_product_feed(
    garment_photos: str | Path, out: str | Path, *, split: str = "validation"
) -> dict[str, str]:
    """Write the ``split`` photos of garment-photos (``index.csv``: path, split, label) to ``out``
    as a JSONL feed the ingest reads (``id`` = file stem, ``title``, ``product_type`` = the class,
    ``image_link`` = the photo's absolute path: ingest it with ``image_roots=[garment_photos]``).

    Returns product id -> class. Raises ValueError when the split has no photo or two photos
    share a file stem; FileNotFoundError without ``index.csv``.
    """
    root = Path(garment_photos).resolve()
    classes: dict[str, str] = {}
    rows = []
    with (root / "index.csv").open(newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            if rec["split"] != split:
                continue
            pid = Path(rec["path"]).stem
            if pid in classes:
                raise ValueError(f"{root / 'index.csv'}: two {split} photos named {pid}")
            classes[pid] = rec["label"]
            rows.append(
                {
                    "id": pid,
                    "title": f"{rec['label']} {pid[:8]}",
                    "product_type": rec["label"],
                    "image_link": str(root / rec["path"]),
                }
            )
    if not rows:
        raise ValueError(f"{root / 'index.csv'}: no photo in split {split!r}")
    Path(out).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return classes


def evaluate_product_only(
    items: Sequence[StreetItem],
    classes: Mapping[str, str],
    search: CropSearchFn,
    *,
    k: int = 10,
    progress: Callable[[str], None] | None = None,
) -> TypeP10Report:
    """Street crops against the product-only catalog (``classes``: product id -> class): type
    precision@``k`` with relevant = products whose class has the item's type (``CLASS_TYPES``)."""
    of_type: dict[GarmentType, set[str]] = defaultdict(set)
    for pid, cls in classes.items():
        if cls in CLASS_TYPES:
            of_type[CLASS_TYPES[cls]].add(pid)
    report = TypeP10Report(photos=len({it.photo for it in items}))
    for it in items:
        ids = [r.product_id for r in search(it)]
        p10 = precision_at_k(ids, of_type[it.garment_type], k)
        report.scores.append(ItemScore(it.photo.stem, it.label, it.garment_type.value, p10, math.nan))
        if progress:
            progress(it.photo.stem)
    missing = [t.value for t in GarmentType if not of_type[t]]
    if missing:
        report.notes.append(f"no catalog product of type {', '.join(missing)}")
    return report
