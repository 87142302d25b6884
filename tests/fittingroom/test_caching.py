"""fittingroom.caching: byte/count bounds, LRU order, oversize values, sizes, thread safety."""

from __future__ import annotations

import random
import sys
import threading
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from fittingroom.caching import BoundedLRU, byte_lru, count_lru, mib, nbytes_of

KB = 1024


def arr(kib: int, fill: int = 0) -> np.ndarray:
    return np.full(kib * KB, fill, dtype=np.uint8)


@dataclass(frozen=True)
class Entry:
    image: np.ndarray
    mask: np.ndarray
    name: str


class HasNbytes:
    nbytes = 12345


def test_nbytes_of_counts_buffers_and_containers() -> None:
    a = np.zeros((256, 64, 64), np.float32)
    assert nbytes_of(a) == 256 * 64 * 64 * 4
    assert nbytes_of(b"x" * 1000) == 1000
    assert nbytes_of(bytearray(500)) == 500
    assert nbytes_of(HasNbytes()) == 12345
    assert nbytes_of(Image.new("RGB", (100, 50))) == 100 * 50 * 4
    assert nbytes_of(Image.new("L", (100, 50))) == 100 * 50
    e = Entry(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), bool), "n")
    assert 400 <= nbytes_of(e) < 400 + 500  # arrays + small overhead
    tup = (arr(4), arr(8))
    assert 12 * KB <= nbytes_of(tup) < 12 * KB + 200
    assert nbytes_of({"k": arr(2)}) >= 2 * KB


def test_nbytes_of_counts_a_shared_array_once() -> None:
    shared = arr(64)
    assert nbytes_of((shared, shared)) < 64 * KB + 200
    assert nbytes_of(Entry(shared, shared, "x")) < 64 * KB + 500


def test_byte_bound_holds_under_random_inserts() -> None:
    cache: BoundedLRU[int, np.ndarray] = byte_lru(100 * KB)
    rng = random.Random(0)
    for i in range(500):
        cache.put(i, arr(rng.randint(1, 40)))
        held = [cache.get(k) for k in list(cache)]
        assert sum(v.nbytes for v in held if v is not None) <= 100 * KB
        assert cache.currsize <= 100 * KB
        assert i in cache  # the newest value always fits (<= budget)
    assert len(cache) >= 2


def test_lru_order_get_refreshes_and_oldest_goes_first() -> None:
    cache: BoundedLRU[str, np.ndarray] = byte_lru(30 * KB)
    cache.put("a", arr(10))
    cache.put("b", arr(10))
    cache.put("c", arr(10))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("d", arr(10))
    assert "b" not in cache
    assert set(cache.keys()) == {"a", "c", "d"}
    assert cache.keys()[-1] == "d"
    cache.put("e", arr(20))  # needs two slots: c then a (least recent first)
    assert set(cache.keys()) == {"d", "e"}


def test_oversize_item_is_not_cached_and_evicts_nothing() -> None:
    cache: BoundedLRU[str, np.ndarray] = byte_lru(50 * KB)
    cache.put("a", arr(20))
    cache.put("b", arr(20))
    assert cache.put("huge", arr(51)) is False
    assert "huge" not in cache
    assert set(cache.keys()) == {"a", "b"}
    # a too-large new value for an existing key drops the stale one
    assert cache.put("a", arr(60)) is False
    assert "a" not in cache and "b" in cache


def test_per_item_cap_below_the_budget() -> None:
    cache: BoundedLRU[str, np.ndarray] = byte_lru(100 * KB, max_item_bytes=30 * KB)
    assert cache.put("ok", arr(30))
    assert not cache.put("big", arr(31))
    assert cache.keys() == ["ok"]


def test_bytes_and_items_both_bind() -> None:
    cache: BoundedLRU[int, np.ndarray] = byte_lru(mib(1), max_items=3)
    for i in range(5):
        cache.put(i, arr(1))
    assert cache.keys() == [2, 3, 4]
    cache.put(9, arr(1023))  # 1023 KiB: evicts by bytes (2 then 3)
    assert cache.currsize <= mib(1)
    assert cache.keys() == [4, 9]


def test_re_put_re_measures_a_grown_value() -> None:
    @dataclass
    class Job:
        result: bytes | None = None

    cache: BoundedLRU[str, Job] = BoundedLRU(10 * KB, getsizeof=lambda j: 100 + len(j.result or b""))
    jobs = [Job() for _ in range(5)]
    for i, j in enumerate(jobs):
        cache.put(str(i), j)
    assert cache.currsize == 500
    jobs[4].result = b"x" * 9000
    cache.put("4", jobs[4])
    assert cache.currsize <= 10 * KB
    assert "4" in cache and cache.currsize >= 9100


def test_count_lru() -> None:
    cache: BoundedLRU[str, int] = count_lru(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.put("c", 3)
    assert cache.keys() == ["a", "c"]
    assert cache.pop("a") == 1 and len(cache) == 1
    cache.clear()
    assert len(cache) == 0 and cache.get("c") is None


def test_setdefault_keeps_the_first_value() -> None:
    cache: BoundedLRU[str, bytes] = byte_lru(KB)
    assert cache.setdefault("k", b"one") == b"one"
    assert cache.setdefault("k", b"two") == b"one"


def test_bounds_are_required_and_positive() -> None:
    with pytest.raises(ValueError):
        BoundedLRU()
    with pytest.raises(ValueError):
        byte_lru(0)
    with pytest.raises(ValueError):
        count_lru(0)


def test_thread_safety_with_8_threads() -> None:
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    budget = 256 * KB
    cache: BoundedLRU[int, np.ndarray] = byte_lru(budget, max_items=40)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(t: int) -> None:
        rng = random.Random(t)
        try:
            start.wait()
            for _ in range(4000):
                key = rng.randrange(64)  # keys shared by all threads
                op = rng.random()
                if op < 0.5:
                    cache.put(key, arr(rng.randint(1, 16), fill=key))
                elif op < 0.9:
                    got = cache.get(key)
                    assert got is None or int(got[0]) == key  # never another key's value
                else:
                    cache.pop(key)
                assert cache.currsize <= budget
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(old_interval)
    assert not errors, errors[:3]
    keys = cache.keys()
    held = [cache.get(k) for k in keys]
    assert all(v is not None for v in held)
    # the running total is exactly the sum of what is held: no lost update
    assert cache.currsize == sum(v.nbytes for v in held if v is not None) <= budget
    assert len(keys) <= 40
