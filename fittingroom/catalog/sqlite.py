"""Embedded catalog store on SQLite (the single-machine default; no server needed).

Layout (schema version 1, ``PRAGMA user_version``):

* ``products``: one row per product, the full document as JSON plus the columns the
  filters need (``brand_lc``, ``price``, ``garment_category``, ``tryon_eligible``) and
  ``vids``, the image vector ids as one little-endian int64 blob (a filter then reads
  one row per product, not one per image); unique on ``(source, id)``.
* ``images``: ``vector_id -> product`` (the FAISS id of every product image).
* ``product_categories``: every contiguous sub-path of the category path and the
  garment category (see ``fittingroom.catalog._filters``), for the category filter.
* ``embeddings``: ``(encoder, vector_id) -> float32 blob``; ``encoders`` keeps each
  encoder's dimension.
* ``jobs``: catalog jobs (``fittingroom.catalog.jobs.JobRecord`` as JSON), by id.

The database runs in WAL mode, so one writer (ingest) and many readers (the
retrieval service, possibly in other processes) work at the same time. Each thread
gets its own connection. Every public write is one transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fittingroom.catalog._filters import brand_key, category_keys, image_vector_ids, normalize_category
from fittingroom.catalog.jobs import JobRecord
from fittingroom.catalog.models import TRYON_CATEGORIES, Product
from fittingroom.catalog.store import CatalogStore, ProductFilter, SourceStats

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    pk INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    brand_lc TEXT,
    price REAL,
    garment_category TEXT,
    tryon_eligible INTEGER,
    vids BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (source, id)
);
CREATE INDEX IF NOT EXISTS products_brand ON products (brand_lc);
CREATE INDEX IF NOT EXISTS products_price ON products (price);
CREATE TABLE IF NOT EXISTS images (
    vector_id INTEGER PRIMARY KEY,
    product_pk INTEGER NOT NULL REFERENCES products (pk) ON DELETE CASCADE,
    sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_product ON images (product_pk);
CREATE TABLE IF NOT EXISTS product_categories (
    key TEXT NOT NULL,
    product_pk INTEGER NOT NULL REFERENCES products (pk) ON DELETE CASCADE,
    PRIMARY KEY (key, product_pk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS product_categories_product ON product_categories (product_pk);
CREATE TABLE IF NOT EXISTS encoders (
    name TEXT PRIMARY KEY,
    dim INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    encoder TEXT NOT NULL,
    vector_id INTEGER NOT NULL,
    vector BLOB NOT NULL,
    UNIQUE (encoder, vector_id)
);
CREATE INDEX IF NOT EXISTS embeddings_vector_id ON embeddings (vector_id);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
"""

# Bound parameters per statement; SQLite >= 3.32 allows 32766.
_CHUNK = 500


def _chunks(seq: Sequence, n: int = _CHUNK) -> Iterator[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _by_source(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Group (source, id) keys by source, dropping duplicates (queries then use the unique index)."""
    out: dict[str, dict[str, None]] = {}
    for source, pid in keys:
        out.setdefault(source, {})[pid] = None
    return {s: list(ids) for s, ids in out.items()}


class SQLiteStore(CatalogStore):
    """Catalog store in one SQLite file.

    ``path``: database file (created with its folder unless ``read_only``).
    ``read_only=True`` opens an existing database for queries only (raises
    FileNotFoundError when it does not exist); writes then raise ``sqlite3.OperationalError``.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.read_only = read_only
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        if read_only:
            if not self.path.exists():
                raise FileNotFoundError(
                    f"catalog database {self.path} does not exist (run `fittingroom ingest` first)"
                )
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._conn()
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} has schema version {version}, "
                    f"this fittingroom knows {SCHEMA_VERSION}: upgrade fittingroom"
                )
            conn.executescript(
                "BEGIN IMMEDIATE;" + _SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};COMMIT;"
            )

    # ---- connections -------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.read_only:
                conn = sqlite3.connect(
                    f"file:{self.path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
                )
            else:
                conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA mmap_size=268435456")
            conn.execute("PRAGMA cache_size=-65536")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error)."""
        conn = self._conn()
        if conn.in_transaction:  # nested use inside our own transaction
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                if not self.read_only:
                    with contextlib.suppress(sqlite3.Error):  # refresh planner statistics (cheap)
                        conn.execute("PRAGMA optimize")
                conn.close()
            self._connections.clear()
            self._closed = True

    # ---- products -------------------------------------------------------------
    def upsert_products(self, products: Sequence[Product]) -> None:
        # Serialise everything first: a bad document fails the batch before any write.
        rows = []
        for p in products:
            vids = image_vector_ids(p)
            rows.append(
                (
                    p,
                    p.model_dump_json(),
                    brand_key(p.brand),
                    p.price,
                    p.garment_category.value if p.garment_category else None,
                    None if p.tryon_eligible is None else int(p.tryon_eligible),
                    np.asarray(vids, dtype="<i8").tobytes(),
                    p.updated_at.isoformat(),
                    [(img.vector_id, img.sha256) for img in p.images],
                    category_keys(p),
                )
            )
        with self._tx() as c:
            for p, doc, brand, price, garment, eligible, vid_blob, updated, images, keys in rows:
                pk = c.execute(
                    "INSERT INTO products (source, id, doc, brand_lc, price, garment_category,"
                    " tryon_eligible, vids, updated_at) VALUES (?,?,?,?,?,?,?,?,?)"
                    " ON CONFLICT (source, id) DO UPDATE SET"
                    " doc=excluded.doc, brand_lc=excluded.brand_lc, price=excluded.price,"
                    " garment_category=excluded.garment_category, tryon_eligible=excluded.tryon_eligible,"
                    " vids=excluded.vids, updated_at=excluded.updated_at RETURNING pk",
                    (p.source, p.id, doc, brand, price, garment, eligible, vid_blob, updated),
                ).fetchone()[0]
                old = {r[0] for r in c.execute("SELECT vector_id FROM images WHERE product_pk=?", (pk,))}
                dropped = old - {vid for vid, _ in images}
                for chunk in _chunks(sorted(dropped)):
                    c.execute(f"DELETE FROM embeddings WHERE vector_id IN ({_marks(len(chunk))})", chunk)
                c.execute("DELETE FROM images WHERE product_pk=?", (pk,))
                c.executemany(
                    "INSERT INTO images (vector_id, product_pk, sha256) VALUES (?,?,?)",
                    [(vid, pk, sha) for vid, sha in images],
                )
                c.execute("DELETE FROM product_categories WHERE product_pk=?", (pk,))
                c.executemany(
                    "INSERT INTO product_categories (key, product_pk) VALUES (?,?)", [(k, pk) for k in keys]
                )

    def get_product(self, source: str, product_id: str) -> Product | None:
        row = (
            self._conn()
            .execute("SELECT doc FROM products WHERE source=? AND id=?", (source, product_id))
            .fetchone()
        )
        return Product.model_validate_json(row[0]) if row else None

    def get_products(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Product]:
        out: dict[tuple[str, str], Product] = {}
        conn = self._conn()
        for source, ids in _by_source(keys).items():
            for chunk in _chunks(ids):
                for pid, doc in conn.execute(
                    f"SELECT id, doc FROM products WHERE source=? AND id IN ({_marks(len(chunk))})",
                    [source, *chunk],
                ):
                    out[(source, pid)] = Product.model_validate_json(doc)
        return out

    def delete_products(self, keys: Sequence[tuple[str, str]]) -> int:
        deleted = 0
        chunks = [(source, chunk) for source, ids in _by_source(keys).items() for chunk in _chunks(ids)]
        with self._tx() as c:
            for source, chunk in chunks:
                pks = [
                    r[0]
                    for r in c.execute(
                        f"SELECT pk FROM products WHERE source=? AND id IN ({_marks(len(chunk))})",
                        [source, *chunk],
                    )
                ]
                if not pks:
                    continue
                m = _marks(len(pks))
                c.execute(
                    "DELETE FROM embeddings WHERE vector_id IN"
                    f" (SELECT vector_id FROM images WHERE product_pk IN ({m}))",
                    pks,
                )
                deleted += c.execute(f"DELETE FROM products WHERE pk IN ({m})", pks).rowcount
        return deleted

    def iter_products(self, source: str | None = None) -> Iterator[Product]:
        # Keyset pagination: no cursor stays open between yields, so callers may write meanwhile.
        last = 0
        where = "pk > ?" + (" AND source = ?" if source is not None else "")
        while True:
            params: list[object] = [last] + ([source] if source is not None else [])
            rows = (
                self._conn()
                .execute(f"SELECT pk, doc FROM products WHERE {where} ORDER BY pk LIMIT 1000", params)
                .fetchall()
            )
            if not rows:
                return
            for _pk, doc in rows:
                yield Product.model_validate_json(doc)
            last = rows[-1][0]

    def product_keys(self, source: str | None = None) -> set[tuple[str, str]]:
        if source is None:
            cur = self._conn().execute("SELECT source, id FROM products")
        else:
            cur = self._conn().execute("SELECT source, id FROM products WHERE source=?", (source,))
        return {(s, i) for s, i in cur}

    def count_products(self, source: str | None = None) -> int:
        if source is None:
            return int(self._conn().execute("SELECT COUNT(*) FROM products").fetchone()[0])
        return int(
            self._conn().execute("SELECT COUNT(*) FROM products WHERE source=?", (source,)).fetchone()[0]
        )

    def products_by_vector_ids(self, vector_ids: Sequence[int]) -> dict[int, Product]:
        out: dict[int, Product] = {}
        parsed: dict[int, Product] = {}
        conn = self._conn()
        ids = list(dict.fromkeys(int(v) for v in vector_ids))
        for chunk in _chunks(ids):
            for vid, pk, doc in conn.execute(
                "SELECT i.vector_id, p.pk, p.doc FROM images i JOIN products p ON p.pk = i.product_pk"
                f" WHERE i.vector_id IN ({_marks(len(chunk))})",
                chunk,
            ):
                product = parsed.get(pk)
                if product is None:
                    product = parsed[pk] = Product.model_validate_json(doc)
                out[vid] = product
        return out

    def vector_ids_matching(self, flt: ProductFilter) -> np.ndarray:
        clauses: dict[str, object] = {
            "p.source = ?": flt.source,
            "p.brand_lc = ?": brand_key(flt.brand),
            "p.price >= ?": flt.min_price,
            "p.price <= ?": flt.max_price,
            "p.tryon_eligible = ?": None if flt.tryon_eligible is None else int(flt.tryon_eligible),
        }
        sql = "SELECT p.vids FROM products p"
        if flt.category is not None:
            if flt.brand is None and flt.min_price is None and flt.max_price is None:
                # the category is the selective part: drive the query from its index
                sql = "SELECT p.vids FROM product_categories pc JOIN products p ON p.pk = pc.product_pk"
                clauses = {"pc.key = ?": normalize_category(flt.category), **clauses}
            else:
                # brand/price indexes drive; the category is checked per candidate
                exists = (
                    "EXISTS (SELECT 1 FROM product_categories pc WHERE pc.key = ? AND pc.product_pk = p.pk)"
                )
                clauses[exists] = normalize_category(flt.category)
        where = [clause for clause, value in clauses.items() if value is not None]
        params = [value for value in clauses.values() if value is not None]
        if where:
            sql += " WHERE " + " AND ".join(where)
        blob = b"".join(r[0] for r in self._conn().execute(sql, params))
        return np.frombuffer(blob, dtype="<i8").astype(np.int64)

    # ---- embeddings ------------------------------------------------------------
    def _dim(self, conn: sqlite3.Connection, encoder: str) -> int | None:
        row = conn.execute("SELECT dim FROM encoders WHERE name=?", (encoder,)).fetchone()
        return int(row[0]) if row else None

    def put_embeddings(self, encoder: str, vector_ids: Sequence[int], vectors: np.ndarray) -> None:
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(vector_ids):
            raise ValueError(f"vectors must have shape ({len(vector_ids)}, D), got {vecs.shape}")
        if len(vector_ids) == 0:
            return
        with self._tx() as c:
            dim = self._dim(c, encoder)
            if dim is None:
                c.execute("INSERT INTO encoders (name, dim) VALUES (?,?)", (encoder, vecs.shape[1]))
            elif dim != vecs.shape[1]:
                raise ValueError(f"encoder {encoder!r} stores {dim}-d vectors, got {vecs.shape[1]}-d")
            c.executemany(
                "INSERT INTO embeddings (encoder, vector_id, vector) VALUES (?,?,?)"
                " ON CONFLICT (encoder, vector_id) DO UPDATE SET vector=excluded.vector",
                [(encoder, int(v), vecs[i].tobytes()) for i, v in enumerate(vector_ids)],
            )

    def get_embeddings(self, encoder: str, vector_ids: Sequence[int]) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        ids = list(dict.fromkeys(int(v) for v in vector_ids))
        conn = self._conn()
        for chunk in _chunks(ids):
            for vid, blob in conn.execute(
                "SELECT vector_id, vector FROM embeddings"
                f" WHERE encoder=? AND vector_id IN ({_marks(len(chunk))})",
                [encoder, *chunk],
            ):
                out[vid] = np.frombuffer(blob, dtype=np.float32).copy()
        return out

    def embedding_ids(self, encoder: str) -> set[int]:
        return {
            r[0] for r in self._conn().execute("SELECT vector_id FROM embeddings WHERE encoder=?", (encoder,))
        }

    def iter_embeddings(
        self, encoder: str, batch_size: int = 4096
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        conn = self._conn()
        dim = self._dim(conn, encoder)
        if dim is None:
            return
        last = -(2**63)
        while True:
            rows = conn.execute(
                "SELECT vector_id, vector FROM embeddings WHERE encoder=? AND vector_id > ?"
                " ORDER BY vector_id LIMIT ?",
                (encoder, last, batch_size),
            ).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = (
                np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim).copy()
            )
            yield ids, vecs
            last = int(ids[-1])

    def delete_embeddings(self, encoder: str, vector_ids: Iterable[int]) -> None:
        ids = [int(v) for v in vector_ids]
        with self._tx() as c:
            for chunk in _chunks(ids):
                c.execute(
                    f"DELETE FROM embeddings WHERE encoder=? AND vector_id IN ({_marks(len(chunk))})",
                    [encoder, *chunk],
                )

    # ---- sources and jobs ---------------------------------------------------------
    def source_counts(self) -> dict[str, int]:
        rows = self._conn().execute("SELECT source, COUNT(*) FROM products GROUP BY source ORDER BY source")
        return {s: int(n) for s, n in rows}

    def source_stats(self, source: str | None = None) -> dict[str, SourceStats]:
        # One aggregate pass; the try-on rule (models.tryon_image without unclassified_ok) in SQL:
        # an image is usable when the classifier marks it eligible (product-only), or it is an
        # on-model photo of a try-on category (the product's, else the classifier's), or, for an
        # unclassified image, its stored tryon_mode says so. The contract tests compare with the rule.
        cats = ",".join(f"'{c.value}'" for c in sorted(TRYON_CATEGORIES))
        usable = (
            "EXISTS (SELECT 1 FROM json_each(p.doc, '$.images') j WHERE"
            " json_extract(j.value, '$.tryon_eligible') = 1"
            " OR (json_extract(j.value, '$.photo_type') = 'on_model' AND coalesce(p.garment_category,"
            f" json_extract(j.value, '$.garment_category_pred')) IN ({cats}))"
            " OR (json_extract(j.value, '$.tryon_eligible') IS NULL AND json_extract(j.value, '$.photo_type')"
            " IS NULL AND json_extract(j.value, '$.tryon_mode') IN ('product_only', 'on_model')))"
        )
        sql = (
            "SELECT p.source, COUNT(*), SUM(length(p.vids) / 8),"
            f" SUM(length(p.vids) > 0 AND {usable}),"
            " SUM(coalesce(json_extract(p.doc, '$.link'), '') = ''), SUM(length(p.vids) = 0)"
            " FROM products p"
            + (" WHERE p.source = ?" if source is not None else "")
            + " GROUP BY p.source ORDER BY p.source"
        )
        rows = self._conn().execute(sql, [] if source is None else [source])
        return {
            s: SourceStats(s, int(n), int(i or 0), int(t or 0), int(nl or 0), int(ni or 0))
            for s, n, i, t, nl, ni in rows
        }

    def save_job(self, job: JobRecord) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO jobs (id, status, created_at, doc) VALUES (?,?,?,?) ON CONFLICT (id) DO UPDATE"
                " SET status=excluded.status, created_at=excluded.created_at, doc=excluded.doc",
                (job.id, job.status.value, job.order_key, job.model_dump_json()),
            )

    def get_job(self, job_id: str) -> JobRecord | None:
        row = self._conn().execute("SELECT doc FROM jobs WHERE id=?", (job_id,)).fetchone()
        return JobRecord.model_validate_json(row[0]) if row else None

    def list_jobs(self, *, limit: int = 50, statuses: Sequence[str] | None = None) -> list[JobRecord]:
        sql, params = "SELECT doc FROM jobs", []
        if statuses is not None:
            sql += f" WHERE status IN ({_marks(len(statuses))})" if statuses else " WHERE 0"
            params = [str(s) for s in statuses]
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        rows = self._conn().execute(sql, [*params, int(limit)])
        return [JobRecord.model_validate_json(r[0]) for r in rows]

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, read_only={self.read_only})"
