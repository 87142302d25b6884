"""Tests of fittingroom.index.tuning (recall measurement, choice of nprobe)."""

from __future__ import annotations

import logging

import faiss
import numpy as np
import pytest
from index_fakes import build, random_ids

from fittingroom.index import IndexKind, IndexSettings, choose_nprobe, exact_knn, recall_at_k
from fittingroom.index.tuning import drop_self, nprobe_candidates


def curve(points: dict[int, float]):
    """``recall(nprobe)`` from a table (linear between listed points), recording the calls."""
    keys = sorted(points)
    calls: list[int] = []

    def recall(nprobe: int) -> float:
        calls.append(nprobe)
        return float(np.interp(nprobe, keys, [points[k] for k in keys]))

    recall.calls = calls  # type: ignore[attr-defined]
    return recall


def test_exact_knn_over_batches_and_recall():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 16)).astype(np.float32)
    ids = np.arange(500, dtype=np.int64) + 10**12
    q = x[:7]
    _, whole = exact_knn(q, [(ids, x)], 5)
    _, parts = exact_knn(q, [(ids[:123], x[:123]), (ids[123:], x[123:]), (ids[:0], x[:0])], 5)
    assert (whole == parts).all()
    assert (whole == ids[np.argsort(-(q @ x.T), axis=1)[:, :5]]).all()
    assert recall_at_k(whole, whole, 5) == 1.0
    half = whole.copy()
    half[:, 2:] = -1
    assert recall_at_k(half, whole, 5) == pytest.approx(0.4)
    assert (drop_self(whole, whole[:, 0], 4) == whole[:, 1:5]).all()


def test_candidates_are_powers_of_two_and_nlist():
    assert nprobe_candidates(100) == [1, 2, 4, 8, 16, 32, 64, 100]
    assert nprobe_candidates(1) == [1]


def test_reached_target_takes_the_plateau_times_safety_factor():
    recall = curve({1: 0.5, 4: 0.9, 8: 0.965, 16: 0.968, 1024: 1.0})
    c = choose_nprobe(recall, 1024, IndexSettings())
    assert c.reached_target and c.tuned == 8 and c.nprobe == 16
    assert c.recall == pytest.approx(0.968)


def test_unreachable_target_never_scans_every_list():
    """SQ8 on near-duplicates: recall stops at ~0.94 whatever nprobe (the 1M-vector case)."""
    recall = curve({1: 0.6, 16: 0.90, 64: 0.937, 128: 0.9395, 512: 0.9405, 4096: 0.941})
    s = IndexSettings()
    c = choose_nprobe(recall, 4096, s)
    assert not c.reached_target
    # smallest candidate within 0.005 of the best below a full scan (~0.9407 at 2048): 64 (0.937)
    assert c.tuned == 64
    assert c.nprobe == 128 < 4096
    assert c.best_recall == pytest.approx(recall(2048))
    assert "unreachable" in c.note and "0.941" in c.note and "4096" in c.note


def test_unreachable_target_caps_the_safety_factor_below_nlist():
    recall = curve({1: 0.2, 32: 0.80, 64: 0.85})  # still rising at the last partial candidate
    c = choose_nprobe(recall, 64, IndexSettings())
    assert not c.reached_target and c.tuned == 32 and c.nprobe == 32


def test_sq8_plateau_on_near_duplicates_is_tuned_without_full_scan(caplog):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, 64)).astype(np.float32)
    x = centres[rng.integers(0, 40, 4000)] + 0.05 * rng.standard_normal((4000, 64)).astype(np.float32)
    faiss.normalize_L2(x)
    with caplog.at_level(logging.WARNING, logger="fittingroom.index"):
        vi = build(x, random_ids(4000), IndexKind.ivf_sq8)
    p = vi.params
    by = {int(k): v for k, v in p["recall_by_nprobe"].items()}
    assert max(by.values()) < IndexSettings().recall_target  # the premise: quantisation caps recall
    assert p["target_reached"] is False
    assert p["nprobe"] < p["nlist"]
    assert by[p["nprobe_tuned"]] >= max(v for k, v in by.items() if k < p["nlist"]) - 0.005
    assert "unreachable" in p["tune_note"] and any("unreachable" in r.message for r in caplog.records)
    assert set(p["batch_ms_per_query_by_nprobe"]) == set(p["recall_by_nprobe"])
