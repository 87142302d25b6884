"""Per-body-part transfer: template poses from a product mask, part labels, sleeves to the wrists."""

from __future__ import annotations

import cv2
import numpy as np
from tryon_fakes import POINTS, landmarks, stick_person

from fittingroom.tryon.evaluation import limb_reach
from fittingroom.tryon.garment import GarmentPrep, keypoints_from_mask
from fittingroom.tryon.parts import covered_reach, garment_pose, part_labels
from fittingroom.tryon.person import TryOnCategory, build_person_prep
from fittingroom.tryon.renderers import compose

GREY = (150, 150, 150)


def _garment(mask: np.ndarray, colour: tuple[int, int, int] = GREY) -> GarmentPrep:
    img = np.full((*mask.shape, 3), 255, np.uint8)
    img[mask] = colour
    bbox, kp = keypoints_from_mask(mask)
    return GarmentPrep("g" + str(int(mask.sum())), img, mask, bbox, kp)


def cardigan_mask(sleeve_len: int = 170) -> np.ndarray:
    """Flat-lay top 300x260: torso 80..180 x 30..230, sleeves hanging down and out from the shoulders."""
    m = np.zeros((300, 260), np.uint8)
    cv2.rectangle(m, (80, 30), (180, 230), (1,), -1)
    for sx, ex in ((80, 40), (180, 220)):
        cv2.line(m, (sx - 8, 40), (ex, 40 + sleeve_len), (1,), 26)
    return m.astype(bool)


def trousers_mask(leg_len: int = 230) -> np.ndarray:
    m = np.zeros((300, 220), np.uint8)
    cv2.rectangle(m, (60, 20), (160, 70), (1,), -1)
    cv2.line(m, (82, 60), (78, 20 + leg_len), (1,), 42)
    cv2.line(m, (138, 60), (142, 20 + leg_len), (1,), 42)
    return m.astype(bool)


def test_template_pose_of_a_long_sleeve_top():
    pose = garment_pose(cardigan_mask(), None, TryOnCategory.top)
    assert pose is not None and len(pose.limbs) == 2 and all(pose.full)
    lm = pose.landmarks
    assert lm[11, 0] > lm[12, 0]  # front view: the wearer's left is the image's right
    assert lm[15, 1] > 180 and lm[15, 0] > 190  # left cuff: low, far out on the image's right
    labels = part_labels(cardigan_mask(), pose)
    assert labels[(-1, -1)][130, 130] and not labels[(-1, -1)][190, 50]
    assert labels[(14, 16)][190, 48] and labels[(13, 15)][190, 212]
    assert pose.keypoints is not None and 75 <= pose.keypoints["shoulder_left"][0] <= 85  # torso, not sleeve
    assert 170 <= pose.keypoints["shoulder_right"][0] <= 185


def test_template_pose_of_a_short_sleeve_top_and_a_sleeveless_one():
    pose = garment_pose(cardigan_mask(sleeve_len=50), None, TryOnCategory.top)
    assert pose is not None and not any(pose.full)
    m = np.zeros((300, 260), bool)
    m[30:230, 80:180] = True
    assert garment_pose(m, None, TryOnCategory.top) is None  # no sleeves: one piece


def test_template_pose_of_trousers_shorts_and_a_skirt():
    pose = garment_pose(trousers_mask(), None, TryOnCategory.bottom)
    assert pose is not None and len(pose.limbs) == 2 and all(pose.full)
    shorts = garment_pose(trousers_mask(leg_len=90), None, TryOnCategory.bottom)
    assert shorts is not None and not any(shorts.full)
    skirt = np.zeros((300, 220), np.uint8)
    cv2.fillConvexPoly(skirt, np.array([[70, 20], [150, 20], [200, 280], [20, 280]], np.int32), (1,))
    assert garment_pose(skirt.astype(bool), None, TryOnCategory.bottom) is None


def _person(points: dict[int, tuple[int, int]]):  # noqa: ANN202
    """Synthetic person (skin arms and legs, red shirt, dark trousers) with the given landmarks."""
    rgb, mask = stick_person(points)
    rgb[80:216, 85:172] = (200, 40, 40)
    return rgb, mask


def test_long_sleeves_reach_the_wrists_of_a_bent_arm():
    pts = dict(POINTS)
    pts[13], pts[15] = (205, 140), (160, 175)  # left arm bent, hand on the belly
    pts[17], pts[19], pts[21] = (155, 182), (152, 180), (158, 178)
    rgb, mask = _person(pts)
    lm = landmarks(pts)
    prep = build_person_prep(rgb, mask, lm, TryOnCategory.top, "p")
    layers = compose(prep, _garment(cardigan_mask()), TryOnCategory.top)
    assert layers.image.shape == rgb.shape and layers.alpha.dtype == np.float32
    assert layers.alpha.min() >= 0.0 and layers.alpha.max() <= 1.0
    assert layers.pose is not None
    painted = layers.alpha >= 0.5
    for chain in ((11, 13, 15), (12, 14, 16)):
        assert covered_reach(painted, lm, chain, 6) >= 0.9, chain
    assert limb_reach(prep, layers) is True
    # the forearm of the bent arm wears the sleeve: half-way from the elbow to the wrist is grey
    x, y = (np.array(pts[13]) + np.array(pts[15])) // 2
    assert np.abs(layers.image[y, x].astype(int) - GREY).sum() < 60
    x0, y0, x1, y1 = prep.face_box
    assert np.array_equal(layers.image[y0:y1, x0:x1], rgb[y0:y1, x0:x1])  # face unchanged


def test_short_sleeves_do_not_count_for_the_wrist_figure():
    rgb, mask = _person(dict(POINTS))
    prep = build_person_prep(rgb, mask, landmarks(), TryOnCategory.top, "p")
    layers = compose(prep, _garment(cardigan_mask(sleeve_len=50)), TryOnCategory.top)
    assert limb_reach(prep, layers) is None
    assert covered_reach(layers.alpha >= 0.5, landmarks(), (11, 13, 15), 6) < 0.7


def test_trouser_legs_reach_the_ankles():
    rgb, mask = _person(dict(POINTS))
    prep = build_person_prep(rgb, mask, landmarks(), TryOnCategory.bottom, "p")
    layers = compose(prep, _garment(trousers_mask(), (40, 60, 120)), TryOnCategory.bottom)
    assert layers.pose is not None and limb_reach(prep, layers) is True
    knee = POINTS[25]
    assert np.abs(layers.image[knee[1], knee[0]].astype(int) - (40, 60, 120)).sum() < 60
