"""Tests of the FAISS vector index (fittingroom.index)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import faiss
import numpy as np
import pytest

from fittingroom.catalog.models import ImageRecord, Product, vector_id_for
from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.index import (
    IndexKind,
    IndexNotFoundError,
    IndexSettings,
    ReadOnlyIndexError,
    VectorIndex,
    default_nlist,
    exact_knn,
    index_paths,
    recall_at_k,
    sync_index,
)

DIM = 64


def clustered(n: int, dim: int = DIM, clusters: int = 50, seed: int = 0) -> np.ndarray:
    """Unit vectors drawn around fixed random cluster centres (embeddings are clustered, not uniform).

    ``seed`` changes the draw, not the centres, so queries and data share one distribution.
    """
    centres = np.random.default_rng(1000 + dim).standard_normal((clusters, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, clusters, n)] + 0.7 * rng.standard_normal((n, dim)).astype(np.float32)
    faiss.normalize_L2(x)
    return x


def random_ids(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice(2**62, size=n, replace=False).astype(np.int64) + 2**62  # exercise the 63rd bit


def build(x: np.ndarray, ids: np.ndarray, kind: IndexKind | None, settings: IndexSettings | None = None):
    rng = np.random.default_rng(3)

    def batches():
        for s in range(0, len(x), 1000):
            yield ids[s : s + 1000], x[s : s + 1000]

    def sample(m: int):
        p = rng.choice(len(x), size=min(m, len(x)), replace=False)
        return ids[p], x[p]

    return VectorIndex.build("test", x.shape[1], len(x), batches, sample, kind=kind, settings=settings)


@pytest.fixture(scope="module")
def data():
    x = clustered(6000)
    return x, random_ids(len(x))


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


def test_encoder_names_become_safe_file_names(tmp_path: Path):
    a, _ = index_paths(tmp_path, "open_clip:ViT-B-32/laion2b")
    b, _ = index_paths(tmp_path, "open_clip:ViT-B-32/laion2c")
    assert a.parent == tmp_path and "/" not in a.name and a != b


def test_atomic_save_survives_failure_mid_save(tmp_path: Path, data, monkeypatch):
    x, ids = data
    old = build(x[:500], ids[:500], IndexKind.flat)
    old.save(tmp_path)
    before = sorted(os.listdir(tmp_path))

    new = build(x[:800], ids[:800], IndexKind.flat)
    real_write = faiss.write_index

    def crash(index, path):
        real_write(index, path)
        with open(path, "r+b") as fh:  # a half-written file, then the process dies
            fh.truncate(100)
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", crash)
    with pytest.raises(OSError, match="disk full"):
        new.save(tmp_path)
    monkeypatch.undo()

    assert sorted(os.listdir(tmp_path)) == before  # no temp file left behind
    reopened = VectorIndex.open(tmp_path, "test")
    assert len(reopened) == 500
    assert set(reopened.ids().tolist()) == set(ids[:500].tolist())


def test_manifest_mismatch_trusts_index_file(tmp_path: Path, data):
    x, ids = data
    build(x[:50], ids[:50], IndexKind.flat).save(tmp_path)
    _, manifest = index_paths(tmp_path, "test")
    m = json.loads(manifest.read_text())
    m["count"] = 7
    manifest.write_text(json.dumps(m))
    assert len(VectorIndex.open(tmp_path, "test")) == 50


def test_reload_after_replace(tmp_path: Path, data):
    x, ids = data
    build(x[:50], ids[:50], IndexKind.flat).save(tmp_path)
    ro = VectorIndex.open(tmp_path, "test")
    assert ro.reloaded() is ro
    build(x[:60], ids[:60], IndexKind.flat).save(tmp_path)
    assert ro.changed_on_disk()
    assert len(ro) == 50  # the mmapped old file stays valid
    assert len(ro.reloaded()) == 60


# ---- sync with the SQLite store ------------------------------------------------------
def _products(n: int, start: int = 0) -> list[Product]:
    out = []
    for i in range(start, start + n):
        sha = f"{i:064x}"
        out.append(
            Product(
                source="t",
                id=f"P{i}",
                title=f"product {i}",
                images=[
                    ImageRecord(url=f"/img/{i}.jpg", sha256=sha, vector_id=vector_id_for("t", f"P{i}", sha))
                ],
            )
        )
    return out


def _put(store: SQLiteStore, products: list[Product], seed: int = 0) -> np.ndarray:
    store.upsert_products(products)
    vids = np.array([p.images[0].vector_id for p in products], dtype=np.int64)
    store.put_embeddings("enc", vids.tolist(), clustered(len(products), seed=seed))
    return vids


def test_sync_adds_removes_and_rebuilds(tmp_path: Path):
    store = SQLiteStore(tmp_path / "c.db")
    idx_dir = tmp_path / "index"
    settings = IndexSettings(approx_threshold=1500)

    empty = sync_index(store, "enc", idx_dir, settings=settings)
    assert empty.count == 0 and not empty.saved
    with pytest.raises(IndexNotFoundError):
        VectorIndex.open(idx_dir, "enc")

    products = _products(1000)
    vids = _put(store, products)
    r1 = sync_index(store, "enc", idx_dir, settings=settings)
    assert r1.rebuilt and r1.saved and r1.kind is IndexKind.flat and r1.count == 1000

    r2 = sync_index(store, "enc", idx_dir, settings=settings)
    assert not r2.saved and r2.added == 0 and r2.removed == 0

    store.delete_products([("t", "P0"), ("t", "P1")])
    more = _products(100, start=1000)
    _put(store, more, seed=1)
    r3 = sync_index(store, "enc", idx_dir, settings=settings)
    assert (r3.added, r3.removed, r3.rebuilt, r3.count) == (100, 2, False, 1098)
    ro = VectorIndex.open(idx_dir, "enc")
    assert set(ro.ids().tolist()) == store.embedding_ids("enc")
    assert vids[0] not in set(ro.ids().tolist())

    # Crossing the threshold switches to the approximate index.
    _put(store, _products(600, start=2000), seed=2)
    r4 = sync_index(store, "enc", idx_dir, settings=settings)
    assert r4.rebuilt and r4.kind is IndexKind.ivf_sq8 and r4.count == 1698
    ro = VectorIndex.open(idx_dir, "enc")
    assert ro.kind is IndexKind.ivf_sq8 and ro.params["recall_at_10"] >= 0.95
    assert set(ro.ids().tolist()) == store.embedding_ids("enc")

    # Incremental changes on the IVF index.
    store.delete_products([("t", "P5")])
    r5 = sync_index(store, "enc", idx_dir, settings=settings)
    assert (r5.removed, r5.rebuilt, r5.kind) == (1, False, IndexKind.ivf_sq8)
    assert r5.params["changed_since_tune"] == 1 and r5.params["tuned_count"] == 1698

    # Over retune_fraction (20%) of changes: nprobe is re-tuned on the new content, no rebuild.
    _put(store, _products(400, start=3000), seed=3)
    r6 = sync_index(store, "enc", idx_dir, settings=settings)
    assert (r6.added, r6.rebuilt) == (400, False)
    assert r6.params["changed_since_tune"] == 0 and r6.params["tuned_count"] == 2097
    assert r6.params["recall_at_10"] >= 0.95
    assert VectorIndex.open(idx_dir, "enc").params["tuned_count"] == 2097
    store.close()


def test_sync_repairs_a_corrupt_index(tmp_path: Path):
    store = SQLiteStore(tmp_path / "c.db")
    _put(store, _products(50))
    idx_dir = tmp_path / "index"
    sync_index(store, "enc", idx_dir)
    faiss_path, _ = index_paths(idx_dir, "enc")
    faiss_path.write_bytes(b"garbage")
    r = sync_index(store, "enc", idx_dir)
    assert r.rebuilt and r.count == 50
    assert len(VectorIndex.open(idx_dir, "enc")) == 50
    store.close()


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


def test_tuning_uses_encoder_query_vectors_and_safety_factor(tmp_path: Path):
    """sync_index(encoder=...) adds real text-query vectors to the tuning sample."""
    from fittingroom.models.encoders.base import Query

    class TextEncoder:
        name = "enc"
        dim = DIM

        def __init__(self) -> None:
            self.texts: list[str] = []

        def query_vectors(self, queries: list[Query]) -> np.ndarray:
            self.texts += [q.text or "" for q in queries]
            return clustered(len(queries), seed=77)

    store = SQLiteStore(tmp_path / "c.db")
    _put(store, _products(1200))
    enc = TextEncoder()
    settings = IndexSettings(approx_threshold=1000)
    report = sync_index(store, "enc", tmp_path / "index", settings=settings, encoder=enc)  # type: ignore[arg-type]
    assert report.kind is IndexKind.ivf_sq8
    p = report.params
    assert enc.texts and "encoder query vectors" in p["tuned_with"]
    assert p["nprobe"] == min(p["nlist"], 2 * p["nprobe_tuned"])
    assert p["recall_at_10"] == p["recall_by_nprobe"][str(p["nprobe"])] >= 0.95
    without = sync_index(store, "enc", tmp_path / "index2", settings=settings)
    assert "encoder" not in without.params["tuned_with"]
    store.close()
