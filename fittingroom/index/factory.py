"""Which FAISS index to build for how many vectors, and how to train it.

* ``flat`` below ``IndexSettings.approx_threshold`` vectors (100k by default): exact search,
  ``IndexIDMap2(IndexFlatIP)``.
* ``ivf_sq8`` above (default ``approx_kind``): inverted file (Jegou et al., "Product
  quantization for nearest neighbor search", TPAMI 2011, for the IVF scheme) over 8-bit
  scalar-quantised vectors (``IndexIVFScalarQuantizer``), 4x less memory than float32 (1M
  vectors of the offline encoder's 2056 dims take 2.1 GB). ``ivf_flat`` keeps float32 codes.
* ``pca_ivf_sq8`` from ``IndexSettings.pca_threshold`` vectors (500k) when the vectors have more
  than ``pca_dim`` (256) dimensions: a ``PCAMatrix`` to ``pca_dim`` dims (trained on a sample
  and its mirror image ``-x``, so that it is the uncentred PCA: inner products are kept up to
  the discarded components), IVF-SQ8 on the projections (``IndexPreTransform``), and SQ8 (or
  fp16) codes of the full vectors to re-rank ``refine_factor * k`` candidates
  (``IndexRefine(base, IndexIDMap2(IndexScalarQuantizer))``, searched by ``search_ivf``). At
  1M x 2056 dims: 256 + 2056 bytes per vector instead of 2056, and the IVF scan reads 8x
  fewer bytes per code (``benchmarks/index_scaling.py --factory``).

``nlist`` is a power of two near ``lists_per_sqrt_n * sqrt(N)`` (4 sqrt(N) by default: FAISS'
guideline range is 4-16 sqrt(N); more lists mean shorter lists, so a given recall costs fewer
scanned codes, and SQ8 encodes residuals to the centroids, so more lists also mean finer codes:
at 100k near-duplicate vectors recall@10 at a full scan rose from 0.40 with 256 lists to 0.89
with 1024, ``benchmarks/search_bench.py --spread 0.07``), clamped to ``N / 39`` so that
k-means has at least the 39 points per centroid below which FAISS warns. Spherical k-means on
``train_points_per_list * nlist`` sampled vectors; an id hashtable lets vectors be
reconstructed and removed.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from fittingroom.index.settings import IndexKind, IndexSettings, RefineCodec

log = logging.getLogger(__name__)

#: FAISS warns when k-means gets fewer training points than this per centroid.
FAISS_MIN_POINTS_PER_CENTROID = 39


def faiss_module() -> Any:
    """The ``faiss`` module (imported on first use: loading it takes a while)."""
    import faiss

    return faiss


def kind_for_count(count: int, settings: IndexSettings, dim: int | None = None) -> IndexKind:
    """``flat`` below ``settings.approx_threshold`` vectors, ``settings.approx_kind`` from it, and
    ``pca_ivf_sq8`` from ``settings.pca_threshold`` vectors of more than ``settings.pca_dim``
    dimensions (``dim``; unknown = never PCA)."""
    if count < settings.approx_threshold:
        return IndexKind.flat
    if dim is not None and dim > settings.pca_dim and count >= settings.pca_threshold:
        return IndexKind.pca_ivf_sq8
    return settings.approx_kind


def max_nlist(n: int, settings: IndexSettings | None = None) -> int:
    """Most IVF lists ``n`` training vectors support: ``n // min_points_per_list`` (at least 1)."""
    per_list = settings.min_points_per_list if settings is not None else FAISS_MIN_POINTS_PER_CENTROID
    return max(1, n // per_list)


def default_nlist(n: int, settings: IndexSettings | None = None) -> int:
    """Number of IVF lists for ``n`` vectors.

    A power of two near ``lists_per_sqrt_n * sqrt(n)`` in [16, 65536] (``settings.nlist`` when
    set), clamped to ``max_nlist(n)``: never more lists than k-means can train.
    """
    settings = settings or IndexSettings()
    if settings.nlist is not None:
        wanted = settings.nlist
    else:
        target = max(16.0, settings.lists_per_sqrt_n * math.sqrt(max(n, 1)))
        wanted = int(min(65536, 2 ** round(math.log2(target))))
    return max(1, min(wanted, max_nlist(n, settings)))


def training_size(count: int, nlist: int, settings: IndexSettings) -> int:
    """Vectors sampled to train k-means: ``train_points_per_list * nlist`` (>= 1000), at most ``count``."""
    return min(count, max(nlist * settings.train_points_per_list, 1000))


def factory_string(kind: IndexKind, nlist: int | None = None, settings: IndexSettings | None = None) -> str:
    """The FAISS ``index_factory`` description of an index kind (for reports)."""
    if kind is IndexKind.flat:
        return "IDMap2,Flat"
    if kind is IndexKind.pca_ivf_sq8:
        settings = settings or IndexSettings()
        refine = "" if settings.refine is RefineCodec.none else f",Refine({settings.refine.value.upper()})"
        return f"PCA{settings.pca_dim},IVF{nlist},SQ8{refine}"
    return f"IVF{nlist},{'SQ8' if kind is IndexKind.ivf_sq8 else 'Flat'}"


def new_flat(dim: int) -> Any:
    """An empty exact inner-product index with 64-bit ids."""
    faiss = faiss_module()
    return faiss.IndexIDMap2(faiss.IndexFlatIP(int(dim)))


def new_ivf(kind: IndexKind, dim: int, nlist: int, settings: IndexSettings) -> Any:
    """An untrained inner-product IVF index (``ivf_sq8``, ``ivf_flat``, or ``pca_ivf_sq8``: see
    ``new_pca_ivf``) with an id hashtable."""
    faiss = faiss_module()
    if kind is IndexKind.pca_ivf_sq8:
        return new_pca_ivf(dim, nlist, settings)
    quantizer = faiss.IndexFlatIP(dim)
    if kind is IndexKind.ivf_sq8:
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
    elif kind is IndexKind.ivf_flat:
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        raise ValueError(f"{kind} is not an IVF kind")
    index.own_fields = True
    quantizer.this.disown()
    # id -> list entry hashtable: reconstruct(ids) for query expansion (SQ8-decoded vectors)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.cp.niter = settings.kmeans_iterations
    index.cp.spherical = True
    index.cp.seed = settings.seed
    index.cp.max_points_per_centroid = settings.train_points_per_list
    return index


def new_pca_ivf(dim: int, nlist: int, settings: IndexSettings) -> Any:
    """An untrained ``pca_ivf_sq8`` index of ``dim``-dimensional vectors.

    ``IndexRefine(IndexPreTransform(PCAMatrix(dim, pca_dim), IVF-SQ8), IndexIDMap2(SQ8 or fp16
    codes of the full vectors))``, or the ``IndexPreTransform`` alone when ``settings.refine``
    is ``none``. Both hold the vector ids (add, remove and search through ``add_with_ids``,
    ``remove_ids`` and ``search_ivf`` of this module, not the index's own methods).
    """
    faiss = faiss_module()
    if dim <= settings.pca_dim:
        raise ValueError(f"pca_ivf_sq8 needs vectors wider than pca_dim={settings.pca_dim}, got {dim}")
    ivf = new_ivf(IndexKind.ivf_sq8, settings.pca_dim, nlist, settings)
    if settings.refine is not RefineCodec.none:
        ivf.set_direct_map_type(faiss.DirectMap.NoMap)  # the refine codes reconstruct
    pca = faiss.PCAMatrix(dim, settings.pca_dim)
    base = faiss.IndexPreTransform(pca, ivf)
    base.own_fields = True
    ivf.this.disown()
    pca.this.disown()
    if settings.refine is RefineCodec.none:
        return base
    qtype = (
        faiss.ScalarQuantizer.QT_8bit if settings.refine is RefineCodec.sq8 else faiss.ScalarQuantizer.QT_fp16
    )
    codes = faiss.IndexScalarQuantizer(dim, qtype, faiss.METRIC_INNER_PRODUCT)
    refine = faiss.IndexIDMap2(codes)
    refine.own_fields = True
    codes.this.disown()
    index = faiss.IndexRefine(base, refine)
    index.own_fields = True
    index.k_factor = float(settings.refine_factor)
    base.this.disown()
    refine.this.disown()
    return index


def _parts(index: Any) -> tuple[Any, Any | None]:
    """``(searched index, refine codes or None)`` of any index this module builds."""
    faiss = faiss_module()
    if isinstance(index, faiss.IndexRefine):
        return faiss.downcast_index(index.base_index), faiss.downcast_index(index.refine_index)
    return index, None


def _train_pca(pre: Any, x: np.ndarray, settings: IndexSettings) -> None:
    """Train the PCA of an ``IndexPreTransform`` on ``x`` and ``-x`` (zero mean: uncentred PCA)."""
    faiss = faiss_module()
    pca = faiss.downcast_VectorTransform(pre.chain.at(0))
    m = min(len(x), settings.pca_train_points)
    sample = np.ascontiguousarray(np.concatenate([x[:m], -x[:m]]), dtype=np.float32)
    pca.train(sample)


def add_with_ids(index: Any, x: np.ndarray, ids: np.ndarray) -> None:
    """Add float32 ``x`` (N, dim) under int64 ``ids`` (N,) to any index of this module."""
    base, refine = _parts(index)
    base.add_with_ids(x, ids)
    if refine is not None:
        refine.add_with_ids(x, ids)
        index.ntotal = base.ntotal


def remove_ids(index: Any, ids: np.ndarray) -> int:
    """Remove int64 ``ids`` from an IVF index of this module; returns how many were removed."""
    faiss = faiss_module()
    base, refine = _parts(index)
    n = int(base.remove_ids(faiss.IDSelectorArray(ids)))
    if refine is not None:
        refine.remove_ids(faiss.IDSelectorBatch(ids))
        index.ntotal = base.ntotal
    return n


def search_ivf(index: Any, q: np.ndarray, k: int, sel: Any, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` inner-product search of an IVF index of this module.

    ``q`` float32 (Q, dim); ``sel`` a FAISS ``IDSelector`` of allowed ids (or ``None``), applied
    inside the IVF scan; ``nprobe`` lists probed. With refine codes (``pca_ivf_sq8``) the IVF
    returns ``k_factor * k`` candidates, re-scored by inner product with their decoded full
    vectors. Returns ``(scores float32 (Q, k), ids int64 (Q, k))``, best first, id ``-1`` past
    the last result.
    """
    faiss = faiss_module()
    base, refine = _parts(index)
    params = faiss.SearchParametersIVF(sel=sel, nprobe=int(nprobe))
    if refine is None:
        d, i = base.search(q, k, params=params)
        return d, i
    kk = min(int(base.ntotal), max(k, int(math.ceil(k * index.k_factor))))
    _, cand = base.search(q, kk, params=params)
    scores = np.full((len(q), k), -np.inf, dtype=np.float32)
    out = np.full((len(q), k), -1, dtype=np.int64)
    valid = cand >= 0
    unique = np.unique(cand[valid])
    if len(unique) == 0:
        return scores, out
    full = refine.reconstruct_batch(unique)
    exact = np.full(cand.shape, -np.inf, dtype=np.float32)
    rows = np.nonzero(valid)
    exact[rows] = np.einsum("ij,ij->i", full[np.searchsorted(unique, cand[rows])], q[rows[0]])
    top = np.argsort(-exact, axis=1, kind="stable")[:, :k]
    scores[:, : top.shape[1]] = np.take_along_axis(exact, top, axis=1)
    out[:, : top.shape[1]] = np.where(
        np.isfinite(scores[:, : top.shape[1]]), np.take_along_axis(cand, top, axis=1), -1
    )
    return scores, out


def train(index: Any, x: np.ndarray, settings: IndexSettings) -> None:
    """Train an IVF index on float32 ``x`` (N, dim); k-means on the GPU when faiss-gpu has one
    (not for ``pca_ivf_sq8``: its PCA, then k-means on the projections, train on the CPU)."""
    faiss = faiss_module()
    base, refine = _parts(index)
    if isinstance(base, faiss.IndexPreTransform):
        _train_pca(base, x, settings)
        base.train(x)
        if refine is not None:
            refine.train(x)
            index.is_trained = True
        return
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


def kind_of(index: Any) -> IndexKind:
    """The ``IndexKind`` of a loaded FAISS index; ValueError for other index types."""
    faiss = faiss_module()
    if isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap):
        return IndexKind.flat
    if isinstance(index, faiss.IndexRefine | faiss.IndexPreTransform):
        return IndexKind.pca_ivf_sq8
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    if isinstance(ivf, faiss.IndexIVFScalarQuantizer):
        return IndexKind.ivf_sq8
    if isinstance(ivf, faiss.IndexIVFFlat):
        return IndexKind.ivf_flat
    raise ValueError(f"unsupported FAISS index type {type(index).__name__}")
