"""Vector index past one machine: memory, recall@10 and latency of FAISS index types.

Prints one table for docs/scaling.md: for each index factory string, the bytes per
vector (measured from the serialised index, minus its fixed part: centroids,
codebooks, rotation), the memory that extrapolates to 100 M vectors (codes and
ids only; the fixed part is tens of MB even at 65k lists), recall@10 against
exact inner-product search, and single-query latency p50/p95 on this machine.

The corpus is synthetic (no 100k-image catalog exists here): a Gaussian mixture of
low intrinsic dimension embedded in ``--dim`` dimensions (see
``clustered_unit_vectors``), so that IVF partitions and neighbourhoods are meaningful
as with real embeddings; queries are indexed vectors plus noise. Recall on real
catalog embeddings should be checked with the same script's index types on them.

Usage::

    python benchmarks/index_scaling.py [--n 100000] [--dim 768] [--queries 200]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from rich.console import Console
from rich.table import Table

# (factory string, search-time parameters); IVF sizes are scaled with --n.
_SPECS = [
    ("Flat", {}),
    ("HNSW32,Flat", {"efSearch": 64}),
    ("IVF{nlist},SQ8", {"nprobe": 16}),
    ("IVF{nlist},PQ{m}", {"nprobe": 16}),
    ("OPQ{m},IVF{nlist},PQ{m}", {"nprobe": 16}),
    ("IVF{nlist},PQ{m},Refine(SQ8)", {"nprobe": 16, "k_factor_rf": 4}),
]


def clustered_unit_vectors(
    n: int, dim: int, clusters: int, rng: np.random.Generator, latent: int = 48
) -> np.ndarray:
    """float32 (n, dim), L2-normalised: a Gaussian mixture in a ``latent``-dimensional space,
    mapped linearly into ``dim`` dimensions plus a little isotropic noise.

    Real image embeddings have a low intrinsic dimension (tens, not hundreds); isotropic
    768-d noise would make every neighbour nearly equidistant and every approximate index
    look far worse than it is on real data.
    """
    centres = rng.standard_normal((clusters, latent)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    z = centres[labels] + 0.5 * rng.standard_normal((n, latent)).astype(np.float32)
    proj = rng.standard_normal((latent, dim)).astype(np.float32) / np.sqrt(latent)
    x = z @ proj + 0.05 * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def main() -> None:
    import faiss

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="indexed vectors")
    ap.add_argument("--dim", type=int, default=768, help="embedding dimension")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--pq-m", type=int, default=96, help="PQ sub-quantizers (bytes per code)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--only", action="append", default=None, help="Run only specs containing this text (repeatable)."
    )
    args = ap.parse_args()

    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    xb = clustered_unit_vectors(args.n, args.dim, clusters=max(64, args.n // 500), rng=rng)
    xq = xb[rng.choice(args.n, args.queries, replace=False)] + 0.05 * rng.standard_normal(
        (args.queries, args.dim)
    ).astype(np.float32)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    nlist = int(4 * np.sqrt(args.n))

    exact = faiss.IndexFlatIP(args.dim)
    exact.add(xb)
    _, truth = exact.search(xq, 10)

    table = Table(title=f"FAISS index types, n={args.n:,} d={args.dim} (1 thread, single queries)")
    for col in ("index", "bytes/vector", "GB per 100M vectors", "recall@10", "p50 ms", "p95 ms", "build s"):
        table.add_column(col, justify="right" if col != "index" else "left")

    specs = [(f, p) for f, p in _SPECS if not args.only or any(o in f for o in args.only)]
    for spec, params in specs:
        factory = spec.format(nlist=nlist, m=args.pq_m)
        t0 = time.perf_counter()
        index = faiss.index_factory(args.dim, factory, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            index.train(xb[: min(args.n, 50 * nlist)])
        fixed = faiss.serialize_index(index).nbytes  # centroids, codebooks, rotation
        index.add(xb)
        build = time.perf_counter() - t0
        ps = faiss.ParameterSpace()
        for key, value in params.items():
            ps.set_index_parameter(index, key, value)
        lat = []
        found = np.empty((args.queries, 10), dtype=np.int64)
        for i in range(args.queries):
            t = time.perf_counter()
            _, ids = index.search(xq[i : i + 1], 10)
            lat.append((time.perf_counter() - t) * 1000)
            found[i] = ids[0]
        recall = np.mean([len(set(found[i]) & set(truth[i])) / 10 for i in range(args.queries)])
        per_vector = (faiss.serialize_index(index).nbytes - fixed) / args.n
        table.add_row(
            f"{factory} {params or ''}",
            f"{per_vector:,.0f}",
            f"{per_vector * 1e8 / 1e9:,.1f}",
            f"{recall:.3f}",
            f"{np.percentile(lat, 50):.2f}",
            f"{np.percentile(lat, 95):.2f}",
            f"{build:.1f}",
        )
        print(f"done {factory}: recall@10 {recall:.3f}", file=sys.stderr, flush=True)
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
