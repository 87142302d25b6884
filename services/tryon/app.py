"""Try-on HTTP service (FastAPI).

Routes (used by ``frontend/src/tryon.ts``):

* ``POST /persons`` (multipart ``file``) -> :class:`PersonOut`; 422 no person / too small.
* ``POST /garments`` (multipart ``file``) -> :class:`GarmentOut`; 422 no garment found.
* ``POST /tryon`` JSON :class:`TryOnRequest` -> :class:`JobOut` (202); 404 unknown person/product/garment,
  422 not eligible, unsupported category, person cropped for the category.
* ``GET /tryon/{job_id}`` -> :class:`JobOut`; ``GET /tryon/{job_id}/result.png``.

Models load in the lifespan; preprocessing runs in the thread pool, renders in a
bounded ``ThreadPoolExecutor`` (``TRYON_WORKERS``). A failing backend marks the job failed.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from fittingroom.models.registry import ModelShelf, default_shelf
from fittingroom.tryon.person import ImageTooLarge, NotAnImage, PersonPreprocessor, TryOnInputError
from fittingroom.tryon.renderers import TryOnBackend
from fittingroom.tryon.service import Job, JobStatus, NotFound, TryOnService
from fittingroom.tryon.settings import TryOnSettings
from services.http import error_responses, guard, read_upload
from services.tryon.schemas import GarmentOut, JobOut, PersonOut, QualityOut, TryOnRequest

ERRORS = error_responses(404, 409, 413, 415, 422)


def _job_out(job: Job) -> JobOut:
    return JobOut(
        job_id=job.job_id,
        status=job.status,
        progress=job.progress,
        stage=job.stage,
        backend=job.backend,
        preview=job.preview,
        category=job.category.value,
        error=job.error,
        result_url=f"/tryon/{job.job_id}/result.png" if job.status is JobStatus.done else None,
        timings=job.timings,
        quality=QualityOut.model_validate(job.quality) if job.quality is not None else None,
    )


def _http_error(e: Exception) -> HTTPException:
    if isinstance(e, NotFound):
        return HTTPException(404, str(e))
    if isinstance(e, NotAnImage):
        return HTTPException(415, e.reason)
    if isinstance(e, ImageTooLarge):
        return HTTPException(413, e.reason)
    if isinstance(e, TryOnInputError):
        return HTTPException(422, e.reason)
    raise e


_read_upload = read_upload


def create_app(
    settings: TryOnSettings | None = None,
    *,
    backends: dict[str, TryOnBackend] | None = None,
    person_pre: PersonPreprocessor | None = None,
    shelf: ModelShelf | None = None,
) -> FastAPI:
    """Build the try-on app. ``backends`` / ``person_pre`` (tests) replace the default ones;
    models come from ``shelf`` (default: the process's model shelf)."""
    s = settings or TryOnSettings()
    models = shelf or default_shelf()
    service = TryOnService(s, backends=backends, person_pre=person_pre, shelf=models)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        await run_in_threadpool(service.start)
        app.state.service = service
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(title="fittingroom try-on", version="1.0", lifespan=lifespan)
    guard(app, s.max_upload_bytes + 64 * 1024)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness, the enabled renderers and every model this process has loaded (with licences)."""
        return {
            "status": "ok",
            "backends": sorted(service.backends),
            "default_backend": s.backend,
            "models": models.loaded(),
        }

    @app.post("/persons", response_model=PersonOut, responses=ERRORS)
    async def post_person(file: UploadFile = File(...)) -> PersonOut:
        data = await _read_upload(file, s.max_upload_bytes)
        try:
            pid, w, h = await run_in_threadpool(service.add_person, data)
        except (TryOnInputError, NotFound) as e:
            raise _http_error(e) from None
        return PersonOut(person_id=pid, width=w, height=h)

    @app.post("/garments", response_model=GarmentOut, responses=ERRORS)
    async def post_garment(file: UploadFile = File(...)) -> GarmentOut:
        data = await _read_upload(file, s.max_upload_bytes)
        try:
            gid = await run_in_threadpool(service.add_garment, data)
        except (TryOnInputError, NotFound) as e:
            raise _http_error(e) from None
        return GarmentOut(garment_image_id=gid)

    @app.post("/tryon", response_model=JobOut, status_code=202, responses=ERRORS)
    async def post_tryon(req: TryOnRequest) -> JobOut:
        if (req.product_id is None) == (req.garment_image_id is None):
            raise HTTPException(422, "give exactly one of product_id or garment_image_id")

        def work() -> Job:
            service.person_bytes(req.person_id)  # 404 before touching the catalog
            if req.product_id is not None:
                garment = service.garment_from_product(req.product_id, req.category)
            else:
                garment = service.garment_from_upload(req.garment_image_id or "", req.category)
            return service.submit(req.person_id, garment, req.backend)

        try:
            job = await run_in_threadpool(work)
        except (TryOnInputError, NotFound) as e:
            raise _http_error(e) from None
        return _job_out(job)

    @app.get("/tryon/{job_id}", response_model=JobOut, responses=ERRORS)
    async def get_job(job_id: str) -> JobOut:
        try:
            return _job_out(service.job(job_id))
        except NotFound as e:
            raise _http_error(e) from None

    @app.get("/tryon/{job_id}/result.png", responses={**ERRORS, 200: {"content": {"image/png": {}}}})
    async def get_result(job_id: str, request: Request) -> Response:
        try:
            job = service.job(job_id)
        except NotFound as e:
            raise _http_error(e) from None
        if job.status is JobStatus.failed:
            raise HTTPException(422, f"job {job_id} failed: {job.error}")
        if job.result_png is None:
            raise HTTPException(409, f"job {job_id} is {job.status.value}: poll GET /tryon/{job_id}")
        return Response(
            job.result_png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
        )

    return app
