"""The old garment goes, and the new one takes the person's light: steps of the preview compositor.

* :func:`remove_old_garment`: where the person's current garment in the replaced category
  (``PersonPrep.garment_region`` inside the silhouette) is not covered by the new garment, it is
  replaced: on the arms, legs and neck by skin synthesised from the person's own visible skin (mean
  CIELAB colour of the skin-coloured pixels outside the garment region, with the original luminance's
  variation for shading), elsewhere by the surroundings (OpenCV Telea inpainting, on a downscaled copy).
* :func:`shade`: the garment's colours multiplied by the low-frequency shading of the person's original
  luminance (folds, the shadow under the arms), not the old garment's pattern.

All images RGB uint8 (H, W, 3), masks bool (H, W), the person image's pixel grid.
"""

from __future__ import annotations

import cv2
import numpy as np

from fittingroom.tryon.person import (
    L_ANKLE,
    L_ELBOW,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    R_ANKLE,
    R_ELBOW,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    PersonPrep,
    TryOnCategory,
)

#: Fewer visible skin pixels than this: no skin synthesis (inpainting everywhere).
MIN_SKIN_PIXELS = 200
#: Share of the original luminance's deviation kept as shading on synthesised skin.
SKIN_SHADING = 0.6


def skin_pixels(rgb: np.ndarray) -> np.ndarray:
    """Skin-coloured pixels (YCrCb box: Cr 135..180, Cb 85..135), bool (H, W)."""
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    cr, cb = ycc[:, :, 1], ycc[:, :, 2]
    return (cr >= 135) & (cr <= 180) & (cb >= 85) & (cb <= 135)


def _scale(person: PersonPrep) -> float:
    p = person.landmarks[:, :2]
    return max(
        float(np.linalg.norm(p[L_SHOULDER] - p[R_SHOULDER])),
        1.3 * float(np.linalg.norm(p[L_HIP] - p[R_HIP])),
        8.0,
    )


def skin_zone(person: PersonPrep, category: TryOnCategory) -> np.ndarray:
    """Where a removed garment uncovers skin, bool (H, W): the arms (tops, one-pieces), the legs below the hips
    (bottoms, one-pieces) as bands along the limbs (24 % of the body scale wide), and the neck / the shoulder line
    within 35 % of the shoulder width of the neck (tops, one-pieces); inside the silhouette."""
    h, w = person.person_mask.shape
    lm = person.landmarks
    p = lm[:, :2]
    s = _scale(person)
    zone = np.zeros((h, w), np.uint8)
    arms: list[tuple[int, ...]] = []
    legs: list[tuple[int, ...]] = []
    if category is not TryOnCategory.bottom:
        arms = [(L_SHOULDER, L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW, R_WRIST)]
        # the neck and the shoulder line near it (not a loose garment's shoulders beyond the body)
        top = int(min(p[L_SHOULDER, 1], p[R_SHOULDER, 1]) + 0.12 * s)
        cx = float(p[L_SHOULDER, 0] + p[R_SHOULDER, 0]) / 2
        half = 0.35 * float(abs(p[L_SHOULDER, 0] - p[R_SHOULDER, 0]))
        zone[: max(0, top), max(0, int(cx - half)) : max(0, int(cx + half))] = 1
    if category is not TryOnCategory.top:
        legs = [(L_HIP, L_KNEE, L_ANKLE), (R_HIP, R_KNEE, R_ANKLE)]
    limbs = np.zeros((h, w), np.uint8)
    for chains, lo in ((arms, 0), (legs, int(max(p[L_HIP, 1], p[R_HIP, 1]) + 0.25 * s))):
        band = np.zeros((h, w), np.uint8)
        for chain in chains:
            pts = [p[chain[0]]] + [p[j] for j in chain[1:] if lm[j, 2] >= 0.3]
            for a, b in zip(pts, pts[1:], strict=False):
                cv2.line(
                    band, tuple(int(v) for v in a), tuple(int(v) for v in b), (1,), max(2, int(0.24 * s))
                )
        band[: max(0, lo)] = 0  # the legs only below the crotch (the pelvis is garment, not skin)
        limbs |= band
    return ((zone | limbs) > 0) & person.person_mask


def remove_old_garment(
    person: PersonPrep, covered: np.ndarray, category: TryOnCategory, image: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(``image`` (default the person's) with the uncovered old garment replaced, the replaced pixels bool
    (H, W)). ``covered``: where the new garment is painted, bool (H, W). Head and hands are never touched."""
    img = (person.image if image is None else image).copy()
    s = _scale(person)
    k = max(3, int(0.02 * s) | 1)
    body = cv2.dilate(person.person_mask.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
    old = person.garment_region & body & ~covered & ~person.keep_mask
    if not old.any():
        return img, old
    skin_target = old & skin_zone(person, category)
    sample = skin_pixels(person.image) & person.person_mask & ~person.garment_region & ~old
    rest = old & ~skin_target
    if skin_target.any() and int(sample.sum()) >= MIN_SKIN_PIXELS:
        lab = cv2.cvtColor(person.image, cv2.COLOR_RGB2LAB).astype(np.float32)
        tone = np.median(lab[sample], axis=0)
        lum = lab[:, :, 0]
        smooth = cv2.GaussianBlur(lum, (0, 0), max(1.0, 0.01 * s))
        dev = smooth[skin_target] - float(np.mean(smooth[skin_target]))
        new = np.empty((int(skin_target.sum()), 3), np.float32)
        new[:, 0] = np.clip(tone[0] + SKIN_SHADING * dev, 0, 255)
        new[:, 1:] = tone[1:]
        synth = lab.copy()
        synth[skin_target] = new
        rgb = cv2.cvtColor(np.clip(synth, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
        img[skin_target] = rgb[skin_target]
    else:
        rest = old
    if rest.any():
        img = _inpaint(img, rest)
    return img, old


def _inpaint(img: np.ndarray, mask: np.ndarray, max_side: int = 320) -> np.ndarray:
    """Telea inpainting of ``mask`` on a copy downscaled to ``max_side`` (speed), upscaled back into ``mask``."""
    h, w = mask.shape
    f = min(1.0, max_side / max(h, w))
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    m = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    m = cv2.dilate(m, np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(small, m, 5, cv2.INPAINT_TELEA)
    big = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    out = img.copy()
    out[mask] = big[mask]
    return out


def shade(person: PersonPrep, garment_rgb: np.ndarray, strength: float = 0.5) -> np.ndarray:
    """``garment_rgb`` (the warped garment in the person image) times the person's low-frequency shading:
    the original luminance blurred at 5 % of the body scale over its blur at 25 %, clipped to 0.85..1.15
    (a strong ratio is the old garment's pattern or colour, not light), raised to ``strength``. Computed on
    a copy downscaled to 256 px. Float32 (H, W, 3), 0..255."""
    h, w = garment_rgb.shape[:2]
    f = min(1.0, 256 / max(h, w))
    small = cv2.resize(
        person.image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA
    )
    s = _scale(person) * f
    lum = cv2.cvtColor(small, cv2.COLOR_RGB2LAB)[:, :, 0].astype(np.float32) + 1.0
    fine = cv2.GaussianBlur(lum, (0, 0), max(1.0, 0.05 * s))
    coarse = cv2.GaussianBlur(lum, (0, 0), max(2.0, 0.25 * s))
    ratio = np.clip(fine / np.maximum(coarse, 1.0), 0.85, 1.15) ** strength
    ratio = cv2.resize(ratio, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(garment_rgb.astype(np.float32) * ratio[:, :, None], 0, 255)
