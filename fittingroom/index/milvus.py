"""``MilvusIndex``: the vector index in a Milvus collection (scale-out), with ``VectorIndex``'s
search contract; ``sync_milvus`` makes it hold exactly the store's embeddings.

Selected with ``FITTINGROOM_INDEX_BACKEND=milvus``; ``FITTINGROOM_INDEX_MILVUS_URI`` is a Milvus
server (``http://host:19530``, standalone or cluster) or a milvus-lite file (``.../milvus.db``,
embedded, one process; the default, under the index folder). One collection per encoder
(``fittingroom_<encoder name>``): primary key ``id`` (int64, the image's ``vector_id``) and
``vector`` (float32, the encoder's dim), inner-product metric, index type
``FITTINGROOM_INDEX_MILVUS_INDEX_TYPE`` (``FLAT`` = exact, the same results as the FAISS flat
index; ``HNSW``/``IVF_FLAT``/``AUTOINDEX`` for millions). Filters (``allowed_ids``) are
applied inside Milvus (an ``id in [...]`` expression), so a filtered
query still returns ``k`` results when ``k`` allowed vectors exist.

Needs the optional extra ``milvus`` (``pip install -e '.[milvus]'``: pymilvus + milvus-lite);
pymilvus is imported on first use only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fittingroom.index.settings import (
    IndexBackend,
    IndexMismatchError,
    IndexNotFoundError,
    IndexSettings,
    rebuild_hint,
)
from fittingroom.index.tuning import as_ids, as_vectors

if TYPE_CHECKING:
    from fittingroom.catalog.store import CatalogStore

#: Rows per insert / get request (Milvus caps a request's size).
BATCH = 1000
#: Milvus's largest ``limit`` of one search.
MAX_TOPK = 16384


def collection_name(encoder_name: str) -> str:
    """``fittingroom_<encoder>`` with every character Milvus does not take as ``_``."""
    return "fittingroom_" + re.sub(r"[^0-9A-Za-z_]", "_", encoder_name)


def resolve_uri(settings: IndexSettings, index_dir: str | Path) -> str:
    """``settings.milvus_uri``, else the milvus-lite file ``index_dir/milvus.db``."""
    return settings.milvus_uri or str(Path(index_dir) / "milvus.db")


class MilvusIndex:
    """One encoder's vectors in a Milvus collection; searches are thread-safe (one client).

    Open with ``MilvusIndex.open``; ``add`` upserts, ``remove`` deletes, ``search`` returns
    the best ``k`` by inner product, ``reconstruct`` the stored vectors.
    """

    def __init__(self, client: Any, collection: str, *, encoder_name: str, dim: int, uri: str) -> None:
        self._client = client
        self.collection = collection
        self.encoder_name = encoder_name
        self.dim = int(dim)
        self.uri = uri
        self.read_only = False
        #: What the service's health reports as the index kind, and its parameters.
        self.kind = IndexBackend.milvus
        self.params: dict[str, Any] = {"uri": uri, "collection": collection}

    @classmethod
    def open(
        cls,
        uri: str,
        encoder_name: str,
        *,
        dim: int | None = None,
        create: bool = False,
        settings: IndexSettings | None = None,
    ) -> MilvusIndex:
        """The collection of ``encoder_name`` at ``uri`` (a server URL or a milvus-lite ``.db`` file).

        ``create=True`` makes it when missing (``dim`` required). Raises ``IndexNotFoundError``
        when it does not exist (and ``create`` is false), ``IndexMismatchError`` when it holds
        vectors of another dimension than ``dim``, ``ImportError`` without pymilvus.
        """
        from pymilvus import DataType, MilvusClient

        settings = settings or IndexSettings()
        if "://" not in uri:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        client = MilvusClient(uri)
        name = collection_name(encoder_name)
        if not client.has_collection(name):
            if not create:
                client.close()
                raise IndexNotFoundError(
                    f"no Milvus collection {name!r} for encoder {encoder_name!r} at {uri}: "
                    "run `fittingroom ingest FEED` first"
                )
            if dim is None:
                raise ValueError("dim is required to create a Milvus collection")
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(dim))
            params = client.prepare_index_params()
            params.add_index(field_name="vector", index_type=settings.milvus_index_type, metric_type="IP")
            client.create_collection(name, schema=schema, index_params=params)
        stored = next(
            int(f["params"]["dim"])
            for f in client.describe_collection(name)["fields"]
            if f["name"] == "vector"
        )
        if dim is not None and stored != dim:
            client.close()
            raise IndexMismatchError(
                f"Milvus collection {name!r} at {uri} holds dim {stored} vectors, not dim {dim}: "
                f"{rebuild_hint(encoder_name)}",
                stored=(encoder_name, stored),
                requested=(encoder_name, dim),
            )
        client.load_collection(name)
        return cls(client, name, encoder_name=encoder_name, dim=stored, uri=uri)

    def close(self) -> None:
        self._client.close()

    def reloaded(self) -> MilvusIndex:
        """Itself: a collection is live (ingest writes into it), there is no file to re-open."""
        return self

    # ---- introspection ----------------------------------------------------------------------
    def __len__(self) -> int:
        rows = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    @property
    def count(self) -> int:
        return len(self)

    @property
    def can_reconstruct(self) -> bool:
        return True

    def ids(self) -> np.ndarray:
        """Every stored id, int64 (N,), ascending."""
        it = self._client.query_iterator(self.collection, batch_size=BATCH, filter="", output_fields=["id"])
        out: list[int] = []
        try:
            while batch := it.next():
                out.extend(int(r["id"]) for r in batch)
        finally:
            it.close()
        return np.sort(np.asarray(out, dtype=np.int64))

    def reconstruct(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """float32 (M, dim) stored vectors of ``ids``; KeyError naming a missing id."""
        wanted = [int(i) for i in as_ids(ids)]
        got: dict[int, np.ndarray] = {}
        for i in range(0, len(wanted), BATCH):
            for row in self._client.get(self.collection, ids=wanted[i : i + BATCH], output_fields=["vector"]):
                got[int(row["id"])] = np.asarray(row["vector"], np.float32)
        missing = [i for i in wanted if i not in got]
        if missing:
            raise KeyError(f"vector id {missing[0]} is not in Milvus collection {self.collection!r}")
        return np.stack([got[i] for i in wanted]) if wanted else np.zeros((0, self.dim), np.float32)

    # ---- writes -------------------------------------------------------------------------------
    def add(self, ids: Iterable[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Upsert ``vectors`` float32 (N, dim) under ``ids`` int64 (N,) (an id present is replaced)."""
        idx = as_ids(ids)
        vecs = as_vectors(vectors, self.dim)
        if len(idx) != len(vecs):
            raise ValueError(f"{len(idx)} ids but {len(vecs)} vectors")
        for i in range(0, len(idx), BATCH):
            rows = [
                {"id": int(v), "vector": vec}
                for v, vec in zip(idx[i : i + BATCH], vecs[i : i + BATCH], strict=True)
            ]
            self._client.upsert(self.collection, rows)

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        """Delete ``ids``; returns how many were there."""
        idx = [int(i) for i in as_ids(ids)]
        n = 0
        for i in range(0, len(idx), BATCH):
            chunk = idx[i : i + BATCH]
            n += len(self._client.get(self.collection, ids=chunk, output_fields=["id"]))
            self._client.delete(self.collection, ids=chunk)
        return n

    # ---- search ------------------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None, **_faiss_only: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner-product search, as ``VectorIndex.search``.

        ``queries`` float32 (Q, dim); ``allowed_ids`` int64 ids a result must have (None = no
        filter, empty = no result). Returns ``(scores float32 (Q, k), ids int64 (Q, k))`` best
        first, padded with score ``-inf`` / id ``-1``. FAISS-only keywords (``nprobe``,
        ``rerank``) are ignored. Raises ``IndexMismatchError`` for queries of another dim.
        """
        q = np.asarray(queries, np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise IndexMismatchError(
                f"query vectors of shape {q.shape} searched in Milvus collection {self.collection!r} "
                f"(dim {self.dim}): {rebuild_hint(self.encoder_name)} with the query's encoder",
                stored=(self.encoder_name, self.dim),
                requested=(self.encoder_name, int(q.shape[-1]) if q.ndim else -1),
            )
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        out = np.full((len(q), k), -1, dtype=np.int64)
        kwargs: dict[str, Any] = {}
        if allowed_ids is not None:
            allowed = np.unique(as_ids(allowed_ids))
            if len(allowed) == 0:
                return scores, out
            # a literal list: milvus-lite does not take expression templates ({ids} + filter_params)
            kwargs = {"filter": f"id in [{','.join(map(str, allowed.tolist()))}]"}
        if len(q) == 0:
            return scores, out
        limit = min(k, MAX_TOPK)
        hits = self._client.search(
            self.collection,
            data=list(q),
            limit=limit,
            anns_field="vector",
            search_params={"metric_type": "IP"},
            output_fields=[],
            **kwargs,
        )
        for row, found in enumerate(hits):
            for col, h in enumerate(found[:limit]):
                out[row, col] = int(h["id"])
                scores[row, col] = float(h["distance"])
        return scores, out


def sync_milvus(
    store: CatalogStore, encoder_name: str, index: MilvusIndex, *, batch_size: int = 8192
) -> dict[str, int]:
    """Make ``index`` hold exactly the store's embeddings of ``encoder_name``: add the missing
    vectors, delete the ones gone from the store. Returns ``{"added", "removed", "count"}``."""
    store_ids = np.fromiter(store.embedding_ids(encoder_name), dtype=np.int64)
    have = index.ids()
    missing = np.setdiff1d(store_ids, have)
    gone = np.setdiff1d(have, store_ids)
    for i in range(0, len(missing), batch_size):
        chunk: Sequence[int] = missing[i : i + batch_size].tolist()
        got = store.get_embeddings(encoder_name, chunk)
        index.add(np.asarray(list(got), np.int64), np.stack([got[v] for v in got]))
    removed = index.remove(gone) if len(gone) else 0
    return {"added": len(missing), "removed": removed, "count": len(store_ids)}
