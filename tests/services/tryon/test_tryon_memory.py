"""Try-on memory bounds: uploads, preprocessing and jobs are bounded LRUs (TRYON_MEMORY_CACHE_MB,
TRYON_MAX_JOBS), least recently used dropped first."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from fittingroom.tryon.garment import GarmentPreprocessor
from fittingroom.tryon.person import PersonPreprocessor
from fittingroom.tryon.renderers import PreviewBackend
from fittingroom.tryon.service import CACHE_SHARES, NotFound, TryOnService, cache_budget
from fittingroom.tryon.settings import TryOnSettings

MiB = 1024 * 1024


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def noise_png(seed: int, h: int = 384, w: int = 256) -> bytes:
    """An incompressible person-sized PNG (~295 KB)."""
    rng = np.random.default_rng(seed)
    return png_bytes(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_shares_cover_the_budget_once() -> None:
    assert sum(CACHE_SHARES.values()) == pytest.approx(1.0)
    s = TryOnSettings(memory_cache_mb=64)
    assert sum(cache_budget(s, name) for name in CACHE_SHARES) <= 64 * MiB


def test_person_uploads_are_bounded_by_bytes(catalog, make_fake_person_pre) -> None:  # noqa: ANN001
    uri, cache = catalog
    settings = TryOnSettings(store_uri=uri, image_cache_dir=cache, garment_region="pose", memory_cache_mb=8)
    svc = TryOnService(settings, backends={"preview": PreviewBackend()}, person_pre=make_fake_person_pre())
    photos = [noise_png(i) for i in range(6)]  # 6 x ~295 KB > 1 MiB (1/8 of 8 MiB)
    ids = [svc.add_person(p)[0] for p in photos]
    assert svc.person_bytes(ids[-1]) == photos[-1]
    with pytest.raises(NotFound):
        svc.person_bytes(ids[0])  # the least recently used upload was dropped
    kept = [i for i in ids if i in svc._persons]
    assert 1 <= len(kept) <= 4 and sum(len(photos[ids.index(i)]) for i in kept) <= MiB


def test_person_analyses_are_bounded_by_bytes(make_fake_person_pre) -> None:  # noqa: ANN001
    class SmallFakePersonPreprocessor(make_fake_person_pre):  # type: ignore[misc, valid-type]
        def __init__(self, cache_bytes: int) -> None:
            PersonPreprocessor.__init__(self, max_side=1024, cache_bytes=cache_bytes)
            self.hide = ()
            self.model_calls = 0

    # an analysis of a 256x384 photo holds RGB + mask + landmarks: ~393 KB; 1/4 of 4 MiB holds 2
    pre = SmallFakePersonPreprocessor(cache_bytes=4 * MiB)
    photos = [noise_png(i) for i in range(4)]
    for p in photos:
        pre.analyze(p)
    assert pre.model_calls == 4
    pre.analyze(photos[-1])
    assert pre.model_calls == 4  # the most recent is cached
    pre.analyze(photos[0])
    assert pre.model_calls == 5  # the oldest was dropped
    assert pre._analysis.currsize <= MiB


def test_garment_preparations_are_bounded_by_bytes(garment_png: bytes) -> None:
    pre = GarmentPreprocessor(cache_bytes=MiB)  # a 240x300 garment holds ~288 KB (RGB + mask)
    rng = np.random.default_rng(0)
    for _ in range(6):
        g = np.array(Image.open(io.BytesIO(garment_png)).convert("RGB"))
        g[100:200, 100:140] = rng.integers(0, 120, (100, 40, 3), dtype=np.uint8)  # distinct bytes
        pre.prepare(png_bytes(g))
    assert 1 <= len(pre._cache) <= 3 and pre._cache.currsize <= MiB


def test_jobs_are_bounded_by_count(catalog, make_fake_person_pre, person_png) -> None:  # noqa: ANN001
    uri, cache = catalog
    settings = TryOnSettings(
        store_uri=uri, image_cache_dir=cache, garment_region="pose", max_jobs=2, result_cache_size=0
    )
    svc = TryOnService(settings, backends={"preview": PreviewBackend()}, person_pre=make_fake_person_pre())
    svc.start()
    try:
        pid = svc.add_person(person_png)[0]
        garment = svc.garment_from_product("t:tee", None)
        jobs = [svc.submit(pid, garment) for _ in range(3)]
        for _ in range(300):
            if all(j.status in ("done", "failed") for j in jobs):
                break
            time.sleep(0.02)
        assert all(j.status == "done" and j.result_png for j in jobs)
        kept = [j for j in jobs if j.job_id in svc._jobs]
        for j in kept:
            assert svc.job(j.job_id) is j
        for j in [j for j in jobs if all(j is not k for k in kept)]:
            with pytest.raises(NotFound):
                svc.job(j.job_id)
        assert len(kept) == 2 and jobs[-1] in kept  # the least recently stored job was dropped
    finally:
        svc.stop()
