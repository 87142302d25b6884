"""Recall measurement and the choice of ``nprobe`` of an IVF index.

``nprobe`` (lists probed per query) is chosen at build time on held-out queries, against
exact search: indexed vectors left out of their own results, mid-points of pairs, noisy
copies, copies restricted to a block of dimensions, plus real query vectors when the caller
has the encoder. The recall of a candidate nprobe is the worst group's recall@10.

``choose_nprobe``: the smallest power of two whose recall reaches ``recall_target`` +
``recall_margin`` on the recall plateau (doubling it gains < ``plateau_gain``), multiplied by
``nprobe_safety_factor`` (queries unlike the sample need more lists). When no nprobe reaches
the target (8-bit quantisation caps recall@10 near 0.94 on near-duplicate data: probing more
lists cannot fix it), it takes the smallest nprobe within ``plateau_tolerance`` of the best
recall measured below a full scan, applies the safety factor below ``nlist``, and says so: an
approximate index never falls back to scanning every list.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from fittingroom.index.factory import faiss_module
from fittingroom.index.settings import IndexSettings

log = logging.getLogger(__name__)

#: k used to measure recall when tuning an approximate index.
RECALL_K = 10
#: Tuning group number of the caller's real query vectors.
QUERY_GROUP = 10


def filtered_nprobe(nprobe: int, selectivity: float) -> int:
    """Lists to probe when a filter keeps the share ``selectivity`` (0, 1] of the vectors:
    ``ceil(nprobe / sqrt(selectivity))``, at least ``nprobe`` (e.g. 16 at 2 % -> 114). Not capped at
    the index's nlist (the caller caps); queries it leaves short are retried with every list."""
    return max(int(nprobe), math.ceil(int(nprobe) / math.sqrt(max(float(selectivity), 1e-12))))


def as_ids(ids: Iterable[int] | np.ndarray) -> np.ndarray:
    """Contiguous int64 (N,) ids."""
    arr = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.int64).reshape(-1)
    return np.ascontiguousarray(arr)


def as_vectors(x: np.ndarray, dim: int) -> np.ndarray:
    """Contiguous float32 (N, dim) vectors (a 1-D vector becomes one row); ValueError on another shape."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"expected vectors of shape (N, {dim}), got {arr.shape}")
    return np.ascontiguousarray(arr)


def exact_knn(
    queries: np.ndarray,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-``k`` of ``queries`` over streamed ``(ids, vectors)`` batches.

    Returns ``(scores float32 (Q, k), ids int64 (Q, k))``, best first, ``-1`` ids when
    fewer than ``k`` vectors were seen. Memory is O(Q * k + batch).
    """
    faiss = faiss_module()
    q = np.ascontiguousarray(queries, dtype=np.float32)
    heap = faiss.ResultHeap(q.shape[0], k, keep_max=True)
    for ids, vecs in batches:
        if len(ids) == 0:
            continue
        kk = min(k, len(ids))
        d, i = faiss.knn(
            q, np.ascontiguousarray(vecs, dtype=np.float32), kk, metric=faiss.METRIC_INNER_PRODUCT
        )
        heap.add_result(d, np.where(i >= 0, as_ids(ids)[np.maximum(i, 0)], -1))
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


def with_query_vectors(
    tuning: tuple[np.ndarray, np.ndarray, np.ndarray], query_vectors: np.ndarray | None, dim: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Append real query vectors (group ``QUERY_GROUP``, no self id) to the tuning queries."""
    queries, self_ids, groups = tuning
    if query_vectors is None or len(query_vectors) == 0:
        return queries, self_ids, groups
    qv = as_vectors(query_vectors, dim)
    return (
        np.concatenate([queries, qv]).astype(np.float32),
        np.concatenate([self_ids, np.full(len(qv), -1, np.int64)]),
        np.concatenate([groups, np.full(len(qv), QUERY_GROUP)]),
    )


def tuning_queries(
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
    faiss = faiss_module()
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


def drop_self(ids: np.ndarray, self_ids: np.ndarray, k: int) -> np.ndarray:
    """Remove each query's own id from its result row and keep the first ``k``."""
    out = np.full((len(ids), k), -1, dtype=np.int64)
    for r, (row, own) in enumerate(zip(ids, self_ids, strict=True)):
        kept = row[row != own] if own >= 0 else row
        kept = kept[:k]
        out[r, : len(kept)] = kept
    return out


def nprobe_candidates(nlist: int) -> list[int]:
    """Powers of two up to ``nlist``, and ``nlist`` itself."""
    return sorted({min(nlist, 2**p) for p in range(0, 17)})


@dataclass(frozen=True)
class NprobeChoice:
    """Outcome of ``choose_nprobe``. Recalls are worst-group recall@10 on the tuning queries."""

    nprobe: int
    tuned: int
    recall: float
    reached_target: bool
    best_recall: float
    best_nprobe: int
    note: str


def choose_nprobe(recall: Callable[[int], float], nlist: int, settings: IndexSettings) -> NprobeChoice:
    """Pick the nprobe of an IVF index of ``nlist`` lists from ``recall(nprobe)`` (memoise it).

    Target reached (some nprobe has recall >= ``recall_target + recall_margin``): the smallest
    such candidate on the plateau, times ``nprobe_safety_factor`` (at most ``nlist``). Target not
    reached: the smallest candidate below ``nlist`` within ``plateau_tolerance`` of the best
    recall below ``nlist``, times the safety factor but kept below ``nlist`` (no full scan).
    """
    target = min(1.0, settings.recall_target + settings.recall_margin)
    candidates = nprobe_candidates(nlist)
    for j, nprobe in enumerate(candidates):
        r = recall(nprobe)
        if r < target:
            continue
        if j + 1 == len(candidates) or recall(candidates[j + 1]) - r < settings.plateau_gain:
            final = int(min(nlist, math.ceil(nprobe * settings.nprobe_safety_factor)))
            return NprobeChoice(
                nprobe=final,
                tuned=nprobe,
                recall=recall(final),
                reached_target=True,
                best_recall=max(r, recall(final)),
                best_nprobe=nprobe if r >= recall(final) else final,
                note=f"recall@10 {r:.3f} >= {target:.3f} at nprobe {nprobe}",
            )
    partial = [c for c in candidates if c < nlist] or candidates
    best_nprobe = max(partial, key=lambda c: (recall(c), -c))
    best = recall(best_nprobe)
    tuned = min(c for c in partial if recall(c) >= best - settings.plateau_tolerance)
    final = int(min(partial[-1], max(tuned, math.ceil(tuned * settings.nprobe_safety_factor))))
    full = recall(nlist)
    note = (
        f"recall@10 target {target:.3f} unreachable (best {best:.3f} at nprobe {best_nprobe}, "
        f"{full:.3f} scanning all {nlist} lists): smallest nprobe within {settings.plateau_tolerance:g} "
        f"of the best is {tuned}, x{settings.nprobe_safety_factor:g} -> {final}; "
        "probing more lists cannot raise it (8-bit codes): re-rank with full vectors "
        "(VectorIndex.search(rerank=)), raise nlist (finer residuals) or use ivf_flat"
    )
    return NprobeChoice(
        nprobe=final,
        tuned=tuned,
        recall=recall(final),
        reached_target=False,
        best_recall=best,
        best_nprobe=best_nprobe,
        note=note,
    )
