"""Tests of fittingroom.index.vector_index (build, search with filters, writes, open/save)."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest
from index_fakes import DIM, build, clustered

from fittingroom.index import (
    IndexKind,
    IndexMismatchError,
    IndexNotFoundError,
    IndexSettings,
    ReadOnlyIndexError,
    VectorIndex,
    default_nlist,
    exact_knn,
    index_paths,
    recall_at_k,
)


def test_flat_is_exact(data):
    x, ids = data
    vi = build(x, ids, IndexKind.flat)
    assert vi.kind is IndexKind.flat and len(vi) == len(x)
    q = clustered(20, seed=7)
    scores, got = vi.search(q, 10)
    ref = q @ x.T
    expect = ids[np.argsort(-ref, axis=1)[:, :10]]
    assert (got == expect).all()
    np.testing.assert_allclose(scores, np.sort(ref, axis=1)[:, ::-1][:, :10], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", [IndexKind.ivf_sq8, IndexKind.ivf_flat])
def test_approximate_recall_against_exact(data, kind):
    x, ids = data
    vi = build(x, ids, kind)
    assert vi.kind is kind
    assert vi.params["nlist"] == min(default_nlist(len(x)), len(x) // 8)
    assert 1 <= vi.params["nprobe"] < vi.params["nlist"]  # tuning chose a real approximation
    assert vi.params["recall_at_10"] >= 0.95
    # Fresh queries (not the tuning sample): recall@10 against brute force.
    q = clustered(200, seed=11)
    q += 0.2 * np.random.default_rng(5).standard_normal(q.shape).astype(np.float32)
    faiss.normalize_L2(q)
    _, got = vi.search(q, 10)
    _, exact = exact_knn(q, [(ids, x)], 10)
    assert recall_at_k(got, exact) >= 0.95


def test_build_picks_kind_by_threshold(data):
    x, ids = data
    small = build(x[:500], ids[:500], None, IndexSettings(approx_threshold=1000))
    big = build(x[:2000], ids[:2000], None, IndexSettings(approx_threshold=1000))
    assert small.kind is IndexKind.flat
    assert big.kind is IndexKind.ivf_sq8


@pytest.mark.parametrize("kind", [IndexKind.flat, IndexKind.ivf_sq8])
def test_filters_return_k_when_k_exist(data, kind):
    x, ids = data
    vi = build(x, ids, kind)
    rng = np.random.default_rng(9)
    allowed = ids[rng.choice(len(ids), size=25, replace=False)]
    q = clustered(30, seed=12)
    scores, got = vi.search(q, 10, allowed_ids=allowed)
    assert (got >= 0).all(), "a filtered query must still return k results"
    assert set(got.ravel().tolist()) <= set(allowed.tolist())
    # and they are the exact best allowed ones
    mask = np.isin(ids, allowed)
    ref = q @ x[mask].T
    expect = ids[mask][np.argsort(-ref, axis=1)[:, :10]]
    assert recall_at_k(got, expect) >= (1.0 if kind is IndexKind.flat else 0.95)
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_fewer_allowed_than_k_pads(data):
    x, ids = data
    vi = build(x[:300], ids[:300], IndexKind.flat)
    scores, got = vi.search(x[:2], 10, allowed_ids=ids[:3])
    assert (got[:, :3] >= 0).all() and (got[:, 3:] == -1).all()
    assert np.isneginf(scores[:, 3:]).all()
    _, none = vi.search(x[:2], 5, allowed_ids=np.empty(0, dtype=np.int64))
    assert (none == -1).all()


def test_add_remove_and_ids(data):
    x, ids = data
    for kind in (IndexKind.flat, IndexKind.ivf_sq8):
        vi = build(x[:2000], ids[:2000], kind)
        assert set(vi.ids().tolist()) == set(ids[:2000].tolist())
        assert vi.remove(ids[:100]) == 100
        vi.add(ids[2000:2050], x[2000:2050])
        assert set(vi.ids().tolist()) == set(ids[100:2050].tolist())
        _, got = vi.search(x[2000:2001], 1)
        assert got[0, 0] == ids[2000]
        with pytest.raises(ValueError, match="shape"):
            vi.add(ids[:1], np.zeros((1, DIM + 1), np.float32))


def test_save_open_read_only(tmp_path: Path, data):
    x, ids = data
    vi = build(x[:1000], ids[:1000], IndexKind.flat)
    faiss_path, manifest_path = vi.save(tmp_path)
    assert faiss_path == tmp_path / "test.faiss"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["encoder"] == "test" and manifest["dim"] == DIM
    assert manifest["count"] == 1000 and manifest["kind"] == "flat" and manifest["created"]

    ro = VectorIndex.open(tmp_path, "test", read_only=True)
    assert ro.read_only and len(ro) == 1000
    _, got = ro.search(x[:5], 1)
    assert (got[:, 0] == ids[:5]).all()
    with pytest.raises(ReadOnlyIndexError):
        ro.add(ids[1000:1001], x[1000:1001])
    with pytest.raises(ReadOnlyIndexError):
        ro.remove(ids[:1])
    with pytest.raises(ReadOnlyIndexError):
        ro.save(tmp_path)


def test_approx_save_keeps_tuned_params(tmp_path: Path, data):
    x, ids = data
    vi = build(x, ids, IndexKind.ivf_sq8)
    vi.save(tmp_path)
    ro = VectorIndex.open(tmp_path, "test")
    assert ro.kind is IndexKind.ivf_sq8
    assert ro.params["nprobe"] == vi.params["nprobe"]
    assert ro.params["recall_at_10"] == vi.params["recall_at_10"]
    q = x[:20]
    assert (ro.search(q, 10)[1] == vi.search(q, 10)[1]).all()


def test_missing_index_tells_user_to_ingest(tmp_path: Path):
    with pytest.raises(IndexNotFoundError, match="fittingroom ingest") as err:
        VectorIndex.open(tmp_path, "offline")
    assert isinstance(err.value, FileNotFoundError)


def test_reload_after_replace(tmp_path: Path, data):
    x, ids = data
    build(x[:50], ids[:50], IndexKind.flat).save(tmp_path)
    ro = VectorIndex.open(tmp_path, "test")
    assert ro.reloaded() is ro
    build(x[:60], ids[:60], IndexKind.flat).save(tmp_path)
    assert ro.changed_on_disk()
    assert len(ro) == 50  # the mmapped old file stays valid
    assert len(ro.reloaded()) == 60


@pytest.mark.parametrize("kind", [IndexKind.flat, IndexKind.ivf_sq8])
def test_reconstruct(tmp_path: Path, data, kind):
    x, ids = data
    vi = build(x[:3000], ids[:3000], kind)
    got = vi.reconstruct(ids[[5, 17, 2999]])
    np.testing.assert_allclose(got, x[[5, 17, 2999]], atol=0 if kind is IndexKind.flat else 0.02)
    vi.remove(ids[:10])
    with pytest.raises(KeyError, match=str(ids[3])):
        vi.reconstruct(ids[[20, 3]])
    vi.save(tmp_path)
    ro = VectorIndex.open(tmp_path, "test")
    assert ro.can_reconstruct
    np.testing.assert_allclose(ro.reconstruct(ids[[17]]), got[1:2], atol=1e-6)


# ---- index / encoder mismatch ------------------------------------------------------------
def test_open_with_the_stored_dim_works(tmp_path: Path, data):
    x, ids = data
    build(x[:100], ids[:100], IndexKind.flat).save(tmp_path)
    assert len(VectorIndex.open(tmp_path, "test", dim=DIM)) == 100


def test_open_with_another_dim_is_a_mismatch(tmp_path: Path, data):
    """Same encoder name, other embedding size (a new version of the model): a clear error."""
    x, ids = data
    build(x[:100], ids[:100], IndexKind.flat).save(tmp_path)
    with pytest.raises(IndexMismatchError) as err:
        VectorIndex.open(tmp_path, "test", dim=512)
    msg = str(err.value)
    assert f"'test' (dim {DIM})" in msg and "'test' (dim 512)" in msg
    assert "fittingroom ingest FEED --encoder test" in msg and str(tmp_path) in msg
    assert err.value.stored == ("test", DIM) and err.value.requested == ("test", 512)
    # callers that report a missing index (CLI, service) report this one too
    assert isinstance(err.value, IndexNotFoundError)


def test_open_a_file_of_another_encoder_is_a_mismatch(tmp_path: Path, data):
    """An index copied under another encoder's file name is refused, not searched."""
    x, ids = data
    build(x[:100], ids[:100], IndexKind.flat, name="clip-b32").save(tmp_path)
    for suffix in (".faiss", ".json"):
        (tmp_path / f"clip-b32{suffix}").rename(tmp_path / f"offline{suffix}")
    with pytest.raises(IndexMismatchError, match=r"encoder 'clip-b32' \(dim 64\), not for encoder 'offline'"):
        VectorIndex.open(tmp_path, "offline")


def test_query_vectors_of_another_dim_are_a_mismatch(data):
    x, ids = data
    for kind in (IndexKind.flat, IndexKind.ivf_sq8):
        vi = build(x[:2000], ids[:2000], kind)
        for bad in (np.zeros((2, 512), np.float32), np.zeros(DIM - 1, np.float32)):
            with pytest.raises(IndexMismatchError, match=rf"dim {bad.shape[-1]} .* holds dim {DIM}"):
                vi.search(bad, 5)
        with pytest.raises(ValueError):  # still a ValueError for callers validating shapes
            vi.search(np.zeros((1, DIM * 2), np.float32), 5)
        assert vi.search(x[:1], 1)[1][0, 0] == ids[0]


def test_reload_keeps_the_old_index_when_the_new_one_has_another_dim(tmp_path: Path, data):
    x, ids = data
    build(x[:50], ids[:50], IndexKind.flat).save(tmp_path)
    ro = VectorIndex.open(tmp_path, "test")
    other = clustered(50, dim=32)
    build(other, ids[:50], IndexKind.flat).save(tmp_path)
    with pytest.raises(IndexMismatchError, match="dim 32"):
        ro.reloaded()
    assert index_paths(tmp_path, "test")[0].exists() and len(ro) == 50


# ---- re-ranking with full vectors ------------------------------------------------------
def near_duplicates(n: int = 4000, noise: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, DIM)).astype(np.float32)
    x = centres[rng.integers(0, 40, n)] + noise * rng.standard_normal((n, DIM)).astype(np.float32)
    faiss.normalize_L2(x)
    return x


def test_rerank_with_full_vectors_lifts_the_sq8_recall_cap():
    from index_fakes import random_ids

    x = near_duplicates()
    ids = random_ids(len(x))
    vi = build(x, ids, IndexKind.ivf_sq8)
    pos = {int(v): i for i, v in enumerate(ids)}
    calls = []

    def full(vids: np.ndarray) -> np.ndarray:
        calls.append(len(vids))
        return x[[pos[int(v)] for v in vids]]

    q = x[np.random.default_rng(4).choice(len(x), 100, replace=False)]
    _, exact = exact_knn(q, [(ids, x)], 10)
    _, plain = vi.search(q, 10)
    scores, reranked = vi.search(q, 10, rerank=full, rerank_factor=4)
    assert recall_at_k(plain, exact) < 0.95  # 8-bit codes cannot order near-duplicates
    assert recall_at_k(reranked, exact) >= 0.95 > recall_at_k(plain, exact) + 0.2
    assert calls and calls[0] <= 100 * 40
    # exact scores of the returned vectors, best first
    returned = x[[[pos[int(v)] for v in row] for row in reranked]]
    np.testing.assert_allclose(scores, np.einsum("qkd,qd->qk", returned, q), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()

    allowed = ids[:300]
    _, got = vi.search(q[:5], 10, allowed_ids=allowed, rerank=full)
    assert (got >= 0).all() and set(got.ravel().tolist()) <= set(allowed.tolist())


def test_rerank_is_ignored_by_exact_indexes(data):
    x, ids = data
    vi = build(x[:500], ids[:500], IndexKind.flat)

    def boom(_ids: np.ndarray) -> np.ndarray:
        raise AssertionError("an exact index needs no re-ranking")

    assert (vi.search(x[:3], 5, rerank=boom)[1] == vi.search(x[:3], 5)[1]).all()
