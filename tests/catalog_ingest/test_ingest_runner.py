"""End-to-end ingest on small generated feeds, with a fake encoder and a recording index sync."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from ingest_fakes import (
    FakeAnnotator,
    PixelStatsEncoder,
    RecordingSync,
    gmc_records,
    image_bytes,
    write_image,
    write_jsonl,
)
from PIL import Image

from catalog_ingest.annotators import load_default_annotators
from catalog_ingest.images import ImageFetcher
from catalog_ingest.runner import IngestAborted, IngestInterrupted, IngestReport, ingest_feed, ingest_records
from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.catalog.store import CatalogStore, ProductFilter
from fittingroom.models.encoders.base import document_text
from fittingroom.settings import CoreSettings


@dataclass
class Env:
    root: Path
    store: SQLiteStore
    sync: RecordingSync = field(default_factory=RecordingSync)

    def run(self, feed: Path, encoder: PixelStatsEncoder | None = None, **kw: Any) -> IngestReport:
        kw.setdefault("image_cache", self.root / "cache")
        kw.setdefault("index_dir", self.root / "index")
        kw.setdefault("sync", self.sync)
        kw.setdefault("progress", False)
        kw.setdefault("batch_size", 4)
        return ingest_feed(feed, store=self.store, encoder=encoder or PixelStatsEncoder(), **kw)


@pytest.fixture
def env(tmp_path: Path):
    store = SQLiteStore(tmp_path / "catalog.db")
    yield Env(tmp_path, store)
    store.close()


def assert_consistent(
    store: CatalogStore, sync: RecordingSync, encoder: str = PixelStatsEncoder.name
) -> None:
    """Every product image has an embedding, every embedding an image, and the index holds exactly them."""
    owned = set(store.vector_ids_matching(ProductFilter()).tolist())
    embedded = store.embedding_ids(encoder)
    assert embedded == owned
    assert sync.index_ids == embedded


def feed_jsonl(env: Env, n: int = 5, **kw: Any) -> Path:
    return write_jsonl(env.root / "shop.jsonl", gmc_records(n, env.root / "img", **kw))


def test_gmc_jsonl_feed_end_to_end(env: Env) -> None:
    feed = feed_jsonl(env, 5)
    enc = PixelStatsEncoder()
    report = env.run(feed, enc)
    assert (report.source, report.products, report.new, report.embedded, report.bad_rows) == (
        "shop",
        5,
        5,
        10,
        [],
    )
    assert env.store.count_products("shop") == 5
    p = env.store.get_product("shop", "P3")
    assert p is not None and p.price == 13.0 and p.category_path == ["Men", "Tops", "Tees"]
    assert p.garment_category == "top" and p.gender == "men"
    assert [(i.is_main, i.color, i.width, i.height) for i in p.images] == [
        (True, "Black", 24, 32),
        (False, "Black", 24, 32),
    ]
    # stored vectors are what the encoder makes of the image and its document text
    vec = env.store.get_embeddings(enc.name, [p.images[0].vector_id])[p.images[0].vector_id]
    assert vec.shape == (enc.dim,) and np.isclose(np.linalg.norm(vec), 1.0)
    assert document_text(p, p.images[0]) in enc.texts and "Product 3 Tee" in document_text(p, p.images[0])
    assert max(enc.batch_sizes) <= 4 and enc.calls < 10  # batched
    assert len(env.sync.calls) == 1 and env.sync.calls[0]["index_dir"] == env.root / "index"
    assert_consistent(env.store, env.sync)


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_csv_and_tsv_feeds_with_item_groups(env: Env, delimiter: str) -> None:
    write_image(env.root / "img", "blk.jpg", 1)
    write_image(env.root / "img", "red.jpg", 2)
    feed = env.root / ("shop.csv" if delimiter == "," else "shop.tsv")
    with open(feed, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(["id", "item_group_id", "title", "image_link", "price", "color", "size", "product_type"])
        w.writerow(["T-B-S", "T", "Tee", "img/blk.jpg", "20.00 USD", "Black", "S", "Women > Tops > Tees"])
        w.writerow(["T-B-M", "T", "Tee", "img/blk.jpg", "20.00 USD", "Black", "M", "Women > Tops > Tees"])
        w.writerow(["T-R-S", "T", "Tee", "img/red.jpg", "20.00 USD", "Red", "S", "Women > Tops > Tees"])
    report = env.run(feed)
    assert (report.records, report.products, report.embedded) == (3, 1, 2)
    p = env.store.get_product("shop", "T")
    assert p is not None
    assert [(i.url, i.color, i.is_main) for i in p.images] == [
        ("img/blk.jpg", "Black", True),
        ("img/red.jpg", "Red", True),
    ]
    assert p.colors == ["Black", "Red"] and p.sizes == ["S", "M"]


def test_second_run_of_an_unchanged_feed_embeds_nothing(env: Env) -> None:
    feed = feed_jsonl(env, 6)
    env.run(feed)
    before = {p.uid: p for p in env.store.iter_products()}
    enc = PixelStatsEncoder()
    report = env.run(feed, enc)
    assert (report.embedded, report.new, report.updated, report.unchanged) == (0, 0, 0, 6)
    assert enc.calls == 0
    after = {p.uid: p for p in env.store.iter_products()}
    assert after == before  # not even the timestamps moved
    assert_consistent(env.store, env.sync)


def test_a_changed_image_re_embeds_only_that_image(env: Env) -> None:
    feed = feed_jsonl(env, 4)
    env.run(feed)
    old = env.store.get_product("shop", "P2")
    assert old is not None
    (env.root / "img" / "p2_1.jpg").write_bytes(image_bytes(999))  # new content, same path
    enc = PixelStatsEncoder()
    report = env.run(feed, enc)
    assert (report.embedded, report.updated, report.unchanged) == (1, 1, 3)
    new = env.store.get_product("shop", "P2")
    assert new is not None
    assert new.images[0] == old.images[0]
    assert new.images[1].vector_id != old.images[1].vector_id
    assert new.created_at == old.created_at and new.updated_at > old.updated_at
    assert old.images[1].vector_id not in env.store.embedding_ids(enc.name)
    assert old.images[1].vector_id not in env.sync.index_ids
    assert env.sync.calls[-1]["force_rebuild"] is False
    assert_consistent(env.store, env.sync)


def test_changed_document_text_re_embeds_in_place_and_rebuilds_the_index(env: Env) -> None:
    records = gmc_records(3, env.root / "img")
    env.run(write_jsonl(env.root / "shop.jsonl", records))
    records[1]["title"] = "Renamed Tee"
    enc = PixelStatsEncoder()
    report = env.run(write_jsonl(env.root / "shop.jsonl", records), enc)
    assert (report.embedded, report.updated, report.unchanged) == (2, 1, 2)
    assert len(enc.texts) == 2 and all("Renamed Tee" in t for t in enc.texts)
    assert env.sync.calls[-1]["force_rebuild"] is True
    assert report.index_rebuilt
    assert not list((env.root / "index").glob(".*rebuild-needed"))  # the request was honoured
    # a price change does not touch the document text: no embedding
    records[1]["price"] = "99 USD"
    report = env.run(write_jsonl(env.root / "shop.jsonl", records))
    assert (report.embedded, report.updated) == (0, 1)
    assert env.store.get_product("shop", "P1").price == 99.0  # type: ignore[union-attr]
    assert env.sync.calls[-1]["force_rebuild"] is False


def test_prune_removes_products_absent_from_the_feed(env: Env) -> None:
    records = gmc_records(4, env.root / "img")
    env.run(write_jsonl(env.root / "shop.jsonl", records))
    env.run(write_jsonl(env.root / "other.jsonl", gmc_records(1, env.root / "img2", seed0=50)))
    gone = env.store.get_product("shop", "P0")
    assert gone is not None
    shorter = write_jsonl(env.root / "shop.jsonl", records[1:])
    report = env.run(shorter)
    assert report.pruned == 0 and env.store.count_products("shop") == 4  # no --prune: kept
    report = env.run(shorter, prune=True)
    assert report.pruned == 1
    assert env.store.product_keys("shop") == {("shop", "P1"), ("shop", "P2"), ("shop", "P3")}
    assert env.store.count_products("other") == 1  # other sources are untouched
    assert not set(i.vector_id for i in gone.images) & env.store.embedding_ids(PixelStatsEncoder.name)
    assert_consistent(env.store, env.sync)


def test_prune_keeps_products_whose_row_is_bad_and_refuses_an_empty_feed(env: Env) -> None:
    records = gmc_records(3, env.root / "img")
    env.run(write_jsonl(env.root / "shop.jsonl", records))
    records[0]["price"] = "call us"  # P0's row is now bad: it is still in the feed, so it is not pruned
    report = env.run(write_jsonl(env.root / "shop.jsonl", records), prune=True)
    assert report.pruned == 0 and len(report.bad_rows) == 1
    assert env.store.get_product("shop", "P0") is not None
    report = env.run(write_jsonl(env.root / "shop.jsonl", ['{"title": "no id"}']), prune=True)
    assert report.prune_skipped and report.pruned == 0
    assert env.store.count_products("shop") == 3


def test_bad_rows_are_reported_with_file_and_line_and_the_run_goes_on(env: Env) -> None:
    records = gmc_records(3, env.root / "img")
    (env.root / "img" / "broken.jpg").write_bytes(b"this is not a jpeg")
    rows: list[Any] = [
        records[0],
        {**records[1], "id": ""},  # line 2: missing id
        "{not json",  # line 3
        {**records[1], "id": "BROKEN", "image_link": "img/broken.jpg"},  # line 4: unreadable image
        {**records[1], "id": "MISSING", "additional_image_link": "img/nope.jpg"},  # line 5: missing file
        {**records[1], "price": "about ten dollars"},  # line 6: unparsable price
        records[2],  # line 7
    ]
    feed = write_jsonl(env.root / "shop.jsonl", rows)
    report = env.run(feed)
    assert report.records == 7
    assert env.store.product_keys() == {("shop", "P0"), ("shop", "P2")}
    assert [(b.file, b.line) for b in report.bad_rows] == [(str(feed), n) for n in (2, 3, 4, 5, 6)]
    reasons = {b.line: str(b) for b in report.bad_rows}
    assert reasons[2] == f"{feed}:2: missing id"
    assert "invalid JSON" in reasons[3]
    assert "unparsable price 'about ten dollars'" in reasons[6]
    assert "unreadable image" in reasons[4] and "img/broken.jpg" in reasons[4]
    assert "image not available" in reasons[5] and "img/nope.jpg: file not found" in reasons[5]
    assert_consistent(env.store, env.sync)


def _resume_case(env: Env, failing: PixelStatsEncoder, expected: type[BaseException]) -> None:
    feed = feed_jsonl(env, 8)  # 16 images, batch_size 4 -> 4 encoder calls
    with pytest.raises(expected) as info:
        env.run(feed, failing)
    partial: IngestReport = info.value.report  # type: ignore[attr-defined]
    # batch 1 (2 products, 4 images) was committed; nothing of batch 2 was
    assert env.store.count_products() == 2 and partial.embedded == 4
    assert len(env.sync.calls) == 1  # the index was synced on the way out
    assert_consistent(env.store, env.sync)
    enc = PixelStatsEncoder()
    report = env.run(feed, enc)
    assert (report.unchanged, report.new, report.embedded) == (2, 6, 12)  # resumed, nothing redone
    assert env.store.count_products() == 8
    assert_consistent(env.store, env.sync)


def test_resume_after_a_crash_mid_run(env: Env) -> None:
    _resume_case(env, PixelStatsEncoder(fail_on_call=2), IngestAborted)


def test_resume_after_ctrl_c_mid_run(env: Env) -> None:
    class CtrlC(PixelStatsEncoder):
        def document_vectors(self, images, texts):
            if self.calls == 1:
                self.calls += 1
                raise KeyboardInterrupt
            return super().document_vectors(images, texts)

    _resume_case(env, CtrlC(), IngestInterrupted)


def test_crash_report_keeps_the_cause(env: Env) -> None:
    with pytest.raises(IngestAborted, match="simulated encoder crash") as info:
        env.run(feed_jsonl(env, 3), PixelStatsEncoder(fail_on_call=1))
    assert isinstance(info.value.__cause__, RuntimeError)
    assert info.value.report.error and env.store.count_products() == 0


def test_annotators_run_on_the_same_batches_and_set_product_eligibility(env: Env) -> None:
    (env.root / "img").mkdir()
    (env.root / "img" / "dark.jpg").write_bytes(_solid((20, 20, 30), "JPEG"))
    (env.root / "img" / "white.png").write_bytes(_solid((255, 255, 255), "PNG"))
    feed = write_jsonl(
        env.root / "shop.jsonl",
        [
            {
                "id": "A",
                "title": "Tee",
                "image_link": "img/dark.jpg",
                "additional_image_link": "img/white.png",
            },
            {"id": "B", "title": "Tee", "image_link": "img/dark.jpg"},
            {"id": "C", "title": "Coffee mug", "image_link": "img/dark.jpg"},
        ],
    )
    # an ingest without annotators first: adding one later classifies without re-embedding
    env.run(feed)
    ann = FakeAnnotator()
    enc = PixelStatsEncoder()
    report = env.run(feed, enc, annotators=[ann])
    assert (report.embedded, report.annotated, ann.seen) == (0, 4, 4)
    a, b, c = (env.store.get_product("shop", pid) for pid in "ABC")
    assert a is not None and b is not None and c is not None
    assert [i.tryon_eligible for i in a.images] == [False, True]
    assert a.images[1].photo_type == "product_only" and a.images[1].tryon_eligible_prob == pytest.approx(1.0)
    # try-on ready = try-on can use an image: A's product-only shot, B's on-model photo of a tee;
    # not C's on-model photo of a mug
    assert (a.tryon_eligible, b.tryon_eligible, c.tryon_eligible) == (True, True, False)
    assert b.images[0].tryon_mode == "on_model" and c.images[0].tryon_mode == "none"
    assert set(env.store.vector_ids_matching(ProductFilter(tryon_eligible=True)).tolist()) == {
        i.vector_id for i in a.images + b.images
    }
    # already classified: nothing to do
    report = env.run(feed, annotators=[FakeAnnotator()])
    assert (report.embedded, report.annotated, report.unchanged) == (0, 0, 3)
    # a flag stored under an older rule (product-only shots only) is corrected by the next run,
    # without re-embedding or re-classifying
    stale = b.model_copy(update={"tryon_eligible": False})
    env.store.upsert_products([stale])
    report = env.run(feed, annotators=[FakeAnnotator()])
    assert (report.embedded, report.annotated, report.unchanged) == (0, 0, 2)
    fixed = env.store.get_product("shop", "B")
    assert fixed is not None and fixed.tryon_eligible is True


def _solid(color: tuple[int, int, int], fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 30), color).save(buf, format=fmt)
    return buf.getvalue()


def test_http_images_through_the_fetcher(env: Env) -> None:
    data = {f"https://cdn.example/{i}.jpg": image_bytes(i) for i in range(3)}
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=data[str(r.url)]))
    feed = write_jsonl(
        env.root / "web.jsonl",
        [
            {
                "id": "W",
                "title": "Web Tee",
                "image_link": "https://cdn.example/0.jpg",
                "additional_image_link": ["https://cdn.example/1.jpg", "https://cdn.example/2.jpg"],
            },
        ],
    )
    fetcher = ImageFetcher(env.root / "cache", transport=transport)
    report = env.run(feed, fetcher=fetcher)
    assert report.embedded == 3
    p = env.store.get_product("web", "W")
    assert p is not None and [i.url for i in p.images] == list(data)
    assert all((env.root / "cache" / i.sha256[:2] / i.sha256).exists() for i in p.images)


def test_source_name(env: Env) -> None:
    feed = write_jsonl(env.root / "my-shop.feed.jsonl", gmc_records(1, env.root / "img"))
    assert env.run(feed).source == "my-shop.feed"
    assert env.run(feed, source="luma").source == "luma"
    with pytest.raises(ValueError, match="invalid source name"):
        env.run(feed, source="a:b")


def test_default_annotator_loading(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import fittingroom.models.eligibility as eligibility
    from fittingroom.models.registry import ModelShelf

    settings = CoreSettings(home=Path("/nonexistent"), device="cpu")
    seen = []
    monkeypatch.setattr(eligibility, "load_annotator", lambda s: seen.append(s) or FakeAnnotator())
    shelf = ModelShelf()
    got = load_default_annotators(settings, shelf=shelf)
    assert [a.name for a in got] == ["fake-eligibility"] and seen[0].device == "cpu"
    assert load_default_annotators(settings, shelf=shelf)[0] is got[0]  # built once per process
    assert shelf.constructions["eligibility"] == 1

    def broken(s):
        raise FileNotFoundError("no trained head")

    monkeypatch.setattr(eligibility, "load_annotator", broken)
    with caplog.at_level(logging.WARNING):
        assert load_default_annotators(settings, shelf=ModelShelf()) == []
    assert "no trained head" in caplog.text


def test_index_sync_failure_is_reported_after_the_store_is_written(env: Env) -> None:
    def broken_sync(store, encoder_name, index_dir, *, force_rebuild=False):
        raise OSError("disk full")

    with pytest.raises(IngestAborted, match="index sync failed: OSError: disk full") as info:
        env.run(feed_jsonl(env, 2), sync=broken_sync)
    assert info.value.report.new == 2 and env.store.count_products() == 2
    report = env.run(feed_jsonl(env, 2))  # the next run only has to sync
    assert (report.embedded, report.unchanged) == (0, 2)
    assert_consistent(env.store, env.sync)


def test_default_source_names() -> None:
    from catalog_ingest.runner import default_source

    assert default_source("feeds/shop-eu.csv.gz") == "shop-eu"
    assert default_source("/data/luma-catalog/products.jsonl") == "luma"
    assert default_source("/data/Acme_Feed/feed.tsv") == "acme"
    assert default_source("/products.jsonl") == "products"  # no usable folder name


def test_annotator_reuses_the_encoders_image_features(env: Env) -> None:
    """An annotator computing the encoder's image feature gets it from the document vectors:
    the images pass through one backbone, not two; without fresh vectors it gets the images."""

    class FeatureEncoder(PixelStatsEncoder):
        image_feature_name = "pixel-stats-24"

        def image_features(self, vectors: np.ndarray) -> np.ndarray:
            return np.asarray(vectors)[:, :24]

    class FeatureAnnotator(FakeAnnotator):
        feature_name = "pixel-stats-24"

        def __init__(self) -> None:
            super().__init__()
            self.features: list[np.ndarray] = []

        def annotate_features(self, features: np.ndarray) -> list[dict[str, Any]]:
            self.features.append(np.asarray(features))
            return [{"tryon_eligible": bool(f[0] > 0), "tryon_eligible_prob": 0.5} for f in features]

    (env.root / "img").mkdir()
    (env.root / "img" / "a.jpg").write_bytes(_solid((200, 20, 30), "JPEG"))
    (env.root / "img" / "b.png").write_bytes(_solid((10, 200, 30), "PNG"))
    feed = write_jsonl(
        env.root / "shop.jsonl",
        [{"id": "A", "title": "Tee", "image_link": "img/a.jpg", "additional_image_link": "img/b.png"}],
    )
    enc, ann = FeatureEncoder(), FeatureAnnotator()
    report = env.run(feed, enc, annotators=[ann])
    assert (report.embedded, report.annotated, ann.seen) == (2, 2, 0)  # annotate(images) never called
    stored = env.store.get_embeddings(
        enc.name, [i.vector_id for i in env.store.get_product("shop", "A").images]
    )
    got = np.concatenate(ann.features)
    assert got.shape == (2, 24)
    np.testing.assert_allclose(
        sorted(map(tuple, got)), sorted(tuple(v[:24]) for v in stored.values()), rtol=1e-6
    )
    # an annotator added after the embedding: nothing to embed, so it is given the decoded images
    other = write_jsonl(
        env.root / "other.jsonl",
        [{"id": "B", "title": "Tee", "image_link": "img/a.jpg", "additional_image_link": "img/b.png"}],
    )
    env.run(other, FeatureEncoder())
    later = FeatureAnnotator()
    report = env.run(other, FeatureEncoder(), annotators=[later])
    assert (report.embedded, report.annotated, later.seen, later.features) == (0, 2, 2, [])


def test_new_and_updated_count_only_committed_products(env: Env) -> None:
    """A failed batch's products were counted as new before: the report said more than the store held."""
    feed = feed_jsonl(env, 8)  # 16 images, batch_size 4 -> 2 products per write
    with pytest.raises(IngestAborted) as info:
        env.run(feed, PixelStatsEncoder(fail_on_call=3))
    partial = info.value.report
    assert env.store.count_products() == 4
    assert (partial.new, partial.updated) == (4, 0)
    report = env.run(feed)
    assert (report.new, report.unchanged, report.updated) == (4, 4, 0)
    assert env.store.count_products() == 8

    # a changed feed whose second write fails: only the first write's products count as updated
    changed = write_jsonl(
        env.root / "shop.jsonl",
        [{**r, "title": r["title"] + " v2"} for r in gmc_records(8, env.root / "img")],
    )
    with pytest.raises(IngestAborted) as info:
        env.run(changed, PixelStatsEncoder(fail_on_call=2))
    assert (info.value.report.new, info.value.report.updated) == (0, 2)


def test_ingest_records_runs_the_feed_path_in_memory(env: Env) -> None:
    records = gmc_records(3, env.root / "img")
    kw: dict[str, Any] = dict(
        image_cache=env.root / "cache", index_dir=env.root / "index", sync=env.sync, progress=False
    )
    bad = {**records[1], "id": "BAD", "price": "1e309 USD"}
    report = ingest_records(
        [records[0], bad, records[1], records[2]],
        store=env.store,
        encoder=PixelStatsEncoder(),
        source="mem",
        name="crawl batch 1",
        base_dir=env.root,
        **kw,
    )
    assert (report.feed, report.records, report.products, report.new, report.embedded) == (
        "crawl batch 1",
        4,
        3,
        3,
        6,
    )
    assert [str(b) for b in report.bad_rows] == ["crawl batch 1:2: invalid price '1e309 USD' (not finite)"]
    assert env.store.product_keys("mem") == {("mem", "P0"), ("mem", "P1"), ("mem", "P2")}
    assert list(env.root.glob("**/*.jsonl")) == []  # no feed file on the way
    again = ingest_records(
        records, store=env.store, encoder=PixelStatsEncoder(), source="mem", base_dir=env.root, **kw
    )
    assert (again.unchanged, again.new, again.embedded) == (3, 0, 0)
    with pytest.raises(ValueError, match="invalid source name"):
        ingest_records(records, store=env.store, encoder=PixelStatsEncoder(), source="a:b", **kw)
    assert_consistent(env.store, env.sync)


def test_the_report_counts_products_without_a_shop_link(env: Env) -> None:
    records = gmc_records(3, env.root / "img")
    records[1].pop("link")
    records[2]["link"] = "javascript:alert(1)"
    report = env.run(write_jsonl(env.root / "shop.jsonl", records))
    assert report.without_link == 2
    assert report.to_dict()["without_link"] == 2
    assert ("products without a shop link", "2") in report.summary_rows()
    stored = env.store.get_product("shop", "P2")
    assert stored is not None and stored.link is None


def test_an_unsafe_shop_link_is_dropped_and_reported_with_its_line(env: Env) -> None:
    records = gmc_records(3, env.root / "img")
    records[0]["link"] = "javascript:alert(document.cookie)"
    records[2]["link"] = "data:text/html,<script>alert(1)</script>"
    feed = write_jsonl(env.root / "shop.jsonl", records)
    report = env.run(feed)
    assert report.bad_rows == []  # the products go in ...
    assert [(w.line, w.product_id) for w in report.warnings] == [(1, "P0"), (3, "P2")]  # ... without the link
    assert all("dropped" in w.reason and "http(s)" in w.reason for w in report.warnings)
    assert str(report.warnings[0]).startswith(f"{feed}:1: ")
    assert [w["line"] for w in report.to_dict()["warnings"]] == [1, 3]
    for pid in ("P0", "P2"):
        stored = env.store.get_product("shop", pid)
        assert stored is not None and stored.link is None
    kept = env.store.get_product("shop", "P1")
    assert kept is not None and kept.link == records[1]["link"]


def test_a_legacy_encoded_csv_with_an_oversized_cell_goes_in_except_that_row(env: Env) -> None:
    records = gmc_records(3, env.root / "img", images_per_product=1)
    records[0]["title"] = "Café crème Tee"
    records[1]["description"] = "d" * 200_000  # over csv's field limit
    records[2]["brand"] = "Müller & Söhne"
    columns = ["id", "title", "description", "link", "image_link", "price", "brand"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([[r[c] for c in columns] for r in records])
    feed = env.root / "legacy.csv"
    feed.write_bytes(buf.getvalue().encode("cp1252"))
    report = env.run(feed)
    assert [str(b) for b in report.bad_rows] == [
        f"{feed}:3: a cell is over csv's field size limit (131072 characters)"
    ]
    assert env.store.product_keys("legacy") == {("legacy", "P0"), ("legacy", "P2")}
    p0, p2 = env.store.get_product("legacy", "P0"), env.store.get_product("legacy", "P2")
    assert p0 is not None and p0.title == "Café crème Tee"
    assert p2 is not None and p2.brand == "Müller & Söhne"
