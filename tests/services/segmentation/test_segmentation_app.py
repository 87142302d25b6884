"""HTTP service tests: upload, click, cutout, every bad-input case, caches, concurrency.

SAM is replaced by ``FakeBackend`` (deterministic discs) and the ranker by SAM's own score,
so these run in milliseconds; the real models are exercised in test_segmentation_real.py.
"""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from segmentation_helpers import FakeBackend, png_bytes

from fittingroom.models.registry import ModelShelf
from fittingroom.models.sam.base import Candidates
from fittingroom.segmentation.ranking import SamScoreRanker
from fittingroom.segmentation.service import SegmentationService
from fittingroom.segmentation.settings import SegmentationSettings
from services.segmentation.app import create_app


def make_service(tmp_path, backend=None, **overrides) -> SegmentationService:  # type: ignore[no-untyped-def]
    settings = SegmentationSettings(cache_dir=tmp_path / "cache", **overrides)
    return SegmentationService(settings, backend=backend or FakeBackend(), ranker=SamScoreRanker())


@pytest.fixture
def service(tmp_path) -> SegmentationService:  # type: ignore[no-untyped-def]
    return make_service(tmp_path, max_upload_bytes=200_000, max_pixels=400 * 400)


@pytest.fixture
def client(service):  # type: ignore[no-untyped-def]
    app = create_app(service.settings, service=service, shelf=ModelShelf())
    with TestClient(app) as c:
        yield c


def photo(color=(200, 30, 30), size=(120, 80)) -> Image.Image:  # type: ignore[no-untyped-def]
    img = Image.new("RGB", size, (240, 240, 240))
    img.paste(Image.new("RGB", (40, 40), color), (30, 20))
    return img


def upload(client, img: Image.Image, fmt: str = "PNG", **kw) -> dict:  # type: ignore[no-untyped-def]
    r = client.post("/images", files={"file": (f"p.{fmt.lower()}", png_bytes(img, fmt, **kw), "image/png")})
    assert r.status_code == 201, r.text
    return r.json()


def click(client, image_id: str, points, box=None):  # type: ignore[no-untyped-def]
    body: dict = {"points": [{"x": x, "y": y, "label": lab} for x, y, lab in points]}
    if box is not None:
        body["box"] = dict(zip(("x0", "y0", "x1", "y1"), box, strict=True))
    return client.post(f"/images/{image_id}/masks", json=body)


def test_upload_click_cutout_roundtrip(client, service) -> None:
    info = upload(client, photo())
    assert (info["width"], info["height"]) == (120, 80)
    assert len(info["image_id"]) == 64
    r = click(client, info["image_id"], [(50, 40, 1)])
    assert r.status_code == 200, r.text
    cands = r.json()["candidates"]
    assert 1 <= len(cands) <= 3
    assert [c["rank"] for c in cands] == list(range(len(cands)))
    assert [c["score"] for c in cands] == sorted((c["score"] for c in cands), reverse=True)
    best = cands[0]
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(best["mask_png"]))).convert("1"))
    assert mask.shape == (80, 120) and mask[40, 50]
    assert int(mask.sum()) == best["area"]
    x0, y0, x1, y1 = best["bbox"]
    assert x0 <= 50 < x1 and y0 <= 40 < y1
    cut = client.get(best["cutout_url"])
    assert cut.status_code == 200 and cut.headers["content-type"] == "image/png"
    rgba = Image.open(io.BytesIO(cut.content))
    assert rgba.mode == "RGBA" and rgba.size == (x1 - x0, y1 - y0)
    alpha = np.asarray(rgba)[..., 3]
    assert set(np.unique(alpha)) <= {0, 255}
    assert np.array_equal(alpha > 0, mask[y0:y1, x0:x1])
    plain = client.get(f"/images/{info['image_id']}/masks/{best['mask_id']}")
    assert plain.status_code == 200
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(plain.content)).convert("1")), mask)


def test_exif_orientation_is_applied_before_coordinates(client) -> None:
    img = photo(size=(120, 80))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    info = upload(client, img, "JPEG", exif=exif)
    assert (info["width"], info["height"]) == (80, 120)
    assert click(client, info["image_id"], [(70, 100, 1)]).status_code == 200
    assert click(client, info["image_id"], [(100, 70, 1)]).status_code == 422  # outside the rotated image


def test_an_uploaded_image_can_be_fetched_back_by_id(client) -> None:
    img = photo(size=(120, 80))
    exif = Image.Exif()
    exif[0x0112] = 6  # the image given back is the oriented one the coordinates refer to
    info = upload(client, img, "JPEG", exif=exif)
    r = client.get(f"/images/{info['image_id']}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size == (80, 120)
    gone = client.get("/images/" + "0" * 64)
    assert gone.status_code == 404 and "unknown image_id" in gone.json()["detail"]


def test_box_prompt_and_negative_points_are_accepted(client) -> None:
    info = upload(client, photo())
    r = click(client, info["image_id"], [(50, 40, 1), (10, 10, 0)], box=(20, 10, 80, 70))
    assert r.status_code == 200 and r.json()["candidates"]


@pytest.mark.parametrize(
    ("points", "box", "message"),
    [
        ([(500, 40, 1)], None, "outside"),
        ([(-1, 40, 1)], None, "outside"),
        ([(50, 40, 0)], None, "no positive point"),
        ([(50, 40, 1)], (80, 10, 20, 70), "empty"),
        ([(50, 40, 1)], (30, 30, 30, 30), "empty"),  # a 0x0 box
        ([(50, 40, 1)], (0, 0, 0, 0), "empty"),
        ([(50, 40, 1)], (0, 0, 500, 70), "outside"),
    ],
)
def test_bad_prompts_are_422_with_a_message(client, points, box, message) -> None:
    info = upload(client, photo())
    r = click(client, info["image_id"], points, box)
    assert r.status_code == 422
    assert message in r.json()["detail"]


def test_malformed_bodies_are_422(client) -> None:
    info = upload(client, photo())
    assert client.post(f"/images/{info['image_id']}/masks", json={"points": []}).status_code == 422
    bad_label = {"points": [{"x": 5, "y": 5, "label": 7}]}
    assert client.post(f"/images/{info['image_id']}/masks", json=bad_label).status_code == 422
    assert client.post(f"/images/{info['image_id']}/masks", content=b"nope").status_code == 422


def test_not_an_image_is_415(client) -> None:
    r = client.post("/images", files={"file": ("notes.txt", b"hello, not an image", "text/plain")})
    assert r.status_code == 415
    assert "notes.txt" in r.json()["detail"] and "not a decodable image" in r.json()["detail"]
    assert client.post("/images", files={"file": ("empty.png", b"", "image/png")}).status_code == 415


def test_upload_over_byte_limit_is_413(client) -> None:
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (390, 390, 3), dtype=np.uint8))
    r = client.post("/images", files={"file": ("big.png", png_bytes(noisy), "image/png")})
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]


def test_image_over_pixel_limit_is_413(client) -> None:
    r = client.post(
        "/images", files={"file": ("wide.png", png_bytes(Image.new("RGB", (500, 400))), "image/png")}
    )
    assert r.status_code == 413
    assert "500x400" in r.json()["detail"]


def test_unknown_ids_are_404(client) -> None:
    r = click(client, "0" * 64, [(5, 5, 1)])
    assert r.status_code == 404 and "unknown image_id" in r.json()["detail"]
    assert client.get("/images/..%2Fetc/masks/x/cutout").status_code == 404
    info = upload(client, photo())
    r = client.get(f"/images/{info['image_id']}/masks/nope-0/cutout")
    assert r.status_code == 404 and "unknown mask_id" in r.json()["detail"]


def test_refinement_feeds_the_previous_masks_logits_back(client, service) -> None:
    info = upload(client, photo())
    first = click(client, info["image_id"], [(50, 40, 1)]).json()["candidates"]
    chosen = first[1]
    body = {
        "points": [{"x": 50, "y": 40, "label": 1}, {"x": 68, "y": 40, "label": 0}],
        "previous_mask_id": chosen["mask_id"],
    }
    r = client.post(f"/images/{info['image_id']}/masks", json=body)
    assert r.status_code == 200, r.text
    # the chosen candidate's own low-res logits are the mask prompt: upscaled, they give its mask
    mask_input = service.backend.mask_inputs[-1]
    assert mask_input is not None
    entry = service.entry(info["image_id"])
    up = service.backend.upscale(entry.embedding, Candidates(mask_input[None], np.zeros(1, np.float32)))
    chosen_mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(chosen["mask_png"]))).convert("1"))
    assert np.array_equal(up[0] > 0, chosen_mask)
    assert not np.array_equal(
        up[0] > 0, np.asarray(Image.open(io.BytesIO(base64.b64decode(first[0]["mask_png"]))))
    )
    plain = click(client, info["image_id"], [(50, 40, 1), (68, 40, 0)]).json()["candidates"]
    assert service.backend.mask_inputs[-1] is None
    assert {c["mask_id"] for c in plain}.isdisjoint(c["mask_id"] for c in r.json()["candidates"])


def test_refinement_with_an_unknown_previous_mask_is_404(client) -> None:
    info = upload(client, photo())
    body = {"points": [{"x": 50, "y": 40, "label": 1}], "previous_mask_id": "feedfeed-0"}
    r = client.post(f"/images/{info['image_id']}/masks", json=body)
    assert r.status_code == 404 and "unknown previous_mask_id" in r.json()["detail"]


def test_previous_mask_logits_survive_a_restart(tmp_path) -> None:
    first = make_service(tmp_path)
    entry = first.add_image(png_bytes(photo()))
    seg = first.segment(entry.image_id, [[50, 40]], [1])[0]
    second = make_service(tmp_path)
    logits = second.mask_logits(entry.image_id, seg.mask_id)
    assert logits.shape == (16, 16) and logits.dtype == np.float32
    assert np.allclose(logits, first.mask_logits(entry.image_id, seg.mask_id), atol=1e-2)


def test_missing_file_field_is_422(client) -> None:
    assert client.post("/images", data={"x": "1"}).status_code == 422


def test_second_click_and_reupload_do_not_rerun_the_encoder(client, service) -> None:
    data = photo()
    info = upload(client, data)
    assert service.backend.embed_calls == 1
    for x in (40, 50, 60):
        assert click(client, info["image_id"], [(x, 40, 1)]).status_code == 200
    assert upload(client, data)["image_id"] == info["image_id"]
    assert service.backend.embed_calls == 1


def test_disk_cache_survives_a_restart(tmp_path) -> None:
    first = make_service(tmp_path)
    entry = first.add_image(png_bytes(photo()))
    seg = first.segment(entry.image_id, [[50, 40]], [1])[0]
    backend = FakeBackend()
    second = make_service(tmp_path, backend=backend)
    # unknown to the new process's memory, rebuilt from disk without the encoder
    assert second.entry(entry.image_id).embedding.features.tobytes() == entry.embedding.features.tobytes()
    assert backend.embed_calls == 0
    assert np.array_equal(second.mask(entry.image_id, seg.mask_id), seg.mask)
    assert second.cutout(entry.image_id, seg.mask_id).size == (
        seg.bbox[2] - seg.bbox[0],
        seg.bbox[3] - seg.bbox[1],
    )


def test_corrupt_cached_embedding_is_recomputed(tmp_path) -> None:
    first = make_service(tmp_path)
    entry = first.add_image(png_bytes(photo()))
    for f in (tmp_path / "cache" / "embeddings").rglob("*.npz"):
        f.write_bytes(b"garbage")
    backend = FakeBackend()
    second = make_service(tmp_path, backend=backend)
    assert second.entry(entry.image_id).image_id == entry.image_id
    assert backend.embed_calls == 1


def test_memory_lru_evicts_but_disk_restores(tmp_path) -> None:
    svc = make_service(tmp_path, memory_cache_size=1)
    a = svc.add_image(png_bytes(photo((255, 0, 0))))
    svc.add_image(png_bytes(photo((0, 0, 255))))
    assert svc.backend.embed_calls == 2
    assert svc.segment(a.image_id, [[50, 40]], [1])
    assert svc.backend.embed_calls == 2  # from disk


def test_concurrent_requests_on_different_images_never_mix_embeddings(tmp_path) -> None:
    svc = make_service(tmp_path, backend=FakeBackend(delay=0.02))
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (250, 250, 0), (0, 250, 250), (90, 90, 90)]
    images = [png_bytes(photo(c)) for c in colors]
    # expected: one service per image, sequentially
    expected = {}
    for data in images:
        ref = make_service(tmp_path / "ref", disk_cache=False)
        e = ref.add_image(data)
        expected[e.image_id] = (
            e.embedding.features.copy(),
            ref.segment(e.image_id, [[50, 40]], [1])[0].score,
        )
    app = create_app(svc.settings, service=svc)
    results: dict[str, tuple] = {}
    errors: list[Exception] = []

    def worker(data: bytes) -> None:
        try:
            with TestClient(app) as c:
                for _ in range(3):
                    info = c.post("/images", files={"file": ("p.png", data, "image/png")}).json()
                    r = click(c, info["image_id"], [(50, 40, 1)])
                    assert r.status_code == 200, r.text
                    results.setdefault(info["image_id"], ())
                    results[info["image_id"]] += (r.json()["candidates"][0]["score"],)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(d,)) for d in images * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert set(results) == set(expected)
    for image_id, scores in results.items():
        assert np.array_equal(svc.entry(image_id).embedding.features, expected[image_id][0])
        assert all(s == pytest.approx(expected[image_id][1]) for s in scores)
    assert len({expected[i][1] for i in expected}) > 1  # the scores really identify the image
    assert svc.backend.embed_calls == len(images)  # concurrent uploads of one image embed it once


def test_health_names_model_and_ranker(client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "model": "fake-v1", "ranker": "sam", "cached_images": 0, "models": []}
    upload(client, photo())
    assert client.get("/health").json()["cached_images"] == 1


def test_memory_cache_is_bounded_by_bytes(tmp_path) -> None:
    # 1 MiB budget: a 600x600 image (1.44 MB decoded) is never kept; 300x300 ones (360 KB) at most 2
    svc = make_service(tmp_path, memory_cache_mb=1)
    big = svc.add_image(png_bytes(photo(size=(600, 600))))
    assert svc.cached_images == 0
    assert svc.segment(big.image_id, [[50, 40]], [1])  # rebuilt from the disk cache
    assert svc.backend.embed_calls == 1
    for c in range(5):
        svc.add_image(png_bytes(photo((c * 40, 0, 0), size=(300, 300))))
        assert svc.cached_images <= 2
    assert svc._entries.currsize <= 1024 * 1024


def test_disk_cache_is_bounded_by_bytes(tmp_path) -> None:
    svc = make_service(tmp_path, disk_cache_mb=1)
    rng = np.random.default_rng(0)
    for _ in range(12):  # ~250 KB of incompressible PNG each
        noise = Image.fromarray(rng.integers(0, 255, (200, 400, 3), dtype=np.uint8))
        svc.add_image(png_bytes(noise))
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.name != ".evict.lock"]
    assert sum(p.stat().st_size for p in files) <= 1024 * 1024
    assert svc.disk.evicted_files > 0
