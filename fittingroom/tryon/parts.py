"""Per-body-part garment transfer: torso, upper arms, forearms, thighs, shins.

A garment gets a pose of its own (:func:`garment_pose`): the model's BlazePose landmarks for a garment cut
out of an on-model photo, else a *template pose* found from the product-only mask's shape (sleeves:
the mask outside the torso columns, cuff = their far end from the shoulder; trouser legs: the two runs
below the crotch). Each garment pixel belongs to one part (:func:`part_labels`): the torso (skirt or
dress body included), or the nearest limb segment. Each limb part is moved by its own affine transform
(:func:`limb_affine`: the segment's two joints onto the person's two joints, across-limb scale = the
torso's), so sleeves and trouser legs follow the person's limbs, bent ones included.

Coordinates are pixels (x, y), origin top left; landmarks are float (33, 3) = x, y, visibility.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    TryOnCategory,
)

MIN_VIS = 0.5
#: Limb chains (start, middle, end joint) per side: arms for tops, legs for bottoms.
ARMS = ((L_SHOULDER, L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW, R_WRIST))
LEGS = ((L_HIP, L_KNEE, L_ANKLE), (R_HIP, R_KNEE, R_ANKLE))
#: A sleeve at least this long relative to the garment's torso length (shoulder -> hem) is a long sleeve.
LONG_SLEEVE_RATIO = 0.85
#: Trouser legs at least this long relative to the waistband width are full length.
FULL_LEG_RATIO = 1.8
#: Limb parts overlap the torso part by this share of the garment mask's height.
PART_OVERLAP = 0.015
#: A limb "reaches" its end joint when its covered length is within this share of the limb length.
REACH_TOL = 0.1


@dataclass
class GarmentPose:
    """A garment's pose: ``landmarks`` float64 (33, 3) in the garment image; ``limbs``: the (start, mid,
    end) chains with garment parts (sleeves / legs); ``full``: per chain, whether the garment reaches the
    end joint (long sleeve, full-length leg); ``torso``: polygon float64 (N, 2) of the torso part;
    ``keypoints``: corrected outline key points of the torso (product-only tops with sleeves: the
    sleeves are not the torso's width), else None."""

    landmarks: np.ndarray
    limbs: tuple[tuple[int, int, int], ...]
    full: tuple[bool, ...]
    torso: np.ndarray
    keypoints: dict[str, tuple[float, float]] | None = None


def _runs(row: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], row.astype(np.int8), [0]]))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist(), strict=True))


def _central_run(row: np.ndarray, cx: int) -> tuple[int, int] | None:
    for a, b in _runs(row):
        if a <= cx < b:
            return a, b
    return None


def _tip(pts: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Mean of the 5 % of ``pts`` farthest from ``origin`` (a cuff or hem centre)."""
    d = np.linalg.norm(pts - origin, axis=1)
    far = pts[d >= np.percentile(d, 95)]
    return far.mean(0)


def _template_top(mask: np.ndarray) -> GarmentPose:
    ys, xs = np.nonzero(mask)
    y0, y1 = int(ys.min()), int(ys.max())
    gh = max(1, y1 - y0)
    cx = int(round(np.median(xs)))
    # torso columns: the central run in the lowest rows it exists (the hem), below the sleeves
    runs = [(y, _central_run(mask[y], cx)) for y in range(y0, y1 + 1)]
    central = [(y, r) for y, r in runs if r is not None]
    hem_y = central[-1][0]
    low = [r for y, r in central if y >= hem_y - 0.08 * gh]
    # a sleeve cuff touching the hem merges with it on one side: the torso is symmetric, take the nearer edge
    half = min(cx - float(np.median([a for a, _ in low])), float(np.median([b for _, b in low])) - cx)
    tl, tr = cx - half, cx + half
    tw = max(1.0, tr - tl)
    margin = 0.04 * tw
    sy = y0 + 0.07 * gh
    lm = np.zeros((33, 3), np.float64)
    torso_len = max(1.0, hem_y - sy)
    # hips as the person anchors expect them: the hem sits 12 % of the torso below the hips
    hip_y = sy + (hem_y - sy) / 1.12
    # a front view: the wearer's left is the image's right
    lm[L_SHOULDER] = (tr, sy, 1)
    lm[R_SHOULDER] = (tl, sy, 1)
    lm[L_HIP] = (tr - 0.1 * tw, hip_y, 1)
    lm[R_HIP] = (tl + 0.1 * tw, hip_y, 1)
    limbs, full = [], []
    yy, xx = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    upper = yy < y0 + 0.98 * gh
    for (s, e, w), side in zip(ARMS, (xx > tr + margin, xx < tl - margin), strict=True):
        sleeve = mask & side & upper
        if sleeve.sum() < 0.02 * mask.sum():
            continue
        pts = np.column_stack([xx[sleeve], yy[sleeve]]).astype(np.float64)
        sh = lm[s, :2]
        tip = _tip(pts, sh)
        length = float(np.linalg.norm(tip - sh))
        long_sleeve = length >= LONG_SLEEVE_RATIO * torso_len
        wrist = tip if long_sleeve else sh + (tip - sh) / max(1e-6, length) * 1.15 * torso_len
        lm[w] = (*wrist, 1)
        lm[e] = (*(sh + 0.5 * (wrist - sh)), 1)
        limbs.append((s, e, w))
        full.append(long_sleeve)
    torso = np.array(
        [[tl - margin, y0 - 1], [tr + margin, y0 - 1], [tr + margin, y1 + 1], [tl - margin, y1 + 1]]
    )
    wy = sy + 0.55 * (hem_y - sy)
    kp = {
        "shoulder_left": (tl, sy),
        "shoulder_right": (tr, sy),
        "waist_left": (tl, wy),
        "waist_right": (tr, wy),
        "hem_left": (tl, float(hem_y)),
        "hem_right": (tr, float(hem_y)),
    }
    return GarmentPose(lm, tuple(limbs), tuple(full), torso, kp if limbs else None)


#: Trousers whose legs touch (no clean crotch above this share of the mask length) are split from here.
CROTCH_MAX_SHARE = 0.3
#: A bottom without a gap between the legs that is at some row this many times its waistband wide is a
#: skirt (flared); trousers and shorts stay within about 1.45 waistbands.
SKIRT_FLARE = 1.5
#: Without a notch between the legs at the hem, only a bottom this many waistbands long is split as
#: trousers (a knee-length pencil skirt is shorter).
TOUCHING_LEGS_MIN_LENGTH = 2.5


def _crotch_row(mask: np.ndarray, y0: int, y1: int, cx: int) -> int | None:
    """First row from 15 % of the height down where the centre column ``cx`` leaves the mask and the row
    splits into two runs, the gap persisting 5 % and 10 % of the height lower (not a hole or a slit)."""
    gh = max(1, y1 - y0)
    for y in range(y0 + int(0.15 * gh), y1 - int(0.1 * gh)):
        below_gap = all(not mask[min(y1, y + k), cx] for k in (int(0.05 * gh), int(0.1 * gh)))
        if not mask[y, cx] and len(_runs(mask[y])) >= 2 and below_gap:
            return y
    return None


def _legs_touch(mask: np.ndarray, y0: int, y1: int, cx: int, waist_w: float) -> bool:
    """Whether a bottom without a crotch gap is trousers / shorts with touching legs, not a skirt: never
    wider than ``SKIRT_FLARE`` x the waistband ``waist_w``, and either a notch between the legs at the hem
    (the centre column ``cx`` ends 2 % of the height above both legs) or at least
    ``TOUCHING_LEGS_MIN_LENGTH`` waistbands long."""
    gh = max(1, y1 - y0)
    cols = mask[y0 : y1 + 1]
    has = cols.any(0)
    xs = np.nonzero(has)[0]
    if xs.max() - xs.min() > SKIRT_FLARE * waist_w:
        return False
    lowest = np.where(has, gh - np.argmax(cols[::-1], 0), -1)  # rows below y0 of each column's last pixel
    left, right = lowest[xs.min() : cx], lowest[cx + 1 : xs.max() + 1]
    if len(left) and len(right) and min(left.max(), right.max()) - lowest[cx] >= 0.02 * gh:
        return True
    return gh >= TOUCHING_LEGS_MIN_LENGTH * waist_w


def _split_columns(mask: np.ndarray, crotch: int, cx: int) -> np.ndarray:
    """Per row, the column between the left and the right leg, int (H,): the middle of the gap nearest
    ``cx`` where the row has one, else ``cx`` (legs that touch are cut down the middle)."""
    split = np.full(mask.shape[0], cx, np.int64)
    for y in range(crotch, mask.shape[0]):
        runs = _runs(mask[y])
        gaps = [(b0, a1) for (_, b0), (a1, _) in zip(runs, runs[1:], strict=False)]
        if gaps:
            g0, g1 = min(gaps, key=lambda g: abs((g[0] + g[1]) / 2 - cx))
            split[y] = (g0 + g1) // 2
    return split


def _template_bottom(mask: np.ndarray) -> GarmentPose | None:
    """Template pose of trousers / shorts (two legs below a crotch); None for a skirt.

    The crotch is the first row where the legs part (:func:`_crotch_row`); trousers whose legs touch
    (no gap, or a gap only below ``CROTCH_MAX_SHARE`` of the length on full-length trousers) are split
    from ``CROTCH_MAX_SHARE`` of the mask length down, along the gap where there is one.
    """
    ys, xs = np.nonzero(mask)
    y0, y1 = int(ys.min()), int(ys.max())
    gh = max(1, y1 - y0)
    cx = int(round(np.median(xs)))
    wb = [r for r in (_central_run(mask[y], cx) for y in range(y0, y0 + max(2, int(0.05 * gh)))) if r]
    if not wb:
        return None
    wl, wr = float(np.median([a for a, _ in wb])), float(np.median([b for _, b in wb]))
    ww = max(1.0, wr - wl)
    crotch = _crotch_row(mask, y0, y1, cx)
    low_crotch = y0 + int(CROTCH_MAX_SHARE * gh)
    if crotch is None:
        if not _legs_touch(mask, y0, y1, cx, ww):
            return None
        crotch = low_crotch
    elif crotch > low_crotch and gh >= FULL_LEG_RATIO * ww:
        crotch = low_crotch  # full-length legs touching down to the knees: split at the usual rise
    split = _split_columns(mask, crotch, cx)
    mid = (wl + wr) / 2
    hip_half = ww / 2 / 1.45
    # the waistband is the hip line raised by 45 % of the hip-joint distance (person.waist_rise)
    hip_y = y0 + 0.45 * 2 * hip_half
    lm = np.zeros((33, 3), np.float64)
    lm[L_HIP] = (mid + hip_half, hip_y, 1)  # front view: the wearer's left is the image's right
    lm[R_HIP] = (mid - hip_half, hip_y, 1)
    yy, xx = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    limbs, full = [], []
    below = yy > crotch
    right_of = xx >= split[:, None]
    for (h, k, a), side in zip(LEGS, (right_of, ~right_of), strict=True):
        leg = mask & below & side
        if leg.sum() < 0.02 * mask.sum():
            return None
        pts = np.column_stack([xx[leg], yy[leg]]).astype(np.float64)
        hip = lm[h, :2]
        tip = _tip(pts, hip)
        length = float(np.linalg.norm(tip - hip))
        is_full = length >= FULL_LEG_RATIO * ww
        ankle = tip if is_full else hip + (tip - hip) / max(1e-6, length) * 2.5 * ww
        lm[a] = (*ankle, 1)
        lm[k] = (*(hip + 0.5 * (ankle - hip)), 1)
        limbs.append((h, k, a))
        full.append(is_full)
    # the waistband-to-crotch part reaches 4 % of the length below the crotch (the thigh parts paint over
    # it): no seam opens where the warps meet
    low = crotch + 1 + 0.04 * gh
    torso = np.array([[wl - ww, y0 - 1], [wr + ww, y0 - 1], [wr + ww, low], [wl - ww, low]])
    return GarmentPose(lm, tuple(limbs), tuple(full), torso)


def covered_reach(mask: np.ndarray, lm: np.ndarray, chain: tuple[int, int, int], radius: float) -> float:
    """Share 0..1 of the limb chain (start -> mid -> end joint, by length) covered by ``mask`` from the start:
    the farthest of 60 samples along the chain with a ``mask`` pixel within ``radius`` px."""
    pts = lm[list(chain), :2].astype(np.float64)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    total = float(seg.sum())
    if total <= 0:
        return 0.0
    h, w = mask.shape
    r = max(1, int(radius))
    best = 0.0
    for t in np.linspace(0.0, 1.0, 61):
        d = t * total
        i = 0 if d <= seg[0] else 1
        f = d / max(1e-6, seg[0]) if i == 0 else (d - seg[0]) / max(1e-6, seg[1])
        x, y = pts[i] + min(1.0, f) * (pts[i + 1] - pts[i])
        xi, yi = int(round(x)), int(round(y))
        if (
            0 <= xi < w
            and 0 <= yi < h
            and mask[max(0, yi - r) : yi + r + 1, max(0, xi - r) : xi + r + 1].any()
        ):
            best = t
    return float(best)


def _onmodel_pose(mask: np.ndarray, lm: np.ndarray, category: TryOnCategory) -> GarmentPose:
    lm = lm.astype(np.float64)
    p = lm[:, :2]
    chains = ARMS if category is TryOnCategory.top else LEGS if category is TryOnCategory.bottom else ()
    limbs = tuple(c for c in chains if min(lm[j, 2] for j in c) >= MIN_VIS)
    if category is TryOnCategory.bottom:
        # a standing model's legs go down the image (BlazePose on a waist-down shot may return a flipped pose)
        limbs = tuple(c for c in limbs if p[c[0], 1] < p[c[1], 1] < p[c[2], 1])
    if category is TryOnCategory.bottom:
        hw = float(np.linalg.norm(p[L_HIP] - p[R_HIP]))
        radius = 0.25 * hw
        crotch_y = max(p[L_HIP, 1], p[R_HIP, 1]) + 0.35 * hw
        torso = np.array(
            [[p[:, 0].min() - 1e4, -1e4], [p[:, 0].max() + 1e4, -1e4], [1e4, crotch_y], [-1e4, crotch_y]]
        )
    else:
        sw = float(np.linalg.norm(p[L_SHOULDER] - p[R_SHOULDER]))
        radius = 0.25 * sw
        sl, sr = p[L_SHOULDER], p[R_SHOULDER]
        hl, hr = p[L_HIP], p[R_HIP]
        c = (sl + sr + hl + hr) / 4
        quad = np.array([sl, sr, hr + (hr - hl) * 0.25, hl - (hr - hl) * 0.25])
        quad = c + (quad - c) * 1.08
        up = np.array([0.0, -2.0 * sw])
        torso = np.array([quad[0] + up, quad[1] + up, quad[1], quad[2], quad[3], quad[0]])
    full = tuple(covered_reach(mask, lm, c, radius) >= 1 - REACH_TOL for c in limbs)
    return GarmentPose(lm, limbs, full, torso)


def garment_pose(
    mask: np.ndarray, landmarks: np.ndarray | None, category: TryOnCategory
) -> GarmentPose | None:
    """The garment's pose (see the module doc); None when it has no limb parts (sleeveless top, skirt,
    dress: the whole garment is then one torso part)."""
    if not mask.any() or category is TryOnCategory.one_piece:
        return None
    pose: GarmentPose | None
    if landmarks is not None:
        pose = _onmodel_pose(mask, landmarks, category)
    elif category is TryOnCategory.top:
        pose = _template_top(mask)
    else:
        pose = _template_bottom(mask)
    return pose if pose is not None and pose.limbs else None


def _seg_dist(px: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of points (N, 2) to segment a-b, and their position t along it (unclipped)."""
    ab = b - a
    t = ((px - a) @ ab) / max(1e-9, float(ab @ ab))
    proj = a + np.clip(t, 0, 1)[:, None] * ab
    return np.linalg.norm(px - proj, axis=1), t


def part_labels(mask: np.ndarray, pose: GarmentPose) -> dict[tuple[int, int], np.ndarray]:
    """Garment pixels per part, bool (H, W) each: key (-1, -1) = torso, (j0, j1) = the limb segment from joint
    j0 to j1. Limb parts overlap their neighbours by 15 % of their length at the joints (no gap at a bend)."""
    h, w = mask.shape
    torso = np.zeros((h, w), np.uint8)
    cv2.fillPoly(torso, [np.round(pose.torso).astype(np.int32)], (1,))
    torso_m = mask & torso.astype(bool)
    # limb parts also take the torso's pixels within PART_OVERLAP of the mask height of its edge: both warps
    # paint that band (limbs last), so no one-pixel crack opens where two affines meet
    rows = np.nonzero(mask.any(1))[0]
    k = max(2, int(PART_OVERLAP * (rows[-1] - rows[0]))) if len(rows) else 2
    core = cv2.erode(torso, np.ones((2 * k + 1, 2 * k + 1), np.uint8)).astype(bool)
    ys, xs = np.nonzero(mask & ~core)
    out: dict[tuple[int, int], np.ndarray] = {(-1, -1): torso_m}
    if len(ys) == 0:
        return out
    px = np.column_stack([xs, ys]).astype(np.float64)
    p = pose.landmarks[:, :2]
    segs = [(c[0], c[1]) for c in pose.limbs] + [(c[1], c[2]) for c in pose.limbs]
    dists, ts = zip(*(_seg_dist(px, p[a], p[b]) for a, b in segs), strict=True)
    nearest = np.argmin(np.vstack(dists), axis=0)
    n = len(pose.limbs)
    for k, (a, b) in enumerate(segs):
        upper = k < n
        j = k + n if upper else k - n  # the other segment of the same chain
        # own pixels, plus the other segment's pixels near the shared joint
        near_joint = (nearest == j) & ((ts[j] < 0.15) if upper else (ts[j] > 0.85))
        sel = (nearest == k) | near_joint
        m = np.zeros((h, w), bool)
        m[ys[sel], xs[sel]] = True
        out[(a, b)] = m
    return out


def limb_affine(
    src_a: np.ndarray, src_b: np.ndarray, dst_a: np.ndarray, dst_b: np.ndarray, across: float
) -> np.ndarray:
    """2x3 affine float32 moving segment src_a-src_b onto dst_a-dst_b; across the limb the scale is ``across``."""
    u = src_b - src_a
    v = dst_b - dst_a
    n_src = np.array([-u[1], u[0]]) / max(1e-6, float(np.linalg.norm(u)))
    n_dst = np.array([-v[1], v[0]]) / max(1e-6, float(np.linalg.norm(v)))
    d = 50.0
    src = np.array([src_a, src_b, src_a + n_src * d], np.float32)
    dst = np.array([dst_a, dst_b, dst_a + n_dst * d * across], np.float32)
    return cv2.getAffineTransform(src, dst)
