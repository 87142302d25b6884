"""Shared data and builders of the fittingroom.index tests."""

from __future__ import annotations

from collections.abc import Iterator

import faiss
import numpy as np

from fittingroom.catalog.models import ImageRecord, Product, vector_id_for
from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.index import IndexKind, IndexSettings, VectorIndex

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


def build(
    x: np.ndarray,
    ids: np.ndarray,
    kind: IndexKind | None,
    settings: IndexSettings | None = None,
    name: str = "test",
) -> VectorIndex:
    rng = np.random.default_rng(3)

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for s in range(0, len(x), 1000):
            yield ids[s : s + 1000], x[s : s + 1000]

    def sample(m: int) -> tuple[np.ndarray, np.ndarray]:
        p = rng.choice(len(x), size=min(m, len(x)), replace=False)
        return ids[p], x[p]

    return VectorIndex.build(name, x.shape[1], len(x), batches, sample, kind=kind, settings=settings)


def products(n: int, start: int = 0) -> list[Product]:
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


def put(store: SQLiteStore, items: list[Product], seed: int = 0, dim: int = DIM) -> np.ndarray:
    """Upsert ``items`` with one clustered embedding of encoder ``enc`` per image; returns the ids."""
    store.upsert_products(items)
    vids = np.array([p.images[0].vector_id for p in items], dtype=np.int64)
    store.put_embeddings("enc", vids.tolist(), clustered(len(items), dim=dim, seed=seed))
    return vids
