"""Try-on service core (no HTTP): uploads, garment resolution, job queue, result cache.

Everything kept in memory is a bounded LRU (``fittingroom.caching``): jobs by count
(``TRYON_MAX_JOBS``), uploads, preprocessing and rendered results by bytes, as shares of
``TRYON_MEMORY_CACHE_MB`` (see :data:`CACHE_SHARES`).

Used by the FastAPI app (``services.tryon.app``) and the CLI.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fittingroom.caching import BoundedLRU, byte_lru
from fittingroom.catalog.models import TryOnMode
from fittingroom.models.registry import ModelShelf, default_shelf
from fittingroom.tryon.garment import GarmentPrep, GarmentPreprocessor
from fittingroom.tryon.onmodel import OnModelExtractor
from fittingroom.tryon.person import (
    PersonPrep,
    PersonPreprocessor,
    TryOnCategory,
    TryOnInputError,
    decode_image,
    normalize_category,
    sha256_bytes,
)
from fittingroom.tryon.quality import assess
from fittingroom.tryon.renderers import BackendUnavailable, TryOnBackend, create_backend
from fittingroom.tryon.settings import TryOnSettings

log = logging.getLogger(__name__)


#: Fractions of ``TRYON_MEMORY_CACHE_MB`` per cache (they sum to 1).
CACHE_SHARES: dict[str, float] = {
    "persons": 1 / 8,  # uploaded person photo bytes
    "garments": 1 / 8,  # uploaded garment image bytes
    "person_prep": 7 / 16,  # PersonPreprocessor: analyses, prepared persons, SAM embeddings
    "garment_prep": 1 / 8,  # GarmentPreprocessor: background-removed garments
    "results": 1 / 16,  # rendered PNGs keyed by their inputs
    "jobs": 1 / 8,  # jobs (with their result PNG once done)
}


def cache_budget(settings: TryOnSettings, name: str) -> int:
    """Bytes of ``TRYON_MEMORY_CACHE_MB`` given to the cache ``name`` (a :data:`CACHE_SHARES` key)."""
    return max(1, int(settings.memory_cache_bytes * CACHE_SHARES[name]))


#: Bytes a job counts for besides its result PNG.
JOB_OVERHEAD_BYTES = 1024


def _job_bytes(job: Job) -> int:
    return JOB_OVERHEAD_BYTES + len(job.result_png or b"")


class NotFound(LookupError):
    """Unknown person, garment, product or job id (HTTP 404)."""


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


@dataclass
class Job:
    job_id: str
    backend: str
    preview: bool
    category: TryOnCategory
    status: JobStatus = JobStatus.queued
    progress: float = 0.0
    stage: str | None = "queued"
    error: str | None = None
    result_png: bytes | None = None
    timings: dict[str, float] = field(default_factory=dict)
    quality: dict[str, Any] | None = None  # fittingroom.tryon.quality.RenderQuality.as_dict()


@dataclass
class GarmentSource:
    """Resolved garment input: image bytes, their hash, the category (when known) and how the image
    serves try-on (``product_only``, or ``on_model``: the worn garment is cut out of the photo first)."""

    data: bytes
    sha256: str
    category: str | None
    label: str
    mode: str = "product_only"


def choose_product_image(product):  # noqa: ANN001, ANN201 - fittingroom.catalog.models.Product -> ImageRecord
    """The product image to try on (``fittingroom.catalog.models.tryon_image``, unclassified
    catalogs allowed). Raises TryOnInputError when the product has no image or none is eligible."""
    from fittingroom.catalog.models import tryon_image

    if not product.images:
        raise TryOnInputError(f"product {product.uid} has no image")
    image = tryon_image(product, unclassified_ok=True)
    if image is None:
        reasons = sorted({img.tryon_mode_reason for img in product.images if img.tryon_mode_reason})
        raise TryOnInputError(
            f"product {product.uid} has no try-on eligible image"
            + (f" ({'; '.join(reasons)})" if reasons else " (no product-only or on-model garment photo)")
        )
    return image


class TryOnService:
    """Holds the preprocessors, backends, uploads and jobs of one process."""

    def __init__(
        self,
        settings: TryOnSettings,
        backends: dict[str, TryOnBackend] | None = None,
        person_pre: PersonPreprocessor | None = None,
        shelf: ModelShelf | None = None,
    ) -> None:
        self.settings = settings
        self.shelf = shelf or default_shelf()
        self.person_pre = person_pre or PersonPreprocessor(
            max_side=settings.max_side,
            cache_dir=settings.resolved_cache_dir,
            max_pixels=settings.max_image_pixels,
            cache_bytes=cache_budget(settings, "person_prep"),
        )
        self._store: Any = None
        self.garment_pre = GarmentPreprocessor(
            max_side=settings.max_side, cache_bytes=cache_budget(settings, "garment_prep")
        )
        self._on_model: OnModelExtractor | None = None
        self.backends: dict[str, TryOnBackend] = dict(backends or {})
        self._persons: BoundedLRU[str, bytes] = byte_lru(cache_budget(settings, "persons"))
        self._garments: BoundedLRU[str, bytes] = byte_lru(cache_budget(settings, "garments"))
        self._jobs: BoundedLRU[str, Job] = BoundedLRU(
            cache_budget(settings, "jobs"), max_items=settings.max_jobs, getsizeof=_job_bytes
        )
        self._results: BoundedLRU[tuple[str, str, str, str, int], bytes] | None = (
            byte_lru(cache_budget(settings, "results"), max_items=settings.result_cache_size)
            if settings.result_cache_size
            else None
        )
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    # ---- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Load the person models and every enabled backend. Raises BackendUnavailable."""
        self.person_pre.load(self.shelf)
        if self.person_pre.sam_backend is None:
            self.person_pre.sam_backend = load_region_segmenter(self.settings.garment_region, self.shelf)
        for name in self.settings.enabled_backends:
            if name not in self.backends:
                self.backends[name] = create_backend(
                    name,
                    fashn_weights_dir=self.settings.resolved_fashn_weights_dir,
                    fashn_parser=self.settings.fashn_parser,
                    shelf=self.shelf,
                )
            else:
                self.backends[name].load()
        self._executor = ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="tryon")

    def stop(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self.person_pre.close()
        if self._store is not None:
            self._store.close()
            self._store = None

    def store(self) -> Any:
        """The catalog store, opened read-only once per service (not once per request)."""
        with self._lock:
            if self._store is None:
                from fittingroom.catalog.store import open_store

                self._store = open_store(self.settings.resolved_store_uri, read_only=True)
            return self._store

    # ---- uploads -------------------------------------------------------------------------------
    def add_person(self, data: bytes) -> tuple[str, int, int]:
        """Store a person photo after checking it shows a person; returns (person_id, width, height).

        ``person_id`` is the photo's sha256. Raises TryOnInputError.
        """
        digest = sha256_bytes(data)
        rgb, _, _ = self.person_pre.analyze(data, sha256=digest)
        self._persons.put(digest, data)
        return digest, rgb.shape[1], rgb.shape[0]

    def add_garment(self, data: bytes) -> str:
        """Store a product-only garment image after background removal; returns its id (sha256)."""
        digest = sha256_bytes(data)
        self.garment_pre.prepare(data, sha256=digest)
        self._garments.put(digest, data)
        return digest

    def person_bytes(self, person_id: str) -> bytes:
        data = self._persons.get(person_id)
        if data is None:
            raise NotFound(f"unknown person_id {person_id!r}: upload the photo again with POST /persons")
        return data

    def garment_from_upload(self, garment_image_id: str, category: str | None) -> GarmentSource:
        data = self._garments.get(garment_image_id)
        if data is None:
            raise NotFound(f"unknown garment_image_id {garment_image_id!r}: upload it with POST /garments")
        return GarmentSource(data, garment_image_id, category, f"upload {garment_image_id[:12]}")

    def garment_from_product(self, product_id: str, category: str | None) -> GarmentSource:
        """Resolve a catalog product uid 'source:id' to its try-on image bytes and category."""
        from fittingroom.catalog.image_cache import cached_image_path
        from fittingroom.catalog.models import split_uid

        try:
            source, pid = split_uid(product_id)
        except ValueError as e:
            raise TryOnInputError(str(e)) from None
        product = self.store().get_product(source, pid)
        if product is None:
            raise NotFound(f"unknown product {product_id!r}")
        image = choose_product_image(product)
        cat = category or (product.garment_category.value if product.garment_category else None)
        if cat is None and image.garment_category_pred is not None:
            cat = image.garment_category_pred.value
        if cat is None:
            raise TryOnInputError(f"product {product_id} has no garment category: pass 'category'")
        normalize_category(cat)
        path = cached_image_path(self.settings.resolved_image_cache_dir, image.sha256)
        if not path.is_file():
            raise TryOnInputError(f"the image of product {product_id} is not in the image cache ({path})")
        mode = "on_model" if image.tryon_mode == TryOnMode.on_model else "product_only"
        return GarmentSource(path.read_bytes(), image.sha256, cat, product.title, mode)

    def prepare_garment(self, garment: GarmentSource, category: TryOnCategory) -> GarmentPrep:
        """Garment mask + key points: background removal of a product-only shot, or the worn garment
        cut out of an on-model photo (``fittingroom.tryon.onmodel``). Raises TryOnInputError."""
        if garment.mode != "on_model":
            return self.garment_pre.prepare(garment.data, sha256=garment.sha256)
        with self._lock:
            if self._on_model is None:
                self.person_pre.load(self.shelf)
                self._on_model = OnModelExtractor(
                    self.person_pre._analyzer,
                    self.person_pre.sam_backend,
                    max_side=self.settings.max_side,
                    cache_bytes=cache_budget(self.settings, "garment_prep"),
                )
        return self._on_model.prepare(garment.data, category, sha256=garment.sha256)

    # ---- jobs ----------------------------------------------------------------------------------
    def backend(self, name: str | None) -> TryOnBackend:
        name = name or self.settings.backend
        b = self.backends.get(name)
        if b is None:
            raise TryOnInputError(
                f"backend {name!r} is not enabled here (enabled: {', '.join(self.backends)})"
            )
        return b

    def submit(self, person_id: str, garment: GarmentSource, backend_name: str | None = None) -> Job:
        """Validate synchronously (person for the category, garment mask), then queue the render.

        Raises NotFound, TryOnInputError.
        """
        if garment.category is None:
            raise TryOnInputError("the garment category is unknown: pass 'category' (top, bottom, one_piece)")
        category = normalize_category(garment.category)
        backend = self.backend(backend_name)
        person_data = self.person_bytes(person_id)
        t0 = time.perf_counter()
        person_prep = self.person_pre.prepare(person_data, category, sha256=person_id)
        t1 = time.perf_counter()
        garment_prep = self.prepare_garment(garment, category)
        t2 = time.perf_counter()
        job = Job(uuid.uuid4().hex, backend.name, backend.preview, category)
        job.timings = {"person_s": round(t1 - t0, 4), "garment_s": round(t2 - t1, 4)}
        key = (person_id, garment.sha256, category.value, backend.name, self.settings.max_side)
        cached = self._results.get(key) if self._results is not None else None
        if cached is not None:
            job.result_png, job.status, job.progress, job.stage = cached, JobStatus.done, 1.0, "cached"
            cached_rgb = np.asarray(Image.open(io.BytesIO(cached)).convert("RGB"))
            job.quality = assess(person_prep, cached_rgb).as_dict()
            self._jobs.put(job.job_id, job)
            return job
        self._jobs.put(job.job_id, job)
        if self._executor is None:
            raise BackendUnavailable("the try-on service is not started")
        self._executor.submit(
            self._run, job, backend, person_data, person_prep, garment.data, garment_prep, key
        )
        return job

    def _run(
        self,
        job: Job,
        backend: TryOnBackend,
        person_data: bytes,
        person_prep: PersonPrep,
        garment_data: bytes,
        garment_prep: GarmentPrep,
        key: tuple[str, str, str, str, int],
    ) -> None:
        job.status, job.stage, job.progress = JobStatus.running, "rendering", 0.3
        t0 = time.perf_counter()
        try:
            person_img = Image.fromarray(person_prep.image)
            if garment_prep.landmarks is not None:  # on-model source: the cut-out on white
                white = np.full_like(garment_prep.image, 255)
                cut = np.where(garment_prep.mask[:, :, None], garment_prep.image, white)
                garment_img = Image.fromarray(cut)
            else:
                garment_img = decode_image(
                    garment_data, max_side=self.settings.max_side, max_pixels=self.settings.max_image_pixels
                )
            out = backend.render(person_img, person_prep, garment_img, garment_prep, job.category)
            job.quality = assess(person_prep, np.asarray(out.convert("RGB"))).as_dict()
            job.stage, job.progress = "encoding", 0.9
            buf = io.BytesIO()
            out.save(buf, format="PNG")
            png = buf.getvalue()
        except Exception as e:  # noqa: BLE001 - any backend failure marks the job failed
            job.error = f"{type(e).__name__}: {e}"
            job.status, job.stage = JobStatus.failed, "failed"
            job.timings["render_s"] = round(time.perf_counter() - t0, 4)
            return
        job.timings["render_s"] = round(time.perf_counter() - t0, 4)
        if self._results is not None:
            self._results.put(key, png)
        job.result_png = png
        job.status, job.stage, job.progress = JobStatus.done, "done", 1.0
        if job.job_id in self._jobs:
            self._jobs.put(job.job_id, job)  # re-measured with its PNG (may drop older jobs)

    def job(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"unknown job {job_id!r}")
        return job


def load_region_segmenter(mode: str, shelf: ModelShelf | None = None) -> Any:
    """SAM backend for the person's garment region, per ``TRYON_GARMENT_REGION``.

    'pose' -> None; 'sam' -> the segmentation backend or BackendUnavailable naming what is missing;
    'auto' -> the backend when it loads, else None (logged; the pose polygon is used).
    """
    if mode == "pose":
        return None
    from fittingroom.segmentation.backend import sam_backend

    try:
        return sam_backend(shelf=shelf)
    except (ImportError, OSError, RuntimeError, ValueError) as exc:
        if mode == "sam":
            raise BackendUnavailable(
                f"TRYON_GARMENT_REGION=sam but the segmentation SAM backend did not load ({exc}); "
                "run `fittingroom models fetch` (see fittingroom/segmentation/README.md) or set "
                "TRYON_GARMENT_REGION=pose"
            ) from exc
        log.warning("SAM garment region unavailable (%s): using the pose polygon", exc)
        return None


def read_path_bytes(path: Path) -> bytes:
    """Bytes of a local file; raises TryOnInputError naming the file when missing."""
    if not path.is_file():
        raise TryOnInputError(f"{path}: no such file")
    return path.read_bytes()
