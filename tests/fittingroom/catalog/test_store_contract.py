"""One contract suite for every ``CatalogStore`` implementation.

Runs against:

* ``sqlite``: the embedded ``SQLiteStore`` (always);
* ``mongomock``: ``MongoStore`` on a ``mongomock`` client. mongomock is an in-memory
  *stand-in* that exercises MongoStore's code paths (queries, bulk writes, BinData
  handling); it is not a MongoDB server and proves nothing about server behaviour
  (transactions, index use);
* ``mongodb``: ``MongoStore`` against a real server when the environment variable
  ``MONGODB_URI`` is set (marked ``mongodb``; skipped otherwise). Each test uses a
  fresh database that is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from fittingroom.catalog.models import GarmentCategory, ImageRecord, PhotoType, Product, vector_id_for
from fittingroom.catalog.store import CatalogStore, ProductFilter

T0 = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)


def _sqlite(tmp_path) -> Iterator[CatalogStore]:
    from fittingroom.catalog.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "catalog.db")
    yield store
    store.close()


def _drop_sort(method):
    """mongomock 4.3's bulk builder predates pymongo 4.11's ``sort`` argument of ReplaceOne/UpdateOne."""

    def wrapper(self, *args, sort=None, **kwargs):
        assert sort is None
        return method(self, *args, **kwargs)

    return wrapper


def _mongomock(tmp_path) -> Iterator[CatalogStore]:
    mongomock = pytest.importorskip("mongomock")
    from fittingroom.catalog.mongo import MongoStore

    builder = mongomock.collection.BulkOperationBuilder
    with pytest.MonkeyPatch.context() as mp:
        for name in ("add_replace", "add_update"):
            mp.setattr(builder, name, _drop_sort(getattr(builder, name)))
        store = MongoStore(client=mongomock.MongoClient(tz_aware=True), database="contract")
        yield store
        store.close()


def _mongodb(tmp_path) -> Iterator[CatalogStore]:
    uri = os.environ.get("MONGODB_URI")
    if not uri:
        pytest.skip("MONGODB_URI is not set: no MongoDB server to test against")
    from pymongo import MongoClient

    from fittingroom.catalog.mongo import MongoStore

    client: MongoClient = MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000)
    name = f"fittingroom_test_{uuid.uuid4().hex[:12]}"
    store = MongoStore(client=client, database=name)
    try:
        yield store
    finally:
        client.drop_database(name)
        client.close()


@pytest.fixture(
    params=[
        pytest.param(_sqlite, id="sqlite"),
        pytest.param(_mongomock, id="mongomock"),
        pytest.param(_mongodb, id="mongodb", marks=pytest.mark.mongodb),
    ]
)
def store(request, tmp_path) -> Iterator[CatalogStore]:
    yield from request.param(tmp_path)


def img(source: str, pid: str, n: int, color: str | None = None, *, main: bool = False) -> ImageRecord:
    sha = f"{pid}-{n}".encode().hex().ljust(64, "0")[:64]
    return ImageRecord(
        url=f"https://shop.example/{pid}/{n}.jpg",
        sha256=sha,
        vector_id=vector_id_for(source, pid, sha),
        color=color,
        width=800,
        height=1000,
        is_main=main,
    )


def product(pid: str, *, source: str = "shop", n_images: int = 2, **kw) -> Product:
    fields = dict(
        source=source,
        id=pid,
        title=f"Product {pid}",
        description="A garment.",
        link=f"https://shop.example/{pid}",
        brand="Luma",
        price=50.0,
        currency="USD",
        category_path=["Men", "Tops", "Tees"],
        garment_category=GarmentCategory.top,
        colors=["Black", "Gray"],
        sizes=["S", "M"],
        gender="men",
        attributes={"material": "Cotton"},
        images=[img(source, pid, i, "Black" if i % 2 == 0 else "Gray", main=i == 0) for i in range(n_images)],
        created_at=T0,
        updated_at=T0,
    )
    fields.update(kw)
    return Product(**fields)


def vids(p: Product) -> list[int]:
    return [i.vector_id for i in p.images]


def matching(store: CatalogStore, **kw) -> set[int]:
    ids = store.vector_ids_matching(ProductFilter(**kw))
    assert ids.dtype == np.int64
    return set(ids.tolist())


# ---- products -----------------------------------------------------------------------


def test_upsert_then_get_round_trips_every_field(store: CatalogStore) -> None:
    p = product("A1", n_images=3)
    p.images[1].photo_type = PhotoType.on_model
    p.images[1].photo_type_probs = {"on_model": 0.9, "product_only": 0.1}
    p.images[1].tryon_eligible = False
    p.images[1].tryon_eligible_prob = 0.25
    store.upsert_products([p])
    got = store.get_product("shop", "A1")
    assert got is not None
    assert got.model_dump() == Product.model_validate(p.model_dump()).model_dump()
    assert got.created_at == T0 and got.created_at.tzinfo is not None
    assert store.get_product("shop", "missing") is None
    assert store.get_product("other", "A1") is None


def test_timestamps_survive_within_a_millisecond(store: CatalogStore) -> None:
    now = datetime.now(UTC)
    store.upsert_products([product("T", created_at=now, updated_at=now)])
    got = store.get_product("shop", "T")
    assert got is not None
    assert abs(got.updated_at - now) < timedelta(milliseconds=1)


def test_upsert_replaces_the_whole_document(store: CatalogStore) -> None:
    old = product("A1", n_images=3, brand="Old", attributes={"a": "1", "b": "2"})
    store.upsert_products([old])
    store.put_embeddings("enc", vids(old), np.ones((3, 4), np.float32))
    new = product(
        "A1", n_images=2, brand="New", title="Renamed", attributes={"a": "9"}, category_path=["Bags"]
    )
    store.upsert_products([new])
    got = store.get_product("shop", "A1")
    assert got is not None
    assert got.title == "Renamed" and got.brand == "New"
    assert got.attributes == {"a": "9"}
    assert vids(got) == vids(new)
    assert store.count_products() == 1
    # the image no longer in the product loses its embedding, kept images keep theirs
    assert store.embedding_ids("enc") == set(vids(new))
    assert store.products_by_vector_ids(vids(old)).keys() == set(vids(new))
    # derived filter data follows the new version
    assert matching(store, brand="old") == set()
    assert matching(store, brand="new") == set(vids(new))
    assert matching(store, category="Tees") == set()
    assert matching(store, category="bags") == set(vids(new))


def test_upsert_batch_is_all_or_nothing(store: CatalogStore) -> None:
    existing = product("E", title="Original")
    store.upsert_products([existing])
    bad = product("BAD")
    bad.attributes["x"] = object()  # type: ignore[assignment]  # cannot be serialised
    with pytest.raises(Exception):  # noqa: B017 - the serialiser's own error type
        store.upsert_products([product("NEW"), product("E", title="Changed"), bad])
    assert store.get_product("shop", "NEW") is None
    got = store.get_product("shop", "E")
    assert got is not None and got.title == "Original"
    assert store.count_products() == 1


def test_same_image_twice_in_one_product_is_rejected(store: CatalogStore) -> None:
    p = product("D", n_images=1)
    p.images.append(p.images[0].model_copy())
    with pytest.raises(ValueError, match="twice"):
        store.upsert_products([p])
    assert store.count_products() == 0


def test_get_many(store: CatalogStore) -> None:
    store.upsert_products([product(f"P{i}") for i in range(30)] + [product("P0", source="other")])
    keys = [("shop", f"P{i}") for i in range(0, 30, 3)] + [("shop", "nope"), ("other", "P0"), ("shop", "P0")]
    got = store.get_products(keys)
    assert set(got) == {("shop", f"P{i}") for i in range(0, 30, 3)} | {("other", "P0")}
    assert all(p.source == s and p.id == i for (s, i), p in got.items())
    assert store.get_products([]) == {}


def test_keys_count_and_iteration_per_source(store: CatalogStore) -> None:
    store.upsert_products([product("A"), product("B"), product("C", source="other")])
    assert store.count_products() == 3
    assert store.count_products("shop") == 2
    assert store.count_products("nope") == 0
    assert store.product_keys() == {("shop", "A"), ("shop", "B"), ("other", "C")}
    assert store.product_keys("other") == {("other", "C")}
    assert {p.uid for p in store.iter_products()} == {"shop:A", "shop:B", "other:C"}
    assert [p.uid for p in store.iter_products("other")] == ["other:C"]


def test_delete_cascades_embeddings(store: CatalogStore) -> None:
    a, b = product("A", n_images=3), product("B", n_images=2)
    store.upsert_products([a, b])
    for enc in ("enc1", "enc2"):
        store.put_embeddings(enc, vids(a) + vids(b), np.ones((5, 3), np.float32))
    assert store.delete_products([("shop", "A"), ("shop", "missing")]) == 1
    assert store.get_product("shop", "A") is None
    assert store.get_product("shop", "B") is not None
    for enc in ("enc1", "enc2"):
        assert store.embedding_ids(enc) == set(vids(b))
    assert store.products_by_vector_ids(vids(a)) == {}
    assert matching(store) == set(vids(b))
    assert store.delete_products([]) == 0


def test_products_by_vector_ids(store: CatalogStore) -> None:
    a, b = product("A", n_images=2), product("B", n_images=3)
    store.upsert_products([a, b])
    got = store.products_by_vector_ids([*vids(b), vids(a)[1], 12345, vids(b)[0]])
    assert set(got) == set(vids(b)) | {vids(a)[1]}
    assert {v: p.id for v, p in got.items()} == {**{v: "B" for v in vids(b)}, vids(a)[1]: "A"}
    assert store.products_by_vector_ids([]) == {}


# ---- filters -------------------------------------------------------------------------


@pytest.fixture
def filter_catalog(store: CatalogStore) -> dict[str, Product]:
    ps = {
        "tee": product(
            "tee",
            price=20.0,
            brand="Luma",
            category_path=["Men", "Tops", "Tees"],
            garment_category=GarmentCategory.top,
            tryon_eligible=True,
        ),
        "jacket": product(
            "jacket",
            price=80.0,
            brand="Acme Outdoor",
            category_path=["Women", "Tops", "Jackets"],
            garment_category=GarmentCategory.outerwear,
            tryon_eligible=False,
        ),
        "bag": product(
            "bag",
            price=50.0,
            brand="LUMA",
            category_path=["Gear", "Bags"],
            garment_category=GarmentCategory.bag_accessory,
            tryon_eligible=None,
        ),
        "noprice": product(
            "noprice", price=None, currency=None, brand=None, category_path=[], garment_category=None
        ),
        "other": product(
            "other",
            source="shop2",
            price=20.0,
            brand="Luma",
            category_path=["Men", "Tops", "Tees"],
            garment_category=GarmentCategory.top,
            tryon_eligible=True,
        ),
    }
    store.upsert_products(list(ps.values()))
    return ps


def _ids(ps: dict[str, Product], *names: str) -> set[int]:
    return {v for n in names for v in vids(ps[n])}


def test_filter_empty_matches_everything(store: CatalogStore, filter_catalog) -> None:
    assert matching(store) == _ids(filter_catalog, *filter_catalog)


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("Tees", ["tee", "other"]),  # path element
        ("men", ["tee", "other"]),  # root prefix, case-insensitive
        ("Men/Tops", ["tee", "other"]),  # prefix
        ("Men > Tops > Tees", ["tee", "other"]),  # '>' separator
        ("tops", ["tee", "other", "jacket"]),  # inner element
        ("Tops/Jackets", ["jacket"]),  # contiguous sub-path
        ("Men/Tees", []),  # not contiguous
        ("outerwear", ["jacket"]),  # garment_category
        ("bag_accessory", ["bag"]),
        ("Shoes", []),
    ],
)
def test_filter_category(store: CatalogStore, filter_catalog, category: str, expected: list[str]) -> None:
    assert matching(store, category=category) == _ids(filter_catalog, *expected)


def test_filter_brand_is_case_insensitive(store: CatalogStore, filter_catalog) -> None:
    assert matching(store, brand="luma") == _ids(filter_catalog, "tee", "bag", "other")
    assert matching(store, brand=" acme  OUTDOOR") == _ids(filter_catalog, "jacket")
    assert matching(store, brand="nobody") == set()


def test_filter_price_range_is_inclusive_and_skips_unpriced(store: CatalogStore, filter_catalog) -> None:
    assert matching(store, min_price=50) == _ids(filter_catalog, "jacket", "bag")
    assert matching(store, max_price=50) == _ids(filter_catalog, "tee", "bag", "other")
    assert matching(store, min_price=20.0, max_price=20.0) == _ids(filter_catalog, "tee", "other")
    assert matching(store, min_price=81) == set()


def test_filter_tryon_eligible(store: CatalogStore, filter_catalog) -> None:
    assert matching(store, tryon_eligible=True) == _ids(filter_catalog, "tee", "other")
    assert matching(store, tryon_eligible=False) == _ids(filter_catalog, "jacket")


def test_filter_source(store: CatalogStore, filter_catalog) -> None:
    assert matching(store, source="shop2") == _ids(filter_catalog, "other")
    assert matching(store, source="shop") == _ids(filter_catalog, "tee", "jacket", "bag", "noprice")


def test_filters_combine_with_and(store: CatalogStore, filter_catalog) -> None:
    assert matching(store, category="tops", brand="luma", max_price=30, source="shop") == _ids(
        filter_catalog, "tee"
    )
    assert matching(store, category="tops", tryon_eligible=False, min_price=10) == _ids(
        filter_catalog, "jacket"
    )
    assert matching(store, category="bags", tryon_eligible=True) == set()


# ---- embeddings ----------------------------------------------------------------------


def test_embeddings_round_trip_float32_exactly(store: CatalogStore) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((7, 33)).astype(np.float32)
    vecs[0, :4] = [np.finfo(np.float32).tiny, -0.0, np.finfo(np.float32).max, 1e-45]
    ids = [vector_id_for("s", f"p{i}", "x") for i in range(7)]
    store.put_embeddings("enc", ids, vecs)
    got = store.get_embeddings("enc", [*ids, 999])
    assert set(got) == set(ids)
    for i, v in enumerate(ids):
        assert got[v].dtype == np.float32 and got[v].shape == (33,)
        assert got[v].tobytes() == vecs[i].tobytes()
    assert store.get_embeddings("other-encoder", ids) == {}


def test_embeddings_are_namespaced_per_encoder_and_replaced(store: CatalogStore) -> None:
    store.put_embeddings("a", [1, 2], np.zeros((2, 4), np.float32))
    store.put_embeddings("b", [2, 3], np.ones((2, 8), np.float32))
    assert store.embedding_ids("a") == {1, 2}
    assert store.embedding_ids("b") == {2, 3}
    store.put_embeddings("a", [2], np.full((1, 4), 7, np.float32))
    assert store.get_embeddings("a", [2])[2].tolist() == [7, 7, 7, 7]
    assert store.get_embeddings("b", [2])[2].tolist() == [1] * 8
    with pytest.raises(ValueError, match="4-d"):
        store.put_embeddings("a", [5], np.zeros((1, 5), np.float32))
    with pytest.raises(ValueError, match="shape"):
        store.put_embeddings("a", [5, 6], np.zeros((1, 4), np.float32))
    store.delete_embeddings("a", [1, 99])
    assert store.embedding_ids("a") == {2}
    assert store.embedding_ids("b") == {2, 3}


def test_iter_embeddings_batches(store: CatalogStore) -> None:
    rng = np.random.default_rng(1)
    ids = [int(x) for x in rng.choice(2**62, size=10, replace=False)]
    vecs = rng.standard_normal((10, 6)).astype(np.float32)
    store.put_embeddings("enc", ids, vecs)
    store.put_embeddings("other", [5], np.zeros((1, 2), np.float32))
    batches = list(store.iter_embeddings("enc", batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    seen: dict[int, np.ndarray] = {}
    for b_ids, b_vecs in batches:
        assert b_ids.dtype == np.int64 and b_vecs.dtype == np.float32
        assert b_vecs.shape == (len(b_ids), 6)
        seen.update(zip(b_ids.tolist(), b_vecs, strict=True))
    assert set(seen) == set(ids)
    for i, v in enumerate(ids):
        assert np.array_equal(seen[v], vecs[i])
    assert list(store.iter_embeddings("never-written")) == []


# ---- sources and jobs ---------------------------------------------------------------


def test_source_counts(store: CatalogStore) -> None:
    assert store.source_counts() == {}
    store.upsert_products([product("A"), product("B"), product("C", source="other")])
    assert store.source_counts() == {"other": 1, "shop": 2}
    store.delete_products([("other", "C")])
    assert store.source_counts() == {"shop": 2}


def _classified(p: Product, *marks: dict) -> Product:
    """``p`` with its images' classifier fields set from ``marks`` (one dict per image)."""
    images = [im.model_copy(update=m) for im, m in zip(p.images, marks, strict=True)]
    return Product.model_validate({**p.model_dump(), "images": [i.model_dump() for i in images]})


def test_source_stats_follow_the_tryon_rule_and_count_gaps(store: CatalogStore) -> None:
    from fittingroom.catalog.models import TryOnMode, tryon_image
    from fittingroom.catalog.store import SourceStats

    assert store.source_stats() == {}
    eligible = {"tryon_eligible": True, "photo_type": PhotoType.product_only}
    on_model = {"tryon_eligible": False, "photo_type": PhotoType.on_model}
    shoe_pred = {**on_model, "garment_category_pred": GarmentCategory.footwear}
    untrusted = {"tryon_eligible": False, "photo_type": PhotoType.product_only}
    products = [
        _classified(product("ELIG"), eligible, untrusted),  # product-only shot: yes
        _classified(product("MODEL"), on_model, untrusted),  # on-model top: yes
        _classified(product("SHOE", garment_category=None), shoe_pred, shoe_pred),  # footwear: no
        _classified(
            product("PRED", garment_category=None, n_images=1),
            {**on_model, "garment_category_pred": GarmentCategory.top},
        ),
        _classified(product("BAG", garment_category=GarmentCategory.bag_accessory), on_model, on_model),
        _classified(product("NONE"), untrusted, untrusted),  # no
        product("UNCLASSIFIED"),  # no (unclassified_ok is off)
        product("MODE", n_images=1).model_copy(),  # unclassified but a stored mode: follows the rule
        product("BARE", n_images=0, link=None),
        product("EMPTYLINK", n_images=1, link=""),
        product("X", source="other", n_images=3),
    ]
    products[7].images[0].tryon_mode = TryOnMode.product_only
    store.upsert_products(products)
    stored = list(store.iter_products())
    expected: dict[str, SourceStats] = {}
    for p in stored:
        expected.setdefault(p.source, SourceStats(p.source)).add(p)
    shop = store.source_stats()["shop"]
    assert shop == expected["shop"]
    assert shop.tryon_able == sum(tryon_image(p) is not None for p in stored if p.source == "shop") == 4
    assert (shop.products, shop.images, shop.without_link, shop.without_image) == (10, 15, 2, 1)
    assert shop.tryon_share == 0.4
    assert store.source_stats() == {"other": SourceStats("other", 1, 3, 0, 0, 0), "shop": shop}
    assert list(store.source_stats("other")) == ["other"]
    assert store.source_stats("nowhere") == {}


def test_jobs_round_trip_replace_and_list_newest_first(store: CatalogStore) -> None:
    from fittingroom.catalog.jobs import JobKind, JobRecord, JobStatus

    old = JobRecord(kind=JobKind.ingest, source="shop", created_at=T0, params={"feed": "a.csv"})
    new = JobRecord(kind=JobKind.delete_source, source="other", created_at=T0 + timedelta(seconds=1))
    store.save_job(old)
    store.save_job(new)
    assert store.get_job(old.id) == old
    assert store.get_job("missing") is None
    assert [j.id for j in store.list_jobs()] == [new.id, old.id]
    assert [j.id for j in store.list_jobs(limit=1)] == [new.id]

    done = old.model_copy(
        update={"status": JobStatus.done, "done": 3, "total": 3, "report": {"new": 3, "bad_rows": []}}
    )
    store.save_job(done)
    got = store.get_job(old.id)
    assert got is not None and got.status is JobStatus.done and got.report == {"new": 3, "bad_rows": []}
    assert len(store.list_jobs()) == 2
    assert [j.id for j in store.list_jobs(statuses=["done"])] == [old.id]
    assert [j.id for j in store.list_jobs(statuses=["queued", "running"])] == [new.id]
    assert store.list_jobs(statuses=[]) == []
