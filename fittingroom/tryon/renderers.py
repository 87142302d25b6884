"""Try-on backends behind one interface, and a small registry.

* ``preview`` (:class:`PreviewBackend`, CPU): per-body-part warp of the garment onto the
  person (torso piecewise affine on pose key points; each sleeve / trouser-leg segment
  joint to joint, ``parts.py``), composited only inside the clothing-agnostic region
  (face, hair above the shoulders, hands and the other garment are the person's own
  pixels); the uncovered old garment replaced by skin or inpainting, the person's shading,
  a feathered edge (``cleanup.py``, :func:`compose`). A quick preview, not a generative model.
* ``fashn`` (:class:`FashnBackend`, GPU): adapter for FASHN VTON v1.5
  (https://github.com/fashn-AI/fashn-vton-1.5), code and weights Apache-2.0. Upstream's
  pipeline always runs ``fashn-human-parser``, whose weights are licensed for NON-COMMERCIAL
  use only; by default (``TRYON_FASHN_PARSER=own``) the adapter replaces that parser with our
  own person analysis and garment mask (``fashn_parse.py``), so the GPU path is commercially
  clean; ``TRYON_FASHN_PARSER=fashn`` runs upstream as shipped (non-commercial).
  The package ``fashn_vton`` is imported lazily at :meth:`load`.

Both are model-shelf entries (:data:`TRYON_PREVIEW`, :data:`TRYON_FASHN`): built and loaded
once per process.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from fittingroom.caching import BoundedLRU, byte_lru
from fittingroom.models.registry import ModelFile, ModelShelf, ModelSpec, default_shelf, file_sha256
from fittingroom.tryon.cleanup import remove_old_garment, shade
from fittingroom.tryon.fashn_parse import OwnParser, garment_label_map, person_label_map
from fittingroom.tryon.garment import GarmentPrep
from fittingroom.tryon.parts import GarmentPose, garment_pose, limb_affine, part_labels
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
    waist_rise,
)
from fittingroom.tryon.settings import FashnParser


class BackendUnavailable(RuntimeError):
    """A backend cannot start (package not installed, weights missing); the message says how to fix it."""


class TryOnBackend(ABC):
    """One try-on renderer. ``preview`` says whether its output is a quick preview."""

    name: str = ""
    preview: bool = False

    def load(self) -> None:  # noqa: B027 - optional hook
        """Load models (called once at start-up). Raises BackendUnavailable."""

    @abstractmethod
    def render(
        self,
        person_img: Image.Image,
        person_prep: PersonPrep,
        garment_img: Image.Image,
        garment_prep: GarmentPrep,
        category: TryOnCategory,
    ) -> Image.Image:
        """Render the person wearing the garment; RGB image of the person image's size (``person_prep.size``)."""


# ---------------------------------------------------------------------------------------------
# Preview backend
# ---------------------------------------------------------------------------------------------
def _sorted_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image-left point, image-right point)."""
    return (a, b) if a[0] <= b[0] else (b, a)


def _widen(a: np.ndarray, b: np.ndarray, f: float) -> tuple[np.ndarray, np.ndarray]:
    m = (a + b) / 2
    return m + (a - m) * f, m + (b - m) * f


def body_anchors(lm: np.ndarray, category: TryOnCategory, limbs: tuple[int, ...]) -> np.ndarray:
    """Body-anchored control points of one pose, float64 (N, 2) px, in a fixed order.

    Torso anchors (shoulder seams, collar, hips / hem for tops and one-pieces; waistband and hips for
    bottoms) then the limb joints ``limbs`` (elbows, wrists, knees, ankles), so two poses' anchors
    correspond point by point.
    """
    p = lm[:, :2].astype(np.float64)
    pts: list[np.ndarray] = []
    if category is TryOnCategory.bottom:
        wl, wr = _widen(p[L_HIP], p[R_HIP], 1.45)
        up = np.array([0.0, -waist_rise(lm)])
        pts += [wl + up, wr + up, *_widen(p[L_HIP], p[R_HIP], 1.3)]
    else:
        sw = float(np.linalg.norm(p[L_SHOULDER] - p[R_SHOULDER]))
        sl, sr = _widen(p[L_SHOULDER], p[R_SHOULDER], 1.12)
        up = np.array([0.0, -0.06 * sw])
        sl, sr = sl + up, sr + up
        hl, hr = _widen(p[L_HIP], p[R_HIP], 1.45)
        torso = (p[L_HIP] + p[R_HIP]) / 2 - (p[L_SHOULDER] + p[R_SHOULDER]) / 2
        pts += [sl, sr, (sl + sr) / 2 + np.array([0.0, -0.05 * sw]), hl + 0.12 * torso, hr + 0.12 * torso]
    pts += [p[i] for i in limbs]
    return np.array(pts, np.float64)


#: Limb joints used as pose-to-pose control points per category (when visible in both poses).
LIMB_JOINTS: dict[TryOnCategory, tuple[int, ...]] = {
    TryOnCategory.top: (L_ELBOW, R_ELBOW, L_WRIST, R_WRIST),
    TryOnCategory.one_piece: (L_ELBOW, R_ELBOW, L_KNEE, R_KNEE),
    TryOnCategory.bottom: (L_KNEE, R_KNEE, L_ANKLE, R_ANKLE),
}


def pose_correspondences(
    person_lm: np.ndarray, garment_lm: np.ndarray, category: TryOnCategory, min_visibility: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Control points of an on-model garment: model pose (src) -> person pose (dst), float32 (N, 2)."""
    limbs = tuple(
        i for i in LIMB_JOINTS[category] if min(person_lm[i, 2], garment_lm[i, 2]) >= min_visibility
    )
    src = body_anchors(garment_lm, category, limbs)
    dst = body_anchors(person_lm, category, limbs)
    return src.astype(np.float32), dst.astype(np.float32)


def correspondences(
    person: PersonPrep, garment: GarmentPrep, category: TryOnCategory
) -> tuple[np.ndarray, np.ndarray]:
    """Matching key points: garment image (src) -> person image (dst), float32 (N, 2) each, px.

    Pose to pose (:func:`pose_correspondences`) for a garment cut out of an on-model photo.
    """
    if garment.landmarks is not None:
        return pose_correspondences(person.landmarks, garment.landmarks, category)
    p = person.landmarks[:, :2].astype(np.float64)
    kp = {k: np.array(v, np.float64) for k, v in garment.keypoints.items()}
    src_names = [
        "shoulder_left",
        "shoulder_right",
        "waist_left",
        "waist_right",
        "hem_left",
        "hem_right",
        "collar",
    ]
    src = np.array([kp[n] for n in src_names])
    if category is TryOnCategory.bottom:
        hl, hr = _sorted_pair(p[L_HIP], p[R_HIP])
        top_l, top_r = _widen(hl, hr, 1.45)
        up = np.array([0.0, -waist_rise(person.landmarks)])
        top_l, top_r = top_l + up, top_r + up
        # the waistband (outline corners of the top rows) goes onto the hips: the "shoulder" key points
        # of a flat-lay bottom sit at its narrowest middle row, which for a flared skirt or wide trousers
        # is far wider or narrower than the waistband and mis-scales the whole garment
        wb_l, wb_r = waistband(garment.mask)
        src[0], src[1] = wb_l, wb_r
        # length from the garment's own aspect, scaled by the waistband width; direction = hips -> knees
        s = float(np.linalg.norm(top_r - top_l)) / max(1.0, float(np.linalg.norm(wb_r - wb_l)))
        kl, kr = _sorted_pair(p[L_KNEE], p[R_KNEE])
        down = ((kl + kr) / 2 - (hl + hr) / 2) / max(1e-6, np.linalg.norm((kl + kr) / 2 - (hl + hr) / 2))
        length = s * (kp["hem_left"][1] - wb_l[1])
        # a maxi skirt ends at the ankles + HEM_BELOW_ANKLE of the body height, as a dress does
        limit = hem_limit(person)
        sv = 1.0
        if limit is not None and down[1] > 1e-6 and length > 1.0:
            top_y = float((top_l[1] + top_r[1]) / 2)
            sv = min(1.0, max(1.0, (limit - top_y) / down[1]) / length)
        length *= sv
        hem_half = s * (kp["hem_right"][0] - kp["hem_left"][0]) / 2
        mid = (top_l + top_r) / 2 + down * length
        # unit vector across the body towards the image's right (the garment's left/right corners keep
        # their sides: a waistband / hem corner on the image's left lands on the image's left)
        side = np.array([-down[1], down[0]])
        if side[0] < 0:
            side = -side
        hem_l, hem_r = mid - side * hem_half, mid + side * hem_half
        w_len = s * sv * (kp["waist_left"][1] - wb_l[1])
        w_half = s * (kp["waist_right"][0] - kp["waist_left"][0]) / 2
        wmid = (top_l + top_r) / 2 + down * w_len
        collar = (top_l + top_r) / 2 - down * s * (wb_l[1] - kp["collar"][1])
        dst = [top_l, top_r, wmid - side * w_half, wmid + side * w_half, hem_l, hem_r, collar]
        return src.astype(np.float32), np.array(dst, np.float32)
    if category is TryOnCategory.one_piece:
        return one_piece_correspondences(person, garment.mask)
    sl, sr = _sorted_pair(p[L_SHOULDER], p[R_SHOULDER])
    hl, hr = _sorted_pair(p[L_HIP], p[R_HIP])
    sw = np.linalg.norm(sr - sl)
    sl, sr = _widen(sl, sr, 1.12)
    up = np.array([0.0, -0.06 * sw])
    sl, sr = sl + up, sr + up
    torso = (hl + hr) / 2 - (sl + sr) / 2
    hem_l, hem_r = _widen(hl, hr, 1.45)
    hem_l, hem_r = hem_l + 0.12 * torso, hem_r + 0.12 * torso
    wl, wr = sl + 0.55 * (hem_l - sl), sr + 0.55 * (hem_r - sr)
    collar = (sl + sr) / 2 + np.array([0.0, -0.05 * sw])
    dst = [sl, sr, wl, wr, hem_l, hem_r, collar]
    return src.astype(np.float32), np.array(dst, np.float32)


#: A person's waist is this many hip-joint distances wide (the bottoms' waistband uses the same).
WAIST_PER_HIP = 1.45
#: A dress's hem ends at most this share of the body height below the ankles.
HEM_BELOW_ANKLE = 0.03


def hem_limit(person: PersonPrep) -> float | None:
    """Lowest row (y px) a skirt's or dress's hem may reach: the lower visible ankle + ``HEM_BELOW_ANKLE`` of
    the body height (top of the silhouette -> ankles); None when no ankle is visible inside the photo."""
    lm = person.landmarks
    h = person.image.shape[0]
    ankles = [float(lm[i, 1]) for i in (L_ANKLE, R_ANKLE) if lm[i, 2] >= 0.5 and lm[i, 1] < h]
    if not ankles:
        return None
    rows = np.nonzero(person.person_mask.any(1))[0]
    ankle_y = max(ankles)
    top_y = float(rows[0]) if len(rows) else 0.0
    return ankle_y + HEM_BELOW_ANKLE * max(1.0, ankle_y - top_y)


def dress_rows(mask: np.ndarray) -> tuple[int, int, int, float]:
    """(top row, shoulder row, hem row, waist width px) of a product-only dress mask, bool (H, W).

    Waist = the narrowest row between 25 % and 60 % of the height (width = outline extent); shoulder row =
    the first row from the top at least 0.7 x the waist width (straps and a halter neck lie above it).
    Raises ValueError for an empty mask."""
    rows = np.nonzero(mask.any(1))[0]
    if len(rows) == 0:
        raise ValueError("empty garment mask")
    y0, y1 = int(rows[0]), int(rows[-1])
    left = np.argmax(mask, 1)
    right = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], 1)
    width = np.where(mask.any(1), right - left + 1, 0)
    gh = y1 - y0
    band = np.arange(y0 + int(0.25 * gh), y0 + int(0.6 * gh) + 1)
    waist_w = float(width[band].min()) if len(band) else float(width[y0 : y1 + 1].max())
    wide = np.nonzero(width[y0 : y1 + 1] >= 0.7 * waist_w)[0]
    shoulder_y = y0 + int(wide[0]) if len(wide) else y0
    return y0, shoulder_y, y1, max(1.0, waist_w)


def one_piece_correspondences(person: PersonPrep, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Control points of a product-only dress / jumpsuit, garment (src) -> person (dst), float32 (N, 2) px.

    One similarity along the torso: the garment's waist width (:func:`dress_rows`) becomes the person's
    (``WAIST_PER_HIP`` x the hip-joint distance), its shoulder row goes onto the shoulder line (a halter neck
    or straps above that row end up at the neck), centred on the shoulders. The length keeps the garment's
    aspect, compressed so that the hem ends no lower than :func:`hem_limit` (the ankles + ``HEM_BELOW_ANKLE``
    of the body height) when an ankle is visible."""
    lm = person.landmarks
    p = lm[:, :2].astype(np.float64)
    y0, sh_y, y1, waist_w = dress_rows(mask)
    cols = np.nonzero(mask[sh_y])[0]
    gcx = float(cols.min() + cols.max()) / 2
    s = WAIST_PER_HIP * float(np.linalg.norm(p[L_HIP] - p[R_HIP])) / waist_w
    mid = (p[L_SHOULDER] + p[R_SHOULDER]) / 2
    down = (p[L_HIP] + p[R_HIP]) / 2 - mid
    # the shoulder line on top of the shoulders, as for tops (the joints sit below the seam)
    mid = mid - down * 0.06 * float(np.linalg.norm(p[L_SHOULDER] - p[R_SHOULDER])) / max(
        1e-6, float(np.linalg.norm(down))
    )
    down = down / max(1e-6, float(np.linalg.norm(down)))
    side = np.array([-down[1], down[0]])
    if side[0] < 0:
        side = -side
    length = s * (y1 - sh_y)
    limit = hem_limit(person)
    if limit is not None and down[1] > 1e-6:
        length = min(length, max(1.0, (limit - mid[1]) / down[1]))
    sv = length / max(1.0, s * (y1 - sh_y))  # vertical compression below the shoulder row (1 = none)
    ys, xs = np.nonzero(mask)
    x0, x1 = float(xs.min()), float(xs.max())
    wy = y0 + (y1 - y0) * 0.45
    src = np.array([[x0, sh_y], [x1, sh_y], [x0, wy], [x1, wy], [x0, y1], [x1, y1], [gcx, y0]], np.float64)

    def place(pt: np.ndarray) -> np.ndarray:
        dy = pt[1] - sh_y
        return mid + side * s * (pt[0] - gcx) + down * s * (dy * sv if dy > 0 else dy)

    dst = np.array([place(q) for q in src])
    return src.astype(np.float32), dst.astype(np.float32)


def waistband(mask: np.ndarray, depth: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """Left and right outline points (x, y) px of a garment mask ``depth`` x its height below its top row."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        raise ValueError("empty garment mask")
    y0, y1 = int(ys.min()), int(ys.max())
    row = min(y1, y0 + max(1, round(depth * (y1 - y0))))
    cols = np.nonzero(mask[row])[0]
    return np.array([cols.min(), row], np.float64), np.array([cols.max(), row], np.float64)


def piecewise_affine_warp(
    image: np.ndarray, src: np.ndarray, dst: np.ndarray, out_size: tuple[int, int]
) -> np.ndarray:
    """Warp ``image`` (H, W, C uint8) so that ``src`` points land on ``dst`` points.

    The plane is triangulated (Delaunay, on the destination points plus frame
    points placed by the best similarity transform) and each triangle is warped
    with its own ``cv2.getAffineTransform``. ``out_size`` = (width, height).
    Returns uint8 (out_h, out_w, C); pixels outside every triangle are 0.
    """
    w_out, h_out = out_size
    h_in, w_in = image.shape[:2]
    m, _ = cv2.estimateAffinePartial2D(src, dst)
    if m is None:
        m = cv2.getAffineTransform(src[:3], dst[:3])
    frame_src = np.array(
        [
            [x, y]
            for x in (-0.5 * w_in, 0.5 * w_in, 1.5 * w_in)
            for y in (-0.5 * h_in, 0.5 * h_in, 1.5 * h_in)
            if (x, y) != (0.5 * w_in, 0.5 * h_in)  # outer ring only
        ],
        np.float32,
    )
    frame_dst = (frame_src @ m[:, :2].T + m[:, 2]).astype(np.float32)
    all_src = np.vstack([src, frame_src])
    all_dst = np.vstack([dst, frame_dst])
    lo = all_dst.min(0) - 10
    hi = all_dst.max(0) + 10
    subdiv = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1))
    for pt in all_dst:
        subdiv.insert((float(pt[0]), float(pt[1])))
    out = np.zeros((h_out, w_out, image.shape[2]), np.uint8)
    for t in subdiv.getTriangleList():
        tri = np.asarray(t, np.float32).reshape(3, 2)
        dists = [np.linalg.norm(all_dst - v, axis=1) for v in tri]
        idx = [int(np.argmin(d)) for d in dists]
        # skip triangles on Subdiv2D's virtual outer vertices, and degenerate ones
        if len(set(idx)) < 3 or any(d[i] > 1.0 for d, i in zip(dists, idx, strict=True)):
            continue
        d = all_dst[idx]
        s = all_src[idx]
        x0, y0 = np.floor(d.min(0)).astype(int)
        x1, y1 = np.ceil(d.max(0)).astype(int) + 1
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w_out, x1), min(h_out, y1)
        if x1 <= x0 or y1 <= y0:
            continue
        a = cv2.getAffineTransform(s.astype(np.float32), (d - [x0, y0]).astype(np.float32))
        patch = cv2.warpAffine(  # type: ignore[call-overload]
            image,
            a,
            (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        if patch.ndim == 2:
            patch = patch[:, :, None]
        tmask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(tmask, np.round(d - [x0, y0]).astype(np.int32), (1,))
        region = out[y0:y1, x0:x1]
        region[tmask.astype(bool)] = patch[tmask.astype(bool)]
    return out


def _limb_start(person: PersonPrep, garment: GarmentPrep, joint: int) -> np.ndarray:
    """Where a limb part's start joint goes on the person: for a product-only top, the shoulder anchor the
    torso warp maps the garment's shoulder seam to (widened, raised); else the person's joint."""
    p = person.landmarks[:, :2].astype(np.float64)
    if garment.landmarks is None and joint in (L_SHOULDER, R_SHOULDER):
        sw = float(np.linalg.norm(p[L_SHOULDER] - p[R_SHOULDER]))
        sl, sr = _widen(p[L_SHOULDER], p[R_SHOULDER], 1.12)
        return (sl if joint == L_SHOULDER else sr) + np.array([0.0, -0.06 * sw])
    return p[joint]


def _bottom_torso_affine(person: PersonPrep, pose: GarmentPose, across: float) -> np.ndarray | None:
    """2x3 affine float32 of the waistband-to-crotch part of product-only trousers with leg parts: the
    template's hip-joint midpoint -> knee midpoint onto the person's (:func:`limb_affine`, across-body scale
    ``across``), the transform the thigh parts below it get too, so no seam opens at the crotch. None when
    the person's knees are hidden."""
    lm = person.landmarks
    if min(lm[j, 2] for j in (L_HIP, R_HIP, L_KNEE, R_KNEE)) < 0.5:
        return None
    g = pose.landmarks[:, :2].astype(np.float64)
    p = lm[:, :2].astype(np.float64)
    return limb_affine(
        (g[L_HIP] + g[R_HIP]) / 2,
        (g[L_KNEE] + g[R_KNEE]) / 2,
        (p[L_HIP] + p[R_HIP]) / 2,
        (p[L_KNEE] + p[R_KNEE]) / 2,
        across,
    )


_PARTS_CACHE: list[BoundedLRU] = []  # created on first use (no work at import time)

PartsEntry = tuple[GarmentPose | None, dict[tuple[int, int], np.ndarray], dict[tuple[int, int], np.ndarray]]


def _garment_parts(garment: GarmentPrep, category: TryOnCategory) -> PartsEntry:
    """(pose, part masks, RGBA uint8 per part) of a garment, cached per (sha256, category, size): the
    garment side of :func:`warp_parts` is the same for every person."""
    if not _PARTS_CACHE:
        _PARTS_CACHE.append(byte_lru(128 * 1024 * 1024, max_items=16))
    cache = _PARTS_CACHE[0]
    key = (garment.sha256, category.value, garment.mask.shape, garment.landmarks is None)
    hit = cache.get(key)
    if hit is not None:
        return hit
    pose = garment_pose(garment.mask, garment.landmarks, category)
    labels = part_labels(garment.mask, pose) if pose is not None else {}
    rgba = {k: np.dstack([garment.image, m.astype(np.uint8) * 255]) for k, m in labels.items()}
    entry: PartsEntry = (pose, labels, rgba)
    cache.put(key, entry)
    return entry


def warp_parts(
    person: PersonPrep, garment: GarmentPrep, category: TryOnCategory
) -> tuple[np.ndarray, np.ndarray, GarmentPose | None]:
    """Per-body-part warp (``parts.py``): the torso part by :func:`piecewise_affine_warp` on the torso
    control points, each sleeve / trouser-leg segment by its own joint-to-joint affine, painted over the
    torso. Returns RGB uint8 (H, W, 3), mask bool (H, W) in the person image, and the garment's pose
    (None = no limb parts: the whole garment warped as one piece)."""
    pose, labels, part_rgba = _garment_parts(garment, category)
    if pose is None:
        src, dst = correspondences(person, garment, category)
        rgba = np.dstack([garment.image, garment.mask.astype(np.uint8) * 255])
        warped = piecewise_affine_warp(rgba, src, dst, person.size)
        return warped[:, :, :3], warped[:, :, 3] > 127, None
    torso_garment = garment
    if pose.keypoints is not None:
        torso_garment = replace(garment, keypoints={**garment.keypoints, **pose.keypoints})
    if garment.landmarks is not None:
        part_joints = {j for c in pose.limbs for j in c[1:]}
        limbs = tuple(
            i
            for i in LIMB_JOINTS[category]
            if i not in part_joints and min(person.landmarks[i, 2], garment.landmarks[i, 2]) >= 0.5
        )
        src = body_anchors(garment.landmarks, category, limbs).astype(np.float32)
        dst = body_anchors(person.landmarks, category, limbs).astype(np.float32)
    else:
        src, dst = correspondences(person, torso_garment, category)
    across = float(np.linalg.norm(dst[1] - dst[0])) / max(1.0, float(np.linalg.norm(src[1] - src[0])))
    w, h = person.size
    m_torso = None
    if garment.landmarks is None and category is TryOnCategory.bottom:
        m_torso = _bottom_torso_affine(person, pose, across)
    if m_torso is not None:
        out = cv2.warpAffine(
            part_rgba[(-1, -1)], m_torso, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0)
        )
    else:
        out = piecewise_affine_warp(part_rgba[(-1, -1)], src, dst, person.size)
    g = pose.landmarks[:, :2]
    lm = person.landmarks
    for chain in pose.limbs:
        for a, b in ((chain[0], chain[1]), (chain[1], chain[2])):
            if min(lm[a, 2], lm[b, 2]) < 0.5:
                break  # the person's limb is hidden from here on: that part is not painted
            if (a, b) not in labels or not labels[(a, b)].any():
                continue
            dst_a = _limb_start(person, garment, a) if a == chain[0] else lm[a, :2].astype(np.float64)
            m = limb_affine(g[a], g[b], dst_a, lm[b, :2].astype(np.float64), across)
            warped = cv2.warpAffine(
                part_rgba[(a, b)], m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0)
            )
            sel = warped[:, :, 3] > 127
            out[sel] = warped[sel]
    return out[:, :, :3], out[:, :, 3] > 127, pose


def warp_garment(
    person: PersonPrep, garment: GarmentPrep, category: TryOnCategory
) -> tuple[np.ndarray, np.ndarray]:
    """The garment warped into the person image (:func:`warp_parts`): RGB uint8 (H, W, 3), mask bool (H, W)."""
    rgb, mask, _ = warp_parts(person, garment, category)
    return rgb, mask


def paste_mask(person: PersonPrep, warped_mask: np.ndarray, category: TryOnCategory) -> np.ndarray:
    """Where the preview paints garment pixels, bool (H, W).

    Warped garment ∩ (garment region ∪, for tops and one-pieces, the agnostic mask: the arms a sleeve
    may cover, up to the wrists), minus head and hands.
    """
    allowed = person.garment_region.copy()
    if category is not TryOnCategory.bottom:
        allowed |= person.agnostic_mask
    return warped_mask & allowed & ~person.keep_mask


@dataclass
class RenderLayers:
    """What the preview composited: ``image`` RGB uint8 (H, W, 3); ``alpha`` float32 (H, W) 0..1 of the new
    garment; ``warped_mask`` bool (H, W) (the whole warped garment, before clipping to the body);
    ``replaced`` bool (H, W): old-garment pixels replaced by skin or inpainting; ``pose``: the garment's
    pose (``parts.GarmentPose``, None when it was warped as one piece)."""

    image: np.ndarray
    alpha: np.ndarray
    warped_mask: np.ndarray
    replaced: np.ndarray
    pose: GarmentPose | None


def compose(
    person: PersonPrep,
    garment: GarmentPrep,
    category: TryOnCategory,
    *,
    remove_old: bool = True,
    shading: bool = True,
    feather: float = 0.003,
) -> RenderLayers:
    """The preview's compositing steps: per-part warp (:func:`warp_parts`), paste mask (:func:`paste_mask`),
    old garment replaced where the new one does not cover it (``cleanup.remove_old_garment``), the
    person's shading on the garment (``cleanup.shade``), a feathered alpha edge (Gaussian, sigma =
    ``feather`` x the image's longest side, inwards: the paste mask already excludes head and hands)."""
    rgb, wmask, pose = warp_parts(person, garment, category)
    # erode 1 px: drops the light halo that background removal leaves on the outline
    wmask_e = cv2.erode(wmask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    paste = paste_mask(person, wmask_e, category)
    base = person.image
    replaced = np.zeros(paste.shape, bool)
    if remove_old:
        base, replaced = remove_old_garment(person, paste, category)
    sigma = max(0.8, feather * max(paste.shape))
    alpha = np.asarray(cv2.GaussianBlur(paste.astype(np.float32), (0, 0), sigma), np.float32)
    # feathered inwards only (outside the paste mask the warped colours are undefined): 0.5 at the edge, 1 inside
    alpha = np.clip(alpha * paste, 0.0, 1.0)
    colour = shade(person, rgb) if shading else rgb.astype(np.float32)
    out = base.astype(np.float32) * (1 - alpha[:, :, None]) + colour * alpha[:, :, None]
    image = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return RenderLayers(image, alpha, wmask, replaced, pose)


class PreviewBackend(TryOnBackend):
    """CPU preview: per-body-part pose-guided warp, old garment replaced, shading, feathered composite."""

    name = "preview"
    preview = True

    def render(
        self,
        person_img: Image.Image,
        person_prep: PersonPrep,
        garment_img: Image.Image,
        garment_prep: GarmentPrep,
        category: TryOnCategory,
    ) -> Image.Image:
        return Image.fromarray(compose(person_prep, garment_prep, category).image)


# ---------------------------------------------------------------------------------------------
# FASHN VTON v1.5 adapter
# ---------------------------------------------------------------------------------------------
FASHN_CATEGORIES = {
    TryOnCategory.top: "tops",
    TryOnCategory.bottom: "bottoms",
    TryOnCategory.one_piece: "one-pieces",
}


class FashnBackend(TryOnBackend):
    """Adapter for FASHN VTON v1.5 (``fashn_vton.TryOnPipeline(weights_dir=...)``; code and weights
    Apache-2.0).

    ``parser`` = :attr:`FashnParser.own` (default): the pipeline is built without its human parser
    (``_setup_hp_model`` overridden: fashn-human-parser's non-commercial weights are never downloaded
    or run); :class:`~fittingroom.tryon.fashn_parse.OwnParser` answers its parses with label maps from
    our person analysis (agnostic mask, head, hands) and garment mask, and the call is
    ``pipeline(person_image=, garment_image=, category=, garment_photo_type="model"|"flat-lay",
    segmentation_free=False)``: FASHN repaints our clothing-agnostic region. The images passed are
    the prepared ones (``person_prep.image``, ``garment_prep.image``), in the grid of our masks.

    ``parser`` = :attr:`FashnParser.fashn`: upstream as shipped, ``pipeline(person_image=PIL,
    garment_image=PIL, category="tops"|"bottoms"|"one-pieces")`` (maskless; its parser runs on both
    images; non-commercial). Either returns an object with ``.images[0]`` (PIL), resized here to
    ``person_prep.size``.
    """

    name = "fashn"
    preview = False

    def __init__(
        self, weights_dir: Path | None, module: str = "fashn_vton", parser: FashnParser = FashnParser.own
    ) -> None:
        self.weights_dir = weights_dir
        self.module = module
        self.parser = FashnParser(parser)
        self._pipeline: Any = None
        self._own: OwnParser | None = None

    def load(self) -> None:
        if self._pipeline is not None:
            return
        try:
            mod = importlib.import_module(self.module)
        except ImportError as e:
            raise BackendUnavailable(
                f"the 'fashn' try-on backend needs the {self.module!r} package ({e}); install it from "
                "https://github.com/fashn-AI/fashn-vton-1.5 (see fittingroom/tryon/README.md) or use TRYON_BACKEND=preview"
            ) from None
        if self.weights_dir is None or not (Path(self.weights_dir) / "model.safetensors").is_file():
            raise BackendUnavailable(
                f"FASHN VTON weights not found: expected model.safetensors in {self.weights_dir} "
                "(set TRYON_FASHN_WEIGHTS_DIR; download with the repository's scripts/download_weights.py)"
            )
        if self.parser is FashnParser.fashn:
            self._pipeline = mod.TryOnPipeline(weights_dir=str(self.weights_dir))
            return
        own = OwnParser()

        class OwnParsePipeline(mod.TryOnPipeline):  # type: ignore[misc,name-defined]
            """FASHN's pipeline with our parse in place of fashn-human-parser (never loaded)."""

            def _setup_hp_model(self) -> None:
                self.hp_model = own

        self._pipeline = OwnParsePipeline(weights_dir=str(self.weights_dir))
        self._own = own

    def render(
        self,
        person_img: Image.Image,
        person_prep: PersonPrep,
        garment_img: Image.Image,
        garment_prep: GarmentPrep,
        category: TryOnCategory,
    ) -> Image.Image:
        self.load()
        if self._own is None:
            result = self._pipeline(
                person_image=person_img.convert("RGB"),
                garment_image=garment_img.convert("RGB"),
                category=FASHN_CATEGORIES[category],
            )
        else:
            with self._own.lock:
                self._own.expect(
                    person_label_map(person_prep, category), garment_label_map(garment_prep.mask, category)
                )
                result = self._pipeline(
                    person_image=Image.fromarray(person_prep.image),
                    garment_image=Image.fromarray(garment_prep.image),
                    category=FASHN_CATEGORIES[category],
                    garment_photo_type="model" if garment_prep.landmarks is not None else "flat-lay",
                    segmentation_free=False,
                )
                self._own.done()
        out = result.images[0].convert("RGB")
        if out.size != person_prep.size:
            out = out.resize(person_prep.size, Image.Resampling.LANCZOS)
        return out


def _loaded(backend: TryOnBackend) -> TryOnBackend:
    backend.load()
    return backend


def _fashn_files(weights_dir: str | None = None, parser: str = FashnParser.own.value) -> list[ModelFile]:
    if not weights_dir:
        files = [ModelFile("(TRYON_FASHN_WEIGHTS_DIR not set)", None, "huggingface fashn-ai/fashn-vton-1.5")]
    else:
        path = Path(weights_dir) / "model.safetensors"
        files = [ModelFile(str(path), file_sha256(path), "huggingface fashn-ai/fashn-vton-1.5 (Apache-2.0)")]
    if parser == FashnParser.fashn.value:
        files.append(
            ModelFile(
                "(Hugging Face cache)",
                None,
                "huggingface fashn-ai/fashn-human-parser (NON-COMMERCIAL weights; TRYON_FASHN_PARSER=fashn)",
            )
        )
    return files


def _fashn_factory(weights_dir: str | None = None, parser: str = FashnParser.own.value) -> TryOnBackend:
    return _loaded(FashnBackend(Path(weights_dir) if weights_dir else None, parser=FashnParser(parser)))


TRYON_PREVIEW = ModelSpec(
    name="tryon.preview",
    kind="tryon-renderer",
    source="fittingroom CPU preview: pose-guided piecewise-affine warp (no learned weights)",
    licence="Apache-2.0 (this project's code; no model weights)",
    factory=lambda: _loaded(PreviewBackend()),
    options=frozenset(),
)

TRYON_FASHN = ModelSpec(
    name="tryon.fashn",
    kind="tryon-renderer",
    source="FASHN VTON v1.5 (github.com/fashn-AI/fashn-vton-1.5), GPU",
    licence="FASHN VTON v1.5 code and weights Apache-2.0. Person / garment parse: with TRYON_FASHN_PARSER=own "
    "(default) this project's (fashn-human-parser is never loaded: commercially clean); with "
    "TRYON_FASHN_PARSER=fashn FASHN's fashn-human-parser, whose weights are NON-COMMERCIAL only",
    factory=_fashn_factory,
    options=frozenset({"weights_dir", "parser"}),
    files=_fashn_files,
    notes="option parser: 'own' (default, commercially clean) or 'fashn' (non-commercial human parser)",
)

RENDERERS: dict[str, ModelSpec] = {"preview": TRYON_PREVIEW, "fashn": TRYON_FASHN}


def create_backend(
    name: str,
    *,
    fashn_weights_dir: Path | None = None,
    fashn_parser: FashnParser = FashnParser.own,
    shelf: ModelShelf | None = None,
) -> TryOnBackend:
    """The loaded renderer ``name`` ('preview' or 'fashn') from the model shelf (once per process);
    ``fashn_parser``: who parses person and garment for 'fashn' (:class:`FashnParser`).

    Raises BackendUnavailable for an unknown name or a renderer that cannot load.
    """
    spec = RENDERERS.get(name)
    if spec is None:
        raise BackendUnavailable(f"unknown try-on backend {name!r}: choose 'preview' or 'fashn'")
    options = (
        {
            "weights_dir": str(fashn_weights_dir) if fashn_weights_dir else None,
            "parser": FashnParser(fashn_parser).value,
        }
        if name == "fashn"
        else {}
    )
    return (shelf or default_shelf()).get(spec, **options)  # type: ignore[no-any-return]
