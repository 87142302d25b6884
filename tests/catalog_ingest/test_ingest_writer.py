"""The writer's embedding calls with the offline encoder's own fusion code (stand-in models):
each product's text embedded once, images prepared in the decode pool, draft-decoded JPEGs."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from ingest_fakes import RecordingSync, gmc_records, write_jsonl
from PIL import Image

from catalog_ingest.runner import ingest_feed
from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.models.encoders.base import document_text, l2_normalize
from fittingroom.models.encoders.offline import OfflineEncoder
from fittingroom.models.encoders.onnx_models import lite_pixels


class CountingText:
    """Stand-in for MiniLM: a 384-d hash of the text; counts every text it encodes."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += list(texts)
        out = np.stack([np.random.default_rng(abs(hash(t)) % 2**32).normal(size=384) for t in texts])
        return l2_normalize(out)


class PixelImageModel:
    """Stand-in for EfficientNet: channel means of the 224 px network input on 16 bands; records input sizes."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def __call__(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        self.sizes += [im.size for im in images]
        px = lite_pixels(images, 224)  # (N, 3, 224, 224)
        bands = px.reshape(len(images), 3, 16, -1).mean(axis=3).reshape(len(images), 48)
        return l2_normalize(np.tile(bands, (1, 27))[:, :1280] + 1.5)


@pytest.fixture
def encoder(tmp_path: Path) -> OfflineEncoder:
    enc = OfflineEncoder(model_dir=tmp_path / "models")  # loads nothing until first use
    enc._text, enc._image = CountingText(), PixelImageModel()
    return enc


def _ingest(tmp_path: Path, feed: Path, encoder: OfflineEncoder, store: SQLiteStore, batch_size: int) -> None:
    ingest_feed(
        feed,
        store=store,
        encoder=encoder,
        image_cache=tmp_path / "cache",
        index_dir=tmp_path / "index",
        sync=RecordingSync(),
        progress=False,
        batch_size=batch_size,
    )


def test_each_products_text_is_embedded_once_not_once_per_image(
    tmp_path: Path, encoder: OfflineEncoder
) -> None:
    feed = write_jsonl(tmp_path / "shop.jsonl", gmc_records(4, tmp_path / "img", images_per_product=3))
    with SQLiteStore(tmp_path / "catalog.db") as store:
        _ingest(tmp_path, feed, encoder, store, batch_size=3)  # one product per encoder call
        text = encoder._text
        assert isinstance(text, CountingText)
        # per product: its first line and its category path, once each (was 2 per image: 24)
        assert len(text.texts) == 4 * 2
        assert len(set(text.texts)) == 4 + 1  # the 4 products share one category path
        # the vectors are those of embedding every image with its own text
        for p in store.iter_products():
            got = store.get_embeddings(encoder.name, [im.vector_id for im in p.images])
            for im in p.images:
                full = Image.open(tmp_path / im.url).convert("RGB")
                want = encoder.document_vectors([full], [document_text(p, im)])[0]
                np.testing.assert_allclose(got[im.vector_id], want, atol=1e-6)


def test_images_reach_the_encoder_prepared_in_the_decode_pool(
    tmp_path: Path, encoder: OfflineEncoder
) -> None:
    feed = write_jsonl(tmp_path / "shop.jsonl", gmc_records(2, tmp_path / "img"))
    with SQLiteStore(tmp_path / "catalog.db") as store:
        _ingest(tmp_path, feed, encoder, store, batch_size=32)
        p = next(store.iter_products())
        assert (p.images[0].width, p.images[0].height) == (24, 32)  # the record keeps the file's size
    image_model = encoder._image
    assert isinstance(image_model, PixelImageModel)
    assert image_model.sizes == [(224, 224)] * 4  # padded and resized before the writer's call


def test_large_jpegs_are_draft_decoded_for_the_encoder_and_keep_their_size(
    tmp_path: Path, encoder: OfflineEncoder
) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (1000, 2000, 3), dtype=np.uint8)).save(buf, "JPEG")
    (tmp_path / "img" / "big.jpg").write_bytes(buf.getvalue())
    feed = write_jsonl(
        tmp_path / "shop.jsonl", [{"id": "B", "title": "Big Tee", "image_link": "img/big.jpg"}]
    )
    seen: list[tuple[int, int]] = []
    prepare = encoder.prepare_image

    def spy(image: Image.Image) -> Image.Image:
        seen.append(image.size)
        return prepare(image)

    encoder.prepare_image = spy  # type: ignore[method-assign]
    with SQLiteStore(tmp_path / "catalog.db") as store:
        _ingest(tmp_path, feed, encoder, store, batch_size=32)
        im = next(store.iter_products()).images[0]
    assert (im.width, im.height) == (2000, 1000)
    assert seen == [(500, 250)]  # 1/4 scale: the longest side stays >= 2 x 224
