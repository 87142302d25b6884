"""Ingest throughput (images/s): ``catalog_ingest`` vs a naive one-image-at-a-time loop, in one run.

Both ingest the same slice of the Luma feed (``../shared/data/luma-catalog/products.jsonl``)
into fresh SQLite stores with the same encoder:

* naive: for every image, read the file, decode it, embed it alone
  (``document_vectors([image], [text])``), store its embedding, then upsert the product;
* ingest: ``catalog_ingest.runner.ingest_feed`` (thread pool fetching/decoding ahead,
  batched encoder calls, one commit per batch), index sync excluded from both.

    python benchmarks/ingest_bench.py                       # offline encoder, 60 products
    python benchmarks/ingest_bench.py --products 191 --batch-size 32 --workers 4
    python benchmarks/ingest_bench.py --encoder standin     # random-weight MobileNetV3 + hashed text

``standin`` is a randomly initialised torchvision MobileNetV3-Small (224 px, no weights to
download) plus a hashed bag of words: same kind of CPU cost as a real encoder, for machines
where the offline encoder's weights are not installed. Target (issue 2): ingest >= 3x naive.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from catalog_ingest.mapper import FeedMapper
from catalog_ingest.readers import read_feed
from catalog_ingest.runner import ingest_feed
from fittingroom.catalog.models import ImageRecord, vector_id_for
from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.images import decode_image, flatten_alpha, sha256_bytes
from fittingroom.models.encoders.base import Encoder, Query, document_text, l2_normalize
from fittingroom.settings import CoreSettings


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
            [np.asarray(flatten_alpha(i).convert("RGB").resize((224, 224), Image.BILINEAR)) for i in images]
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
    from fittingroom.models.encoders.registry import get_encoder

    return get_encoder(name)


def naive_ingest(feed: Path, store: SQLiteStore, encoder: Encoder, source: str) -> int:
    """One image at a time: read, decode, embed alone, write; then upsert the product."""
    drafts, _ = FeedMapper(source).map_records(read_feed(feed))
    n = 0
    for d in drafts:
        records = []
        for ref in d.images:
            data = (feed.parent / ref.url).read_bytes()
            sha = sha256_bytes(data)
            img = decode_image(data, name=ref.url)
            rec = ImageRecord(
                url=ref.url,
                sha256=sha,
                vector_id=vector_id_for(source, d.product.id, sha),
                color=ref.color,
                width=img.width,
                height=img.height,
                is_main=ref.is_main,
            )
            vec = encoder.document_vectors([img], [document_text(d.product, rec)])
            store.put_embeddings(encoder.name, [rec.vector_id], vec)
            records.append(rec)
            n += 1
        d.product.images = records
        store.upsert_products([d.product])
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", type=Path, default=CoreSettings().shared_data / "luma-catalog")
    ap.add_argument("--products", type=int, default=60, help="first N products of the feed")
    ap.add_argument("--encoder", default="offline", help="registry name, or 'standin'")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()

    console = Console()
    lines = (args.catalog / "products.jsonl").read_text().splitlines()[: args.products]
    with console.status(f"loading encoder {args.encoder}..."):
        encoder = make_encoder(args.encoder)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        # the slice must sit beside images/ so relative image paths resolve: link the folder
        work = tmpdir / "feed"
        work.mkdir()
        (work / "images").symlink_to((args.catalog / "images").resolve())
        feed = work / "slice.jsonl"
        feed.write_text("".join(json.dumps(json.loads(ln)) + "\n" for ln in lines))
        encoder.document_vectors([Image.new("RGB", (64, 64))], ["warm-up"])  # lazy init out of the timing
        drafts, _ = FeedMapper("luma").map_records(read_feed(feed))
        for d in drafts:  # both methods then read the images from the page cache
            for ref in d.images:
                (work / ref.url).read_bytes()

        with SQLiteStore(tmpdir / "naive.db") as store:
            t0 = time.perf_counter()
            n_naive = naive_ingest(feed, store, encoder, "luma")
            naive_s = time.perf_counter() - t0

        with SQLiteStore(tmpdir / "ingest.db") as store:
            t0 = time.perf_counter()
            report = ingest_feed(
                feed,
                store=store,
                encoder=encoder,
                source="luma",
                batch_size=args.batch_size,
                workers=args.workers,
                image_cache=tmpdir / "cache",
                index_dir=tmpdir / "index",
                sync=None,
                progress=False,
            )
            ingest_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            rerun = ingest_feed(
                feed,
                store=store,
                encoder=encoder,
                source="luma",
                image_cache=tmpdir / "cache",
                index_dir=tmpdir / "index",
                sync=None,
                progress=False,
            )
            rerun_s = time.perf_counter() - t0

    table = Table(title=f"Ingest throughput: {args.products} Luma products, encoder {encoder.name}")
    for col in ("method", "images", "seconds", "images/s", "vs naive"):
        table.add_column(col, justify="left" if col == "method" else "right")
    naive_rate = n_naive / naive_s
    table.add_row(
        "naive loop (1 image per call)", str(n_naive), f"{naive_s:.1f}", f"{naive_rate:.1f}", "1.00x"
    )
    rate = report.embedded / ingest_s
    table.add_row(
        f"ingest (batch {args.batch_size}, {args.workers} workers)",
        str(report.embedded),
        f"{ingest_s:.1f}",
        f"{rate:.1f}",
        f"{rate / naive_rate:.2f}x",
    )
    table.add_row(
        "ingest re-run, unchanged feed",
        f"{rerun.embedded} embedded",
        f"{rerun_s:.2f}",
        f"{report.embedded / rerun_s:.0f} checked",
        "",
    )
    console.print(table)


if __name__ == "__main__":
    main()
