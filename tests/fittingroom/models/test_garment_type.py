"""The garment-type classifier: file format, errors, the category mapping, the shelf, quality."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from fittingroom.catalog.models import GarmentCategory
from fittingroom.models.garment_type import (
    CLASS_CATEGORIES,
    DEFAULT_MODEL_PATH,
    MODEL_DIR,
    GarmentTypeClassifier,
    GarmentTypeModelError,
    classifier_for_encoder,
)
from fittingroom.models.registry import ModelShelf
from fittingroom.models.specs import GARMENT_TYPE

CLASSES = ("dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt")


def tiny(dim: int = 4, feature: str = "feat-a") -> GarmentTypeClassifier:
    """One class per axis (the rest of the rows zero): axis i -> class i."""
    w = np.zeros((len(CLASSES), dim), np.float32)
    for i in range(min(dim, len(CLASSES))):
        w[i, i] = 8.0
    return GarmentTypeClassifier(w, np.zeros(len(CLASSES), np.float32), CLASSES, "enc-a", feature, {"c": 1.0})


class FakeEncoder:
    def __init__(self, name: str, feature: str | None = None) -> None:
        self.name = name
        if feature is not None:
            self.image_feature_name = feature


def test_the_mapping_covers_the_ten_classes_as_the_issue_says() -> None:
    assert set(CLASS_CATEGORIES) == set(CLASSES)
    assert {c for c, g in CLASS_CATEGORIES.items() if g is GarmentCategory.top} == {
        "t-shirt",
        "shirt",
        "longsleeve",
    }
    assert {c for c, g in CLASS_CATEGORIES.items() if g is GarmentCategory.bottom} == {
        "pants",
        "shorts",
        "skirt",
    }
    assert CLASS_CATEGORIES["outwear"] is GarmentCategory.outerwear
    assert CLASS_CATEGORIES["dress"] is GarmentCategory.one_piece
    assert CLASS_CATEGORIES["shoes"] is GarmentCategory.footwear
    assert CLASS_CATEGORIES["hat"] is GarmentCategory.headwear


def test_save_load_round_trip_in_float16(tmp_path: Path) -> None:
    clf = tiny()
    clf.save(tmp_path / "g.npz")
    with np.load(tmp_path / "g.npz") as z:
        assert z["weights"].dtype == np.float16
    back = GarmentTypeClassifier.load(tmp_path / "g.npz")
    assert back.classes == CLASSES and (back.encoder, back.image_feature) == ("enc-a", "feat-a")
    x = np.eye(4, dtype=np.float32)
    p = back.predict_proba(x)
    assert p.shape == (4, 10) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    assert [back.classes[i] for i in p.argmax(1)] == ["dress", "hat", "longsleeve", "outwear"]
    cats, pc = back.category_proba(x)
    np.testing.assert_allclose(pc.sum(1), 1.0, rtol=1e-5)
    assert set(cats) == set(CLASS_CATEGORIES.values())


def test_guess_sums_the_classes_of_one_category() -> None:
    clf = tiny(dim=10)
    # longsleeve, shirt and t-shirt share the mass: each class is weak, the category "top" is not
    x = np.zeros(10, np.float32)
    x[[2, 5, 9]] = 1.0
    g = clf.guess(x)
    assert g.category is GarmentCategory.top and g.probability > 0.9
    assert g.garment_class in {"longsleeve", "shirt", "t-shirt"} and g.class_probability < 0.4


def test_a_wrong_embedding_size_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        tiny().predict_proba(np.zeros((2, 5), np.float32))


def test_missing_and_corrupt_files_name_the_file_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(
        GarmentTypeModelError, match=r"not found at .*nope\.npz.*fittingroom train garment-type"
    ):
        GarmentTypeClassifier.load(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(
        GarmentTypeModelError, match=r"bad\.npz is unreadable.*fittingroom train garment-type"
    ):
        GarmentTypeClassifier.load(bad)
    odd = tmp_path / "odd.npz"
    meta = {"classes": list(CLASSES[:3]), "encoder": "e", "image_feature": "f"}
    np.savez(odd, weights=np.zeros((10, 4)), bias=np.zeros(10), meta=json.dumps(meta))
    with pytest.raises(GarmentTypeModelError, match="inconsistent"):
        GarmentTypeClassifier.load(odd)


def test_the_shelf_builds_it_once_and_it_is_off_for_another_encoder(tmp_path: Path, caplog) -> None:
    path = tmp_path / "g.npz"
    tiny(feature="feat-a").save(path)
    shelf = ModelShelf()
    first = shelf.get(GARMENT_TYPE, path=str(path))
    assert shelf.get(GARMENT_TYPE, path=str(path)) is first and shelf.constructions["garment_type"] == 1
    assert first.fits(FakeEncoder("x", "feat-a")) and not first.fits(FakeEncoder("feat-b"))
    # the committed classifier on the default shelf key: a colour toy encoder is not its encoder
    with caplog.at_level(logging.INFO, logger="fittingroom.models.garment_type"):
        assert classifier_for_encoder(FakeEncoder("fake-color"), ModelShelf()) is None
    assert "garment-type classifier off" in caplog.text and "fake-color" in caplog.text


def test_the_committed_classifier_is_small_and_described() -> None:
    clf = GarmentTypeClassifier.load()
    assert clf.classes == CLASSES and clf.dim == 1280
    assert clf.image_feature == "efficientnet-lite0-gem224"
    assert DEFAULT_MODEL_PATH.stat().st_size < 64 * 1024
    metrics = json.loads((MODEL_DIR / "metrics.json").read_text())
    assert metrics["command"] == "fittingroom train garment-type"  # the committed file is the default's
    card = (MODEL_DIR / "MODEL_CARD.md").read_text()
    assert "CC0-1.0" in card and "Validation split" in card and "Street-photo" in card


@pytest.mark.real_model
@pytest.mark.real_data
def test_quality_floor_on_validation_photos(shared_data: Path, offline_encoder) -> None:
    from fittingroom.training.garment_type import read_split

    rows = read_split(shared_data / "garment-photos", "validation")
    picked = [r for c in CLASSES for r in [r for r in rows if r.label == c][:2]]  # 2 per class
    clf = GarmentTypeClassifier.load()
    assert clf.fits(offline_encoder)
    x = offline_encoder.embed_images([r.load() for r in picked])
    pred = [clf.classes[i] for i in clf.predict_proba(x).argmax(1)]
    acc = np.mean([p == r.label for p, r in zip(pred, picked, strict=True)])
    cat = np.mean(
        [CLASS_CATEGORIES[p] == CLASS_CATEGORIES[r.label] for p, r in zip(pred, picked, strict=True)]
    )
    assert acc >= 0.7 and cat >= 0.85, (acc, cat, pred)
