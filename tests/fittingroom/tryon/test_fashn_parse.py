"""Our parse in FASHN's label space (the own-parser path of the FASHN VTON adapter)."""

from __future__ import annotations

import numpy as np
import pytest
from tryon_fakes import landmarks, model_photo

from fittingroom.tryon.fashn_parse import FASHN_LABELS, OwnParser, garment_label_map, person_label_map
from fittingroom.tryon.person import TryOnCategory, build_person_prep


@pytest.mark.parametrize(
    ("category", "garment", "kept"),
    [
        (TryOnCategory.top, "top", "legs"),
        (TryOnCategory.bottom, "pants", "arms"),
        (TryOnCategory.one_piece, "dress", "feet"),
    ],
)
def test_person_map_labels_our_regions(category, garment, kept):  # noqa: ANN001
    rgb, mask = model_photo()
    prep = build_person_prep(rgb, mask, landmarks(), category, "sha")
    labels = person_label_map(prep, category)
    assert labels.shape == mask.shape and labels.dtype == np.uint8
    assert (labels[~prep.person_mask & ~prep.keep_mask & ~prep.agnostic_mask] == 0).all()
    assert ((labels == FASHN_LABELS[garment]) == (prep.agnostic_mask & ~prep.keep_mask & ~_face(prep))).all()
    assert not np.isin(labels[prep.keep_mask], [FASHN_LABELS[garment], FASHN_LABELS[kept]]).any()
    rest = prep.person_mask & ~prep.agnostic_mask & ~prep.keep_mask & ~_face(prep)
    assert (labels[rest] == FASHN_LABELS[kept]).all()


def _face(prep) -> np.ndarray:  # noqa: ANN001
    x0, y0, x1, y1 = prep.face_box
    box = np.zeros(prep.person_mask.shape, bool)
    box[y0:y1, x0:x1] = True
    return box & (prep.person_mask | prep.keep_mask)


def test_garment_map():
    m = np.zeros((4, 5), bool)
    m[1:3, 1:4] = True
    labels = garment_label_map(m, TryOnCategory.bottom)
    assert (labels[m] == FASHN_LABELS["pants"]).all() and (labels[~m] == 0).all()


def test_own_parser_answers_in_order_at_the_asked_size_and_checks_the_count():
    p = OwnParser()
    a = np.zeros((4, 4), np.uint8)
    a[:, 2:] = 3
    b = np.full((2, 2), 5, np.uint8)
    p.expect(a, b)
    out = p.predict(np.zeros((8, 8, 3), np.uint8))
    assert out.shape == (8, 8) and (out[:, 4:] == 3).all() and (out[:, :4] == 0).all()  # nearest, no blend
    assert (p.predict(np.zeros((2, 2, 3), np.uint8)) == 5).all()
    with pytest.raises(RuntimeError, match="unexpected"):
        p.predict(np.zeros((2, 2, 3), np.uint8))
    p.expect(a, b)
    p.predict(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(RuntimeError, match="fewer"):
        p.done()
