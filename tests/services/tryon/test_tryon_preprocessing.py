"""Garment background removal / key points, person garment region and agnostic mask, the warp."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from fittingroom.tryon.garment import GarmentPreprocessor, remove_background
from fittingroom.tryon.person import (
    TryOnCategory,
    TryOnInputError,
    build_person_prep,
    normalize_category,
)
from fittingroom.tryon.renderers import piecewise_affine_warp


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_background_removal_recovers_the_shape(garment_png):  # noqa: ANN001
    img = Image.open(io.BytesIO(garment_png))
    truth = np.asarray(img)[:, :, 1] < 100  # red garment pixels
    assert _iou(remove_background(img), truth) > 0.95


def test_transparent_png_uses_alpha(garment_png):  # noqa: ANN001
    rgb = np.asarray(Image.open(io.BytesIO(garment_png)).convert("RGB"))
    alpha = np.where(rgb[:, :, 1] < 100, 255, 0).astype(np.uint8)
    rgba = np.dstack([np.zeros_like(rgb), alpha])  # black garment on a black transparent background
    mask = remove_background(Image.fromarray(rgba, "RGBA"))
    assert _iou(mask, alpha > 0) > 0.95


def test_keypoints_are_torso_corners_not_sleeve_tips(garment_png):  # noqa: ANN001
    prep = GarmentPreprocessor().prepare(garment_png)
    kp = prep.keypoints
    assert np.allclose(prep.bbox, (20, 30, 221, 271), atol=2)
    # torso of the drawn T-shirt spans x 65..175; sleeves reach 20..220
    assert 55 <= kp["shoulder_left"][0] <= 75 and 165 <= kp["shoulder_right"][0] <= 185
    assert kp["hem_left"][1] > 250 and abs(kp["collar"][1] - 30) <= 2


def test_plain_image_has_no_garment():
    buf = io.BytesIO()
    Image.new("RGB", (100, 100), (240, 240, 240)).save(buf, format="PNG")
    with pytest.raises(TryOnInputError, match="no garment"):
        GarmentPreprocessor().prepare(buf.getvalue())


def test_unsupported_category():
    assert normalize_category("outerwear") is TryOnCategory.top
    with pytest.raises(TryOnInputError, match="unsupported"):
        normalize_category("footwear")


def test_regions_per_category(person_arrays):  # noqa: ANN001
    rgb, mask, lm = person_arrays
    top = build_person_prep(rgb, mask, lm, TryOnCategory.top, "s")
    bottom = build_person_prep(rgb, mask, lm, TryOnCategory.bottom, "s")
    # top covers the chest, not the knees; bottom the reverse
    assert top.garment_region[150, 128] and not top.garment_region[300, 128]
    assert bottom.garment_region[300, 110] and not bottom.garment_region[130, 128]
    # agnostic mask adds the arms for a top but never the face or the hands
    assert top.agnostic_mask[130, 180] and not top.garment_region[130, 182]
    assert not top.agnostic_mask[52, 128] and not top.agnostic_mask[225, 65]
    x0, y0, x1, y1 = top.face_box
    assert x0 <= 128 < x1 and y0 <= 50 < y1


def test_cropped_person_names_missing_landmarks(person_arrays):  # noqa: ANN001
    rgb, mask, lm = person_arrays
    lm = lm.copy()
    lm[[25, 26], 2] = 0.1
    build_person_prep(rgb, mask, lm, TryOnCategory.top, "s")  # knees are not needed for a top
    with pytest.raises(TryOnInputError, match="left knee, right knee"):
        build_person_prep(rgb, mask, lm, TryOnCategory.one_piece, "s")


def test_piecewise_affine_warp_moves_points_to_targets():
    img = np.zeros((200, 200, 3), np.uint8)
    src = np.array([[50, 40], [150, 40], [40, 160], [160, 160], [100, 100]], np.float32)
    dst = np.array([[80, 60], [170, 70], [60, 190], [190, 200], [120, 130]], np.float32)
    for i, (x, y) in enumerate(src):
        cv2.circle(img, (int(x), int(y)), 3, (40 * (i + 1), 255, 0), -1)
    out = piecewise_affine_warp(img, src, dst, (260, 260))
    for i, (x, y) in enumerate(dst):
        assert out[int(y), int(x), 1] > 200, f"point {i} not at its target"
        assert abs(int(out[int(y), int(x), 0]) - 40 * (i + 1)) < 30


def test_two_people_are_rejected(person_arrays):  # noqa: ANN001
    rgb, mask, lm = person_arrays
    small = cv2.resize(mask.astype(np.uint8), (mask.shape[1] // 2, mask.shape[0] // 2))
    two = np.zeros_like(mask)
    two[: small.shape[0], : small.shape[1]] = small > 0  # two separate silhouettes side by side
    two[: small.shape[0], small.shape[1] : 2 * small.shape[1]] = small > 0
    with pytest.raises(TryOnInputError, match="more than one person"):
        build_person_prep(rgb, two, lm, TryOnCategory.top, "s")


def test_flared_skirt_is_scaled_by_its_waistband(person_arrays):  # noqa: ANN001
    from fittingroom.tryon.garment import GarmentPrep, keypoints_from_mask
    from fittingroom.tryon.renderers import correspondences, hem_limit, waist_rise, waistband, warp_garment

    # an A-line skirt: 60 px waistband flaring to a 200 px hem, 240 px long
    mask = np.zeros((300, 260), np.uint8)
    cv2.fillConvexPoly(mask, np.array([[100, 20], [160, 20], [230, 260], [30, 260]], np.int32), (1,))
    mask = mask.astype(bool)
    wl, wr = waistband(mask)
    assert abs(wl[0] - 100) <= 2 and abs(wr[0] - 160) <= 2 and wl[1] < 30
    bbox, kp = keypoints_from_mask(mask)
    garment = GarmentPrep("g", np.full((300, 260, 3), 200, np.uint8), mask, bbox, kp)
    rgb, pmask, lm = person_arrays
    person = build_person_prep(rgb, pmask, lm, TryOnCategory.bottom, "p")
    src, dst = correspondences(person, garment, TryOnCategory.bottom)
    hip_w = abs(lm[23, 0] - lm[24, 0])
    # the waistband (not the flared middle) lands on the hips, 1.45 x the hip-joint distance wide
    assert np.allclose(src[:2], [wl, wr])
    assert abs(np.linalg.norm(dst[1] - dst[0]) - 1.45 * hip_w) < 1.0
    # the length keeps the garment's length : waistband ratio (about 230 : 64 here), unless that would take
    # the hem below the ankles + 3 % of the body height
    length = np.linalg.norm((dst[4] + dst[5]) / 2 - (dst[0] + dst[1]) / 2)
    own = 1.45 * hip_w * (kp["hem_left"][1] - wl[1]) / (wr[0] - wl[0])
    limit = hem_limit(person)
    top_y = (dst[0, 1] + dst[1, 1]) / 2
    assert abs(length - (own if limit is None else min(own, limit - top_y))) < 3
    _, warped = warp_garment(person, garment, TryOnCategory.bottom)
    top_y = int(lm[23, 1] - waist_rise(lm))
    assert warped[top_y + 3 :].any() and not warped[: top_y - 15].any()  # waistband row is 3 % down
