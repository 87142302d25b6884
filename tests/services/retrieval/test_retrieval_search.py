"""Searcher: grouping per product, candidate expansion, stale index entries, more-like-this."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from retrieval_fakes import COLORS, ColorEncoder, make_catalog

from fittingroom.catalog.models import ImageRecord, Product, tryon_image, vector_id_for
from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.catalog.store import ProductFilter
from fittingroom.index import VectorIndex, sync_index
from fittingroom.models.encoders.base import Query, l2_normalize
from fittingroom.retrieval.search import (
    NoIndexedImageError,
    ProductNotFoundError,
    Searcher,
    main_image,
)


@pytest.fixture()
def setup(tmp_path):
    store = SQLiteStore(tmp_path / "c.db")
    enc = ColorEncoder()
    make_catalog(store, enc, tmp_path / "img")
    sync_index(store, enc.name, tmp_path / "index")
    yield store, enc, tmp_path / "index"
    store.close()


def test_expands_candidates_when_products_have_many_images(tmp_path):
    """One product owns 30 red images: with multiplier 1 the first fetch sees one product only."""
    store = SQLiteStore(tmp_path / "c.db")
    enc = ColorEncoder()
    red = enc.document_vectors([Image.new("RGB", (4, 4), COLORS["red"])], ["red"])[0]
    products, vecs, ids = [], [], []
    for pid, n in [("MANY", 30), ("A", 1), ("B", 1), ("C", 1)]:
        imgs = []
        for j in range(n):
            sha = f"{pid}{j}".encode().hex().ljust(64, "0")
            vid = vector_id_for("s", pid, sha)
            imgs.append(ImageRecord(url=f"/{pid}/{j}", sha256=sha, vector_id=vid))
            v = red.copy()
            v[4] -= 0.001 * j if pid == "MANY" else 0.3  # MANY's images are all closer to "red"
            vecs.append(l2_normalize(v))
            ids.append(vid)
        products.append(Product(source="s", id=pid, title=pid, images=imgs))
    store.upsert_products(products)
    store.put_embeddings(enc.name, ids, np.stack(vecs))
    sync_index(store, enc.name, tmp_path / "index")
    searcher = Searcher(store, VectorIndex.open(tmp_path / "index", enc.name), enc, candidate_multiplier=1)
    page = searcher.search(Query(text="red"), k=3)
    assert [h.product.id for h in page.hits][0] == "MANY"
    assert len(page.hits) == 3 and len({h.product.uid for h in page.hits}) == 3
    assert page.has_more
    store.close()


def test_stale_index_entries_are_skipped(setup):
    store, enc, index_dir = setup
    index = VectorIndex.open(index_dir, enc.name)
    store.delete_products([("test", "T1")])  # deleted after the index was saved
    page = Searcher(store, index, enc).search(Query(text="red"), k=10)
    assert "test:T1" not in {h.product.uid for h in page.hits}
    assert len(page.hits) == 7


def test_filters_and_exclude(setup):
    store, enc, index_dir = setup
    s = Searcher(store, VectorIndex.open(index_dir, enc.name), enc)
    page = s.search(Query(text="red"), k=10, flt=ProductFilter(category="Tops"), exclude={"test:H1"})
    got = {h.product.uid for h in page.hits}
    assert got == {"test:T1", "test:T2", "test:T3", "test:J1", "test:J2"}
    assert not page.has_more and page.next_offset is None
    assert s.search(Query(text="red"), k=3, flt=ProductFilter(brand="nobody")).hits == []


def test_precomputed_vector_and_timings(setup):
    store, enc, index_dir = setup
    s = Searcher(store, VectorIndex.open(index_dir, enc.name), enc)
    v = enc.query_vectors([Query(text="green")])[0]
    before = enc.calls
    page = s.search(vector=v, k=2)
    assert {h.product.id for h in page.hits} == {"T2", "J2"}
    assert enc.calls == before  # no encoding for a precomputed vector
    assert {"encode", "filter", "search", "fetch", "total"} <= set(page.timings_ms)
    with pytest.raises(ValueError):
        s.search(k=2)


def test_more_like_this_errors(setup, tmp_path):
    store, enc, index_dir = setup
    s = Searcher(store, VectorIndex.open(index_dir, enc.name), enc)
    with pytest.raises(ProductNotFoundError):
        s.more_like_this("test:NOPE")
    with pytest.raises(ValueError, match="source:id"):
        s.more_like_this("nocolon")
    store.upsert_products([Product(source="test", id="NOIMG", title="x")])
    with pytest.raises(NoIndexedImageError):
        s.more_like_this("test:NOIMG")
    page = s.more_like_this("test:H1", k=10)
    assert "test:H1" not in {h.product.uid for h in page.hits} and len(page.hits) == 7


def test_main_and_tryon_image_choice():
    a = ImageRecord(url="a", sha256="a" * 64, vector_id=1, tryon_eligible=False)
    b = ImageRecord(
        url="b", sha256="b" * 64, vector_id=2, is_main=True, tryon_eligible=True, tryon_eligible_prob=0.6
    )
    c = ImageRecord(url="c", sha256="c" * 64, vector_id=3, tryon_eligible=True, tryon_eligible_prob=0.9)
    p = Product(source="s", id="x", title="x", images=[a, b, c])
    assert main_image(p) is b
    assert tryon_image(p, b) is b  # the matching image when it is eligible
    assert tryon_image(p, a) is c  # else the most confident eligible one
    assert tryon_image(Product(source="s", id="y", title="y", images=[a]), a) is None


class ExpandingEncoder(ColorEncoder):
    """Asks for a second pass; expand_query swaps the query for the mean of the neighbours."""

    expansion_neighbors = 2

    def __init__(self) -> None:
        super().__init__()
        self.expanded: list[tuple[np.ndarray, np.ndarray]] = []

    def expand_query(self, query, query_vector, neighbor_vectors, neighbor_scores=None):
        self.expanded.append((neighbor_vectors, neighbor_scores))
        return l2_normalize(self.embed_texts(["green"])[0] * 0 + neighbor_vectors.mean(axis=0))


def test_pseudo_relevance_feedback_second_pass(setup):
    store, _, index_dir = setup
    enc = ExpandingEncoder()
    enc.name = "fake-color"  # same stored vectors
    index = VectorIndex.open(index_dir, enc.name)
    s = Searcher(store, index, enc)
    red = Image.new("RGB", (8, 8), COLORS["red"])
    page = s.search(Query(image=red), k=3, flt=ProductFilter(category="Tees"))
    assert len(enc.expanded) == 1
    nv, ns = enc.expanded[0]
    assert nv.shape == (2, enc.dim) and ns.shape == (2,) and ns[0] >= ns[1]
    # neighbours are document vectors of first-pass hits *within the filter* (tees only)
    tee_ids = store.vector_ids_matching(ProductFilter(category="Tees"))
    stored = store.get_embeddings(enc.name, tee_ids.tolist())
    assert any(np.allclose(nv[0], v, atol=1e-6) for v in stored.values())
    assert {h.product.uid for h in page.hits} <= {"test:T1", "test:T2", "test:T3"}
    assert "expand" in page.timings_ms
    # text queries and precomputed vectors without a query skip the second pass
    s.search(Query(text="red"), k=3)
    s.search(vector=enc.query_vectors([Query(text="red")])[0], k=3)
    assert len(enc.expanded) == 1
