"""``VectorIndex``: a FAISS inner-product index of image embeddings keyed by 63-bit vector ids.

FAISS ids are the ``vector_id`` of each (product, image) pair
(``fittingroom.catalog.models.vector_id_for``). Scores are inner products of float32 vectors
(the encoders' relevance score; cosine similarity for unit vectors); higher is better.
Index kinds and their settings: ``fittingroom.index.factory``; the choice of ``nprobe``:
``fittingroom.index.tuning``; files on disk: ``fittingroom.index.storage``.

Filters are applied *inside* FAISS with an ``IDSelectorBatch`` in the search parameters, so
a filtered query still returns ``k`` results when ``k`` allowed vectors exist (an IVF search
that comes back short is repeated with every list probed). ``pca_ivf_sq8`` indexes search,
add and remove through ``factory.search_ivf`` / ``add_with_ids`` / ``remove_ids`` (PCA
projection, IVF-SQ8 scan with the selector, re-rank with the refine codes).

``VectorIndex.open(..., read_only=True)`` memory-maps the index where FAISS supports it (flat
indexes); ``open(..., dim=encoder.dim)`` checks that the stored index belongs to that encoder
(``IndexMismatchError`` otherwise). faiss-gpu, when installed, serves unfiltered searches and
trains k-means.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fittingroom.caching import BoundedLRU, count_lru
from fittingroom.index import factory, storage
from fittingroom.index.factory import faiss_module
from fittingroom.index.settings import (
    IndexKind,
    IndexMismatchError,
    IndexNotFoundError,
    IndexSettings,
    ReadOnlyIndexError,
    rebuild_hint,
)
from fittingroom.index.tuning import (
    QUERY_GROUP,
    RECALL_K,
    as_ids,
    as_vectors,
    choose_nprobe,
    drop_self,
    exact_knn,
    filtered_nprobe,
    recall_at_k,
    tuning_queries,
    with_query_vectors,
)

if TYPE_CHECKING:
    from fittingroom.catalog.store import CatalogStore

log = logging.getLogger(__name__)


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
        self._selectors: BoundedLRU[tuple[int, str], Any] = count_lru(8)  # FAISS ID selectors by filter
        self._gpu_index: Any = None
        self._gpu_failed = False
        self._source: tuple[Path, Path] | None = None
        self._source_stamp: tuple[int, int, int] | None = None

    # ---- construction ---------------------------------------------------
    @classmethod
    def create(cls, encoder_name: str, dim: int, *, settings: IndexSettings | None = None) -> VectorIndex:
        """An empty exact (``flat``) index."""
        return cls(
            factory.new_flat(dim),
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
        ``settings.approx_threshold`` vectors and ``settings.approx_kind`` above; the IVF
        settings (nlist, training size) come from ``fittingroom.index.factory``.
        ``progress(n)`` is called with the number of vectors added after each batch.
        ``query_vectors`` (Q, dim): real query vectors of the encoder (e.g. texts), an extra
        tuning group. The chosen nprobe is then multiplied by ``nprobe_safety_factor``.
        """
        settings = settings or IndexSettings()
        kind = IndexKind(kind) if kind is not None else factory.kind_for_count(count, settings, dim)
        if kind is IndexKind.flat:
            vi = cls.create(encoder_name, dim, settings=settings)
            for ids, vecs in batches():
                vi.add(ids, vecs)
                if progress:
                    progress(len(ids))
            return vi

        faiss = faiss_module()
        nlist = factory.default_nlist(count, settings)
        index = factory.new_ivf(kind, dim, nlist, settings)
        n_train = factory.training_size(count, nlist, settings)
        n_tune = min(settings.tune_queries, max(count // 2, 1))
        n_fit = max(n_train, settings.pca_train_points if kind is IndexKind.pca_ivf_sq8 else 0)
        train_ids, train_x = sample(max(n_fit, n_tune))
        train_x = as_vectors(train_x, dim)
        t0 = time.perf_counter()
        factory.train(index, train_x[:n_fit], settings)
        log.info("trained %s nlist=%d on %d vectors in %.1fs", kind, nlist, n_train, time.perf_counter() - t0)

        queries, self_ids, groups = with_query_vectors(
            tuning_queries(as_ids(train_ids), train_x, n_tune, np.random.default_rng(settings.seed)),
            query_vectors,
            dim,
        )
        faiss_h = faiss.ResultHeap(len(queries), RECALL_K + 1, keep_max=True)
        added = 0
        for ids, vecs in batches():
            ids = as_ids(ids)
            vecs = as_vectors(vecs, dim)
            if not len(ids):
                continue
            factory.add_with_ids(index, vecs, ids)
            kk = min(RECALL_K + 1, len(ids))
            d, i = faiss.knn(queries, vecs, kk, metric=faiss.METRIC_INNER_PRODUCT)
            faiss_h.add_result(d, np.where(i >= 0, ids[np.maximum(i, 0)], -1))
            added += len(ids)
            if progress:
                progress(len(ids))
        faiss_h.finalize()
        exact = drop_self(faiss_h.I, self_ids, RECALL_K)
        vi = cls(
            index,
            encoder_name=encoder_name,
            dim=dim,
            kind=kind,
            params={
                "nlist": nlist,
                "factory": factory.factory_string(kind, nlist, settings),
                "trained_count": added,
                "train_points": n_train,
            }
            | (
                {"pca_dim": settings.pca_dim, "pca_train_points": min(n_fit, settings.pca_train_points)}
                if kind is IndexKind.pca_ivf_sq8
                else {}
            ),
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
        dim: int | None = None,
    ) -> VectorIndex:
        """Load the index of ``encoder_name`` from ``index_dir``.

        ``read_only=True`` memory-maps the file when FAISS can, and makes every write raise
        ``ReadOnlyIndexError``. ``dim``: the embedding dimension of the caller's encoder
        (``encoder.dim``), checked against the stored index. Raises ``IndexNotFoundError`` (a
        FileNotFoundError) when no index was built yet, and ``IndexMismatchError`` (a subclass
        of it) when the stored index was built for another encoder name (manifest) or another
        dimension than ``dim``; its message names both and the rebuild command.
        """
        faiss = faiss_module()
        faiss_path, manifest_path = storage.index_paths(index_dir, encoder_name)
        if not faiss_path.exists():
            raise IndexNotFoundError(
                f"no vector index for encoder {encoder_name!r} in {Path(index_dir)} "
                f"(expected {faiss_path.name}): run `fittingroom ingest FEED` first"
            )
        stamp = storage.file_stamp(faiss_path)
        index = storage.read_faiss_index(faiss_path, read_only=read_only)
        manifest = storage.read_manifest(manifest_path)
        storage.check_compatible(
            manifest, int(index.d), encoder_name=encoder_name, dim=dim, faiss_path=faiss_path
        )
        kind = factory.kind_of(index)
        params: dict[str, Any] = dict(manifest.get("params") or {})
        stale = manifest.get("kind") != kind.value or int(manifest.get("count", -1)) != index.ntotal
        if stale:
            # Crash between the two renames of a save: the .faiss file is authoritative.
            log.warning(
                "index manifest %s does not match %s; using the index file", manifest_path, faiss_path
            )
            if manifest.get("kind") != kind.value:
                params = {}
        if kind.approximate:
            ivf = faiss.extract_index_ivf(index)
            params["nlist"] = int(ivf.nlist)
            if stale:  # the file stores the nprobe it was saved with
                params["nprobe"] = int(ivf.nprobe)
            params.setdefault("nprobe", int(ivf.nprobe))
        vi = cls(
            index,
            encoder_name=encoder_name,
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
        faiss = faiss_module()
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
        faiss = faiss_module()
        if self.kind is IndexKind.flat or isinstance(self._index, faiss.IndexRefine):
            return True
        ivf = faiss.extract_index_ivf(self._index)
        return int(ivf.direct_map.type) != 0

    def reconstruct(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Stored vectors of ``ids``, float32 (N, dim): exact for ``flat``, decoded (8-bit
        approximations) for ``ivf_sq8``. Raises KeyError naming an id that is not in the index,
        RuntimeError when the index cannot reconstruct (IVF without a direct map)."""
        ids_arr = as_ids(ids)
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
        faiss = faiss_module()
        return {
            "format": storage.MANIFEST_FORMAT,
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
        ids_arr = as_ids(ids)
        x = as_vectors(vectors, self.dim)
        if len(ids_arr) != len(x):
            raise ValueError(f"{len(ids_arr)} ids for {len(x)} vectors")
        if len(ids_arr) == 0:
            return
        if self.kind.approximate and not self._index.is_trained:
            raise RuntimeError("approximate index is not trained")
        if self.kind is IndexKind.flat:
            self._index.add_with_ids(x, ids_arr)
        else:
            factory.add_with_ids(self._index, x, ids_arr)
        self._changed(len(ids_arr))

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        """Remove vectors by id; returns how many were removed (unknown ids are ignored)."""
        self._check_writable()
        ids_arr = as_ids(ids)
        if len(ids_arr) == 0:
            return 0
        if self.kind is IndexKind.flat:
            n = int(self._index.remove_ids(faiss_module().IDSelectorBatch(ids_arr)))
        else:  # IVF with a hashtable direct map only removes through an IDSelectorArray
            n = factory.remove_ids(self._index, ids_arr)
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
        faiss = faiss_module()
        faiss_path, manifest_path = storage.index_paths(index_dir, self.encoder_name)
        storage.atomic_write(faiss_path, lambda tmp: faiss.write_index(self._index, str(tmp)))
        manifest = self.manifest()
        storage.write_manifest(manifest_path, manifest)
        storage.note_saved()
        return faiss_path, manifest_path

    # ---- reload (read-only services) ---------------------------------------------
    def changed_on_disk(self) -> bool:
        """True when the file this index was opened from has been replaced since."""
        if self._source is None:
            return False
        try:
            return storage.file_stamp(self._source[0]) != self._source_stamp
        except FileNotFoundError:
            return False

    def reloaded(self) -> VectorIndex:
        """A freshly opened copy when the file changed on disk, else ``self``."""
        if self._source is None or not self.changed_on_disk():
            return self
        return VectorIndex.open(
            self._source[0].parent,
            self.encoder_name,
            read_only=self.read_only,
            settings=self.settings,
            dim=self.dim,
        )

    # ---- search -------------------------------------------------------------------
    def _selector(self, allowed: np.ndarray) -> Any:
        key = (len(allowed), hashlib.blake2b(allowed.tobytes(), digest_size=16).hexdigest())
        sel = self._selectors.get(key)
        if sel is None:
            sel = self._selectors.setdefault(key, faiss_module().IDSelectorBatch(allowed))
        return sel

    def _gpu(self) -> Any:  # pragma: no cover - no GPU in CI
        if self._gpu_index is not None or self._gpu_failed or not self.settings.use_gpu:
            return self._gpu_index
        faiss = faiss_module()
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

    def _query_vectors(self, queries: np.ndarray) -> np.ndarray:
        q = np.asarray(queries, dtype=np.float32)
        qdim = int(q.shape[-1]) if q.ndim in (1, 2) else -1
        if qdim != self.dim:
            raise IndexMismatchError(
                f"query vectors of dim {qdim} (shape {q.shape}) searched in the index of encoder "
                f"{self.encoder_name!r}, which holds dim {self.dim} vectors: the query encoder is not the "
                f"one that built the index; {rebuild_hint(self.encoder_name)} with the query's encoder",
                stored=(self.encoder_name, self.dim),
                requested=(self.encoder_name, qdim),
            )
        return as_vectors(q, self.dim)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        *,
        nprobe: int | None = None,
        rerank: Callable[[np.ndarray], np.ndarray] | None = None,
        rerank_factor: int = 4,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner-product search.

        ``queries``: float32 (Q, dim), L2-normalised. ``allowed_ids``: int64 vector ids a result
        must belong to (``None`` = no filter; empty = no result). Returns ``(scores float32 (Q, k),
        ids int64 (Q, k))`` best first; when fewer than ``k`` results exist the tail holds id
        ``-1`` and score ``-inf``. ``nprobe`` overrides the tuned value of an IVF index.
        Raises ``IndexMismatchError`` (a ValueError) when the queries' dimension is not the
        index's (a query encoder other than the one that built the index).

        ``rerank`` (approximate indexes only): ``rerank(ids int64 (M,)) -> float32 (M, dim)``, the
        full-precision vectors of candidate ids (e.g. from the catalog store); the index then
        fetches ``rerank_factor * k`` candidates (filters still applied inside FAISS) and returns
        the ``k`` best by exact inner product, which lifts the recall cap of 8-bit codes.
        """
        q = self._query_vectors(queries)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if rerank is not None and self.kind.approximate:
            return self._reranked(q, k, allowed_ids, nprobe, rerank, max(1, rerank_factor))
        faiss = faiss_module()
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
            allowed = as_ids(allowed_ids)
            if len(allowed) > 1 and not bool(np.all(allowed[1:] > allowed[:-1])):
                allowed = np.unique(allowed)  # sorting skipped when already sorted and unique
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
            # A filter keeping a share s of the vectors probes base / sqrt(s) lists (not base / s: the
            # selector check of every scanned vector dominated the filtered latency); a probe that
            # comes back short is retried with every list below, so pages stay full.
            probe = min(ivf.nlist, filtered_nprobe(base, selectivity))
            gpu_ok = sel is None and nprobe is None and self.kind is not IndexKind.pca_ivf_sq8
            g = self._gpu() if gpu_ok else None
            if g is not None:  # pragma: no cover - GPU only
                d, i = g.search(q, kk)
            else:
                d, i = factory.search_ivf(self._index, q, kk, sel, probe)
            # A probe that missed allowed vectors comes back short: retry those with every list.
            short = np.flatnonzero((i >= 0).sum(axis=1) < expected)
            if len(short) and probe < ivf.nlist:
                d2, i2 = factory.search_ivf(self._index, q[short], kk, sel, int(ivf.nlist))
                d[short], i[short] = d2, i2
        valid = i >= 0
        scores[:, :kk] = np.where(valid, d, -np.inf)
        out[:, :kk] = i
        return scores, out

    def _reranked(
        self,
        q: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None,
        nprobe: int | None,
        rerank: Callable[[np.ndarray], np.ndarray],
        factor: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        _, cand = self.search(q, k * factor, allowed_ids, nprobe=nprobe)
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        out = np.full((len(q), k), -1, dtype=np.int64)
        unique = np.unique(cand[cand >= 0])
        if len(unique) == 0:
            return scores, out
        full = np.asarray(rerank(unique), dtype=np.float32)
        if full.shape != (len(unique), self.dim):
            raise ValueError(f"rerank returned shape {full.shape}, expected ({len(unique)}, {self.dim})")
        for r in range(len(q)):
            row = cand[r][cand[r] >= 0]
            exact = full[np.searchsorted(unique, row)] @ q[r]
            top = np.argsort(-exact, kind="stable")[:k]
            scores[r, : len(top)] = exact[top]
            out[r, : len(top)] = row[top]
        return scores, out

    # ---- tuning -------------------------------------------------------------------
    def _tune(self, queries: np.ndarray, exact: np.ndarray, self_ids: np.ndarray, groups: np.ndarray) -> None:
        """Pick nprobe on the held-out queries (worst group's recall@10) with
        ``tuning.choose_nprobe``; records the recall and latency curves in ``params``."""
        faiss = faiss_module()
        ivf = faiss.extract_index_ivf(self._index)
        results: dict[int, float] = {}
        ms_per_query: dict[int, float] = {}

        def recall(nprobe: int) -> float:
            if nprobe not in results:
                t0 = time.perf_counter()
                _, i = factory.search_ivf(self._index, queries, RECALL_K + 1, None, nprobe)
                ms_per_query[nprobe] = (time.perf_counter() - t0) * 1000 / max(1, len(queries))
                approx = drop_self(i, self_ids, RECALL_K)
                results[nprobe] = min(
                    recall_at_k(approx[groups == g], exact[groups == g]) for g in np.unique(groups)
                )
            return results[nprobe]

        choice = choose_nprobe(recall, int(ivf.nlist), self.settings)
        if choice.reached_target:
            log.info("IVF nlist=%d: nprobe %d (%s)", ivf.nlist, choice.nprobe, choice.note)
        else:
            log.warning("IVF nlist=%d: nprobe %d, %s", ivf.nlist, choice.nprobe, choice.note)
        real = bool((groups >= QUERY_GROUP).any())
        ivf.nprobe = int(choice.nprobe)
        self.params.update(
            {
                "nprobe": int(choice.nprobe),
                "nprobe_tuned": int(choice.tuned),
                "recall_at_10": round(float(choice.recall), 4),
                "recall_target": self.settings.recall_target,
                "target_reached": choice.reached_target,
                "tune_note": choice.note,
                "tune_queries": len(queries),
                "tuned_count": len(self),
                "recall_by_nprobe": {str(k): round(v, 4) for k, v in sorted(results.items())},
                "batch_ms_per_query_by_nprobe": {
                    str(k): round(v, 3) for k, v in sorted(ms_per_query.items())
                },
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
        queries, self_ids, groups = with_query_vectors(
            tuning_queries(
                as_ids(ids), as_vectors(x, self.dim), n, np.random.default_rng(self.settings.seed + 1)
            ),
            query_vectors,
            self.dim,
        )
        _, exact = exact_knn(queries, batches(), RECALL_K + 1)
        self._tune(queries, drop_self(exact, self_ids, RECALL_K), self_ids, groups)
