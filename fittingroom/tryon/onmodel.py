"""Garment sources from on-model catalog photos: the worn garment cut out of the model photo.

Steps, for a product photo showing a model wearing the garment (Luma apparel images):

1. Person analysis of the photo (the shelf's ``PersonAnalyzer``: MediaPipe selfie segmentation +
   BlazePose landmarks, float32 (33, 3) = x px, y px, visibility). No face check: catalog photos
   are often cropped at the neck or the waist.
2. A pose prior of the garment region for the product's category (the same polygon the person
   pipeline uses, ``person.build_person_prep``), and for tops the arms up to the wrists (sleeves).
3. SAM (``fittingroom.segmentation.backend.sam_backend``) prompted from the landmarks: positive
   points on the garment's body parts (torso thirds for tops; the thighs for bottoms; chest and
   thighs for one-pieces), negative points on the face and on the other garment; box = the prior's
   bounding box. The candidate agreeing most with the prior is kept; when none agrees (or SAM is not
   configured) the prior itself is the mask.
4. The mask, inside the person silhouette and without head and hands, gives an RGBA cut-out cropped
   to its bounding box, and the model's landmarks move into the crop's coordinates: the preview
   renderer then maps body anchors of the model onto the same anchors of the person (pose to pose).

Raises :class:`~fittingroom.tryon.person.TryOnInputError` when no model, or not the landmarks the
category needs, or no garment is found.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np
from PIL import Image

from fittingroom.caching import BoundedLRU, MiB, byte_lru
from fittingroom.tryon.garment import GarmentPrep, keypoints_from_mask
from fittingroom.tryon.person import (
    L_ELBOW,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    NOSE,
    R_ELBOW,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    TryOnCategory,
    TryOnInputError,
    build_person_prep,
    decode_image,
    sha256_bytes,
)

MIN_VIS = 0.5
#: The cut-out must cover at least this share of the pose prior to count as the garment.
MIN_PRIOR_COVER = 0.3
#: SAM's mask of a waist-down bottom is kept only when it covers this share of the colour cut-out.
SAM_KEEPS_ROUGH = 0.9


def _vis(lm: np.ndarray, i: int) -> bool:
    return bool(lm[i, 2] >= MIN_VIS)


def shoulders_in_frame(lm: np.ndarray | None, shape: tuple[int, ...]) -> bool:
    """Whether both shoulders of landmarks ``lm`` (float (33, 3) x px, y px, visibility) are visible and
    inside an image of ``shape`` (H, W, ...)."""
    if lm is None:
        return False
    h, w = shape[:2]
    return all(_vis(lm, i) and 0 <= lm[i, 0] < w and 0 <= lm[i, 1] < h for i in (L_SHOULDER, R_SHOULDER))


def garment_prompts(lm: np.ndarray, category: TryOnCategory) -> tuple[np.ndarray, np.ndarray]:
    """SAM point prompts: (points float32 (N, 2) x, y px; labels int32 (N,), 1 = the garment)."""
    p = lm[:, :2].astype(np.float32)
    pos: list[np.ndarray] = []
    neg: list[np.ndarray] = [p[NOSE]] if _vis(lm, NOSE) else []
    hip = (p[L_HIP] + p[R_HIP]) / 2
    thighs = [p[h] + 0.5 * (p[k] - p[h]) for h, k in ((L_HIP, L_KNEE), (R_HIP, R_KNEE)) if _vis(lm, k)]
    if category is TryOnCategory.bottom:
        pos += thighs or [hip]
        if _vis(lm, L_SHOULDER) and _vis(lm, R_SHOULDER):
            sh = (p[L_SHOULDER] + p[R_SHOULDER]) / 2
            neg.append(sh + (hip - sh) / 3)
    else:
        sh = (p[L_SHOULDER] + p[R_SHOULDER]) / 2
        pos += [sh + (hip - sh) / 3, sh + 2 * (hip - sh) / 3]
        if category is TryOnCategory.top:
            neg += thighs
        else:
            pos += thighs
    pts = np.array(pos + neg, np.float32).reshape(-1, 2)
    return pts, np.array([1] * len(pos) + [0] * len(neg), np.int32)


def _sleeves(lm: np.ndarray, shape: tuple[int, int], width: float) -> np.ndarray:
    """Shoulder->elbow->wrist strokes, bool (H, W): where a sleeve can be."""
    out = np.zeros(shape, np.uint8)
    p = lm[:, :2]
    for chain in ((L_SHOULDER, L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW, R_WRIST)):
        pts = [p[chain[0]]] + [p[j] for j in chain[1:] if _vis(lm, j)]
        for a, b in zip(pts, pts[1:], strict=False):
            cv2.line(out, tuple(int(v) for v in a), tuple(int(v) for v in b), (1,), max(2, int(width)))
    return out.astype(bool)


def worn_garment_mask(
    rgb: np.ndarray,
    person_mask: np.ndarray,
    lm: np.ndarray,
    category: TryOnCategory,
    sam: Any = None,
) -> tuple[np.ndarray, str]:
    """Mask of the garment the model wears, bool (H, W), and its source ('sam' or 'pose').

    Raises TryOnInputError when the landmarks the category needs are not visible.
    """
    prior_prep = build_person_prep(rgb, person_mask, lm, category, "", min_person_share=0.01)
    prior = prior_prep.garment_region.copy()
    sw = float(np.linalg.norm(lm[L_SHOULDER, :2] - lm[R_SHOULDER, :2]))
    if category is not TryOnCategory.bottom and sw > 0:
        prior |= _sleeves(lm, (prior.shape[0], prior.shape[1]), 0.3 * sw) & person_mask
    prior &= ~prior_prep.keep_mask
    mask, source = prior, "pose"
    if sam is not None and prior.any():
        emb = sam.embed(Image.fromarray(rgb))
        pts, labels = garment_prompts(lm, category)
        ys, xs = np.nonzero(prior)
        box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)
        logits = sam.upscale(emb, sam.predict(emb, pts, labels, box=box))
        best, best_iou = None, 0.0
        for k in range(logits.shape[0]):
            m = logits[k] > 0.0
            if not m.any() or m.sum() > 1.8 * prior.sum():
                continue
            iou = float((m & prior).sum()) / float((m | prior).sum())
            if iou > best_iou:
                best, best_iou = m, iou
        if best is not None and best_iou >= 0.35:
            mask, source = best, "sam"
    body = cv2.dilate(person_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    mask = mask & body & ~prior_prep.keep_mask
    if prior.any() and (mask & prior).sum() < MIN_PRIOR_COVER * prior.sum():
        raise TryOnInputError("no garment found on the model in the product photo")
    return mask, source


def drop_specks(mask: np.ndarray, min_share: float = 0.05) -> np.ndarray:
    """``mask`` without connected components smaller than ``min_share`` of the largest, bool (H, W)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.nonzero(areas >= min_share * areas.max())[0] + 1
    return np.isin(labels, keep)


def cutout(
    rgb: np.ndarray, mask: np.ndarray, lm: np.ndarray, margin: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """RGBA uint8 (h, w, 4) crop of ``mask``'s bounding box, and ``lm`` moved into the crop's pixels."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        raise TryOnInputError("no garment found on the model in the product photo")
    h, w = mask.shape
    x0, y0 = max(0, int(xs.min()) - margin), max(0, int(ys.min()) - margin)
    x1, y1 = min(w, int(xs.max()) + 1 + margin), min(h, int(ys.max()) + 1 + margin)
    rgba = np.dstack([rgb, mask.astype(np.uint8) * 255])[y0:y1, x0:x1]
    moved = lm.copy()
    moved[:, 0] -= x0
    moved[:, 1] -= y0
    return np.ascontiguousarray(rgba), moved


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Skin-coloured pixels (YCrCb box, Cr 135..180, Cb 85..135), bool (H, W)."""
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    cr, cb = ycc[:, :, 1], ycc[:, :, 2]
    return (cr >= 135) & (cr <= 180) & (cb >= 85) & (cb <= 135)


def bottom_mask_without_pose(rgb: np.ndarray, sam: Any = None) -> tuple[np.ndarray, str]:
    """Worn bottom of a waist-down studio photo (no pose found: no face, no shoulders), bool (H, W).

    The model (background removal of the plain studio background) minus skin and the lowest 7 % of
    its height (shoes), the largest component; refined by SAM (positive points deep inside that mask,
    negative points on the skin) when configured, kept when it covers ``SAM_KEEPS_ROUGH`` of that mask.
    Raises TryOnInputError when nothing is left.
    """
    from fittingroom.tryon.garment import remove_background

    body = remove_background(Image.fromarray(rgb))
    ys = np.nonzero(body.any(1))[0]
    cut = np.zeros_like(body)
    cut[: int(ys[-1] - 0.07 * (ys[-1] - ys[0]))] = True
    candidate = (body & ~skin_mask(rgb) & cut).astype(np.uint8)
    opened = cv2.morphologyEx(candidate, cv2.MORPH_OPEN, np.ones((7, 7), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if n <= 1:
        raise TryOnInputError("no garment found on the model in the product photo")
    rough = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if sam is None:
        return rough, "colour"
    dist = cv2.distanceTransform(rough.astype(np.uint8), cv2.DIST_L2, 5)
    ry = np.nonzero(rough.any(1))[0]
    pos = []
    for frac in (0.15, 0.5, 0.85):
        y = int(ry[0] + frac * (ry[-1] - ry[0]))
        x = int(np.argmax(dist[y]))
        if dist[y, x] > 0:
            pos.append((x, y))
    skin = skin_mask(rgb) & body & ~rough
    sy, sx = np.nonzero(cv2.erode(skin.astype(np.uint8), np.ones((9, 9), np.uint8)))
    neg = [(int(sx[i]), int(sy[i])) for i in np.linspace(0, len(sx) - 1, 4).astype(int)] if len(sx) else []
    pts = np.array(pos + neg, np.float32).reshape(-1, 2)
    labels_ = np.array([1] * len(pos) + [0] * len(neg), np.int32)
    xs, ys2 = np.nonzero(rough.T)
    box = np.array([xs.min(), ys2.min(), xs.max(), ys2.max()], np.float32)
    emb = sam.embed(Image.fromarray(rgb))
    logits = sam.upscale(emb, sam.predict(emb, pts, labels_, box=box))
    best, best_iou = None, 0.0
    for k in range(logits.shape[0]):
        m = (logits[k] > 0.0) & body
        if not m.any():
            continue
        iou = float((m & rough).sum()) / float((m | rough).sum())
        if iou > best_iou:
            best, best_iou = m, iou
    # SAM often drops a leg or the part under a hand: keep its mask only when it keeps the colour mask
    if best is not None and best_iou >= 0.5 and (best & rough).sum() >= SAM_KEEPS_ROUGH * rough.sum():
        return best, "sam"
    return rough, "colour"


def fill_hand_occlusions(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A waist-down cut-out with the model's hands put back as garment: skin pixels that a morphological
    closing (20 % of the mask's width) adds to ``mask`` in its upper 60 % (hands in pockets, on the hips; not
    the gap between the legs lower down), and enclosed holes, become garment, their colour Telea-inpainted
    from the garment around them (OpenCV). ``rgb`` uint8 (H, W, 3), ``mask`` bool (H, W); returns both,
    new arrays."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return rgb, mask
    k = max(3, int(0.2 * (xs.max() - xs.min())) | 1)
    closed = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((k, k), np.uint8)).astype(bool)
    upper = np.zeros_like(mask)
    upper[: int(ys.min() + 0.6 * (ys.max() - ys.min())) + 1] = True
    added = closed & ~mask & upper & skin_mask(rgb)
    pad = np.pad((mask | added).astype(np.uint8), 1)
    cv2.floodFill(pad, np.zeros((pad.shape[0] + 2, pad.shape[1] + 2), np.uint8), (0, 0), (1,))
    added |= (pad == 0)[1:-1, 1:-1]
    if not added.any():
        return rgb, mask
    repaired = cv2.inpaint(np.ascontiguousarray(rgb), added.astype(np.uint8), 5, cv2.INPAINT_TELEA)
    return np.asarray(repaired, np.uint8), mask | added


class OnModelExtractor:
    """On-model photo -> :class:`GarmentPrep` with the model's landmarks, cached per (sha256, category).

    ``analyzer``: a ``fittingroom.models.person.PersonAnalyzer`` (``run(rgb) -> (selfie, pose_seg,
    landmarks)``); ``sam``: a ``fittingroom.models.sam.SamBackend`` or None (pose prior only).
    ``cache_bytes``: memory budget of the prepared-garment cache (bytes of masks and images).
    """

    def __init__(
        self, analyzer: Any, sam: Any = None, *, max_side: int = 1024, cache_bytes: int = 64 * MiB
    ) -> None:
        self.analyzer = analyzer
        self.sam = sam
        self.max_side = max_side
        self._cache: BoundedLRU[tuple[str, str, int], GarmentPrep] = byte_lru(cache_bytes)
        self._lock = threading.Lock()

    def prepare(self, data: bytes, category: TryOnCategory, *, sha256: str | None = None) -> GarmentPrep:
        """Raises TryOnInputError (not an image, no model, landmarks missing, no garment)."""
        digest = sha256 or sha256_bytes(data)
        key = (digest, category.value, self.max_side)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        rgb = np.ascontiguousarray(np.asarray(decode_image(data, max_side=self.max_side).convert("RGB")))
        selfie, pose_seg, lm = self.analyzer.run(rgb)
        no_pose = lm is None or selfie is None or not (lm[[L_HIP, R_HIP], 2] >= MIN_VIS).all()
        try:
            if category is TryOnCategory.bottom and (no_pose or not shoulders_in_frame(lm, rgb.shape)):
                # waist-down shot: no face, no shoulders (BlazePose guesses them outside the photo, and its
                # legs are often flipped): the colour cut-out, leg parts then come from the mask's shape
                mask, source = bottom_mask_without_pose(rgb, self.sam)
                lm = None
            elif lm is None or selfie is None:
                raise TryOnInputError("no model found in the photo")
            else:
                person = selfie > 0.5
                if pose_seg is not None:
                    person |= pose_seg > 0.5
                try:
                    mask, source = worn_garment_mask(rgb, person, lm, category, self.sam)
                except TryOnInputError:
                    if category is not TryOnCategory.bottom:
                        raise
                    mask, source = bottom_mask_without_pose(rgb, self.sam)  # legs cropped or hidden
                    lm = None
        except TryOnInputError as e:
            raise TryOnInputError(f"on-model product photo: {e.reason}") from None
        mask = drop_specks(mask)
        if lm is None:  # waist-down colour / SAM cut-out: the model's hands over the garment go
            rgb, mask = fill_hand_occlusions(rgb, mask)
        rgba, crop_lm = cutout(rgb, mask, lm if lm is not None else np.zeros((33, 3), np.float32))
        gmask = rgba[:, :, 3] > 127
        bbox, kp = keypoints_from_mask(gmask)
        prep = GarmentPrep(
            f"{digest}:on_model:{category.value}",
            np.ascontiguousarray(rgba[:, :, :3]),
            gmask,
            bbox,
            kp,
            landmarks=crop_lm.astype(np.float32) if lm is not None else None,
            source=f"on_model/{source}",
        )
        with self._lock:
            self._cache.put(key, prep)
        return prep


def rgba_image(prep: GarmentPrep) -> Image.Image:
    """The cut-out as a PIL RGBA image (transparent outside the garment)."""
    return Image.fromarray(np.dstack([prep.image, prep.mask.astype(np.uint8) * 255]), "RGBA")
