"""Garment-parsing head on the frozen SAM image embedding: per-pixel garment groups.

Input: the SAM image embedding float32 ``[1, 256, 64, 64]`` (``ImageEmbedding.features``,
the encoder frame is ``F x F`` = 1024 px with the photo at the top left). Output: logits
float32 ``[10, 128, 128]`` over :class:`fittingroom.models.parsing_groups.Group` in the same
padded frame (one output pixel per 4x4 frame pixels), and from them the group map at the
photo's resolution.

Architecture (weights in one ``.npz``, float16 on disk; inference here is numpy + OpenCV, no
torch; ``C`` = 96 channels)::

    x  = (features - mean) / std                     # per channel, train-set statistics
    x  = relu(conv1x1(x, 256 -> C))                  # 64 x 64 tokens
    x  = x + relu(conv3x3(x))
    p1 = relu(conv3x3(avgpool2(x)))                  # 32 x 32
    p2 = relu(conv3x3(avgpool2(p1)))                 # 16 x 16: context over the whole body
    x  = x + conv1x1(up2(p1 + up2(p2)))              # up2 = bilinear x2
    x  = x + linear(mean_hw(x))                      # global context (which layer is outer)
    logits = conv1x1(relu(convT2x2s2(x, C -> 48)), 48 -> 10) + up2(conv1x1(x, C -> 10))   # 128 x 128

(Depthwise dilated convolutions gave the same receptive field but train 10x slower on the CPU.)

The training code (``fittingroom.training.parsing``) builds the same network in torch and
writes it with :func:`save_head`. A missing or unreadable head file raises
:class:`ParsingHeadError` naming the file and the command that rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fittingroom.models.parsing_groups import N_GROUPS, Group

#: Folder of the committed head, its model card and metrics.
HEAD_DIR = Path(__file__).resolve().parent / "data" / "parsing"
HEAD_FILENAME = "parsing_head.npz"
DEFAULT_HEAD_PATH = HEAD_DIR / HEAD_FILENAME
REBUILD_COMMAND = "fittingroom train parsing"
#: Output logits per input token side (64 tokens -> 128 output pixels).
UPSCALE = 2


class ParsingHeadError(RuntimeError):
    """The parsing head file is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class ParsingMap:
    """Parsing of one photo.

    ``groups``: uint8 ``[H, W]`` group id per photo pixel (argmax); ``confidence``: float16
    ``[H, W]`` softmax probability of that group; ``probs``: float16 ``[10, h, w]`` probabilities in
    the padded encoder frame at 1/8 of the frame (h = w = 128); ``input_size``: (height, width) of
    the photo inside the ``frame`` square (1024 px); ``head_key``: hash of the head file.
    """

    groups: np.ndarray
    confidence: np.ndarray
    probs: np.ndarray
    input_size: tuple[int, int]
    head_key: str
    frame: int = 1024

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the photo."""
        return self.groups.shape  # type: ignore[return-value]

    def region(self, group: int | Group) -> np.ndarray:
        """bool ``[H, W]``: pixels whose most likely group is ``group``."""
        return self.groups == int(group)

    def probability(self, group: int | Group) -> np.ndarray:
        """float32 ``[H, W]``: probability of ``group`` at every photo pixel (bilinear from ``probs``)."""
        g = int(group)
        return frame_to_photo(self.probs[g : g + 1], self.frame, self.input_size, self.shape)[0]


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


def _conv1x1(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    c, h, ww = x.shape
    return (w @ x.reshape(c, h * ww) + b[:, None]).reshape(-1, h, ww)


def _conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3 convolution, padding 1 (im2col + one matrix product); ``w`` is torch's ``[out, in, 3, 3]``."""
    c, h, ww = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    cols = np.empty((9, c, h, ww), dtype=np.float32)
    for ky in range(3):
        for kx in range(3):
            cols[ky * 3 + kx] = xp[:, ky : ky + h, kx : kx + ww]
    wm = w.transpose(0, 2, 3, 1).reshape(w.shape[0], 9 * c)
    return (wm @ cols.reshape(9 * c, h * ww) + b[:, None]).reshape(-1, h, ww)


def _pool2(x: np.ndarray) -> np.ndarray:
    c, h, w = x.shape
    return x.reshape(c, h // 2, 2, w // 2, 2).mean(axis=(2, 4))


def _up2(x: np.ndarray) -> np.ndarray:
    """Bilinear x2 (half-pixel centres, like torch ``interpolate(align_corners=False)``)."""
    c, h, w = x.shape
    # cv2 resizes up to 512 channels at once in HWC layout
    return (
        cv2.resize(np.ascontiguousarray(x.transpose(1, 2, 0)), (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
        .reshape(2 * h, 2 * w, c)
        .transpose(2, 0, 1)
    )


def _conv_t2x2(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ConvTranspose2d(kernel 2, stride 2); ``w`` is torch's ``[in, out, 2, 2]``."""
    c, h, ww = x.shape
    o = w.shape[1]
    y = w.reshape(c, o * 4).T @ x.reshape(c, h * ww)  # [o*2*2, h*w]
    y = y.reshape(o, 2, 2, h, ww).transpose(0, 3, 1, 4, 2).reshape(o, 2 * h, 2 * ww)
    return y + b[:, None, None]


def _softmax(z: np.ndarray, axis: int = 0) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


REQUIRED_KEYS = ("mean", "std", "stem.w", "stem.b", "c64.w", "c64.b", "c32.w", "c32.b", "c16.w", "c16.b",
                 "merge.w", "merge.b", "glob.w", "glob.b", "coarse.w", "coarse.b", "up.w", "up.b",
                 "fine.w", "fine.b")  # fmt: skip


def save_head(path: Path, weights: dict[str, np.ndarray], meta: dict) -> Path:
    """Write ``weights`` (float16) plus ``meta`` (JSON: groups, training command, seed...) to ``path``."""
    missing = [k for k in REQUIRED_KEYS if k not in weights]
    if missing:
        raise ValueError(f"head weights lack {missing}")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v, dtype=np.float16) for k, v in weights.items()}
    with open(path, "wb") as f:
        np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)
    return path


class ParsingHead:
    """The loaded head (float32 weights in memory). Thread-safe: ``predict`` only reads weights."""

    def __init__(self, weights: dict[str, np.ndarray], meta: dict, key: str) -> None:
        self.w = weights
        self.meta = meta
        self.key = key
        groups = meta.get("groups")
        if groups is not None and list(groups) != [g.name for g in Group]:
            raise ParsingHeadError(f"head groups {groups} differ from {[g.name for g in Group]}")
        if weights["fine.w"].shape[0] != N_GROUPS:
            raise ParsingHeadError(f"head outputs {weights['fine.w'].shape[0]} groups, expected {N_GROUPS}")

    @classmethod
    def load(cls, path: Path | None = None) -> ParsingHead:
        """Load a head written by :func:`save_head` (default: the committed one).

        Raises ParsingHeadError when the file is missing, not a readable ``.npz`` or lacks weights;
        the message names the file and the command that rebuilds it.
        """
        path = Path(path) if path is not None else DEFAULT_HEAD_PATH
        hint = f"rebuild it with `{REBUILD_COMMAND}` (or restore the committed file with git)"
        if not path.is_file():
            raise ParsingHeadError(f"parsing head {path} not found: {hint}")
        try:
            raw = path.read_bytes()
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
                missing = [k for k in REQUIRED_KEYS if k not in z.files]
                if missing:
                    raise ParsingHeadError(f"parsing head {path} lacks weights {missing}: {hint}")
                weights = {k: z[k].astype(np.float32) for k in z.files if k != "meta"}
        except ParsingHeadError:
            raise
        except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, JSON errors
            raise ParsingHeadError(f"parsing head {path} is unreadable ({exc}): {hint}") from exc
        key = "parsing-" + hashlib.sha256(raw).hexdigest()[:12]
        return cls(weights, meta, key)

    @property
    def channels(self) -> int:
        return int(self.w["stem.w"].shape[0])

    def predict_logits(self, features: np.ndarray) -> np.ndarray:
        """``[1, 256, 64, 64]`` (or ``[256, 64, 64]``) embedding -> float32 logits ``[10, 128, 128]``."""
        w = self.w
        x = np.asarray(features, dtype=np.float32).reshape(-1, *features.shape[-2:])
        if x.shape[0] != w["mean"].shape[0]:
            raise ValueError(f"embedding has {x.shape[0]} channels, the head expects {w['mean'].shape[0]}")
        x = (x - w["mean"][:, None, None]) / w["std"][:, None, None]
        x = _relu(_conv1x1(x, w["stem.w"], w["stem.b"]))
        x = x + _relu(_conv3x3(x, w["c64.w"], w["c64.b"]))
        p1 = _relu(_conv3x3(_pool2(x), w["c32.w"], w["c32.b"]))
        p2 = _relu(_conv3x3(_pool2(p1), w["c16.w"], w["c16.b"]))
        x = x + _conv1x1(_up2(p1 + _up2(p2)), w["merge.w"], w["merge.b"])
        x = x + (w["glob.w"] @ x.mean(axis=(1, 2)) + w["glob.b"])[:, None, None]
        coarse = _conv1x1(x, w["coarse.w"], w["coarse.b"])
        y = _relu(_conv_t2x2(x, w["up.w"], w["up.b"]))
        return _conv1x1(y, w["fine.w"], w["fine.b"]) + _up2(coarse)

    def predict_probs(self, features: np.ndarray) -> np.ndarray:
        """Softmax of :meth:`predict_logits`, float16 ``[10, 128, 128]`` (what the caches keep)."""
        return _softmax(self.predict_logits(features)).astype(np.float16)

    def parse(
        self,
        features: np.ndarray,
        input_size: tuple[int, int],
        original_size: tuple[int, int],
        frame: int = 1024,
    ) -> ParsingMap:
        """Group map of one photo from its embedding.

        ``input_size`` / ``original_size``: (height, width) of the photo in the ``frame``-pixel encoder
        frame and of the photo itself (``ImageEmbedding`` fields).
        """
        return self.from_probs(self.predict_probs(features), input_size, original_size, frame)

    def from_probs(
        self,
        probs: np.ndarray,
        input_size: tuple[int, int],
        original_size: tuple[int, int],
        frame: int = 1024,
    ) -> ParsingMap:
        """:class:`ParsingMap` from cached :meth:`predict_probs` output (no head run).

        The per-pixel argmax is taken one group at a time (a running maximum), so a 40 MP photo
        holds two float32 photo-sized planes, never the ``[10, H, W]`` stack (1.6 GB)."""
        h, w = original_size
        conf = np.full((h, w), -np.inf, dtype=np.float32)
        groups = np.zeros((h, w), dtype=np.uint8)
        for g in range(probs.shape[0]):
            plane = frame_to_photo(probs[g : g + 1], frame, input_size, original_size)[0]
            better = plane > conf
            groups[better] = g
            np.maximum(conf, plane, out=conf)
            del plane, better
        return ParsingMap(
            groups, conf.astype(np.float16), np.asarray(probs, np.float16), input_size, self.key, frame
        )


def frame_to_photo(
    maps: np.ndarray, frame: int, input_size: tuple[int, int], original_size: tuple[int, int]
) -> np.ndarray:
    """``[K, s, s]`` maps over the padded ``frame`` square -> float32 ``[K, H, W]`` on the photo (bilinear).

    One affine resample per channel: photo pixel centre (x + 0.5) maps to frame pixel
    (x + 0.5) * input_w / W, i.e. map pixel ((x + 0.5) * input_w / W) * s / frame - 0.5.
    """
    k, s, _ = maps.shape
    (h, w), (nh, nw) = original_size, input_size
    sx, sy = nw / w * s / frame, nh / h * s / frame
    m = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5]], dtype=np.float64)
    out = np.empty((k, h, w), dtype=np.float32)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for c in range(k):
        cv2.warpAffine(
            np.asarray(maps[c], dtype=np.float32), m, (w, h), dst=out[c], flags=flags,
            borderMode=cv2.BORDER_REPLICATE,
        )  # fmt: skip
    return out
