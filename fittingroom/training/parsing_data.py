"""Training data of the parsing head: cached SAM embeddings of the street photos plus group targets.

Each *view* of a photo is one encoder run:

* ``orig``: the photo as is;
* ``flip``: mirrored left-right (re-encoded: a ViT embedding is not mirror-equivariant, and the
  padded encoder frame is not symmetric);
* ``jit1``, ``jit2``...: a random crop (each side 70-100 % of the photo, so the person appears up
  to 1.4x larger), a random mirror, and colour jitter (brightness, contrast, saturation 0.75-1.25),
  drawn from ``(seed, photo number, k)`` so every run sees the same views.

The cache holds per view ``features`` float16 ``[256, 64, 64]`` (the encoder output), ``target``
uint8 ``[F/4, F/4]`` (group ids in the padded encoder frame, ``IGNORE`` outside the photo; F = 1024)
and ``input_size``. Files live under ``<FITTINGROOM_HOME>/cache/parsing/<model_key>/`` named by the
sha256 of the photo bytes and the view, so another SAM model or a changed photo never reuses them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageEnhance

from fittingroom.models.parsing_groups import IGNORE, label_lut
from fittingroom.models.sam.base import SamBackend, preprocess_shape

#: Photos 0001-0400 carry label maps.
LABELLED_RANGE = (1, 400)


@dataclass(frozen=True)
class Photo:
    """One pixel-labelled street photo."""

    photo_id: str
    image_path: Path
    label_path: Path


@dataclass(frozen=True)
class ViewData:
    """One cached view: ``features`` float16 ``[C, h, w]``; ``target`` uint8 ``[F/4, F/4]``."""

    features: np.ndarray
    target: np.ndarray
    input_size: tuple[int, int]


def labelled_photos(street_photos: Path) -> tuple[list[Photo], list[str]]:
    """The pixel-labelled photos 0001-0400 in id order, and the label names (index = label id).

    Raises FileNotFoundError when ``annotations.json`` is missing.
    """
    ann_path = street_photos / "annotations.json"
    if not ann_path.is_file():
        raise FileNotFoundError(f"{ann_path} not found: --street-photos must be the street-photos folder")
    ann = json.loads(ann_path.read_text())
    lo, hi = LABELLED_RANGE
    photos = [
        Photo(pid, street_photos / rec["image"], street_photos / rec["label_map"])
        for pid, rec in sorted(ann["images"].items())
        if rec.get("label_map") and pid.isdigit() and lo <= int(pid) <= hi
    ]
    return photos, list(ann["labels"])


def split_photos(photos: list[Photo], val_fraction: float, seed: int) -> tuple[list[Photo], list[Photo]]:
    """(train, validation) by photo: a seeded permutation, the first ``val_fraction`` is validation."""
    order = np.random.default_rng(seed).permutation(len(photos))
    n_val = int(round(len(photos) * val_fraction))
    val_idx = set(order[:n_val].tolist())
    train = [p for i, p in enumerate(photos) if i not in val_idx]
    val = [p for i, p in enumerate(photos) if i in val_idx]
    return train, val


def view_image(
    image: Image.Image, labels: np.ndarray, view: str, seed: int, photo_number: int
) -> tuple[Image.Image, np.ndarray]:
    """Apply a view (module docstring) to an RGB image and its ``[H, W]`` label map."""
    if view == "orig":
        return image, labels
    if view == "flip":
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), labels[:, ::-1].copy()
    if not view.startswith("jit"):
        raise ValueError(f"unknown view {view!r}: orig, flip or jit<k>")
    rng = np.random.default_rng([seed, photo_number, int(view[3:])])
    w, h = image.size
    sw, sh = rng.uniform(0.7, 1.0, size=2)
    cw, ch = int(w * sw), int(h * sh)
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    img = image.crop((x0, y0, x0 + cw, y0 + ch))
    lab = labels[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        img, lab = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), lab[:, ::-1]
    b, c, s = rng.uniform(0.75, 1.25, size=3)
    img = ImageEnhance.Color(
        ImageEnhance.Contrast(ImageEnhance.Brightness(img).enhance(b)).enhance(c)
    ).enhance(s)
    return img, np.ascontiguousarray(lab)


def frame_target(groups: np.ndarray, frame: int, out: int) -> np.ndarray:
    """Group map ``[H, W]`` -> uint8 ``[out, out]`` in the padded encoder frame (nearest), IGNORE in the padding."""
    h, w = groups.shape
    nh, nw = preprocess_shape(h, w, out)
    target = np.full((out, out), IGNORE, dtype=np.uint8)
    target[:nh, :nw] = cv2.resize(groups, (nw, nh), interpolation=cv2.INTER_NEAREST)
    return target


class EmbeddingCache:
    """Cached views of the street photos for one SAM model (see the module docstring)."""

    def __init__(self, root: Path, backend: SamBackend | None, model_key: str, labels: list[str]) -> None:
        self.dir = root / model_key
        self.backend = backend
        self.model_key = model_key
        self.lut = label_lut(labels)
        self.encoder_runs = 0

    def path(self, photo: Photo, view: str) -> Path:
        digest = hashlib.sha256(photo.image_path.read_bytes()).hexdigest()[:32]
        return self.dir / f"{digest}-{view}.npz"

    def get(self, photo: Photo, view: str, seed: int) -> ViewData:
        """The cached view, computed (one encoder run) and stored when missing or unreadable."""
        path = self.path(photo, view)
        try:
            with np.load(path) as z:
                return ViewData(
                    z["features"], z["target"], (int(z["input_size"][0]), int(z["input_size"][1]))
                )
        except (OSError, ValueError, KeyError, EOFError):
            pass
        if self.backend is None:
            raise FileNotFoundError(f"{path}: embedding not cached and no SAM backend given")
        image = Image.open(photo.image_path).convert("RGB")
        labels = np.asarray(Image.open(photo.label_path))
        img, lab = view_image(image, labels, view, seed, int(photo.photo_id))
        emb = self.backend.embed(img)
        self.encoder_runs += 1
        frame = self.backend.image_size
        feats = emb.features[0].astype(np.float16)
        target = frame_target(self.lut[lab], frame, frame // 4)
        data = ViewData(feats, target, emb.input_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, features=feats, target=target, input_size=np.array(emb.input_size))
        os.replace(tmp, path)
        return data

    def precompute(
        self,
        jobs: list[tuple[Photo, str]],
        seed: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Make sure every (photo, view) is cached."""
        for i, (photo, view) in enumerate(jobs):
            self.get(photo, view, seed)
            if progress:
                progress(i + 1, len(jobs))
