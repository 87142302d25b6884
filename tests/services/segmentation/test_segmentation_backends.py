"""SAM backends: the torch SamPredictor backend on a tiny random Sam, the ONNX backend on its export."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from segmentation_helpers import tiny_sam

from fittingroom.models.sam.base import (
    preprocess_image,
    preprocess_shape,
    transform_coords,
    upscale_logits,
)
from fittingroom.models.sam.export import export_sam_onnx
from fittingroom.models.sam.onnx_sam import ModelFilesMissing, OnnxSamBackend
from fittingroom.models.sam.torch_sam import TorchSamBackend


@pytest.fixture(scope="module")
def sam():  # type: ignore[no-untyped-def]
    return tiny_sam()


@pytest.fixture(scope="module")
def torch_backend(sam) -> TorchSamBackend:  # type: ignore[no-untyped-def]
    return TorchSamBackend(sam=sam, model_key="torch-tiny")


@pytest.fixture(scope="module")
def onnx_backend(sam, tmp_path_factory) -> OnnxSamBackend:  # type: ignore[no-untyped-def]
    enc, dec = export_sam_onnx(sam, tmp_path_factory.mktemp("tiny-onnx"))
    return OnnxSamBackend(enc, dec, device="cpu")


def image(w: int = 96, h: int = 60, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_preprocessing_matches_segment_anything() -> None:
    from segment_anything.utils.transforms import ResizeLongestSide

    t = ResizeLongestSide(1024)
    assert preprocess_shape(832, 550, 1024) == t.get_preprocess_shape(832, 550, 1024)
    pts = np.array([[277.0, 250.0], [0.0, 831.0]])
    assert np.allclose(transform_coords(pts, (832, 550), (1024, 677)), t.apply_coords(pts, (832, 550)))
    tensor, size = preprocess_image(image(96, 60), 64)
    assert tensor.shape == (1, 3, 64, 64) and tensor.dtype == np.float32 and size == (40, 64)
    assert np.all(tensor[0, :, 40:, :] == 0)  # zero padding below the resized image


def test_upscale_logits_crops_padding_and_restores_size() -> None:
    low = np.full((2, 16, 16), -5.0, dtype=np.float32)
    low[:, :10, :8] = 5.0  # object in the top-left of the padded frame
    up = upscale_logits(low, 64, (40, 64), (60, 96))
    assert up.shape == (2, 60, 96)
    assert up[:, 5, 5].min() > 0 and up[:, 55, 90].max() < 0


def test_torch_backend_embeds_and_predicts_four_candidates(torch_backend) -> None:
    img = image()
    emb = torch_backend.embed(img)
    assert emb.features.shape == (1, 32, 4, 4) and emb.features.dtype == np.float32
    assert emb.original_size == (60, 96) and emb.input_size == (40, 64)
    cands = torch_backend.predict(emb, np.array([[30.0, 20.0]]), np.array([1]))
    assert cands.low_res_logits.shape == (4, 16, 16) and cands.iou_predictions.shape == (4,)
    assert torch_backend.upscale(emb, cands).shape == (4, 60, 96)
    with_box = torch_backend.predict(
        emb, np.array([[30.0, 20.0]]), np.array([1]), box=np.array([10, 5, 60, 50])
    )
    assert not np.allclose(with_box.low_res_logits, cands.low_res_logits)


def test_torch_backend_predict_uses_the_given_embedding_not_predictor_state(torch_backend) -> None:
    a, b = torch_backend.embed(image(seed=1)), torch_backend.embed(image(seed=2))
    pts, labs = np.array([[30.0, 20.0]]), np.array([1])
    pa, pb = torch_backend.predict(a, pts, labs), torch_backend.predict(b, pts, labs)
    assert not np.allclose(pa.low_res_logits, pb.low_res_logits)
    torch_backend.embed(image(seed=3))  # changes the predictor's internal image
    assert np.allclose(torch_backend.predict(a, pts, labs).low_res_logits, pa.low_res_logits)


def test_torch_backend_matches_segment_anything_sampredictor(sam, torch_backend) -> None:
    from segment_anything import SamPredictor

    img = image(seed=4)
    ref = SamPredictor(sam)
    ref.set_image(np.asarray(img))
    masks, iou, low = ref.predict(
        np.array([[30.0, 20.0]]), np.array([1]), multimask_output=True, return_logits=True
    )
    cands = torch_backend.predict(torch_backend.embed(img), np.array([[30.0, 20.0]]), np.array([1]))
    assert np.allclose(cands.low_res_logits[1:], low, atol=1e-4)
    assert np.allclose(cands.iou_predictions[1:], iou, atol=1e-5)


def test_onnx_export_runs_in_the_onnx_backend_like_torch(torch_backend, onnx_backend) -> None:
    assert onnx_backend.image_size == 64
    img = image(seed=5)
    e_t, e_o = torch_backend.embed(img), onnx_backend.embed(img)
    assert e_o.input_size == e_t.input_size
    assert np.allclose(e_o.features, e_t.features, atol=1e-3)
    for pts, labs, box in [
        (np.array([[30.0, 20.0]]), np.array([1]), None),
        (np.array([[30.0, 20.0], [80.0, 50.0]]), np.array([1, 0]), None),
        (np.array([[30.0, 20.0]]), np.array([1]), np.array([10.0, 5.0, 60.0, 50.0])),
    ]:
        c_t, c_o = torch_backend.predict(e_t, pts, labs, box), onnx_backend.predict(e_t, pts, labs, box)
        assert np.allclose(c_o.low_res_logits, c_t.low_res_logits, atol=1e-3)
        assert np.allclose(c_o.iou_predictions, c_t.iou_predictions, atol=1e-4)


def test_onnx_backend_reports_missing_files(tmp_path) -> None:
    with pytest.raises(ModelFilesMissing, match="models fetch"):
        OnnxSamBackend(tmp_path / "encoder.onnx", tmp_path / "decoder.onnx")


def test_torch_backend_reports_missing_checkpoint(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="SEGMENTATION_CHECKPOINT"):
        TorchSamBackend(tmp_path / "sam_vit_b.pth", "vit_b")
