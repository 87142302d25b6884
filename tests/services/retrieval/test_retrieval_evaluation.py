"""Retrieval evaluation: pure metrics on hand-made rankings, ground-truth parsing, task plumbing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fittingroom.images import sha256_bytes
from fittingroom.models.encoders.base import Query
from fittingroom.retrieval.evaluation import (
    GarmentType,
    RankedProduct,
    category_paths,
    evaluate_retrieval,
    garment_type_of_category,
    hit_at_k,
    load_luma,
    load_street_items,
    main_category,
    mean,
    precision_at_k,
)


def test_hit_at_k():
    ranked = ["a", "b", "c", "d"]
    assert hit_at_k(ranked, {"a"}, 1)
    assert not hit_at_k(ranked, {"c"}, 2)
    assert hit_at_k(ranked, {"c", "z"}, 3)
    assert not hit_at_k([], {"a"}, 10)


def test_precision_at_k():
    ranked = ["a", "x", "b", "y", "c"]
    rel = {"a", "b", "c"}
    assert precision_at_k(ranked, rel, 2) == 0.5
    assert precision_at_k(ranked, rel, 5) == 0.6
    assert precision_at_k(ranked, rel, 10) == 0.3  # missing ranks are misses
    assert precision_at_k(ranked, rel, 10, capped=True) == 1.0  # 3 hits of 3 possible
    assert precision_at_k(ranked, {"a", "y"}, 10, capped=True) == 1.0
    assert precision_at_k(["x"] * 10, set(range(20)), 10, capped=True) == 0.0
    assert math.isnan(precision_at_k(ranked, set(), 10, capped=True))


def test_mean_ignores_nan():
    assert mean([1.0, math.nan, 0.0]) == 0.5
    assert math.isnan(mean([]))


@pytest.mark.parametrize(
    ("categories", "paths", "main", "gtype"),
    [
        (["Men/Tops/Tees"], [["Men", "Tops", "Tees"]], "Men/Tops/Tees", GarmentType.tee),
        (
            ["Men/Bottoms/Pants", "Promotions/Pants", "Collections/Eco Friendly"],
            [["Men", "Bottoms", "Pants"], ["Promotions", "Pants"], ["Collections", "Eco Friendly"]],
            "Men/Bottoms/Pants",
            GarmentType.pants,
        ),
        (
            ["Gear", "Bags", "Collections", "Erin Recommends"],
            [["Gear", "Bags"], ["Collections", "Erin Recommends"]],
            "Gear/Bags",
            None,
        ),
        (["Women/Tops/Bras & Tanks"], [["Women", "Tops", "Bras & Tanks"]], "Women/Tops/Bras & Tanks", None),
        (
            ["Men/Tops/Hoodies & Sweatshirts"],
            [["Men", "Tops", "Hoodies & Sweatshirts"]],
            "Men/Tops/Hoodies & Sweatshirts",
            GarmentType.hoodie,
        ),
        (["Men/Tops/Tanks"], [["Men", "Tops", "Tanks"]], "Men/Tops/Tanks", None),
        (["Promotions/Tees"], [["Promotions", "Tees"]], None, None),
    ],
)
def test_luma_categories(categories, paths, main, gtype):
    assert category_paths(categories) == paths
    got = main_category(categories)
    assert got == main
    assert garment_type_of_category(got) == gtype


# ---- a tiny Luma-format catalog --------------------------------------------------------------
def _png(path: Path, color: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), color).save(path)


@pytest.fixture()
def tiny(tmp_path: Path):
    cat = tmp_path / "luma"
    recs = [
        {
            "sku": "T1",
            "name": "Tee",
            "categories": ["Men/Tops/Tees"],
            "colors": ["Red", "Blue"],
            "images": ["images/t1-red.png", "images/t1-blue.png", "images/t1-blue-back.png"],
            "variants": [
                {"color": "Red", "size": "S", "images": ["images/t1-red.png"]},
                {"color": "Blue", "size": "S", "images": ["images/t1-blue.png", "images/t1-blue-back.png"]},
                {"color": "Red", "size": "M", "images": ["images/t1-red.png"]},
            ],
        },
        {
            "sku": "P1",
            "name": "Pants",
            "categories": ["Women/Bottoms/Pants", "Promotions/Pants"],
            "colors": ["Blue"],
            "images": ["images/p1-blue.png"],
            "variants": [{"color": "Blue", "images": ["images/p1-blue.png"]}],
        },
        {
            "sku": "G1",
            "name": "Bag",
            "categories": ["Gear", "Bags"],
            "colors": [],
            "images": ["images/g1.png"],
        },
    ]
    colors = {"red": (200, 0, 0), "blue": (0, 0, 200), "blue-back": (0, 0, 190), "g1": (90, 90, 90)}
    _png(cat / "images/t1-red.png", colors["red"])
    _png(cat / "images/t1-blue.png", colors["blue"])
    _png(cat / "images/t1-blue-back.png", colors["blue-back"])
    _png(cat / "images/p1-blue.png", (0, 10, 200))
    _png(cat / "images/g1.png", colors["g1"])
    for r in recs:
        r.update(price=10.0, currency="USD", main_image=r["images"][0])
    (cat / "products.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")

    street = tmp_path / "street"
    _png(street / "photos/0001.jpg", (0, 0, 200))
    ann = {
        "labels": [],
        "images": {
            "0001": {
                "image": "photos/0001.jpg",
                "annotation": "pixel-level",
                "items": [
                    {"label": "jeans", "bbox_xyxy": [0, 0, 8, 8], "pixels": 5000},
                    {"label": "blouse", "bbox_xyxy": [0, 0, 4, 4], "pixels": 3500},
                    {"label": "shoes", "bbox_xyxy": [0, 0, 8, 8], "pixels": 9000},
                    {"label": "shorts", "bbox_xyxy": [0, 0, 8, 8], "pixels": 3000},
                ],
            },
            "1005": {
                "image": "photos/1005.jpg",
                "annotation": "image-level",
                "items": [{"label": "jeans", "bbox_xyxy": [0, 0, 8, 8], "pixels": 5000}],
            },
        },
    }
    (street / "annotations.json").write_text(json.dumps(ann))
    return cat, street


def test_loaders(tiny):
    cat, street = tiny
    luma = load_luma(cat / "products.jsonl")
    assert [p.sku for p in luma] == ["T1", "P1", "G1"]
    assert luma[0].variants == {
        "Red": ["images/t1-red.png"],
        "Blue": ["images/t1-blue.png", "images/t1-blue-back.png"],
    }
    assert luma[1].category == "Women/Bottoms/Pants" and luma[1].garment_type is GarmentType.pants
    assert luma[2].category == "Gear/Bags" and luma[2].garment_type is None
    items = load_street_items(street)
    # shoes: no type; shorts: not over 3000 pixels; 1005: not pixel-labelled
    assert [(i.label, i.garment_type) for i in items] == [
        ("jeans", GarmentType.pants),
        ("blouse", GarmentType.tee),
    ]

    (cat / "bad.jsonl").write_text('{"sku": "A"}\n{not json}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        load_luma(cat / "bad.jsonl")


def test_evaluate_plumbing_with_an_oracle(tiny):
    """A hand-made search: checks leave-out sets, the queries of every task, and metric arithmetic."""
    cat, street = tiny
    luma = load_luma(cat / "products.jsonl")
    items = load_street_items(street)
    sha = {p.name: sha256_bytes(p.read_bytes()) for p in (cat / "images").iterdir()}
    seen: list[Query] = []

    def encode(queries):
        seen.extend(queries)
        return np.zeros((len(queries), 4), np.float32)

    def search(queries, vectors, k, leave_out):
        assert len(queries) == len(vectors) == len(leave_out) and k == 10
        return [oracle(set(lo)) for lo in leave_out]

    def oracle(leave_out):
        # Queries that leave out T1's red image get T1 (blue back image) first, then P1.
        if leave_out == {sha["t1-red.png"]}:
            return [
                RankedProduct("T1", sha["t1-blue-back.png"], 0.9),
                RankedProduct("P1", sha["p1-blue.png"], 0.8),
            ]
        if leave_out == {sha["t1-blue.png"], sha["t1-blue-back.png"]}:
            return [RankedProduct("G1", sha["g1.png"], 0.9), RankedProduct("T1", sha["t1-red.png"], 0.5)]
        # no leave-out: street + text queries
        return [RankedProduct("P1", sha["p1-blue.png"], 0.7), RankedProduct("G1", sha["g1.png"], 0.6)]

    report = evaluate_retrieval(luma, cat, items, encode, search, k=10)
    m = report.metrics
    # Task 1: two queries (T1 red, T1 blue). Red query: T1 at rank 1; blue query: T1 at rank 2.
    assert report.counts["luma_queries"] == 2
    assert m["luma_other_color_hit@1"] == 0.5 and m["luma_other_color_hit@10"] == 1.0
    # leaf category Men/Tops/Tees = {T1}: 1/10 in both queries
    assert m["luma_leaf_category_p10"] == pytest.approx(0.1)
    # Task 2: jeans -> pants {P1}: P1 first = 1/10; blouse -> tee {T1}: 0
    assert report.per_type["pants"]["p10"] == pytest.approx(0.1) and report.per_type["tee"]["p10"] == 0.0
    assert m["street_type_p10"] == pytest.approx(0.05) and m["street_type_p10_worst"] == 0.0
    # Task 3: pairs (red, tee) {T1}, (blue, tee) {T1}, (blue, pants) {P1}: only blue pants hits, capped at 1
    assert report.counts["text_queries"] == 3
    assert m["text_p10"] == pytest.approx(1 / 3) and m["text_p10_raw"] == pytest.approx(0.1 / 3)
    texts = sorted(q.text for q in seen if q.image is None)
    assert texts == ["blue pants", "blue tee", "red tee"]
    # Task 4: (T1 red image + "blue") -> T1 first with its blue back image: hit.
    #         (T1 blue image + "red")  -> T1 second with its red image: hit.
    assert report.counts["tti_queries"] == 2
    assert m["tti_hit@10"] == 1.0
    tti = [q for q in seen if q.image is not None and q.text]
    assert sorted(q.text for q in tti) == ["blue", "red"]
    # colour precision: "blue" query results T1, P1 (both blue; 2 blue products) -> capped 1.0;
    # "red" query results G1, T1 (1 red product: T1) -> capped 1.0
    assert m["tti_color_p10"] == 1.0 and m["tti_color_p10_raw"] == pytest.approx(0.15)
    assert json.dumps(report.as_json())  # serialisable (NaN -> null)


def test_eval_command_end_to_end(tiny, tmp_path, monkeypatch):
    """``eval retrieval``: ingest runner -> store + index -> Searcher -> metrics (fake encoder)."""
    from retrieval_fakes import ColorEncoder
    from typer.testing import CliRunner

    import fittingroom.models.specs as specs
    from fittingroom.cli import build_app

    cat, street = tiny
    monkeypatch.setattr(specs, "get_encoder", lambda core, name, **kw: ColorEncoder())
    args = ["eval", "retrieval", "--catalog", str(cat), "--street-photos", str(street), "--encoder", "fake"]
    r = CliRunner().invoke(build_app(), [*args, "--json", "--workdir", str(tmp_path / "work")])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["encoder"] == "fake-color"
    assert out["counts"] == {
        "luma_queries": 2,
        "luma_products_2plus_colors": 1,
        "street_queries": 2,
        "text_queries": 3,
        "tti_queries": 2,
    }
    # T1 red query (red image left out): T1 is only reachable via its blue images; the colour
    # encoder ranks blue P1 close, but T1 must be in the top 10 of a 3-product catalog.
    assert out["luma_other_color_hit@10"] == 1.0
    # "blue tee" / "red tee" / "blue pants": each finds its single relevant product first
    assert out["text_p10"] == 1.0
    # The temp store was kept in --workdir and holds the catalog under source "luma"
    from fittingroom.catalog.sqlite import SQLiteStore

    with SQLiteStore(tmp_path / "work" / "catalog.db", read_only=True) as store:
        assert store.product_keys() == {("luma", "T1"), ("luma", "P1"), ("luma", "G1")}

    table = CliRunner().invoke(build_app(), args, env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "Retrieval evaluation - encoder fake-color" in table.stdout
    assert "Street photos: garment-type" in table.stdout and "tti_queries: 2" in table.stdout

    bad = CliRunner().invoke(
        build_app(), ["eval", "retrieval", "--catalog", str(tmp_path / "nope.jsonl")], env={"COLUMNS": "400"}
    )
    assert bad.exit_code == 2 and "no such file" in " ".join(bad.output.split())


@pytest.mark.real_data
def test_ground_truth_of_the_shared_data():
    from fittingroom.settings import get_settings

    shared = get_settings().shared_data
    if not (shared / "luma-catalog" / "products.jsonl").is_file():
        pytest.skip(f"shared data not found at {shared}")
    luma = load_luma(shared / "luma-catalog" / "products.jsonl")
    assert len(luma) == 191
    multi = [p for p in luma if len(p.variants) >= 2]
    assert len(multi) == 135 and sum(len(p.variants) for p in multi) == 405  # other-colour queries
    cats = {p.category for p in luma}
    assert (
        "Gear/Bags" in cats and "Men/Tops/Tees" in cats and not any(c.startswith("Collections") for c in cats)
    )
    by_type = {t: sum(p.garment_type is t for p in luma) for t in GarmentType}
    assert all(n >= 20 for n in by_type.values())
    assert not any(p.garment_type for p in luma if p.category and "Tanks" in p.category)
    items = load_street_items(shared / "street-photos")
    assert {i.garment_type for i in items} == set(GarmentType)
    assert all(i.pixels > 3000 and int(i.photo.stem) <= 400 for i in items)
