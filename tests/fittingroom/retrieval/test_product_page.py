"""Product page rules: images grouped by colour, availability, try-on image, similar products."""

from __future__ import annotations

import numpy as np
import pytest

from fittingroom.catalog.models import ImageRecord, PhotoType, Product, vector_id_for
from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.index import VectorIndex, sync_index
from fittingroom.models.encoders.base import l2_normalize
from fittingroom.retrieval.product_page import (
    availability_of,
    group_images,
    product_page,
    similar_products,
)
from fittingroom.retrieval.search import ProductNotFoundError, Searcher


def img(name: str, color: str | None = None, *, main: bool = False, **kw: object) -> ImageRecord:
    sha = f"{name:0>64}"
    return ImageRecord(
        url=f"https://shop.example/{name}.jpg",
        sha256=sha,
        vector_id=vector_id_for("t", name, sha),
        color=color,
        is_main=main,
        **kw,  # type: ignore[arg-type]
    )


def test_groups_follow_main_then_declared_colours_then_appearance_then_uncoloured():
    p = Product(
        source="t",
        id="H",
        title="Hoodie",
        colors=["Black", "Gray", "Orange"],
        images=[
            img("a1", None),
            img("o1", "Orange"),
            img("g1", "gray"),
            img("g2", "Gray", main=True),
            img("b1", "Black"),
            img("p1", "Pink"),
            img("g2", "Gray"),  # the same image twice: shown once
        ],
    )
    groups = group_images(p)
    assert [g.color for g in groups] == ["gray", "Black", "Orange", "Pink", None]
    assert [i.sha256[-2:] for i in groups[0].images] == ["g2", "g1"]  # main image first in its group
    assert sum(len(g.images) for g in groups) == 6


def test_uncoloured_product_is_one_group_and_no_image_no_group():
    p = Product(source="t", id="X", title="X", images=[img("x1"), img("x2", main=True)])
    groups = group_images(p)
    assert len(groups) == 1 and groups[0].color is None
    assert [i.sha256[-2:] for i in groups[0].images] == ["x2", "x1"]
    assert group_images(Product(source="t", id="Y", title="Y")) == []


@pytest.mark.parametrize(
    ("attributes", "expect"),
    [
        ({"availability": "https://schema.org/InStock"}, "in_stock"),
        ({"availability": "out of stock"}, "out_of_stock"),
        ({"stock_status": "preorder"}, "preorder"),
        ({"availability": "whatever"}, None),
        ({}, None),
    ],
)
def test_availability(attributes, expect):
    assert availability_of(Product(source="t", id="A", title="A", attributes=attributes)) == expect


def test_tryon_image_is_the_one_rule(tmp_path):
    store = SQLiteStore(tmp_path / "c.db")
    eligible = img(
        "e1", "Red", tryon_eligible=True, tryon_eligible_prob=0.8, photo_type=PhotoType.product_only
    )
    other = img("n1", "Red", main=True, tryon_eligible=False, photo_type=PhotoType.other)
    store.upsert_products(
        [
            Product(source="t", id="A", title="A", images=[other, eligible]),
            Product(
                source="t",
                id="B",
                title="B",
                images=[img("n2", tryon_eligible=False, photo_type=PhotoType.other)],
            ),
        ]
    )
    a = product_page(store, "t:A")
    assert a.tryon_ready and a.tryon_image is not None and a.tryon_image.sha256 == eligible.sha256
    assert a.main_image is not None and a.main_image.sha256 == other.sha256
    b = product_page(store, "t:B")
    assert not b.tryon_ready and b.tryon_image is None
    with pytest.raises(ProductNotFoundError, match="t:NOPE"):
        product_page(store, "t:NOPE")
    with pytest.raises(ValueError, match="source:id"):
        product_page(store, "nocolon")
    store.close()


class VecEncoder:
    name = "fake-vec"
    dim = 3


def test_similar_products_nearest_first_without_itself(tmp_path):
    store = SQLiteStore(tmp_path / "c.db")
    vecs = {"A": [1, 0, 0], "B": [0.9, 0.1, 0], "C": [0.2, 1, 0], "D": [0.5, 0.5, 0], "E": [0, 0, 1]}
    products = [Product(source="t", id=k, title=k, images=[img(k, main=True)]) for k in vecs]
    products.append(Product(source="t", id="NOVEC", title="no vector", images=[img("Z", main=True)]))
    store.upsert_products(products)
    store.put_embeddings(
        "fake-vec",
        [p.images[0].vector_id for p in products[:5]],
        l2_normalize(np.asarray(list(vecs.values()), np.float32)),
    )
    sync_index(store, "fake-vec", tmp_path / "index")
    searcher = Searcher(store, VectorIndex.open(tmp_path / "index", "fake-vec"), VecEncoder())  # type: ignore[arg-type]
    hits = similar_products(searcher, "t:A", k=3)
    assert [h.product.id for h in hits] == ["B", "D", "C"]
    assert sorted(h.product.id for h in similar_products(searcher, "t:E", k=10)) == ["A", "B", "C", "D"]
    assert similar_products(searcher, "t:NOVEC", k=3) == []
    with pytest.raises(ProductNotFoundError):
        similar_products(searcher, "t:NOPE", k=3)
    store.close()
