"""Garment-dot evaluation on the pixel-labelled street photos (``fittingroom eval segmentation --dots``).

Each photo is uploaded to the service as the page does (encoder + parsing head), its garment
regions come from :func:`garment_regions` and its dots from :func:`garment_dots` at a grid of
thresholds (mean score x area share). Ground truth: the label map mapped to garment groups
(``LABEL_GROUPS``); a ground-truth garment is a group's pixels on the photo when they cover at
least ``area_floor`` of it (one garment per group, the granularity of the dots).

* **precision**: dots whose pixel lies in a ground-truth garment of the dot's group;
* **recall**: ground-truth garments that got a dot of their group lying inside them;
* **recall @ IoU 0.5**: ... whose region also has IoU >= 0.5 with the garment (issue 16's target);
* **false dots per photo**: dots outside any ground-truth garment of their group.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fittingroom.models.parsing_groups import GARMENT_GROUPS, label_lut
from fittingroom.segmentation.evaluation import iou, load_annotations
from fittingroom.segmentation.garments import (
    DOT_MIN_AREA,
    DOT_MIN_SCORE,
    DOT_MIN_SCORE_BY_GROUP,
    garment_dots,
    garment_regions,
)
from fittingroom.segmentation.service import SegmentationService

#: Smallest ground-truth garment counted for recall, as a share of the photo's pixels.
AREA_FLOOR = 0.004
#: Threshold grid reported besides the defaults (score, area share).
SCORE_GRID = (0.0, 0.5, 0.6, 0.7, 0.8)
AREA_GRID = (0.002, 0.004, 0.008)


def evaluate_dots(
    service: SegmentationService,
    street_photos: Path,
    *,
    photo_ids: set[str] | None = None,
    limit: int | None = None,
    area_floor: float = AREA_FLOOR,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Dot precision / recall per group and over a threshold grid (module docstring); JSON-ready.

    ``service`` must have a parsing head. ``photo_ids``: only these labelled photos (the head's
    validation split); ``limit``: at most this many photos, in id order.
    """
    if service.parser is None:
        raise ValueError("the dot evaluation needs the parsing head (SEGMENTATION_PARSING)")
    ann = load_annotations(street_photos)
    lut = label_lut(ann["labels"])
    ids = sorted(
        pid
        for pid, rec in ann["images"].items()
        if rec.get("label_map") and (photo_ids is None or pid in photo_ids)
    )[:limit]
    grid: list[tuple[float | None, float]] = [(s, a) for s in SCORE_GRID for a in AREA_GRID]
    default_key = (None, DOT_MIN_AREA)  # the service's thresholds (per group)
    grid.append(default_key)
    counts = {key: np.zeros(4, int) for key in grid}
    records: list[dict[str, Any]] = []  # true dots, dots, recalled, recalled @ IoU 0.5
    per_group: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(5, int))  # + gt garments
    n_gt = 0
    dots_ms: list[float] = []
    for pid in ids:
        if progress:
            progress(pid)
        rec = ann["images"][pid]
        data = (street_photos / rec["image"]).read_bytes()
        entry = service.add_image(data, pid)
        groups = lut[np.asarray(Image.open(street_photos / rec["label_map"]))]
        if entry.parsing is None or groups.shape != entry.parsing.shape:
            continue
        t = time.perf_counter()
        regions = garment_regions(entry.parsing)
        garment_dots(regions)  # timed: what the dots route adds
        dots_ms.append((time.perf_counter() - t) * 1000)
        gts = {}
        for g in GARMENT_GROUPS:
            gt = groups == int(g)
            if gt.sum() >= area_floor * gt.size:
                gts[g] = gt
                per_group[g.name][4] += 1
        n_gt += len(gts)
        for key in grid:
            dots = garment_dots(regions, min_score=key[0], min_area=key[1])
            c = score_dots(dots, groups, gts)
            counts[key] += c.sum(axis=0)
            if key == default_key:
                for d, row in zip(dots, c, strict=True):
                    per_group[d.region.group.name][:4] += row
            if key == (0.0, DOT_MIN_AREA):  # every candidate dot, for per-group calibration
                for d, row in zip(dots, c, strict=True):
                    records.append({"photo": pid, "group": d.region.group.name, "score": d.region.score,
                                    "true": int(row[0]), "recall": int(row[2]), "recall_iou05": int(row[3])})  # fmt: skip
    n = len(dots_ms)

    def rates(c: np.ndarray, gt: int) -> dict[str, Any]:
        return {
            "dots": int(c[1]),
            "precision": round(c[0] / c[1], 3) if c[1] else None,
            "recall": round(c[2] / gt, 3) if gt else None,
            "recall_iou05": round(c[3] / gt, 3) if gt else None,
            "false_dots_per_photo": round((c[1] - c[0]) / n, 3) if n else None,
        }

    return {
        "photos": n,
        "gt_garments": n_gt,
        "area_floor": area_floor,
        "defaults": {
            "min_score": DOT_MIN_SCORE,
            "min_score_by_group": {g.name: v for g, v in DOT_MIN_SCORE_BY_GROUP.items()},
            "min_area": DOT_MIN_AREA,
        },
        **rates(counts[default_key], n_gt),
        "per_group": {g: {"gt": int(c[4]), **rates(c, int(c[4]))} for g, c in sorted(per_group.items())},
        "grid": [
            {"min_score": s, "min_area": a, **rates(counts[(s, a)], n_gt)} for s, a in grid if s is not None
        ],
        "candidate_dots": records,
        "regions_ms_median": round(float(np.median(dots_ms)), 1) if dots_ms else None,
        "head": service.parser.key,
    }


def score_dots(dots: list, groups: np.ndarray, gts: dict) -> np.ndarray:
    """int ``[len(dots), 4]``: per dot (true, 1, recalls a garment, recalls it at IoU >= 0.5).

    ``groups``: uint8 ``[H, W]`` ground-truth group map; ``gts``: group -> bool mask of the
    ground-truth garments above the floor. A garment is recalled by the first true dot of its group.
    """
    out = np.zeros((len(dots), 4), int)
    seen = set()
    for i, d in enumerate(dots):
        g = d.region.group
        true = int(groups[d.y, d.x]) == int(g)
        out[i, :2] = (int(true), 1)
        if true and g in gts and g not in seen:
            seen.add(g)
            out[i, 2] = 1
            out[i, 3] = int(iou(d.region.mask, gts[g]) >= 0.5)
    return out
