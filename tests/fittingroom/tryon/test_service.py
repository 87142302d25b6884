"""The try-on product path accepts on-model catalog images and every render carries its quality."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest
from tryon_fakes import FakeAnalyzer, FakeFaces, model_photo, png

from fittingroom.catalog.image_cache import cached_image_path
from fittingroom.catalog.models import (
    GarmentCategory,
    ImageRecord,
    PhotoType,
    Product,
    TryOnMode,
    vector_id_for,
)
from fittingroom.catalog.store import open_store
from fittingroom.tryon.person import PersonPreprocessor, TryOnInputError
from fittingroom.tryon.renderers import PreviewBackend
from fittingroom.tryon.service import JobStatus, TryOnService
from fittingroom.tryon.settings import TryOnSettings

FACE = (108.0, 30.0, 148.0, 75.0, 0.9)


@pytest.fixture
def service(tmp_path):  # noqa: ANN001, ANN201
    rgb, _ = model_photo()
    garment = rgb.copy()
    garment[80:215, 85:172] = (200, 30, 40)  # the model wears a red shirt
    data = png(garment)
    sha = hashlib.sha256(data).hexdigest()
    path = cached_image_path(tmp_path / "images", sha)
    path.parent.mkdir(parents=True)
    path.write_bytes(data)

    def product(pid: str, cat: GarmentCategory, photo_type: PhotoType) -> Product:
        rec = ImageRecord(
            url=f"{pid}.png",
            sha256=sha,
            vector_id=vector_id_for("t", pid, sha),
            tryon_eligible=False,
            photo_type=photo_type,
        )
        return Product(
            source="t", id=pid, title=pid, garment_category=cat, images=[rec], tryon_eligible=False
        )

    uri = f"sqlite:///{tmp_path / 'catalog.db'}"
    with open_store(uri) as store:
        store.upsert_products(
            [
                product("tee", GarmentCategory.top, PhotoType.on_model),
                product("cap", GarmentCategory.headwear, PhotoType.on_model),
                product("logo", GarmentCategory.top, PhotoType.other),
            ]
        )
    settings = TryOnSettings(store_uri=uri, image_cache_dir=tmp_path / "images", garment_region="pose")
    pp = PersonPreprocessor(analyzer=FakeAnalyzer(), face_detector=FakeFaces([FACE]))
    svc = TryOnService(settings, backends={"preview": PreviewBackend()}, person_pre=pp)
    svc.start()
    yield svc
    svc.stop()


def _wait(svc: TryOnService, job_id: str):  # noqa: ANN202
    for _ in range(200):
        job = svc.job(job_id)
        if job.status in (JobStatus.done, JobStatus.failed):
            return job
        time.sleep(0.02)
    raise AssertionError("job did not finish")


def test_on_model_product_is_tried_on_with_quality(service):  # noqa: ANN001
    person_id, _, _ = service.add_person(png(model_photo()[0]))
    src = service.garment_from_product("t:tee", None)
    assert src.mode == "on_model" and src.category == "top"
    job = _wait(service, service.submit(person_id, src).job_id)
    assert job.status is JobStatus.done, job.error
    assert job.quality is not None and job.quality["quality"] in ("good", "poor")
    assert set(job.quality["scores"]) >= {"coverage", "old_garment_leak", "face_change", "pose_confidence"}
    assert job.quality["scores"]["coverage"] > 0.5  # the red shirt replaced the blue one
    stored = service.store().get_product("t", "tee")
    assert stored.images[0].tryon_mode is TryOnMode.on_model


def test_products_without_a_tryon_image_say_why(service):  # noqa: ANN001
    with pytest.raises(TryOnInputError, match="headwear, not a try-on category"):
        service.garment_from_product("t:cap", None)
    with pytest.raises(TryOnInputError, match="not a garment photo"):
        service.garment_from_product("t:logo", None)


def test_photo_without_a_face_is_rejected_before_any_render(service):  # noqa: ANN001
    service.person_pre.face_detector = FakeFaces([])
    with pytest.raises(TryOnInputError, match="no person"):
        service.add_person(png(np.flipud(model_photo()[0]).copy()))
