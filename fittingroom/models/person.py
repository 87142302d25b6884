"""Person analysis of a photo: person mask and body landmarks (mediapipe, CPU).

* Person mask: MediaPipe Selfie Segmentation (general model, 256x256 input;
  model card: https://storage.googleapis.com/mediapipe-assets/Model%20Card%20MediaPipe%20Selfie%20Segmentation.pdf),
  ``selfie_segmentation.tflite`` shipped in the mediapipe==0.10.21 wheel.
* Landmarks: MediaPipe Pose / BlazePose full (33 landmarks; Bazarevsky et al. 2020,
  https://arxiv.org/abs/2006.10204), ``pose_landmark_full.tflite`` from the same wheel.

Both run once per uploaded image and are cached with its embedding. The legacy
``mediapipe.solutions`` graphs are not thread-safe: calls are serialised with a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

# BlazePose landmark indices
NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR, MOUTH_LEFT, MOUTH_RIGHT = 0, 2, 5, 7, 8, 9, 10
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP = 11, 12, 23, 24
LEFT_KNEE, RIGHT_KNEE, LEFT_ANKLE, RIGHT_ANKLE = 25, 26, 27, 28
LEFT_WRIST, RIGHT_WRIST = 15, 16
FACE_LANDMARKS = (NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR, MOUTH_LEFT, MOUTH_RIGHT)
MIN_VISIBILITY = 0.5


@dataclass
class PersonAnalysis:
    """Cues about the main person of one image (all in original-image pixels).

    ``person_mask``: bool ``[H, W]`` or None when no person was found;
    ``landmarks``: float32 ``[33, 3]`` (x, y, visibility in 0..1) or None.
    """

    width: int
    height: int
    person_mask: np.ndarray | None
    landmarks: np.ndarray | None

    def point(self, index: int) -> tuple[float, float] | None:
        """Landmark ``index`` as (x, y) if it is visible and inside the image."""
        if self.landmarks is None:
            return None
        x, y, vis = (float(v) for v in self.landmarks[index])
        if vis < MIN_VISIBILITY or not (0 <= x < self.width and 0 <= y < self.height):
            return None
        return x, y

    def face_points(self) -> list[tuple[float, float]]:
        return [p for i in FACE_LANDMARKS if (p := self.point(i)) is not None]

    def face_box(self) -> tuple[float, float, float, float] | None:
        """Approximate head box (x0, y0, x1, y1) around the face landmarks, or None.

        The face landmarks span eyes/ears/mouth; the head is grown from their extent
        using the eye-to-mouth distance as scale (covers forehead, chin and the hair
        close to the face).
        """
        pts = self.face_points()
        if len(pts) < 3:
            return None
        a = np.array(pts)
        x0, y0 = a.min(0)
        x1, y1 = a.max(0)
        scale = max(x1 - x0, y1 - y0, 8.0)
        return (
            max(0.0, x0 - 0.35 * scale),
            max(0.0, y0 - 0.9 * scale),
            min(float(self.width), x1 + 0.35 * scale),
            min(float(self.height), y1 + 0.6 * scale),
        )

    def face_mask(self) -> np.ndarray | None:
        """bool ``[H, W]``: an ellipse inscribed in :meth:`face_box`, or None."""
        box = self.face_box()
        if box is None:
            return None
        x0, y0, x1, y1 = box
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, max((x1 - x0) / 2, 1), max((y1 - y0) / 2, 1)
        yy, xx = np.ogrid[: self.height, : self.width]
        return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0


class PersonAnalyzer:
    """The one person analyser of a process: MediaPipe Selfie Segmentation (general model,
    ``model_selection=0``) and MediaPipe Pose (BlazePose full, ``model_complexity=1``, with its
    segmentation output), both shipped in the mediapipe==0.10.21 wheel (Apache-2.0).

    Loads both graphs in ``__init__``. The legacy ``mediapipe.solutions`` graphs are not
    thread-safe, so every call is serialised with a lock. Used by segmentation (person cues
    for mask ranking) and try-on (person mask + pose landmarks): one instance per process,
    from the model shelf (``fittingroom.models.specs.PERSON``).
    """

    def __init__(self, *, threshold: float = 0.5) -> None:
        import mediapipe as mp

        self.threshold = threshold
        self._selfie = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True, model_complexity=1, enable_segmentation=True, min_detection_confidence=0.5
        )
        self._lock = threading.Lock()
        self.name = "mediapipe-selfie0-pose-full"

    def run(self, rgb: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """Raw outputs for an RGB uint8 ``[H, W, 3]`` array: (selfie probability float32 ``[H, W]``
        or None, pose segmentation probability float32 ``[H, W]`` or None, landmarks float32
        ``[33, 3]`` = (x px, y px, visibility 0..1) or None)."""
        rgb = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        with self._lock:
            seg = self._selfie.process(rgb)
            pose = self._pose.process(rgb)
        selfie = None if seg.segmentation_mask is None else np.asarray(seg.segmentation_mask, np.float32)
        pose_seg = None if pose.segmentation_mask is None else np.asarray(pose.segmentation_mask, np.float32)
        landmarks = None
        if pose.pose_landmarks is not None:
            landmarks = np.array(
                [(lm.x * w, lm.y * h, lm.visibility) for lm in pose.pose_landmarks.landmark], dtype=np.float32
            )
        return selfie, pose_seg, landmarks

    def analyze(self, image: Image.Image) -> PersonAnalysis:
        """Person mask (selfie segmentation > threshold, None when under 1 % of the image) and
        landmarks of the main person, in ``image``'s pixels."""
        rgb = np.asarray(image.convert("RGB"))
        h, w = rgb.shape[:2]
        selfie, _pose_seg, landmarks = self.run(rgb)
        mask = None
        if selfie is not None:
            mask = selfie > self.threshold
            if mask.sum() < 0.01 * h * w:
                mask = None
        return PersonAnalysis(width=w, height=h, person_mask=mask, landmarks=landmarks)

    def close(self) -> None:
        self._selfie.close()
        self._pose.close()
