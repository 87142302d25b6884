"""SAM garment region (fake and real SAM backend), on-disk step cache, TRYON_GARMENT_REGION start-up."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from fittingroom.tryon.person import TryOnCategory, build_person_prep
from fittingroom.tryon.renderers import BackendUnavailable
from fittingroom.tryon.sam_region import sam_garment_region, sam_prompts
from fittingroom.tryon.service import load_region_segmenter

H, W = 384, 256  # the synthetic person of conftest.py


class FakeSam:
    """SamBackend stand-in: fixed full-resolution candidate masks; records the prompts."""

    def __init__(self, masks: list[np.ndarray]) -> None:
        self.masks = masks
        self.embed_calls = 0
        self.prompts: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []

    def embed(self, image: Image.Image) -> object:
        self.embed_calls += 1
        return SimpleNamespace(size=image.size)

    def predict(self, embedding, points, labels, box=None):  # noqa: ANN001, ANN201
        self.prompts.append((points, labels, box))
        return SimpleNamespace(iou_predictions=np.ones(len(self.masks), np.float32))

    def upscale(self, embedding, candidates):  # noqa: ANN001, ANN201
        return np.stack([np.where(m, 5.0, -5.0) for m in self.masks]).astype(np.float32)


def _cropped_top() -> np.ndarray:
    """The garment the synthetic person 'wears': a top ending at y=196, above the hip joints (y=210)."""
    m = np.zeros((H, W), bool)
    m[82:196, 86:171] = True
    return m


def test_prompts_are_on_the_torso_and_exclude_the_face(person_arrays):  # noqa: ANN001
    _, _, lm = person_arrays
    pts, labels = sam_prompts(lm, "top")
    pos, neg = pts[labels == 1], pts[labels == 0]
    assert len(pos) == 2 and len(neg) >= 1
    assert ((pos[:, 1] > 100) & (pos[:, 1] < 210)).all()  # between shoulders and hips
    assert np.allclose(neg[0], lm[0, :2])  # the nose is a negative point
    bpts, blabels = sam_prompts(lm, "bottom")
    assert (bpts[blabels == 1][:, 1] > 210).all()  # thighs, below the hips


def test_sam_candidate_that_agrees_with_the_pose_wins(person_arrays):  # noqa: ANN001
    rgb, mask, lm = person_arrays
    whole = np.ones((H, W), bool)  # SAM's classic failure: the whole picture
    blob = np.zeros((H, W), bool)
    blob[5:15, 5:15] = True
    sam = FakeSam([whole, blob, _cropped_top()])
    prior = build_person_prep(rgb, mask, lm, TryOnCategory.top, "x").garment_region
    got = sam_garment_region(sam, rgb, lm, "top", prior)
    assert got is not None and np.array_equal(got, _cropped_top())
    points, labels, box = sam.prompts[0]
    assert box is not None and box[1] < 100 < box[3]
    # no candidate agrees with the prior -> None (caller keeps the pose polygon)
    assert sam_garment_region(FakeSam([whole, blob]), rgb, lm, "top", prior) is None


def test_sam_region_preserves_the_other_garment(person_arrays):  # noqa: ANN001
    rgb, mask, lm = person_arrays
    pose_only = build_person_prep(rgb, mask, lm, TryOnCategory.top, "x")
    with_sam = build_person_prep(
        rgb, mask, lm, TryOnCategory.top, "x", refine_region=lambda prior: _cropped_top()
    )
    assert pose_only.region_source == "pose" and with_sam.region_source == "sam"
    # the pose polygon reaches below the hip joints (over the trousers); with SAM's mask it stops
    assert pose_only.garment_region[216:].any()
    assert not with_sam.garment_region[216:].any()
    assert not with_sam.agnostic_mask[216:, 95:161].any()
    # above the hips the region still covers the torso
    assert with_sam.garment_region[120:190, 100:150].mean() > 0.95


def test_person_steps_are_cached_on_disk(tmp_path, make_fake_person_pre, person_png):  # noqa: ANN001
    data = person_png
    first = make_fake_person_pre()
    first.cache_dir = tmp_path
    a = first.prepare(data, TryOnCategory.top)
    assert first.model_calls == 1
    assert list(tmp_path.rglob("*-analysis.npz"))
    second = make_fake_person_pre()  # a new process: empty memory cache
    second.cache_dir = tmp_path
    b = second.prepare(data, TryOnCategory.bottom)
    assert second.model_calls == 0
    assert np.array_equal(a.person_mask, b.person_mask)
    assert np.allclose(a.landmarks, b.landmarks)
    # a corrupt cache file is ignored and recomputed
    for f in tmp_path.rglob("*-analysis.npz"):
        f.write_bytes(b"not an npz")
    third = make_fake_person_pre()
    third.cache_dir = tmp_path
    third.prepare(data, TryOnCategory.top)
    assert third.model_calls == 1


def test_sam_region_is_computed_once_per_photo_and_category(tmp_path, make_fake_person_pre, person_png):  # noqa: ANN001
    data = person_png
    sam = FakeSam([_cropped_top()])
    pre = make_fake_person_pre()
    pre.cache_dir, pre.sam_backend = tmp_path, sam
    assert pre.prepare(data, TryOnCategory.top).region_source == "sam"
    pre.clear_cache()
    pre.prepare(data, TryOnCategory.top)
    assert sam.embed_calls == 1 and len(sam.prompts) == 1  # second time from the disk cache


def test_garment_region_mode_start_up(monkeypatch, tmp_path):  # noqa: ANN001
    monkeypatch.setenv("SEGMENTATION_BACKEND", "onnx")
    monkeypatch.setenv("SEGMENTATION_ENCODER_PATH", str(tmp_path / "missing-encoder.onnx"))
    monkeypatch.setenv("SEGMENTATION_DECODER_PATH", str(tmp_path / "missing-decoder.onnx"))
    assert load_region_segmenter("pose") is None
    assert load_region_segmenter("auto") is None  # falls back to the pose polygon
    with pytest.raises(BackendUnavailable, match="TRYON_GARMENT_REGION"):
        load_region_segmenter("sam")


@pytest.mark.real_model
@pytest.mark.real_data
def test_real_sam_region_on_a_real_photo(shared_data):  # noqa: ANN001
    from fittingroom.tryon.person import PersonPreprocessor

    try:
        sam = load_region_segmenter("sam")
    except BackendUnavailable as exc:
        pytest.skip(f"SAM model files not fetched here: {exc}")
    pre = PersonPreprocessor(max_side=512, sam_backend=sam)
    pre.load()
    try:
        data = (shared_data / "tryon-examples/ootdiffusion/model/01008_00.jpg").read_bytes()
        prep = pre.prepare(data, TryOnCategory.top)  # mesh top over a leopard skirt
    finally:
        pre.close()
    assert prep.region_source == "sam"
    lm = prep.landmarks
    hip_y = int((lm[23, 1] + lm[24, 1]) / 2)
    knee_y = int((lm[25, 1] + lm[26, 1]) / 2) if lm[25, 2] > 0.5 else prep.image.shape[0]
    # the skirt between hips and knees stays out of the agnostic mask, the torso is in it
    mid = (hip_y + knee_y) // 2
    x0, x1 = int(min(lm[23, 0], lm[24, 0])), int(max(lm[23, 0], lm[24, 0]))
    assert prep.agnostic_mask[mid, x0:x1].mean() < 0.2
    sy = int((lm[11, 1] + hip_y) / 2)
    assert prep.agnostic_mask[sy, x0:x1].mean() > 0.9
