"""A tiny deterministic Encoder and a small colour catalog for retrieval tests.

``ColorEncoder`` embeds an image as its mean RGB colour (alpha-composited on white, like the
real encoders) and a text as counts of colour words, in two halves of one 8-d space:
``[r, g, b, 0 | red, green, blue, 0]``. Documents are the sum of both halves, queries
weigh them with ``image_weight``. So a red photo or the word "red" finds red products.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fittingroom.catalog.models import ImageRecord, Product, vector_id_for
from fittingroom.catalog.store import CatalogStore
from fittingroom.images import flatten_alpha, sha256_bytes
from fittingroom.models.encoders.base import Encoder, Query, document_text, l2_normalize

COLORS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220), "gray": (128, 128, 128)}


class ColorEncoder(Encoder):
    name = "fake-color"
    dim = 8

    def __init__(self) -> None:
        self.calls = 0

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = np.zeros((len(images), self.dim), np.float32)
        for i, img in enumerate(images):
            rgb = np.asarray(flatten_alpha(img).convert("RGB"), np.float32).reshape(-1, 3).mean(0) / 255.0
            out[i, :3] = rgb - rgb.mean() + 1e-3  # chroma, so gray is far from every colour
            out[i, 3] = 0.05
        return l2_normalize(out)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            words = t.lower().replace(",", " ").replace(".", " ").split()
            for j, c in enumerate(("red", "green", "blue")):
                out[i, 4 + j] = words.count(c)
            out[i, 7] = 0.05 + words.count("gray")
        return l2_normalize(out)

    def document_vectors(self, images: Sequence[Image.Image], texts: Sequence[str]) -> np.ndarray:
        return l2_normalize(self.embed_images(images) + self.embed_texts(texts))

    def query_vectors(self, queries: Sequence[Query]) -> np.ndarray:
        self.calls += len(queries)
        out = np.zeros((len(queries), self.dim), np.float32)
        for i, q in enumerate(queries):
            if q.image is not None and q.text:
                out[i] = (
                    q.image_weight * self.embed_images([q.image])[0]
                    + (1 - q.image_weight) * self.embed_texts([q.text])[0]
                )
            elif q.image is not None:
                out[i] = self.embed_images([q.image])[0]
            else:
                out[i] = self.embed_texts([q.text or ""])[0]
        return l2_normalize(out)


def solid_png(color: tuple[int, int, int], size: tuple[int, int] = (32, 48), mode: str = "RGB") -> bytes:
    img = Image.new(mode, size, color if mode == "RGB" else (*color, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_catalog(store: CatalogStore, encoder: Encoder, cache_dir: Path) -> list[Product]:
    """Eight products: tees/pants/jackets in colours, two brands, prices 10..80, two images for one.

    Images go into ``cache_dir/{sha[:2]}/{sha}`` (the ingest cache layout); embeddings into ``store``.
    """
    specs = [
        # id, title, colour(s), category, brand, price, eligible
        ("T1", "Red tee", ["red"], ["Men", "Tops", "Tees"], "Acme", 10.0, True),
        ("T2", "Green tee", ["green"], ["Men", "Tops", "Tees"], "Acme", 20.0, False),
        ("T3", "Blue tee", ["blue"], ["Women", "Tops", "Tees"], "Zed", 30.0, True),
        ("P1", "Red pants", ["red"], ["Men", "Bottoms", "Pants"], "Zed", 40.0, None),
        ("P2", "Blue pants", ["blue"], ["Women", "Bottoms", "Pants"], "Acme", 50.0, True),
        ("J1", "Gray jacket", ["gray"], ["Men", "Tops", "Jackets"], "Zed", 60.0, True),
        ("J2", "Green jacket", ["green"], ["Women", "Tops", "Jackets"], "Acme", 70.0, None),
        # one product, two colour variants: red and blue images
        ("H1", "Hoodie", ["red", "blue"], ["Men", "Tops", "Hoodies"], "Acme", 80.0, True),
    ]
    products: list[Product] = []
    for pid, title, colors, cats, brand, price, eligible in specs:
        images = []
        for n, c in enumerate(colors):
            data = solid_png(COLORS[c], size=(32 + n, 48))
            sha = sha256_bytes(data)
            (cache_dir / sha[:2]).mkdir(parents=True, exist_ok=True)
            (cache_dir / sha[:2] / sha).write_bytes(data)
            images.append(
                ImageRecord(
                    url=f"https://shop.example/{pid.lower()}-{c}.png",
                    sha256=sha,
                    vector_id=vector_id_for("test", pid, sha),
                    color=c.title(),
                    is_main=n == 0,
                    tryon_eligible=eligible,
                    tryon_eligible_prob=0.9 if eligible else 0.1,
                )
            )
        products.append(
            Product(
                source="test",
                id=pid,
                title=title,
                brand=brand,
                price=price,
                currency="USD",
                category_path=cats,
                colors=[c.title() for c in colors],
                link=f"https://shop.example/{pid}",
                images=images,
                tryon_eligible=eligible,
            )
        )
    store.upsert_products(products)
    for p in products:
        imgs = [Image.open(cache_dir / i.sha256[:2] / i.sha256) for i in p.images]
        vecs = encoder.document_vectors(imgs, [document_text(p, i) for i in p.images])
        store.put_embeddings(encoder.name, [i.vector_id for i in p.images], vecs)
    return products
