"""Garment dots: interior points, thresholds, and the parsing-map -> image pixel mapping."""

from __future__ import annotations

import numpy as np

from fittingroom.models.parsing_groups import Group
from fittingroom.segmentation.garments import GarmentDot, GarmentRegion, garment_dots, interior_point
from fittingroom.segmentation.service import to_image_pixels


def region(mask: np.ndarray, score: float = 0.9, group: Group = Group.outer) -> GarmentRegion:
    ys, xs = np.nonzero(mask)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return GarmentRegion(group, mask, bbox, score, int(mask.sum()), 1)


def ring() -> np.ndarray:
    """A 'C' shape whose centroid is outside it."""
    m = np.zeros((100, 100), bool)
    m[10:90, 10:30] = m[10:30, 10:90] = m[70:90, 10:90] = True
    return m


def test_interior_point_is_inside_where_the_centroid_is_not() -> None:
    m = ring()
    ys, xs = np.nonzero(m)
    assert not m[int(ys.mean()), int(xs.mean())]  # the centroid misses the garment
    x, y = interior_point(m)
    assert m[y, x]
    assert m[y - 8 : y + 9, x - 8 : x + 9].all()  # deep inside: 8 px from every edge of the 20 px bars


def test_garment_dots_drop_unsure_and_small_regions() -> None:
    big, tiny = ring(), np.zeros((100, 100), bool)
    tiny[0:3, 0:3] = True
    kept = garment_dots([region(big, 0.9), region(big, 0.3, Group.lower), region(tiny, 0.99, Group.bag)])
    assert [d.region.group for d in kept] == [Group.outer]
    assert garment_dots([region(big, 0.3)], min_score=0.2)  # the threshold is a parameter
    # a dress needs more confidence than a jacket (DOT_MIN_SCORE_BY_GROUP)
    kept = garment_dots([region(big, 0.65, Group.one_piece), region(big, 0.65, Group.outer)])
    assert [d.region.group for d in kept] == [Group.outer]


def test_to_image_pixels_scales_a_half_size_map_and_stays_in_the_image() -> None:
    m = ring()
    d = GarmentDot(region(m), 15, 50)
    assert to_image_pixels(d, (100, 100)) is d  # map at image size: unchanged
    big = to_image_pixels(d, (200, 200))
    assert (big.x, big.y) == (31, 101) and big.region.bbox == (20, 20, 180, 180)
    edge = to_image_pixels(GarmentDot(region(m), 99, 99), (150, 150))
    assert edge.x <= 149 and edge.y <= 149
