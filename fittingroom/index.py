"""FAISS vector index of image embeddings, derived from (and synced with) the catalog store.

One index per encoder name, stored as ``index_dir/{encoder_name}.faiss`` plus a
JSON manifest ``index_dir/{encoder_name}.json`` (encoder name, dim, count, kind,
search parameters, measured recall, creation time). FAISS ids are the 63-bit
``vector_id`` of each (product, image) pair (``fittingroom.catalog.models.vector_id_for``).

Scores are inner products of float32 vectors (the encoders' relevance score; cosine
similarity for unit vectors); higher is better.

Index kinds (``IndexKind``):

* ``flat`` - exact search, ``IndexIDMap2(IndexFlatIP)``; used below
  ``IndexSettings.approx_threshold`` vectors (100k by default).
* ``ivf_sq8`` (default above the threshold) - inverted file (Jegou et al., "Product
  quantization for nearest neighbor search", TPAMI 2011, for the IVF scheme) over 8-bit
  scalar-quantised vectors (``IndexIVFScalarQuantizer``): 4x less memory than float32
  (1M vectors of the offline encoder's 2056 dims take 2.1 GB), ``nlist`` a power of two
  near sqrt(N), k-means on a sample, an id hashtable so vectors can be reconstructed and
  removed.
* ``ivf_flat`` - inverted file with float32 vectors (4x the memory, no quantisation loss).

The number of probed lists (``nprobe``) of an IVF index is chosen at build time on
held-out queries, against exact search: indexed vectors left out of their own results,
mid-points of pairs, noisy copies, copies restricted to a block of dimensions, plus real
query vectors when the caller has the encoder (``sync_index(..., encoder=)``). The
smallest nprobe whose worst group reaches ``recall_target`` + ``recall_margin`` on the
recall plateau is multiplied by ``nprobe_safety_factor`` (queries unlike the sample need
more lists); the recall measured at the final nprobe is stored in the manifest.

Filters are applied *inside* FAISS with an ``IDSelectorBatch`` in the search
parameters, so a filtered query still returns ``k`` results when ``k``
allowed vectors exist (an IVF search that comes back short is repeated with
every list probed).

Saves are atomic: both files are written to temporary names and moved into
place with ``os.replace``; readers that memory-mapped the previous file keep a
valid view of it. ``VectorIndex.open(..., read_only=True)`` memory-maps the
index where FAISS supports it (flat indexes). faiss-gpu, when installed, serves
unfiltered searches and trains k-means.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from fittingroom.catalog.store import CatalogStore
    from fittingroom.models.encoders.base import Encoder

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
#: k used to measure recall when tuning an approximate index.
RECALL_K = 10


class IndexKind(StrEnum):
    """Which FAISS index structure holds the vectors."""

    flat = "flat"
    ivf_flat = "ivf_flat"
    ivf_sq8 = "ivf_sq8"

    @property
    def approximate(self) -> bool:
        return self is not IndexKind.flat


class IndexSettings(BaseSettings):
    """Vector index settings (env prefix ``FITTINGROOM_INDEX_``)."""

    model_config = SettingsConfigDict(env_prefix="FITTINGROOM_INDEX_", env_file=".env", extra="ignore")

    approx_threshold: int = Field(
        default=100_000,
        ge=1,
        description="Number of vectors from which an approximate index replaces exact search.",
    )
    approx_kind: IndexKind = Field(default=IndexKind.ivf_sq8, description="Approximate index kind.")
    recall_target: float = Field(default=0.95, gt=0, le=1, description="Minimum recall@10 against exact.")
    recall_margin: float = Field(
        default=0.01, ge=0, le=0.05, description="Tune to recall_target + margin (sampling error)."
    )
    tune_queries: int = Field(default=256, ge=16, description="Held-out sample size used to tune nprobe.")
    nlist: int | None = Field(default=None, ge=1, description="IVF lists (default: power of 2 near sqrt(N)).")
    train_points_per_list: int = Field(default=40, ge=10, description="k-means training points per IVF list.")
    kmeans_iterations: int = Field(default=10, ge=1)
    retrain_growth: float = Field(
        default=4.0, gt=1, description="Rebuild an IVF index once it holds this many times its trained size."
    )
    plateau_gain: float = Field(
        default=0.01,
        ge=0,
        description="Keep doubling nprobe past the target while that adds at least this much recall@10.",
    )
    nprobe_safety_factor: float = Field(
        default=2.0,
        ge=1,
        description="Multiplier of the tuned nprobe: queries outside the tuning sample (short generic "
        "texts with the offline encoder) need more lists for the same recall "
        "(see benchmarks/search_bench.py --prototypes).",
    )
    retune_fraction: float = Field(
        default=0.2, gt=0, description="Re-tune nprobe after this fraction of the index changed."
    )
    use_gpu: bool = Field(default=True, description="Use faiss-gpu for unfiltered search when GPUs exist.")
    seed: int = 1234


class IndexNotFoundError(FileNotFoundError):
    """No index exists for this encoder in this folder (run ``fittingroom ingest``)."""


class ReadOnlyIndexError(PermissionError):
    """A write was attempted on an index opened read-only."""


def _faiss() -> Any:
    import faiss

    return faiss


def _file_stem(encoder_name: str) -> str:
    """File name stem for an encoder name; names with path-unsafe characters get a hash suffix."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_name).strip("._") or "encoder"
    if safe != encoder_name:
        safe += "-" + hashlib.blake2b(encoder_name.encode(), digest_size=4).hexdigest()
    return safe


def index_paths(index_dir: str | Path, encoder_name: str) -> tuple[Path, Path]:
    """``(faiss_file, manifest_file)`` of the index of ``encoder_name`` in ``index_dir``."""
    stem = _file_stem(encoder_name)
    d = Path(index_dir)
    return d / f"{stem}.faiss", d / f"{stem}.json"


def default_nlist(n: int) -> int:
    """Number of IVF lists for ``n`` vectors: a power of two near sqrt(n), in [16, 65536]."""
    target = max(16.0, math.sqrt(max(n, 1)))
    return int(min(65536, 2 ** round(math.log2(target))))


def _as_ids(ids: Iterable[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.int64).reshape(-1)
    return np.ascontiguousarray(arr)


def _as_vectors(x: np.ndarray, dim: int) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"expected vectors of shape (N, {dim}), got {arr.shape}")
    return np.ascontiguousarray(arr)


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, fsync it, then ``os.replace`` it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


@contextlib.contextmanager
def index_lock(index_dir: str | Path, encoder_name: str) -> Iterator[None]:
    """Exclusive inter-process lock for writers of one encoder's index (blocks until free)."""
    d = Path(index_dir)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f".{_file_stem(encoder_name)}.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def exact_knn(
    queries: np.ndarray,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-``k`` of ``queries`` over streamed ``(ids, vectors)`` batches.

    Returns ``(scores float32 (Q, k), ids int64 (Q, k))``, best first, ``-1`` ids when
    fewer than ``k`` vectors were seen. Memory is O(Q * k + batch).
    """
    faiss = _faiss()
    q = np.ascontiguousarray(queries, dtype=np.float32)
    heap = faiss.ResultHeap(q.shape[0], k, keep_max=True)
    for ids, vecs in batches:
        if len(ids) == 0:
            continue
        kk = min(k, len(ids))
        d, i = faiss.knn(
            q, np.ascontiguousarray(vecs, dtype=np.float32), kk, metric=faiss.METRIC_INNER_PRODUCT
        )
        heap.add_result(d, np.where(i >= 0, _as_ids(ids)[np.maximum(i, 0)], -1))
    heap.finalize()
    return heap.D.astype(np.float32), heap.I.astype(np.int64)


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray, k: int = RECALL_K) -> float:
    """Mean over queries of |approx top-k ∩ exact top-k| / |exact top-k| (``-1`` padding ignored)."""
    total = 0.0
    n = 0
    for a, e in zip(approx_ids, exact_ids, strict=True):
        truth = {int(x) for x in e[:k] if x >= 0}
        if not truth:
            continue
        total += len(truth & {int(x) for x in a[:k] if x >= 0}) / len(truth)
        n += 1
    return total / n if n else 1.0


@dataclass
class SyncReport:
    """What ``sync_index`` did. Counts are vectors."""

    encoder: str
    kind: IndexKind | None
    count: int
    added: int = 0
    removed: int = 0
    rebuilt: bool = False
    reason: str = ""
    saved: bool = False
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)


class VectorIndex:
    """A FAISS inner-product index over float32 vectors keyed by 63-bit vector ids.

    Build one with ``VectorIndex.create`` (empty, exact), ``VectorIndex.build``
    (from streamed batches, picks the kind by size) or ``build_from_store``;
    load one with ``VectorIndex.open``. Searches are thread-safe; writes are not
    (one writer at a time, see ``index_lock``).
    """

    def __init__(
        self,
        index: Any,
        *,
        encoder_name: str,
        dim: int,
        kind: IndexKind,
        params: dict[str, Any] | None = None,
        read_only: bool = False,
        created: str | None = None,
        settings: IndexSettings | None = None,
    ) -> None:
        self._index = index
        self.encoder_name = encoder_name
        self.dim = int(dim)
        self.kind = IndexKind(kind)
        self.params: dict[str, Any] = dict(params or {})
        self.read_only = read_only
        self.created = created or datetime.now(UTC).isoformat()
        self.settings = settings or IndexSettings()
        self._selectors: OrderedDict[tuple[int, str], Any] = OrderedDict()
        self._gpu_index: Any = None
        self._gpu_failed = False
        self._source: tuple[Path, Path] | None = None
        self._source_stamp: tuple[int, int, int] | None = None

    # ---- construction ---------------------------------------------------
    @classmethod
    def create(cls, encoder_name: str, dim: int, *, settings: IndexSettings | None = None) -> VectorIndex:
        """An empty exact (``flat``) index."""
        faiss = _faiss()
        return cls(
            faiss.IndexIDMap2(faiss.IndexFlatIP(int(dim))),
            encoder_name=encoder_name,
            dim=dim,
            kind=IndexKind.flat,
            settings=settings,
        )

    @classmethod
    def build(
        cls,
        encoder_name: str,
        dim: int,
        count: int,
        batches: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]],
        sample: Callable[[int], tuple[np.ndarray, np.ndarray]],
        *,
        kind: IndexKind | None = None,
        settings: IndexSettings | None = None,
        progress: Callable[[int], None] | None = None,
        query_vectors: np.ndarray | None = None,
    ) -> VectorIndex:
        """Build an index over ``count`` vectors.

        ``batches()`` yields ``(ids int64 (B,), vectors float32 (B, dim))`` covering every
        vector once (it is called once); ``sample(n)`` returns ``n`` random vectors of the set
        (used to train k-means and to tune ``nprobe``). ``kind`` defaults to ``flat`` below
        ``settings.approx_threshold`` vectors and ``settings.approx_kind`` above.
        ``progress(n)`` is called with the number of vectors added after each batch.
        ``query_vectors`` (Q, dim): real query vectors of the encoder (e.g. texts), an extra
        tuning group. The chosen nprobe is then multiplied by ``nprobe_safety_factor``.
        """
        settings = settings or IndexSettings()
        if kind is None:
            kind = settings.approx_kind if count >= settings.approx_threshold else IndexKind.flat
        kind = IndexKind(kind)
        if kind is IndexKind.flat:
            vi = cls.create(encoder_name, dim, settings=settings)
            for ids, vecs in batches():
                vi.add(ids, vecs)
                if progress:
                    progress(len(ids))
            return vi

        faiss = _faiss()
        nlist = settings.nlist or default_nlist(count)
        nlist = max(1, min(nlist, count // 8 if count >= 8 else 1))
        quantizer = faiss.IndexFlatIP(dim)
        if kind is IndexKind.ivf_sq8:
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
        else:
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.own_fields = True
        quantizer.this.disown()
        # id -> list entry hashtable: reconstruct(ids) for query expansion (SQ8-decoded vectors)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        index.cp.niter = settings.kmeans_iterations
        index.cp.spherical = True
        index.cp.seed = settings.seed
        index.cp.max_points_per_centroid = settings.train_points_per_list

        n_train = min(count, max(nlist * settings.train_points_per_list, 1000))
        n_tune = min(settings.tune_queries, max(count // 2, 1))
        train_ids, train_x = sample(max(n_train, n_tune))
        train_x = _as_vectors(train_x, dim)
        t0 = time.perf_counter()
        _train(index, train_x[:n_train], settings)
        log.info("trained %s nlist=%d on %d vectors in %.1fs", kind, nlist, n_train, time.perf_counter() - t0)

        queries, self_ids, groups = _with_query_vectors(
            _tuning_queries(_as_ids(train_ids), train_x, n_tune, np.random.default_rng(settings.seed)),
            query_vectors,
            dim,
        )
        faiss_h = faiss.ResultHeap(len(queries), RECALL_K + 1, keep_max=True)
        added = 0
        for ids, vecs in batches():
            ids = _as_ids(ids)
            vecs = _as_vectors(vecs, dim)
            if not len(ids):
                continue
            index.add_with_ids(vecs, ids)
            kk = min(RECALL_K + 1, len(ids))
            d, i = faiss.knn(queries, vecs, kk, metric=faiss.METRIC_INNER_PRODUCT)
            faiss_h.add_result(d, np.where(i >= 0, ids[np.maximum(i, 0)], -1))
            added += len(ids)
            if progress:
                progress(len(ids))
        faiss_h.finalize()
        exact = _drop_self(faiss_h.I, self_ids, RECALL_K)
        vi = cls(
            index,
            encoder_name=encoder_name,
            dim=dim,
            kind=kind,
            params={"nlist": nlist, "trained_count": added},
            settings=settings,
        )
        vi._tune(queries, exact, self_ids, groups)
        return vi

    @classmethod
    def build_from_store(
        cls,
        store: CatalogStore,
        encoder_name: str,
        *,
        kind: IndexKind | None = None,
        settings: IndexSettings | None = None,
        batch_size: int = 8192,
        query_vectors: np.ndarray | None = None,
    ) -> VectorIndex | None:
        """Build from every embedding of ``encoder_name`` in ``store``; ``None`` when it has none.

        ``query_vectors``: real query vectors for tuning (see ``build``)."""
        ids = np.fromiter(store.embedding_ids(encoder_name), dtype=np.int64)
        if len(ids) == 0:
            return None
        first = store.get_embeddings(encoder_name, [int(ids[0])])
        dim = int(next(iter(first.values())).shape[-1])
        rng = np.random.default_rng((settings or IndexSettings()).seed)

        def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
            chosen = np.sort(rng.choice(ids, size=min(n, len(ids)), replace=False))
            got = store.get_embeddings(encoder_name, chosen.tolist())
            keep = [int(i) for i in chosen if int(i) in got]
            return np.asarray(keep, dtype=np.int64), np.stack([got[i] for i in keep]).astype(np.float32)

        def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            yield from store.iter_embeddings(encoder_name, batch_size=batch_size)

        return cls.build(
            encoder_name,
            dim,
            len(ids),
            batches,
            sample,
            kind=kind,
            settings=settings,
            query_vectors=query_vectors,
        )

    @classmethod
    def open(
        cls,
        index_dir: str | Path,
        encoder_name: str,
        *,
        read_only: bool = True,
        settings: IndexSettings | None = None,
    ) -> VectorIndex:
        """Load the index of ``encoder_name`` from ``index_dir``.

        ``read_only=True`` memory-maps the file when FAISS can, and makes every write raise
        ``ReadOnlyIndexError``. Raises ``IndexNotFoundError`` (a FileNotFoundError) when no
        index was built yet.
        """
        faiss = _faiss()
        faiss_path, manifest_path = index_paths(index_dir, encoder_name)
        if not faiss_path.exists():
            raise IndexNotFoundError(
                f"no vector index for encoder {encoder_name!r} in {Path(index_dir)} "
                f"(expected {faiss_path.name}): run `fittingroom ingest FEED` first"
            )
        stamp = _stamp(faiss_path)
        index = None
        if read_only:
            for flags in (faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY, faiss.IO_FLAG_READ_ONLY):
                try:
                    index = faiss.read_index(str(faiss_path), flags)
                    break
                except RuntimeError as exc:  # pragma: no cover - depends on the index type / faiss build
                    log.debug("read_index with flags %d failed: %s", flags, exc)
        if index is None:
            index = faiss.read_index(str(faiss_path))
        manifest: dict[str, Any] = {}
        if manifest_path.exists():
            try:
                manifest = json.loads(manifest_path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                log.warning("ignoring unreadable index manifest %s: %s", manifest_path, exc)
        kind = _kind_of(index)
        params: dict[str, Any] = dict(manifest.get("params") or {})
        if manifest.get("kind") != kind.value or int(manifest.get("count", -1)) != index.ntotal:
            # Crash between the two renames of a save: the .faiss file is authoritative.
            log.warning(
                "index manifest %s does not match %s; using the index file", manifest_path, faiss_path
            )
            if manifest.get("kind") != kind.value:
                params = {}
        if kind.approximate:
            ivf = faiss.extract_index_ivf(index)
            params.setdefault("nlist", int(ivf.nlist))
            params.setdefault("nprobe", int(ivf.nprobe))
        vi = cls(
            index,
            encoder_name=manifest.get("encoder", encoder_name),
            dim=index.d,
            kind=kind,
            params=params,
            read_only=read_only,
            created=manifest.get("created"),
            settings=settings,
        )
        vi._source = (faiss_path, manifest_path)
        vi._source_stamp = stamp
        return vi

    # ---- introspection ------------------------------------------------------
    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def count(self) -> int:
        return len(self)

    @property
    def faiss_index(self) -> Any:
        """The underlying FAISS index (CPU)."""
        return self._index

    def ids(self) -> np.ndarray:
        """All vector ids in the index, int64 (N,), unordered."""
        faiss = _faiss()
        if self.kind is IndexKind.flat:
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        ivf = faiss.extract_index_ivf(self._index)
        inv = ivf.invlists
        parts = []
        for lst in range(ivf.nlist):
            n = inv.list_size(lst)
            if n:
                ptr = inv.get_ids(lst)
                parts.append(faiss.rev_swig_ptr(ptr, n).copy())
                inv.release_ids(lst, ptr)
        return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)

    @property
    def can_reconstruct(self) -> bool:
        """Whether ``reconstruct`` works (exact index, or IVF built with a direct map)."""
        if self.kind is IndexKind.flat:
            return True
        ivf = _faiss().extract_index_ivf(self._index)
        return int(ivf.direct_map.type) != 0

    def reconstruct(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Stored vectors of ``ids``, float32 (N, dim): exact for ``flat``, decoded (8-bit
        approximations) for ``ivf_sq8``. Raises KeyError naming an id that is not in the index,
        RuntimeError when the index cannot reconstruct (IVF without a direct map)."""
        ids_arr = _as_ids(ids)
        if len(ids_arr) == 0:
            return np.zeros((0, self.dim), np.float32)
        if not self.can_reconstruct:
            raise RuntimeError("this IVF index has no direct map: rebuild it to reconstruct vectors")
        try:
            return np.asarray(self._index.reconstruct_batch(ids_arr), dtype=np.float32).reshape(-1, self.dim)
        except RuntimeError:
            for i in ids_arr:  # find the missing one for a precise error
                try:
                    self._index.reconstruct(int(i))
                except RuntimeError:
                    raise KeyError(f"vector id {int(i)} is not in the index") from None
            raise

    def manifest(self) -> dict[str, Any]:
        faiss = _faiss()
        return {
            "format": MANIFEST_FORMAT,
            "encoder": self.encoder_name,
            "dim": self.dim,
            "count": len(self),
            "kind": self.kind.value,
            "metric": "inner_product",
            "params": self.params,
            "created": self.created,
            "updated": datetime.now(UTC).isoformat(),
            "faiss_version": faiss.__version__,
        }

    # ---- writes -------------------------------------------------------------
    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyIndexError(
                f"index of {self.encoder_name!r} was opened read-only; "
                "open it with read_only=False to modify it"
            )

    def add(self, ids: Iterable[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add float32 vectors (N, dim) under int64 ids (N,). Ids must not already be present."""
        self._check_writable()
        ids_arr = _as_ids(ids)
        x = _as_vectors(vectors, self.dim)
        if len(ids_arr) != len(x):
            raise ValueError(f"{len(ids_arr)} ids for {len(x)} vectors")
        if len(ids_arr) == 0:
            return
        if self.kind.approximate and not self._index.is_trained:
            raise RuntimeError("approximate index is not trained")
        self._index.add_with_ids(x, ids_arr)
        self._changed(len(ids_arr))

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        """Remove vectors by id; returns how many were removed (unknown ids are ignored)."""
        self._check_writable()
        ids_arr = _as_ids(ids)
        if len(ids_arr) == 0:
            return 0
        faiss = _faiss()
        # IVF with a hashtable direct map only removes through an IDSelectorArray
        sel = (
            faiss.IDSelectorBatch(ids_arr) if self.kind is IndexKind.flat else faiss.IDSelectorArray(ids_arr)
        )
        n = int(self._index.remove_ids(sel))
        self._changed(n)
        return n

    def _changed(self, n: int) -> None:
        self._gpu_index = None
        self._selectors.clear()
        if self.kind.approximate:  # persisted in the manifest: drift since the last tuning
            self.params["changed_since_tune"] = int(self.params.get("changed_since_tune", 0)) + n

    def save(self, index_dir: str | Path) -> tuple[Path, Path]:
        """Write ``{encoder}.faiss`` and ``{encoder}.json`` atomically into ``index_dir``."""
        self._check_writable()
        faiss = _faiss()
        faiss_path, manifest_path = index_paths(index_dir, self.encoder_name)
        _atomic_write(faiss_path, lambda tmp: faiss.write_index(self._index, str(tmp)))
        manifest = self.manifest()
        _atomic_write(manifest_path, lambda tmp: tmp.write_text(json.dumps(manifest, indent=2)))
        return faiss_path, manifest_path

    # ---- reload (read-only services) ---------------------------------------------
    def changed_on_disk(self) -> bool:
        """True when the file this index was opened from has been replaced since."""
        if self._source is None:
            return False
        try:
            return _stamp(self._source[0]) != self._source_stamp
        except FileNotFoundError:
            return False

    def reloaded(self) -> VectorIndex:
        """A freshly opened copy when the file changed on disk, else ``self``."""
        if self._source is None or not self.changed_on_disk():
            return self
        return VectorIndex.open(
            self._source[0].parent, self.encoder_name, read_only=self.read_only, settings=self.settings
        )

    # ---- search -------------------------------------------------------------------
    def _selector(self, allowed: np.ndarray) -> Any:
        key = (len(allowed), hashlib.blake2b(allowed.tobytes(), digest_size=16).hexdigest())
        sel = self._selectors.get(key)
        if sel is None:
            sel = _faiss().IDSelectorBatch(allowed)
            self._selectors[key] = sel
            while len(self._selectors) > 8:
                self._selectors.popitem(last=False)
        else:
            self._selectors.move_to_end(key)
        return sel

    def _gpu(self) -> Any:  # pragma: no cover - no GPU in CI
        if self._gpu_index is not None or self._gpu_failed or not self.settings.use_gpu:
            return self._gpu_index
        faiss = _faiss()
        try:
            if not hasattr(faiss, "get_num_gpus") or faiss.get_num_gpus() == 0:
                self._gpu_failed = True
                return None
            g = faiss.index_cpu_to_all_gpus(self._index)
            if self.kind.approximate:
                faiss.GpuParameterSpace().set_index_parameter(g, "nprobe", int(self.params.get("nprobe", 1)))
            self._gpu_index = g
        except Exception as exc:
            log.warning("faiss-gpu unavailable for %s, searching on CPU: %s", self.kind, exc)
            self._gpu_failed = True
        return self._gpu_index

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        *,
        nprobe: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner-product search.

        ``queries``: float32 (Q, dim), L2-normalised. ``allowed_ids``: int64 vector ids a result
        must belong to (``None`` = no filter; empty = no result). Returns ``(scores float32 (Q, k),
        ids int64 (Q, k))`` best first; when fewer than ``k`` results exist the tail holds id
        ``-1`` and score ``-inf``. ``nprobe`` overrides the tuned value of an IVF index.
        """
        faiss = _faiss()
        q = _as_vectors(queries, self.dim)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        nq = len(q)
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        out = np.full((nq, k), -1, dtype=np.int64)
        ntotal = len(self)
        if nq == 0 or ntotal == 0:
            return scores, out
        kk = min(k, ntotal)
        sel = None
        expected = kk
        if allowed_ids is not None:
            allowed = np.unique(_as_ids(allowed_ids))
            if len(allowed) == 0:
                return scores, out
            expected = min(kk, len(allowed))
            sel = self._selector(allowed)
            selectivity = min(1.0, len(allowed) / ntotal)
        else:
            selectivity = 1.0

        if self.kind is IndexKind.flat:
            if sel is None and (g := self._gpu()) is not None:  # pragma: no cover - GPU only
                d, i = g.search(q, kk)
            else:
                params = faiss.SearchParameters(sel=sel) if sel is not None else None
                d, i = self._index.search(q, kk, params=params)
        else:
            ivf = faiss.extract_index_ivf(self._index)
            base = int(nprobe or self.params.get("nprobe") or ivf.nprobe)
            probe = min(ivf.nlist, max(base, math.ceil(base / max(selectivity, 1e-9))))
            g = self._gpu() if sel is None and nprobe is None else None
            if g is not None:  # pragma: no cover - GPU only
                d, i = g.search(q, kk)
            else:
                d, i = self._index.search(q, kk, params=faiss.SearchParametersIVF(sel=sel, nprobe=probe))
            # A probe that missed allowed vectors comes back short: retry those with every list.
            short = np.flatnonzero((i >= 0).sum(axis=1) < expected)
            if len(short) and probe < ivf.nlist:
                params = faiss.SearchParametersIVF(sel=sel, nprobe=int(ivf.nlist))
                d2, i2 = self._index.search(q[short], kk, params=params)
                d[short], i[short] = d2, i2
        valid = i >= 0
        scores[:, :kk] = np.where(valid, d, -np.inf)
        out[:, :kk] = i
        return scores, out

    # ---- tuning -------------------------------------------------------------------
    def _tune(self, queries: np.ndarray, exact: np.ndarray, self_ids: np.ndarray, groups: np.ndarray) -> None:
        """Pick nprobe on the held-out queries (worst group's recall@10): the smallest value that
        reaches target + margin *and* sits on the plateau (doubling it gains < ``plateau_gain``)."""
        faiss = _faiss()
        ivf = faiss.extract_index_ivf(self._index)
        target = min(1.0, self.settings.recall_target + self.settings.recall_margin)
        candidates = sorted({min(ivf.nlist, 2**p) for p in range(0, 17)})
        results: dict[int, float] = {}

        def recall(nprobe: int) -> float:
            if nprobe not in results:
                _, i = self._index.search(
                    queries, RECALL_K + 1, params=faiss.SearchParametersIVF(nprobe=nprobe)
                )
                approx = _drop_self(i, self_ids, RECALL_K)
                results[nprobe] = min(
                    recall_at_k(approx[groups == g], exact[groups == g]) for g in np.unique(groups)
                )
            return results[nprobe]

        chosen = candidates[-1]
        for j, nprobe in enumerate(candidates):
            if recall(nprobe) < target:
                continue
            if (
                j + 1 == len(candidates)
                or recall(candidates[j + 1]) - recall(nprobe) < self.settings.plateau_gain
            ):
                chosen = nprobe
                break
        rec = recall(chosen)
        real = bool((groups >= QUERY_GROUP).any())
        tuned = chosen
        chosen = int(min(ivf.nlist, math.ceil(chosen * self.settings.nprobe_safety_factor)))
        rec = recall(chosen)
        if rec < self.settings.recall_target:
            log.warning("IVF index reaches recall@10 %.3f only, below the %.2f target", rec, target)
        ivf.nprobe = int(chosen)
        self.params.update(
            {
                "nprobe": int(chosen),
                "nprobe_tuned": int(tuned),
                "recall_at_10": round(float(rec), 4),
                "recall_target": self.settings.recall_target,
                "tune_queries": len(queries),
                "tuned_count": len(self),
                "recall_by_nprobe": {str(k): round(v, 4) for k, v in sorted(results.items())},
                "tuned_with": "held-out sample"
                + (f" + {int((groups >= QUERY_GROUP).sum())} encoder query vectors" if real else "")
                + f", nprobe x{self.settings.nprobe_safety_factor:g}",
                "changed_since_tune": 0,
            }
        )

    def retune(
        self,
        sample: Callable[[int], tuple[np.ndarray, np.ndarray]],
        batches: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]],
        query_vectors: np.ndarray | None = None,
    ) -> None:
        """Re-measure recall and re-pick nprobe of an IVF index (arguments as in ``build``)."""
        self._check_writable()
        if not self.kind.approximate:
            return
        n = min(self.settings.tune_queries, max(len(self) // 2, 1))
        ids, x = sample(n)
        queries, self_ids, groups = _with_query_vectors(
            _tuning_queries(
                _as_ids(ids), _as_vectors(x, self.dim), n, np.random.default_rng(self.settings.seed + 1)
            ),
            query_vectors,
            self.dim,
        )
        _, exact = exact_knn(queries, batches(), RECALL_K + 1)
        self._tune(queries, _drop_self(exact, self_ids, RECALL_K), self_ids, groups)


#: Tuning group number of the caller's real query vectors.
QUERY_GROUP = 10


def _with_query_vectors(
    tuning: tuple[np.ndarray, np.ndarray, np.ndarray], query_vectors: np.ndarray | None, dim: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Append real query vectors (group ``QUERY_GROUP``, no self id) to the tuning queries."""
    queries, self_ids, groups = tuning
    if query_vectors is None or len(query_vectors) == 0:
        return queries, self_ids, groups
    qv = _as_vectors(query_vectors, dim)
    return (
        np.concatenate([queries, qv]).astype(np.float32),
        np.concatenate([self_ids, np.full(len(qv), -1, np.int64)]),
        np.concatenate([groups, np.full(len(qv), QUERY_GROUP)]),
    )


def _tuning_queries(
    ids: np.ndarray, x: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out queries to tune nprobe: ``(queries (n, D), self_ids (n,), group (n,))``.

    Four groups of equal size, because real query vectors (a text, a street-photo crop)
    do not sit exactly on indexed vectors: 0 = indexed vectors left out of their own
    results (``self_ids``), 1 = normalised mid-points of random pairs, 2 = indexed vectors
    plus isotropic noise at cosine ~0.6 to the original, 3 = indexed vectors restricted to a
    random contiguous block of 15-60 % of the dimensions (encoders whose document vectors
    concatenate parts, like ``offline``, query one part at a time: a text query has no image
    part). The tuned recall is the worst group's.
    """
    faiss = _faiss()
    n = min(n, len(x))
    pick = rng.choice(len(x), size=n, replace=False)
    group = np.arange(n) % 4
    q = x[pick].astype(np.float32).copy()
    self_ids = np.where(group == 0, ids[pick], -1).astype(np.int64)
    mid = np.flatnonzero(group == 1)
    q[mid] += x[rng.choice(len(x), size=len(mid))]
    noisy = np.flatnonzero(group == 2)
    noise = rng.standard_normal((len(noisy), x.shape[1])).astype(np.float32)
    noise *= (4.0 / 3.0) / np.maximum(np.linalg.norm(noise, axis=1, keepdims=True), 1e-12)
    q[noisy] = q[noisy] / np.maximum(np.linalg.norm(q[noisy], axis=1, keepdims=True), 1e-12) + noise
    d = x.shape[1]
    for r in np.flatnonzero(group == 3):
        width = int(rng.integers(max(1, int(0.15 * d)), max(2, int(0.6 * d)) + 1))
        start = int(rng.integers(0, d - width + 1))
        block = q[r, start : start + width].copy()
        q[r] = 0.0
        q[r, start : start + width] = block if np.any(block) else 1.0
    faiss.normalize_L2(q)
    return q, self_ids, group


def _drop_self(ids: np.ndarray, self_ids: np.ndarray, k: int) -> np.ndarray:
    """Remove each query's own id from its result row and keep the first ``k``."""
    out = np.full((len(ids), k), -1, dtype=np.int64)
    for r, (row, own) in enumerate(zip(ids, self_ids, strict=True)):
        kept = row[row != own] if own >= 0 else row
        kept = kept[:k]
        out[r, : len(kept)] = kept
    return out


def _train(index: Any, x: np.ndarray, settings: IndexSettings) -> None:
    faiss = _faiss()
    if settings.use_gpu and getattr(faiss, "get_num_gpus", lambda: 0)() > 0:  # pragma: no cover - GPU only
        try:
            ivf = faiss.extract_index_ivf(index)
            clus = faiss.Clustering(index.d, ivf.nlist, ivf.cp)
            gpu_q = faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(index.d))
            clus.train(x, gpu_q)
            centroids = faiss.vector_float_to_array(clus.centroids).reshape(ivf.nlist, index.d)
            ivf.quantizer.add(centroids)
            ivf.is_trained = True
            index.train(x)  # trains the scalar quantizer; the quantizer is already trained
            return
        except Exception as exc:
            log.warning("GPU k-means failed, training on CPU: %s", exc)
    index.train(x)


def _kind_of(index: Any) -> IndexKind:
    faiss = _faiss()
    if isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap):
        return IndexKind.flat
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    if isinstance(ivf, faiss.IndexIVFScalarQuantizer):
        return IndexKind.ivf_sq8
    if isinstance(ivf, faiss.IndexIVFFlat):
        return IndexKind.ivf_flat
    raise ValueError(f"unsupported FAISS index type {type(index).__name__}")


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_mtime_ns, st.st_size)


# ---- sync ---------------------------------------------------------------------------
def sync_index(
    store: CatalogStore,
    encoder_name: str,
    index_dir: str | Path,
    *,
    settings: IndexSettings | None = None,
    force_rebuild: bool = False,
    batch_size: int = 8192,
    encoder: Encoder | None = None,
) -> SyncReport:
    """Make the saved index of ``encoder_name`` hold exactly the store's embeddings.

    Adds vectors present in the store and missing from the index, removes vectors gone
    from the store, and rebuilds when the index kind must change (the count crossed
    ``settings.approx_threshold``), when an IVF index outgrew its training
    (``retrain_growth``), when the dimension changed, or when ``force_rebuild``. An IVF index
    whose content changed by more than ``retune_fraction`` gets its nprobe re-tuned.
    Saves atomically when anything changed; takes an inter-process lock while it runs.
    A store without embeddings for this encoder leaves no index file (nothing to search).

    ``encoder`` (the one named ``encoder_name``, optional): when an IVF index is (re)tuned,
    text queries made from sampled products (``encoder_query_vectors``) join the tuning
    sample (their recall is then part of the measured ``recall_at_10``).
    """
    settings = settings or IndexSettings()
    t0 = time.perf_counter()
    with index_lock(index_dir, encoder_name):
        store_ids = np.fromiter(store.embedding_ids(encoder_name), dtype=np.int64)
        n = len(store_ids)
        want = settings.approx_kind if n >= settings.approx_threshold else IndexKind.flat
        existing: VectorIndex | None
        try:
            existing = VectorIndex.open(index_dir, encoder_name, read_only=False, settings=settings)
        except IndexNotFoundError:
            existing = None
        except Exception as exc:  # corrupt file: the store is the source of truth
            log.warning("unreadable index for %s, rebuilding: %s", encoder_name, exc)
            existing = None

        reason = ""
        if existing is None:
            reason = "no index yet"
        elif force_rebuild:
            reason = "rebuild requested"
        elif existing.kind is not want and not (
            # hysteresis: keep an approximate index until it shrinks well below the threshold
            existing.kind.approximate and n >= settings.approx_threshold // 2
        ):
            reason = f"{len(existing)} -> {n} vectors: {existing.kind} -> {want}"
        elif existing.kind.approximate and n > settings.retrain_growth * max(
            1, int(existing.params.get("trained_count", n))
        ):
            reason = f"IVF trained on {existing.params.get('trained_count')} vectors, now {n}"
        elif n and existing.dim != _store_dim(store, encoder_name, int(store_ids[0])):
            reason = f"dimension changed from {existing.dim}"

        if reason:
            if n == 0:
                if existing is None:
                    return SyncReport(
                        encoder_name,
                        None,
                        0,
                        reason="store has no embeddings",
                        seconds=time.perf_counter() - t0,
                    )
                vi = VectorIndex.create(encoder_name, existing.dim, settings=settings)
            else:
                qv = encoder_query_vectors(store, encoder, store_ids, settings) if want.approximate else None
                built = VectorIndex.build_from_store(
                    store, encoder_name, kind=want, settings=settings, batch_size=batch_size, query_vectors=qv
                )
                assert built is not None
                vi = built
            vi.save(index_dir)
            return SyncReport(
                encoder_name,
                vi.kind,
                len(vi),
                added=len(vi),
                removed=len(existing) if existing else 0,
                rebuilt=True,
                reason=reason,
                saved=True,
                seconds=time.perf_counter() - t0,
                params=vi.params,
            )

        assert existing is not None
        vi = existing
        index_ids = vi.ids()
        to_remove = np.setdiff1d(index_ids, store_ids, assume_unique=True)
        to_add = np.setdiff1d(store_ids, index_ids, assume_unique=True)
        removed = vi.remove(to_remove) if len(to_remove) else 0
        added = 0
        for start in range(0, len(to_add), batch_size):
            chunk = [int(x) for x in to_add[start : start + batch_size]]
            got = store.get_embeddings(encoder_name, chunk)
            keep = [i for i in chunk if i in got]
            if keep:
                vi.add(np.asarray(keep, dtype=np.int64), np.stack([got[i] for i in keep]))
                added += len(keep)
        changed = bool(added or removed)
        if vi.kind.approximate and int(
            vi.params.get("changed_since_tune", 0)
        ) > settings.retune_fraction * max(1, int(vi.params.get("tuned_count", len(vi)))):
            rng = np.random.default_rng(settings.seed)
            all_ids = vi.ids()

            def sample(k: int) -> tuple[np.ndarray, np.ndarray]:
                chosen = np.sort(rng.choice(all_ids, size=min(k, len(all_ids)), replace=False)).tolist()
                got = store.get_embeddings(encoder_name, chosen)
                keep = [i for i in chosen if i in got]
                return np.asarray(keep, dtype=np.int64), np.stack([got[i] for i in keep])

            vi.retune(
                sample,
                lambda: store.iter_embeddings(encoder_name, batch_size=batch_size),
                encoder_query_vectors(store, encoder, all_ids, settings),
            )
            changed = True
        if changed:
            vi.save(index_dir)
        return SyncReport(
            encoder_name,
            vi.kind,
            len(vi),
            added=added,
            removed=removed,
            saved=changed,
            reason="incremental" if changed else "up to date",
            seconds=time.perf_counter() - t0,
            params=vi.params,
        )


def encoder_query_vectors(
    store: CatalogStore, encoder: Encoder | None, vector_ids: np.ndarray, settings: IndexSettings, n: int = 96
) -> np.ndarray | None:
    """Real text-query vectors for tuning: ``encoder.query_vectors`` of short texts made from
    ``n`` sampled products (``'<colour> <last title word>'``, the leaf category, ``'<colour>
    <leaf>'``). None without an encoder or when it fails."""
    if encoder is None or len(vector_ids) == 0:
        return None
    from fittingroom.models.encoders.base import Query

    rng = np.random.default_rng(settings.seed + 2)
    chosen = rng.choice(vector_ids, size=min(n, len(vector_ids)), replace=False).tolist()
    texts: dict[str, None] = {}
    for vid, product in store.products_by_vector_ids(chosen).items():
        # short, generic queries (what users type) match many products: the hardest for IVF
        image = next((i for i in product.images if i.vector_id == vid), None)
        color = (image.color if image is not None and image.color else "").lower()
        words = product.title.split()
        noun = words[-1].lower() if words else ""
        leaf = product.category_path[-1].lower() if product.category_path else noun
        for t in (f"{color} {noun}", leaf, f"{color} {leaf}"):
            if t.strip():
                texts[" ".join(t.split())] = None
    if not texts:
        return None
    try:
        return np.asarray(
            encoder.query_vectors([Query(text=t) for t in list(texts)[: 2 * n]]), dtype=np.float32
        )
    except Exception as exc:  # tuning must not fail the sync
        log.warning("encoder %s could not embed tuning queries: %s", getattr(encoder, "name", "?"), exc)
        return None


def _store_dim(store: CatalogStore, encoder_name: str, vector_id: int) -> int:
    got = store.get_embeddings(encoder_name, [vector_id])
    return int(next(iter(got.values())).shape[-1]) if got else -1
