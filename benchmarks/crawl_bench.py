"""Crawl throughput and memory on a generated mirror shop (served on 127.0.0.1).

Builds ``crawler.testing.MirrorShop`` in memory from the Luma catalog (default 3000
product pages with JSON-LD, half of them ProductGroups with colour variants, listing
pages with pagination, Luma images), runs ``fittingroom crawl`` on it in a subprocess
and prints a table: pages/min, products/min, images, peak RSS of the crawler process
against the memory budget, and whether every product was found.

    python benchmarks/crawl_bench.py                        # 3000 products, feed output, images on
    python benchmarks/crawl_bench.py --products 500 --no-images
    python benchmarks/crawl_bench.py --profile polite       # the default politeness settings
    python benchmarks/crawl_bench.py --store                # into a temporary catalog (embeds: slow on CPU)
    python benchmarks/crawl_bench.py --quick                # 100 products

Profiles: ``fast`` (no delay, AutoThrottle off, 16 requests per domain: the crawler's
own capacity) and ``polite`` (the shipped defaults: 4 per domain, 0.25 s delay,
AutoThrottle). The shop server runs in this process and shares the CPU with the crawler.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import make_parser, parse
from rich.console import Console
from rich.table import Table

PROFILES = {
    "fast": {
        "CRAWLER_AUTOTHROTTLE": "false",
        "CRAWLER_DOWNLOAD_DELAY": "0",
        "CRAWLER_CONCURRENT_PER_DOMAIN": "16",
    },
    "polite": {},
}


def build_parser() -> argparse.ArgumentParser:
    ap = make_parser(__doc__, quick={"products": 100})
    ap.add_argument("--products", type=int, default=3000)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="fast")
    ap.add_argument("--images", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--store", action="store_true", help="Write to a temporary catalog instead of a feed.")
    ap.add_argument("--memory-budget-mb", type=int, default=512, help="Fail the crawl above this RSS.")
    ap.add_argument(
        "--luma", type=Path, default=None, help="Luma catalog folder (default: SHARED_DATA/luma-catalog)."
    )
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parse(build_parser(), argv)
    from crawler.testing import MirrorShop
    from fittingroom.settings import CoreSettings

    luma = args.luma or CoreSettings().shared_data / "luma-catalog"
    console = Console()
    with tempfile.TemporaryDirectory(prefix="crawl-bench-") as tmp, MirrorShop(luma, args.products) as shop:
        env = dict(
            os.environ,
            FITTINGROOM_HOME=str(Path(tmp) / "home"),
            CRAWLER_LOG_LEVEL="WARNING",
            **PROFILES[args.profile],
        )
        cmd = [
            sys.executable,
            "-c",
            "from fittingroom.cli import main; main()",
            "crawl",
            shop.base_url,
            "--json",
            "--memory-limit-mb",
            str(args.memory_budget_mb),
            "--max-depth",
            "0",
        ]
        feed = Path(tmp) / "feed.jsonl"
        if args.store:
            env["FITTINGROOM_STORE_URI"] = f"sqlite:///{Path(tmp) / 'catalog.db'}"
            cmd += ["--shop", "mirror"]
        else:
            cmd += ["-o", str(feed)]
        if not args.images:
            cmd.append("--no-images")
        console.print(f"crawling {args.products} products at {shop.base_url} ({args.profile} profile)...")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            console.print(proc.stderr[-4000:])
            raise SystemExit(f"crawl failed with exit code {proc.returncode}")
        s = json.loads(proc.stdout.strip().splitlines()[-1])
        found = s["products"]
        if not args.store:
            with feed.open() as fh:
                found = len(
                    {(json.loads(line).get("item_group_id") or json.loads(line)["id"]) for line in fh}
                )

    table = Table(
        title=f"Crawl benchmark: mirror shop, {args.products} products, {args.profile} profile, "
        f"images {'on' if args.images else 'off'}, {'catalog' if args.store else 'feed'} output",
        title_justify="left",
    )
    for col in ("metric", "value"):
        table.add_column(col, justify="right" if col == "value" else "left")
    rows = [
        ("pages fetched (incl. images, robots.txt)", f"{s['pages']}"),
        ("products found / in shop", f"{found} / {args.products}"),
        ("crawl time (s)", f"{s['seconds']:.1f} (process wall {wall:.1f})"),
        ("pages/min", f"{s['pages_per_min']:.0f}"),
        ("products/min", f"{s['products_per_min']:.0f}"),
        ("images downloaded / failed", f"{s['images_downloaded']} / {s['images_failed']}"),
        ("peak RSS (MB) / budget", f"{s['peak_rss_mb']:.0f} / {args.memory_budget_mb}"),
        ("finish reason", s["finish_reason"]),
    ]
    if args.store:
        rows.append(("catalog", ", ".join(f"{k}: {v}" for k, v in sorted(s["catalog"].items()))))
    for r in rows:
        table.add_row(*r)
    console.print(table)
    if found != args.products or (s["peak_rss_mb"] or 0) > args.memory_budget_mb:
        raise SystemExit("FAILED: missing products or memory budget exceeded")


if __name__ == "__main__":
    main()
