"""Search latency p50/p95 (text, image, text+image) and recall@10 at 10k and 1M indexed vectors.

Approximate indexes are measured twice: with the tuned settings (``fittingroom.index.factory``
nlist ~ 4 sqrt(N) clamped to N / 39, ``tuning.choose_nprobe``) and with the previous ones
(nlist ~ sqrt(N), and nprobe = nlist - a full scan - when the recall target was out of reach);
``--no-previous`` skips the second.

For each size the script builds, in a temporary folder, a SQLite catalog of synthetic
products (``--images-per-product`` images each) and the ``fittingroom.index.VectorIndex``
that ``sync_index`` would build for that many vectors (exact ``flat`` below
``FITTINGROOM_INDEX_APPROX_THRESHOLD``, tuned IVF-SQ8 above), then times the full
``Searcher`` path for single queries: query embedding (the real encoder, when it loads),
FAISS search, grouping per product and fetching the product documents from SQLite.

Index vectors are synthetic (a Gaussian mixture on the unit sphere at the encoder's
dimension, so IVF lists are meaningful); query vectors are synthetic too, per type:
*image* = an indexed vector plus noise (cosine ~0.8 to it), *text* = a cluster direction
plus noise (near a group, no single item), *text+image* = their normalised mean.
recall@10 compares the index with exact inner-product search for those queries.
With the encoder available, each timed query also embeds a real input of that type
(a Luma image / a text / both) with ``encoder.query_vectors``; the "encode" column is that
time, "search" includes the encoder's second pass when it asks for one (the offline
encoder's query expansion of image queries: one more FAISS search plus reconstructing 50
neighbour vectors), "total" = encode + search. Without an encoder, "encode" says n/a and
total = search only.

Usage::

    python benchmarks/search_bench.py [--sizes 10000,1000000] [--queries 100] [--encoder offline|none]
    python benchmarks/search_bench.py --sizes 10000,100000 --encoder none --dim 2056  # no model
    python benchmarks/search_bench.py --quick   # 2k (flat) and 30k vectors (PCA + IVF from 10k), 10 queries
    # realistic corpus + real query vectors, from a store holding the Luma catalog's embeddings:
    fittingroom eval retrieval --workdir /tmp/luma-eval
    python benchmarks/search_bench.py --prototypes sqlite:////tmp/luma-eval/catalog.db
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from _common import make_parser, parse
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from fittingroom.index import IndexSettings, VectorIndex

CHUNK = 50_000


class SyntheticCorpus:
    """``n`` clustered vectors of dimension ``dim``, generated chunk by chunk (never all in memory).

    Without ``prototypes``: unit vectors around ``n / 500`` random centres, isotropic noise of
    norm ``spread`` (small = near-duplicates). With
    ``prototypes`` (real document vectors, (M, dim)): each vector is a real one plus 0.3 of
    another real one plus noise (cosine ~0.9 to the first), at the prototypes' scale, so the
    corpus keeps the geometry of real embeddings (their common component, the encoder's
    parts) and real query vectors can be searched in it.
    """

    def __init__(
        self,
        n: int,
        dim: int,
        seed: int = 0,
        prototypes: np.ndarray | None = None,
        spread: float = 0.9,
    ) -> None:
        self.n, self.dim, self.seed = n, dim, seed
        self.prototypes = prototypes
        self.spread = spread
        self.clusters = max(64, n // 500)
        rng = np.random.default_rng(seed)
        self.centres = rng.standard_normal((self.clusters, dim)).astype(np.float32)
        self.centres /= np.linalg.norm(self.centres, axis=1, keepdims=True)

    def chunk(self, i: int) -> np.ndarray:
        start = i * CHUNK
        m = min(CHUNK, self.n - start)
        rng = np.random.default_rng((self.seed, i))
        noise = rng.standard_normal((m, self.dim)).astype(np.float32) / math.sqrt(self.dim)
        if self.prototypes is not None:
            p = self.prototypes
            scale = float(np.linalg.norm(p, axis=1).mean())
            return (
                p[rng.integers(0, len(p), m)] + 0.3 * p[rng.integers(0, len(p), m)] + 0.45 * scale * noise
            ).astype(np.float32)
        x = self.centres[rng.integers(0, self.clusters, m)] + self.spread * noise
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        for i in range(math.ceil(self.n / CHUNK)):
            yield i * CHUNK, self.chunk(i)

    def queries(self, kind: str, n: int, seed: int = 99) -> np.ndarray:
        rng = np.random.default_rng(seed)
        base = self.chunk(0)
        img = base[rng.integers(0, len(base), n)] + (0.75 / math.sqrt(self.dim)) * rng.standard_normal(
            (n, self.dim)
        ).astype(np.float32)
        img /= np.linalg.norm(img, axis=1, keepdims=True)
        txt = self.centres[rng.integers(0, self.clusters, n)] + (
            1.2 / math.sqrt(self.dim)
        ) * rng.standard_normal((n, self.dim)).astype(np.float32)
        txt /= np.linalg.norm(txt, axis=1, keepdims=True)
        q = {"image": img, "text": txt, "text+image": img + txt}[kind]
        return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def build_store(path: Path, n_vectors: int, per_product: int) -> np.ndarray:
    """SQLite catalog with n_vectors / per_product products; returns the vector ids in corpus order."""
    from fittingroom.catalog.models import ImageRecord, Product, vector_id_for
    from fittingroom.catalog.sqlite import SQLiteStore

    cats = [
        ["Men", "Tops", "Tees"],
        ["Men", "Tops", "Hoodies"],
        ["Women", "Bottoms", "Pants"],
        ["Women", "Tops"],
    ]
    ids = np.empty(n_vectors, dtype=np.int64)
    store = SQLiteStore(path)
    batch: list[Product] = []
    v = 0
    p = 0
    while v < n_vectors:
        pid = f"P{p:07d}"
        images = []
        for j in range(min(per_product, n_vectors - v)):
            sha = f"{v:064x}"
            vid = vector_id_for("bench", pid, sha)
            ids[v] = vid
            images.append(
                ImageRecord(
                    url=f"https://shop.example/{pid}/{j}.jpg",
                    sha256=sha,
                    vector_id=vid,
                    is_main=j == 0,
                    color=["Red", "Blue", "Black", "Gray"][j % 4],
                )
            )
            v += 1
        batch.append(
            Product(
                source="bench",
                id=pid,
                title=f"Product {p}",
                brand=f"brand{p % 50}",
                price=float(5 + p % 200),
                currency="USD",
                category_path=cats[p % len(cats)],
                images=images,
            )
        )
        p += 1
        if len(batch) == 2000:
            store.upsert_products(batch)
            batch = []
    if batch:
        store.upsert_products(batch)
    store.close()
    return ids


def real_inputs(encoder_name: str, n: int) -> tuple[object | None, dict[str, list[object]], str]:
    """(encoder, {type: [Query]}, note). Images come from the shared Luma catalog when present."""
    if encoder_name == "none":
        return None, {}, "encoder disabled (--encoder none): latency excludes the query embedding"
    try:
        from fittingroom.models.encoders.registry import get_encoder

        encoder = get_encoder(encoder_name)
    except Exception as exc:  # the encoder is optional for this benchmark
        return (
            None,
            {},
            f"encoder {encoder_name!r} unavailable ({type(exc).__name__}: {exc}); latency excludes embedding",
        )
    from PIL import Image

    from fittingroom.models.encoders.base import Query
    from fittingroom.settings import get_settings

    luma = get_settings().shared_data / "luma-catalog" / "images"
    paths = sorted(luma.rglob("*.jpg"))[::5][:n] if luma.is_dir() else []
    rng = np.random.default_rng(0)
    images = [Image.open(p).convert("RGB") for p in paths] or [
        Image.fromarray(rng.integers(0, 255, (800, 600, 3), dtype=np.uint8)) for _ in range(min(n, 20))
    ]
    colours = ["black", "red", "gray", "blue", "white", "orange", "green", "purple", "yellow", "pink"]
    kinds = [
        "hoodie",
        "tee",
        "jacket",
        "running shorts",
        "yoga pants",
        "tank top",
        "sweatshirt",
        "windbreaker",
    ]
    words = [f"{c} {t}" for t in kinds for c in colours]
    rng.shuffle(words)
    qs: dict[str, list[object]] = {
        "text": [Query(text=words[i % len(words)]) for i in range(n)],
        "image": [Query(image=images[i % len(images)]) for i in range(n)],
        "text+image": [Query(image=images[i % len(images)], text=words[i % len(words)]) for i in range(n)],
    }
    src = "Luma images" if paths else "random images (shared data not found)"
    return encoder, qs, f"encoder {encoder.name} (dim {encoder.dim}), real {src} and texts embedded per query"


def previous_config(n: int, base: IndexSettings) -> tuple[IndexSettings, str]:
    """The index settings before the tuner fix: nlist a power of two near sqrt(N), at most N / 8
    (the other settings those of ``base``)."""
    nlist = int(min(65536, 2 ** round(math.log2(max(16.0, math.sqrt(max(n, 1)))))))
    return base.model_copy(update={"nlist": nlist, "min_points_per_list": 8}), "previous"


def apply_previous_nprobe(index: VectorIndex) -> str:
    """Set the nprobe the previous tuner chose from the same recall curve: the tuned one when the
    target was reached, else every list (its fallback). Returns a description."""
    import faiss

    p = index.params
    nlist = int(p["nlist"])
    nprobe = int(p["nprobe"]) if p["target_reached"] else nlist
    p["nprobe"] = nprobe
    faiss.extract_index_ivf(index.faiss_index).nprobe = nprobe
    recall = p["recall_by_nprobe"].get(str(nprobe), p["recall_at_10"])
    fallback = "" if p["target_reached"] else " (target unreachable: full-scan fallback)"
    return f"nprobe {nprobe}{fallback}, tuning-sample recall@10 {recall}"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else math.nan


def build_parser() -> argparse.ArgumentParser:
    quick = {"sizes": "2000,30000", "queries": 10, "approx_threshold": 10_000, "pca_threshold": 20_000}
    ap = make_parser(__doc__, quick=quick)
    ap.add_argument("--sizes", default="10000,1000000", help="comma-separated numbers of indexed vectors")
    ap.add_argument("--queries", type=int, default=100, help="timed queries per type and size")
    ap.add_argument("--dim", type=int, default=None, help="vector dim (default: the encoder's, else 768)")
    ap.add_argument("--encoder", default="offline", help="encoder for real query embedding, or 'none'")
    ap.add_argument("--images-per-product", type=int, default=4)
    ap.add_argument("--workdir", type=Path, default=None, help="where to build (default: a temp dir)")
    ap.add_argument(
        "--prototypes",
        default=None,
        help="store URI holding real embeddings of --encoder (e.g. the Luma catalog ingested by "
        "`fittingroom eval retrieval --workdir W`: sqlite:///W/catalog.db): build the corpus around "
        "them and measure recall with real query vectors",
    )
    ap.add_argument(
        "--spread",
        type=float,
        default=0.9,
        help="noise norm around the synthetic cluster centres (0.9: spread clusters; 0.2: near-duplicates, "
        "where 8-bit codes cap recall@10 below the target like the real catalog's embeddings)",
    )
    ap.add_argument(
        "--previous",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure approximate indexes with the settings before the tuner fix",
    )
    ap.add_argument(
        "--rerank",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time tuned approximate indexes re-ranking 4k candidates with full vectors",
    )
    ap.add_argument(
        "--approx-threshold",
        type=int,
        default=None,
        help="vectors from which the index is approximate (default: FITTINGROOM_INDEX_APPROX_THRESHOLD's)",
    )
    ap.add_argument(
        "--pca-threshold",
        type=int,
        default=None,
        help="vectors from which it projects with PCA first (default: FITTINGROOM_INDEX_PCA_THRESHOLD's)",
    )
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parse(build_parser(), argv)

    import faiss

    from fittingroom.index import IndexSettings, VectorIndex, exact_knn, kind_for_count, recall_at_k
    from fittingroom.retrieval.search import Searcher
    from fittingroom.retrieval.settings import RetrievalSettings

    console = Console(width=200)
    rset = RetrievalSettings()
    build_threads = faiss.omp_get_max_threads()
    encoder, real, note = real_inputs(args.encoder, args.queries)
    dim = args.dim or (encoder.dim if encoder is not None else 768)  # type: ignore[attr-defined]
    if encoder is not None and encoder.dim != dim:  # type: ignore[attr-defined]
        console.print(
            f"[yellow]--dim {dim} differs from the encoder's {encoder.dim}: embedding time only[/yellow]"
        )  # type: ignore[attr-defined]
    prototypes = None
    tuning_queries = None
    if args.prototypes:
        if encoder is None:
            raise SystemExit("--prototypes needs the encoder that made them (--encoder)")
        from fittingroom.catalog.store import open_store
        from fittingroom.index import encoder_query_vectors

        with open_store(args.prototypes, read_only=True) as pstore:
            parts = [v for _, v in pstore.iter_embeddings(encoder.name)]  # type: ignore[attr-defined]
            # what sync_index(..., encoder=...) tunes with: texts from the catalog's products,
            # not the colour x kind texts timed below
            pids = np.fromiter(pstore.embedding_ids(encoder.name), dtype=np.int64)  # type: ignore[attr-defined]
            tuning_queries = encoder_query_vectors(pstore, encoder, pids, IndexSettings())  # type: ignore[arg-type]
        if not parts:
            raise SystemExit(f"{args.prototypes} holds no embeddings of {encoder.name}")  # type: ignore[attr-defined]
        prototypes = np.concatenate(parts).astype(np.float32)
        note += f"; corpus built around {len(prototypes)} real document vectors, real query vectors"
    overrides = {"approx_threshold": args.approx_threshold, "pca_threshold": args.pca_threshold}
    settings = IndexSettings(**{k: v for k, v in overrides.items() if v is not None})
    table = Table(title=f"Search latency, single queries, k=10, dim {dim}, {os.cpu_count()} cores")
    for col in (
        "indexed vectors",
        "index",
        "build s",
        "query",
        "encode p50 ms",
        "search p50 ms",
        "search p95 ms",
        "total p50 ms",
        "total p95 ms",
        "recall@10",
    ):
        table.add_column(col, justify="left" if col in ("index", "query") else "right")

    tmp = tempfile.TemporaryDirectory(prefix="search-bench-") if args.workdir is None else None
    work = Path(tmp.name) if tmp else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            corpus = SyntheticCorpus(n, dim, prototypes=prototypes, spread=args.spread)
            t0 = time.perf_counter()
            db = work / f"bench-{n}.db"
            db.unlink(missing_ok=True)
            ids = build_store(db, n, args.images_per_product)
            t_store = time.perf_counter() - t0
            rng = np.random.default_rng(1)

            def batches(
                corpus: SyntheticCorpus = corpus, ids: np.ndarray = ids
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
                for start, x in corpus.chunks():
                    yield ids[start : start + len(x)], x

            def sample(
                m: int,
                corpus: SyntheticCorpus = corpus,
                ids: np.ndarray = ids,
                rng: np.random.Generator = rng,
            ) -> tuple[np.ndarray, np.ndarray]:
                m = min(m, corpus.n)
                xs = np.concatenate([corpus.chunk(i) for i in range(math.ceil(m / CHUNK))])
                pick = rng.choice(len(xs), size=m, replace=False)
                return ids[pick], xs[pick]

            configs = [(settings, "tuned")]
            if args.previous and kind_for_count(n, settings).approximate:
                configs.append(previous_config(n, settings))
            for cfg, label in configs:
                rng = np.random.default_rng(1)  # the same sample for every config
                faiss.omp_set_num_threads(build_threads)
                t0 = time.perf_counter()
                index = VectorIndex.build(
                    "bench",
                    dim,
                    n,
                    batches,
                    lambda m, rng=rng: sample(m, rng=rng),
                    settings=cfg,
                    query_vectors=tuning_queries,
                )
                t_build = time.perf_counter() - t0
                rset.apply_faiss_threads()  # the service's setting for query time
                tuned = ""
                if index.kind.approximate:
                    p = index.params
                    tuned = (
                        f" ({label}: tuned {p['nprobe_tuned']} x safety factor; recall@10 on the tuning "
                        f"sample {p['recall_at_10']}: {p['tuned_with']}; {p['tune_note']}; "
                        f"recall by nprobe {p['recall_by_nprobe']})"
                    )
                    if label == "previous":
                        tuned += f"; previous tuner: {apply_previous_nprobe(index)}"
                kind = index.kind.value + (
                    f" nlist={index.params['nlist']} nprobe={index.params['nprobe']} ({label})"
                    if index.kind.approximate
                    else ""
                )
                console.print(
                    f"{n:,} vectors: store {t_store:.0f}s, index {kind} built in {t_build:.1f}s{tuned}"
                )

                from fittingroom.catalog.sqlite import SQLiteStore

                store = SQLiteStore(db, read_only=True)
                searcher = Searcher(store, index, encoder)  # type: ignore[arg-type]
                first = True
                qtypes = ("image", "text", "text+image")
                if prototypes is not None:  # the real query vectors of the real inputs
                    qvs = {t: encoder.query_vectors(real[t][: args.queries]) for t in qtypes}  # type: ignore[attr-defined]
                else:
                    qvs = {t: corpus.queries(t, args.queries) for t in qtypes}
                # exact top-10 of every query in one pass over the corpus
                _, exact_all = exact_knn(np.concatenate([qvs[t] for t in qtypes]), batches(), 10)
                for j, qtype in enumerate(qtypes):
                    qv = qvs[qtype]
                    _, got = index.search(qv, 10)
                    recall = recall_at_k(got, exact_all[j * args.queries : (j + 1) * args.queries])
                    enc_ms, search_ms, total_ms = [], [], []
                    searcher.search(vector=qv[0], k=10)  # warm-up
                    if encoder is not None:  # warm-up (first torch calls allocate and pick kernels)
                        for q in real[qtype][:3]:
                            encoder.query_vectors([q])  # type: ignore[attr-defined]
                    for i in range(args.queries):
                        t0 = time.perf_counter()
                        query = None
                        vec = qv[i]
                        if encoder is not None:
                            query = real[qtype][i]
                            v = encoder.query_vectors([query])[0]  # type: ignore[attr-defined]
                            vec = v if prototypes is not None else vec
                        t1 = time.perf_counter()
                        # with the real query the searcher also runs the encoder's second pass (expansion)
                        searcher.search(query, vector=vec, k=10)  # type: ignore[arg-type]
                        t2 = time.perf_counter()
                        enc_ms.append((t1 - t0) * 1000)
                        search_ms.append((t2 - t1) * 1000)
                        total_ms.append((t2 - t0) * 1000)
                    table.add_row(
                        f"{n:,}" if first else "",
                        kind if first else "",
                        f"{t_build:.1f}" if first else "",
                        qtype,
                        f"{pct(enc_ms, 50):.1f}" if encoder is not None else "n/a",
                        f"{pct(search_ms, 50):.2f}",
                        f"{pct(search_ms, 95):.2f}",
                        f"{pct(total_ms, 50):.1f}",
                        f"{pct(total_ms, 95):.1f}",
                        f"{recall:.3f}",
                    )
                    first = False
                if index.kind.approximate and label == "tuned" and args.rerank:
                    # FAISS search only: candidates x4 re-scored with the full vectors (held in memory
                    # here; the service would read them from the store)
                    full = np.concatenate([x for _, x in corpus.chunks()])
                    order = np.argsort(ids)

                    def lookup(
                        vids: np.ndarray,
                        full: np.ndarray = full,
                        order: np.ndarray = order,
                        ids: np.ndarray = ids,
                    ) -> np.ndarray:
                        return full[order[np.searchsorted(ids[order], vids)]]

                    for how, rr in (("plain", None), ("re-ranked x4", lookup)):
                        lat, recalls = [], []
                        for j, qtype in enumerate(qtypes):
                            qv = qvs[qtype]
                            got = np.empty((len(qv), 10), dtype=np.int64)
                            for i in range(len(qv)):
                                t1 = time.perf_counter()
                                got[i] = index.search(qv[i : i + 1], 10, rerank=rr)[1][0]
                                lat.append((time.perf_counter() - t1) * 1000)
                            truth = exact_all[j * args.queries : (j + 1) * args.queries]
                            recalls.append(recall_at_k(got, truth))
                        table.add_row(
                            "",
                            "",
                            "",
                            f"all 3, FAISS only, {how}",
                            "",
                            f"{pct(lat, 50):.2f}",
                            f"{pct(lat, 95):.2f}",
                            "",
                            "",
                            " / ".join(f"{r:.3f}" for r in recalls),
                        )
                    del full
                # one filtered row: image queries restricted to one brand (2% of products) inside FAISS
                from fittingroom.catalog.store import ProductFilter

                flt = ProductFilter(brand="brand7")
                qv = corpus.queries("image", args.queries)
                lat = []
                full = 0
                for i in range(args.queries):
                    t1 = time.perf_counter()
                    page = searcher.search(vector=qv[i], k=10, flt=flt)
                    lat.append((time.perf_counter() - t1) * 1000)
                    full += len(page.hits) == 10
                table.add_row(
                    "",
                    "",
                    "",
                    "image + brand filter (2%)",
                    "",
                    f"{pct(lat, 50):.2f}",
                    f"{pct(lat, 95):.2f}",
                    "",
                    "",
                    f"pages full: {full}/{args.queries}",
                )
                store.close()
                del index
            db.unlink(missing_ok=True)
    finally:
        if tmp:
            tmp.cleanup()
    console.print(table)
    console.print(note)
    console.print(f"index recall target {settings.recall_target} (tuned on held-out samples at build time)")
    console.print(
        f"FAISS threads: build {build_threads}, search {rset.faiss_threads or build_threads} "
        f"(RETRIEVAL_FAISS_THREADS); load avg at end {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
