"""FastAPI app of the segmentation service: click a garment in a photo, get its mask.

Endpoints (coordinates: original-image pixels after EXIF orientation, x right, y down; the
server decodes each photo straight to its working resolution, longest side
``FITTINGROOM_WORKING_SIDE``, and maps prompts into it. Numbers returned (bbox, area, width,
height) are original pixels; mask and cutout PNGs are rasters at ``working_width`` x
``working_height``; see ``services/segmentation/schemas.py``):

* ``POST /images`` (multipart field ``file``) -> ``{image_id, width, height, working_width,
  working_height}``; computes and caches the SAM embedding and person cues so later clicks only
  run the decoder.
* ``POST /images/{image_id}/masks`` body ``{"points": [{"x", "y", "label"}], "box": {...}?}``
  -> up to 3 candidates best first: ``mask_id``, ``score``, ``predicted_iou``, ``area``,
  ``bbox`` and ``mask_png`` (base64 1-bit PNG at the working size, white = garment).
* ``POST /images/{image_id}/parse`` -> every garment of the photo (garment-parsing head): ``mask_id``,
  ``group``, ``score``, ``area``, ``bbox``, ``mask_png``, ``cutout_url``; 503 without the head.
* ``GET /images/{image_id}/dots`` -> the garments confident enough to show as a dot: ``mask_id``,
  ``group``, ``x``/``y`` (a pixel inside the garment), ``score``, ``area``, ``bbox``, ``cutout_url``;
  no mask PNGs (a dot press is a click there). The head already ran at upload, so this costs only
  the regions (tens of ms) and stays off the photo-ready path; 503 without the head.
* ``GET /images/{image_id}/masks/{mask_id}`` -> the mask as PNG.
* ``GET /images/{image_id}/masks/{mask_id}/cutout`` -> RGBA PNG cropped to the mask box,
  alpha = mask: the image query for the retrieval service.
* ``GET /healthz`` (alias ``/health``): status, model key, ranker, images in memory.

Errors: 413 (upload over ``SEGMENTATION_MAX_UPLOAD_BYTES`` / ``SEGMENTATION_MAX_PIXELS``),
415 (not an image), 404 (unknown image_id / mask_id), 422 (bad prompt: point outside the
image, no positive point, bad box or body), all as ``{"detail": "..."}``.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from fittingroom.models.registry import ModelShelf, default_shelf
from fittingroom.segmentation.service import (
    SegmentationError,
    SegmentationService,
    mask_to_png,
    mask_to_png_base64,
)
from fittingroom.segmentation.settings import SegmentationSettings
from services.http import error_responses, guard, loaded_models, read_upload
from services.segmentation.schemas import (
    DotsResponse,
    GarmentDotOut,
    Health,
    ImageInfo,
    MaskCandidate,
    MaskRequest,
    MaskResponse,
    ParsedGarment,
    ParseResponse,
)

_errors = error_responses


def _cutout_url_parts(request: Request, image_id: str) -> tuple[str, str]:
    """(head, tail) of a mask's cut-out URL, ``mask_id.join(parts)``: under the mount prefix."""
    prefix = request.scope.get("root_path", "").rstrip("/")
    return f"{prefix}/images/{image_id}/masks/", "/cutout"


#: Largest JSON body of a mask request (points, box, previous mask id).
MASK_BODY_LIMIT = 64 * 1024


def create_app(
    settings: SegmentationSettings | None = None,
    *,
    service: SegmentationService | None = None,
    shelf: ModelShelf | None = None,
) -> FastAPI:
    """Build the app. Models load in the lifespan (start-up) from ``shelf`` (default: the
    process's model shelf), unless a ready ``service`` is given."""
    settings = settings or SegmentationSettings()
    models = shelf or default_shelf()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = service or await run_in_threadpool(
            lambda: SegmentationService(settings, shelf=models)
        )
        yield

    app = FastAPI(title="fittingroom segmentation", version="0.1.0", lifespan=lifespan)
    guard(app, settings.max_upload_bytes + 64 * 1024, limits={"/masks": MASK_BODY_LIMIT})

    @app.exception_handler(SegmentationError)
    async def _segmentation_error(_: Request, exc: SegmentationError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": str(exc)})

    def svc(request: Request) -> SegmentationService:
        return request.app.state.service

    @app.get("/healthz", response_model=Health)
    @app.get("/health", response_model=Health, include_in_schema=False)
    async def health(request: Request) -> Health:
        s = svc(request)
        return Health(
            status="ok",
            model=s.backend.model_key,
            ranker=s.ranker.name,
            cached_images=s.cached_images,
            models=loaded_models(models),
        )

    @app.post("/images", response_model=ImageInfo, status_code=201, responses=_errors(413, 415, 422))
    async def upload_image(request: Request, file: UploadFile = File(...)) -> ImageInfo:
        name = file.filename or "upload"
        data = await read_upload(file, settings.max_upload_bytes)
        entry = await run_in_threadpool(svc(request).add_image, data, name)
        return ImageInfo(
            image_id=entry.image_id,
            width=entry.width,
            height=entry.height,
            working_width=entry.image.width,
            working_height=entry.image.height,
        )

    @app.get("/images/{image_id}", response_class=Response, responses=_errors(404))
    async def get_image(request: Request, image_id: str) -> Response:
        """The uploaded photo (EXIF orientation applied) at the working resolution
        (``working_width`` x ``working_height``; point prompts stay in the original's ``width`` x
        ``height`` pixels), as JPEG, for a page reopening a photo session from its URL; 404 once
        the caches dropped it."""
        entry = await run_in_threadpool(svc(request).entry, image_id)
        buf = io.BytesIO()
        await run_in_threadpool(entry.image.save, buf, "JPEG", quality=90)
        return Response(content=buf.getvalue(), media_type="image/jpeg", headers={"Cache-Control": "private"})

    @app.post("/images/{image_id}/masks", response_model=MaskResponse, responses=_errors(404, 422))
    async def create_masks(request: Request, image_id: str, body: MaskRequest) -> MaskResponse:
        s = svc(request)
        points = [(p.x, p.y) for p in body.points]
        labels = [int(p.label) for p in body.points]
        box = body.box_xyxy()
        entry = await run_in_threadpool(s.entry, image_id)
        segments = await run_in_threadpool(s.segment, image_id, points, labels, box, body.previous_mask_id)
        # A path relative to the server root. Built from root_path rather than url_for: url_for
        # cannot resolve this route's name when the app is mounted (``fittingroom serve``).
        base = _cutout_url_parts(request, image_id)
        return MaskResponse(
            image_id=image_id,
            width=entry.width,
            height=entry.height,
            working_width=entry.image.width,
            working_height=entry.image.height,
            candidates=[
                MaskCandidate(
                    mask_id=seg.mask_id,
                    rank=seg.rank,
                    score=seg.score,
                    predicted_iou=seg.predicted_iou,
                    area=seg.area,
                    bbox=seg.bbox,
                    mask_png=mask_to_png_base64(seg.mask),
                    cutout_url=seg.mask_id.join(base),
                )
                for seg in segments
            ],
        )

    @app.post("/images/{image_id}/parse", response_model=ParseResponse, responses=_errors(404, 503))
    async def parse_image(request: Request, image_id: str) -> ParseResponse:
        s = svc(request)
        entry = await run_in_threadpool(s.entry, image_id)
        garments = await run_in_threadpool(s.parse, image_id)
        base = _cutout_url_parts(request, image_id)
        return ParseResponse(
            image_id=image_id,
            width=entry.width,
            height=entry.height,
            working_width=entry.image.width,
            working_height=entry.image.height,
            head=entry.parsing.head_key if entry.parsing is not None else "",
            garments=[
                ParsedGarment(
                    mask_id=mask_id,
                    group=g.group.name,
                    score=g.score,
                    area=g.area,
                    bbox=g.bbox,
                    mask_png=mask_to_png_base64(g.mask),
                    cutout_url=mask_id.join(base),
                )
                for mask_id, g in garments
            ],
        )

    @app.get("/images/{image_id}/dots", response_model=DotsResponse, responses=_errors(404, 503))
    async def garment_dots(request: Request, image_id: str) -> DotsResponse:
        s = svc(request)
        entry = await run_in_threadpool(s.entry, image_id)
        dots = await run_in_threadpool(s.dots, image_id)
        base = _cutout_url_parts(request, image_id)
        return DotsResponse(
            image_id=image_id,
            width=entry.width,
            height=entry.height,
            head=entry.parsing.head_key if entry.parsing is not None else "",
            dots=[
                GarmentDotOut(
                    mask_id=mask_id,
                    group=d.region.group.name,
                    x=d.x,
                    y=d.y,
                    score=d.region.score,
                    area=d.region.area,
                    bbox=d.region.bbox,
                    cutout_url=mask_id.join(base),
                )
                for mask_id, d in dots
            ],
        )

    @app.get("/images/{image_id}/masks/{mask_id}", response_class=Response, responses=_errors(404))
    async def get_mask(request: Request, image_id: str, mask_id: str) -> Response:
        mask = await run_in_threadpool(svc(request).mask, image_id, mask_id)
        return Response(content=mask_to_png(mask), media_type="image/png")

    @app.get(
        "/images/{image_id}/masks/{mask_id}/cutout",
        response_class=Response,
        name="get_cutout",
        responses=_errors(404),
    )
    async def get_cutout(request: Request, image_id: str, mask_id: str) -> Response:
        cutout = await run_in_threadpool(svc(request).cutout, image_id, mask_id)
        buf = io.BytesIO()
        cutout.save(buf, format="PNG")
        return Response(content=buf.getvalue(), media_type="image/png")

    return app
