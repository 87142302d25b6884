"""Segmentation disk cache: bounded by bytes, least recently accessed evicted first, safe with
concurrent writers (threads and processes)."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import fittingroom.segmentation.cache as cache_mod
from fittingroom.models.sam.base import ImageEmbedding
from fittingroom.segmentation.cache import LOW_WATER, DiskCache

KB = 1024


def blob(i: int, size: int = 10 * KB) -> tuple[str, bytes]:
    data = i.to_bytes(4, "big") * (size // 4)
    return hashlib.sha256(data).hexdigest(), data


def age(path: Path, seconds_ago: float) -> None:
    t = time.time() - seconds_ago
    os.utime(path, (t, t))


def test_total_size_stays_under_the_budget(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, max_bytes=100 * KB)
    for i in range(60):
        image_id, data = blob(i)
        cache.put_image(image_id, data)
        emb = ImageEmbedding(np.full((1, 4, 16, 16), i, np.float32), (8, 8), (8, 8), "m")
        cache.put_embedding(image_id, emb)
        assert cache.size_bytes() <= 100 * KB
    assert cache.evicted_files > 0
    assert cache.size_bytes() > 0.5 * LOW_WATER * 100 * KB  # evicts what is needed, not everything


def test_least_recently_accessed_goes_first(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, max_bytes=45 * KB)
    ids = []
    for i in range(4):
        image_id, data = blob(i)
        cache.put_image(image_id, data)
        ids.append(image_id)
        age(tmp_path / "images" / image_id, 1000 - i * 100)  # 0 oldest ... 3 newest
    assert cache.get_image(ids[0]) is not None  # read: now the most recently accessed
    new_id, new = blob(99)
    cache.put_image(new_id, new)  # 50 KB > 45 KB: evict down to 40.5 KB, i.e. one file
    assert cache.get_image(ids[1]) is None  # the least recently accessed: gone
    assert all(cache.get_image(i) is not None for i in (ids[0], ids[2], ids[3]))
    assert cache.get_image(new_id) == new
    assert cache.size_bytes() <= LOW_WATER * 45 * KB


def test_an_evicted_image_takes_its_masks(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, max_bytes=200 * KB)
    old_id, old = blob(1, 30 * KB)
    cache.put_image(old_id, old)
    cache.put_mask(old_id, "m-0", np.ones((50, 50), bool))
    cache.put_logits(old_id, "m-0", np.zeros((64, 64), np.float32))
    for p in (tmp_path / "images" / old_id, *(tmp_path / "masks" / old_id).iterdir()):
        age(p, 1000)
    age(tmp_path / "images" / old_id, 2000)
    keep_id, keep = blob(2, 130 * KB)
    cache.put_image(keep_id, keep)
    big_id, big = blob(3, 40 * KB)
    cache.put_image(big_id, big)  # 208 KB > 200 KB: the old image and its masks (38 KB) suffice
    assert cache.get_image(old_id) is None
    assert cache.get_mask(old_id, "m-0") is None and cache.get_logits(old_id, "m-0") is None
    assert cache.get_image(keep_id) == keep


def test_a_file_bigger_than_the_budget_is_not_stored(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, max_bytes=20 * KB)
    small_id, small = blob(1)
    cache.put_image(small_id, small)
    huge_id, huge = blob(2, 30 * KB)
    cache.put_image(huge_id, huge)
    assert cache.get_image(huge_id) is None
    assert cache.get_image(small_id) == small
    cache.put_mask(
        small_id, "big", np.random.default_rng(0).random((300, 300)) > 0.5
    )  # ~12 KB PNG... or more
    assert cache.size_bytes() <= 20 * KB


def test_stale_temporary_files_are_removed_fresh_ones_kept(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, max_bytes=100 * KB)
    (tmp_path / "images").mkdir(parents=True)
    stale = tmp_path / "images" / ".x.0123456789abcdef.tmp"
    fresh = tmp_path / "images" / ".y.0123456789abcdef.tmp"
    stale.write_bytes(b"s" * 1000)
    fresh.write_bytes(b"f" * 1000)
    age(stale, cache_mod.STALE_TEMP_S + 10)
    assert cache.size_bytes() == 0
    assert not stale.exists() and fresh.exists()


def test_a_write_into_a_folder_removed_meanwhile_is_retried(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls = []
    real = cache_mod.atomic_write

    def flaky(path, data, **kw):  # type: ignore[no-untyped-def]
        calls.append(path)
        if len(calls) == 1:
            raise FileNotFoundError(path.parent)
        return real(path, data, **kw)

    monkeypatch.setattr(cache_mod, "atomic_write", flaky)
    cache = DiskCache(tmp_path, max_bytes=100 * KB)
    image_id, data = blob(1)
    cache.put_image(image_id, data)
    assert len(calls) == 2 and cache.get_image(image_id) == data


def test_unbounded_and_disabled(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)
    for i in range(20):
        cache.put_image(*blob(i))
    assert cache.evict() == 0 and cache.size_bytes() == 20 * 10 * KB
    off = DiskCache(None, max_bytes=KB)
    off.put_image(*blob(1))
    assert off.get_image(blob(1)[0]) is None
    with pytest.raises(ValueError):
        DiskCache(tmp_path, max_bytes=0)


def _writer(root: str, start: int, n: int, budget: int) -> None:
    cache = DiskCache(Path(root), max_bytes=budget)
    for i in range(start, start + n):
        image_id, data = blob(i, 8 * KB)
        cache.put_image(image_id, data)


def check_complete(root: Path) -> None:
    for p in (root / "images").iterdir():
        if not p.name.startswith("."):
            assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name  # never a partial file


def test_concurrent_threads(tmp_path: Path) -> None:
    budget = 200 * KB
    threads = [threading.Thread(target=_writer, args=(str(tmp_path), t * 1000, 40, budget)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check_complete(tmp_path)
    # each writer rescans after writing 1/8 of the budget: bounded overshoot
    assert DiskCache(tmp_path, max_bytes=budget).size_bytes() <= budget * (1 + 8 / 8)
    DiskCache(tmp_path, max_bytes=budget).evict()
    assert DiskCache(tmp_path).size_bytes() <= budget


def test_concurrent_processes(tmp_path: Path) -> None:
    budget = 200 * KB
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), p * 1000, 60, budget)) for p in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    check_complete(tmp_path)
    assert DiskCache(tmp_path).size_bytes() <= budget * (1 + 4 / 8)
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "images").iterdir())
