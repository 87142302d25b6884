"""Segmentation latency and memory benchmark: prints a table.

    python benchmarks/segmentation_bench.py [--photos N] [--clicks N] [--ranker garment|sam] [--megapixels MP]
    python benchmarks/segmentation_bench.py --quick   # 2 photos, 3 clicks each

Per photo of the street-photos set: encoder latency (cold, no cache), upload latency
(encoder + person cues), then ``--clicks`` clicks at random garment pixels with the
cache warm (p50/p95), and the process's peak RSS. Targets (2-core CPU): click p50 <= 80 ms,
first click (upload + click) <= 1.0 s. ``--megapixels 1`` resizes every photo to 1 MP (a phone
photo as the page uploads it) first: "upload" is then the photo-ready time (decode, image
encoder, person cues, parsing head) of issue 17 (target p50 <= 1 s).
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import time
from pathlib import Path

import numpy as np
from _common import make_parser, parse
from PIL import Image
from rich.console import Console
from rich.table import Table

from fittingroom.segmentation.settings import RankerName


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__, quick={"photos": 2, "clicks": 3})
    parser.add_argument("--street-photos", type=Path, default=None)
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--ranker", choices=[r.value for r in RankerName], default=RankerName.garment.value)
    parser.add_argument("--megapixels", type=float, default=None, help="Resize each photo to this many MP.")
    parser.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = parse(build_parser(), argv)
    from fittingroom.segmentation.evaluation import iter_photos
    from fittingroom.segmentation.service import SegmentationService
    from fittingroom.segmentation.settings import SegmentationSettings
    from fittingroom.settings import get_settings

    folder = args.street_photos or get_settings().shared_data / "street-photos"

    rss_start = peak_rss_mb()
    t = time.perf_counter()
    service = SegmentationService(SegmentationSettings(disk_cache=False, ranker=RankerName(args.ranker)))
    load_s = time.perf_counter() - t
    rss_loaded = peak_rss_mb()
    rng = np.random.default_rng(0)
    encoder, upload, first, clicks = [], [], [], []
    for _pid, photo, label_map, _items in iter_photos(
        folder, every=max(1, 400 // args.photos), limit=args.photos
    ):
        img = Image.open(photo).convert("RGB")
        data = photo.read_bytes()
        if args.megapixels:
            scale = (args.megapixels * 1e6 / (img.width * img.height)) ** 0.5
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
            label_map = np.asarray(Image.fromarray(label_map).resize(img.size, Image.Resampling.NEAREST))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=90)
            data = buf.getvalue()
        t = time.perf_counter()
        service.backend.embed(img)
        encoder.append(time.perf_counter() - t)
        t = time.perf_counter()
        entry = service.add_image(data, str(photo))
        upload.append(time.perf_counter() - t)
        ys, xs = np.nonzero(label_map > 0)
        for i in range(args.clicks):
            k = rng.integers(len(xs))
            t = time.perf_counter()
            service.segment(entry.image_id, [[xs[k], ys[k]]], [1])
            dt = time.perf_counter() - t
            if i == 0:
                first.append(upload[-1] + dt)
            else:
                clicks.append(dt)

    def ms(xs: list[float], q: float) -> float:
        return round(float(np.percentile(xs, q)) * 1000, 1)

    rows = {
        "model": service.backend.model_key,
        "ranker": service.ranker.name,
        "photos": len(encoder),
        "photo size": f"{args.megapixels} MP" if args.megapixels else "as shot",
        "model load (s)": round(load_s, 2),
        "encoder p50 (ms)": ms(encoder, 50),
        "encoder p95 (ms)": ms(encoder, 95),
        "upload = encoder + person cues p50 (ms)": ms(upload, 50),
        "first click = upload + click p50 (ms)": ms(first, 50),
        "click warm p50 (ms)": ms(clicks, 50),
        "click warm p95 (ms)": ms(clicks, 95),
        "peak RSS after load (MB)": round(rss_loaded, 1),
        "peak RSS end (MB)": round(peak_rss_mb(), 1),
        "RSS before load (MB)": round(rss_start, 1),
    }
    if args.json:
        print(json.dumps(rows))
        return
    table = Table(title="Segmentation benchmark")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in rows.items():
        table.add_row(k, str(v))
    Console().print(table)


if __name__ == "__main__":
    main()
