"""Tests of fittingroom.index.sync (the saved index follows the catalog store)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from index_fakes import DIM, build, clustered, products, put, random_ids

from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.index import (
    IndexKind,
    IndexMismatchError,
    IndexNotFoundError,
    IndexSettings,
    VectorIndex,
    index_paths,
    sync_index,
)


def test_sync_adds_removes_and_rebuilds(tmp_path: Path):
    store = SQLiteStore(tmp_path / "c.db")
    idx_dir = tmp_path / "index"
    settings = IndexSettings(approx_threshold=1500)

    empty = sync_index(store, "enc", idx_dir, settings=settings)
    assert empty.count == 0 and not empty.saved
    with pytest.raises(IndexNotFoundError):
        VectorIndex.open(idx_dir, "enc")

    items = products(1000)
    vids = put(store, items)
    r1 = sync_index(store, "enc", idx_dir, settings=settings)
    assert r1.rebuilt and r1.saved and r1.kind is IndexKind.flat and r1.count == 1000

    r2 = sync_index(store, "enc", idx_dir, settings=settings)
    assert not r2.saved and r2.added == 0 and r2.removed == 0

    store.delete_products([("t", "P0"), ("t", "P1")])
    more = products(100, start=1000)
    put(store, more, seed=1)
    r3 = sync_index(store, "enc", idx_dir, settings=settings)
    assert (r3.added, r3.removed, r3.rebuilt, r3.count) == (100, 2, False, 1098)
    ro = VectorIndex.open(idx_dir, "enc")
    assert set(ro.ids().tolist()) == store.embedding_ids("enc")
    assert vids[0] not in set(ro.ids().tolist())

    # Crossing the threshold switches to the approximate index.
    put(store, products(600, start=2000), seed=2)
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
    put(store, products(400, start=3000), seed=3)
    r6 = sync_index(store, "enc", idx_dir, settings=settings)
    assert (r6.added, r6.rebuilt) == (400, False)
    assert r6.params["changed_since_tune"] == 0 and r6.params["tuned_count"] == 2097
    assert r6.params["recall_at_10"] >= 0.95
    assert VectorIndex.open(idx_dir, "enc").params["tuned_count"] == 2097
    store.close()


def test_sync_repairs_a_corrupt_index(tmp_path: Path):
    store = SQLiteStore(tmp_path / "c.db")
    put(store, products(50))
    idx_dir = tmp_path / "index"
    sync_index(store, "enc", idx_dir)
    faiss_path, _ = index_paths(idx_dir, "enc")
    faiss_path.write_bytes(b"garbage")
    r = sync_index(store, "enc", idx_dir)
    assert r.rebuilt and r.count == 50
    assert len(VectorIndex.open(idx_dir, "enc")) == 50
    store.close()


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
    put(store, products(1200))
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


def test_sync_replaces_an_index_of_another_encoder(tmp_path: Path):
    """A file of another encoder under this encoder's name is rebuilt from the store, not reused."""
    store = SQLiteStore(tmp_path / "c.db")
    put(store, products(40))
    idx_dir = tmp_path / "index"
    x = clustered(30)
    build(x, random_ids(30), IndexKind.flat, name="other").save(idx_dir)
    for suffix in (".faiss", ".json"):
        (idx_dir / f"other{suffix}").rename(idx_dir / f"enc{suffix}")
    with pytest.raises(IndexMismatchError):
        VectorIndex.open(idx_dir, "enc")
    r = sync_index(store, "enc", idx_dir)
    assert r.rebuilt and r.count == 40 and "'other'" in r.reason
    vi = VectorIndex.open(idx_dir, "enc", dim=DIM)
    assert set(vi.ids().tolist()) == store.embedding_ids("enc")
    store.close()


def test_sync_rebuilds_when_the_encoder_dim_changed(tmp_path: Path):
    """Same encoder name, new embedding size in the store: rebuilt, then opens with the new dim only."""
    store = SQLiteStore(tmp_path / "c.db")
    items = products(40)
    put(store, items)
    idx_dir = tmp_path / "index"
    sync_index(store, "enc", idx_dir)
    store.close()
    store = SQLiteStore(tmp_path / "c2.db")  # the catalog re-embedded by a new version of the encoder
    put(store, items, dim=32)
    r = sync_index(store, "enc", idx_dir)
    assert r.rebuilt and r.reason == f"dimension changed from {DIM}"
    assert VectorIndex.open(idx_dir, "enc", dim=32).dim == 32
    with pytest.raises(IndexMismatchError, match=f"dim 32.*dim {DIM}"):
        VectorIndex.open(idx_dir, "enc", dim=DIM)
    assert json.loads(index_paths(idx_dir, "enc")[1].read_text())["dim"] == 32
    store.close()


def test_sync_switches_to_pca_when_the_store_crosses_pca_threshold(tmp_path: Path):
    store = SQLiteStore(tmp_path / "c.db")
    idx_dir = tmp_path / "index"
    settings = IndexSettings(approx_threshold=1000, pca_threshold=3000, pca_dim=32, pca_train_points=2000)
    old = put(store, products(2000), seed=0, dim=DIM)
    first = sync_index(store, "enc", idx_dir, settings=settings)
    assert first.kind is IndexKind.ivf_sq8  # 2000 < pca_threshold
    put(store, products(1500, start=2000), seed=1, dim=DIM)
    grown = sync_index(store, "enc", idx_dir, settings=settings)
    assert grown.kind is IndexKind.pca_ivf_sq8 and grown.count == 3500  # rebuilt, not kept as IVF-SQ8
    vi = VectorIndex.open(idx_dir, "enc")
    assert vi.kind is IndexKind.pca_ivf_sq8 and vi.params["factory"].startswith("PCA32,IVF")
    # hysteresis: a small shrink below pca_threshold keeps the PCA index, updated in place
    store.delete_embeddings("enc", old[:700].tolist())
    shrunk = sync_index(store, "enc", idx_dir, settings=settings)
    assert shrunk.kind is IndexKind.pca_ivf_sq8 and shrunk.count == 2800 and shrunk.removed == 700
    assert not np.isin(VectorIndex.open(idx_dir, "enc").ids(), old[:700]).any()
