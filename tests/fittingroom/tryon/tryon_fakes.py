"""Synthetic model photo, fake person analyser and face detector of the try-on unit tests."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

W, H = 256, 384
#: (x, y) px of the BlazePose landmarks of a front-facing synthetic person (image left = person's left).
POINTS = {
    0: (128, 50), 2: (120, 44), 5: (136, 44), 7: (112, 48), 8: (144, 48), 9: (122, 62), 10: (134, 62),
    11: (166, 100), 12: (90, 100), 13: (186, 160), 14: (70, 160), 15: (191, 215), 16: (65, 215),
    17: (193, 225), 18: (63, 225), 19: (191, 228), 20: (65, 228), 21: (188, 222), 22: (68, 222),
    23: (154, 210), 24: (102, 210), 25: (152, 290), 26: (104, 290), 27: (150, 370), 28: (106, 370),
}  # fmt: skip
SHIRT = (60, 90, 160)
TROUSERS = (30, 30, 30)
SKIN = (220, 170, 140)


def landmarks(points: dict[int, tuple[int, int]] = POINTS) -> np.ndarray:
    lm = np.zeros((33, 3), np.float32)
    for i, (x, y) in points.items():
        lm[i] = (x, y, 0.99)
    return lm


def model_photo() -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 (H, W, 3) on white: skin head and arms, blue shirt, dark trousers; person mask bool)."""
    rgb = np.full((H, W, 3), 250, np.uint8)
    mask = np.zeros((H, W), np.uint8)
    cv2.circle(mask, (128, 52), 26, (1,), -1)
    cv2.rectangle(mask, (85, 80), (171, 375), 1, -1)
    for a, b in ((11, 13), (13, 15), (12, 14), (14, 16)):
        cv2.line(mask, POINTS[a], POINTS[b], (1,), 16)
    rgb[mask.astype(bool)] = SKIN
    rgb[80:215, 85:172] = SHIRT
    rgb[215:376, 85:172] = TROUSERS
    return rgb, mask.astype(bool)


class FakeAnalyzer:
    """``PersonAnalyzer.run`` stand-in: the synthetic person for non-uniform images, nothing otherwise."""

    def __init__(self, lm: np.ndarray | None = None) -> None:
        self.lm = landmarks() if lm is None else lm
        self.calls = 0

    def run(self, rgb: np.ndarray):  # noqa: ANN201
        self.calls += 1
        if rgb.reshape(-1, 3).std(0).max() < 1:
            return None, None, None
        _, mask = model_photo()
        if mask.shape != rgb.shape[:2]:
            mask = cv2.resize(mask.astype(np.uint8), (rgb.shape[1], rgb.shape[0])) > 0
        return mask.astype(np.float32), None, self.lm.copy()


class FakeFaces:
    """``FaceDetector`` stand-in returning fixed boxes."""

    def __init__(self, faces: list[tuple[float, float, float, float, float]]) -> None:
        self.faces = faces

    def detect(self, rgb: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        return list(self.faces)


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def stick_person(points: dict[int, tuple[int, int]] = POINTS) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic person on a light background, uint8 (384, 256, 3) and its bool mask: head,
    torso box, and skin limbs along the landmark segments (shoulder-elbow-wrist, hip-knee-ankle)."""
    import cv2

    rgb = np.full((384, 256, 3), 250, np.uint8)
    mask = np.zeros((384, 256), np.uint8)
    cv2.circle(mask, (128, 52), 26, (1,), -1)
    cv2.rectangle(mask, (85, 80), (171, 215), 1, -1)
    for a, b in ((11, 13), (13, 15), (12, 14), (14, 16), (23, 25), (25, 27), (24, 26), (26, 28)):
        cv2.line(mask, points[a], points[b], (1,), 18)
    rgb[mask.astype(bool)] = SKIN
    return rgb, mask.astype(bool)
