"""The inferred image category as an id filter (fittingroom/retrieval/image_category.py)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image

from fittingroom.catalog.models import GarmentCategory, ImageRecord, Product, vector_id_for
from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.catalog.store import ProductFilter
from fittingroom.index import VectorIndex, sync_index
from fittingroom.models.encoders.base import Query, l2_normalize
from fittingroom.models.garment_type import CategoryGuess
from fittingroom.retrieval.image_category import (
    RestrictionStats,
    category_allowed_ids,
    eval_restrictor,
    infer_category,
    query_image_embedding,
    restrict_to_image_category,
)
from fittingroom.retrieval.search import Searcher

SPECS = [  # id, garment category, price
    ("T1", GarmentCategory.top, 10.0),
    ("T2", GarmentCategory.top, 20.0),
    ("T3", GarmentCategory.top, 30.0),
    ("B1", GarmentCategory.bottom, 40.0),
    ("B2", GarmentCategory.bottom, 50.0),
    ("S1", GarmentCategory.footwear, 60.0),
]


class TwoPartEncoder:
    """Query vector ``[image (2) | text (2)]``; the image part is the image's mean red and blue."""

    name = "fake-two-part"
    dim = 4

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        rgb = [np.asarray(im.convert("RGB"), np.float32).reshape(-1, 3).mean(0) for im in images]
        return l2_normalize(np.stack([[c[0] + 1, c[2] + 1] for c in rgb]))

    def image_features(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(vectors, np.float32)[:, :2]

    def query_vectors(self, queries: Sequence[Query]) -> np.ndarray:
        out = np.zeros((len(queries), 4), np.float32)
        for i, q in enumerate(queries):
            if q.image is not None:
                out[i, :2] = 0.5 * self.embed_images([q.image])[0]
            out[i, 2:] = 0.1 if q.text else 0.0
        return out


class FixedTypes:
    def __init__(self, category: GarmentCategory, probability: float) -> None:
        self.category, self.probability = category, probability

    def guess(self, embedding: np.ndarray) -> CategoryGuess:
        return CategoryGuess(self.category, self.probability, "x", self.probability)


@pytest.fixture()
def searcher(tmp_path):
    store = SQLiteStore(tmp_path / "c.db")
    enc = TwoPartEncoder()
    products = []
    for pid, garment, price in SPECS:
        sha = f"{pid:0>64}"
        products.append(
            Product(
                source="t",
                id=pid,
                title=pid,
                garment_category=garment,
                category_path=["Shop", garment.value],
                price=price,
                currency="USD",
                images=[ImageRecord(url=f"{pid}.png", sha256=sha, vector_id=vector_id_for("t", pid, sha))],
            )
        )
    store.upsert_products(products)
    vids = [p.images[0].vector_id for p in products]
    rng = np.random.default_rng(0)
    store.put_embeddings(enc.name, vids, l2_normalize(rng.normal(size=(len(vids), 4)).astype(np.float32)))
    sync_index(store, enc.name, tmp_path / "index")
    yield Searcher(store, VectorIndex.open(tmp_path / "index", enc.name), enc, color_filter_min=2)
    store.close()


def vid(pid: str) -> int:
    return vector_id_for("t", pid, f"{pid:0>64}")


def test_the_image_embedding_is_the_image_part_of_the_query_vector() -> None:
    enc = TwoPartEncoder()
    img = Image.new("RGB", (4, 4), (200, 0, 50))
    v = enc.query_vectors([Query(image=img, text="red")])[0]
    np.testing.assert_allclose(query_image_embedding(enc, v, img), enc.embed_images([img])[0], rtol=1e-5)

    class NoParts:
        def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
            return np.ones((len(images), 3), np.float32)

    assert query_image_embedding(NoParts(), np.zeros(9), img).shape == (3,)
    with pytest.raises(ValueError, match="no image"):
        query_image_embedding(NoParts(), np.zeros(9), None)


def test_confidence_is_the_setting() -> None:
    emb = np.zeros(2, np.float32)
    assert infer_category(FixedTypes(GarmentCategory.top, 0.7), emb, 0.6).confident
    assert not infer_category(FixedTypes(GarmentCategory.top, 0.5), emb, 0.6).confident


def test_allowed_ids_are_the_category_within_the_filters(searcher) -> None:
    ids = category_allowed_ids(searcher, GarmentCategory.top, min_products=2)
    assert set(ids.tolist()) == {vid("T1"), vid("T2"), vid("T3")}
    cheap = category_allowed_ids(
        searcher, GarmentCategory.top, flt=ProductFilter(max_price=25), min_products=2
    )
    assert set(cheap.tolist()) == {vid("T1"), vid("T2")}
    assert category_allowed_ids(searcher, GarmentCategory.footwear, min_products=2) is None  # one product
    only = np.asarray([vid("T1"), vid("B1")])
    assert category_allowed_ids(searcher, GarmentCategory.top, allowed_ids=only, min_products=1).tolist() == [
        vid("T1")
    ]


def test_restrict_applies_relaxes_or_leaves_alone(searcher) -> None:
    emb = np.zeros(2, np.float32)
    top = infer_category(FixedTypes(GarmentCategory.top, 0.9), emb, 0.6)
    inferred, ids = restrict_to_image_category(searcher, top)
    assert inferred.applied and not inferred.relaxed and len(ids) == 3
    shoes = infer_category(FixedTypes(GarmentCategory.footwear, 0.9), emb, 0.6)
    inferred, ids = restrict_to_image_category(searcher, shoes, allowed_ids=np.asarray([vid("S1")]))
    assert inferred.relaxed and not inferred.applied and ids.tolist() == [vid("S1")]
    unsure = infer_category(FixedTypes(GarmentCategory.top, 0.3), emb, 0.6)
    inferred, ids = restrict_to_image_category(searcher, unsure)
    assert not inferred.applied and not inferred.relaxed and ids is None


def test_the_eval_restrictor_restricts_image_queries_only(searcher) -> None:
    stats = RestrictionStats()
    restrict = eval_restrictor(searcher, FixedTypes(GarmentCategory.bottom, 0.8), 0.6, stats)
    text = Query(text="tee")
    assert restrict(text, searcher.encode(text), None) is None
    q = Query(image=Image.new("RGB", (4, 4), (10, 10, 10)))
    ids = restrict(q, searcher.encode(q), None)
    assert set(ids.tolist()) == {vid("B1"), vid("B2")}
    page = searcher.search(q, k=5, allowed_ids=ids)
    assert {h.product.id for h in page.hits} == {"B1", "B2"}
    assert stats.as_json() == {"image_queries": 1, "confident": 1, "applied": 1, "relaxed": 0}
