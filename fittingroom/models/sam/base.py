"""The SAM backend interface: ``embed(image) -> embedding``, ``predict(embedding, points, labels, box) -> candidates``.

Model: Segment Anything (Kirillov et al., 2023, https://arxiv.org/abs/2304.02643).
An image encoder turns the image (longest side resized to ``S`` = 1024 px, ImageNet
normalised, zero padded to ``S x S``) into an embedding ``[1, 256, S/16, S/16]``;
a light prompt decoder turns point/box prompts plus that embedding into
``K = 4`` candidate masks (index 0: the single-mask output token, 1-3: the
multimask tokens, roughly sub-part / part / whole) as low-resolution logits
``[K, S/4, S/4]`` in the padded ``S x S`` frame, with SAM's predicted IoU for each.

Coordinates given to a backend are pixels of the original image (after EXIF
orientation): x to the right, y down, origin at the top-left corner.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

#: SAM's pixel normalisation (RGB mean/std in 0..255), from ``segment_anything.modeling.Sam``.
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
#: Logit threshold of a mask pixel (``Sam.mask_threshold``).
MASK_THRESHOLD = 0.0


@dataclass(frozen=True)
class ImageEmbedding:
    """Output of the image encoder for one image.

    ``features``: float32 ``[1, C, h, w]`` (C = 256, h = w = S/16);
    ``original_size`` / ``input_size``: (height, width) of the image and of its
    resized copy inside the ``S x S`` encoder frame; ``model_key`` names the weights.
    """

    features: np.ndarray
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    model_key: str


@dataclass(frozen=True)
class Candidates:
    """Candidate masks of one prompt, in SAM's token order (not ranked).

    ``low_res_logits``: float32 ``[K, S/4, S/4]`` mask logits in the padded frame;
    ``iou_predictions``: float32 ``[K]``, SAM's predicted IoU of each mask.
    """

    low_res_logits: np.ndarray
    iou_predictions: np.ndarray

    def __len__(self) -> int:
        return int(self.iou_predictions.shape[0])


def preprocess_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) after resizing the longest side to ``long_side`` (``ResizeLongestSide``)."""
    scale = long_side / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def preprocess_image(image: Image.Image, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """RGB image -> float32 ``[1, 3, size, size]`` encoder input and the resized (height, width)."""
    rgb = image.convert("RGB")
    new_h, new_w = preprocess_shape(rgb.height, rgb.width, size)
    resized = np.asarray(rgb.resize((new_w, new_h), Image.Resampling.BILINEAR), dtype=np.float32)
    normalised = (resized - PIXEL_MEAN) / PIXEL_STD
    frame = np.zeros((size, size, 3), dtype=np.float32)
    frame[:new_h, :new_w] = normalised
    return np.ascontiguousarray(frame.transpose(2, 0, 1)[None]), (new_h, new_w)


def transform_coords(
    coords: np.ndarray, original_size: tuple[int, int], input_size: tuple[int, int]
) -> np.ndarray:
    """Original-image pixel coordinates ``[..., 2]`` (x, y) -> encoder-frame coordinates (float32)."""
    (h, w), (nh, nw) = original_size, input_size
    out = np.asarray(coords, dtype=np.float32).copy()
    out[..., 0] *= nw / w
    out[..., 1] *= nh / h
    return out


def upscale_logits(
    low_res_logits: np.ndarray, frame_size: int, input_size: tuple[int, int], original_size: tuple[int, int]
) -> np.ndarray:
    """``[K, s, s]`` low-res logits -> ``[K, H, W]`` float32 logits at the original resolution.

    Same as SAM's ``postprocess_masks``: bilinear to the ``frame_size`` square,
    crop the padding, bilinear to the original size.
    """
    height, width = original_size
    logits = np.asarray(low_res_logits, dtype=np.float32)
    out = np.empty((logits.shape[0], height, width), dtype=np.float32)
    for i, low in enumerate(logits):  # one channel at a time: no transposed copies
        up = cv2.resize(low, (frame_size, frame_size), interpolation=cv2.INTER_LINEAR)
        cv2.resize(
            up[: input_size[0], : input_size[1]], (width, height), dst=out[i], interpolation=cv2.INTER_LINEAR
        )
    return out


def file_key(*paths: object) -> str:
    """Short content hash of model files, used in cache keys so two models never share an embedding."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:  # type: ignore[call-overload]
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()[:16]


class SamBackend(ABC):
    """One loaded SAM model. ``embed`` may be slow (image encoder); ``predict`` is the cheap decoder.

    Implementations are thread-safe: ``predict`` only reads the embedding it is given.
    """

    #: Backend name plus a hash of its weights; embeddings are cached under it.
    model_key: str
    #: Side ``S`` of the square encoder frame (1024 for SAM).
    image_size: int

    @abstractmethod
    def embed(self, image: Image.Image) -> ImageEmbedding:
        """Run the image encoder on an RGB image (any size)."""

    @abstractmethod
    def predict(
        self,
        embedding: ImageEmbedding,
        points: np.ndarray,
        labels: np.ndarray,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
    ) -> Candidates:
        """Decode prompts into candidate masks.

        ``points``: float ``[N, 2]`` (x, y) in original-image pixels; ``labels``: int ``[N]``
        (1 = include / positive, 0 = exclude / negative); ``box``: optional float ``[4]``
        (x0, y0, x1, y1) in original-image pixels; ``mask_input``: optional ``[S/4, S/4]``
        logits of a previous mask (SAM's iterative refinement).
        """

    def upscale(self, embedding: ImageEmbedding, candidates: Candidates) -> np.ndarray:
        """Candidate logits at the original image resolution, float32 ``[K, H, W]``."""
        return upscale_logits(
            candidates.low_res_logits, self.image_size, embedding.input_size, embedding.original_size
        )
