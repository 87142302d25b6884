"""Real MediaPipe models on real try-on examples (../shared/data/tryon-examples)."""

from __future__ import annotations

import numpy as np
import pytest

from fittingroom.tryon.garment import GarmentPreprocessor
from fittingroom.tryon.person import PersonPreprocessor, TryOnCategory, TryOnInputError
from fittingroom.tryon.renderers import PreviewBackend, warp_garment

PERSON = "ootdiffusion/model/01008_00.jpg"  # VITON-HD test person, front facing, upper body + skirt
GARMENT = "ootdiffusion/garment/00055_00.jpg"  # VITON-HD t-shirt packshot


@pytest.fixture(scope="module")
def person_pre():  # noqa: ANN201
    pre = PersonPreprocessor(max_side=1024)
    pre.load()
    yield pre
    pre.close()


@pytest.mark.real_model
@pytest.mark.real_data
def test_preview_render_on_real_example(shared_data, person_pre):  # noqa: ANN001
    examples = shared_data / "tryon-examples"
    data = (examples / PERSON).read_bytes()
    prep = person_pre.prepare(data, TryOnCategory.top)
    assert prep.image.shape == (1024, 768, 3)
    assert 0.15 < prep.person_mask.mean() < 0.8
    # shoulders above hips, on the person
    lm = prep.landmarks
    assert lm[11, 1] < lm[23, 1] and lm[12, 1] < lm[24, 1]
    assert (
        prep.person_mask[int(lm[11, 1]), int(lm[11, 0])] or prep.person_mask[int(lm[23, 1]), int(lm[23, 0])]
    )
    # garment region mostly inside the silhouette, face box above the shoulders
    assert (prep.garment_region & prep.person_mask).sum() / prep.garment_region.sum() > 0.85
    assert prep.face_box[1] < lm[11, 1]
    assert person_pre.prepare(data, TryOnCategory.top) is prep  # cached by hash

    gprep = GarmentPreprocessor().prepare((examples / GARMENT).read_bytes())
    assert 0.15 < gprep.mask.mean() < 0.8
    out = np.asarray(PreviewBackend().render(None, prep, None, gprep, TryOnCategory.top))  # type: ignore[arg-type]
    assert out.shape == prep.image.shape
    x0, y0, x1, y1 = prep.face_box
    assert np.abs(out[y0:y1, x0:x1].astype(int) - prep.image[y0:y1, x0:x1]).mean() < 1.0
    _, wmask = warp_garment(prep, gprep, TryOnCategory.top)
    iou = (wmask & prep.agnostic_mask).sum() / (wmask | prep.agnostic_mask).sum()
    assert iou > 0.4
    changed = np.abs(out.astype(int) - prep.image).sum(2) > 30
    assert changed[prep.garment_region].mean() > 0.5  # the torso shows the new garment
    assert changed[~prep.agnostic_mask].mean() < 0.01  # background and legs untouched


@pytest.mark.real_model
@pytest.mark.real_data
def test_upper_body_photo_is_cropped_for_a_dress(shared_data, person_pre):  # noqa: ANN001
    path = shared_data / "tryon-examples" / "catvton/condition/person"
    photo = sorted(path.iterdir())[0]
    with pytest.raises(TryOnInputError, match="knee"):
        person_pre.prepare(photo.read_bytes(), TryOnCategory.one_piece)
