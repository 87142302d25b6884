"""Trousers: leg parts from a product-only mask whose legs touch, and waist-down on-model catalog shots."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from fittingroom.tryon.onmodel import OnModelExtractor, shoulders_in_frame
from fittingroom.tryon.parts import CROTCH_MAX_SHARE, garment_pose, part_labels
from fittingroom.tryon.person import TryOnCategory

BOTTOM = TryOnCategory.bottom


def touching_trousers(gap_from: int | None = 230) -> np.ndarray:
    """Trousers 320x220: waistband 60..160 at row 20, two 52 px legs side by side down to row 300 that touch
    (no gap at the centre) down to row ``gap_from`` (None: down to the hem)."""
    m = np.zeros((320, 220), np.uint8)
    cv2.rectangle(m, (60, 20), (160, 90), (1,), -1)
    cv2.rectangle(m, (60, 90), (110, 300), (1,), -1)
    cv2.rectangle(m, (110, 90), (160, 300), (1,), -1)
    if gap_from is not None:
        cv2.fillConvexPoly(m, np.array([[110, gap_from], [104, 301], [116, 301]], np.int32), (0,))
    return m.astype(bool)


@pytest.mark.parametrize("gap_from", [230, None])
def test_trousers_whose_legs_touch_are_split_below_30_percent(gap_from):  # noqa: ANN001
    mask = touching_trousers(gap_from)
    pose = garment_pose(mask, None, BOTTOM)
    assert pose is not None and len(pose.limbs) == 2 and all(pose.full)
    lm = pose.landmarks
    assert lm[23, 0] > lm[24, 0] and lm[27, 0] > 110 > lm[28, 0]  # left leg on the image's right
    crotch = pose.torso[2, 1] - 1 - 0.04 * 280  # the torso part overlaps the thighs by 4 % of the length
    assert abs(crotch - (20 + CROTCH_MAX_SHARE * 280)) <= 2  # the waistband-to-crotch part ends at 30 %
    labels = part_labels(mask, pose)
    assert labels[(-1, -1)][60, 110] and not labels[(-1, -1)][200, 85]
    right_leg = labels[(24, 26)] | labels[(26, 28)]
    left_leg = labels[(23, 25)] | labels[(25, 27)]
    assert right_leg[200, 80] and left_leg[200, 140] and not right_leg[200, 140]
    # the thigh parts overlap the torso part a little below the crotch: no crack where the warps meet
    assert (labels[(-1, -1)] & (left_leg | right_leg)).any()


def test_a_flared_skirt_is_not_split():
    skirt = np.zeros((320, 260), np.uint8)
    cv2.fillConvexPoly(skirt, np.array([[100, 20], [160, 20], [250, 300], [10, 300]], np.int32), (1,))
    assert garment_pose(skirt.astype(bool), None, BOTTOM) is None
    # nor a knee-length straight skirt (no notch, shorter than full-length trousers)
    pencil = np.zeros((320, 260), np.uint8)
    cv2.rectangle(pencil, (80, 20), (180, 200), (1,), -1)
    assert garment_pose(pencil.astype(bool), None, BOTTOM) is None


def test_shoulders_in_frame():
    lm = np.zeros((33, 3), np.float32)
    lm[[11, 12]] = [(60, 40, 0.9), (30, 40, 0.9)]
    assert shoulders_in_frame(lm, (200, 100, 3))
    lm[11, 1] = -5  # BlazePose guessed the shoulder above a waist-down photo
    assert not shoulders_in_frame(lm, (200, 100, 3)) and not shoulders_in_frame(None, (200, 100))


@pytest.fixture(scope="module")
def extractor():  # noqa: ANN201
    from fittingroom.tryon.person import PersonPreprocessor

    pre = PersonPreprocessor(max_side=1024)
    pre.load()
    yield OnModelExtractor(pre._analyzer)
    pre.close()


@pytest.mark.real_model
@pytest.mark.real_data
@pytest.mark.parametrize(
    ("image", "full"),
    [
        ("images/m/p/mp01-gray_main.jpg", True),  # Caesar warm-up pant: legs touching, waist-down shot
        ("images/w/p/wp01-gray_main.jpg", True),  # Karmen yoga pant
        ("images/m/s/msh01-blue_main.jpg", False),  # Cobalt fitness short
    ],
)
def test_waist_down_luma_bottoms_get_leg_parts_from_the_mask(shared_data, extractor, image, full):  # noqa: ANN001
    t0 = time.perf_counter()
    g = extractor.prepare((shared_data / "luma-catalog" / image).read_bytes(), BOTTOM)
    assert g.source == "on_model/colour" and g.landmarks is None  # no shoulders: no pose to trust
    pose = garment_pose(g.mask, None, BOTTOM)
    assert pose is not None and len(pose.limbs) == 2 and pose.full == (full, full)
    lm = pose.landmarks
    assert lm[23, 1] < lm[25, 1] < lm[27, 1] and lm[24, 1] < lm[26, 1] < lm[28, 1]  # legs go down
    assert time.perf_counter() - t0 < 10


def test_legs_cropped_above_the_ankles_do_not_count_for_the_ankle_figure():
    from tryon_fakes import POINTS, SKIN, landmarks

    from fittingroom.tryon.evaluation import limb_reach
    from fittingroom.tryon.garment import GarmentPrep, keypoints_from_mask
    from fittingroom.tryon.person import build_person_prep
    from fittingroom.tryon.renderers import compose

    rgb = np.full((384, 256, 3), 250, np.uint8)
    body = np.zeros((384, 256), np.uint8)
    cv2.circle(body, (128, 52), 26, (1,), -1)
    cv2.rectangle(body, (85, 80), (171, 215), 1, -1)
    for a, b in ((11, 13), (13, 15), (12, 14), (14, 16), (23, 25), (25, 27), (24, 26), (26, 28)):
        cv2.line(body, POINTS[a], POINTS[b], (1,), 18)
    rgb[body.astype(bool)] = SKIN
    mask = touching_trousers()
    img = np.full((*mask.shape, 3), 255, np.uint8)
    img[mask] = (40, 60, 120)
    bbox, kp = keypoints_from_mask(mask)
    garment = GarmentPrep("jeans", img, mask, bbox, kp)
    lm = landmarks()
    prep = build_person_prep(rgb, body.astype(bool), lm, BOTTOM, "p")
    assert limb_reach(prep, compose(prep, garment, BOTTOM)) is True
    lm[[27, 28], 1] = 420  # the photo ends at the shins: BlazePose guesses the ankles below it
    prep = build_person_prep(rgb, body.astype(bool), lm, BOTTOM, "p")
    assert limb_reach(prep, compose(prep, garment, BOTTOM)) is None


def test_a_hand_over_waist_down_trousers_becomes_trousers():
    from tryon_fakes import SKIN, TROUSERS

    from fittingroom.tryon.onmodel import bottom_mask_without_pose, fill_hand_occlusions

    rgb = np.full((300, 200, 3), 250, np.uint8)
    rgb[10:100, 60:140] = SKIN  # bare torso
    rgb[100:270, 60:140] = TROUSERS
    rgb[125:137, 128:150] = SKIN  # a hand in the pocket, over the trousers' edge
    rgb[150:175, 85:100] = SKIN  # a hand on the thigh, inside the trousers
    mask, _ = bottom_mask_without_pose(rgb)
    assert not mask[130, 134] and not mask[160, 92]
    fixed_rgb, fixed = fill_hand_occlusions(rgb, mask)
    assert fixed[130, 134] and fixed[160, 92] and not fixed[50, 100]  # hands back in, the torso not
    assert np.abs(fixed_rgb[160, 92].astype(int) - TROUSERS).sum() < 40  # inpainted in the trousers' colour
    assert not fixed[130, 147]  # skin beyond the trousers' outline stays out
