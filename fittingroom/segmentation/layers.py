"""Parsing-guided click candidates: the clicked garment's group decides which SAM masks fit and trims them.

SAM's masks for a click on a blouse under an open blazer all hold the blazer too, and a click on a
top under long hair takes the hair. The parsing head (``fittingroom.models.parsing``) knows which
group each pixel belongs to, so for a click whose pixel is in a garment group ``g``:

* ``region`` = pixels with ``p(g) >= min_prob`` or whose most likely group is ``g``; the parsing
  candidates are the connected component of ``region`` under the click (``P1``) and the union of
  ``region``'s components of at least ``min_part`` of that one's area (``PG``: both panels of an
  open jacket, both trouser legs);
* every SAM mask ``m`` gives ``m`` itself and ``m`` trimmed to ``region`` (``m & region``, minus
  specks under ``speck`` of its area that do not hold the click): hair, skin and the other layer
  fall away;
* each candidate is scored by the garment rule of ``ranking.GarmentRanker`` (SAM's predicted IoU,
  or the parsing confidence for ``P1`` / ``PG``) plus ``agree * IoU(candidate, PG)``, plus
  ``parsing_bonus`` for ``P1`` / ``PG``; a SAM mask whose share of ``region`` pixels is under
  ``min_share`` is not admissible untrimmed (only its trimmed form competes).

When the click lands on hair, skin or background by the parsing (a parsing miss: a user clicks
garments), SAM's masks are kept, and each is also offered without the hair region
(``p(hair) >= 0.5``), which cuts long hair away.

The constants were chosen on the *tune* photos of the head's split (never on validation); see
``fittingroom/segmentation/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fittingroom.models.parsing import ParsingMap
from fittingroom.models.parsing_groups import GARMENT_GROUPS, Group


@dataclass(frozen=True)
class LayerWeights:
    """Constants of the parsing-guided ranking (module docstring)."""

    min_prob: float = 0.35
    min_part: float = 0.15
    speck: float = 0.05
    agree: float = 0.0
    parsing_bonus: float = 0.0
    min_share: float = 0.0
    hair_prob: float = 0.5


@dataclass
class LayerCandidate:
    """A candidate before scoring: ``kind`` is 'sam', 'trim', 'P1', 'PG' or 'nohair'."""

    mask: np.ndarray  # bool [H, W]
    kind: str
    source: int  # index of the SAM mask it comes from (-1 for parsing candidates)
    agreement: float  # IoU with PG (0 without a garment group)
    share: float = 1.0  # share of the mask inside the clicked group's region (SAM masks)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.count_nonzero(a & b)
    union = np.count_nonzero(a) + np.count_nonzero(b) - inter
    return inter / union if union else 0.0


def click_group(parsing: ParsingMap, points: np.ndarray, labels: np.ndarray) -> Group | None:
    """Group under the first positive point (None without one)."""
    for (x, y), lab in zip(points, labels, strict=True):
        if lab == 1:
            return Group(int(parsing.groups[int(y), int(x)]))
    return None


def drop_specks(mask: np.ndarray, keep: list[tuple[int, int]], speck: float) -> np.ndarray:
    """``mask`` without its connected components under ``speck`` of its area, unless they hold a ``keep`` (row, col)."""
    n, comp, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    area = stats[1:, cv2.CC_STAT_AREA]
    small = area < speck * area.sum()
    for r, c in keep:
        if comp[r, c] > 0:
            small[comp[r, c] - 1] = False
    if not small.any():
        return mask
    lut = np.concatenate([[False], ~small])
    return lut[comp]


def group_parts(region: np.ndarray, click: tuple[int, int], min_part: float) -> tuple[np.ndarray, np.ndarray]:
    """(P1, PG): the component of ``region`` under ``click`` (row, col) and the union of the large components."""
    n, comp, stats, _ = cv2.connectedComponentsWithStats(region.view(np.uint8), connectivity=8)
    at = comp[click]
    if at == 0:
        empty = np.zeros_like(region)
        return empty, empty
    p1 = comp == at
    big = stats[:, cv2.CC_STAT_AREA] >= min_part * stats[at, cv2.CC_STAT_AREA]
    big[0] = False
    return p1, big[comp]


def layer_candidates(
    sam_masks: list[np.ndarray],
    parsing: ParsingMap,
    points: np.ndarray,
    labels: np.ndarray,
    weights: LayerWeights,
) -> tuple[Group | None, list[LayerCandidate]]:
    """The candidates of the module docstring (unscored), and the clicked group."""
    group = click_group(parsing, points, labels)
    keep = [(int(y), int(x)) for (x, y), lab in zip(points, labels, strict=True) if lab == 1]
    out: list[LayerCandidate] = []
    if group is None:
        return None, [LayerCandidate(m, "sam", i, 0.0) for i, m in enumerate(sam_masks)]
    if group not in GARMENT_GROUPS:
        out = [LayerCandidate(m, "sam", i, 0.0) for i, m in enumerate(sam_masks)]
        if group != Group.hair:
            hair = parsing.probability(Group.hair) >= weights.hair_prob
            if hair.any():
                for i, m in enumerate(sam_masks):
                    if np.count_nonzero(m & hair) > 0.02 * max(np.count_nonzero(m), 1):
                        out.append(
                            LayerCandidate(drop_specks(m & ~hair, keep, weights.speck), "nohair", i, 0.0)
                        )
        return group, out
    region = (parsing.probability(group) >= weights.min_prob) | parsing.region(group)
    p1, pg = group_parts(region, keep[0], weights.min_part)
    for i, m in enumerate(sam_masks):
        area = np.count_nonzero(m)
        if area == 0:
            continue
        inside = m & region
        share = np.count_nonzero(inside) / area
        out.append(LayerCandidate(m, "sam", i, _iou(m, pg), share))
        if share < 0.999 and inside.any():
            t = drop_specks(inside, keep, weights.speck)
            out.append(LayerCandidate(t, "trim", i, _iou(t, pg)))
    if p1.any():
        out.append(LayerCandidate(p1, "P1", -1, _iou(p1, pg)))
        if np.count_nonzero(pg) > np.count_nonzero(p1):
            out.append(LayerCandidate(pg, "PG", -1, 1.0))
    return group, out


def parsing_confidence(parsing: ParsingMap, mask: np.ndarray) -> float:
    """Mean parsing confidence inside ``mask`` (0 when empty): the parsing candidates' 'predicted IoU'."""
    return float(parsing.confidence[mask].mean()) if mask.any() else 0.0


def mask_to_low_res(mask: np.ndarray, frame: int, input_size: tuple[int, int], low: int) -> np.ndarray:
    """bool ``[H, W]`` photo mask -> bool ``[low, low]`` in SAM's padded low-res frame (the inverse of upscaling)."""
    nh, nw = input_size
    lh, lw = max(1, round(nh * low / frame)), max(1, round(nw * low / frame))
    small = cv2.resize(mask.view(np.uint8), (lw, lh), interpolation=cv2.INTER_AREA)
    out = np.zeros((low, low), dtype=bool)
    out[:lh, :lw] = small >= 1 if small.dtype != np.uint8 else small > 0
    return out


def candidate_logits(
    mask: np.ndarray, source_logits: np.ndarray | None, frame: int, input_size: tuple[int, int], low: int
) -> np.ndarray:
    """Low-res logits for a trimmed or parsing candidate (its ``mask_input`` when the user corrects it).

    Trimmed: the source SAM logits, capped at -8 outside the trimmed mask; parsing candidates: +8 / -8.
    """
    inside = mask_to_low_res(mask, frame, input_size, low)
    if source_logits is None:
        return np.where(inside, 8.0, -8.0).astype(np.float32)
    return np.where(inside, source_logits, np.minimum(source_logits, -8.0)).astype(np.float32)
