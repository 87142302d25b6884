"""onnxruntime models of the offline encoder: equal to torch / sentence-transformers, export cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fittingroom.models.encoders.onnx_models import (
    cached_onnx,
    lite_pixels,
    prepare_lite_image,
    session_options,
    sha256_file,
)

REPO = Path(__file__).resolve().parents[4]


# ---- export cache (no model needed) ---------------------------------------------------------
class CountingExport:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, path: Path) -> None:
        self.calls += 1
        path.write_bytes(b"onnx %d" % self.calls)


def test_cached_onnx_exports_once_and_again_only_when_the_weights_change(tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights v1")
    export = CountingExport()
    first = cached_onnx("m", weights, tmp_path / "cache", export)
    assert first.read_bytes() == b"onnx 1" and export.calls == 1
    assert cached_onnx("m", weights, tmp_path / "cache", export) == first and export.calls == 1
    manifest = json.loads(first.with_suffix(".json").read_text())
    assert manifest["sha256"] == sha256_file(weights) and manifest["size"] == len(b"weights v1")

    # same content, new mtime: the SHA-256 check keeps the export (and refreshes the manifest)
    os.utime(weights, ns=(1, 1))
    assert cached_onnx("m", weights, tmp_path / "cache", export) == first and export.calls == 1
    assert json.loads(first.with_suffix(".json").read_text())["mtime_ns"] == 1

    # other weights of the same size (written later): exported again
    weights.write_bytes(b"weights v2")
    os.utime(weights, ns=(2, 2))
    assert cached_onnx("m", weights, tmp_path / "cache", export).read_bytes() == b"onnx 2"
    assert cached_onnx("m", weights, tmp_path / "cache", export, force=True).read_bytes() == b"onnx 3"


def test_a_failed_export_caches_nothing(tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"w")

    def broken(path: Path) -> None:
        path.write_bytes(b"half")
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError, match="export failed"):
        cached_onnx("m", weights, tmp_path / "cache", broken)
    assert not list((tmp_path / "cache").glob("*.onnx")) and not list((tmp_path / "cache").glob(".*.tmp"))
    assert cached_onnx("m", weights, tmp_path / "cache", CountingExport()).read_bytes() == b"onnx 1"


def test_preprocessing_is_idempotent_and_normalised() -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (90, 160, 3), dtype=np.uint8))
    prepared = prepare_lite_image(img, 224)
    assert prepared.size == (224, 224) and prepared.mode == "RGB"
    assert np.asarray(prepared)[0, 0].tolist() == [255, 255, 255]  # padded on white
    np.testing.assert_array_equal(lite_pixels([prepared], 224), lite_pixels([img], 224))
    px = lite_pixels([Image.new("RGB", (10, 10), (255, 127, 0))], 224)
    assert px.shape == (1, 3, 224, 224) and px.dtype == np.float32
    np.testing.assert_allclose(px[0, :, 5, 5], [1.0, 0.0, -127 / 128])


def test_session_threads_follow_the_argument_or_the_cores() -> None:
    assert session_options(3).intra_op_num_threads == 3
    assert session_options().intra_op_num_threads == len(os.sched_getaffinity(0))


# ---- real models --------------------------------------------------------------------------
@pytest.mark.real_model
@pytest.mark.real_data
def test_onnx_image_features_equal_torch(offline_encoder, shared_data: Path) -> None:  # noqa: ANN001
    from fittingroom.images import load_image
    from fittingroom.models.encoders.offline import EfficientNetLiteFeatures

    assert offline_encoder.backend == "onnx"
    files = sorted((shared_data / "luma-catalog" / "images").rglob("*.jpg"))[:12]
    rng = np.random.default_rng(3)
    rgba = Image.fromarray(rng.integers(0, 255, (70, 50, 4), dtype=np.uint8), "RGBA")
    images = [load_image(f) for f in files] + [rgba, Image.new("RGB", (300, 40), "navy")]
    got = offline_encoder.embed_images(images)
    want = EfficientNetLiteFeatures(device="cpu")(images)
    assert got.shape == (14, 1280) and got.dtype == np.float32
    assert float(np.abs(got - want).max()) < 1e-4


@pytest.mark.real_model
def test_onnx_text_equals_sentence_transformers(offline_encoder) -> None:  # noqa: ANN001
    from sentence_transformers import SentenceTransformer

    texts = [
        "orange hoodie",
        "Orange Hoodies & Sweatshirts: Orange Chaz Kangeroo Hoodie (men)",
        "Men > Tops > Hoodies & Sweatshirts",
        "",
        "long " * 400,  # truncated at max_seq_length = 256 tokens, like sentence-transformers
    ]
    got = offline_encoder.embed_texts(texts)
    st = SentenceTransformer(str(offline_encoder.text_model), device="cpu")
    want = st.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert got.shape == (5, 384) and got.dtype == np.float32
    assert float(np.abs(got - want).max()) < 1e-4


@pytest.mark.real_model
def test_a_text_query_imports_neither_torch_nor_sentence_transformers(offline_encoder) -> None:  # noqa: ANN001
    offline_encoder.text_model_path()  # exported before (needs torch), as on any machine after first use
    code = (
        "import sys\n"
        "from fittingroom.models.encoders import Query, get_encoder\n"
        f"enc = get_encoder('offline', device='cpu', model_dir={str(offline_encoder.model_dir)!r})\n"
        "v = enc.query_vectors([Query(text='red tee')])\n"
        "assert v.shape == (1, enc.dim) and abs(float((v[0, 1280:1664] ** 2).sum()) - 1) < 1e-4\n"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr


@pytest.mark.real_model
def test_a_failed_export_falls_back_to_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fittingroom.models.encoders import offline

    def broken(*args: object, **kw: object) -> Path:
        raise RuntimeError("exporter broken")

    monkeypatch.setattr(offline, "cached_onnx", broken)
    enc = offline.OfflineEncoder(device="cpu", model_dir=tmp_path)
    assert isinstance(enc.image_model, offline.EfficientNetLiteFeatures)
    assert enc.embed_images([Image.new("RGB", (40, 60), "red")]).shape == (1, 1280)
    assert not (tmp_path / "onnx").exists() or not list((tmp_path / "onnx").glob("*.onnx"))
