"""Try-on HTTP API: bad inputs, the job life cycle, backend failures (fake MediaPipe, real preview backend)."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fittingroom.tryon.renderers import PreviewBackend, TryOnBackend
from fittingroom.tryon.settings import TryOnSettings
from services.tryon.app import create_app


class ExplodingBackend(TryOnBackend):
    name = "preview"
    preview = True

    def render(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        raise RuntimeError("CUDA out of memory (fake)")


def _client(catalog, person_pre, backends=None, **kw) -> TestClient:  # noqa: ANN001
    uri, cache = catalog
    settings = TryOnSettings(store_uri=uri, image_cache_dir=cache, garment_region="pose", **kw)
    app = create_app(settings, backends=backends or {"preview": PreviewBackend()}, person_pre=person_pre)
    return TestClient(app)


def _wait(client: TestClient, job_id: str) -> dict:
    for _ in range(200):
        body = client.get(f"/tryon/{job_id}").json()
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.02)
    raise AssertionError("job did not finish")


def _person(client: TestClient, data: bytes) -> str:
    r = client.post("/persons", files={"file": ("p.png", data, "image/png")})
    assert r.status_code == 200, r.text
    return r.json()["person_id"]


def test_not_an_image_is_415(catalog, make_fake_person_pre):  # noqa: ANN001
    with _client(catalog, make_fake_person_pre()) as c:
        r = c.post("/persons", files={"file": ("p.png", b"hello, not a picture", "image/png")})
        assert r.status_code == 415
        assert "not a readable image" in r.json()["detail"]
        r = c.post("/garments", files={"file": ("g.png", b"\x89PNG broken", "image/png")})
        assert r.status_code == 415


def test_no_person_in_plain_image_is_422(catalog, make_fake_person_pre, plain_png):  # noqa: ANN001
    with _client(catalog, make_fake_person_pre()) as c:
        r = c.post("/persons", files={"file": ("p.png", plain_png, "image/png")})
        assert r.status_code == 422
        assert "no person" in r.json()["detail"]


def test_upload_too_large_is_413(catalog, make_fake_person_pre, person_png):  # noqa: ANN001
    with _client(catalog, make_fake_person_pre(), max_upload_bytes=100) as c:
        r = c.post("/persons", files={"file": ("p.png", person_png, "image/png")})
        assert r.status_code == 413


def test_product_errors(catalog, make_fake_person_pre, person_png):  # noqa: ANN001
    with _client(catalog, make_fake_person_pre()) as c:
        pid = _person(c, person_png)
        r = c.post("/tryon", json={"person_id": pid, "product_id": "t:nope"})
        assert r.status_code == 404 and "unknown product" in r.json()["detail"]
        r = c.post("/tryon", json={"person_id": pid, "product_id": "t:shoe"})
        assert r.status_code == 422 and "unsupported garment category 'footwear'" in r.json()["detail"]
        r = c.post("/tryon", json={"person_id": pid, "product_id": "t:onmodel"})
        assert r.status_code == 422 and "eligible" in r.json()["detail"]
        r = c.post("/tryon", json={"person_id": pid, "product_id": "t:tee", "category": "hat"})
        assert r.status_code == 422
        r = c.post("/tryon", json={"person_id": "0" * 64, "product_id": "t:tee"})
        assert r.status_code == 404 and "person_id" in r.json()["detail"]
        r = c.post("/tryon", json={"person_id": pid})
        assert r.status_code == 422
        r = c.post("/tryon", json={"person_id": pid, "product_id": "t:tee", "backend": "fashn"})
        assert r.status_code == 422 and "not enabled" in r.json()["detail"]
        assert c.get("/tryon/nope").status_code == 404


def test_cropped_person_is_422_for_a_top(catalog, make_fake_person_pre, person_png):  # noqa: ANN001
    with _client(catalog, make_fake_person_pre(hide=(23, 24))) as c:
        pid = _person(c, person_png)
        r = c.post("/tryon", json={"person_id": pid, "product_id": "t:tee"})
        assert r.status_code == 422
        assert "left hip" in r.json()["detail"] and "cropped" in r.json()["detail"]


def test_product_tryon_job_done_and_cached(catalog, make_fake_person_pre, person_png):  # noqa: ANN001
    pre = make_fake_person_pre()
    with _client(catalog, pre) as c:
        pid = _person(c, person_png)
        r = c.post("/tryon", json={"person_id": pid, "product_id": "t:tee"})
        assert r.status_code == 202, r.text
        job = _wait(c, r.json()["job_id"])
        assert job["status"] == "done" and job["preview"] is True and job["backend"] == "preview"
        assert job["category"] == "top" and job["progress"] == 1.0
        assert {"person_s", "garment_s", "render_s"} <= set(job["timings"])
        png = c.get(job["result_url"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        out = Image.open(io.BytesIO(png.content)).convert("RGB")
        assert out.size == (256, 384)
        src = Image.open(io.BytesIO(person_png)).convert("RGB")
        # the red garment is painted on the torso, the face is untouched
        o, i = np.asarray(out), np.asarray(src)
        assert o[150, 128, 0] > 150 and i[150, 128, 0] < 100
        assert (o[52, 128] == i[52, 128]).all()
        # same inputs again: served from the result cache, person models not run again
        r2 = c.post("/tryon", json={"person_id": pid, "product_id": "t:tee"})
        assert r2.json()["status"] == "done" and r2.json()["stage"] == "cached"
        assert pre.model_calls == 1


def test_uploaded_garment_needs_category(catalog, make_fake_person_pre, person_png, garment_png):  # noqa: ANN001
    with _client(catalog, make_fake_person_pre()) as c:
        pid = _person(c, person_png)
        r = c.post("/garments", files={"file": ("g.png", garment_png, "image/png")})
        assert r.status_code == 200
        gid = r.json()["garment_image_id"]
        r = c.post("/tryon", json={"person_id": pid, "garment_image_id": gid})
        assert r.status_code == 422 and "category" in r.json()["detail"]
        r = c.post("/tryon", json={"person_id": pid, "garment_image_id": gid, "category": "one_piece"})
        assert r.status_code == 202
        assert _wait(c, r.json()["job_id"])["status"] == "done"


def test_backend_failure_marks_job_failed(catalog, make_fake_person_pre, person_png):  # noqa: ANN001
    with _client(catalog, make_fake_person_pre(), backends={"preview": ExplodingBackend()}) as c:
        pid = _person(c, person_png)
        r = c.post("/tryon", json={"person_id": pid, "product_id": "t:tee"})
        assert r.status_code == 202
        job = _wait(c, r.json()["job_id"])
        assert job["status"] == "failed"
        assert "CUDA out of memory (fake)" in job["error"]
        assert job["result_url"] is None
        r = c.get(f"/tryon/{job['job_id']}/result.png")
        assert r.status_code == 422 and "failed" in r.json()["detail"]


@pytest.mark.real_model
def test_real_mediapipe_finds_no_person_in_plain_image(catalog, plain_png):  # noqa: ANN001
    with _client(catalog, None) as c:
        r = c.post("/persons", files={"file": ("p.png", plain_png, "image/png")})
        assert r.status_code == 422
        assert "no person" in r.json()["detail"]
