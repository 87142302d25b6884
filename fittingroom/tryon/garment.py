"""Garment preprocessing: background removal of a product-only shot, mask, bbox, outline key points.

Works on a product-only image (flat lay, ghost mannequin, studio packshot) on a
near-uniform or transparent background. No learned model: the alpha channel when
the image has a meaningful one, else a threshold on the colour distance from the
border colour (median of the outer 2 % frame), the largest connected component
and hole filling (OpenCV).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from fittingroom.caching import BoundedLRU, byte_lru
from fittingroom.tryon.person import TryOnInputError, decode_image, sha256_bytes


@dataclass
class GarmentPrep:
    """Garment image, mask and key points (pixel coordinates of ``image``, origin top left).

    ``keypoints`` keys: ``collar`` (top centre), ``shoulder_left``/``shoulder_right``
    (outline corners near the top, image left/right), ``waist_left``/``waist_right``
    (outline at mid height), ``hem_left``/``hem_right`` (bottom corners); float (x, y).
    ``landmarks``: for a garment cut out of an on-model photo (``onmodel.py``), the model's BlazePose
    landmarks in this image's pixels, float32 (33, 3) (the renderer then warps pose to pose); None for
    a product-only shot. ``source``: ``product_only`` or ``on_model/sam|pose``.
    """

    sha256: str
    image: np.ndarray  # uint8 (H, W, 3) RGB
    mask: np.ndarray  # bool (H, W)
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive end)
    keypoints: dict[str, tuple[float, float]]
    landmarks: np.ndarray | None = None
    source: str = "product_only"


def remove_background(img: Image.Image, *, threshold: float = 28.0) -> np.ndarray:
    """Garment mask of a product-only image, bool (H, W). Raises TryOnInputError when empty."""
    if img.mode == "RGBA":
        alpha = np.asarray(img)[:, :, 3]
        if (alpha < 250).mean() > 0.02:
            mask = alpha > 127
            return _clean(mask)
    rgb = np.asarray(img.convert("RGB")).astype(np.float32)
    h, w = rgb.shape[:2]
    b = max(2, int(0.02 * min(h, w)))
    border = np.concatenate(
        [
            rgb[:b].reshape(-1, 3),
            rgb[-b:].reshape(-1, 3),
            rgb[:, :b].reshape(-1, 3),
            rgb[:, -b:].reshape(-1, 3),
        ]
    )
    bg = np.median(border, axis=0)
    lab = cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    bg_lab = cv2.cvtColor(bg.reshape(1, 1, 3).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)[0, 0]
    dist = np.linalg.norm(lab - bg_lab, axis=2)
    dist = cv2.GaussianBlur(dist, (5, 5), 0)
    # adapt the threshold to the border's own noise
    border_dist = np.concatenate(
        [dist[:b].ravel(), dist[-b:].ravel(), dist[:, :b].ravel(), dist[:, -b:].ravel()]
    )
    thr = max(threshold * 0.5, min(threshold, float(np.percentile(border_dist, 99)) + 6))
    return _clean(dist > thr)


def _clean(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    h, w = m.shape
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    m = np.asarray(cv2.morphologyEx(m, cv2.MORPH_OPEN, k), np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        raise TryOnInputError("no garment found in the garment image (background removal left nothing)")
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    m = (labels == largest).astype(np.uint8)
    if m.mean() < 0.01:
        raise TryOnInputError("no garment found in the garment image (the object is too small)")
    if m.mean() > 0.97:
        raise TryOnInputError(
            "the garment image has no plain background: use a product-only (packshot) image"
        )
    # hole fill: flood the background from a padded border
    pad = np.pad(m, 1)
    ff = pad.copy()
    cv2.floodFill(ff, np.zeros((h + 4, w + 4), np.uint8), (0, 0), (1,))
    holes = (ff == 0)[1:-1, 1:-1]
    return (m.astype(bool)) | holes


def keypoints_from_mask(mask: np.ndarray) -> tuple[tuple[int, int, int, int], dict[str, tuple[float, float]]]:
    """Bounding box and outline key points of a garment mask (see :class:`GarmentPrep`)."""
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    gh = y1 - y0

    def extremes(y: float, band: float = 0.02) -> tuple[tuple[float, float], tuple[float, float]]:
        lo, hi = int(y - band * gh), int(y + band * gh) + 1
        rows = mask[max(y0, lo) : min(y1, hi)]
        cols = np.nonzero(rows.any(0))[0]
        if len(cols) == 0:
            return (float(x0), float(y)), (float(x1), float(y))
        return (float(cols[0]), float(y)), (float(cols[-1]), float(y))

    # shoulder seam corners: torso width (narrowest row between 35 % and 65 % of the height, below the
    # sleeves of a flat-lay top) centred on the mask, ~7 % below the top (sleeve tips are not shoulders)
    widths = []
    for frac in np.linspace(0.35, 0.65, 7):
        a, b = extremes(y0 + frac * gh, band=0.005)
        widths.append((b[0] - a[0], a[0], b[0]))
    _, tl, tr = min(widths)
    top_l, top_r = extremes(y0 + 0.07 * gh)
    sy = y0 + 0.07 * gh
    sl = (max(top_l[0], tl - 0.04 * (tr - tl)), sy)
    sr = (min(top_r[0], tr + 0.04 * (tr - tl)), sy)
    wl, wr = extremes(y0 + 0.55 * gh)
    # hem: the lowest row still at least 60 % as wide as the torso (ignores ties, straps, fringes)
    row_w = np.where(mask.any(1), mask.shape[1] - np.argmax(mask[:, ::-1], 1) - np.argmax(mask, 1), 0)
    wide = np.nonzero(row_w[y0:y1] >= 0.6 * max(1.0, tr - tl))[0]
    hem_y = y0 + (int(wide[-1]) if len(wide) else int(0.97 * gh))
    hl, hr = extremes(max(y0, hem_y - 0.01 * gh), band=0.01)
    top_cols = np.nonzero(mask[y0 : y0 + max(1, int(0.03 * gh))].any(0))[0]
    collar_x = float(top_cols.mean()) if len(top_cols) else (x0 + x1) / 2
    kp = {
        "collar": (collar_x, float(y0)),
        "shoulder_left": sl,
        "shoulder_right": sr,
        "waist_left": wl,
        "waist_right": wr,
        "hem_left": hl,
        "hem_right": hr,
    }
    return (x0, y0, x1, y1), kp


class GarmentPreprocessor:
    """Background removal + key points, cached in memory per (image sha256, max_side).

    The cache is an LRU of at most ``cache_size`` garments and ``cache_bytes`` bytes
    (a prepared garment holds its RGB image and mask: ~4 bytes per pixel).
    """

    def __init__(
        self, *, max_side: int = 1024, cache_size: int = 64, cache_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self.max_side = max_side
        self.cache_size = cache_size
        self._cache: BoundedLRU[tuple[str, int], GarmentPrep] = byte_lru(cache_bytes, max_items=cache_size)

    def prepare(self, data: bytes, *, sha256: str | None = None) -> GarmentPrep:
        """Raises TryOnInputError for an unreadable image or when no garment is found."""
        digest = sha256 or sha256_bytes(data)
        key = (digest, self.max_side)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        img = decode_image(data, max_side=self.max_side)
        mask = remove_background(img)
        bbox, kp = keypoints_from_mask(mask)
        prep = GarmentPrep(digest, np.ascontiguousarray(np.asarray(img.convert("RGB"))), mask, bbox, kp)
        self._cache.put(key, prep)
        return prep
