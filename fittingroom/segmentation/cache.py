"""Caches of the segmentation service: an in-memory LRU plus on-disk files.

Disk layout under ``SEGMENTATION_CACHE_DIR``::

    images/<image_id>                         original upload bytes (image_id = sha256 of the bytes)
    embeddings/<model_key>/<image_id>.npz     encoder output + sizes (never shared between models)
    parsing/<model_key>/<head_key>/<image_id>.npy   parsing-head probabilities (float16 [10, 128, 128])
    masks/<image_id>/<mask_id>.png            1-bit masks returned by POST /images/{id}/masks

Files are written to a temporary name and renamed, so a crash never leaves a
partial file under its final name; an unreadable file is treated as missing.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
from PIL import Image

from fittingroom.models.sam.base import ImageEmbedding

K = TypeVar("K")
V = TypeVar("V")

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def is_safe_id(value: str) -> bool:
    """True when ``value`` can be used as a file name (ids come from URLs)."""
    return bool(_SAFE_ID.match(value))


class LRUCache(Generic[K, V]):
    """Thread-safe least-recently-used mapping with a fixed number of entries."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def _atomic_write(path: Path, write: Callable[[io.BufferedWriter], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class DiskCache:
    """Images, embeddings and masks on disk (see the module docstring). ``root=None`` disables it."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    # images
    def put_image(self, image_id: str, data: bytes) -> None:
        if self.root is None:
            return
        path = self.root / "images" / image_id
        if not path.exists():
            _atomic_write(path, lambda f: f.write(data))

    def get_image(self, image_id: str) -> bytes | None:
        if self.root is None or not is_safe_id(image_id):
            return None
        try:
            return (self.root / "images" / image_id).read_bytes()
        except OSError:
            return None

    # embeddings
    def _embedding_path(self, model_key: str, image_id: str) -> Path:
        assert self.root is not None
        return self.root / "embeddings" / model_key / f"{image_id}.npz"

    def put_embedding(self, image_id: str, emb: ImageEmbedding) -> None:
        if self.root is None:
            return

        def write(f: io.BufferedWriter) -> None:
            np.savez(
                f,
                features=emb.features,
                original_size=np.array(emb.original_size),
                input_size=np.array(emb.input_size),
            )

        _atomic_write(self._embedding_path(emb.model_key, image_id), write)

    def get_embedding(self, image_id: str, model_key: str) -> ImageEmbedding | None:
        if self.root is None or not is_safe_id(image_id):
            return None
        try:
            with np.load(self._embedding_path(model_key, image_id)) as z:
                return ImageEmbedding(
                    features=np.ascontiguousarray(z["features"], dtype=np.float32),
                    original_size=(int(z["original_size"][0]), int(z["original_size"][1])),
                    input_size=(int(z["input_size"][0]), int(z["input_size"][1])),
                    model_key=model_key,
                )
        except (OSError, ValueError, KeyError, EOFError):
            return None

    # parsing-head output
    def _parsing_path(self, model_key: str, head_key: str, image_id: str) -> Path:
        assert self.root is not None
        return self.root / "parsing" / model_key / head_key / f"{image_id}.npy"

    def put_parsing(self, image_id: str, model_key: str, head_key: str, probs: np.ndarray) -> None:
        """Store the parsing head's probabilities of an image (float16), next to its embedding."""
        if self.root is None:
            return
        _atomic_write(
            self._parsing_path(model_key, head_key, image_id),
            lambda f: np.save(f, np.asarray(probs, dtype=np.float16)),
        )

    def get_parsing(self, image_id: str, model_key: str, head_key: str) -> np.ndarray | None:
        """float16 probabilities stored by :meth:`put_parsing`, or None."""
        if self.root is None or not is_safe_id(image_id):
            return None
        try:
            return np.load(self._parsing_path(model_key, head_key, image_id))
        except (OSError, ValueError, EOFError):
            return None

    # masks
    def put_mask(self, image_id: str, mask_id: str, mask: np.ndarray) -> None:
        if self.root is None:
            return
        _atomic_write(
            self.root / "masks" / image_id / f"{mask_id}.png",
            lambda f: Image.fromarray(mask.astype(bool)).save(f, format="PNG", compress_level=1),
        )

    def put_logits(self, image_id: str, mask_id: str, logits: np.ndarray) -> None:
        """Store a mask's SAM low-res logits (float16 ``.npy``), the ``mask_input`` of a refinement."""
        if self.root is None:
            return
        _atomic_write(
            self.root / "masks" / image_id / f"{mask_id}.logits.npy",
            lambda f: np.save(f, np.asarray(logits, dtype=np.float16)),
        )

    def get_logits(self, image_id: str, mask_id: str) -> np.ndarray | None:
        """float32 logits stored by :meth:`put_logits`, or None."""
        if self.root is None or not (is_safe_id(image_id) and is_safe_id(mask_id)):
            return None
        try:
            return np.load(self.root / "masks" / image_id / f"{mask_id}.logits.npy").astype(np.float32)
        except (OSError, ValueError, EOFError):
            return None

    def get_mask(self, image_id: str, mask_id: str) -> np.ndarray | None:
        if self.root is None or not (is_safe_id(image_id) and is_safe_id(mask_id)):
            return None
        try:
            with Image.open(self.root / "masks" / image_id / f"{mask_id}.png") as im:
                return np.asarray(im.convert("1"), dtype=bool)
        except (OSError, ValueError, SyntaxError):
            return None
