"""Searcher.search_text: parsed constraints filter inside the index search, relevance floor."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence

import numpy as np
import pytest

from fittingroom.catalog.models import GarmentCategory, ImageRecord, Product, vector_id_for
from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.catalog.store import ProductFilter
from fittingroom.index import VectorIndex, sync_index
from fittingroom.models.encoders.base import Query, l2_normalize
from fittingroom.retrieval.search import Searcher

WORDS = ["red", "blue", "black", "hoodie", "tee", "jacket", "mug", "juice"]


class WordEncoder:
    """Bag of words over ``WORDS`` (plus a constant), so a word finds the products titled with it."""

    name = "fake-words"
    dim = len(WORDS) + 1

    def embed(self, text: str) -> np.ndarray:
        words = text.lower().split()
        return np.asarray([words.count(w) for w in WORDS] + [0.3], np.float32)

    def query_vectors(self, queries: Sequence[Query]) -> np.ndarray:
        return l2_normalize(np.stack([self.embed(q.text or "") for q in queries]))


SPECS = [
    # id, title, garment category, gender, price
    ("H1", "Red hoodie", GarmentCategory.top, "men", 30.0),
    ("H2", "Red hoodie deluxe", GarmentCategory.top, "men", 90.0),
    ("H3", "Blue hoodie", GarmentCategory.top, "women", 45.0),
    ("H4", "Black hoodie", GarmentCategory.top, None, 25.0),
    ("T1", "Red tee", GarmentCategory.top, "women", 15.0),
    ("J1", "Red jacket", GarmentCategory.outerwear, "men", 60.0),
    ("M1", "Red hoodie mug", GarmentCategory.other, None, 9.0),
    ("M2", "Juice", GarmentCategory.other, None, 2.0),
]


def spec_products() -> list[Product]:
    products = []
    for pid, title, garment, gender, price in SPECS:
        sha = f"{pid:0>64}"
        products.append(
            Product(
                source="t",
                id=pid,
                title=title,
                garment_category=garment,
                category_path=["Shop", garment.value],
                gender=gender,
                price=price,
                currency="USD",
                images=[ImageRecord(url=f"{pid}.png", sha256=sha, vector_id=vector_id_for("t", pid, sha))],
            )
        )
    return products


def word_searcher(tmp_path, products: list[Product]) -> Searcher:
    """A ``Searcher`` over ``products`` (one image each, embedded from the title by ``WordEncoder``)."""
    store = SQLiteStore(tmp_path / "c.db")
    enc = WordEncoder()
    store.upsert_products(products)
    vids = [p.images[0].vector_id for p in products]
    store.put_embeddings(enc.name, vids, l2_normalize(np.stack([enc.embed(p.title) for p in products])))
    sync_index(store, enc.name, tmp_path / "index")
    return Searcher(store, VectorIndex.open(tmp_path / "index", enc.name), enc)


@pytest.fixture()
def searcher(tmp_path):
    s = word_searcher(tmp_path, spec_products())
    yield s
    s.store.close()


def ids(page) -> list[str]:
    return [h.product.id for h in page.hits]


def test_a_parsed_price_bound_never_returns_items_above_it(searcher) -> None:
    unfiltered = ids(searcher.search(Query(text="red hoodie"), k=8))
    assert "H2" in unfiltered[:3]  # the 90-dollar hoodie would rank near the top
    for text, bound in [("red hoodie under $50", 50.0), ("red hoodie less than 26", 26.0)]:
        page = searcher.search_text(text, k=8)
        assert page.hits and all(h.product.price <= bound for h in page.hits)
    page = searcher.search_text("red hoodie under $50", k=8)
    assert ids(page)[0] == "H1" and "H2" not in ids(page)
    # the filter is inside the index search: the page is filled from the allowed products
    assert set(ids(page)) == {"H1", "H3", "H4", "T1"}


def test_garment_queries_never_return_non_apparel(searcher) -> None:
    page = searcher.search_text("red hoodie", k=8)
    assert "M1" not in ids(page) and "M2" not in ids(page)
    assert all(h.product.garment_category is GarmentCategory.top for h in page.hits)
    assert "M1" in ids(searcher.search(Query(text="red hoodie"), k=8))  # without understanding it is there


def test_gender_filter_keeps_unknown_gender(searcher) -> None:
    page = searcher.search_text("hoodie for women", k=8)
    # women's tops (the category is the garment category) and unknown gender; no men's
    assert set(ids(page)) == {"H3", "H4", "T1"}


def test_typo_is_corrected_before_embedding(searcher) -> None:
    page = searcher.search_text("red hoddie", k=3)
    assert page.parsed is not None and page.parsed.corrected_text == "red hoodie"
    assert page.parsed.residual == "red hoodie"
    assert ids(page)[0] == "H1"


def test_relevance_floor_labels_hits_and_no_good_match(searcher) -> None:
    searcher.text_relevance_floor = 0.8
    page = searcher.search_text("red hoodie", k=8)
    assert page.hits[0].match == "good" and page.hits[-1].match == "weak"
    assert not page.no_good_match and page.relevance_floor == 0.8
    page = searcher.search_text("juice tee", k=3)  # nothing is both: every hit is below the floor
    assert page.hits and all(h.match == "weak" for h in page.hits) and page.no_good_match
    nothing = searcher.search_text("jacket under $10", k=3)  # no product satisfies the constraints
    assert nothing.hits == [] and nothing.no_good_match


def test_vocabulary_is_rebuilt_for_a_new_catalog_generation(searcher) -> None:
    parser, facets = searcher.understanding()
    assert searcher.understanding()[0] is parser  # cached
    p = searcher.store.get_product("t", "M2")
    assert p is not None
    searcher.store.delete_products([("t", "M2")])
    assert searcher.understanding()[1] is not facets and len(searcher.understanding()[1]) == len(facets) - 1


def test_a_colour_filters_when_a_page_matches_else_is_relaxed(searcher) -> None:
    searcher.color_filter_min = 3
    page = searcher.search_text("red hoodie", k=5)  # red tops: H1, H2, T1
    assert set(ids(page)) == {"H1", "H2", "T1"} and page.relaxed == []
    searcher.color_filter_min = 4
    wide = searcher.search_text("red hoodie", k=5)  # fewer than a page of red tops: ranks only
    assert wide.relaxed == ["color"]
    assert {"H3", "H4"} & set(ids(wide))  # other colours fill the page
    assert ids(wide)[0] in {"H1", "H2"}  # the colour still ranks first
    assert searcher.search_text("hoodie", k=5).relaxed == []  # no colour named: nothing relaxed
    searcher.color_filter_min = 3
    # the explicit filters count too: red tops up to 40 are H1 and T1 only, fewer than a page
    cheap = searcher.search_text("red hoodie", k=5, flt=ProductFilter(max_price=40))
    assert cheap.relaxed == ["color"] and "H4" in ids(cheap)


def crawled(pid: str, title: str, price: float, **image_fields) -> Product:
    """A crawled product nothing describes (no category, no path, a title naming no garment)."""
    sha = f"{pid:0>64}"
    return Product(
        source="t",
        id=pid,
        title=title,
        price=price,
        currency="USD",
        images=[
            ImageRecord(url=f"{pid}.png", sha256=sha, vector_id=vector_id_for("t", pid, sha), **image_fields)
        ],
    )


def test_a_classified_non_garment_never_passes_a_category_under_the_colour_filter(tmp_path) -> None:
    """Query "black hoodie under 60" with the colour filter on: a black bag the feed does not describe
    but the classifier reads (a bag, or no garment photo at all) is not a hoodie; an unclassified
    one stays (unknown, ranked by the embedding); one the classifier reads as a top is a top."""
    from fittingroom.catalog.models import PhotoType

    extra = [
        crawled(
            "B1",
            "Black weekender",
            40.0,
            garment_category_pred=GarmentCategory.bag_accessory,
            photo_type=PhotoType.product_only,
        ),
        crawled(
            "B2", "Black keyring", 5.0, photo_type=PhotoType.other, garment_category_pred=GarmentCategory.top
        ),
        crawled(
            "B3",
            "Black classic",
            30.0,
            garment_category_pred=GarmentCategory.top,
            photo_type=PhotoType.on_model,
        ),
        crawled("B4", "Black gerald", 20.0),  # not classified
    ]
    searcher = word_searcher(tmp_path, spec_products() + extra)
    searcher.color_filter_min = 2  # black tops under 60: H4, B3 (+ the unknown B4): a page
    page = searcher.search_text("black hoodie under 60", k=8)
    assert page.relaxed == [] and page.parsed is not None
    assert ids(page)[0] == "H4"
    assert "B1" not in ids(page) and "B2" not in ids(page)
    assert set(ids(page)) == {"H4", "B3", "B4"}
    searcher.color_filter_min = 10  # relaxed: ranks by colour, the category still filters
    wide = searcher.search_text("black hoodie under 60", k=8)
    assert wide.relaxed == ["color"] and "B1" not in ids(wide) and "B2" not in ids(wide)
    # the apparel gate (gender, no category) drops the keyring the classifier finds no garment
    assert "B2" not in ids(searcher.search_text("black for men", k=12))
    assert "B2" in ids(searcher.search(Query(text="black"), k=12))  # without understanding it is there
    searcher.store.close()


class HashedWords:
    """Hashed bag of words (64 dims) of a product title plus its image's colour."""

    name = "fake-hashed-words"
    dim = 64

    def embed(self, text: str) -> np.ndarray:
        v = np.full(self.dim, 0.05, np.float32)
        for w in text.lower().split():
            v[zlib.crc32(w.encode()) % self.dim] += 1.0
        return v

    def query_vectors(self, queries: Sequence[Query]) -> np.ndarray:
        return l2_normalize(np.stack([self.embed(q.text or "") for q in queries]))


@pytest.mark.real_data
def test_black_hoodie_under_60_on_the_luma_and_saleor_catalogs(tmp_path) -> None:
    from catalog_ingest.mapper import FeedMapper
    from catalog_ingest.readers import read_feed
    from fittingroom.retrieval.constraints import CatalogFacets, product_garment
    from fittingroom.retrieval.lexicon import QueryLexicon
    from fittingroom.settings import CoreSettings

    shared = CoreSettings().shared_data
    feeds = {
        "luma": shared / "luma-catalog" / "products.jsonl",
        "saleor": shared / "saleor-catalog" / "products.jsonl",
    }
    if not all(f.exists() for f in feeds.values()):
        pytest.skip(f"{shared}: Luma / Saleor feeds not found")
    drafts = [d for source, feed in feeds.items() for d in FeedMapper(source).map_records(read_feed(feed))[0]]
    products = []
    for d in drafts:
        p = d.product
        images = []
        for ref in d.images:
            sha = hashlib.sha256(ref.url.encode()).hexdigest()
            images.append(
                ImageRecord(
                    url=ref.url,
                    sha256=sha,
                    vector_id=vector_id_for(p.source, p.id, sha),
                    color=ref.color,
                    is_main=ref.is_main,
                )
            )
        products.append(p.model_copy(update={"images": images}))
    store = SQLiteStore(tmp_path / "c.db")
    enc = HashedWords()
    store.upsert_products(products)
    vids = [img.vector_id for p in products for img in p.images]
    docs = [f"{p.title} {img.color or ''}" for p in products for img in p.images]
    store.put_embeddings(enc.name, vids, l2_normalize(np.stack([enc.embed(t) for t in docs])))
    sync_index(store, enc.name, tmp_path / "index")
    searcher = Searcher(store, VectorIndex.open(tmp_path / "index", enc.name), enc)
    lexicon = QueryLexicon.from_products(products)
    try:
        page = searcher.search_text("black hoodie under 60", k=6)
        assert len(page.hits) == 6 and page.relaxed == []  # Luma has 10+ black hoodies under 60
        assert all(h.product.price is not None and h.product.price <= 60 for h in page.hits)
        if not page.relaxed:
            # the hit's image is a black variant (or, without a variant colour, the product is black)
            fams = [CatalogFacets.from_products([h.product], lexicon) for h in page.hits]
            for h, f in zip(page.hits, fams, strict=True):
                row = int(np.flatnonzero(f.vector_ids == h.image.vector_id)[0])
                assert row in set(f.index.get(("color", "black"), np.empty(0)).tolist()), (
                    h.product.title,
                    h.image.color,
                )
        else:
            assert page.relaxed == ["color"]
        # as the page asks (24 a page, two pages): tops only, no bag, mug or juice of either shop
        for offset in (0, 24):
            more = searcher.search_text("black hoodie under 60", k=24, offset=offset)
            assert all(product_garment(h.product) is GarmentCategory.top for h in more.hits), [
                (h.product.title, product_garment(h.product).value) for h in more.hits
            ]
    finally:
        store.close()


def test_an_image_colour_moves_matching_products_ahead_within_its_margin(searcher) -> None:
    # "Black hoodie" scores a little above "Blue hoodie" (less than the 0.02 colour margin)
    q = np.zeros(len(WORDS) + 1, np.float32)
    q[WORDS.index("hoodie")], q[WORDS.index("black")], q[WORDS.index("blue")] = 1.0, 0.02, 0.01
    q = l2_normalize(q[None])[0]
    plain = searcher.search(vector=q, k=3)
    assert ids(plain)[:2] == ["H4", "H3"]  # the embedding's order
    assert plain.hits[0].score - plain.hits[1].score < searcher.color_boost
    blue = searcher.search(vector=q, k=3, prefer_color="blue")
    assert ids(blue)[:2] == ["H3", "H4"]  # the blue one first
    assert [h.score for h in blue.hits[:2]] == [plain.hits[1].score, plain.hits[0].score]  # raw scores
    searcher.color_boost = 0.001  # a margin smaller than the gap: no jump
    assert ids(searcher.search(vector=q, k=3, prefer_color="blue"))[:2] == ["H4", "H3"]
    searcher.color_boost = 0.0
    assert ids(searcher.search(vector=q, k=3, prefer_color="blue"))[:2] == ["H4", "H3"]
