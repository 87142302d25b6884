"""Segmentation service logic, shared by the HTTP app, the CLI and the evaluation.

Coordinates: point and box prompts, ``width``/``height``, mask ``bbox`` and ``area`` are in
pixels of the *original* upload (EXIF orientation applied). The service keeps each photo at its
working resolution (longest side ``FITTINGROOM_WORKING_SIDE``, decoded straight to it) and maps
prompts into it; the masks themselves (``Segment.mask``, mask PNGs, cutouts) are rasters at the
working size (``ImageEntry.image.size``), which equals the original for photos no bigger.

``SegmentationService`` keeps, per uploaded image (``image_id`` = sha256 of the
bytes): the decoded RGB image, its SAM embedding and the ranker's per-image cues
(person mask, pose). They are computed once and cached in memory (LRU bounded by
``SEGMENTATION_MEMORY_CACHE_MB`` and ``SEGMENTATION_MEMORY_CACHE_SIZE`` images) and on disk (image bytes and
embedding keyed by ``(image_id, model_key)``), so a click costs only the prompt
decoder and the ranking. Entries are immutable once built and each carries its
own embedding: concurrent requests on different images cannot mix embeddings,
and concurrent uploads of the same image compute it once (a lock per image_id).

All methods are blocking; the app calls them in a worker thread.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import logging
import math
import threading
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from fittingroom.caching import BoundedLRU, byte_lru, mib
from fittingroom.images import NEUTRAL_BACKGROUND, ImageDecodeError, decode_image_sized, sha256_bytes
from fittingroom.models.parsing import ParsingHead, ParsingMap
from fittingroom.models.registry import ModelShelf
from fittingroom.models.sam import ImageEmbedding, SamBackend
from fittingroom.segmentation.backend import parsing_head, sam_backend
from fittingroom.segmentation.cache import DiskCache, is_safe_id
from fittingroom.segmentation.garments import GarmentDot, GarmentRegion, garment_dots, garment_regions
from fittingroom.segmentation.ranking import RankedMask, Ranker, make_ranker
from fittingroom.segmentation.settings import SegmentationSettings
from fittingroom.settings import CoreSettings, get_settings

log = logging.getLogger(__name__)


class SegmentationError(Exception):
    """Base of the errors the service reports to clients; ``status_code`` is the HTTP status."""

    status_code = 400


class NotAnImage(SegmentationError):
    status_code = 415


class ImageTooLarge(SegmentationError):
    status_code = 413


class UnknownImage(SegmentationError):
    status_code = 404


class UnknownMask(SegmentationError):
    status_code = 404


class InvalidPrompt(SegmentationError):
    status_code = 422


class ParsingUnavailable(SegmentationError):
    """The service runs without the parsing head (``SEGMENTATION_PARSING=false``)."""

    status_code = 503


@dataclass(frozen=True)
class ImageEntry:
    """One uploaded image with everything a click needs.

    ``image`` is the working-resolution RGB copy (EXIF orientation applied); ``original_size``
    the (width, height) of the upload (None: the same as ``image``).
    """

    image_id: str
    image: Image.Image  # RGB, EXIF orientation applied, at the working resolution
    embedding: ImageEmbedding
    cues: Any  # ranker-specific per-image analysis (e.g. PersonAnalysis), may be None
    parsing: ParsingMap | None = None  # garment parsing (None without a parsing head)
    original_size: tuple[int, int] | None = None

    @property
    def width(self) -> int:
        """Width of the original upload in pixels (the space of prompts and boxes)."""
        return (self.original_size or self.image.size)[0]

    @property
    def height(self) -> int:
        """Height of the original upload in pixels."""
        return (self.original_size or self.image.size)[1]

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy): working pixels per original pixel (1.0 when kept at full size)."""
        return (self.image.width / self.width, self.image.height / self.height)

    def to_working(self, xy: np.ndarray) -> np.ndarray:
        """Float ``[..., 2]`` (x, y) original pixels -> working pixels (continuous, clipped inside)."""
        sx, sy = self.scale
        out = np.asarray(xy, dtype=np.float64) * np.array([sx, sy])
        return np.minimum(out, np.array([self.image.width, self.image.height]) - 1e-6)

    def box_to_original(self, bbox: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """Integer box (x0, y0, x1, y1; x1/y1 exclusive) of working pixels -> the original pixels
        it covers (floor/ceil, within the image); (0, 0, 0, 0) stays empty."""
        if bbox == (0, 0, 0, 0):
            return bbox
        sx, sy = self.scale
        x0, y0, x1, y1 = bbox
        return (
            max(0, math.floor(x0 / sx + 1e-9)),
            max(0, math.floor(y0 / sy + 1e-9)),
            min(self.width, math.ceil(x1 / sx - 1e-9)),
            min(self.height, math.ceil(y1 / sy - 1e-9)),
        )

    def area_to_original(self, area: int) -> int:
        """A mask area in working pixels -> original pixels (rounded)."""
        sx, sy = self.scale
        return int(round(area / (sx * sy)))


@dataclass(frozen=True)
class Segment:
    """A ranked candidate mask returned to the client."""

    mask_id: str
    rank: int
    score: float
    predicted_iou: float
    area: int  # original-image pixels
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) in original-image pixels
    mask: np.ndarray  # bool [h, w] at the working resolution (ImageEntry.image.size)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box (x0, y0, x1, y1), x1/y1 exclusive, of a non-empty bool mask; (0, 0, 0, 0) if empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(xs) == 0:
        return (0, 0, 0, 0)
    return (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)


def to_image_pixels(dot: GarmentDot, size: tuple[int, int]) -> GarmentDot:
    """The one place parsing-map pixels become image pixels: ``dot`` (its point and its region's
    bbox and area in the parsing map's frame) scaled to an image of ``size`` = (width, height); unchanged
    when the map is at image size (today's case). The point stays inside the image."""
    h, w = dot.region.mask.shape
    width, height = size
    if (w, h) == (width, height):
        return dot
    sx, sy = width / w, height / h
    x0, y0, x1, y1 = dot.region.bbox
    bbox = (int(x0 * sx), int(y0 * sy), min(width, round(x1 * sx)), min(height, round(y1 * sy)))
    region = replace(dot.region, bbox=bbox, area=round(dot.region.area * sx * sy))
    x = min(width - 1, int((dot.x + 0.5) * sx))
    y = min(height - 1, int((dot.y + 0.5) * sy))
    return GarmentDot(region, x, y)


def mask_to_png(mask: np.ndarray) -> bytes:
    """bool ``[H, W]`` -> 1-bit PNG bytes (white = mask)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(mask, dtype=bool)).save(buf, format="PNG")
    return buf.getvalue()


def mask_to_png_base64(mask: np.ndarray) -> str:
    return base64.b64encode(mask_to_png(mask)).decode("ascii")


def make_cutout(image: Image.Image, mask: np.ndarray) -> Image.Image:
    """RGBA image cropped to the mask's box: alpha = mask (255 in, 0 out).

    Pixels outside the mask are set to the neutral background colour as well, so
    viewers that ignore alpha show the garment on white. Raises ValueError on an empty mask.
    """
    x0, y0, x1, y1 = mask_bbox(mask)
    if x1 <= x0 or y1 <= y0:
        raise ValueError("the mask is empty")
    rgb = np.array(image.convert("RGB"))[y0:y1, x0:x1]
    alpha = mask[y0:y1, x0:x1]
    rgb[~alpha] = NEUTRAL_BACKGROUND
    rgba = np.dstack([rgb, alpha.astype(np.uint8) * 255])
    return Image.fromarray(rgba, mode="RGBA")


class SegmentationService:
    """Upload an image once, then click: candidates ranked so the garment comes first.

    Give ``backend`` / ``ranker`` / ``parser`` to inject models (tests); otherwise they come from
    the model ``shelf`` (default: the process's) as ``settings`` name them (call at start-up). The
    parsing head loads from ``SEGMENTATION_PARSING_HEAD`` when ``SEGMENTATION_PARSING`` is on and
    the backend is not injected (an injected backend runs without a head unless ``parser`` is
    given); a missing or corrupt head file raises ``ParsingHeadError`` naming the file and the
    command that rebuilds it.
    """

    def __init__(
        self,
        settings: SegmentationSettings | None = None,
        *,
        core: CoreSettings | None = None,
        backend: SamBackend | None = None,
        ranker: Ranker | None = None,
        parser: ParsingHead | None = None,
        shelf: ModelShelf | None = None,
    ) -> None:
        self.settings = settings or SegmentationSettings()
        core = core or get_settings()
        #: Longest side (px) photos are kept at (FITTINGROOM_WORKING_SIDE).
        self.working_side = core.working_side
        if parser is None and backend is None and self.settings.parsing:
            parser = parsing_head(self.settings, shelf=shelf)
            log.info("parsing head %s loaded from %s", parser.key, self.settings.resolved_parsing_head())
        elif parser is None:
            log.info(
                "segmentation runs without the parsing head (SEGMENTATION_PARSING=%s)", self.settings.parsing
            )
        self.parser = parser
        self.backend = backend or sam_backend(self.settings, core, shelf=shelf)
        self.ranker = ranker or make_ranker(self.settings, shelf=shelf)
        self.disk = DiskCache(
            self.settings.resolved_cache_dir(core) if self.settings.disk_cache else None,
            max_bytes=mib(self.settings.disk_cache_mb),
        )
        self._entries: BoundedLRU[str, ImageEntry] = byte_lru(
            mib(self.settings.memory_cache_mb), max_items=self.settings.memory_cache_size
        )
        self._masks: BoundedLRU[tuple[str, str], np.ndarray] = byte_lru(
            mib(self.settings.mask_cache_mb * 0.75)
        )
        self._logits: BoundedLRU[tuple[str, str], np.ndarray] = byte_lru(
            mib(self.settings.mask_cache_mb * 0.25)
        )
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._stats_lock = threading.Lock()
        #: Number of image-encoder runs (cache misses), for tests and monitoring.
        self.encoder_runs = 0

    @property
    def cached_images(self) -> int:
        """Images currently held in the memory LRU."""
        return len(self._entries)

    # ------------------------------------------------------------------ images
    def _decode(self, data: bytes, name: str = "upload") -> tuple[Image.Image, tuple[int, int]]:
        """RGB image at the working resolution and the original (width, height)."""
        if len(data) > self.settings.max_upload_bytes:
            raise ImageTooLarge(
                f"{name}: {len(data)} bytes exceeds the upload limit of {self.settings.max_upload_bytes} bytes"
            )
        try:
            img, full = decode_image_sized(
                data, max_pixels=self.settings.max_pixels, name=name, working_side=self.working_side
            )
        except ImageDecodeError as exc:
            if "exceeds the limit" in str(exc):
                raise ImageTooLarge(str(exc)) from exc
            raise NotAnImage(str(exc)) from exc
        return img.convert("RGB"), full

    def _lock_for(self, image_id: str) -> threading.Lock:
        with self._locks_guard:
            if len(self._locks) > 4 * self.settings.memory_cache_size:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            return self._locks.setdefault(image_id, threading.Lock())

    def _build_entry(self, image_id: str, image: Image.Image, full: tuple[int, int]) -> ImageEntry:
        embedding = self.disk.get_embedding(image_id, self.backend.model_key)
        if embedding is None or embedding.original_size != (image.height, image.width):
            embedding = self.backend.embed(image)
            with self._stats_lock:
                self.encoder_runs += 1
            self.disk.put_embedding(image_id, embedding)
        cues = self.ranker.analyze(image)
        return ImageEntry(
            image_id=image_id,
            image=image,
            embedding=embedding,
            cues=cues,
            parsing=self._parse(image_id, embedding),
            original_size=full,
        )

    def _parse(self, image_id: str, embedding: ImageEmbedding) -> ParsingMap | None:
        """The parsing head's map of an image: its probabilities come from the disk cache or one head run."""
        if self.parser is None:
            return None
        probs = self.disk.get_parsing(image_id, embedding.model_key, self.parser.key)
        if probs is None or probs.ndim != 3:
            probs = self.parser.predict_probs(embedding.features)
            self.disk.put_parsing(image_id, embedding.model_key, self.parser.key, probs)
        return self.parser.from_probs(
            probs, embedding.input_size, embedding.original_size, self.backend.image_size
        )

    def add_image(self, data: bytes, name: str = "upload") -> ImageEntry:
        """Validate, store and embed an uploaded image (idempotent: same bytes -> same entry).

        Raises ImageTooLarge (413) or NotAnImage (415).
        """
        image, full = self._decode(data, name)
        image_id = sha256_bytes(data)
        with self._lock_for(image_id):
            entry = self._entries.get(image_id)
            if entry is None:
                self.disk.put_image(image_id, data)
                entry = self._build_entry(image_id, image, full)
                self._entries.put(image_id, entry)
        return entry

    def entry(self, image_id: str) -> ImageEntry:
        """The cached entry of ``image_id``, rebuilt from the disk cache if needed; raises UnknownImage."""
        entry = self._entries.get(image_id)
        if entry is not None:
            return entry
        if not is_safe_id(image_id):
            raise UnknownImage(f"unknown image_id {image_id!r}: upload the image with POST /images first")
        with self._lock_for(image_id):
            entry = self._entries.get(image_id)
            if entry is None:
                data = self.disk.get_image(image_id)
                if data is None or sha256_bytes(data) != image_id:
                    raise UnknownImage(
                        f"unknown image_id {image_id!r}: upload the image with POST /images first"
                    )
                entry = self._build_entry(image_id, *self._decode(data, image_id))
                self._entries.put(image_id, entry)
        return entry

    # ------------------------------------------------------------------ masks
    def validate_prompt(
        self,
        entry: ImageEntry,
        points: np.ndarray,
        labels: np.ndarray,
        box: np.ndarray | None,
    ) -> None:
        """Raise InvalidPrompt unless the prompt (original-image pixels) is usable on this image."""
        w, h = entry.width, entry.height
        if len(points) == 0:
            raise InvalidPrompt("at least one point is required")
        if len(points) > self.settings.max_points:
            raise InvalidPrompt(f"{len(points)} points exceed the limit of {self.settings.max_points}")
        for i, ((x, y), lab) in enumerate(zip(points, labels, strict=True)):
            if not (np.isfinite(x) and np.isfinite(y) and 0 <= x < w and 0 <= y < h):
                raise InvalidPrompt(f"point {i} ({x:g}, {y:g}) lies outside the {w}x{h} image")
            if lab not in (0, 1):
                raise InvalidPrompt(f"point {i}: label must be 1 (include) or 0 (exclude), got {lab}")
        if not (labels == 1).any():
            raise InvalidPrompt("no positive point: give at least one point with label 1 (include)")
        if box is not None:
            x0, y0, x1, y1 = (float(v) for v in box)
            if not all(np.isfinite(box)) or not (x1 > x0 and y1 > y0):
                raise InvalidPrompt(
                    f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is empty: need x0 < x1 and y0 < y1"
                )
            if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
                raise InvalidPrompt(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {w}x{h} image")

    def segment(
        self,
        image_id: str,
        points: np.ndarray | list,
        labels: np.ndarray | list,
        box: np.ndarray | list | tuple | None = None,
        previous_mask_id: str | None = None,
    ) -> list[Segment]:
        """Candidate masks for a prompt, best first (at most ``max_candidates``).

        ``points`` float ``[N, 2]`` (x, y) and ``labels`` int ``[N]`` (1 include, 0 exclude)
        in original-image pixels; ``box`` optional (x0, y0, x1, y1), original pixels too; both
        are mapped to the working resolution. ``previous_mask_id`` optional: a mask returned
        earlier for this image that the new points correct (its SAM logits become the mask
        prompt). Each ``Segment`` has ``bbox``/``area`` in original pixels and ``mask`` at the
        working size.
        Raises UnknownImage (404), UnknownMask (404, unknown ``previous_mask_id``) or
        InvalidPrompt (422).
        """
        entry = self.entry(image_id)
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        labs = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labs) != len(pts):
            raise InvalidPrompt(f"{len(pts)} points but {len(labs)} labels")
        bx = None if box is None else np.asarray(box, dtype=np.float64).reshape(4)
        self.validate_prompt(entry, pts, labs, bx)
        mask_input = None if previous_mask_id is None else self.mask_logits(image_id, previous_mask_id)
        work_pts = entry.to_working(pts)
        work_box = None if bx is None else entry.to_working(bx.reshape(2, 2)).reshape(4)
        ranked: list[RankedMask] = self.ranker.rank(
            self.backend,
            entry.embedding,
            work_pts,
            labs,
            work_box,
            entry.cues,
            limit=self.settings.max_candidates,
            mask_input=mask_input,
            parsing=entry.parsing,
        )
        head = self.parser.key if entry.parsing is not None and self.parser is not None else ""
        key = hashlib.sha256(
            f"{self.backend.model_key}|{self.ranker.name}{head}|{pts.tolist()}|{labs.tolist()}|"
            f"{None if bx is None else bx.tolist()}|{previous_mask_id}|{entry.image.size}".encode()
        ).hexdigest()[:16]
        out = []
        for rank, cand in enumerate(ranked):
            mask_id = f"{key}-{rank}"
            self._masks.put((image_id, mask_id), cand.mask)
            self.disk.put_mask(image_id, mask_id, cand.mask)
            if cand.low_res_logits is not None:
                self._logits.put((image_id, mask_id), cand.low_res_logits)
                self.disk.put_logits(image_id, mask_id, cand.low_res_logits)
            out.append(
                Segment(
                    mask_id=mask_id,
                    rank=rank,
                    score=float(cand.score),
                    predicted_iou=float(cand.predicted_iou),
                    area=entry.area_to_original(int(cand.mask.sum())),
                    bbox=entry.box_to_original(mask_bbox(cand.mask)),
                    mask=cand.mask,
                )
            )
        return out

    def parse(self, image_id: str) -> list[tuple[str, GarmentRegion]]:
        """The garments of an uploaded photo, largest first, each with a ``mask_id``.

        The masks are kept like click masks, so ``GET /images/{id}/masks/{mask_id}[/cutout]`` serves
        them; each region's ``bbox``/``area`` are in original pixels, its ``mask`` at the working
        size. Raises UnknownImage (404) or ParsingUnavailable (503, no parsing head).
        """
        entry = self.entry(image_id)
        return [
            (
                mask_id,
                dataclasses.replace(
                    region, bbox=entry.box_to_original(region.bbox), area=entry.area_to_original(region.area)
                ),
            )
            for mask_id, region in self._working_regions(image_id)
        ]

    def _working_regions(self, image_id: str) -> list[tuple[str, GarmentRegion]]:
        """:meth:`parse` with every region in working pixels (mask, bbox and area alike)."""
        entry = self.entry(image_id)
        if entry.parsing is None:
            raise ParsingUnavailable(
                "garment parsing is off: the service runs without the parsing head (SEGMENTATION_PARSING)"
            )
        out = []
        for region in garment_regions(entry.parsing):
            mask_id = f"parse-{entry.parsing.head_key}-{region.group.name}"
            if (image_id, mask_id) not in self._masks:
                self._masks.put((image_id, mask_id), region.mask)
                self.disk.put_mask(image_id, mask_id, region.mask)
            out.append((mask_id, region))
        return out

    def dots(self, image_id: str) -> list[tuple[str, GarmentDot]]:
        """The garments of :meth:`parse` confident enough for a dot (``garment_dots``), largest
        first, each with its ``mask_id``; the dot's ``(x, y)`` and the region's bbox are in the
        uploaded image's pixels (EXIF orientation applied), the frame of point prompts; the
        region's mask stays at the working size. Raises UnknownImage (404) or ParsingUnavailable (503)."""
        entry = self.entry(image_id)
        parsed = self._working_regions(image_id)
        ids = {id(region): mask_id for mask_id, region in parsed}
        return [
            (ids[id(d.region)], to_image_pixels(d, (entry.width, entry.height)))
            for d in garment_dots([region for _, region in parsed])
        ]

    def mask(self, image_id: str, mask_id: str) -> np.ndarray:
        """A mask returned earlier by :meth:`segment`; raises UnknownImage / UnknownMask."""
        entry = self.entry(image_id)
        mask = self._masks.get((image_id, mask_id))
        if mask is None:
            mask = self.disk.get_mask(image_id, mask_id)
            if mask is None or mask.shape != (entry.image.height, entry.image.width):
                raise UnknownMask(f"unknown mask_id {mask_id!r} for image {image_id}")
            self._masks.put((image_id, mask_id), mask)
        return mask

    def mask_logits(self, image_id: str, mask_id: str) -> np.ndarray:
        """SAM low-res logits of a mask returned earlier (float32 ``[S/4, S/4]``).

        Raises UnknownImage, or UnknownMask when the mask is unknown or has no logits.
        """
        self.entry(image_id)
        logits = self._logits.get((image_id, mask_id))
        if logits is None:
            logits = self.disk.get_logits(image_id, mask_id)
            if logits is None:
                raise UnknownMask(
                    f"unknown previous_mask_id {mask_id!r} for image {image_id}: "
                    "use a mask_id returned earlier for this image"
                )
            self._logits.put((image_id, mask_id), logits)
        return logits

    def cutout(self, image_id: str, mask_id: str) -> Image.Image:
        """RGBA cutout (alpha = mask) cropped to the mask box; raises UnknownImage / UnknownMask."""
        mask = self.mask(image_id, mask_id)
        if not mask.any():
            raise UnknownMask(f"mask {mask_id!r} is empty")
        return make_cutout(self.entry(image_id).image, mask)
