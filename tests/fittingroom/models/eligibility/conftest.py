"""Fixtures of the eligibility tests: a tiny fake shared-data folder and a fake backbone."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

#: rectangle colour of each fake garment category (on a white or dark background)
COLORS = {
    "top": (220, 30, 30),
    "bottom": (30, 30, 220),
    "footwear": (30, 200, 30),
    "one_piece": (230, 220, 20),
    "bag_accessory": (200, 30, 200),
    "other": (20, 200, 200),
}


def fake_image(path: Path, category: str, *, on_model: bool = False, jitter: int = 0) -> Path:
    """A 64x80 JPEG: a coloured rectangle (the garment) on white (product) or dark grey (model)."""
    bg = (60, 50, 45) if on_model else (255, 255, 255)
    img = Image.new("RGB", (64, 80), bg)
    color = tuple(min(255, c + jitter) for c in COLORS[category])
    img.paste(Image.new("RGB", (30 + jitter % 7, 40), color), (17, 20))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def fake_features(images: list, batch_size: int = 32) -> np.ndarray:
    """Stand-in backbone: per image the mean RGB of the centre and of the border, (N, 6) float32."""
    out = []
    for im in images:
        a = np.asarray(im.convert("RGB").resize((32, 40)), np.float32) / 255.0
        centre = a[12:28, 10:22].reshape(-1, 3).mean(0)
        border = np.r_[a[:4].reshape(-1, 3), a[-4:].reshape(-1, 3)].mean(0)
        out.append(np.r_[centre, border])
    return np.asarray(out, np.float32)


@pytest.fixture
def fake_shared(tmp_path: Path) -> Path:
    """A miniature ``../shared/data`` with every source ``build_labels`` reads."""
    root = tmp_path / "shared"
    gp = root / "garment-photos"
    rows = []
    for cls, cat in [("t-shirt", "top"), ("pants", "bottom"), ("shoes", "footwear"), ("socks", "other")]:
        for i in range(2):
            rel = f"train/{cls}/{cls}{i}.jpg"
            fake_image(gp / rel, cat)
            rows.append([rel, "train", cls, 64, 80])
    with (gp / "index.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["path", "split", "label", "width", "height"], *rows])

    te = root / "tryon-examples"
    fake_image(te / "catvton/condition/overall/1_00.jpg", "one_piece")
    fake_image(te / "fitdit/garment/2.jpg", "top")
    fake_image(te / "fitdit/model/3.jpg", "top", on_model=True)
    with (te / "index.csv").open("w", newline="") as f:
        csv.writer(f).writerows(
            [
                ["path", "source_repo_folder", "role", "width", "height", "provenance_guess_from_filename"],
                ["catvton/condition/overall/1_00.jpg", "catvton", "garment", 64, 80, "x"],
                ["fitdit/garment/2.jpg", "fitdit", "garment", 64, 80, "x"],
                ["fitdit/model/3.jpg", "fitdit", "person", 64, 80, "x"],
            ]
        )

    sal = root / "saleor-catalog"
    fake_image(sal / "images/hoodie.png", "top")
    fake_image(sal / "images/book.png", "other")
    (sal / "products.jsonl").write_text(
        json.dumps(
            {
                "id": 1,
                "name": "Grey Hoodie",
                "category": "Apparel/Sweatshirts",
                "images": ["images/hoodie.png"],
            }
        )
        + "\n"
        + json.dumps(
            {"id": 2, "name": "A book", "category": "Accessories/Audiobooks", "images": ["images/book.png"]}
        )
        + "\n"
    )

    luma = root / "luma-catalog"
    fake_image(luma / "images/m/h/mh01-gray_main.jpg", "top", on_model=True)
    fake_image(luma / "images/m/h/mh01-gray_back.jpg", "top", on_model=True)
    fake_image(luma / "images/g/b/bag.jpg", "bag_accessory")
    fake_image(luma / "images/g/f/ball.jpg", "other")
    products = [
        {
            "sku": "MH01",
            "name": "Chaz Hoodie",
            "categories": ["Men/Tops/Hoodies & Sweatshirts"],
            "top_category": "apparel",
            "images": ["images/m/h/mh01-gray_main.jpg", "images/m/h/mh01-gray_back.jpg"],
        },
        {
            "sku": "24-MB01",
            "name": "Joust Duffle Bag",
            "categories": ["Gear", "Bags"],
            "top_category": "gear",
            "images": ["images/g/b/bag.jpg"],
        },
        {
            "sku": "24-UG01",
            "name": "Quest Ball",
            "categories": ["Gear", "Fitness Equipment"],
            "top_category": "gear",
            "images": ["images/g/f/ball.jpg"],
        },
    ]
    (luma / "products.jsonl").write_text("".join(json.dumps(p) + "\n" for p in products))

    for i in range(1, 4):
        fake_image(root / f"street-photos/photos/{i:04d}.jpg", "top", on_model=True)
    fake_image(root / "people-photos/girl.jpg", "top", on_model=True)
    fake_image(root / "people-photos/girl_1024.jpg", "top", on_model=True)
    (root / "people-photos/LICENSE.txt").write_text("not an image")
    return root


@pytest.fixture
def make_image():  # noqa: ANN201
    """``make_image(path, category, on_model=False, jitter=0)`` -> path of a fake garment image."""
    return fake_image


@pytest.fixture
def fake_backbone():  # noqa: ANN201
    """Stand-in for ``EfficientNetLiteFeatures``: ``(images, batch_size) -> (N, 6)`` colour features."""
    return fake_features
