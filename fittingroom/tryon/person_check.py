"""Person check before any render: one real, front-facing person large enough to dress.

BlazePose (``fittingroom.models.person``) happily reports confident landmarks on a flat-lay
shirt or a pair of trousers, so its landmarks alone do not prove a person. The check adds an
independent face detector, MediaPipe Face Detection (full-range model, ``model_selection=1``;
BlazeFace, Bazarevsky et al. 2019, Apache-2.0, shipped in the ``mediapipe==0.10.21`` wheel), and
requires:

* exactly one face large enough to be the main person (a second face at least half as large as
  the first = several people);
* that face where the pose says the head is (the pose nose inside the face box grown by 50 %).

A photo failing either raises :class:`~fittingroom.tryon.person.TryOnInputError` with the reason
(HTTP 422). The detector is a model-shelf entry (:data:`FACE_DETECTOR`), built once per process.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from fittingroom.models.registry import ModelSpec

NOSE = 0
#: A face smaller than this share of the main face's width is a bystander, not a second person.
SECOND_FACE_MIN_RATIO = 0.5


class FaceDetector:
    """Thread-safe wrapper of MediaPipe Face Detection (full range)."""

    def __init__(self, min_confidence: float = 0.5) -> None:
        import mediapipe as mp

        self._fd = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_confidence
        )
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        """Faces in an RGB uint8 (H, W, 3) image: [(x0, y0, x1, y1 px, score 0..1)], largest first."""
        h, w = rgb.shape[:2]
        with self._lock:
            res = self._fd.process(np.ascontiguousarray(rgb))
        out = []
        for det in res.detections or []:
            b = det.location_data.relative_bounding_box
            x0, y0 = b.xmin * w, b.ymin * h
            out.append((x0, y0, x0 + b.width * w, y0 + b.height * h, float(det.score[0])))
        return sorted(out, key=lambda f: -(f[2] - f[0]))

    def close(self) -> None:
        self._fd.close()


def _face_detector_files() -> list[Any]:
    from pathlib import Path

    import mediapipe

    from fittingroom.models.registry import ModelFile, file_sha256

    path = Path(mediapipe.__file__).parent / "modules" / "face_detection" / "face_detection_full_range.tflite"
    return [ModelFile(str(path), file_sha256(path) if path.is_file() else None, "mediapipe==0.10.21 wheel")]


FACE_DETECTOR = ModelSpec(
    name="person.face_detection",
    kind="person",
    source="MediaPipe Face Detection, full-range BlazeFace (Bazarevsky et al. 2019), mediapipe==0.10.21 wheel",
    licence="Apache-2.0",
    factory=lambda: FaceDetector(),
    options=frozenset(),
    files=lambda: _face_detector_files(),
    close=lambda det: det.close(),
)


def check_faces(
    faces: list[tuple[float, float, float, float, float]], landmarks: np.ndarray, size: tuple[int, int]
) -> None:
    """Raise TryOnInputError unless ``faces`` (from :meth:`FaceDetector.detect`) show one person whose
    face is where the pose ``landmarks`` (float32 (33, 3) px) put the head. ``size`` = (width, height)."""
    from fittingroom.tryon.person import TryOnInputError

    if not faces:
        raise TryOnInputError(
            "no person found in the photo (no face visible): upload a photo showing one person, facing the camera"
        )
    main_w = faces[0][2] - faces[0][0]
    others = [f for f in faces[1:] if (f[2] - f[0]) >= SECOND_FACE_MIN_RATIO * main_w]
    if others:
        raise TryOnInputError("more than one person in the photo: upload a photo showing only you")
    x0, y0, x1, y1, _ = faces[0]
    gx, gy = 0.5 * (x1 - x0), 0.5 * (y1 - y0)
    nx, ny = float(landmarks[NOSE, 0]), float(landmarks[NOSE, 1])
    if not (x0 - gx <= nx <= x1 + gx and y0 - gy <= ny <= y1 + gy):
        raise TryOnInputError(
            "no person found in the photo (the body found does not match the face): "
            "upload a photo showing one person"
        )


# BlazePose indices (kept here so this module needs nothing from ``person.py`` at import time)
_SHOULDERS, _HIPS, _KNEES, _ANKLES = (11, 12), (23, 24), (25, 26), (27, 28)
#: A knee must lie this many hip-joint distances below its hip, an ankle below its knee.
LEG_DROP_MIN = 0.5


def implausible_pose(landmarks: np.ndarray, category: str, min_visibility: float = 0.5) -> str | None:
    """Why a pose cannot carry a garment of ``category`` (``top`` | ``bottom`` | ``one_piece``), or None.

    ``landmarks``: float (33, 3) = x px, y px (origin top left), visibility 0..1. Reasons (user facing,
    HTTP 422): the hips are hidden; the shoulders (when visible) are not above the hips (lying, upside
    down, or BlazePose flipped on a waist-down shot); for bottoms and one-pieces only, a visible knee not
    ``LEG_DROP_MIN`` hip-joint distances below its hip (sitting, a flipped pose) or a visible ankle not
    that far below its knee.
    """
    lm = np.asarray(landmarks, np.float64)
    vis = lm[:, 2] >= min_visibility
    y = lm[:, 1]
    if not vis[list(_HIPS)].all():
        return "the pose cannot carry the garment: the hips are hidden; upload a photo showing your hips"
    hip_w = max(1.0, float(np.linalg.norm(lm[_HIPS[0], :2] - lm[_HIPS[1], :2])))
    if vis[list(_SHOULDERS)].all():
        shoulder_w = float(np.linalg.norm(lm[_SHOULDERS[0], :2] - lm[_SHOULDERS[1], :2]))
        if y[list(_HIPS)].mean() - y[list(_SHOULDERS)].mean() < 0.3 * max(shoulder_w, hip_w):
            return (
                "the pose cannot carry the garment: the shoulders are not above the hips (lying or upside "
                "down); upload a photo standing"
            )
    if category not in ("bottom", "one_piece"):
        return None
    for hip, knee, ankle in zip(_HIPS, _KNEES, _ANKLES, strict=True):
        if vis[knee] and y[knee] - y[hip] < LEG_DROP_MIN * hip_w:
            return (
                "the pose cannot carry the garment: the knees are not below the hips (sitting or bent); "
                "upload a photo standing"
            )
        if vis[knee] and vis[ankle] and y[ankle] - y[knee] < LEG_DROP_MIN * hip_w:
            return "the pose cannot carry the garment: the ankles are not below the knees; upload a photo standing"
    return None
