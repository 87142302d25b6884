"""FASHN VTON v1.5 adapter against a fake ``fashn_vton`` module with the upstream call signature."""

from __future__ import annotations

import sys
import types
from dataclasses import replace

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fittingroom.models.registry import ModelShelf
from fittingroom.tryon.garment import GarmentPreprocessor
from fittingroom.tryon.person import TryOnCategory, build_person_prep
from fittingroom.tryon.renderers import BackendUnavailable, FashnBackend, create_backend
from fittingroom.tryon.settings import FashnParser, TryOnSettings
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
    backend = FashnBackend(tmp_path, parser=FashnParser.fashn)  # upstream as shipped: the 3-argument call
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


# --- own parse (TRYON_FASHN_PARSER=own): a tiny randomly initialised model behind upstream's flow --------------
GARMENT_IDS = {"tops": [3, 4, 10], "bottoms": [5, 6, 7], "one-pieces": [3, 4, 10, 5, 6, 7]}  # FASHN labels


def _tiny_model_module(calls: list) -> types.ModuleType:
    """``fashn_vton`` whose pipeline follows upstream's steps (parser built in ``__init__`` by
    ``_setup_hp_model``; person then garment parsed; category labels painted grey 127 unless
    segmentation-free; garment outside its labels grey unless flat-lay) and renders with a tiny randomly
    initialised conv net on (agnostic image, garment image)."""
    torch = pytest.importorskip("torch")
    mod = types.ModuleType("fashn_vton")

    class TryOnPipeline:
        def __init__(self, weights_dir: str) -> None:
            calls.append(("init", weights_dir))
            torch.manual_seed(0)
            self.tryon_model = torch.nn.Conv2d(6, 3, 3, padding=1)  # random weights
            self._setup_hp_model()

        def _setup_hp_model(self) -> None:
            calls.append(("fashn-human-parser loaded",))
            self.hp_model = types.SimpleNamespace(predict=lambda img: np.zeros(img.shape[:2], np.uint8))

        def __call__(  # noqa: ANN204
            self,
            person_image,
            garment_image,
            category,
            garment_photo_type="model",
            segmentation_free=True,  # noqa: ANN001
        ):
            p, g = np.array(person_image), np.array(garment_image)
            person_seg = self.hp_model.predict(p)
            garment_seg = self.hp_model.predict(g)
            ca = p.copy()
            if not segmentation_free:
                ca[np.isin(person_seg, GARMENT_IDS[category])] = 127
            gi = g.copy()
            if garment_photo_type != "flat-lay":
                gi[~np.isin(garment_seg, GARMENT_IDS[category])] = 127
            calls.append(("call", category, garment_photo_type, segmentation_free, ca, gi))
            gi = cv2.resize(gi, (p.shape[1], p.shape[0]))
            x = torch.from_numpy(np.concatenate([ca, gi], 2)).permute(2, 0, 1)[None].float() / 127.5 - 1
            with torch.no_grad():
                y = torch.tanh(self.tryon_model(x))[0].permute(1, 2, 0).numpy()
            return types.SimpleNamespace(images=[Image.fromarray(((y + 1) * 127.5).astype(np.uint8))])

    mod.TryOnPipeline = TryOnPipeline  # type: ignore[attr-defined]
    return mod


def _own_backend(monkeypatch, tmp_path, calls: list, parser: FashnParser = FashnParser.own) -> FashnBackend:  # noqa: ANN001
    monkeypatch.setitem(sys.modules, "fashn_vton", _tiny_model_module(calls))
    (tmp_path / "model.safetensors").write_bytes(b"x")
    backend = FashnBackend(tmp_path, parser=parser)
    backend.load()
    return backend


@pytest.mark.parametrize("category", ["top", "bottom", "one_piece"])
def test_own_parser_never_loads_fashn_parser_and_masks_our_agnostic_region(
    monkeypatch,
    tmp_path,
    person_arrays,
    garment_png,
    category,  # noqa: ANN001
):
    calls: list = []
    backend = _own_backend(monkeypatch, tmp_path, calls)
    assert FashnBackend(tmp_path).parser is FashnParser.own  # the default
    rgb, mask, lm = person_arrays
    cat = TryOnCategory(category)
    prep = build_person_prep(rgb, mask, lm, cat, "sha")
    gprep = GarmentPreprocessor().prepare(garment_png)
    out = backend.render(Image.fromarray(rgb), prep, Image.fromarray(gprep.image), gprep, cat)
    assert ("fashn-human-parser loaded",) not in calls  # its non-commercial weights are never touched
    _, fcat, photo_type, seg_free, ca, gi = calls[-1]
    assert (fcat, photo_type, seg_free) == (
        {"top": "tops", "bottom": "bottoms", "one_piece": "one-pieces"}[category],
        "flat-lay",
        False,
    )
    grey = (ca == 127).all(axis=2) & (prep.image != 127).any(axis=2)
    target = prep.agnostic_mask & ~prep.keep_mask
    assert grey.sum() > 0.95 * target.sum()  # FASHN repaints our agnostic region ...
    assert not (grey & ~prep.agnostic_mask).any()  # ... and nothing else
    assert not (grey & prep.keep_mask).any()  # head and hands stay
    assert np.array_equal(ca[~prep.agnostic_mask], prep.image[~prep.agnostic_mask])
    assert np.array_equal(gi, gprep.image)  # flat-lay: the product image as is
    assert out.size == prep.size
    img = np.asarray(out)
    assert img.std() > 1 and not np.array_equal(
        img, prep.image
    )  # the tiny model's render, at the person's size


def test_own_parser_on_model_garment_is_cut_by_our_mask(monkeypatch, tmp_path, person_arrays, garment_png):  # noqa: ANN001
    calls: list = []
    backend = _own_backend(monkeypatch, tmp_path, calls)
    rgb, mask, lm = person_arrays
    prep = build_person_prep(rgb, mask, lm, TryOnCategory.top, "sha")
    gprep = replace(GarmentPreprocessor().prepare(garment_png), landmarks=np.zeros((33, 3), np.float32))
    backend.render(Image.fromarray(rgb), prep, Image.fromarray(gprep.image), gprep, TryOnCategory.top)
    _, _, photo_type, _, _, gi = calls[-1]
    assert photo_type == "model"
    assert np.array_equal(gi[gprep.mask], gprep.image[gprep.mask])
    assert (gi[~gprep.mask] == 127).all()  # the model's photo outside our garment mask is greyed


def test_fashn_parser_setting_runs_upstream_as_shipped(monkeypatch, tmp_path, person_arrays, garment_png):  # noqa: ANN001
    calls: list = []
    backend = _own_backend(monkeypatch, tmp_path, calls, parser=FashnParser.fashn)
    rgb, mask, lm = person_arrays
    prep = build_person_prep(rgb, mask, lm, TryOnCategory.top, "sha")
    gprep = GarmentPreprocessor().prepare(garment_png)
    backend.render(Image.fromarray(rgb), prep, Image.fromarray(gprep.image), gprep, TryOnCategory.top)
    assert ("fashn-human-parser loaded",) in calls
    assert calls[-1][2:4] == ("model", True)  # upstream defaults: maskless


def test_parser_setting_reaches_the_shelf_and_the_licence(monkeypatch, tmp_path):  # noqa: ANN001
    monkeypatch.setitem(sys.modules, "fashn_vton", _tiny_model_module([]))
    (tmp_path / "model.safetensors").write_bytes(b"x")
    monkeypatch.setenv("TRYON_FASHN_PARSER", "fashn")
    assert TryOnSettings().fashn_parser is FashnParser.fashn
    shelf = ModelShelf()
    be = create_backend("fashn", fashn_weights_dir=tmp_path, fashn_parser=FashnParser.fashn, shelf=shelf)
    assert isinstance(be, FashnBackend) and be.parser is FashnParser.fashn
    own = create_backend("fashn", fashn_weights_dir=tmp_path, shelf=shelf)
    assert own is not be and own.parser is FashnParser.own  # type: ignore[attr-defined]
    loaded = {m["options"]["parser"]: m for m in shelf.loaded()}
    assert "Apache-2.0" in loaded["own"]["licence"] and "NON-COMMERCIAL" in loaded["own"]["licence"]
    assert any("fashn-human-parser" in f["source"] for f in loaded["fashn"]["files"])
    assert not any("fashn-human-parser" in f["source"] for f in loaded["own"]["files"])
