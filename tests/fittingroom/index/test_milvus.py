"""``MilvusIndex`` against milvus-lite (an embedded file db in tmp_path): the same top-10 as the
FAISS flat index on the same vectors, with and without an id filter; add / remove / sync;
``open_index`` and ``sync_index`` follow ``FITTINGROOM_INDEX_BACKEND``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from index_fakes import DIM, clustered, products, put, random_ids

from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.index import (
    IndexBackend,
    IndexKind,
    IndexMismatchError,
    IndexNotFoundError,
    IndexSettings,
    MilvusIndex,
    VectorIndex,
    open_index,
    sync_index,
)

pytest.importorskip("pymilvus", reason="the 'milvus' extra is not installed")
pytest.importorskip("milvus_lite", reason="the 'milvus' extra is not installed")

N = 3000


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):
    """(milvus, faiss flat, vectors, ids): the same N clustered unit vectors in both."""
    x = clustered(N)
    ids = random_ids(N)
    faiss_index = VectorIndex.create("test", DIM)
    faiss_index.add(ids, x)
    uri = str(tmp_path_factory.mktemp("milvus") / "milvus.db")
    milvus = MilvusIndex.open(uri, "test", dim=DIM, create=True)
    milvus.add(ids, x)
    yield milvus, faiss_index, x, ids
    milvus.close()


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean share of the top-k ids two result lists have in common (-1 padding ignored)."""
    return float(
        np.mean(
            [len(set(r[r >= 0]) & set(s[s >= 0])) / max(1, (r >= 0).sum()) for r, s in zip(a, b, strict=True)]
        )
    )


def test_top10_agrees_with_faiss_flat(pair):
    milvus, flat, _, _ = pair
    q = clustered(50, seed=7)
    m_scores, m_ids = milvus.search(q, 10)
    f_scores, f_ids = flat.search(q, 10)
    assert len(milvus) == N and m_ids.shape == (50, 10) and m_scores.dtype == np.float32
    assert agreement(m_ids, f_ids) >= 0.99
    np.testing.assert_allclose(m_scores, f_scores, atol=1e-4)  # inner products, best first
    assert (np.diff(m_scores, axis=1) <= 1e-6).all()


def test_top10_agrees_with_an_id_filter(pair):
    milvus, flat, _, ids = pair
    rng = np.random.default_rng(5)
    allowed = rng.choice(ids, size=N // 20, replace=False)  # 5% of the vectors
    q = clustered(50, seed=8)
    m_scores, m_ids = milvus.search(q, 10, allowed)
    f_scores, f_ids = flat.search(q, 10, allowed)
    assert set(m_ids.ravel()) <= set(allowed.tolist())
    assert (m_ids >= 0).all()  # k results when k allowed vectors exist
    assert agreement(m_ids, f_ids) >= 0.99
    np.testing.assert_allclose(m_scores, f_scores, atol=1e-4)


def test_fewer_allowed_than_k_pads_and_empty_filter_finds_nothing(pair):
    milvus, flat, _, ids = pair
    q = clustered(3, seed=9)
    scores, out = milvus.search(q, 10, ids[:4])
    assert (out[:, 4:] == -1).all() and np.isneginf(scores[:, 4:]).all()
    assert {frozenset(r[:4]) for r in out} == {frozenset(ids[:4].tolist())}
    assert agreement(out, flat.search(q, 10, ids[:4])[1]) == 1.0
    scores, out = milvus.search(q, 5, np.array([], np.int64))
    assert (out == -1).all()


def test_add_remove_reconstruct_and_reopen(tmp_path: Path):
    uri = str(tmp_path / "m.db")
    with pytest.raises(IndexNotFoundError, match="fittingroom ingest"):
        MilvusIndex.open(uri, "enc")
    x = clustered(20)
    ids = random_ids(20)
    index = MilvusIndex.open(uri, "enc", dim=DIM, create=True)
    index.add(ids, x)
    index.add(ids[:5], x[5:10])  # upsert: replaced, not duplicated
    assert len(index) == 20
    np.testing.assert_allclose(index.reconstruct(ids[:5]), x[5:10], atol=1e-6)
    assert index.remove(np.concatenate([ids[:3], [7]])) == 3
    assert len(index) == 17 and set(index.ids().tolist()) == set(ids[3:].tolist())
    index.close()
    again = MilvusIndex.open(uri, "enc", dim=DIM)
    assert len(again) == 17
    with pytest.raises(IndexMismatchError):
        again.search(np.zeros((1, DIM + 1), np.float32), 3)
    again.close()
    with pytest.raises(IndexMismatchError, match="dim 64"):
        MilvusIndex.open(uri, "enc", dim=DIM * 2)


def test_sync_index_and_open_index_follow_the_backend_setting(tmp_path: Path):
    store = SQLiteStore(tmp_path / "c.db")
    vids = put(store, products(300))
    settings = IndexSettings(backend=IndexBackend.milvus, milvus_uri=str(tmp_path / "lite.db"))
    report = sync_index(store, "enc", tmp_path / "index", settings=settings)
    assert (report.added, report.removed, report.count) == (300, 0, 300)
    assert not (tmp_path / "index").exists() or not list((tmp_path / "index").glob("*.faiss"))
    store.delete_embeddings("enc", vids[:10].tolist())
    report = sync_index(store, "enc", tmp_path / "index", settings=settings)
    assert (report.added, report.removed, report.count) == (0, 10, 290)
    index = open_index(tmp_path / "index", "enc", dim=DIM, settings=settings)
    assert isinstance(index, MilvusIndex) and len(index) == 290
    q = store.get_embeddings("enc", [int(vids[50])])[int(vids[50])][None, :]
    assert index.search(q, 1)[1][0, 0] == vids[50]
    index.close()
    flat = IndexSettings(backend=IndexBackend.faiss)
    sync_index(store, "enc", tmp_path / "index", settings=flat)
    faiss_index = open_index(tmp_path / "index", "enc", settings=flat)
    assert (
        isinstance(faiss_index, VectorIndex)
        and faiss_index.kind is IndexKind.flat
        and len(faiss_index) == 290
    )
    store.close()
