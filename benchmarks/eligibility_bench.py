"""Throughput of the try-on eligibility annotator (images/s, CPU), as used by ingest.

Usage: ``python benchmarks/eligibility_bench.py [--n 64] [--batch-size 32] [--quick]``; reads Luma images
from ``<FITTINGROOM_SHARED_DATA>/luma-catalog/images``. Prints a table: decode is excluded
(ingest decodes once for the encoder and the annotators). Rows: ``annotate`` = own backbone
pass + heads (an encoder without the shared feature); ``annotate_features`` = heads on the
offline encoder's image features (what ingest runs with the default encoder: no second pass).
"""

from __future__ import annotations

import argparse
import time

from _common import make_parser, parse
from rich.console import Console
from rich.table import Table


def build_parser() -> argparse.ArgumentParser:
    ap = make_parser(__doc__, quick={"n": 16, "batch_size": 8})
    ap.add_argument("--n", type=int, default=64, help="Luma images")
    ap.add_argument("--batch-size", type=int, default=32)
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parse(build_parser(), argv)
    from fittingroom.images import load_image
    from fittingroom.models.eligibility import load_annotator
    from fittingroom.models.eligibility.settings import EligibilitySettings
    from fittingroom.settings import get_settings

    paths = sorted((get_settings().shared_data / "luma-catalog" / "images").rglob("*.jpg"))[: args.n]
    images = [load_image(p) for p in paths]
    ann = load_annotator(EligibilitySettings(batch_size=args.batch_size))
    ann.annotate(images[:2])  # warm-up
    t0 = time.perf_counter()
    out = ann.annotate(images)
    dt = time.perf_counter() - t0
    feats = ann.features(images)  # what the offline encoder stores anyway
    t1 = time.perf_counter()
    out_f = ann.annotate_features(feats)
    dt_f = time.perf_counter() - t1
    table = Table(title=f"eligibility annotator {ann.name}")
    table.add_column("path")
    for col in ("images", "batch", "seconds", "images/s", "eligible"):
        table.add_column(col, justify="right")
    for name, secs, res in [("annotate", dt, out), ("annotate_features", dt_f, out_f)]:
        table.add_row(
            name,
            str(len(images)),
            str(args.batch_size),
            f"{secs:.3f}",
            f"{len(images) / secs:.1f}",
            str(sum(o["tryon_eligible"] for o in res)),
        )
    Console().print(table)


if __name__ == "__main__":
    main()
