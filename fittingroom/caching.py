"""Bounded in-memory caches: one thread-safe LRU, bounded by bytes and/or by entries.

Every in-process cache of the project is a :class:`BoundedLRU` (built on
``cachetools.LRUCache``):

* :func:`byte_lru` for caches of images, masks, embeddings or encoded files: the
  budget is in bytes and each value is measured with :func:`nbytes_of` (numpy
  arrays' ``nbytes``, ``bytes`` lengths, PIL images' pixel buffers, and the sum of
  those inside dataclasses, tuples, lists and dicts). A value bigger than the
  per-item cap (by default the whole budget) is not cached at all, so one huge
  upload never flushes everything else.
* :func:`count_lru` for small objects (jobs, ids) bounded by their number.

A value's size is measured when it is stored: a value that grows afterwards (a job
whose result arrives later) must be stored again to be re-measured.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import cachetools
import numpy as np
from PIL import Image

K = TypeVar("K")
V = TypeVar("V")

MiB = 1024 * 1024

#: Bytes per pixel of PIL's internal buffers (multi-band modes use 4 bytes per pixel).
_PIL_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}


def nbytes_of(value: object) -> int:
    """Approximate memory held by ``value``, in bytes (>= 0).

    numpy arrays: ``nbytes``; ``bytes`` / ``bytearray`` / ``memoryview``: their length;
    PIL images: width x height x bytes per pixel of the internal buffer; any other object
    with an integer ``nbytes`` attribute (torch tensors...): that; dataclasses, tuples,
    lists, sets and dicts: the sum over their fields / items (an object reached twice,
    e.g. an array shared by two fields, is counted once); anything else: ``sys.getsizeof``.
    """
    return _nbytes(value, set())


def _nbytes(value: object, seen: set[int]) -> int:
    if value is None or isinstance(value, bool | int | float | complex):
        return sys.getsizeof(value)
    oid = id(value)
    if oid in seen:
        return 0
    seen.add(oid)
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, memoryview):
        return int(value.nbytes)
    if isinstance(value, str):
        return sys.getsizeof(value)
    if isinstance(value, Image.Image):
        return value.width * value.height * _PIL_PIXEL_BYTES.get(value.mode, 4)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sys.getsizeof(value) + sum(
            _nbytes(getattr(value, f.name), seen) for f in dataclasses.fields(value)
        )
    if isinstance(value, tuple | list | set | frozenset):
        return sys.getsizeof(value) + sum(_nbytes(v, seen) for v in value)
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(_nbytes(k, seen) + _nbytes(v, seen) for k, v in value.items())
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int) and not isinstance(nbytes, bool) and nbytes >= 0:
        return nbytes
    return sys.getsizeof(value)


def _one(_: object) -> int:
    return 1


class BoundedLRU(Generic[K, V]):
    """Thread-safe least-recently-used mapping bounded by total bytes and/or entries.

    ``max_bytes``: budget for the sum of ``getsizeof(value)`` (default :func:`nbytes_of`);
    ``max_items``: most entries; at least one of them is required (both bind when given).
    ``max_item_bytes``: largest value stored (default ``max_bytes``); :meth:`put` of a
    bigger one stores nothing, evicts nothing and drops the key's previous value.
    Every method takes one lock, so a cache can be shared between threads.
    Raises ValueError for a bound < 1.
    """

    def __init__(
        self,
        max_bytes: int | None = None,
        *,
        max_items: int | None = None,
        max_item_bytes: int | None = None,
        getsizeof: Callable[[Any], int] = nbytes_of,
    ) -> None:
        if max_bytes is None and max_items is None:
            raise ValueError("a BoundedLRU needs max_bytes or max_items")
        for name, bound in (
            ("max_bytes", max_bytes),
            ("max_items", max_items),
            ("max_item_bytes", max_item_bytes),
        ):
            if bound is not None and bound < 1:
                raise ValueError(f"{name} must be >= 1, got {bound}")
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.max_item_bytes = (
            min(max_item_bytes, max_bytes) if max_item_bytes is not None and max_bytes else max_bytes
        )
        self._getsizeof = getsizeof
        self._lock = threading.RLock()
        self._data: cachetools.LRUCache[K, V]
        if max_bytes is None:
            assert max_items is not None
            self._data = cachetools.LRUCache(maxsize=max_items)
        else:
            self._data = cachetools.LRUCache(maxsize=max_bytes, getsizeof=self._sized)
        self._pending: tuple[int, int] | None = None  # (id(value), size) measured before insertion

    def _sized(self, value: V) -> int:
        pending = self._pending
        if pending is not None and pending[0] == id(value):
            return pending[1]
        return self._getsizeof(value)

    def get(self, key: K, default: V | None = None) -> V | None:
        """The value of ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            return self._data.get(key, default)

    def put(self, key: K, value: V) -> bool:
        """Store ``value`` as the most recently used entry, evicting the least recently used ones.

        Returns False (nothing stored, nothing evicted, any previous value of ``key`` dropped)
        when the value is larger than ``max_item_bytes``.
        """
        size = self._getsizeof(value) if self.max_bytes is not None else 1
        with self._lock:
            if self.max_item_bytes is not None and size > self.max_item_bytes:
                self._data.pop(key, None)
                return False
            self._pending = (id(value), size)
            try:
                self._data[key] = value
            finally:
                self._pending = None
            if self.max_items is not None and self.max_bytes is not None:
                while len(self._data) > self.max_items:
                    self._data.popitem()
            return True

    def setdefault(self, key: K, value: V) -> V:
        """The cached value of ``key`` if any, else ``value`` after storing it (one atomic step)."""
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                return found
            self.put(key, value)
            return value

    def pop(self, key: K, default: V | None = None) -> V | None:
        """Remove ``key`` and return its value, or ``default``."""
        with self._lock:
            return self._data.pop(key, default)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def keys(self) -> list[K]:
        """Snapshot of the keys, least recently used first."""
        with self._lock:
            return list(self._data.keys())

    @property
    def currsize(self) -> int:
        """Bytes held (entries when the cache is bounded by count only)."""
        with self._lock:
            return int(self._data.currsize)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_bytes={self.max_bytes}, max_items={self.max_items}, "
            f"len={len(self)}, currsize={self.currsize})"
        )


def byte_lru(
    max_bytes: int, *, max_items: int | None = None, max_item_bytes: int | None = None
) -> BoundedLRU:
    """LRU bounded by the bytes of its values (:func:`nbytes_of`), optionally also by entries."""
    return BoundedLRU(max_bytes, max_items=max_items, max_item_bytes=max_item_bytes)


def count_lru(max_items: int) -> BoundedLRU:
    """LRU bounded by its number of entries (for small values: jobs, ids)."""
    return BoundedLRU(max_items=max_items, getsizeof=_one)


def mib(megabytes: float) -> int:
    """``megabytes`` MiB in bytes (at least 1)."""
    return max(1, int(megabytes * MiB))
