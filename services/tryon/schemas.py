"""HTTP schemas of the try-on service (mirrored by ``frontend/src/tryon.ts``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from fittingroom.tryon.service import JobStatus
from services.http import ErrorOut as _ErrorOut

ErrorOut = _ErrorOut  # the one error body of every service (services.http)


class PersonOut(BaseModel):
    person_id: str = Field(description="sha256 of the uploaded photo; reuse it for later try-ons.")
    width: int = Field(description="Width (px) of the photo after EXIF rotation and resizing.")
    height: int


class GarmentOut(BaseModel):
    garment_image_id: str = Field(description="sha256 of the uploaded product-only garment image.")


class TryOnRequest(BaseModel):
    person_id: str = Field(min_length=1, max_length=128)
    product_id: str | None = Field(default=None, description="Catalog product uid 'source:id'.")
    garment_image_id: str | None = Field(default=None, description="Id from POST /garments.")
    category: str | None = Field(
        default=None, description="top, bottom, one_piece (outerwear = top); default: the product's category."
    )
    backend: str | None = Field(default=None, description="'preview' or 'fashn'; default: TRYON_BACKEND.")


class QualityOut(BaseModel):
    scores: dict[str, float] = Field(
        description="coverage, old_garment_leak, outside_body, pose_confidence (0..1), face_change (0..255)."
    )
    quality: str = Field(description="'good' or 'poor' (then show the render with the reasons, not as a success).")
    reasons: list[str] = Field(description="Why the render is poor; empty when good.")


class JobOut(BaseModel):
    job_id: str
    status: JobStatus
    progress: float = Field(ge=0, le=1)
    stage: str | None
    backend: str
    preview: bool = Field(
        description="True when the backend is the quick CPU preview, not a generative model."
    )
    category: str
    error: str | None
    result_url: str | None = Field(
        description="Relative to the service root, e.g. /tryon/{job_id}/result.png."
    )
    timings: dict[str, float] = Field(description="Seconds per stage.")
    quality: QualityOut | None = Field(default=None, description="Quality gate of the render (when done).")
