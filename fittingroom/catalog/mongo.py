"""Production catalog store on MongoDB (pymongo).

Collections in the database named by the URI path (default ``fittingroom``):

* ``products``: one document per product: every ``Product`` field (``images`` is an
  array of sub-documents with their ``vector_id``), timestamps as BSON dates, plus the
  derived fields ``category_keys`` (contiguous category sub-paths and the garment category, see
  ``fittingroom.catalog._filters``) and ``brand_lc``. Indexes: unique ``(source, id)``,
  ``images.vector_id``, ``category_keys``, ``brand_lc``, ``price``.
* ``embeddings``: ``{encoder, vector_id, vector: BinData(float32 little-endian bytes)}``,
  unique on ``(encoder, vector_id)``, plus ``vector_id``.
* ``encoders``: ``{_id: encoder name, dim}``.
* ``jobs``: ``{_id: job id, status, created_at (ISO 8601 UTC), doc: the JobRecord as JSON}``.

Atomicity: ``upsert_products`` and ``delete_products`` run in a multi-document
transaction when the server supports them (replica set or sharded cluster). On a
standalone server the batch is prepared completely before the first write (so a bad
document fails the batch with nothing written) and then written with one ordered
bulk operation, which is not atomic against a server failure mid-batch; a re-run of the
ingest repairs that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from bson.binary import Binary
from pymongo import ASCENDING, DeleteMany, MongoClient, ReplaceOne, UpdateOne

from fittingroom.catalog._filters import brand_key, category_keys, image_vector_ids, normalize_category
from fittingroom.catalog.jobs import JobRecord
from fittingroom.catalog.models import Product
from fittingroom.catalog.store import CatalogStore, ProductFilter

T = TypeVar("T")

_DERIVED = ("_id", "category_keys", "brand_lc")


def _ms(dt: datetime) -> datetime:
    """BSON dates have millisecond precision: truncate so a round trip is exact."""
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def _to_doc(p: Product) -> dict[str, Any]:
    doc = p.model_dump(mode="json")
    doc["created_at"] = _ms(p.created_at)
    doc["updated_at"] = _ms(p.updated_at)
    doc["category_keys"] = category_keys(p)
    doc["brand_lc"] = brand_key(p.brand)
    return doc


def _from_doc(doc: dict[str, Any]) -> Product:
    return Product.model_validate({k: v for k, v in doc.items() if k not in _DERIVED})


class MongoStore(CatalogStore):
    """Catalog store in MongoDB.

    ``uri``: ``mongodb://host:27017/DBNAME`` (database default ``fittingroom``).
    ``client``: an existing ``MongoClient``-compatible object (tests pass a
    ``mongomock.MongoClient``); then ``uri`` only names the database.
    Raises ``pymongo.errors.ServerSelectionTimeoutError`` when the server cannot be reached
    within ``timeout_ms``.
    """

    def __init__(
        self,
        uri: str = "mongodb://localhost:27017/fittingroom",
        *,
        client: Any | None = None,
        database: str | None = None,
        timeout_ms: int = 5000,
    ) -> None:
        self._own_client = client is None
        self.client = client or MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms)
        name = database or self._db_name(uri)
        self.db = self.client[name]
        self.products = self.db["products"]
        self.embeddings = self.db["embeddings"]
        self.encoders = self.db["encoders"]
        self.jobs = self.db["jobs"]
        self.products.create_index([("source", ASCENDING), ("id", ASCENDING)], unique=True, name="source_id")
        self.products.create_index("images.vector_id", name="image_vector_id")
        self.products.create_index("category_keys", name="category_keys")
        self.products.create_index("brand_lc", name="brand_lc")
        self.products.create_index("price", name="price")
        self.embeddings.create_index(
            [("encoder", ASCENDING), ("vector_id", ASCENDING)], unique=True, name="encoder_vector_id"
        )
        self.embeddings.create_index("vector_id", name="vector_id")
        self.jobs.create_index("created_at", name="created_at")
        self._transactions = self._supports_transactions()

    @staticmethod
    def _db_name(uri: str) -> str:
        rest = uri.split("://", 1)[-1]
        _, _, path = rest.partition("/")
        name = path.split("?", 1)[0].strip("/")
        return name or "fittingroom"

    def _supports_transactions(self) -> bool:
        try:
            hello = self.client.admin.command("hello")
        except Exception:  # mongomock and old servers: no transactions
            return False
        return bool(hello.get("setName") or hello.get("msg") == "isdbgrid")

    def _atomic(self, fn: Callable[[Any], T]) -> T:
        if not self._transactions:
            return fn(None)
        with self.client.start_session() as session:
            return session.with_transaction(fn)

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    # ---- products -------------------------------------------------------------
    def upsert_products(self, products: Sequence[Product]) -> None:
        docs = []
        for p in products:
            image_vector_ids(p)
            docs.append(_to_doc(p))
        if not docs:
            return

        def write(session: Any) -> None:
            old_vids: dict[tuple[str, str], set[int]] = {}
            keys_or = [{"source": d["source"], "id": d["id"]} for d in docs]
            for old in self.products.find(
                {"$or": keys_or}, {"source": 1, "id": 1, "images.vector_id": 1}, session=session
            ):
                old_vids[(old["source"], old["id"])] = {i["vector_id"] for i in old.get("images", [])}
            dropped: set[int] = set()
            for d in docs:
                dropped |= old_vids.get((d["source"], d["id"]), set()) - {i["vector_id"] for i in d["images"]}
            self.products.bulk_write(
                [ReplaceOne({"source": d["source"], "id": d["id"]}, d, upsert=True) for d in docs],
                ordered=True,
                session=session,
            )
            if dropped:
                self.embeddings.delete_many({"vector_id": {"$in": sorted(dropped)}}, session=session)

        self._atomic(write)

    def get_product(self, source: str, product_id: str) -> Product | None:
        doc = self.products.find_one({"source": source, "id": product_id})
        return _from_doc(doc) if doc else None

    def get_products(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Product]:
        unique = list(dict.fromkeys((s, i) for s, i in keys))
        out: dict[tuple[str, str], Product] = {}
        for start in range(0, len(unique), 1000):
            chunk = unique[start : start + 1000]
            for doc in self.products.find({"$or": [{"source": s, "id": i} for s, i in chunk]}):
                out[(doc["source"], doc["id"])] = _from_doc(doc)
        return out

    def delete_products(self, keys: Sequence[tuple[str, str]]) -> int:
        unique = list(dict.fromkeys((s, i) for s, i in keys))
        if not unique:
            return 0

        def delete(session: Any) -> int:
            deleted = 0
            for start in range(0, len(unique), 1000):
                chunk = unique[start : start + 1000]
                query = {"$or": [{"source": s, "id": i} for s, i in chunk]}
                vids = [
                    img["vector_id"]
                    for doc in self.products.find(query, {"images.vector_id": 1}, session=session)
                    for img in doc.get("images", [])
                ]
                if vids:
                    self.embeddings.delete_many({"vector_id": {"$in": vids}}, session=session)
                deleted += self.products.delete_many(query, session=session).deleted_count
            return deleted

        return self._atomic(delete)

    def iter_products(self, source: str | None = None) -> Iterator[Product]:
        query = {} if source is None else {"source": source}
        for doc in self.products.find(query).sort([("source", ASCENDING), ("id", ASCENDING)]):
            yield _from_doc(doc)

    def product_keys(self, source: str | None = None) -> set[tuple[str, str]]:
        query = {} if source is None else {"source": source}
        return {(d["source"], d["id"]) for d in self.products.find(query, {"source": 1, "id": 1, "_id": 0})}

    def count_products(self, source: str | None = None) -> int:
        return int(self.products.count_documents({} if source is None else {"source": source}))

    def products_by_vector_ids(self, vector_ids: Sequence[int]) -> dict[int, Product]:
        wanted = list(dict.fromkeys(int(v) for v in vector_ids))
        wanted_set = set(wanted)
        out: dict[int, Product] = {}
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start : start + 1000]
            for doc in self.products.find({"images.vector_id": {"$in": chunk}}):
                product = _from_doc(doc)
                for img in product.images:
                    if img.vector_id in wanted_set:
                        out[img.vector_id] = product
        return out

    def vector_ids_matching(self, flt: ProductFilter) -> np.ndarray:
        query: dict[str, Any] = {}
        if flt.source is not None:
            query["source"] = flt.source
        if flt.brand is not None:
            query["brand_lc"] = brand_key(flt.brand)
        price: dict[str, float] = {}
        if flt.min_price is not None:
            price["$gte"] = flt.min_price
        if flt.max_price is not None:
            price["$lte"] = flt.max_price
        if price:
            query["price"] = price
        if flt.tryon_eligible is not None:
            query["tryon_eligible"] = flt.tryon_eligible
        if flt.category is not None:
            query["category_keys"] = normalize_category(flt.category)
        ids = [
            img["vector_id"]
            for doc in self.products.find(query, {"images.vector_id": 1, "_id": 0})
            for img in doc.get("images", [])
        ]
        return np.asarray(ids, dtype=np.int64)

    # ---- embeddings ------------------------------------------------------------
    def _dim(self, encoder: str) -> int | None:
        doc = self.encoders.find_one({"_id": encoder})
        return int(doc["dim"]) if doc else None

    def put_embeddings(self, encoder: str, vector_ids: Sequence[int], vectors: np.ndarray) -> None:
        vecs = np.ascontiguousarray(vectors, dtype="<f4")
        if vecs.ndim != 2 or vecs.shape[0] != len(vector_ids):
            raise ValueError(f"vectors must have shape ({len(vector_ids)}, D), got {vecs.shape}")
        if len(vector_ids) == 0:
            return
        dim = self._dim(encoder)
        if dim is None:
            self.encoders.update_one(
                {"_id": encoder}, {"$setOnInsert": {"dim": int(vecs.shape[1])}}, upsert=True
            )
            dim = self._dim(encoder)
        if dim != vecs.shape[1]:
            raise ValueError(f"encoder {encoder!r} stores {dim}-d vectors, got {vecs.shape[1]}-d")
        ops = [
            UpdateOne(
                {"encoder": encoder, "vector_id": int(v)},
                {"$set": {"vector": Binary(vecs[i].tobytes())}},
                upsert=True,
            )
            for i, v in enumerate(vector_ids)
        ]
        for start in range(0, len(ops), 1000):
            self.embeddings.bulk_write(ops[start : start + 1000], ordered=False)

    def get_embeddings(self, encoder: str, vector_ids: Sequence[int]) -> dict[int, np.ndarray]:
        ids = list(dict.fromkeys(int(v) for v in vector_ids))
        out: dict[int, np.ndarray] = {}
        for start in range(0, len(ids), 1000):
            for doc in self.embeddings.find(
                {"encoder": encoder, "vector_id": {"$in": ids[start : start + 1000]}}
            ):
                out[int(doc["vector_id"])] = np.frombuffer(bytes(doc["vector"]), dtype="<f4").astype(
                    np.float32
                )
        return out

    def embedding_ids(self, encoder: str) -> set[int]:
        return {
            int(d["vector_id"])
            for d in self.embeddings.find({"encoder": encoder}, {"vector_id": 1, "_id": 0})
        }

    def iter_embeddings(
        self, encoder: str, batch_size: int = 4096
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        dim = self._dim(encoder)
        if dim is None:
            return
        last: int | None = None
        while True:
            query: dict[str, Any] = {"encoder": encoder}
            if last is not None:
                query["vector_id"] = {"$gt": last}
            docs = list(
                self.embeddings.find(query, {"_id": 0, "vector_id": 1, "vector": 1})
                .sort("vector_id", ASCENDING)
                .limit(batch_size)
            )
            if not docs:
                return
            ids = np.fromiter((int(d["vector_id"]) for d in docs), dtype=np.int64, count=len(docs))
            vecs = np.frombuffer(b"".join(bytes(d["vector"]) for d in docs), dtype="<f4")
            yield ids, vecs.reshape(len(docs), dim).astype(np.float32)
            last = int(ids[-1])

    def delete_embeddings(self, encoder: str, vector_ids: Iterable[int]) -> None:
        ids = [int(v) for v in vector_ids]
        ops = [
            DeleteMany({"encoder": encoder, "vector_id": {"$in": ids[s : s + 1000]}})
            for s in range(0, len(ids), 1000)
        ]
        if ops:
            self.embeddings.bulk_write(ops, ordered=False)

    # ---- sources and jobs ---------------------------------------------------------
    def source_counts(self) -> dict[str, int]:
        rows = self.products.aggregate([{"$group": {"_id": "$source", "n": {"$sum": 1}}}])
        return {str(r["_id"]): int(r["n"]) for r in sorted(rows, key=lambda r: str(r["_id"]))}

    def save_job(self, job: JobRecord) -> None:
        doc = {"status": job.status.value, "created_at": job.order_key, "doc": job.model_dump_json()}
        self.jobs.replace_one({"_id": job.id}, {"_id": job.id, **doc}, upsert=True)

    def get_job(self, job_id: str) -> JobRecord | None:
        doc = self.jobs.find_one({"_id": job_id})
        return JobRecord.model_validate_json(doc["doc"]) if doc else None

    def list_jobs(self, *, limit: int = 50, statuses: Sequence[str] | None = None) -> list[JobRecord]:
        query: dict[str, Any] = {} if statuses is None else {"status": {"$in": [str(s) for s in statuses]}}
        docs = self.jobs.find(query).sort("created_at", -1).limit(int(limit))
        return [JobRecord.model_validate_json(d["doc"]) for d in docs]

    def __repr__(self) -> str:
        return f"MongoStore(db={self.db.name!r})"
