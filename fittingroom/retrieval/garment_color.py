"""Dominant colour of a garment cut-out, in CIELAB, and the colour family it names.

``dominant_color(image)`` looks at the garment's pixels (alpha > 127 of an RGBA cut-out, else
every pixel), converts them to CIELAB (OpenCV, float: L 0..100, a/b about -127..127) and returns
the centre of the largest of 3 k-means clusters with its family: achromatic colours (chroma
< ``ACHROMATIC_CHROMA``) by lightness (black / gray / white), others the nearest reference hue of
the base lexicon's families (``fittingroom.retrieval.lexicon.COLORS``) by CIE76 distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

#: Below this chroma (sqrt(a^2 + b^2)) a colour is black, gray or white.
ACHROMATIC_CHROMA = 12.0
#: Longest side the pixels are sampled at.
SAMPLE_SIDE = 64

#: sRGB references of the chromatic families (every family of the base lexicon but black/gray/white).
_REFERENCES_RGB: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 40),
    "orange": (240, 130, 30),
    "yellow": (235, 210, 40),
    "green": (40, 150, 60),
    "blue": (30, 70, 190),
    "purple": (120, 50, 150),
    "pink": (240, 140, 180),
    "brown": (120, 75, 40),
}


def _lab(rgb: np.ndarray) -> np.ndarray:
    """float32 (N, 3) CIELAB of uint8 (N, 3) sRGB."""
    px = (np.asarray(rgb, np.float32) / 255.0).reshape(-1, 1, 3)
    return cv2.cvtColor(px, cv2.COLOR_RGB2LAB).reshape(-1, 3)


_REFERENCES_LAB = dict(
    zip(_REFERENCES_RGB, _lab(np.asarray(list(_REFERENCES_RGB.values()), np.uint8)), strict=True)
)


@dataclass(frozen=True)
class GarmentColor:
    """``family`` (a lexicon colour family, e.g. ``'red'``), ``lab`` (L, a, b floats), ``share``
    (fraction of the garment's pixels in the dominant cluster, 0..1)."""

    family: str
    lab: tuple[float, float, float]
    share: float


def color_family(lab: np.ndarray) -> str:
    """The family of one CIELAB colour (float (3,))."""
    lightness, a, b = (float(v) for v in lab)
    if np.hypot(a, b) < ACHROMATIC_CHROMA:
        return "black" if lightness < 25 else "white" if lightness > 85 else "gray"
    return min(_REFERENCES_LAB, key=lambda f: float(np.linalg.norm(_REFERENCES_LAB[f] - lab)))


def dominant_color(image: Image.Image) -> GarmentColor | None:
    """The dominant colour of ``image`` (RGBA cut-out: its opaque pixels); None when no pixel is
    part of the garment."""
    img = image.copy()
    img.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE))
    rgba = np.asarray(img.convert("RGBA"))
    keep = rgba[..., 3] > 127 if image.mode in ("RGBA", "LA", "PA") else np.ones(rgba.shape[:2], bool)
    px = rgba[..., :3][keep]
    if len(px) == 0:
        return None
    lab = _lab(px).astype(np.float32)
    k = min(3, len(lab))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)
    _, labels, centres = cv2.kmeans(lab, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)  # type: ignore[call-overload]
    counts = np.bincount(labels.ravel(), minlength=k)
    best = int(np.argmax(counts))
    centre = centres[best]
    return GarmentColor(
        family=color_family(centre),
        lab=(round(float(centre[0]), 2), round(float(centre[1]), 2), round(float(centre[2]), 2)),
        share=round(float(counts[best] / counts.sum()), 4),
    )
