"""Person check: a face where the pose puts the head, one person, a pose that can carry the garment."""

from __future__ import annotations

import numpy as np
import pytest
from tryon_fakes import FakeAnalyzer, FakeFaces, landmarks, model_photo, png

from fittingroom.tryon.person import PersonPreprocessor, TryOnCategory, TryOnInputError, build_person_prep
from fittingroom.tryon.person_check import check_faces, implausible_pose

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


def test_implausible_pose_accepts_a_standing_person():
    for cat in ("top", "bottom", "one_piece"):
        assert implausible_pose(landmarks(), cat) is None


@pytest.mark.parametrize(
    ("change", "categories", "reason"),
    [
        ({23: (154, 210, 0.1), 24: (102, 210, 0.1)}, ("top", "bottom", "one_piece"), "hips are hidden"),
        ({11: (166, 240), 12: (90, 240)}, ("top", "bottom", "one_piece"), "shoulders are not above"),
        ({25: (160, 220), 26: (100, 222)}, ("bottom", "one_piece"), "knees are not below"),  # sitting
        ({27: (150, 160), 28: (106, 150)}, ("bottom", "one_piece"), "ankles are not below"),  # flipped legs
    ],
)
def test_implausible_pose_reasons(change, categories, reason):  # noqa: ANN001
    lm = landmarks()
    for i, v in change.items():
        lm[i, : len(v)] = v
    for cat in ("top", "bottom", "one_piece"):
        got = implausible_pose(lm, cat)
        if cat in categories:
            assert got is not None and reason in got, cat
        else:
            assert got is None, cat  # the leg checks do not apply to tops


def test_sitting_pose_is_a_422_reason_for_a_bottom_not_for_a_top():
    rgb, mask = model_photo()
    lm = landmarks()
    lm[[25, 26], 1] = 225  # knees at the hips' height: sitting
    with pytest.raises(TryOnInputError, match="knees are not below the hips"):
        build_person_prep(rgb, mask, lm, TryOnCategory.bottom, "x")
    with pytest.raises(TryOnInputError, match="knees are not below the hips"):
        build_person_prep(rgb, mask, lm, TryOnCategory.one_piece, "x")
    assert build_person_prep(rgb, mask, lm, TryOnCategory.top, "x").garment_region.any()
