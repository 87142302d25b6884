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

``--factory`` measures instead the index ``fittingroom.index.VectorIndex.build`` picks for
``--n`` vectors (``fittingroom.index.factory``), with today's settings (IVF-SQ8 on the full
vectors) and with the tuned ones (from ``pca_threshold`` vectors: PCA + IVF-SQ8 + SQ8 refine
codes), on vectors generated chunk by chunk (never more than a training sample in memory):
build time, index bytes (the serialised file), single-query p50/p95 of the vector search and
recall@10 against exact search (computed chunk-wise), without and with a 2 % id filter.

Usage::

    python benchmarks/index_scaling.py [--n 100000] [--dim 768] [--queries 200]
    python benchmarks/index_scaling.py --factory --n 1000000 --dim 2056
    python benchmarks/index_scaling.py --quick [--factory]   # 10k vectors of dim 384
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from _common import make_parser, parse
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


CHUNK = 50_000


class ChunkedClustered:
    """``clustered_unit_vectors`` of ``n`` x ``dim``, generated in chunks of ``CHUNK`` rows
    (the same chunk for the same index, so the corpus can be streamed several times)."""

    def __init__(self, n: int, dim: int, seed: int = 0, latent: int = 48, noise: float = 0.05) -> None:
        rng = np.random.default_rng(seed)
        self.n, self.dim, self.seed, self.noise = n, dim, seed, noise
        self.centres = rng.standard_normal((max(64, n // 500), latent), dtype=np.float32)
        self.proj = rng.standard_normal((latent, dim), dtype=np.float32) / np.float32(np.sqrt(latent))
        self.ids = np.arange(n, dtype=np.int64) * 7919 + 11  # sparse, like vector ids

    def chunk(self, i: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, i))
        m = min(CHUNK, self.n - i * CHUNK)
        z = self.centres[rng.integers(0, len(self.centres), m)]
        z += 0.5 * rng.standard_normal(z.shape, dtype=np.float32)
        x = z @ self.proj
        x += self.noise * rng.standard_normal(x.shape, dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(math.ceil(self.n / CHUNK)):
            yield self.ids[i * CHUNK : i * CHUNK + CHUNK], self.chunk(i)

    def sample(self, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        m = min(m, self.n)
        parts = math.ceil(m / CHUNK)
        xs = np.concatenate([self.chunk(i) for i in range(parts)])
        pick = np.sort(rng.choice(len(xs), size=m, replace=False))
        return self.ids[pick], xs[pick]

    def queries(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Indexed vectors (from the last chunk) plus noise, cosine ~0.8 to them."""
        base = self.chunk(math.ceil(self.n / CHUNK) - 1)
        q = base[rng.choice(len(base), n, replace=False)]
        q = q + (0.75 / np.sqrt(self.dim)) * rng.standard_normal(q.shape, dtype=np.float32)
        return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def factory_main(args: argparse.Namespace) -> None:
    """The ``--factory`` tables: today's settings vs tuned, without and with a 2 % filter."""
    import faiss

    from fittingroom.index import IndexSettings, VectorIndex, exact_knn, recall_at_k

    corpus = ChunkedClustered(args.n, args.dim, noise=args.noise)
    rng = np.random.default_rng(1)
    xq = corpus.queries(args.queries, rng)
    allowed = corpus.ids[np.random.default_rng(2).random(args.n) < 0.02]
    # exact ground truth, chunk-wise, unfiltered and restricted to the allowed ids
    t0 = time.perf_counter()
    _, truth = exact_knn(xq, corpus.batches(), 10)
    _, truth_f = exact_knn(
        xq, ((i[np.isin(i, allowed)], x[np.isin(i, allowed)]) for i, x in corpus.batches()), 10
    )
    print(f"exact ground truth in {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
    both = {"approx_threshold": args.approx_threshold} if args.approx_threshold else {}
    tuned = {"pca_threshold": args.pca_threshold} if args.pca_threshold else {}
    configs = [
        ("today", IndexSettings(pca_threshold=10**12, _env_file=None, **both)),  # type: ignore[call-arg]
        ("tuned", IndexSettings(_env_file=None, **both, **tuned)),  # type: ignore[call-arg]
    ]
    table = Table(
        title=f"Index the factory picks, n={args.n:,} d={args.dim} "
        f"(build {faiss.omp_get_max_threads()} threads; search 1 thread, single queries, k=10)"
    )
    cols = ("settings", "index", "build s", "index MB", "filter", "nprobe", "recall@10", "p50 ms", "p95 ms")
    for col in cols:
        table.add_column(col, justify="left" if col in ("settings", "index", "filter") else "right")
    threads = faiss.omp_get_max_threads()
    for label, settings in configs:
        faiss.omp_set_num_threads(threads)
        t0 = time.perf_counter()
        vi = VectorIndex.build(
            "bench",
            args.dim,
            args.n,
            corpus.batches,
            lambda m: corpus.sample(m, np.random.default_rng(3)),
            settings=settings,
        )
        build = time.perf_counter() - t0
        with tempfile.TemporaryDirectory(prefix="index-scaling-") as td:
            faiss_path, _ = vi.save(Path(td))
            size_mb = faiss_path.stat().st_size / 1e6
        p = vi.params
        print(
            f"{label}: {p.get('factory', vi.kind)} built in {build:.0f}s; tuner: {p.get('tune_note')}; "
            f"recall by nprobe {p.get('recall_by_nprobe')}",
            file=sys.stderr,
            flush=True,
        )
        faiss.omp_set_num_threads(1)
        first = True
        for fname, flt, gt in (("none", None, truth), ("2% of ids", allowed, truth_f)):
            vi.search(xq[:1], 10, flt)  # warm-up (selector construction is cached per filter)
            lat = []
            found = np.empty((args.queries, 10), dtype=np.int64)
            for i in range(args.queries):
                t = time.perf_counter()
                found[i] = vi.search(xq[i : i + 1], 10, flt)[1][0]
                lat.append((time.perf_counter() - t) * 1000)
            table.add_row(
                label if first else "",
                str(p.get("factory", vi.kind.value)) if first else "",
                f"{build:.0f}" if first else "",
                f"{size_mb:,.0f}" if first else "",
                fname,
                str(p.get("nprobe", "")),
                f"{recall_at_k(found, gt):.3f}",
                f"{np.percentile(lat, 50):.2f}",
                f"{np.percentile(lat, 95):.2f}",
            )
            first = False
        del vi
    Console(width=150).print(table)
    print(
        f"queries: {args.queries} indexed vectors + noise (cosine ~0.8); filter: {len(allowed):,} allowed ids"
    )


def build_parser() -> argparse.ArgumentParser:
    quick = {
        "n": 10_000,
        "dim": 384,
        "queries": 20,
        "pq_m": 16,
        "approx_threshold": 5_000,
        "pca_threshold": 5_000,
    }
    ap = make_parser(__doc__, quick=quick)
    ap.add_argument("--n", type=int, default=100_000, help="indexed vectors")
    ap.add_argument("--dim", type=int, default=768, help="embedding dimension")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--pq-m", type=int, default=96, help="PQ sub-quantizers (bytes per code)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--only", action="append", default=None, help="Run only specs containing this text (repeatable)."
    )
    ap.add_argument("--factory", action="store_true", help="measure the index VectorIndex.build picks")
    ap.add_argument("--noise", type=float, default=0.05, help="--factory: isotropic noise per dimension")
    ap.add_argument(
        "--pca-threshold", type=int, default=None, help="--factory: pca_threshold of the tuned settings"
    )
    ap.add_argument(
        "--approx-threshold",
        type=int,
        default=None,
        help="--factory: approx_threshold of both settings (default: FITTINGROOM_INDEX_APPROX_THRESHOLD's)",
    )
    return ap


def main(argv: list[str] | None = None) -> None:
    import faiss

    args = parse(build_parser(), argv)
    if args.factory:
        factory_main(args)
        return

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
