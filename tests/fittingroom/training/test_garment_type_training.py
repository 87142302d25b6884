"""Training of the garment-type classifier (fittingroom/training/garment_type.py) on tiny fakes."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fittingroom.training.garment_type import (
    STREET_CLASSES,
    accuracy,
    context_view,
    embed_rows,
    random_view,
    read_split,
    street_crops,
    train_garment_type,
    write_outputs,
)

COLOURS = {"pants": (200, 30, 30), "shoes": (30, 30, 200), "hat": (30, 200, 30)}


class MeanColour:
    name = "fake-mean"
    image_feature_name = "mean-rgb"

    def __init__(self) -> None:
        self.images = 0

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.images += len(images)
        return np.stack(
            [np.asarray(im.convert("RGB"), np.float32).reshape(-1, 3).mean(0) / 255 for im in images]
        )


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    lines = ["path,split,label,width,height"]
    for label, colour in COLOURS.items():
        for split, n in (("train", 4), ("validation", 2)):
            for i in range(n):
                rel = f"{split}/{label}/{i}.png"
                (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
                jitter = tuple(max(0, c - 10 * i) for c in colour)
                Image.new("RGB", (20, 30), jitter).save(tmp_path / rel)
                lines.append(f"{rel},{split},{label},20,30")
    (tmp_path / "index.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_street_labels_map_to_the_ten_classes() -> None:
    assert STREET_CLASSES["jeans"] == "pants" and STREET_CLASSES["blouse"] == "shirt"
    assert STREET_CLASSES["sneakers"] == "shoes" and STREET_CLASSES["coat"] == "outwear"
    assert "bag" not in STREET_CLASSES and "skin" not in STREET_CLASSES


def test_street_crops_read_labelled_boxes(tmp_path: Path) -> None:
    Image.new("RGB", (50, 80)).save(tmp_path / "0001.jpg")
    ann = {
        "labels": [],
        "images": {
            "0001": {
                "image": "0001.jpg",
                "annotation": "pixel-level",
                "items": [
                    {"label": "jeans", "bbox_xyxy": [5, 40, 45, 90], "pixels": 4000},
                    {"label": "jeans", "bbox_xyxy": [0, 0, 4, 4], "pixels": 16},  # too small
                    {"label": "bag", "bbox_xyxy": [0, 0, 40, 40], "pixels": 5000},  # no class
                ],
            },
            "1005": {"image": "1005.jpg", "annotation": "tags", "items": []},
        },
    }
    (tmp_path / "annotations.json").write_text(json.dumps(ann))
    rows = street_crops(tmp_path)
    assert [(r.label, r.box) for r in rows] == [("pants", (5, 40, 45, 90))]
    assert rows[0].load().size == (40, 40)  # clipped to the photo


def test_random_views_are_seeded_crops() -> None:
    img = Image.new("RGB", (100, 60))
    a = [random_view(img, random.Random(3), 0.75).size for _ in range(3)]
    b = [random_view(img, random.Random(3), 0.75).size for _ in range(3)]
    assert a == b and all(75 <= w <= 100 and 45 <= h <= 60 for w, h in a)


def test_a_context_view_keeps_the_garment_whole_over_another_photo() -> None:
    img, bg = Image.new("RGB", (20, 30), (255, 0, 0)), Image.new("RGB", (50, 50), (0, 0, 255))
    view = np.asarray(context_view(img, bg, random.Random(1)))
    assert 23 <= view.shape[1] <= 30 and 34 <= view.shape[0] <= 45
    red = (view[..., 0] > 200) & (view[..., 2] < 50)
    assert red.sum() == 20 * 30 and (view[..., 2] > 200).any()  # all of the garment, clutter around


def test_augmented_views_are_counted_and_labelled(photos: Path) -> None:
    enc = MeanColour()
    rows = read_split(photos, "train")
    x, y = embed_rows(rows, enc.embed_images, crops=2, mirror=True, context=1, batch_size=5)
    assert x.shape == (len(rows) * 5, 3) and len(y) == len(x) and enc.images == len(x)
    assert y[:5] == [rows[0].label] * 5


def test_unknown_class_names_the_line(photos: Path) -> None:
    (photos / "index.csv").write_text("path,split,label\nx.png,train,scarf\n")
    with pytest.raises(ValueError, match=r"index.csv:2: unknown class 'scarf'"):
        read_split(photos, "train")


def test_train_measure_and_write(photos: Path, tmp_path: Path) -> None:
    enc = MeanColour()
    result = train_garment_type(photos, enc, c=100.0, crops=1)
    clf = result.classifier
    assert (clf.encoder, clf.image_feature) == ("fake-mean", "mean-rgb") and clf.fits(enc)
    assert result.validation.n == 6 and result.validation.accuracy == 1.0
    assert result.train_views == 12 * 3 and result.street is None
    out = tmp_path / "out" / "g.npz"
    metrics = write_outputs(result, out, "fittingroom train garment-type")
    assert metrics["validation"]["per_class"]["hat"] == {"n": 2, "accuracy": 1.0}
    card = (out.parent / "MODEL_CARD.md").read_text()
    assert "CC0-1.0" in card and "| pants | 2 | 1.000 |" in card
    x, y = embed_rows(read_split(photos, "validation"), enc.embed_images)
    assert accuracy(clf, x, y).category_accuracy == 1.0
