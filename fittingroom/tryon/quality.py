"""Quality gate of one render: scores and ``good | poor`` with reasons (any backend).

Scores, all from the person preparation and the rendered image (no backend internals):

* ``coverage``: share of the garment region (``PersonPrep.garment_region``) the render changed
  (mean absolute RGB difference > ``CHANGED_MIN``), 0..1.
* ``old_garment_leak``: share of the core of the person's current garment (garment region inside
  the silhouette, eroded) left unchanged, 0..1. A new garment of the same colour as the old one reads
  as a leak: the score is an upper bound.
* ``outside_body``: share of changed pixels away from the person silhouette, 0..1.
* ``face_change``: mean absolute difference (0..255) in the face box.
* ``pose_confidence``: mean BlazePose visibility of the landmarks the category needs, 0..1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from fittingroom.tryon.person import REQUIRED_LANDMARKS, PersonPrep

CHANGED_MIN = 12.0
#: (score, comparison, threshold, reason) -- a render failing any is ``poor``.
GATES: tuple[tuple[str, str, float, str], ...] = (
    ("coverage", ">=", 0.6, "the new garment covers too little of the garment region"),
    ("old_garment_leak", "<=", 0.35, "too much of the old garment still shows"),
    ("outside_body", "<=", 0.15, "garment pixels spill off the body"),
    ("face_change", "<=", 2.0, "the face was changed"),
    ("pose_confidence", ">=", 0.7, "the pose is uncertain (landmarks hidden or unclear)"),
)


@dataclass
class RenderQuality:
    """``scores`` (name -> float, see the module doc), ``quality`` 'good' | 'poor', ``reasons``."""

    scores: dict[str, float]
    quality: str
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"scores": self.scores, "quality": self.quality, "reasons": self.reasons}


def assess(person: PersonPrep, render: np.ndarray) -> RenderQuality:
    """Scores and verdict of ``render`` (RGB uint8 (H, W, 3), the person image's size)."""
    base = person.image.astype(np.float32)
    out = np.asarray(render, np.float32)
    if out.shape != base.shape:
        raise ValueError(f"render shape {out.shape} differs from the person image {base.shape}")
    changed = np.abs(out - base).mean(2) > CHANGED_MIN
    region = person.garment_region
    n_region = max(1, int(region.sum()))
    core_u8 = (region & person.person_mask).astype(np.uint8)
    core = cv2.erode(core_u8, np.ones((7, 7), np.uint8)).astype(bool)
    body = cv2.dilate(person.person_mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    x0, y0, x1, y1 = person.face_box
    face = np.abs(out[y0:y1, x0:x1] - base[y0:y1, x0:x1])
    req = list(REQUIRED_LANDMARKS[person.category])
    scores = {
        "coverage": round(float((changed & region).sum()) / n_region, 4),
        "old_garment_leak": round(float((core & ~changed).sum()) / max(1, int(core.sum())), 4),
        "outside_body": round(float((changed & ~body).sum()) / max(1, int(changed.sum())), 4),
        "face_change": round(float(face.mean()) if face.size else 0.0, 3),
        "pose_confidence": round(float(np.mean(person.landmarks[req, 2])), 4),
    }
    reasons = [
        f"{reason} ({name} {scores[name]} {'<' if op == '>=' else '>'} {thr})"
        for name, op, thr, reason in GATES
        if not (scores[name] >= thr if op == ">=" else scores[name] <= thr)
    ]
    return RenderQuality(scores, "poor" if reasons else "good", reasons)
