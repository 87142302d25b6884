"""Big uploads are kept at the working resolution (FITTINGROOM_WORKING_SIDE): prompts in the
original's pixels land on the right object, numbers come back in original pixels, rasters at
the working size."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from segmentation_helpers import FakeBackend, png_bytes

from fittingroom.models.registry import ModelShelf
from fittingroom.segmentation.ranking import RankedMask, SamScoreRanker
from fittingroom.segmentation.service import SegmentationService
from fittingroom.segmentation.settings import SegmentationSettings
from fittingroom.settings import CoreSettings
from services.segmentation.app import create_app

W, H = 8000, 6000  # 48 MP, kept at 2048x1536
BLUE = (4500, 500, 5500, 1500)  # x0, y0, x1, y1 in original pixels
RED = (500, 4500, 1500, 5500)  # where a click with x and y swapped would land


class ColourRanker(SamScoreRanker):
    """Segments by content: the pixels of the clicked colour (within the box prompt, if any)."""

    name = "colour"

    def analyze(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image.convert("RGB"), dtype=np.int16)

    def rank(self, backend, embedding, points, labels, box, cues, *, limit=3, mask_input=None, parsing=None):  # type: ignore[no-untyped-def]
        x, y = points[0]
        mask = np.abs(cues - cues[int(y), int(x)]).sum(axis=-1) < 40
        if box is not None:
            keep = np.zeros_like(mask)
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            keep[y0:y1, x0:x1] = True
            mask &= keep
        return [RankedMask(mask, 1.0, 1.0, "A", 0)]


def big_photo() -> bytes:
    img = Image.new("RGB", (W, H), (235, 235, 235))
    for box, colour in ((BLUE, (20, 40, 210)), (RED, (210, 30, 30))):
        img.paste(Image.new("RGB", (box[2] - box[0], box[3] - box[1]), colour), box[:2])
    return png_bytes(img, "JPEG", quality=85)


@pytest.fixture(scope="module")
def photo_bytes() -> bytes:
    return big_photo()


@pytest.fixture
def client(tmp_path):  # type: ignore[no-untyped-def]
    settings = SegmentationSettings(cache_dir=tmp_path / "cache")  # default limits: 50 MP, 32 MiB
    service = SegmentationService(
        settings, core=CoreSettings(home=tmp_path), backend=FakeBackend(), ranker=ColourRanker()
    )
    with TestClient(create_app(settings, service=service, shelf=ModelShelf())) as c:
        yield c


def decode_png(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def test_a_48_mp_jpeg_is_accepted_and_kept_at_the_working_size(client, photo_bytes) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/images", files={"file": ("big.jpg", photo_bytes, "image/jpeg")})
    assert r.status_code == 201, r.text
    info = r.json()
    assert (info["width"], info["height"]) == (W, H)
    assert (info["working_width"], info["working_height"]) == (2048, 1536)
    served = Image.open(io.BytesIO(client.get(f"/images/{info['image_id']}").content))
    assert served.size == (2048, 1536)


def test_a_click_in_original_pixels_lands_on_the_clicked_object(client, photo_bytes) -> None:  # type: ignore[no-untyped-def]
    image_id = client.post("/images", files={"file": ("big.jpg", photo_bytes)}).json()["image_id"]
    r = client.post(f"/images/{image_id}/masks", json={"points": [{"x": 5000, "y": 1000, "label": 1}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"], body["working_width"], body["working_height"]) == (
        W,
        H,
        2048,
        1536,
    )
    best = body["candidates"][0]
    # bbox and area in original pixels (within one working pixel, 1/0.256 ~ 4 original pixels)
    assert best["bbox"] == pytest.approx(list(BLUE), abs=8)
    assert best["area"] == pytest.approx(1000 * 1000, rel=0.02)
    mask = decode_png(best["mask_png"])
    assert mask.shape == (1536, 2048)  # the raster is at the working size
    assert mask[1000 * 1536 // H, 5000 * 2048 // W] and not mask[5000 * 1536 // H, 1000 * 2048 // W]
    cutout = Image.open(io.BytesIO(client.get(best["cutout_url"]).content))
    assert cutout.size == pytest.approx((1000 * 2048 / W, 1000 * 1536 / H), abs=2)
    assert cutout.convert("RGB").getpixel((cutout.width // 2, cutout.height // 2))[2] > 180  # blue


def test_a_box_prompt_is_mapped_and_points_are_checked_in_original_pixels(client, photo_bytes) -> None:  # type: ignore[no-untyped-def]
    image_id = client.post("/images", files={"file": ("big.jpg", photo_bytes)}).json()["image_id"]
    # a box over the left half of the blue block: the mask stops at its right edge (x = 5000)
    r = client.post(
        f"/images/{image_id}/masks",
        json={"points": [{"x": 4700, "y": 1000, "label": 1}], "box": [4000, 0, 5000, 3000]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["candidates"][0]["bbox"] == pytest.approx([4500, 500, 5000, 1500], abs=8)
    # a point inside the original but outside the working image's pixel range is valid ...
    ok = client.post(f"/images/{image_id}/masks", json={"points": [{"x": 7999.5, "y": 5999.5, "label": 1}]})
    assert ok.status_code == 200, ok.text
    # ... one outside the original is not, and the message names the original size
    bad = client.post(f"/images/{image_id}/masks", json={"points": [{"x": 8000, "y": 10, "label": 1}]})
    assert bad.status_code == 422 and "8000x6000" in bad.json()["detail"]
