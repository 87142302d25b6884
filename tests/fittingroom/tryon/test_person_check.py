"""Person check: a face where the pose puts the head, one person, a pose that can carry the garment."""

from __future__ import annotations

import numpy as np
import pytest
from tryon_fakes import FakeAnalyzer, FakeFaces, landmarks, model_photo, png

from fittingroom.tryon.person import PersonPreprocessor, TryOnCategory, TryOnInputError, build_person_prep
from fittingroom.tryon.person_check import check_faces

FACE = (108.0, 30.0, 148.0, 75.0, 0.9)  # around the synthetic nose (128, 50)


def test_check_faces_accepts_one_face_on_the_pose_head():
    check_faces([FACE], landmarks(), (256, 384))


@pytest.mark.parametrize(
    ("faces", "reason"),
    [
        ([], "no face visible"),
        ([FACE, (10.0, 10.0, 45.0, 50.0, 0.8)], "more than one person"),
        ([(10.0, 300.0, 40.0, 330.0, 0.9)], "does not match the face"),
    ],
)
def test_check_faces_rejects(faces, reason):  # noqa: ANN001
    with pytest.raises(TryOnInputError, match=reason):
        check_faces(faces, landmarks(), (256, 384))


def test_a_small_background_face_is_not_a_second_person():
    check_faces([FACE, (200.0, 10.0, 210.0, 20.0, 0.9)], landmarks(), (256, 384))


def test_preprocessor_rejects_a_pose_without_a_face():
    """BlazePose finds 'landmarks' on a flat-lay shirt: without a face the photo is no person."""
    data = png(model_photo()[0])
    pp = PersonPreprocessor(analyzer=FakeAnalyzer(), face_detector=FakeFaces([]))
    with pytest.raises(TryOnInputError, match="no person"):
        pp.analyze(data)
    ok = PersonPreprocessor(analyzer=FakeAnalyzer(), face_detector=FakeFaces([FACE]))
    rgb, mask, lm = ok.analyze(data)
    assert rgb.shape == (384, 256, 3) and mask.any() and lm.shape == (33, 3)


def test_sideways_pose_cannot_carry_a_top():
    rgb, mask = model_photo()
    lm = landmarks()
    lm[11, 0], lm[12, 0] = 130, 126  # shoulders overlap: turned sideways
    with pytest.raises(TryOnInputError, match="sideways"):
        build_person_prep(rgb, mask, lm, TryOnCategory.top, "x")
    # a bottom does not need the shoulders
    prep = build_person_prep(rgb, mask, lm, TryOnCategory.bottom, "x")
    assert prep.garment_region[300, 128]


def test_upside_down_pose_rejected():
    rgb, mask = model_photo()
    lm = landmarks()
    lm[[11, 12, 23, 24], 1] = np.array([210, 210, 100, 100], np.float32)
    with pytest.raises(TryOnInputError, match="upside down"):
        build_person_prep(rgb, mask, lm, TryOnCategory.top, "x")
