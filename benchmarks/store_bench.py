"""Catalog store latency at catalog scale (default 100k products, 4 images each).

Fills a fresh store with synthetic products (realistic field sizes: title, 300-char
description, 3-level category path, 4 images) and prints a table of the read paths
the retrieval service uses per query: fetching 50 products by id, mapping search hits
(vector ids) to products, and evaluating filters into vector-id sets.

    python benchmarks/store_bench.py                       # SQLite, 100k products
    python benchmarks/store_bench.py --products 10000
    python benchmarks/store_bench.py --mongodb-uri mongodb://localhost:27017/bench
    python benchmarks/store_bench.py --quick               # 2000 products, 30 runs

Target (issue 2): fetching 50 products by id well under 5 ms at 100k products.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import make_parser, parse
from rich.console import Console
from rich.table import Table

from fittingroom.catalog.models import GarmentCategory, ImageRecord, Product, vector_id_for
from fittingroom.catalog.store import CatalogStore, ProductFilter

CATEGORIES = [
    (["Men", "Tops", "Tees"], GarmentCategory.top),
    (["Men", "Tops", "Jackets"], GarmentCategory.outerwear),
    (["Women", "Bottoms", "Pants"], GarmentCategory.bottom),
    (["Women", "Dresses", "Maxi"], GarmentCategory.one_piece),
    (["Gear", "Bags"], GarmentCategory.bag_accessory),
]
BRANDS = [f"Brand {i}" for i in range(200)]
COLORS = ["Black", "Gray", "Blue", "Red", "Green", "White"]


def make_product(i: int, n_images: int, rng: random.Random) -> Product:
    pid = f"SKU{i:07d}"
    path, garment = CATEGORIES[i % len(CATEGORIES)]
    images = []
    for j in range(n_images):
        sha = f"{i:032x}{j:032x}"
        images.append(
            ImageRecord(
                url=f"https://cdn.shop.example/media/{pid}/{j}.jpg",
                sha256=sha,
                vector_id=vector_id_for("bench", pid, sha),
                color=COLORS[j % len(COLORS)],
                width=1080,
                height=1340,
                is_main=j == 0,
            )
        )
    return Product(
        source="bench",
        id=pid,
        title=f"Product {i} {path[-1]} in {COLORS[i % len(COLORS)]}",
        description=("Lightweight breathable fabric for training and everyday wear. " * 5)[:300],
        link=f"https://shop.example/p/{pid}",
        brand=rng.choice(BRANDS),
        price=round(rng.uniform(5, 300), 2),
        currency="USD",
        category_path=path,
        garment_category=garment,
        colors=COLORS[:3],
        sizes=["XS", "S", "M", "L", "XL"],
        gender="women" if i % 2 else "men",
        attributes={"material": "Cotton", "pattern": "Solid"},
        images=images,
    )


def fill(store: CatalogStore, n: int, n_images: int, batch: int = 2000) -> float:
    rng = random.Random(0)
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        store.upsert_products([make_product(i, n_images, rng) for i in range(start, min(n, start + batch))])
    return time.perf_counter() - t0


def timeit(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = make_parser(__doc__, quick={"products": 2000, "repeat": 30})
    ap.add_argument("--products", type=int, default=100_000)
    ap.add_argument("--images", type=int, default=4, help="images per product")
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--db", type=Path, default=None, help="SQLite file to (re)use; default a temporary one")
    ap.add_argument("--mongodb-uri", default=None, help="benchmark MongoStore on this server instead")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parse(build_parser(), argv)

    console = Console()
    tmp = None
    if args.mongodb_uri:
        from fittingroom.catalog.mongo import MongoStore

        store: CatalogStore = MongoStore(args.mongodb_uri)
        backend = "MongoDB"
    else:
        from fittingroom.catalog.sqlite import SQLiteStore

        if args.db is None:
            tmp = tempfile.TemporaryDirectory()
            args.db = Path(tmp.name) / "bench.db"
        store = SQLiteStore(args.db)
        backend = "SQLite"

    fill_s = 0.0
    if store.count_products("bench") != args.products:
        store.delete_products(sorted(store.product_keys("bench")))
        with console.status(f"writing {args.products} products..."):
            fill_s = fill(store, args.products, args.images)

    rng = random.Random(1)
    all_vids = [
        vector_id_for("bench", f"SKU{i:07d}", f"{i:032x}{j:032x}")
        for i in rng.sample(range(args.products), min(args.products, 5000))
        for j in range(args.images)
    ]

    def keys50() -> list[tuple[str, str]]:
        return [("bench", f"SKU{rng.randrange(args.products):07d}") for _ in range(50)]

    rows: list[tuple[str, list[float]]] = [
        ("get_products: 50 by id", timeit(lambda: store.get_products(keys50()), args.repeat)),
        ("get_product: 1 by id", timeit(lambda: store.get_product("bench", "SKU0000042"), args.repeat)),
        (
            "products_by_vector_ids: 50 hits",
            timeit(lambda: store.products_by_vector_ids(rng.sample(all_vids, 50)), args.repeat),
        ),
        (
            "products_by_vector_ids: 200 hits",
            timeit(
                lambda: store.products_by_vector_ids(rng.sample(all_vids, 200)), max(20, args.repeat // 5)
            ),
        ),
        (
            "vector_ids_matching: brand",
            timeit(lambda: store.vector_ids_matching(ProductFilter(brand="brand 7")), 30),
        ),
        (
            "vector_ids_matching: category 'tees'",
            timeit(lambda: store.vector_ids_matching(ProductFilter(category="tees")), 10),
        ),
        (
            "vector_ids_matching: price 10-20 + category",
            timeit(
                lambda: store.vector_ids_matching(
                    ProductFilter(category="women", min_price=10, max_price=20)
                ),
                10,
            ),
        ),
    ]

    table = Table(title=f"{backend} store, {args.products:,} products x {args.images} images")
    for col in ("operation", "p50 ms", "p95 ms", "mean ms", "runs"):
        table.add_column(col, justify="left" if col == "operation" else "right")
    for name, times in rows:
        q = statistics.quantiles(times, n=20)
        table.add_row(
            name,
            f"{statistics.median(times):.3f}",
            f"{q[18]:.3f}",
            f"{statistics.fmean(times):.3f}",
            str(len(times)),
        )
    console.print(table)
    if fill_s:
        console.print(
            f"fill: {args.products:,} products in {fill_s:.1f} s ({args.products / fill_s:,.0f} products/s)"
        )
    store.close()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
