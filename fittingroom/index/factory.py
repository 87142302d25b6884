"""Which FAISS index to build for how many vectors, and how to train it.

* ``flat`` below ``IndexSettings.approx_threshold`` vectors (100k by default): exact search,
  ``IndexIDMap2(IndexFlatIP)``.
* ``ivf_sq8`` above (default ``approx_kind``): inverted file (Jegou et al., "Product
  quantization for nearest neighbor search", TPAMI 2011, for the IVF scheme) over 8-bit
  scalar-quantised vectors (``IndexIVFScalarQuantizer``), 4x less memory than float32 (1M
  vectors of the offline encoder's 2056 dims take 2.1 GB). ``ivf_flat`` keeps float32 codes.

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

from fittingroom.index.settings import IndexKind, IndexSettings

log = logging.getLogger(__name__)

#: FAISS warns when k-means gets fewer training points than this per centroid.
FAISS_MIN_POINTS_PER_CENTROID = 39


def faiss_module() -> Any:
    """The ``faiss`` module (imported on first use: loading it takes a while)."""
    import faiss

    return faiss


def kind_for_count(count: int, settings: IndexSettings) -> IndexKind:
    """``flat`` below ``settings.approx_threshold`` vectors, ``settings.approx_kind`` from it."""
    return settings.approx_kind if count >= settings.approx_threshold else IndexKind.flat


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


def factory_string(kind: IndexKind, nlist: int | None = None) -> str:
    """The FAISS ``index_factory`` description of an index kind (for reports)."""
    if kind is IndexKind.flat:
        return "IDMap2,Flat"
    return f"IVF{nlist},{'SQ8' if kind is IndexKind.ivf_sq8 else 'Flat'}"


def new_flat(dim: int) -> Any:
    """An empty exact inner-product index with 64-bit ids."""
    faiss = faiss_module()
    return faiss.IndexIDMap2(faiss.IndexFlatIP(int(dim)))


def new_ivf(kind: IndexKind, dim: int, nlist: int, settings: IndexSettings) -> Any:
    """An untrained inner-product IVF index (``ivf_sq8`` or ``ivf_flat``) with an id hashtable."""
    faiss = faiss_module()
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


def train(index: Any, x: np.ndarray, settings: IndexSettings) -> None:
    """Train an IVF index on float32 ``x`` (N, dim); k-means on the GPU when faiss-gpu has one."""
    faiss = faiss_module()
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
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    if isinstance(ivf, faiss.IndexIVFScalarQuantizer):
        return IndexKind.ivf_sq8
    if isinstance(ivf, faiss.IndexIVFFlat):
        return IndexKind.ivf_flat
    raise ValueError(f"unsupported FAISS index type {type(index).__name__}")
