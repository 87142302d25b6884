"""Tests of fittingroom.index.factory (index kind and IVF settings by size)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from index_fakes import build, clustered, random_ids

from fittingroom.index import IndexKind, IndexSettings, default_nlist, kind_for_count, max_nlist
from fittingroom.index.factory import factory_string, training_size


@pytest.mark.parametrize("n", [100_000, 1_000_000, 10_000_000])
def test_default_nlist_is_about_four_sqrt_n(n):
    nlist = default_nlist(n)
    assert nlist & (nlist - 1) == 0  # a power of two
    assert 4 * math.sqrt(n) / math.sqrt(2) <= nlist <= 4 * math.sqrt(n) * math.sqrt(2)


@pytest.mark.parametrize("n", [500, 2000, 6000, 20_000])
def test_nlist_never_starves_kmeans(n):
    """At least 39 training points per centroid (FAISS warns below), also for an explicit nlist."""
    assert default_nlist(n) * 39 <= n
    assert default_nlist(n, IndexSettings(nlist=4096)) * 39 <= n
    assert max_nlist(n) == n // 39


def test_training_size_covers_every_list():
    s = IndexSettings()
    n = 1_000_000
    nlist = default_nlist(n, s)
    assert training_size(n, nlist, s) == nlist * s.train_points_per_list
    assert training_size(3000, 64, s) == 2560 and training_size(500, 8, s) == 500


def test_kind_by_size_and_factory_strings():
    s = IndexSettings(approx_threshold=1000)
    assert kind_for_count(999, s) is IndexKind.flat and kind_for_count(1000, s) is IndexKind.ivf_sq8
    assert factory_string(IndexKind.ivf_sq8, 1024) == "IVF1024,SQ8"
    assert factory_string(IndexKind.flat) == "IDMap2,Flat"


def test_built_ivf_reports_its_settings():
    x = clustered(4000)
    vi = build(x, random_ids(len(x)), IndexKind.ivf_sq8)
    p = vi.params
    assert p["nlist"] == default_nlist(4000) == 102  # 4 sqrt(4000) ~ 253 -> 256, clamped to 4000 // 39
    assert p["factory"] == "IVF102,SQ8" and p["trained_count"] == 4000
    assert p["train_points"] >= 39 * p["nlist"]
    assert np.isfinite(p["recall_at_10"])
