"""Ingest throughput against the encoder's own limit, and Luma's first ingest wall time, in one run.

Each row gives wall time and the process's CPU time (all threads) per image: on cores other jobs
share, the CPU ratio is the steadier one.

1. *Encoder alone*: ``embed_images`` on images already decoded and prepared
   (``encoder.prepare_image``: padded, resized), ``--batch-size`` per call: the forward
   pass's own batch throughput, the practical ceiling of ingest.
2. *Ingest*: ``catalog_ingest.runner.ingest_feed`` of the first ``--products`` Luma products
   into a fresh SQLite store (fetch, hash, decode and prepare in the thread pool, embed,
   annotate, commit; index sync excluded), same encoder object. Ratio = ingest / encoder
   alone (target, issue 20: >= 0.7).
3. *First ingest, fresh home*: ``python -m fittingroom.cli ingest <luma>`` (the same
   ``--products`` products) in a subprocess
   with ``FITTINGROOM_HOME`` a new temp folder, wall time including imports, model loading
   and the index sync: once with an empty model cache (the ONNX export runs: what a new
   machine pays once) and once with the models already exported (``FITTINGROOM_MODEL_DIR``
   pointing at this run's cache). Target (issue 20): <= 25 s.

    python benchmarks/ingest_bench.py                      # offline encoder, all 191 products
    python benchmarks/ingest_bench.py --products 60 --no-fresh-home
    python benchmarks/ingest_bench.py --encoder standin    # random-weight MobileNetV3 + hashed text
    python benchmarks/ingest_bench.py --quick              # 12 products, 64 images alone

``standin`` is a randomly initialised torchvision MobileNetV3-Small (224 px) plus a hashed
bag of words, for machines where the offline encoder's weights are not installed.
The machine's other load matters: the table prints the load average before and after.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from _common import make_parser, parse
from PIL import Image
from rich.console import Console
from rich.table import Table

from catalog_ingest.runner import ingest_feed
from fittingroom.images import flatten_alpha, load_image
from fittingroom.models.encoders.base import Encoder, Query, l2_normalize
from fittingroom.settings import CoreSettings

REPO = Path(__file__).resolve().parents[1]


class StandInEncoder(Encoder):
    """Random-weight MobileNetV3-Small image tower + 64-bucket hashed words (see module docstring)."""

    name = "standin-mobilenetv3"
    dim = 576 + 64

    def __init__(self) -> None:
        import torch
        import torchvision

        torch.manual_seed(0)
        self.torch = torch
        self.model = torchvision.models.mobilenet_v3_small(weights=None).features.eval()
        self.mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        torch = self.torch
        arr = np.stack(
            [
                np.asarray(flatten_alpha(i).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR))
                for i in images
            ]
        )
        x = (torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255.0 - self.mean) / self.std
        with torch.inference_mode():
            feats = self.model(x).mean(dim=(2, 3))
        return l2_normalize(feats.numpy())

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), 64), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1
        return l2_normalize(out + 1e-6)

    def document_vectors(self, images: Sequence[Image.Image], texts: Sequence[str]) -> np.ndarray:
        return l2_normalize(np.concatenate([self.embed_images(images), self.embed_texts(texts)], axis=1))

    def query_vectors(self, queries: Sequence[Query]) -> np.ndarray:
        raise NotImplementedError


def make_encoder(name: str) -> Encoder:
    if name == "standin":
        return StandInEncoder()
    from fittingroom.models.specs import get_encoder

    return get_encoder(CoreSettings(encoder=name))


def encoder_alone(encoder: Encoder, paths: Sequence[Path], batch_size: int) -> tuple[int, float, float]:
    """(images, wall seconds, CPU seconds of the process) of ``embed_images`` on decoded,
    prepared images, ``batch_size`` per call."""
    prepare = getattr(encoder, "prepare_image", lambda im: im)
    images = [prepare(load_image(p)) for p in paths]
    encoder.embed_images(images[:batch_size])  # warm-up: first-call allocations
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(images), batch_size):
        encoder.embed_images(images[i : i + batch_size])
    return len(images), time.perf_counter() - t0, time.process_time() - c0


def fresh_home_ingest(feed: Path, home: Path, model_dir: Path | None, image_root: Path) -> tuple[float, dict]:
    """Wall seconds and JSON summary of ``fittingroom ingest feed`` in a subprocess, home = ``home``,
    source ``luma``, local images allowed under ``image_root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITTINGROOM_")}
    env["FITTINGROOM_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    if model_dir is not None:
        env["FITTINGROOM_MODEL_DIR"] = str(model_dir)
    cmd = [sys.executable, "-m", "fittingroom.cli", "ingest", str(feed), "--no-progress", "--json"]
    cmd += ["--source", "luma", "--image-root", str(image_root)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=1800, check=True)
    wall = time.perf_counter() - t0
    return wall, json.loads(out.stdout.strip().splitlines()[-1])


def build_parser() -> argparse.ArgumentParser:
    ap = make_parser(__doc__, quick={"products": 12, "alone_images": 64})
    ap.add_argument("--catalog", type=Path, default=CoreSettings().shared_data / "luma-catalog")
    ap.add_argument("--products", type=int, default=191, help="first N products of the feed")
    ap.add_argument("--encoder", default="offline", help="registry name, or 'standin'")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--alone-images", type=int, default=256, help="images for the encoder-alone figure")
    ap.add_argument("--annotate", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--fresh-home", action=argparse.BooleanOptionalAction, default=True)
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parse(build_parser(), argv)

    console = Console(width=max(120, Console().width))
    load_before = os.getloadavg()[0]
    catalog = args.catalog.resolve()
    lines = (catalog / "products.jsonl").read_text().splitlines()[: args.products]
    with console.status(f"loading encoder {args.encoder}..."):
        encoder = make_encoder(args.encoder)
        encoder.document_vectors([Image.new("RGB", (64, 64))], ["warm-up"])  # lazy loads out of the timing
    annotators: list = []
    if args.annotate:
        from catalog_ingest.annotators import load_default_annotators

        annotators = load_default_annotators(CoreSettings())

    paths = sorted((catalog / "images").rglob("*.jpg"))[: args.alone_images]
    for p in sorted((catalog / "images").rglob("*.jpg")):
        p.read_bytes()  # every timing below reads the images from the page cache
    n_alone, alone_s, alone_cpu = encoder_alone(encoder, paths, args.batch_size)

    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        tmpdir = Path(tmp)
        # the slice must sit beside images/ so relative image paths resolve: link the folder
        work = tmpdir / "feed"
        work.mkdir()
        (work / "images").symlink_to(catalog / "images")
        feed = work / "slice.jsonl"
        feed.write_text("".join(json.dumps(json.loads(ln)) + "\n" for ln in lines))
        from fittingroom.catalog.sqlite import SQLiteStore

        with SQLiteStore(tmpdir / "ingest.db") as store:
            t0, c0 = time.perf_counter(), time.process_time()
            report = ingest_feed(
                feed,
                store=store,
                encoder=encoder,
                source="luma",
                annotators=annotators,
                batch_size=args.batch_size,
                workers=args.workers,
                image_cache=tmpdir / "cache",
                image_roots=[catalog],  # the slice's images/ is a link into the catalog
                index_dir=tmpdir / "index",
                sync=None,
                progress=False,
            )
            ingest_s, ingest_cpu = time.perf_counter() - t0, time.process_time() - c0
        if report.embedded == 0:
            raise SystemExit(f"ingest embedded nothing: {report.bad_rows[:3]}")

        fresh: list[tuple[str, float, dict]] = []
        if args.fresh_home:
            with console.status("first ingest into a fresh home, empty model cache..."):
                wall, summary = fresh_home_ingest(feed, tmpdir / "home-cold", None, catalog)
            fresh.append(("fresh home, empty model cache (ONNX export included)", wall, summary))
            with console.status("first ingest into a fresh home, models exported..."):
                wall, summary = fresh_home_ingest(
                    feed, tmpdir / "home-warm", tmpdir / "home-cold" / "models", catalog
                )
            fresh.append(("fresh home, models already exported", wall, summary))

    alone_rate = n_alone / alone_s
    rate = report.embedded / ingest_s
    table = Table(title=f"Ingest vs the encoder alone: encoder {encoder.name}, batch {args.batch_size}")
    cols = ("what", "images", "seconds", "images/s", "vs encoder alone", "CPU ms/image", "CPU vs alone")
    for col in cols:
        table.add_column(col, justify="left" if col == "what" else "right")
    alone_ms, ingest_ms = 1000 * alone_cpu / n_alone, 1000 * ingest_cpu / report.embedded
    table.add_row(
        "encoder alone (prepared images)",
        str(n_alone),
        f"{alone_s:.1f}",
        f"{alone_rate:.1f}",
        "1.00",
        f"{alone_ms:.1f}",
        "1.00",
    )
    table.add_row(
        f"ingest, {args.products} products ({args.workers} workers"
        + (", annotated" if annotators else "")
        + ", no index sync)",
        str(report.embedded),
        f"{ingest_s:.1f}",
        f"{rate:.1f}",
        f"{rate / alone_rate:.2f}",
        f"{ingest_ms:.1f}",
        f"{alone_ms / ingest_ms:.2f}",
    )
    console.print(table)
    console.print(
        "CPU = user + system seconds of every thread of this process: on shared cores a steadier "
        "measure of the work than wall time (CPU vs alone = encoder CPU per image / ingest CPU per image)"
    )
    if fresh:
        ft = Table(
            title=f"Luma first ingest ({len(lines)} products), `fittingroom ingest`, fresh FITTINGROOM_HOME"
        )
        for col in ("case", "wall s (incl. start-up, index sync)", "ingest's own s", "embedded"):
            ft.add_column(col, justify="left" if col == "case" else "right")
        for case, wall, summary in fresh:
            ft.add_row(case, f"{wall:.1f}", f"{summary['seconds']:.1f}", str(summary["embedded"]))
        console.print(ft)
    console.print(
        f"{os.cpu_count()} CPUs; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
        "(other processes share these cores: absolute figures vary, ratios less)"
    )


if __name__ == "__main__":
    main()
