"""Fixtures of the try-on tests: a synthetic person preprocessor (fake MediaPipe outputs), images, a catalog."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from fittingroom.catalog.models import GarmentCategory, ImageRecord, Product, vector_id_for
from fittingroom.tryon.person import PersonPreprocessor

W, H = 256, 384
# synthetic front-facing person: (x, y) px of the BlazePose landmarks used by the pipeline
POINTS = {
    0: (128, 50),
    2: (120, 44),
    5: (136, 44),
    7: (112, 48),
    8: (144, 48),
    9: (122, 62),
    10: (134, 62),
    11: (166, 100),
    12: (90, 100),
    13: (186, 160),
    14: (70, 160),
    15: (191, 215),
    16: (65, 215),
    17: (193, 225),
    18: (63, 225),
    19: (191, 228),
    20: (65, 228),
    21: (188, 222),
    22: (68, 222),
    23: (154, 210),
    24: (102, 210),
    25: (152, 290),
    26: (104, 290),
    27: (150, 370),
    28: (106, 370),
}


def synthetic_person() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(RGB uint8 (H, W, 3), person mask bool, landmarks float32 (33, 3))."""
    lm = np.zeros((33, 3), np.float32)
    for i, (x, y) in POINTS.items():
        lm[i] = (x, y, 0.99)
    mask = np.zeros((H, W), np.uint8)
    cv2.circle(mask, (128, 52), 26, (1,), -1)
    cv2.rectangle(mask, (85, 80), (171, 220), 1, -1)  # torso
    cv2.rectangle(mask, (95, 215), (161, 375), 1, -1)  # legs
    for a, b in ((11, 13), (13, 15), (12, 14), (14, 16)):
        cv2.line(mask, POINTS[a], POINTS[b], (1,), 16)
    rgb = np.full((H, W, 3), 235, np.uint8)
    rgb[mask.astype(bool)] = (60, 90, 160)  # blue clothes
    cv2.circle(rgb, (128, 52), 26, (220, 180, 150), -1)  # face
    return rgb, mask.astype(bool), lm


class FakePersonPreprocessor(PersonPreprocessor):
    """MediaPipe replaced by fixed outputs: a plain-colour image has no person; otherwise the synthetic one.

    ``hide`` lists landmark indices reported invisible (to simulate a cropped person).
    """

    def __init__(self, hide: tuple[int, ...] = ()) -> None:
        super().__init__(max_side=1024)
        self.hide = hide
        self.model_calls = 0

    def load(self, shelf=None) -> None:  # noqa: ANN001
        pass

    def close(self) -> None:
        pass

    def _run_models(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        self.model_calls += 1
        if rgb.reshape(-1, 3).std(0).max() < 1:
            return np.zeros(rgb.shape[:2], bool), None
        _, mask, lm = synthetic_person()
        lm[list(self.hide), 2] = 0.0
        if mask.shape != rgb.shape[:2]:
            mask = cv2.resize(mask.astype(np.uint8), (rgb.shape[1], rgb.shape[0])) > 0
        return mask, lm


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def garment_array() -> np.ndarray:
    """A red T-shirt silhouette on a white studio background, RGB uint8 (300, 240, 3)."""
    img = np.full((300, 240, 3), 250, np.uint8)
    body = np.array(
        [
            [70, 30],
            [170, 30],
            [220, 80],
            [190, 110],
            [175, 95],
            [175, 270],
            [65, 270],
            [65, 95],
            [50, 110],
            [20, 80],
        ],
        np.int32,
    )
    cv2.fillPoly(img, [body], (200, 30, 40))
    return img


@pytest.fixture
def person_png() -> bytes:
    return png_bytes(synthetic_person()[0])


@pytest.fixture
def garment_png() -> bytes:
    return png_bytes(garment_array())


@pytest.fixture
def catalog(tmp_path, garment_png):  # noqa: ANN001, ANN201
    """A SQLite catalog with a top, a shoe, an on-model-only product; image bytes in the ingest cache."""
    import hashlib

    from catalog_ingest.images import cached_image_path
    from fittingroom.catalog.store import open_store

    cache = tmp_path / "images"
    sha = hashlib.sha256(garment_png).hexdigest()
    path = cached_image_path(cache, sha)
    path.parent.mkdir(parents=True)
    path.write_bytes(garment_png)

    def product(pid: str, cat: GarmentCategory, eligible: bool | None) -> Product:
        rec = ImageRecord(
            url=f"{pid}.png", sha256=sha, vector_id=vector_id_for("t", pid, sha), tryon_eligible=eligible
        )
        return Product(
            source="t", id=pid, title=pid, garment_category=cat, images=[rec], tryon_eligible=eligible
        )

    uri = f"sqlite:///{tmp_path / 'catalog.db'}"
    with open_store(uri) as store:
        store.upsert_products(
            [
                product("tee", GarmentCategory.top, True),
                product("shoe", GarmentCategory.footwear, True),
                product("onmodel", GarmentCategory.top, False),
            ]
        )
    return uri, cache


@pytest.fixture
def make_fake_person_pre():  # noqa: ANN201
    """Factory of :class:`FakePersonPreprocessor` (``hide=`` invisible landmark indices)."""
    return FakePersonPreprocessor


@pytest.fixture
def plain_png() -> bytes:
    return png_bytes(np.full((300, 200, 3), (120, 160, 90), np.uint8))


@pytest.fixture
def person_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return synthetic_person()
