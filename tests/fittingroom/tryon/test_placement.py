"""Placement of product-only skirts, trousers and dresses on the person (``renderers.correspondences``)."""

from __future__ import annotations

import cv2
import numpy as np
from tryon_fakes import POINTS, SKIN, landmarks

from fittingroom.tryon.garment import GarmentPrep, keypoints_from_mask
from fittingroom.tryon.person import TryOnCategory, build_person_prep
from fittingroom.tryon.renderers import correspondences, warp_garment

RED, BLUE = (200, 30, 30), (30, 30, 200)


def _person(category: TryOnCategory, points: dict[int, tuple[int, int]] = POINTS):  # noqa: ANN202
    rgb = np.full((384, 256, 3), 250, np.uint8)
    mask = np.zeros((384, 256), np.uint8)
    cv2.circle(mask, (128, 52), 26, (1,), -1)
    cv2.rectangle(mask, (85, 80), (171, 215), 1, -1)
    for a, b in ((11, 13), (13, 15), (12, 14), (14, 16), (23, 25), (25, 27), (24, 26), (26, 28)):
        cv2.line(mask, points[a], points[b], (1,), 18)
    rgb[mask.astype(bool)] = SKIN
    return build_person_prep(rgb, mask.astype(bool), landmarks(points), category, "p")


def _halves(mask: np.ndarray) -> GarmentPrep:
    """A garment whose image-left half is red and image-right half blue."""
    img = np.full((*mask.shape, 3), 255, np.uint8)
    xs = np.nonzero(mask.any(0))[0]
    cx = (xs.min() + xs.max()) // 2
    left = mask.copy()
    left[:, cx:] = False
    img[left] = RED
    img[mask & ~left] = BLUE
    bbox, kp = keypoints_from_mask(mask)
    return GarmentPrep("halves" + str(int(mask.sum())), img, mask, bbox, kp)


def test_skirt_corners_keep_their_sides():
    # an A-line skirt, red on the image's left, blue on its right
    mask = np.zeros((300, 260), np.uint8)
    cv2.fillConvexPoly(mask, np.array([[100, 20], [160, 20], [250, 260], [60, 260]], np.int32), (1,))
    garment = _halves(mask.astype(bool))
    person = _person(TryOnCategory.bottom)
    src, dst = correspondences(person, garment, TryOnCategory.bottom)
    for i, j in ((0, 1), (2, 3), (4, 5)):  # waistband, waist, hem: (image left, image right)
        assert src[i, 0] < src[j, 0] and dst[i, 0] < dst[j, 0], (i, j)
    rgb, warped = warp_garment(person, garment, TryOnCategory.bottom)
    ys, _ = np.nonzero(warped)
    # colours keep their side: the image-left part of the hem is red, the right part blue
    y = int(np.percentile(ys, 90))
    row = np.nonzero(warped[y])[0]
    left_px, right_px = rgb[y, row.min() + 2].astype(int), rgb[y, row.max() - 2].astype(int)
    assert np.abs(left_px - RED).sum() < 60 and np.abs(right_px - BLUE).sum() < 60
