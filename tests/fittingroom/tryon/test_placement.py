"""Placement of product-only skirts, trousers and dresses on the person (``renderers.correspondences``)."""

from __future__ import annotations

import cv2
import numpy as np
from tryon_fakes import POINTS, landmarks, stick_person

from fittingroom.tryon.garment import GarmentPrep, keypoints_from_mask
from fittingroom.tryon.person import TryOnCategory, build_person_prep
from fittingroom.tryon.renderers import (
    HEM_BELOW_ANKLE,
    WAIST_PER_HIP,
    correspondences,
    dress_rows,
    warp_garment,
)

RED, BLUE = (200, 30, 30), (30, 30, 200)


def _person(category: TryOnCategory, points: dict[int, tuple[int, int]] = POINTS):  # noqa: ANN202
    rgb, mask = stick_person(points)
    return build_person_prep(rgb, mask, landmarks(points), category, "p")


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


def halter_dress_mask(length: int = 240) -> np.ndarray:
    """Halter dress 320x260: a 12 px neck strap on top (rows 10..40), bust 40.., waist 80 px wide at
    row ~110, flaring to a 160 px hem ``length`` px below the top."""
    m = np.zeros((40 + length, 260), np.uint8)
    cv2.rectangle(m, (124, 10), (136, 40), (1,), -1)
    bottom = 10 + length
    poly = [[80, 40], [180, 40], [170, 110], [210, bottom], [50, bottom], [90, 110]]
    cv2.fillPoly(m, [np.array(poly, np.int32)], (1,))
    return m.astype(bool)


def _dress(mask: np.ndarray) -> GarmentPrep:
    img = np.full((*mask.shape, 3), 255, np.uint8)
    img[mask] = (180, 40, 90)
    bbox, kp = keypoints_from_mask(mask)
    return GarmentPrep("dress" + str(int(mask.sum())), img, mask, bbox, kp)


def test_dress_takes_the_persons_waist_width_from_the_shoulder_line():
    person = _person(TryOnCategory.one_piece)
    lm = person.landmarks
    garment = _dress(halter_dress_mask())
    y0, sh_y, y1, waist_w = dress_rows(garment.mask)
    assert y0 == 10 and 38 <= sh_y <= 42 and 75 <= waist_w <= 85
    src, dst = correspondences(person, garment, TryOnCategory.one_piece)
    s = WAIST_PER_HIP * abs(lm[23, 0] - lm[24, 0]) / waist_w
    # the garment is scaled by waist width ratio: its shoulder-row width follows
    assert abs((dst[1, 0] - dst[0, 0]) - s * (src[1, 0] - src[0, 0])) < 1.0
    shoulder_y = (lm[11, 1] + lm[12, 1]) / 2
    assert abs(dst[0, 1] - shoulder_y) < 0.1 * abs(lm[11, 0] - lm[12, 0])  # shoulder row on the shoulder line
    assert dst[6, 1] < shoulder_y - 10  # the halter neck stays above it, at the neck
    assert abs(dst[6, 0] - (lm[11, 0] + lm[12, 0]) / 2) < 2  # centred
    _, warped = warp_garment(person, garment, TryOnCategory.one_piece)
    # the dress's narrowest row (its waist) is as wide as the person's waist
    widths = [np.ptp(np.nonzero(r)[0]) + 1 for r in warped[int(dst[0, 1]) + 5 : int(lm[23, 1])] if r.any()]
    person_waist = WAIST_PER_HIP * abs(lm[23, 0] - lm[24, 0])
    assert abs(min(widths) - person_waist) < 0.1 * person_waist


def test_maxi_dress_hem_stops_at_the_ankles():
    person = _person(TryOnCategory.one_piece)
    lm = person.landmarks
    garment = _dress(halter_dress_mask(length=900))
    _, dst = correspondences(person, garment, TryOnCategory.one_piece)
    rows = np.nonzero(person.person_mask.any(1))[0]
    ankle_y = max(lm[27, 1], lm[28, 1])
    limit = ankle_y + HEM_BELOW_ANKLE * (ankle_y - rows[0])
    assert dst[4, 1] <= limit + 1 and dst[4, 1] > ankle_y - 5
    # a short dress keeps its own length
    _, short = correspondences(person, _dress(halter_dress_mask(length=120)), TryOnCategory.one_piece)
    assert short[4, 1] < lm[25, 1]


def test_maxi_skirt_hem_stops_at_the_ankles():
    mask = np.zeros((700, 260), np.uint8)
    cv2.fillConvexPoly(mask, np.array([[100, 20], [160, 20], [230, 690], [30, 690]], np.int32), (1,))
    person = _person(TryOnCategory.bottom)
    lm = person.landmarks
    _, dst = correspondences(person, _halves(mask.astype(bool)), TryOnCategory.bottom)
    rows = np.nonzero(person.person_mask.any(1))[0]
    ankle_y = max(lm[27, 1], lm[28, 1])
    assert ankle_y - 5 < dst[4, 1] <= ankle_y + HEM_BELOW_ANKLE * (ankle_y - rows[0]) + 1
    assert dst[0, 1] < dst[2, 1] < dst[4, 1]  # waistband, waist, hem keep their order
