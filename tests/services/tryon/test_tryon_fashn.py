"""FASHN VTON v1.5 adapter against a fake ``fashn_vton`` module with the upstream call signature."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fittingroom.tryon.garment import GarmentPreprocessor
from fittingroom.tryon.person import TryOnCategory, build_person_prep
from fittingroom.tryon.renderers import BackendUnavailable, FashnBackend
from fittingroom.tryon.settings import TryOnSettings
from services.tryon.app import create_app


def _fake_module(calls: list) -> types.ModuleType:
    mod = types.ModuleType("fashn_vton")

    class TryOnPipeline:
        def __init__(self, weights_dir: str) -> None:
            calls.append(("init", weights_dir))

        def __call__(self, *, person_image, garment_image, category):  # noqa: ANN001, ANN204
            assert isinstance(person_image, Image.Image) and person_image.mode == "RGB"
            assert isinstance(garment_image, Image.Image) and garment_image.mode == "RGB"
            calls.append(("call", category, person_image.size))
            # upstream returns an object with .images (PIL list); here at another resolution
            return types.SimpleNamespace(images=[Image.new("RGB", (64, 96), (0, 255, 0))])

    mod.TryOnPipeline = TryOnPipeline  # type: ignore[attr-defined]
    return mod


def test_missing_package_is_a_clear_startup_error(monkeypatch, tmp_path):  # noqa: ANN001
    monkeypatch.setitem(sys.modules, "fashn_vton", None)  # import raises ImportError
    with pytest.raises(BackendUnavailable, match="fashn-vton-1.5"):
        FashnBackend(tmp_path).load()
    app = create_app(TryOnSettings(backend="fashn", fashn_weights_dir=tmp_path, garment_region="pose"))
    with pytest.raises(BackendUnavailable, match="TRYON_BACKEND=preview"), TestClient(app):
        pass


def test_missing_weights_is_a_clear_error(monkeypatch, tmp_path):  # noqa: ANN001
    monkeypatch.setitem(sys.modules, "fashn_vton", _fake_module([]))
    with pytest.raises(BackendUnavailable, match="model.safetensors"):
        FashnBackend(tmp_path / "nowhere").load()


@pytest.mark.parametrize(
    ("category", "expected"), [("top", "tops"), ("bottom", "bottoms"), ("one_piece", "one-pieces")]
)
def test_render_calls_pipeline(monkeypatch, tmp_path, person_arrays, garment_png, category, expected):  # noqa: ANN001
    calls: list = []
    monkeypatch.setitem(sys.modules, "fashn_vton", _fake_module(calls))
    (tmp_path / "model.safetensors").write_bytes(b"x")
    backend = FashnBackend(tmp_path)
    backend.load()
    rgb, mask, lm = person_arrays
    cat = TryOnCategory(category)
    prep = build_person_prep(rgb, mask, lm, cat, "sha")
    gprep = GarmentPreprocessor().prepare(garment_png)
    out = backend.render(Image.fromarray(rgb), prep, Image.fromarray(gprep.image), gprep, cat)
    assert calls[0] == ("init", str(tmp_path))
    assert calls[1] == ("call", expected, (rgb.shape[1], rgb.shape[0]))
    assert out.size == (rgb.shape[1], rgb.shape[0])  # resized back to the person photo
    assert np.asarray(out)[10, 10].tolist() == [0, 255, 0]
