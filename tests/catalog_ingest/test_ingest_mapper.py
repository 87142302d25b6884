from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from catalog_ingest.mapper import FeedMapper, FieldMapping, MappingError, detect_preset
from catalog_ingest.readers import read_feed
from fittingroom.catalog.garments import garment_category_for, garment_category_of_text
from fittingroom.catalog.models import GarmentCategory
from fittingroom.settings import CoreSettings

LUMA = CoreSettings().shared_data / "luma-catalog" / "products.jsonl"


def map_one(record: dict[str, Any], mapping: FieldMapping | None = None):
    drafts, issues = FeedMapper("shop", mapping).map_records([(2, record)])
    assert not issues, issues
    assert len(drafts) == 1
    return drafts[0]


GMC_ROW = {
    "id": "TEE-1",
    "title": "Classic Tee",
    "description": "Soft cotton.",
    "link": "https://shop.example/tee-1",
    "image_link": "https://cdn.example/tee-1.jpg",
    "additional_image_link": "https://cdn.example/tee-1-back.jpg, https://cdn.example/tee-1-side.jpg",
    "price": "52.00 USD",
    "brand": "Acme",
    "product_type": "Men > Tops > T-Shirts",
    "google_product_category": "212",
    "color": "Black",
    "size": "M",
    "gender": "male",
    "material": "Cotton",
}


def test_gmc_fields() -> None:
    d = map_one(dict(GMC_ROW))
    p = d.product
    assert (p.source, p.id, p.uid) == ("shop", "TEE-1", "shop:TEE-1")
    assert p.title == "Classic Tee" and p.description == "Soft cotton." and p.brand == "Acme"
    assert p.link == "https://shop.example/tee-1"
    assert (p.price, p.currency) == (52.0, "USD")
    assert p.category_path == ["Men", "Tops", "T-Shirts"]
    assert p.garment_category is GarmentCategory.top
    assert p.colors == ["Black"] and p.sizes == ["M"] and p.gender == "men"
    assert p.attributes == {"material": "Cotton", "google_product_category": "212"}
    assert [(r.url, r.color, r.is_main, r.line) for r in d.images] == [
        ("https://cdn.example/tee-1.jpg", "Black", True, 2),
        ("https://cdn.example/tee-1-back.jpg", "Black", False, 2),
        ("https://cdn.example/tee-1-side.jpg", "Black", False, 2),
    ]


@pytest.mark.parametrize(
    ("price", "amount", "currency"),
    [
        ("52.00 USD", 52.0, "USD"),
        ("$1,299.99", 1299.99, "USD"),
        ("12,50 €", 12.5, "EUR"),
        ("£7", 7.0, "GBP"),
        ("15", 15.0, None),
        (19.9, 19.9, None),
    ],
)
def test_price_parsing(price: Any, amount: float, currency: str | None) -> None:
    p = map_one({**GMC_ROW, "price": price}).product
    assert p.price == pytest.approx(amount)
    assert p.currency == currency


def test_numeric_price_with_currency_field() -> None:
    p = map_one({**GMC_ROW, "price": 34, "currency": "usd"}).product
    assert (p.price, p.currency) == (34.0, "USD")


def test_google_product_category_text_gives_path_and_category() -> None:
    row = {k: v for k, v in GMC_ROW.items() if k != "product_type"}
    row["google_product_category"] = "Apparel & Accessories > Clothing > Dresses"
    p = map_one(row).product
    assert p.category_path == ["Apparel & Accessories", "Clothing", "Dresses"]
    assert p.garment_category is GarmentCategory.one_piece


def test_item_group_rows_merge_into_one_product_with_colour_images() -> None:
    base = {k: v for k, v in GMC_ROW.items() if k not in ("additional_image_link", "id")}
    rows = [
        (
            2,
            {
                **base,
                "id": "T-BLK-S",
                "item_group_id": "T",
                "color": "Black",
                "size": "S",
                "price": "20 USD",
                "image_link": "blk.jpg",
                "additional_image_link": "blk-back.jpg",
            },
        ),
        (
            3,
            {
                **base,
                "id": "T-BLK-M",
                "item_group_id": "T",
                "color": "Black",
                "size": "M",
                "price": "20 USD",
                "image_link": "blk.jpg",
                "additional_image_link": "blk-back.jpg",
            },
        ),
        (4, {"id": "OTHER", "title": "Other", "image_link": "o.jpg"}),
        (
            5,
            {
                **base,
                "id": "T-RED-S",
                "item_group_id": "T",
                "color": "Red",
                "size": "S",
                "price": "18 USD",
                "image_link": "red.jpg",
            },
        ),
    ]
    drafts, issues = FeedMapper("shop").map_records(rows)
    assert not issues
    assert [d.product.id for d in drafts] == ["T", "OTHER"]
    t = drafts[0]
    assert t.lines == [2, 3, 5]
    assert t.product.colors == ["Black", "Red"] and t.product.sizes == ["S", "M"]
    assert (t.product.price, t.product.currency) == (18.0, "USD")  # the cheapest variant
    assert t.product.attributes["variant_ids"] == "T-BLK-S,T-BLK-M,T-RED-S"
    assert [(r.url, r.color, r.is_main, r.line) for r in t.images] == [
        ("blk.jpg", "Black", True, 2),
        ("blk-back.jpg", "Black", False, 2),
        ("red.jpg", "Red", True, 5),
    ]


def test_bad_rows_are_reported_with_their_line_and_skipped() -> None:
    rows = [
        (2, {"title": "no id", "image_link": "a.jpg"}),
        (3, {"id": "B", "image_link": "b.jpg"}),
        (4, {"id": "C", "title": "C", "image_link": "c.jpg", "price": "call us"}),
        (5, {"id": "D", "title": "D"}),
        (6, {"id": "E", "title": "E", "image_link": "e.jpg", "price": "3 USD"}),
        (7, {"id": "E", "title": "E again", "image_link": "e2.jpg"}),
        (8, {"id": "F", "title": "F", "image_link": "f.jpg", "garment_category": "spaceship"}),
        (9, {"id": "G", "title": "G", "image_link": "g.jpg", "price": "-5 USD"}),
    ]
    drafts, issues = FeedMapper("shop").map_records(rows)
    assert [d.product.id for d in drafts] == ["E"]
    got = [(i.line, i.product_id, i.reason) for i in issues]
    assert got[0] == (2, None, "missing id")
    assert got[1][:2] == (3, "B") and "missing title" in got[1][2]
    assert got[2][:2] == (4, "C") and "unparsable price 'call us'" in got[2][2]
    assert got[3][:2] == (5, "D") and "no image" in got[3][2]
    assert got[4][:2] == (7, "E") and "duplicate id 'E' (first seen on line 6)" in got[4][2]
    assert got[5][:2] == (8, "F") and "unknown garment_category" in got[5][2]
    assert got[6][:2] == (9, "G") and "unparsable price '-5 USD'" in got[6][2]


@pytest.mark.parametrize(
    ("price", "reason"),
    [("1e309 USD", "not finite"), (float("inf"), "not finite"), ("1e12 EUR", "absurd"), (-2.0, "negative")],
)
def test_non_finite_or_absurd_prices_are_bad_rows(price: Any, reason: str) -> None:
    drafts, issues = FeedMapper("shop").map_records([(2, {**GMC_ROW, "price": price})])
    assert drafts == []  # 1e309 must not become a product priced 1.0
    assert len(issues) == 1 and f"invalid price {price!r} ({reason})" in issues[0].reason


def test_currency_and_gender_come_from_the_shared_vocabularies() -> None:
    p = map_one({**GMC_ROW, "price": "10 zł", "gender": "Damen", "color": "  navy   blue "}).product
    assert (p.price, p.currency, p.gender) == (10.0, "PLN", "women")
    assert p.colors == ["Navy blue"]
    assert map_one({**GMC_ROW, "price": 5, "currency": "€"}).product.currency == "EUR"


def test_map_renames_and_dotted_paths() -> None:
    record = {
        "sku": "S1",
        "name": "Runner",
        "pic": "r.jpg",
        "offer": {"price": "9.99", "currency": "EUR"},
        "x": "1",
    }
    mapping = FieldMapping.parse(
        [
            "sku=id",
            "name=title",
            "pic=image_link",
            "offer.price=price",
            "offer.currency=currency",
            "x=attributes.extra",
        ]
    )
    p = map_one(record, mapping).product
    assert (p.id, p.title, p.price, p.currency) == ("S1", "Runner", 9.99, "EUR")
    assert p.attributes == {"extra": "1"}


def test_map_from_json_and_toml_files(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text(json.dumps({"sku": "id", "name": "title"}))
    (tmp_path / "m.toml").write_text('preset = "gmc"\n[fields]\npic = "image_link"\n')
    mapping = FieldMapping.parse([str(tmp_path / "m.json"), str(tmp_path / "m.toml")])
    assert mapping.preset == "gmc"
    assert dict(mapping.renames) == {"sku": "id", "name": "title", "pic": "image_link"}
    p = map_one({"sku": "1", "name": "N", "pic": "p.jpg"}, mapping).product
    assert (p.id, p.title) == ("1", "N")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("sku=identifier", "unknown target field 'identifier'"),
        ("=id", "empty source field"),
        ("nonsense", "expected SRC=DST, a preset"),
        ("missing.json", "does not exist"),
    ],
)
def test_bad_map_values(spec: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        FieldMapping.parse([spec])


def test_luma_layout_is_detected_and_maps_variants() -> None:
    record = {
        "sku": "MH01",
        "name": "Chaz Kangeroo Hoodie",
        "price": 52.0,
        "currency": "USD",
        "categories": ["Men/Tops/Hoodies & Sweatshirts", "Collections/Eco Friendly"],
        "gender": "Men\nWomen",
        "colors": ["Black", "Gray"],
        "sizes": ["S", "M"],
        "attributes": {"material": "Wool", "climate": "Cool\nWindy"},
        "url_key": "chaz",
        "main_image": "img/gray_main.jpg",
        "images": ["img/gray_main.jpg", "img/gray_back.jpg", "img/black_main.jpg", "img/extra.jpg"],
        "variants": [
            {"sku": "MH01-S-Black", "color": "Black", "size": "S", "images": ["img/black_main.jpg"]},
            {
                "sku": "MH01-S-Gray",
                "color": "Gray",
                "size": "S",
                "images": ["img/gray_main.jpg", "img/gray_back.jpg"],
            },
        ],
    }
    assert detect_preset(record) == "luma"
    d = map_one(record)
    p = d.product
    assert (p.id, p.title, p.price, p.currency) == ("MH01", "Chaz Kangeroo Hoodie", 52.0, "USD")
    assert p.category_path == ["Men", "Tops", "Hoodies & Sweatshirts"]
    assert p.garment_category is GarmentCategory.top
    assert p.gender == "unisex"
    assert p.attributes["material"] == "Wool" and p.attributes["climate"] == "Cool, Windy"
    assert p.attributes["url_key"] == "chaz"
    assert p.attributes["other_categories"] == "Collections > Eco Friendly"
    assert [(r.url, r.color, r.is_main) for r in d.images] == [
        ("img/gray_main.jpg", "Gray", True),
        ("img/gray_back.jpg", "Gray", False),
        ("img/black_main.jpg", "Black", True),
        ("img/extra.jpg", None, False),
    ]


def test_flattened_category_list_joins_into_one_path() -> None:
    record = {
        "sku": "24-MB01",
        "name": "Joust Duffle Bag",
        "images": ["b.jpg"],
        "price": 34,
        "categories": ["Gear", "Bags", "Collections", "Erin Recommends"],
    }
    p = map_one(record, FieldMapping(preset="luma")).product
    assert p.category_path == ["Gear", "Bags"]
    assert p.garment_category is GarmentCategory.bag_accessory


@pytest.mark.real_data
def test_luma_catalog_maps_every_variant_image() -> None:
    assert LUMA.exists(), f"{LUMA} not found: run from the repository root or set FITTINGROOM_SHARED_DATA"
    records = list(read_feed(LUMA))
    drafts, issues = FeedMapper("luma").map_records(records)
    assert not issues
    assert len(drafts) == len(records) == 191
    by_id = {d.product.id: d for d in drafts}
    for _, rec in records:
        d = by_id[rec["sku"]]
        urls = [r.url for r in d.images]
        assert urls[0] == rec["main_image"] and d.images[0].is_main
        for variant in rec["variants"]:
            for i, url in enumerate(variant["images"]):
                ref = d.images[urls.index(url)]
                assert ref.color == variant["color"]
                if i == 0:
                    assert ref.is_main, (rec["sku"], url)
        assert set(urls) == set(rec["images"]) | {u for v in rec["variants"] for u in v["images"]}
    assert sum(len(d.images) for d in drafts) == 725
    garments = {d.product.id: d.product.garment_category for d in drafts}
    assert garments["MH01"] is GarmentCategory.top  # hoodie
    assert garments["MJ01"] is GarmentCategory.outerwear  # jacket
    assert garments["MP01"] is GarmentCategory.bottom  # pants
    assert garments["24-MB01"] is GarmentCategory.bag_accessory
    assert by_id["24-MB01"].product.category_path == ["Gear", "Bags"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (["Men", "Tops", "Tees"], GarmentCategory.top),
        (["Women", "Tops", "Bras & Tanks"], GarmentCategory.top),
        (["Men", "Tops", "Hoodies & Sweatshirts"], GarmentCategory.top),
        (["Men", "Tops", "Jackets"], GarmentCategory.outerwear),
        (["Women", "Coats"], GarmentCategory.outerwear),
        (["Women", "Bottoms", "Pants"], GarmentCategory.bottom),
        (["Men", "Bottoms", "Shorts"], GarmentCategory.bottom),
        (["Women", "Skirts"], GarmentCategory.bottom),
        (["Women", "Dresses"], GarmentCategory.one_piece),
        (["Shoes", "Sneakers"], GarmentCategory.footwear),
        (["Accessories", "Hats"], GarmentCategory.headwear),
        (["Gear", "Bags"], GarmentCategory.bag_accessory),
        (["Gear", "Watches"], GarmentCategory.bag_accessory),
        (["Gear", "Fitness Equipment"], GarmentCategory.other),
        (["Accessories", "Audiobooks"], GarmentCategory.other),  # a grouping decides only as the leaf
        (["Accessories", "Homewares"], GarmentCategory.other),
        (["Women", "Accessories"], GarmentCategory.bag_accessory),
        ([], GarmentCategory.other),
    ],
)
def test_garment_category_keywords(path: list[str], expected: GarmentCategory) -> None:
    assert garment_category_for(path) is expected


def test_garment_category_head_noun_and_fallbacks() -> None:
    assert garment_category_of_text("Dress Shirts") is GarmentCategory.top
    assert garment_category_of_text("Shirt Dresses") is GarmentCategory.one_piece
    assert garment_category_of_text("Topics") is None  # whole words only
    assert (
        garment_category_for([], google_category="Apparel & Accessories > Clothing") is GarmentCategory.other
    )
    assert garment_category_for(["Sale"], title="Chaz Kangeroo Hoodie") is GarmentCategory.top


def test_merchant_center_name_variants_and_repeated_columns(tmp_path: Path) -> None:
    feed = tmp_path / "feed.txt"
    feed.write_text(
        "g:id\tTitle\timage link\tadditional image link\tadditional image link\tprice\n"
        "X1\tLinen Shirt\ta.jpg\tb.jpg\tc.jpg\t30.00 EUR\n"
    )
    d = map_one(next(iter(read_feed(feed)))[1])
    assert (d.product.id, d.product.title, d.product.price, d.product.currency) == (
        "X1",
        "Linen Shirt",
        30.0,
        "EUR",
    )
    assert [r.url for r in d.images] == ["a.jpg", "b.jpg", "c.jpg"]


def test_saleor_preset_is_detected_and_prices_in_usd() -> None:
    from catalog_ingest.mapper import FeedMapper

    rec = {
        "id": 131,
        "name": "Grey Hoodie",
        "slug": "grey-hoodie",
        "category": "Apparel/Sweatshirts",
        "price_usd_min": 30.0,
        "attributes": {"Brand": "Saleor Loom"},
        "images": ["images/grey-hoodie.png"],
        "variants": [{"sku": "x", "name": "S", "attributes": {"Size": "S"}}],
    }
    drafts, issues = FeedMapper("saleor").map_records([(1, rec)])
    assert issues == []
    p = drafts[0].product
    assert (p.id, p.title, p.price, p.currency, p.brand) == ("131", "Grey Hoodie", 30.0, "USD", "Saleor Loom")
    assert p.category_path == ["Apparel", "Sweatshirts"] and p.garment_category == GarmentCategory.top


def test_html_entities_in_text_are_unescaped() -> None:
    from catalog_ingest.mapper import FeedMapper

    rec = {"id": "1", "title": "Gobi HeatTec&reg; Tee", "image_link": "a.jpg", "price": "10 USD"}
    drafts, _ = FeedMapper("f").map_records([(1, rec)])
    assert drafts[0].product.title == "Gobi HeatTec® Tee"
