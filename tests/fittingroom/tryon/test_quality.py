"""Quality gate of a render: scores and good | poor with reasons."""

from __future__ import annotations

import numpy as np
from tryon_fakes import landmarks, model_photo

from fittingroom.tryon.person import TryOnCategory, build_person_prep
from fittingroom.tryon.quality import assess


def _prep():  # noqa: ANN202
    rgb, mask = model_photo()
    return build_person_prep(rgb, mask, landmarks(), TryOnCategory.top, "x")


def test_unchanged_render_is_poor_with_reasons():
    prep = _prep()
    q = assess(prep, prep.image.copy())
    assert q.quality == "poor"
    assert q.scores["coverage"] == 0.0 and q.scores["old_garment_leak"] == 1.0
    assert any("covers too little" in r for r in q.reasons) and any("old garment" in r for r in q.reasons)
    assert q.as_dict()["quality"] == "poor"


def test_render_covering_the_region_is_good():
    prep = _prep()
    out = prep.image.copy()
    out[prep.garment_region] = (200, 30, 40)
    q = assess(prep, out)
    assert q.quality == "good", q.reasons
    assert q.scores["coverage"] == 1.0 and q.scores["old_garment_leak"] == 0.0
    assert q.scores["face_change"] == 0.0 and q.scores["pose_confidence"] > 0.9


def test_face_change_and_spill_are_flagged():
    prep = _prep()
    out = prep.image.copy()
    out[prep.garment_region] = (200, 30, 40)
    x0, y0, x1, y1 = prep.face_box
    out[y0:y1, x0:x1] = 0
    out[:, :20] = (0, 255, 0)  # background painted
    q = assess(prep, out)
    assert q.quality == "poor"
    assert any("face" in r for r in q.reasons) and any("spill" in r for r in q.reasons)


def test_pose_confidence_gate():
    rgb, mask = model_photo()
    lm = landmarks()
    lm[[11, 12, 23, 24], 2] = 0.55
    prep = build_person_prep(rgb, mask, lm, TryOnCategory.top, "x")
    out = prep.image.copy()
    out[prep.garment_region] = (200, 30, 40)
    q = assess(prep, out)
    assert any("pose is uncertain" in r for r in q.reasons)
    assert np.isclose(q.scores["pose_confidence"], 0.55, atol=1e-3)
