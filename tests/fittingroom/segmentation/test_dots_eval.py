"""Scoring of garment dots against a ground-truth group map (fittingroom/segmentation/dots_eval.py)."""

from __future__ import annotations

import numpy as np

from fittingroom.models.parsing_groups import Group
from fittingroom.segmentation.dots_eval import score_dots
from fittingroom.segmentation.garments import GarmentDot, GarmentRegion


def dot(group: Group, mask: np.ndarray, x: int, y: int) -> GarmentDot:
    return GarmentDot(GarmentRegion(group, mask, (0, 0, 1, 1), 0.9, int(mask.sum()), 1), x, y)


def test_a_dot_counts_when_it_lies_on_its_group_and_recalls_each_garment_once() -> None:
    groups = np.zeros((40, 40), np.uint8)
    groups[0:20] = Group.upper_inner
    groups[20:40, 0:20] = Group.lower
    top, lower = groups == Group.upper_inner, groups == Group.lower
    half_top = top.copy()
    half_top[:, 10:] = False  # IoU 0.25 with the top
    gts = {Group.upper_inner: top, Group.lower: lower}
    rows = score_dots(
        [
            dot(Group.upper_inner, top, 5, 5),  # right: recalls the top at IoU 1
            dot(Group.upper_inner, half_top, 6, 6),  # right group, the top already recalled
            dot(Group.lower, lower, 30, 30),  # on background: a false dot
            dot(Group.footwear, lower, 5, 30),  # on the lower garment but the wrong group
        ],
        groups,
        gts,
    )
    assert rows.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]]
    rows = score_dots([dot(Group.upper_inner, half_top, 5, 5)], groups, gts)
    assert rows.tolist() == [[1, 1, 1, 0]]  # recalled, but its region is under IoU 0.5
