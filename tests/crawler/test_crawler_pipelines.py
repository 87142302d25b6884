"""Item pipelines: validation, GMC normalisation, the JSONL feed, the catalog writer (real ingest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from crawler_helpers import WordHashEncoder
from scrapy.exceptions import DropItem
from scrapy.utils.test import get_crawler

from crawler.items import Availability, ProductItem, Variant
from crawler.middlewares import BackoffRetryMiddleware
from crawler.pipelines.feed import JsonlFeedPipeline
from crawler.pipelines.normalize import NormalizePipeline, feed_records, format_price
from crawler.pipelines.store import CatalogStorePipeline
from crawler.pipelines.validate import ValidatePipeline


def product(**kw: object) -> ProductItem:
    base: dict = dict(
        url="https://shop.example/p/1",
        name="Tee",
        sku="T1",
        images=["https://shop.example/1.jpg"],
        price=12.5,
        currency="USD",
    )
    base.update(kw)
    return ProductItem(**base)


# ---- validate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"sku": None}, "no_id"),
        ({"name": None}, "no_title"),
        ({"images": []}, "no_image"),
    ],
)
def test_validate_drops_with_reason_and_counts(kw: dict, reason: str) -> None:
    crawler = get_crawler()
    pipe = ValidatePipeline.from_crawler(crawler)
    with pytest.raises(DropItem, match=reason.replace("_", " ")):
        pipe.process_item(product(**kw))
    assert crawler.stats.get_value(f"items/dropped/{reason}") == 1


def test_validate_keeps_and_prepares() -> None:
    crawler = get_crawler(settings_dict={"CRAWLER_MAX_IMAGES": 2})
    pipe = ValidatePipeline.from_crawler(crawler)
    item = pipe.process_item(
        product(sku="  T 1 ", images=[f"https://shop.example/{i}.jpg" for i in range(5)], price=-3.0)
    )
    assert item.sku == "T 1" and item.shop == "shop.example" and item.price is None
    assert item.image_urls == ["https://shop.example/0.jpg", "https://shop.example/1.jpg"]
    # an item with only an MPN is identified by it
    assert pipe.process_item(product(sku=None, mpn="MP-9")).product_id() == "MP-9"


# ---- normalise -----------------------------------------------------------------------------------


def test_feed_records_single_product() -> None:
    item = product(
        brand="Acme",
        category_path=["Men", "Tops"],
        gender="male",
        sizes=["M"],
        availability=Availability.in_stock,
        images=["https://s/a.jpg", "https://s/b.jpg"],
    )
    (rec,) = feed_records(item)
    assert rec == {
        "id": "T1",
        "title": "Tee",
        "link": "https://shop.example/p/1",
        "price": "12.50 USD",
        "brand": "Acme",
        "product_type": "Men > Tops",
        "gender": "male",
        "availability": "in_stock",
        "image_link": "https://s/a.jpg",
        "additional_image_link": ["https://s/b.jpg"],
        "size": "M",
    }
    assert format_price(9, None) == "9.00"


def test_feed_records_one_row_per_colour() -> None:
    imgs = ["https://s/red1.jpg", "https://s/blue.jpg", "https://s/red2.jpg", "https://s/flat.jpg"]
    item = product(
        product_group_id="G1",
        sku="G1",
        images=imgs,
        sizes=["S", "M"],
        image_colors={imgs[0]: "Red", imgs[1]: "Blue", imgs[2]: "Red"},
        variants=[
            Variant(sku="G1-RED", color="Red", size="S"),
            Variant(sku="G1-RED-M", color="Red", size="M"),
        ],
    )
    recs = feed_records(item)
    assert [r["id"] for r in recs] == ["G1-RED", "G1-blue", "G1-all"]
    assert {r["item_group_id"] for r in recs} == {"G1"}
    red = recs[0]
    assert (
        red["color"] == "Red" and red["image_link"] == imgs[0] and red["additional_image_link"] == [imgs[2]]
    )
    assert red["sizes"] == ["S", "M"]
    assert "color" not in recs[2] and recs[2]["image_link"] == imgs[3]


def test_normalised_records_map_back_through_the_ingest_mapper() -> None:
    """The feed the crawler writes is the one ``fittingroom ingest`` reads: one product, colours kept."""
    from catalog_ingest.mapper import FeedMapper

    imgs = ["https://s/red.jpg", "https://s/blue.jpg"]
    item = product(
        product_group_id="G1",
        images=imgs,
        image_colors={imgs[0]: "Red", imgs[1]: "Blue"},
        category_path=["Women", "Tees"],
    )
    NormalizePipeline().process_item(item)
    drafts, issues = FeedMapper("shop").map_records(enumerate(item.feed_records, start=1))
    assert not issues and len(drafts) == 1
    d = drafts[0]
    assert (d.product.id, d.product.title, d.product.price, d.product.currency) == ("G1", "Tee", 12.5, "USD")
    assert d.product.colors == ["Red", "Blue"] and d.product.category_path == ["Women", "Tees"]
    assert [(i.url, i.color) for i in d.images] == [(imgs[0], "Red"), (imgs[1], "Blue")]


# ---- feed writer -----------------------------------------------------------------------------------


def test_jsonl_feed_is_written_atomically(tmp_path: Path) -> None:
    out = tmp_path / "feeds" / "shop.jsonl"
    crawler = get_crawler(settings_dict={"CRAWLER_FEED_PATH": str(out)})
    pipe = JsonlFeedPipeline.from_crawler(crawler)
    pipe.open_spider()
    item = NormalizePipeline().process_item(product())
    pipe.process_item(item)
    assert not out.exists()  # still .partial while the crawl runs
    pipe.close_spider()
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["T1"]
    assert crawler.stats.get_value("feed/records") == 1


# ---- catalog writer (the real catalog_ingest with a small stand-in encoder) ------------------------------


@pytest.mark.real_data
def test_catalog_writer_ingests_and_recrawl_leaves_unchanged(tmp_path: Path, fur_site: Path) -> None:
    from fittingroom.catalog.store import open_store
    from fittingroom.settings import CoreSettings

    def fur_item(sku: str, colours: list[str], price: float = 9.0) -> ProductItem:
        urls = [f"http://127.0.0.1:1/images/products/{sku}/{c.lower()}.jpg" for c in colours]
        item = product(
            url=f"http://127.0.0.1:1/products/{sku}/",
            sku=sku,
            name=f"{sku.title()} tee",
            images=urls,
            price=price,
            image_colors=dict(zip(urls, colours, strict=True)),
            shop="fur",
        )
        # as the ImagesPipeline leaves them: already downloaded to local files
        item.images_downloaded = [
            {"url": u, "path": str(fur_site / "images" / "products" / sku / f"{c.lower()}.jpg")}
            for u, c in zip(urls, colours, strict=True)
        ]
        return NormalizePipeline().process_item(item)

    crawler = get_crawler(
        settings_dict={
            "CRAWLER_STORE_URI": f"sqlite:///{tmp_path / 'c.db'}",
            "CRAWLER_STATE_DIR": str(tmp_path / "state"),
        }
    )
    pipe = CatalogStorePipeline.from_crawler(crawler)
    pipe.settings = CoreSettings(home=tmp_path / "home")
    pipe.store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    pipe.encoder = WordHashEncoder()
    pipe.index_dir = tmp_path / "index"
    pipe.state_dir.mkdir(parents=True)
    batch = [fur_item("deer", ["Black", "Blue", "Clay", "Cream"]), fur_item("giraffe", ["Green"])]
    pipe._ingest(batch)
    assert crawler.stats.get_value("catalog/new") == 2 and crawler.stats.get_value("catalog/embedded") == 5
    deer = pipe.store.get_product("fur", "deer")
    assert deer is not None and deer.colors == ["Black", "Blue", "Clay", "Cream"]
    assert [(i.color, i.is_main) for i in deer.images][:2] == [("Black", True), ("Blue", True)]
    assert deer.images[0].url.startswith("http://127.0.0.1:1/")  # the shop URL, not the local file

    # re-crawl: the same products again -> untouched; one changed price -> only that product updated
    pipe._ingest([fur_item("deer", ["Black", "Blue", "Clay", "Cream"]), fur_item("giraffe", ["Green"], 11.0)])
    assert (
        crawler.stats.get_value("catalog/unchanged") == 1 and crawler.stats.get_value("catalog/updated") == 1
    )
    assert crawler.stats.get_value("catalog/embedded") == 5  # nothing re-embedded
    assert pipe.store.get_product("fur", "giraffe").price == 11.0
    assert list((tmp_path / "state").iterdir()) == []  # batch feeds are removed
    pipe.store.close()


@pytest.mark.real_data
def test_catalog_writer_hands_records_over_in_memory_and_stores_each_image_once(
    tmp_path: Path, fur_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No temporary JSONL feed; the crawled files are linked into the ingest cache, never fetched again."""
    import hashlib
    import os
    import shutil

    import catalog_ingest.runner
    from catalog_ingest.images import ImageFetcher
    from fittingroom.catalog.store import open_store
    from fittingroom.settings import CoreSettings

    def no_feed_file(*a: object, **kw: object) -> None:
        raise AssertionError("the crawler must not go through a feed file")

    monkeypatch.setattr(catalog_ingest.runner, "ingest_feed", no_feed_file)
    fetches: list[str] = []  # downloads and file reads through the ingest's fetcher
    adopted: list[str] = []
    real_adopt = ImageFetcher.adopt

    def counting_adopt(self: ImageFetcher, url: str, path: str, sha256: str | None = None):  # noqa: ANN202
        adopted.append(url)
        return real_adopt(self, url, path, sha256)

    monkeypatch.setattr(ImageFetcher, "adopt", counting_adopt)
    monkeypatch.setattr(ImageFetcher, "_fetch_http", lambda self, url: fetches.append(url))
    monkeypatch.setattr(ImageFetcher, "_fetch_local", lambda self, url, path: fetches.append(url))
    monkeypatch.setattr(ImageFetcher, "fetch_file", lambda self, path, url=None: fetches.append(url or str(path)))

    crawl_store = tmp_path / "crawler-images" / "full"  # as the ImagesPipeline leaves it
    crawl_store.mkdir(parents=True)
    colours = {"deer": ["Black", "Blue", "Clay", "Cream"], "giraffe": ["Green"]}
    items = []
    for sku, cs in colours.items():
        urls = [f"http://127.0.0.1:1/images/products/{sku}/{c.lower()}.jpg" for c in cs]
        item = product(
            url=f"http://127.0.0.1:1/products/{sku}/",
            sku=sku,
            name=f"{sku.title()} tee",
            images=urls,
            image_colors=dict(zip(urls, cs, strict=True)),
            shop="fur",
        )
        for u, c in zip(urls, cs, strict=True):
            local = crawl_store / f"{sku}-{c.lower()}.jpg"
            shutil.copyfile(fur_site / "images" / "products" / sku / f"{c.lower()}.jpg", local)
            sha = hashlib.sha256(local.read_bytes()).hexdigest()
            item.images_downloaded.append({"url": u, "path": str(local), "sha256": sha})
        items.append(NormalizePipeline().process_item(item))

    crawler = get_crawler(
        settings_dict={
            "CRAWLER_STORE_URI": f"sqlite:///{tmp_path / 'c.db'}",
            "CRAWLER_STATE_DIR": str(tmp_path / "state"),
        }
    )
    pipe = CatalogStorePipeline.from_crawler(crawler)
    pipe.settings = CoreSettings(home=tmp_path / "home")
    pipe.store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    pipe.encoder = WordHashEncoder()
    pipe.index_dir = tmp_path / "index"
    pipe._ingest(items)
    assert crawler.stats.get_value("catalog/new") == 2 and crawler.stats.get_value("catalog/embedded") == 5
    assert crawler.stats.get_value("catalog/bad_rows") == 0
    assert list(tmp_path.rglob("*.jsonl")) == []  # the records went over in memory

    cached = [p for p in (tmp_path / "home" / "images").rglob("*") if p.is_file()]
    crawled = list(crawl_store.iterdir())
    assert len(cached) == len(crawled) == 5
    # one copy of each image's bytes: every cache entry is the crawler's own file (a hard link)
    assert len({(p.stat().st_dev, p.stat().st_ino) for p in cached + crawled}) == 5
    assert all(
        os.path.samefile(p, next(c for c in crawled if c.read_bytes() == p.read_bytes())) for p in cached
    )
    # each image adopted once from the crawl, none fetched or read again by the ingest
    assert fetches == []
    assert sorted(adopted) == sorted(d["url"] for it in items for d in it.images_downloaded)
    deer = pipe.store.get_product("fur", "deer")
    assert deer is not None and {i.sha256 for i in deer.images} == {
        d["sha256"] for d in items[0].images_downloaded
    }
    pipe.store.close()


# ---- retry backoff --------------------------------------------------------------------------------


def test_backoff_doubles_and_honours_retry_after() -> None:
    from scrapy.http import Response

    crawler = get_crawler(settings_dict={"RETRY_BACKOFF_BASE": 0.5, "RETRY_BACKOFF_MAX": 3})
    mw = BackoffRetryMiddleware.from_crawler(crawler)
    assert [mw.backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
    slow = Response("https://s/x", status=429, headers={"Retry-After": "2"})
    assert mw.backoff(1, slow) == 2.0
    assert (
        mw.backoff(1, Response("https://s/x", status=429, headers={"Retry-After": "Wed, 21 Oct 2026"})) == 0.5
    )
