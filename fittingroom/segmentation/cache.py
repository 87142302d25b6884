"""On-disk cache of the segmentation service, bounded by bytes (the memory caches are
:class:`fittingroom.caching.BoundedLRU`).

Disk layout under ``SEGMENTATION_CACHE_DIR``::

    images/<image_id>                         original upload bytes (image_id = sha256 of the bytes)
    embeddings/<model_key>/<image_id>.npz     encoder output + sizes (never shared between models)
    parsing/<model_key>/<head_key>/<image_id>.npy   parsing-head probabilities (float16 [10, 128, 128])
    masks/<image_id>/<mask_id>.png            1-bit masks returned by POST /images/{id}/masks
    masks/<image_id>/<mask_id>.logits.npy     their SAM low-res logits (float16)

Files are written with :func:`fittingroom.atomicio.atomic_write`, so a crash never
leaves a partial file under its final name; an unreadable file is treated as missing.

Eviction: the files' total size is kept under ``max_bytes`` (``SEGMENTATION_DISK_CACHE_MB``).
Every read touches the file's mtime, so the mtime is the last access; when the total
passes the budget the least recently accessed files are deleted until it is back under
:data:`LOW_WATER` of the budget (an evicted image takes its masks with it: they can only
be reached through the image). The total is measured by a scan of the folder, done on
the first write and whenever this process has written another eighth of the budget or
the running estimate passes the budget, so with several writer processes the folder can
exceed the budget by about an eighth per process between scans. Scans and deletions
take a file lock (``.evict.lock``, filelock): one evictor at a time across processes;
writers never wait for it, and a write whose folder was just removed is retried.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from filelock import FileLock, Timeout
from PIL import Image

from fittingroom.atomicio import atomic_write, is_temporary
from fittingroom.models.sam.base import ImageEmbedding

log = logging.getLogger(__name__)

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

#: After an eviction the cache holds at most this fraction of its budget.
LOW_WATER = 0.9
#: Temporary files older than this (seconds) are a crashed writer's leftovers and are deleted.
STALE_TEMP_S = 3600.0
LOCK_NAME = ".evict.lock"


def is_safe_id(value: str) -> bool:
    """True when ``value`` can be used as a file name (ids come from URLs)."""
    return bool(_SAFE_ID.match(value))


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


class DiskCache:
    """Images, embeddings and masks on disk (see the module docstring).

    ``root=None`` disables it; ``max_bytes`` bounds the files' total size (None = unbounded).
    Thread and process safe. Write errors of the file system (OSError) propagate.
    """

    def __init__(self, root: Path | None, *, max_bytes: int | None = None) -> None:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._known: int | None = None  # total found by the last scan (None: never scanned)
        self._written = 0  # bytes this process wrote since that scan
        #: Files deleted by eviction in this process (for tests and monitoring).
        self.evicted_files = 0

    # ------------------------------------------------------------------ writing + eviction
    def _write(self, path: Path, data: bytes | Callable[[BinaryIO], object]) -> None:
        if self.max_bytes is not None and isinstance(data, bytes) and len(data) > self.max_bytes:
            return  # never stored: it would evict everything
        try:
            atomic_write(path, data, fsync=False)
        except FileNotFoundError:  # an evictor removed the (empty) folder meanwhile
            atomic_write(path, data, fsync=False)
        if self.max_bytes is None:
            return
        try:
            size = path.stat().st_size
        except OSError:
            return
        if size > self.max_bytes:
            path.unlink(missing_ok=True)
            return
        with self._lock:
            self._written += size
            due = (
                self._known is None
                or self._known + self._written > self.max_bytes
                or self._written >= self.max_bytes // 8
            )
        if due:
            self.evict()

    def size_bytes(self) -> int:
        """Total size of the cached files now (a scan; temporary files excluded)."""
        return sum(size for _, size, _ in self._scan())

    def _scan(self) -> list[tuple[Path, int, float]]:
        """(path, bytes, mtime) of every cached file; deletes stale temporary files."""
        assert self.root is not None
        out: list[tuple[Path, int, float]] = []
        now = time.time()
        for folder, _, names in os.walk(self.root):
            for name in names:
                path = Path(folder) / name
                if name == LOCK_NAME:
                    continue
                try:
                    st = path.stat()
                except OSError:
                    continue  # deleted meanwhile
                if is_temporary(path):
                    if now - st.st_mtime > STALE_TEMP_S:
                        path.unlink(missing_ok=True)
                    continue
                out.append((path, st.st_size, st.st_mtime))
        return out

    def evict(self) -> int:
        """Delete least recently accessed files until the total is under the budget.

        Returns the number of bytes deleted (0 when another process or thread is evicting,
        or without a budget).
        """
        if self.root is None or self.max_bytes is None:
            return 0
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            lock = FileLock(self.root / LOCK_NAME, timeout=0)
            lock.acquire()
        except Timeout:
            return 0
        try:
            files = self._scan()
            total = sum(size for _, size, _ in files)
            freed = 0
            if total > self.max_bytes:
                target = int(self.max_bytes * LOW_WATER)
                files.sort(key=lambda f: f[2])
                gone: set[Path] = set()
                for path, size, _ in files:
                    if total - freed <= target:
                        break
                    if path in gone:
                        continue
                    freed += self._delete(path, size, gone)
                log.info("segmentation disk cache: evicted %d bytes (%d files)", freed, len(gone))
            with self._lock:
                self._known = total - freed
                self._written = 0
            return freed
        finally:
            lock.release()

    def _delete(self, path: Path, size: int, gone: set[Path]) -> int:
        """Unlink one file (an image with its masks); returns the bytes freed."""
        assert self.root is not None
        freed = 0
        victims = [(path, size)]
        if path.parent == self.root / "images":
            masks = self.root / "masks" / path.name
            with contextlib.suppress(OSError):
                victims += [(p, p.stat().st_size) for p in masks.iterdir() if not is_temporary(p)]
        for victim, vsize in victims:
            if victim in gone:
                continue
            try:
                victim.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("segmentation disk cache: cannot delete %s: %s", victim, exc)
                continue
            gone.add(victim)
            freed += vsize
            self.evicted_files += 1
        for folder in {v.parent for v, _ in victims}:
            if folder != self.root / "images":
                with contextlib.suppress(OSError):  # only when empty; a concurrent writer retries
                    folder.rmdir()
        return freed

    # ------------------------------------------------------------------ images
    def put_image(self, image_id: str, data: bytes) -> None:
        if self.root is None:
            return
        path = self.root / "images" / image_id
        if path.exists():
            _touch(path)
        else:
            self._write(path, data)

    def get_image(self, image_id: str) -> bytes | None:
        if self.root is None or not is_safe_id(image_id):
            return None
        path = self.root / "images" / image_id
        try:
            data = path.read_bytes()
        except OSError:
            return None
        _touch(path)
        return data

    # ------------------------------------------------------------------ embeddings
    def _embedding_path(self, model_key: str, image_id: str) -> Path:
        assert self.root is not None
        return self.root / "embeddings" / model_key / f"{image_id}.npz"

    def put_embedding(self, image_id: str, emb: ImageEmbedding) -> None:
        if self.root is None:
            return

        def write(f: BinaryIO) -> None:
            np.savez(
                f,
                features=emb.features,
                original_size=np.array(emb.original_size),
                input_size=np.array(emb.input_size),
            )

        self._write(self._embedding_path(emb.model_key, image_id), write)

    def get_embedding(self, image_id: str, model_key: str) -> ImageEmbedding | None:
        if self.root is None or not is_safe_id(image_id):
            return None
        path = self._embedding_path(model_key, image_id)
        try:
            with np.load(path) as z:
                emb = ImageEmbedding(
                    features=np.ascontiguousarray(z["features"], dtype=np.float32),
                    original_size=(int(z["original_size"][0]), int(z["original_size"][1])),
                    input_size=(int(z["input_size"][0]), int(z["input_size"][1])),
                    model_key=model_key,
                )
        except (OSError, ValueError, KeyError, EOFError):
            return None
        _touch(path)
        return emb

    # parsing-head output
    def _parsing_path(self, model_key: str, head_key: str, image_id: str) -> Path:
        assert self.root is not None
        return self.root / "parsing" / model_key / head_key / f"{image_id}.npy"

    def put_parsing(self, image_id: str, model_key: str, head_key: str, probs: np.ndarray) -> None:
        """Store the parsing head's probabilities of an image (float16), next to its embedding."""
        if self.root is None:
            return
        self._write(
            self._parsing_path(model_key, head_key, image_id),
            lambda f: np.save(f, np.asarray(probs, dtype=np.float16)),
        )

    def get_parsing(self, image_id: str, model_key: str, head_key: str) -> np.ndarray | None:
        """float16 probabilities stored by :meth:`put_parsing`, or None."""
        if self.root is None or not is_safe_id(image_id):
            return None
        path = self._parsing_path(model_key, head_key, image_id)
        try:
            probs = np.load(path)
        except (OSError, ValueError, EOFError):
            return None
        _touch(path)
        return probs

    # ------------------------------------------------------------------ masks
    def put_mask(self, image_id: str, mask_id: str, mask: np.ndarray) -> None:
        if self.root is None:
            return
        self._write(
            self.root / "masks" / image_id / f"{mask_id}.png",
            lambda f: Image.fromarray(mask.astype(bool)).save(f, format="PNG", compress_level=1),
        )

    def put_logits(self, image_id: str, mask_id: str, logits: np.ndarray) -> None:
        """Store a mask's SAM low-res logits (float16 ``.npy``), the ``mask_input`` of a refinement."""
        if self.root is None:
            return
        buf = io.BytesIO()
        np.save(buf, np.asarray(logits, dtype=np.float16))
        self._write(self.root / "masks" / image_id / f"{mask_id}.logits.npy", buf.getvalue())

    def get_logits(self, image_id: str, mask_id: str) -> np.ndarray | None:
        """float32 logits stored by :meth:`put_logits`, or None."""
        if self.root is None or not (is_safe_id(image_id) and is_safe_id(mask_id)):
            return None
        path = self.root / "masks" / image_id / f"{mask_id}.logits.npy"
        try:
            logits = np.load(path).astype(np.float32)
        except (OSError, ValueError, EOFError):
            return None
        _touch(path)
        return logits

    def get_mask(self, image_id: str, mask_id: str) -> np.ndarray | None:
        if self.root is None or not (is_safe_id(image_id) and is_safe_id(mask_id)):
            return None
        path = self.root / "masks" / image_id / f"{mask_id}.png"
        try:
            with Image.open(path) as im:
                mask = np.asarray(im.convert("1"), dtype=bool)
        except (OSError, ValueError, SyntaxError):
            return None
        _touch(path)
        return mask
