"""Person preprocessing for try-on: person mask, pose, garment region, agnostic mask.

Pipeline of named steps (each output can be dumped with :func:`dump_debug`):

1. ``image``: decode, EXIF orientation, RGB, resize so the longest side is
   ``max_side`` pixels (the backend's resolution).
2. ``person_mask``: MediaPipe selfie segmentation (``model_selection=1``,
   MediaPipe Selfie Segmentation model card, Apache-2.0) united with the
   segmentation output of MediaPipe Pose (BlazePose GHUM full, Apache-2.0);
   both ship in the ``mediapipe==0.10.21`` wheel. bool (H, W).
3. ``landmarks``: the 33 BlazePose landmarks, float32 (33, 3) = (x px, y px,
   visibility 0..1) in the resized image's pixel coordinates (origin top left).
4. ``garment_region``: the region the garment covers on the person for the
   category, a pose polygon (shoulders->hips for ``top``; hips->ankles for
   ``bottom``; shoulders->knees for ``one_piece``) intersected with the person
   mask, united with SAM's mask of the garment the person wears when a SAM
   backend is configured (``sam_region.py``: prompted from the landmarks; the
   pose polygon alone is the fallback), dilated. bool (H, W).
5. ``agnostic_mask``: the VITON-style clothing-agnostic mask: garment region
   plus the arms for tops and one-pieces, minus head/face and hands. bool (H, W).

Errors are :class:`TryOnInputError` (a ``ValueError``) with a human reason.
Results are cached in memory per (image sha256, category, max_side); with a
``cache_dir`` the model outputs (person mask + landmarks, SAM region per
category) are also cached on disk under ``cache_dir/<sha256>/<max_side>/`` as
``analysis.npz`` and ``sam_<category>.npz``, so a photo is analysed once per
installation, not once per process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from fittingroom.atomicio import atomic_write
from fittingroom.caching import BoundedLRU, byte_lru
from fittingroom.tryon.person_check import implausible_pose


class TryOnInputError(ValueError):
    """Bad try-on input (no person, person cropped, unreadable image...); ``reason`` is user facing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotAnImage(TryOnInputError):
    """The bytes are not a decodable image (HTTP 415)."""


class ImageTooLarge(TryOnInputError):
    """The image is over the pixel, side or aspect-ratio limits (HTTP 413)."""


class TryOnCategory(StrEnum):
    """Garment categories a try-on backend renders (``outerwear`` is rendered as ``top``)."""

    top = "top"
    bottom = "bottom"
    one_piece = "one_piece"


def normalize_category(value: str | None) -> TryOnCategory:
    """Map a catalog ``GarmentCategory`` value to a try-on category; raise TryOnInputError otherwise."""
    if value == "outerwear":
        return TryOnCategory.top
    try:
        return TryOnCategory(str(value))
    except ValueError:
        raise TryOnInputError(
            f"unsupported garment category {value!r}: try-on supports top, bottom, one_piece (outerwear as top)"
        ) from None


# BlazePose landmark indices (MediaPipe Pose model card).
NOSE = 0
L_SHOULDER, R_SHOULDER = 11, 12
L_ELBOW, R_ELBOW = 13, 14
L_WRIST, R_WRIST = 15, 16
HAND_POINTS = (15, 16, 17, 18, 19, 20, 21, 22)
FACE_POINTS = tuple(range(11))
L_HIP, R_HIP = 23, 24
L_KNEE, R_KNEE = 25, 26
L_ANKLE, R_ANKLE = 27, 28

REQUIRED_LANDMARKS: dict[TryOnCategory, tuple[int, ...]] = {
    TryOnCategory.top: (L_SHOULDER, R_SHOULDER, L_HIP, R_HIP),
    TryOnCategory.bottom: (L_HIP, R_HIP, L_KNEE, R_KNEE),
    TryOnCategory.one_piece: (L_SHOULDER, R_SHOULDER, L_HIP, R_HIP, L_KNEE, R_KNEE),
}
LANDMARK_NAMES = {
    L_SHOULDER: "left shoulder",
    R_SHOULDER: "right shoulder",
    L_HIP: "left hip",
    R_HIP: "right hip",
    L_KNEE: "left knee",
    R_KNEE: "right knee",
}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_image(data: bytes, *, max_side: int | None = None, max_pixels: int | None = None) -> Image.Image:
    """Decode bytes to an RGB(A kept) PIL image with EXIF orientation applied; optionally resize
    so the longest side is ``max_side`` px.

    Bounded like every decoded image (``fittingroom.images.decode_image``: size read from the
    header before decoding; ``max_pixels`` = ``TRYON_MAX_IMAGE_PIXELS``) and decoded straight to
    ``max_side`` (its ``working_side``: a big JPEG is downscaled in the DCT, never held at full
    size). Raises NotAnImage (415) when the bytes are not a readable image and ImageTooLarge (413)
    past the limits.
    """
    from fittingroom.images import ImageDecodeError
    from fittingroom.images import decode_image as bounded_decode

    try:
        img = bounded_decode(data, max_pixels=max_pixels, name="upload", working_side=max_side)
    except ImageDecodeError as e:
        if getattr(e, "too_large", False):
            raise ImageTooLarge(str(e)) from None
        raise NotAnImage(f"not a readable image: {e}") from None
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() or img.mode == "P" else "RGB")
    return img


@dataclass
class PersonPrep:
    """Output of :meth:`PersonPreprocessor.prepare` (arrays in the resized image's pixel grid)."""

    sha256: str
    category: TryOnCategory
    image: np.ndarray  # uint8 (H, W, 3) RGB
    person_mask: np.ndarray  # bool (H, W)
    landmarks: np.ndarray  # float32 (33, 3): x px, y px, visibility
    garment_region: np.ndarray  # bool (H, W)
    agnostic_mask: np.ndarray  # bool (H, W)
    face_box: tuple[int, int, int, int]  # x0, y0, x1, y1 px (exclusive end)
    keep_mask: np.ndarray  # bool (H, W): head + hands, never painted over
    timings: dict[str, float] = field(default_factory=dict)
    region_source: str = "pose"  # "sam" when SAM's mask of the worn garment was united in

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) px."""
        return self.image.shape[1], self.image.shape[0]


def _disk(r: float) -> np.ndarray:
    r = max(1, int(r))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _widen(a: np.ndarray, b: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Move two points apart symmetrically around their midpoint by ``factor`` of their distance."""
    mid = (a + b) / 2
    return mid + (a - mid) * factor, mid + (b - mid) * factor


class PersonPreprocessor:
    """MediaPipe-based person preprocessing with an in-memory LRU cache.

    :meth:`load` takes the shelf's person analyser (call it at start-up, not import);
    :meth:`prepare` is thread safe (MediaPipe graphs are used under a lock).
    """

    def __init__(
        self,
        *,
        max_side: int = 1024,
        min_visibility: float = 0.5,
        cache_size: int = 32,
        cache_bytes: int = 256 * 1024 * 1024,
        cache_dir: Path | None = None,
        sam_backend: Any = None,
        analyzer: Any = None,
        max_pixels: int | None = None,
        face_detector: Any = None,
    ) -> None:
        """``cache_size`` / ``cache_bytes``: bounds of the memory caches (analyses and prepared
        persons: at most ``cache_size`` entries each; bytes: prepared persons 1/2, analyses 1/4,
        SAM embeddings 1/4); ``cache_dir``: on-disk step cache (None = memory only); ``sam_backend``: a
        ``fittingroom.models.sam.SamBackend`` for the garment region (None = pose polygon only);
        ``analyzer``: a ``fittingroom.models.person.PersonAnalyzer`` (default: the shelf's);
        ``face_detector``: a ``fittingroom.tryon.person_check.FaceDetector`` (default: the shelf's,
        taken by :meth:`load`; None after a custom ``load`` = no face check)."""
        self.max_side = max_side
        self.max_pixels = max_pixels
        self.cache_dir = cache_dir
        self.sam_backend = sam_backend
        self.min_visibility = min_visibility
        self.cache_size = cache_size
        self._embeddings: BoundedLRU[str, Any] = byte_lru(max(1, cache_bytes // 4))
        self._cache: BoundedLRU[tuple[str, str, int], PersonPrep] = byte_lru(
            max(1, cache_bytes // 2), max_items=cache_size
        )
        self._analysis: BoundedLRU[tuple[str, str, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = (
            byte_lru(max(1, cache_bytes // 4), max_items=cache_size)
        )
        self._analyzer: Any = analyzer
        self.face_detector: Any = face_detector

    def load(self, shelf: Any = None) -> None:
        """Take the person analyser (MediaPipe selfie segmentation + pose) from the model ``shelf``
        (default: the process's), unless one was given; likewise the face detector of the person check."""
        from fittingroom.models.registry import default_shelf
        from fittingroom.models.specs import PERSON
        from fittingroom.tryon.person_check import FACE_DETECTOR

        if self._analyzer is None:
            self._analyzer = (shelf or default_shelf()).get(PERSON)
        if self.face_detector is None:
            self.face_detector = (shelf or default_shelf()).get(FACE_DETECTOR)

    def clear_cache(self) -> None:
        """Forget every cached analysis and preparation."""
        self._cache.clear()
        self._analysis.clear()
        self._embeddings.clear()

    def close(self) -> None:
        """Drop the reference to the analyser (the shelf owns and closes it)."""
        self._analyzer = None

    # ---- steps -------------------------------------------------------------------------------
    def _run_models(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        self.load()
        h, w = rgb.shape[:2]
        selfie, pose_seg, lm = self._analyzer.run(rgb)
        mask = selfie > 0.5 if selfie is not None else np.zeros((h, w), bool)
        if pose_seg is not None:
            mask = mask | (pose_seg > 0.5)
        return mask, lm

    def analyze(self, data: bytes, *, sha256: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Category-independent steps, cached per image hash: (RGB uint8 (H, W, 3), person mask bool
        (H, W), landmarks float32 (33, 3)). Raises TryOnInputError (not an image, no person, too small)."""
        digest = sha256 or sha256_bytes(data)
        key = (digest, "", self.max_side)
        hit = self._analysis.get(key)
        if hit is not None:
            return hit
        img = decode_image(data, max_side=self.max_side, max_pixels=self.max_pixels).convert("RGB")
        rgb = np.ascontiguousarray(np.asarray(img))
        disk = self._disk_path(digest, "analysis")
        cached = _load_masks(disk)
        lm: np.ndarray | None
        if (
            cached is not None
            and {"person_mask", "landmarks"} <= cached.keys()
            and cached["person_mask"].shape == rgb.shape[:2]
        ):
            person_mask, lm = cached["person_mask"], cached["landmarks"].astype(np.float32)
        else:
            person_mask, lm = self._run_models(rgb)
            check_person(person_mask, lm)
            assert lm is not None
            if self.face_detector is not None:
                from fittingroom.tryon.person_check import check_faces

                check_faces(self.face_detector.detect(rgb), lm, (rgb.shape[1], rgb.shape[0]))
            _save_masks(disk, person_mask=person_mask, landmarks=lm)
        assert lm is not None
        self._analysis.put(key, (rgb, person_mask, lm))
        return rgb, person_mask, lm

    def prepare(self, data: bytes, category: str | TryOnCategory, *, sha256: str | None = None) -> PersonPrep:
        """Preprocess one person photo for ``category``.

        Raises TryOnInputError: not an image, no person found, person too small,
        or the landmarks the category needs are not visible (person cropped).
        """
        import time

        cat = normalize_category(str(category))
        digest = sha256 or sha256_bytes(data)
        key = (digest, cat.value, self.max_side)
        hit_prep = self._cache.get(key)
        if hit_prep is not None:
            return hit_prep
        t0 = time.perf_counter()
        rgb, person_mask, lm = self.analyze(data, sha256=digest)
        t1 = time.perf_counter()
        refine = None
        if self.sam_backend is not None:

            def refine(prior: np.ndarray) -> np.ndarray | None:
                return self._sam_region(digest, rgb, lm, cat, prior)

        prep = build_person_prep(
            rgb, person_mask, lm, cat, digest, min_visibility=self.min_visibility, refine_region=refine
        )
        prep.timings = {"analyze_s": t1 - t0, "masks_s": time.perf_counter() - t1}
        self._cache.put(key, prep)
        return prep

    # ---- caches ------------------------------------------------------------------------------
    def _disk_path(self, digest: str, step: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / digest[:2] / digest / str(self.max_side) / f"{STEP_CACHE_VERSION}-{step}.npz"

    def _sam_region(
        self, digest: str, rgb: np.ndarray, lm: np.ndarray, cat: TryOnCategory, prior: np.ndarray
    ) -> np.ndarray | None:
        """SAM garment region for ``cat`` (cached on disk; None = SAM disagreed with the pose prior)."""
        from fittingroom.tryon.sam_region import sam_garment_region

        disk = self._disk_path(digest, f"sam_{cat.value}")
        cached = _load_masks(disk)
        if cached is not None:
            m = cached["region"]
            return m if m.shape == prior.shape and m.any() else None
        emb = self._embeddings.get(digest)
        if emb is None:
            emb = self.sam_backend.embed(Image.fromarray(rgb))
            self._embeddings.put(digest, emb)
        region = sam_garment_region(self.sam_backend, rgb, lm, cat.value, prior, embedding=emb)
        _save_masks(disk, region=region if region is not None else np.zeros_like(prior))
        return region


#: Bump when a cached step's meaning changes (old cache files are then ignored).
STEP_CACHE_VERSION = "v2"


def _save_masks(path: Path | None, **arrays: np.ndarray) -> None:
    """Write bool masks (bit-packed) and float arrays to ``path`` atomically; no-op for None."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, np.ndarray] = {}
    for name, arr in arrays.items():
        if arr.dtype == bool:
            payload[f"{name}__bits"] = np.packbits(arr)
            payload[f"{name}__shape"] = np.array(arr.shape)
        else:
            payload[name] = arr
    atomic_write(path, lambda f: np.savez_compressed(f, **payload), fsync=False)  # type: ignore[arg-type]


def _load_masks(path: Path | None) -> dict[str, np.ndarray] | None:
    """Read what :func:`_save_masks` wrote; None when absent or unreadable (then recomputed)."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path) as z:
            out: dict[str, np.ndarray] = {}
            for key in z.files:
                if key.endswith("__bits"):
                    name = key.removesuffix("__bits")
                    shape = tuple(int(v) for v in z[f"{name}__shape"])
                    out[name] = np.unpackbits(z[key])[: int(np.prod(shape))].reshape(shape).astype(bool)
                elif not key.endswith("__shape"):
                    out[key] = z[key]
            return out
    except (OSError, ValueError, KeyError):
        return None


def waist_rise(landmarks: np.ndarray, min_visibility: float = 0.5) -> float:
    """Pixels from the hip joints (BlazePose 23/24) up to the waistband: 22 % of the torso length when the
    shoulders are visible, else 45 % of the hip-joint distance."""
    p = landmarks[:, :2]
    if min(landmarks[L_SHOULDER, 2], landmarks[R_SHOULDER, 2]) >= min_visibility:
        torso = float(np.linalg.norm((p[L_HIP] + p[R_HIP]) / 2 - (p[L_SHOULDER] + p[R_SHOULDER]) / 2))
        return 0.22 * torso
    return 0.45 * float(np.linalg.norm(p[L_HIP] - p[R_HIP]))


def check_person(
    person_mask: np.ndarray, landmarks: np.ndarray | None, *, min_person_share: float = 0.02
) -> None:
    """Raise TryOnInputError when no person was found or the person is too small."""
    if landmarks is None or person_mask.mean() < 0.005:
        raise TryOnInputError("no person found in the photo: upload a photo showing one person")
    if person_mask.mean() < min_person_share:
        raise TryOnInputError(
            f"the person is too small in the photo ({person_mask.mean():.1%} of the image): move closer"
        )
    n, _, stats, _ = cv2.connectedComponentsWithStats(person_mask.astype(np.uint8), connectivity=8)
    areas = sorted(stats[1:, cv2.CC_STAT_AREA], reverse=True)
    if len(areas) >= 2 and areas[1] >= 0.5 * areas[0] and areas[1] >= min_person_share * person_mask.size:
        raise TryOnInputError("more than one person in the photo: upload a photo showing only you")


def build_person_prep(
    rgb: np.ndarray,
    person_mask: np.ndarray,
    landmarks: np.ndarray | None,
    category: TryOnCategory,
    sha256: str,
    *,
    min_visibility: float = 0.5,
    min_person_share: float = 0.02,
    refine_region: Callable[[np.ndarray], np.ndarray | None] | None = None,
) -> PersonPrep:
    """Pure-NumPy/OpenCV part of the pipeline (garment region, agnostic mask) from model outputs.

    ``refine_region(prior)`` may return a bool (H, W) mask of the garment actually worn (SAM),
    united with the pose region ``prior`` inside the (slightly dilated) silhouette.
    """
    h, w = person_mask.shape
    check_person(person_mask, landmarks, min_person_share=min_person_share)
    assert landmarks is not None
    missing = [
        LANDMARK_NAMES.get(i, str(i))
        for i in REQUIRED_LANDMARKS[category]
        if landmarks[i, 2] < min_visibility
        or not (-0.02 * w <= landmarks[i, 0] <= 1.02 * w and -0.02 * h <= landmarks[i, 1] <= 1.02 * h)
    ]
    if missing:
        raise TryOnInputError(
            f"the person is cropped or hidden: {', '.join(missing)} not visible, needed for a {category.value}"
        )
    p = landmarks[:, :2]
    shoulder_w = float(np.linalg.norm(p[L_SHOULDER] - p[R_SHOULDER]))
    hip_w = float(np.linalg.norm(p[L_HIP] - p[R_HIP]))
    scale = max(shoulder_w, hip_w * 1.3, 0.05 * max(h, w))
    if scale < 0.04 * w and shoulder_w < 12:
        raise TryOnInputError("the person is too small in the photo: move closer")
    if category is not TryOnCategory.bottom:
        torso_len = float(np.linalg.norm((p[L_HIP] + p[R_HIP]) / 2 - (p[L_SHOULDER] + p[R_SHOULDER]) / 2))
        if shoulder_w < 0.25 * torso_len:
            raise TryOnInputError(
                "the pose cannot carry the garment: the person is turned sideways (shoulders overlap); "
                "upload a photo facing the camera"
            )
        if torso_len < 0.3 * shoulder_w or p[L_HIP, 1] + p[R_HIP, 1] < p[L_SHOULDER, 1] + p[R_SHOULDER, 1]:
            raise TryOnInputError(
                "the pose cannot carry the garment: the person is lying or upside down; upload a photo standing"
            )
    reason = implausible_pose(landmarks, category.value, min_visibility)
    if reason is not None:
        raise TryOnInputError(reason)

    region = np.zeros((h, w), np.uint8)
    if category in (TryOnCategory.top, TryOnCategory.one_piece):
        ls, rs = _widen(p[L_SHOULDER], p[R_SHOULDER], 1.25)
        lh, rh = _widen(p[L_HIP], p[R_HIP], 1.6)
        torso_len = float(np.linalg.norm((p[L_HIP] + p[R_HIP]) / 2 - (p[L_SHOULDER] + p[R_SHOULDER]) / 2))
        if category is TryOnCategory.top:
            down = np.array([0, 0.12 * torso_len])
            pts = [ls, rs, rh + down, lh + down]
        else:
            lk, rk = _widen(p[L_KNEE], p[R_KNEE], 1.8)
            pts = [ls, rs, rh, rk, lk, lh]
        # raise the neckline slightly above the shoulder line
        up = np.array([0, -0.08 * scale])
        pts = [pts[0] + up, pts[1] + up, *pts[2:]]
        cv2.fillConvexPoly(region, cv2.convexHull(np.array(pts, np.int32)), (1,))
    else:
        lh, rh = _widen(p[L_HIP], p[R_HIP], 1.7)
        up = np.array([0, -waist_rise(landmarks, min_visibility)])
        lows = []
        for knee, ankle in ((L_KNEE, L_ANKLE), (R_KNEE, R_ANKLE)):
            if landmarks[ankle, 2] >= min_visibility:
                lows.append(p[ankle])
            else:  # ankles cropped: extend the leg to the image border
                lows.append(p[knee] + (p[knee] - p[L_HIP if knee == L_KNEE else R_HIP]))
        la, ra = _widen(lows[0], lows[1], 1.5)
        lk, rk = _widen(p[L_KNEE], p[R_KNEE], 1.6)
        pts = [lh + up, rh + up, rk, ra, la, lk]
        cv2.fillConvexPoly(region, cv2.convexHull(np.array(pts, np.int32)), (1,))

    person_u8 = person_mask.astype(np.uint8)
    body = np.asarray(cv2.dilate(person_u8, _disk(0.02 * scale)), np.uint8)
    if category is not TryOnCategory.top:
        # skirts and dresses are wider than the legs: below the hips keep the pose polygon itself
        hip_y = int(min(p[L_HIP, 1], p[R_HIP, 1]))
        body[max(0, hip_y) :] = 1
    region = np.asarray(region & body, np.uint8)
    source = "pose"
    if refine_region is not None:
        worn = refine_region(region.astype(bool))
        if worn is not None:
            worn_u8 = worn.astype(np.uint8)
            # beyond the hip line the pose polygon is a guess: there keep only what SAM says is the
            # garment worn, so the other garment (skirt under a top, top above trousers) is preserved
            hip_y = int(round((p[L_HIP, 1] + p[R_HIP, 1]) / 2))
            near = np.asarray(cv2.dilate(worn_u8, _disk(0.04 * scale)), np.uint8)
            if category is TryOnCategory.top:
                region[max(0, hip_y) :] &= near[max(0, hip_y) :]
            elif category is TryOnCategory.bottom:
                waist_y = max(0, int(hip_y - waist_rise(landmarks, min_visibility)))
                region[:waist_y] &= near[:waist_y]
            region |= worn_u8 & body
            source = "sam"
    region = np.asarray(cv2.dilate(region, _disk(0.03 * scale)), np.uint8)

    # head and hands are kept (never painted)
    keep = np.zeros((h, w), np.uint8)
    face = p[list(FACE_POINTS)][landmarks[list(FACE_POINTS), 2] >= min_visibility * 0.6]
    if len(face) == 0:
        face = p[[NOSE]]
    fx0, fy0 = face.min(0)
    fx1, fy1 = face.max(0)
    pad = 0.25 * scale
    neck_y = min(p[L_SHOULDER, 1], p[R_SHOULDER, 1]) - 0.12 * scale
    x0, x1 = int(max(0, fx0 - pad)), int(min(w, fx1 + pad))
    y0, y1 = int(max(0, fy0 - 1.6 * pad)), int(min(h, max(fy1 + pad, neck_y)))
    y1 = max(y1, y0 + 1)
    face_box = (x0, y0, max(x1, x0 + 1), y1)
    keep[y0:y1, x0:x1] = 1
    keep &= cv2.dilate(person_u8, _disk(0.05 * scale)) | (region == 0).astype(np.uint8)
    for i in HAND_POINTS:
        if landmarks[i, 2] >= min_visibility * 0.6:
            cv2.circle(keep, tuple(int(v) for v in p[i]), int(0.13 * scale), (1,), -1)

    agnostic = region.copy()
    if category in (TryOnCategory.top, TryOnCategory.one_piece):
        arms = np.zeros((h, w), np.uint8)
        for s, e, wr in ((L_SHOULDER, L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW, R_WRIST)):
            chain = [p[s]] + [p[j] for j in (e, wr) if landmarks[j, 2] >= min_visibility * 0.6]
            for a, b in zip(chain, chain[1:], strict=False):
                cv2.line(arms, tuple(int(v) for v in a), tuple(int(v) for v in b), (1,), int(0.3 * scale))
        agnostic |= arms & np.asarray(cv2.dilate(person_u8, _disk(0.02 * scale)), np.uint8)
    not_keep = (keep == 0).astype(np.uint8)
    agnostic &= not_keep
    region &= not_keep
    return PersonPrep(
        sha256=sha256,
        category=category,
        image=rgb,
        person_mask=person_mask.astype(bool),
        landmarks=landmarks,
        garment_region=region.astype(bool),
        agnostic_mask=agnostic.astype(bool),
        face_box=face_box,
        keep_mask=keep.astype(bool),
        region_source=source,
    )


def overlay(rgb: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (255, 0, 0)) -> np.ndarray:
    """RGB uint8 image with ``mask`` tinted in ``color`` (debug views)."""
    out = rgb.astype(np.float32).copy()
    out[mask] = 0.5 * out[mask] + 0.5 * np.array(color, np.float32)
    return out.astype(np.uint8)


def dump_debug(prep: PersonPrep, directory: Path) -> list[Path]:
    """Write each step's output as a PNG into ``directory``; returns the written paths."""
    directory.mkdir(parents=True, exist_ok=True)
    pose = prep.image.copy()
    for x, y, v in prep.landmarks:
        if v >= 0.5:
            cv2.circle(pose, (int(x), int(y)), 5, (0, 255, 0), -1)
    x0, y0, x1, y1 = prep.face_box
    cv2.rectangle(pose, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 0), 2)
    views = {
        "person_image": prep.image,
        "person_mask": overlay(prep.image, prep.person_mask, (0, 0, 255)),
        "person_pose": pose,
        "garment_region": overlay(prep.image, prep.garment_region),
        "agnostic_mask": overlay(prep.image, prep.agnostic_mask, (128, 128, 128)),
    }
    paths = []
    for name, arr in views.items():
        path = directory / f"{name}.png"
        Image.fromarray(arr).save(path)
        paths.append(path)
    return paths
