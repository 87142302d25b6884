"""The old garment goes: skin on the arms from the person's own tone, inpainting elsewhere; shading."""

from __future__ import annotations

import cv2
import numpy as np
from tryon_fakes import POINTS, SKIN, landmarks

from fittingroom.tryon.cleanup import remove_old_garment, shade, skin_zone
from fittingroom.tryon.garment import GarmentPrep, keypoints_from_mask
from fittingroom.tryon.person import TryOnCategory, build_person_prep
from fittingroom.tryon.quality import assess
from fittingroom.tryon.renderers import compose

RED = (200, 40, 40)


def _long_sleeved_person():  # noqa: ANN202
    """Synthetic person in a red long-sleeved shirt (torso and arms), skin face and hands; the shirt mask."""
    rgb = np.full((384, 256, 3), 250, np.uint8)
    mask = np.zeros((384, 256), np.uint8)
    cv2.circle(mask, (128, 52), 26, (1,), -1)
    cv2.rectangle(mask, (85, 80), (171, 375), 1, -1)
    shirt = np.zeros((384, 256), np.uint8)
    shirt[80:216, 85:172] = 1
    for a, b in ((11, 13), (13, 15), (12, 14), (14, 16)):
        cv2.line(mask, POINTS[a], POINTS[b], (1,), 18)
        cv2.line(shirt, POINTS[a], POINTS[b], (1,), 18)
    for i in (15, 16):  # bare hands below the cuffs
        cv2.circle(mask, (POINTS[i][0], POINTS[i][1] + 10), 10, (1,), -1)
    shirt[POINTS[15][1] - 4 :] = 0
    shirt &= mask
    rgb[mask.astype(bool)] = SKIN
    rgb[shirt.astype(bool)] = RED
    rgb[216:376, 85:172] = (30, 30, 30)
    prep = build_person_prep(
        rgb,
        mask.astype(bool),
        landmarks(),
        TryOnCategory.top,
        "p",
        refine_region=lambda prior: shirt.astype(bool),
    )
    return rgb, prep


def _vest() -> GarmentPrep:
    """A narrow sleeveless grey top (product-only)."""
    m = np.zeros((300, 200), bool)
    m[20:280, 50:150] = True
    img = np.full((300, 200, 3), 255, np.uint8)
    img[m] = (150, 150, 150)
    bbox, kp = keypoints_from_mask(m)
    return GarmentPrep("vest", img, m, bbox, kp)


def test_old_sleeves_become_skin_and_the_leak_drops():
    rgb, prep = _long_sleeved_person()
    assert prep.garment_region[160, 186]  # the old sleeve is part of the replaced garment
    kept = compose(prep, _vest(), TryOnCategory.top, remove_old=False)
    gone = compose(prep, _vest(), TryOnCategory.top)
    leak_kept = assess(prep, kept.image).scores["old_garment_leak"]
    leak_gone = assess(prep, gone.image).scores["old_garment_leak"]
    assert leak_gone < leak_kept and leak_gone <= 0.05, (leak_kept, leak_gone)
    # the upper arm (old sleeve) now has the person's own skin tone, not the red shirt
    x, y = (np.array(POINTS[11]) + np.array(POINTS[13])) // 2
    assert np.abs(gone.image[y, x].astype(int) - SKIN).sum() < 45, gone.image[y, x]
    assert gone.replaced[y, x] and not kept.replaced.any()
    x0, y0, x1, y1 = prep.face_box
    assert np.array_equal(gone.image[y0:y1, x0:x1], rgb[y0:y1, x0:x1])  # face unchanged
    assert np.array_equal(gone.image[300:], rgb[300:])  # the trousers are not the replaced category


def test_uncovered_torso_is_inpainted_not_left_red():
    _, prep = _long_sleeved_person()
    covered = np.zeros(prep.garment_region.shape, bool)
    covered[90:200, 110:150] = True  # a narrow new garment in the middle of the torso
    out, replaced = remove_old_garment(prep, covered, TryOnCategory.top)
    side = out[150, 95].astype(int)  # beside the new garment, not an arm: inpainted from the surroundings
    assert replaced[150, 95] and np.abs(side - RED).sum() > 60
    assert not replaced[covered].any()


def test_skin_zone_is_the_arms_and_neck_for_tops_and_the_lower_legs_for_bottoms():
    _, prep = _long_sleeved_person()
    zone = skin_zone(prep, TryOnCategory.top)
    assert zone[POINTS[13][1], POINTS[13][0]] and not zone[150, 128]
    legs = skin_zone(prep, TryOnCategory.bottom)
    assert legs[330, 150] and not legs[150, 128] and not legs[POINTS[13][1], POINTS[13][0]]


def test_shading_is_mild_and_follows_the_light():
    _, prep = _long_sleeved_person()
    dark = prep.image.copy()
    dark[:, :128] = (dark[:, :128] * 0.7).astype(np.uint8)  # the left half in shadow
    prep.image = dark
    flat = np.full(dark.shape, 150, np.uint8)
    out = shade(prep, flat)
    assert out.shape == dark.shape and out.dtype == np.float32
    assert out[150, 100].mean() < out[150, 160].mean()
    assert out.min() >= 150 * 0.85 and out.max() <= 150 * 1.15
