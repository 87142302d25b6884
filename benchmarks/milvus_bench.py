"""Milvus (milvus-lite, embedded) vs FAISS on the same vectors: search latency and top-10 agreement.

    python benchmarks/milvus_bench.py [--n 2000] [--dim 64] [--queries 20] [--json]
    python benchmarks/milvus_bench.py --quick   # 500 vectors, 5 queries

Both hold the same ``--n`` clustered unit vectors: FAISS flat (``VectorIndex``) and a Milvus
collection (``MilvusIndex``, index type ``--index-type``, default FLAT = exact) in a milvus-lite
file in a temporary folder. For each, one query at a time, without a filter and with a 2 % id
filter: p50 / p95 latency (ms), the ratio Milvus / FAISS, and the top-10 agreement with FAISS
flat. Insert time of the Milvus collection is printed too. Needs the ``milvus`` extra.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import make_parser, parse


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    centres = np.random.default_rng(1000 + dim).standard_normal((64, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, 64, n)] + 0.7 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def timed(index: object, q: np.ndarray, allowed: np.ndarray | None) -> tuple[list[float], np.ndarray]:
    times, ids = [], []
    for row in q:
        t0 = time.perf_counter()
        _, i = index.search(row[None, :], 10, allowed)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - t0) * 1000)
        ids.append(i[0])
    return times, np.stack(ids)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(r[r >= 0]) & set(s[s >= 0])) / 10 for r, s in zip(a, b, strict=True)]))


def build_parser() -> argparse.ArgumentParser:
    ap = make_parser(__doc__, quick={"n": 500, "queries": 5})
    ap.add_argument("--n", type=int, default=2_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--index-type", default="FLAT")
    ap.add_argument("--json", dest="as_json", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parse(build_parser(), argv)
    from fittingroom.index import IndexSettings, MilvusIndex, VectorIndex

    x = clustered(args.n, args.dim, 0)
    ids = np.random.default_rng(1).choice(2**62, size=args.n, replace=False).astype(np.int64)
    q = clustered(args.queries, args.dim, 7)
    allowed = np.random.default_rng(2).choice(ids, size=max(10, args.n // 50), replace=False)
    flat = VectorIndex.create("bench", args.dim)
    flat.add(ids, x)
    rows = []
    with tempfile.TemporaryDirectory(prefix="fittingroom-milvus-bench-") as tmp:
        settings = IndexSettings(milvus_index_type=args.index_type)
        milvus = MilvusIndex.open(
            str(Path(tmp) / "m.db"), "bench", dim=args.dim, create=True, settings=settings
        )
        t0 = time.perf_counter()
        milvus.add(ids, x)
        insert_s = time.perf_counter() - t0
        for label, flt in [("no filter", None), ("2% id filter", allowed)]:
            f_t, f_ids = timed(flat, q, flt)
            m_t, m_ids = timed(milvus, q, flt)
            rows.append(
                {
                    "filter": label,
                    "faiss_p50_ms": round(float(np.percentile(f_t, 50)), 3),
                    "faiss_p95_ms": round(float(np.percentile(f_t, 95)), 3),
                    "milvus_p50_ms": round(float(np.percentile(m_t, 50)), 3),
                    "milvus_p95_ms": round(float(np.percentile(m_t, 95)), 3),
                    "ratio_p50": round(float(np.percentile(m_t, 50) / np.percentile(f_t, 50)), 1),
                    "top10_agreement": round(agreement(m_ids, f_ids), 4),
                }
            )
        milvus.close()
    meta = {"n": args.n, "dim": args.dim, "queries": args.queries, "index_type": args.index_type}
    if args.as_json:
        print(json.dumps({**meta, "milvus_insert_s": round(insert_s, 2), "rows": rows}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Milvus-lite ({args.index_type}) vs FAISS flat: {args.n} vectors, dim {args.dim}, "
        f"{args.queries} queries one at a time (insert {insert_s:.1f} s)"
    )
    for col in [
        "filter",
        "FAISS p50 / p95 ms",
        "Milvus p50 / p95 ms",
        "Milvus / FAISS p50",
        "top-10 agreement",
    ]:
        table.add_column(col, justify="left" if col == "filter" else "right")
    for r in rows:
        table.add_row(
            r["filter"],
            f"{r['faiss_p50_ms']:.2f} / {r['faiss_p95_ms']:.2f}",
            f"{r['milvus_p50_ms']:.2f} / {r['milvus_p95_ms']:.2f}",
            f"{r['ratio_p50']:.1f}x",
            f"{r['top10_agreement']:.3f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
