"""Test doubles for ingest: a tiny deterministic encoder, an annotator, an index sync, feed builders.

``PixelStatsEncoder`` embeds an image as its per-channel means and standard deviations on a
2x2 grid (24 numbers) plus a 8-bucket hash of the text's words: deterministic, sensitive to
any visible image change and to the document text, and fast.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fittingroom.catalog.store import CatalogStore
from fittingroom.images import flatten_alpha
from fittingroom.models.encoders.base import Encoder, Query, l2_normalize


class PixelStatsEncoder(Encoder):
    name = "fake-pixel-stats"
    dim = 32

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.images_seen = 0
        self.batch_sizes: list[int] = []
        self.texts: list[str] = []
        self.fail_on_call = fail_on_call

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = np.zeros((len(images), 24), np.float32)
        for i, img in enumerate(images):
            a = np.asarray(flatten_alpha(img).convert("RGB").resize((16, 16)), np.float32) / 255.0
            cells = [a[:8, :8], a[:8, 8:], a[8:, :8], a[8:, 8:]]
            out[i] = np.concatenate([np.r_[c.reshape(-1, 3).mean(0), c.reshape(-1, 3).std(0)] for c in cells])
        return l2_normalize(out + 1e-3)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), 8), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 8] += 1
        return l2_normalize(out + 1e-3)

    def document_vectors(self, images: Sequence[Image.Image], texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise RuntimeError(f"simulated encoder crash on call {self.calls}")
        assert len(images) == len(texts)
        self.images_seen += len(images)
        self.batch_sizes.append(len(images))
        self.texts += list(texts)
        return l2_normalize(np.concatenate([self.embed_images(images), self.embed_texts(texts)], axis=1))

    def query_vectors(self, queries: Sequence[Query]) -> np.ndarray:
        raise NotImplementedError("not needed by ingest")


class FakeAnnotator:
    """Eligible when the image is mostly bright (a 'product-only on white' stand-in)."""

    name = "fake-eligibility"

    def __init__(self) -> None:
        self.seen = 0

    def annotate(self, images: Sequence[Image.Image]) -> list[dict[str, Any]]:
        self.seen += len(images)
        out = []
        for img in images:
            bright = float(np.asarray(img.convert("L"), np.float32).mean() / 255.0)
            out.append(
                {
                    "photo_type": "product_only" if bright > 0.5 else "on_model",
                    "photo_type_probs": {"product_only": bright, "on_model": 1 - bright},
                    "tryon_eligible": bright > 0.5,
                    "tryon_eligible_prob": bright,
                }
            )
        return out


class RecordingSync:
    """Index sync stand-in: remembers the store's embedding ids at each call (what an index would hold)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.index_ids: set[int] = set()

    def __call__(
        self, store: CatalogStore, encoder_name: str, index_dir: Path, *, force_rebuild: bool = False
    ):
        self.index_ids = set(store.embedding_ids(encoder_name))
        self.calls.append(
            {
                "encoder": encoder_name,
                "index_dir": index_dir,
                "force_rebuild": force_rebuild,
                "count": len(self.index_ids),
            }
        )
        return {"count": len(self.index_ids)}


def image_bytes(seed: int, size: tuple[int, int] = (24, 32), fmt: str = "JPEG") -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=3)
    arr = np.clip(base + rng.integers(-40, 40, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format=fmt, quality=90)
    return buf.getvalue()


def write_image(folder: Path, name: str, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(image_bytes(seed))
    return path


def write_jsonl(path: Path, records: Sequence[dict[str, Any] | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def gmc_records(
    n: int, images_dir: Path, *, images_per_product: int = 2, seed0: int = 0
) -> list[dict[str, Any]]:
    """``n`` GMC-style products with real image files in ``images_dir`` (paths relative to its parent)."""
    out = []
    for i in range(n):
        links = []
        for j in range(images_per_product):
            write_image(images_dir, f"p{i}_{j}.jpg", seed0 + 100 * i + j)
            links.append(f"{images_dir.name}/p{i}_{j}.jpg")
        out.append(
            {
                "id": f"P{i}",
                "title": f"Product {i} Tee",
                "description": "Soft cotton tee.",
                "link": f"https://shop.example/p/{i}",
                "image_link": links[0],
                "additional_image_link": ",".join(links[1:]),
                "price": f"{10 + i}.00 USD",
                "brand": "Acme",
                "product_type": "Men > Tops > Tees",
                "color": "Black",
                "size": "M",
                "gender": "male",
            }
        )
    return out
