"""Whole-photo garment parsing: per-garment masks with group, box and score.

From a photo's :class:`fittingroom.models.parsing.ParsingMap` (the parsing head's output), each
garment group present (upper inner, outer, lower, one-piece, footwear, bag, headwear) gives one
region: the pixels whose most likely group it is, keeping the connected components of at least
``min_part`` of the group's largest one (both panels of an open jacket and both shoes stay one
garment; stray specks go) and dropping groups under ``min_area`` of the photo. Hair, skin and
background are never returned. The score is the mean parsing probability inside the region.

:func:`garment_dots` keeps the regions confident enough to show as a dot (a point prompt the
shopper can press) and gives each its most interior pixel: the maximum of the distance transform
of the region's largest component, which always lies inside the garment (a centroid may not: an
open jacket's centroid is on the shirt between its panels).

Consumers: the try-on (the person's current garments), search (garment dots, per-garment regions
of on-model catalog photos), ``POST /images/{image_id}/parse``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fittingroom.models.parsing import ParsingMap
from fittingroom.models.parsing_groups import GARMENT_GROUPS, Group

#: Smallest garment returned, as a share of the photo's pixels.
MIN_AREA = 0.002
#: A dot needs at least this mean parsing probability inside its region (calibrated with
#: ``fittingroom eval segmentation --dots`` on the head's validation photos).
DOT_MIN_SCORE = 0.6
#: Per-group minimum scores where a group needs another than ``DOT_MIN_SCORE`` (same calibration).
#: One-piece: at 0.6 two thirds of its dots are false (a top + skirt read as a dress); at 0.7 half
#: as many false dots for the same recall (80 validation photos, see the segmentation README).
DOT_MIN_SCORE_BY_GROUP: dict[Group, float] = {Group.one_piece: 0.7}
#: ... and at least this share of the photo's pixels.
DOT_MIN_AREA = 0.004
#: Components smaller than this share of the group's largest component are dropped.
MIN_PART = 0.1


@dataclass(frozen=True)
class GarmentRegion:
    """One garment of a parsed photo.

    ``mask``: bool ``[H, W]``; ``bbox``: (x0, y0, x1, y1) pixels, x1/y1 exclusive; ``score``: mean
    probability of ``group`` inside the mask (0..1); ``parts``: connected components kept.
    """

    group: Group
    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    score: float
    area: int
    parts: int


def garment_regions(
    parsing: ParsingMap, *, min_area: float = MIN_AREA, min_part: float = MIN_PART
) -> list[GarmentRegion]:
    """The garments of a parsed photo (module docstring), largest first."""
    h, w = parsing.shape
    out: list[GarmentRegion] = []
    for g in GARMENT_GROUPS:
        region = parsing.region(g)
        if np.count_nonzero(region) < min_area * h * w:
            continue
        n, comp, stats, _ = cv2.connectedComponentsWithStats(region.view(np.uint8), connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = np.concatenate([[False], areas >= min_part * areas.max()])
        mask = keep[comp]
        area = int(np.count_nonzero(mask))
        if area < min_area * h * w:
            continue
        ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        bbox = (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)
        score = float(parsing.confidence[mask].astype(np.float32).mean())
        out.append(GarmentRegion(g, mask, bbox, round(score, 4), area, int(keep.sum())))
    out.sort(key=lambda r: -r.area)
    return out


@dataclass(frozen=True)
class GarmentDot:
    """A garment with the point to show its dot at: ``(x, y)`` pixels of the region's mask, x right,
    y down, always a pixel of ``region.mask``."""

    region: GarmentRegion
    x: int
    y: int


def interior_point(mask: np.ndarray) -> tuple[int, int]:
    """(x, y) of the maximum of the distance transform of a non-empty bool ``[H, W]`` mask (the
    image border counts as boundary): the pixel farthest from the mask's edge, always inside it."""
    padded = np.pad(mask.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)


def garment_dots(
    regions: list[GarmentRegion], *, min_score: float | None = None, min_area: float = DOT_MIN_AREA
) -> list[GarmentDot]:
    """The regions worth a dot (score >= ``min_score``, area >= ``min_area`` of the photo), in the
    order given, each with its :func:`interior_point` in the region mask's pixels. ``min_score``
    None: ``DOT_MIN_SCORE_BY_GROUP`` for its groups, ``DOT_MIN_SCORE`` for the others."""
    out = []
    for r in regions:
        h, w = r.mask.shape
        floor = DOT_MIN_SCORE_BY_GROUP.get(r.group, DOT_MIN_SCORE) if min_score is None else min_score
        if r.score < floor or r.area < min_area * h * w:
            continue
        x, y = interior_point(r.mask)
        out.append(GarmentDot(r, x, y))
    return out
