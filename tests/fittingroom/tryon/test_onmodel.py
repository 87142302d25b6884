"""Garment cut out of an on-model photo, and the pose-to-pose warp it feeds."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from tryon_fakes import SHIRT, SKIN, TROUSERS, FakeAnalyzer, landmarks, model_photo, png

from fittingroom.tryon.onmodel import (
    OnModelExtractor,
    bottom_mask_without_pose,
    drop_specks,
    rgba_image,
    worn_garment_mask,
)
from fittingroom.tryon.person import TryOnCategory, TryOnInputError, build_person_prep
from fittingroom.tryon.renderers import PreviewBackend, pose_correspondences


def _colour_share(rgb: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> float:
    return float((np.abs(rgb[mask].astype(int) - colour).sum(1) < 10).mean())


def test_worn_top_mask_is_the_shirt_not_face_nor_trousers():
    rgb, person = model_photo()
    mask, source = worn_garment_mask(rgb, person, landmarks(), TryOnCategory.top)
    assert source == "pose"
    shirt = np.all(rgb == SHIRT, axis=2)
    assert (mask & shirt).sum() / shirt.sum() > 0.8
    assert _colour_share(rgb, mask, SHIRT) > 0.7
    assert not mask[52, 128]  # face
    assert not mask[330, 128]  # trousers, well below the hem


def test_worn_bottom_mask_is_the_trousers():
    rgb, person = model_photo()
    mask, _ = worn_garment_mask(rgb, person, landmarks(), TryOnCategory.bottom)
    assert _colour_share(rgb, mask, TROUSERS) > 0.7
    assert not mask[120, 128]


def test_extractor_gives_a_cropped_rgba_garment_with_the_model_pose():
    rgb, _ = model_photo()
    analyzer = FakeAnalyzer()
    ex = OnModelExtractor(analyzer)
    prep = ex.prepare(png(rgb), TryOnCategory.top)
    assert prep.source == "on_model/pose" and prep.landmarks is not None
    assert prep.image.shape[:2] == prep.mask.shape and prep.image.shape[0] < rgb.shape[0]
    # landmarks moved into the crop: the shoulders are on garment pixels
    for i in (11, 12):
        x, y = prep.landmarks[i, :2].astype(int)
        assert prep.mask[y + 4, x - 3 if i == 11 else x + 3]
    rgba = rgba_image(prep)
    assert rgba.mode == "RGBA" and np.asarray(rgba)[:, :, 3].max() == 255
    ex.prepare(png(rgb), TryOnCategory.top)
    assert analyzer.calls == 1  # cached per (sha256, category)


def test_extractor_rejects_a_photo_without_a_model():
    ex = OnModelExtractor(FakeAnalyzer())
    with pytest.raises(TryOnInputError, match="on-model product photo"):
        ex.prepare(png(np.full((100, 80, 3), 200, np.uint8)), TryOnCategory.top)


def test_waist_down_photo_without_pose_gives_the_bottom():
    """Luma trousers are shot waist-down: no face, no shoulders, hence no BlazePose."""
    rgb = np.full((300, 200, 3), 250, np.uint8)
    rgb[10:100, 60:140] = SKIN  # bare torso
    rgb[100:270, 60:140] = TROUSERS
    rgb[270:290, 55:145] = (240, 240, 240)  # (light) shoes
    rgb[270:290, 60:140] = (90, 60, 40)
    mask, source = bottom_mask_without_pose(rgb)
    assert source == "colour"
    trousers = np.all(rgb == TROUSERS, axis=2)
    assert (mask & trousers).sum() / trousers.sum() > 0.9
    assert not mask[50, 100] and not mask[280, 100]


def test_drop_specks():
    m = np.zeros((50, 50), bool)
    m[10:40, 10:40] = True
    m[0, 49] = True
    out = drop_specks(m)
    assert out[20, 20] and not out[0, 49]


def test_pose_to_pose_identity_and_limbs():
    lm = landmarks()
    src, dst = pose_correspondences(lm, lm, TryOnCategory.top)
    assert np.allclose(src, dst) and len(src) == 5 + 4  # torso anchors + elbows and wrists
    hidden = lm.copy()
    hidden[[15, 16], 2] = 0.1
    src, _ = pose_correspondences(lm, hidden, TryOnCategory.top)
    assert len(src) == 5 + 2


def test_on_model_garment_renders_onto_another_person():
    rgb, person = model_photo()
    garment_rgb = rgb.copy()
    garment_rgb[80:215, 85:172] = (200, 30, 40)  # the model wears a red shirt
    prep_g = OnModelExtractor(FakeAnalyzer()).prepare(png(garment_rgb), TryOnCategory.top)
    prep_p = build_person_prep(rgb, person, landmarks(), TryOnCategory.top, "p")
    out = np.asarray(PreviewBackend().render(None, prep_p, None, prep_g, TryOnCategory.top))  # type: ignore[arg-type]
    chest = out[120:180, 110:150].reshape(-1, 3).astype(int)
    assert (np.abs(chest - (200, 30, 40)).sum(1) < 40).mean() > 0.8
    x0, y0, x1, y1 = prep_p.face_box
    assert np.abs(out[y0:y1, x0:x1].astype(int) - rgb[y0:y1, x0:x1]).mean() <= 2.0  # face unchanged
    assert cv2.absdiff(out, rgb)[300:, :].max() == 0  # trousers untouched
