"""API schemas of the segmentation service (request/response bodies).

Coordinates: every number (point and box prompts, ``width``/``height``, ``bbox``, ``area``) is in
pixels of the original upload after EXIF orientation, whatever resolution the server works at.
Rasters (``mask_png``, the mask and cutout PNGs, ``GET /images/{id}``) are at the working size
``working_width`` x ``working_height`` (the original downscaled so its longest side is at most
``FITTINGROOM_WORKING_SIDE``, 2048 px by default; equal to the original for smaller photos):
stretch them over the photo to overlay them.
"""

from __future__ import annotations

from enum import IntEnum

from pydantic import BaseModel, Field

from services.http import ErrorOut as _ErrorOut
from services.http import LoadedModel


class PointLabel(IntEnum):
    """SAM point-prompt label."""

    exclude = 0  # negative point: not part of the object
    include = 1  # positive point: part of the object


class Point(BaseModel):
    """A point prompt in original-image pixels (EXIF orientation applied; x right, y down)."""

    x: float = Field(description="Column in pixels, 0 <= x < width.")
    y: float = Field(description="Row in pixels, 0 <= y < height.")
    label: PointLabel = Field(default=PointLabel.include, description="1 = include, 0 = exclude.")


class Box(BaseModel):
    """A box prompt (x0, y0) top-left to (x1, y1) bottom-right, original-image pixels."""

    x0: float
    y0: float
    x1: float
    y1: float


class MaskRequest(BaseModel):
    """Body of ``POST /images/{image_id}/masks``: at least one include point."""

    points: list[Point] = Field(min_length=1, description="Point prompts; at least one with label 1.")
    box: tuple[float, float, float, float] | Box | None = Field(
        default=None,
        description="Optional box prompt around the garment: [x0, y0, x1, y1] or {x0, y0, x1, y1}.",
    )
    previous_mask_id: str | None = Field(
        default=None,
        description=(
            "Optional mask_id returned earlier for this image that these points correct: SAM's "
            "iterative refinement uses that mask as its mask prompt. Send all points so far."
        ),
    )

    def box_xyxy(self) -> tuple[float, float, float, float] | None:
        """The box as (x0, y0, x1, y1), whichever form it was sent in."""
        if self.box is None or isinstance(self.box, tuple):
            return self.box
        return (self.box.x0, self.box.y0, self.box.x1, self.box.y1)


_WORKING_W = (
    "Width of the mask PNGs and cutouts (the working resolution, longest side <= FITTINGROOM_WORKING_SIDE)."
)
_WORKING_H = "Height of the mask PNGs and cutouts (the working resolution)."
_WIDTH = "Width of the original upload in pixels after EXIF orientation: the space of prompts and bboxes."
_HEIGHT = "Height of the original upload in pixels after EXIF orientation."


class ImageInfo(BaseModel):
    """Response of ``POST /images``."""

    image_id: str = Field(description="sha256 of the uploaded bytes.")
    width: int = Field(description=_WIDTH)
    height: int = Field(description=_HEIGHT)
    working_width: int = Field(description=_WORKING_W)
    working_height: int = Field(description=_WORKING_H)


class MaskCandidate(BaseModel):
    """One candidate mask, best first."""

    mask_id: str = Field(description="Id for GET /images/{image_id}/masks/{mask_id}[/cutout].")
    rank: int = Field(description="0 = best.")
    score: float = Field(
        description="Ranking score (higher is better; see fittingroom/segmentation/ranking.py)."
    )
    predicted_iou: float = Field(description="SAM's own predicted IoU of this mask (0..1).")
    area: int = Field(description="Mask area in original-image pixels.")
    bbox: tuple[int, int, int, int] = Field(
        description="(x0, y0, x1, y1) in original-image pixels, x1/y1 exclusive."
    )
    mask_png: str = Field(
        description="Base64 PNG of the mask at the working size (working_width x working_height): 1-bit, "
        "white (1) = garment, black (0) = rest."
    )
    cutout_url: str = Field(description="URL of the RGBA cutout (alpha = mask) cropped to bbox.")


class MaskResponse(BaseModel):
    image_id: str
    width: int = Field(description=_WIDTH)
    height: int = Field(description=_HEIGHT)
    working_width: int = Field(description=_WORKING_W)
    working_height: int = Field(description=_WORKING_H)
    candidates: list[MaskCandidate]


class ParsedGarment(BaseModel):
    """One garment of ``POST /images/{image_id}/parse``, largest first."""

    mask_id: str = Field(description="Id for GET /images/{image_id}/masks/{mask_id}[/cutout].")
    group: str = Field(
        description="Garment group: upper_inner, outer, lower, one_piece, footwear, bag or headwear."
    )
    score: float = Field(description="Mean parsing probability of the group inside the mask (0..1).")
    area: int = Field(description="Mask area in original-image pixels.")
    bbox: tuple[int, int, int, int] = Field(
        description="(x0, y0, x1, y1) in original-image pixels, x1/y1 exclusive."
    )
    mask_png: str = Field(description="Base64 1-bit PNG of the mask at the working size, white = garment.")
    cutout_url: str = Field(description="URL of the RGBA cutout (alpha = mask) cropped to bbox.")


class ParseResponse(BaseModel):
    image_id: str
    width: int = Field(description=_WIDTH)
    height: int = Field(description=_HEIGHT)
    working_width: int = Field(description=_WORKING_W)
    working_height: int = Field(description=_WORKING_H)
    head: str = Field(description="Key of the parsing head (hash of its weights).")
    garments: list[ParsedGarment]


class GarmentDotOut(BaseModel):
    """One dot of ``GET /images/{image_id}/dots``: a garment the page can select with one press."""

    mask_id: str = Field(description="The garment's mask: GET /images/{image_id}/masks/{mask_id}[/cutout].")
    group: str = Field(
        description="Garment group: upper_inner, outer, lower, one_piece, footwear, bag or headwear."
    )
    x: int = Field(description="Dot column in image pixels: a pixel inside the garment's mask.")
    y: int = Field(description="Dot row in image pixels.")
    score: float = Field(description="Mean parsing probability of the group inside the mask (0..1).")
    area: int = Field(description="Mask area in pixels.")
    bbox: tuple[int, int, int, int] = Field(description="(x0, y0, x1, y1) in pixels, x1/y1 exclusive.")
    cutout_url: str = Field(description="URL of the RGBA cutout (alpha = mask): the image-search query.")


class DotsResponse(BaseModel):
    image_id: str
    width: int
    height: int
    head: str = Field(description="Key of the parsing head (hash of its weights).")
    dots: list[GarmentDotOut] = Field(description="Largest garment first; empty when none is confident.")


class Health(BaseModel):
    status: str
    model: str
    ranker: str
    cached_images: int
    models: list[LoadedModel] = Field(default_factory=list, description="Models this process has loaded.")


ErrorOut = _ErrorOut  # the one error body of every service (services.http)
