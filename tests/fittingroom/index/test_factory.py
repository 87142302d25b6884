"""Tests of fittingroom.index.factory (index kind and IVF settings by size)."""

from __future__ import annotations

import math

import faiss
import numpy as np
import pytest
from index_fakes import build, clustered, random_ids

from fittingroom.index import (
    IndexKind,
    IndexSettings,
    VectorIndex,
    default_nlist,
    exact_knn,
    kind_for_count,
    max_nlist,
    recall_at_k,
)
from fittingroom.index import factory as fr_factory
from fittingroom.index.factory import factory_string, new_pca_ivf, training_size
from fittingroom.index.settings import RefineCodec
from fittingroom.index.tuning import filtered_nprobe


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


# ---- pca_ivf_sq8 (PCA + IVF-SQ8 + refine codes), forced at small sizes by lowering the thresholds
DIM, PCA_DIM, N = 256, 64, 20_000


def low_rank(n: int, seed: int, dim: int = DIM, latent: int = 24) -> np.ndarray:
    """Unit vectors of low intrinsic dimension (``latent``) in ``dim`` dims, like real embeddings."""
    basis = np.random.default_rng(77).standard_normal((latent, dim)).astype(np.float32)
    centres = np.random.default_rng(78).standard_normal((100, latent)).astype(np.float32)
    rng = np.random.default_rng(seed)
    z = centres[rng.integers(0, len(centres), n)] + 0.5 * rng.standard_normal((n, latent)).astype(np.float32)
    x = z @ basis + 0.05 * rng.standard_normal((n, dim)).astype(np.float32)
    faiss.normalize_L2(x)
    return x


def settings(**kw: object) -> IndexSettings:
    base = {"approx_threshold": 1000, "pca_threshold": 5000, "pca_dim": PCA_DIM, "pca_train_points": 5000}
    return IndexSettings(_env_file=None, **(base | kw))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, np.ndarray]:
    return low_rank(N, seed=0), random_ids(N)


@pytest.fixture(scope="module")
def pca_index(corpus: tuple[np.ndarray, np.ndarray]) -> VectorIndex:
    x, ids = corpus
    return build(x, ids, None, settings())


def queries(x: np.ndarray, n: int = 100) -> np.ndarray:
    rng = np.random.default_rng(5)
    q = x[rng.choice(len(x), n, replace=False)] + 0.02 * rng.standard_normal((n, x.shape[1])).astype(
        np.float32
    )
    faiss.normalize_L2(q)
    return q


def test_pca_kind_is_picked_by_size_and_dimension():
    s = settings()
    assert kind_for_count(N, s, DIM) is IndexKind.pca_ivf_sq8
    assert kind_for_count(4999, s, DIM) is IndexKind.ivf_sq8  # below pca_threshold
    assert kind_for_count(N, s, PCA_DIM) is IndexKind.ivf_sq8  # nothing to reduce
    assert kind_for_count(N, s) is IndexKind.ivf_sq8  # dimension unknown
    assert kind_for_count(999, s, DIM) is IndexKind.flat
    assert factory_string(IndexKind.pca_ivf_sq8, 512, s) == "PCA64,IVF512,SQ8,Refine(SQ8)"
    with pytest.raises(ValueError, match="wider than pca_dim"):
        new_pca_ivf(PCA_DIM, 16, s)


def test_pca_index_reaches_recall_of_flat(pca_index: VectorIndex, corpus: tuple[np.ndarray, np.ndarray]):
    x, ids = corpus
    assert pca_index.kind is IndexKind.pca_ivf_sq8
    p = pca_index.params
    assert p["factory"] == f"PCA{PCA_DIM},IVF{p['nlist']},SQ8,Refine(SQ8)" and p["pca_dim"] == PCA_DIM
    assert p["nprobe"] < p["nlist"]
    q = queries(x)
    _, truth = exact_knn(q, [(ids, x)], 10)
    scores, got = pca_index.search(q, 10)
    assert recall_at_k(got, truth) >= 0.9
    # scores are inner products with the (SQ8-decoded) full vectors, best first
    lookup = dict(zip(ids.tolist(), range(len(ids)), strict=True))
    exact = np.einsum("ij,ij->i", x[[lookup[int(i)] for i in got[0]]], np.repeat(q[:1], 10, axis=0))
    np.testing.assert_allclose(scores[0], exact, atol=0.02)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_pca_index_filters_inside_the_search(pca_index: VectorIndex, corpus: tuple[np.ndarray, np.ndarray]):
    x, ids = corpus
    allowed = ids[np.random.default_rng(9).random(len(ids)) < 0.02]
    q = queries(x, 50)
    _, got = pca_index.search(q, 10, allowed)
    assert np.isin(got, allowed).all()  # only allowed ids, and full pages
    keep = np.isin(ids, allowed)
    _, truth = exact_knn(q, [(ids[keep], x[keep])], 10)
    assert recall_at_k(got, truth) >= 0.9
    few = allowed[:3]
    _, got3 = pca_index.search(q[:5], 10, few)
    assert set(got3[:, :3].ravel()) <= set(few.tolist()) and (got3[:, 3:] == -1).all()


def test_filtered_search_probes_nprobe_over_sqrt_selectivity(
    pca_index: VectorIndex, corpus: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
):
    """A 2 % filter probes nprobe / sqrt(0.02) ~ 7 x nprobe lists (not nprobe / 0.02), pages stay
    full of allowed ids, short pages are retried with every list, and an unsorted filter with
    duplicates gives the same pages as the sorted unique one."""
    x, ids = corpus
    probes: list[tuple[int, int]] = []
    real = fr_factory.search_ivf

    def spy(index, q, k, sel, nprobe):
        probes.append((len(q), int(nprobe)))
        return real(index, q, k, sel, nprobe)

    monkeypatch.setattr(fr_factory, "search_ivf", spy)
    nlist, base = pca_index.params["nlist"], pca_index.params["nprobe"]
    allowed = ids[np.random.default_rng(9).random(len(ids)) < 0.02]
    expect = min(nlist, filtered_nprobe(base, len(allowed) / len(ids)))
    assert base < expect < min(nlist, math.ceil(base * len(ids) / len(allowed)))
    q = queries(x, 50)
    _, got = pca_index.search(q, 10, allowed)
    assert probes[0] == (50, expect)
    assert (got >= 0).all() and np.isin(got, allowed).all()  # full pages of allowed ids only
    keep = np.isin(ids, allowed)
    _, truth = exact_knn(q, [(ids[keep], x[keep])], 10)
    assert recall_at_k(got, truth) >= 0.9
    shuffled = np.concatenate([allowed[::-1], allowed[:7]])
    np.testing.assert_array_equal(pca_index.search(q, 10, shuffled)[1], got)
    # 1 % of ids, all far from the query: the narrow probe comes back short, the retry fills the page
    probes.clear()
    far = ids[np.argsort(x @ q[0])[:200]]
    _, got_far = pca_index.search(q[:1], 10, far)
    assert probes[0][1] < nlist and probes[-1] == (1, nlist)
    assert (got_far >= 0).all() and np.isin(got_far, far).all()


def test_filtered_nprobe_rule():
    assert filtered_nprobe(16, 0.02) == 114 and filtered_nprobe(16, 1.0) == 16
    assert filtered_nprobe(16, 0.25) == 32 and filtered_nprobe(8, 1e-6) == 8000


def test_pca_index_add_remove_save_open(tmp_path, corpus: tuple[np.ndarray, np.ndarray]):
    x, ids = corpus
    vi = build(x[:8000], ids[:8000], None, settings())
    assert vi.kind is IndexKind.pca_ivf_sq8
    np.testing.assert_allclose(vi.reconstruct(ids[:5]), x[:5], atol=0.02)  # SQ8 refine codes
    gone = ids[:100]
    assert vi.remove(gone) == 100 and len(vi) == 7900
    q = x[:100]
    _, got = vi.search(q, 10)
    assert not np.isin(got, gone).any()
    vi.add(ids[8000:8500], x[8000:8500])
    assert len(vi) == 8400 and set(vi.ids().tolist()) == set(ids[100:8500].tolist())
    _, got = vi.search(x[8000:8010], 1)
    assert (got[:, 0] == ids[8000:8010]).mean() >= 0.9  # new vectors find themselves
    vi.save(tmp_path)
    back = VectorIndex.open(tmp_path, "test")
    assert back.kind is IndexKind.pca_ivf_sq8 and len(back) == 8400
    assert back.params["nprobe"] == vi.params["nprobe"]
    np.testing.assert_array_equal(back.search(q, 10)[1], vi.search(q, 10)[1])


def test_pca_index_without_refine_codes(corpus: tuple[np.ndarray, np.ndarray]):
    x, ids = corpus
    s = settings(refine=RefineCodec.none)
    vi = build(x[:8000], ids[:8000], None, s)
    assert vi.kind is IndexKind.pca_ivf_sq8 and vi.params["factory"].endswith(",SQ8")
    assert isinstance(vi.faiss_index, faiss.IndexPreTransform)
    allowed = ids[:8000:40]
    _, got = vi.search(queries(x[:8000], 20), 10, allowed)
    assert np.isin(got, allowed).all()
    assert vi.can_reconstruct and vi.reconstruct(ids[:2]).shape == (2, DIM)
