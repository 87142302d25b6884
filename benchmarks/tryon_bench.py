"""Try-on preview latency: uncached person preprocessing, garment preprocessing, render, total.

For ``--pairs`` (person, garment) pairs of the try-on examples (persons spread over the
folder, VITON-HD tops ``NNNNN_00.jpg`` as garments), every stage is timed with empty
caches (a new photo and a new garment each time) and the process's peak RSS is reported.

Usage::

    python benchmarks/tryon_bench.py [--examples DIR] [--pairs 6] [--max-side 1024]
    python benchmarks/tryon_bench.py --quick   # 2 pairs

Target (issue 6, this 2-core machine): total <= 1.5 s per image for the preview backend.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
from _common import make_parser, parse
from rich.console import Console
from rich.table import Table

TARGET_S = 1.5


def build_parser() -> argparse.ArgumentParser:
    ap = make_parser(__doc__, quick={"pairs": 2})
    ap.add_argument("--examples", type=Path, default=None)
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--max-side", type=int, default=1024)
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parse(build_parser(), argv)
    from fittingroom.settings import get_settings
    from fittingroom.tryon.evaluation import load_examples
    from fittingroom.tryon.garment import GarmentPreprocessor
    from fittingroom.tryon.person import PersonPreprocessor, TryOnCategory, TryOnInputError
    from fittingroom.tryon.renderers import PreviewBackend

    examples = args.examples or get_settings().shared_data / "tryon-examples"
    persons, garments, _source = load_examples(examples)
    tops = [g for g, c in garments if c is TryOnCategory.top]
    step = max(1, len(persons) // args.pairs)
    chosen = persons[::step][: args.pairs]

    pre = PersonPreprocessor(max_side=args.max_side, cache_size=1)
    t = time.perf_counter()
    pre.load()
    load_s = time.perf_counter() - t
    backend = PreviewBackend()
    rows: list[tuple[str, float, float, float]] = []
    for i, person in enumerate(chosen):
        gpre = GarmentPreprocessor(max_side=args.max_side, cache_size=1)  # empty cache each time
        pre.clear_cache()
        t0 = time.perf_counter()
        try:
            prep = pre.prepare((examples / person).read_bytes(), TryOnCategory.top)
        except TryOnInputError as e:
            Console().print(f"skip {person}: {e.reason}")
            continue
        t1 = time.perf_counter()
        g = gpre.prepare((examples / tops[i % len(tops)]).read_bytes())
        t2 = time.perf_counter()
        backend.render(None, prep, None, g, TryOnCategory.top)  # type: ignore[arg-type]
        t3 = time.perf_counter()
        rows.append((person, t1 - t0, t2 - t1, t3 - t2))
    pre.close()

    table = Table(title=f"try-on preview, max side {args.max_side} px (model load {load_s:.2f} s)")
    for col in ("person", "person prep s", "garment prep s", "render s", "total s"):
        table.add_column(col, justify="right" if col != "person" else "left")
    for name, a, b, c in rows:
        table.add_row(name, f"{a:.3f}", f"{b:.3f}", f"{c:.3f}", f"{a + b + c:.3f}")
    totals = np.array([a + b + c for _, a, b, c in rows])
    if len(totals):
        table.add_row("p50", "", "", "", f"{np.percentile(totals, 50):.3f}")
        table.add_row("max", "", "", "", f"{totals.max():.3f}")
    Console().print(table)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ok = len(totals) > 0 and totals.max() <= TARGET_S
    Console().print(f"peak RSS {rss_mb:.0f} MB; target total <= {TARGET_S} s: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
