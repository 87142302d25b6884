"""CatalogFacets: each constraint kind as an id filter, the apparel gate, effective gender."""

from __future__ import annotations

import numpy as np
import pytest

from fittingroom.catalog.models import GarmentCategory, ImageRecord, Product
from fittingroom.retrieval.constraints import CatalogFacets, effective_gender
from fittingroom.retrieval.lexicon import QueryLexicon
from fittingroom.retrieval.query import QueryParser


def product(
    pid, garment, *, price=10.0, currency="USD", gender=None, brand=None, sizes=(), path=("Shop",), title="x"
):
    return Product(
        source="s",
        id=pid,
        title=title,
        garment_category=garment,
        category_path=list(path),
        price=price,
        currency=currency,
        gender=gender,
        brand=brand,
        sizes=list(sizes),
        images=[ImageRecord(url=f"{pid}.jpg", sha256=pid * 16, vector_id=int(pid))],
    )


PRODUCTS = [
    product("1", GarmentCategory.top, price=20, gender="men", brand="Acme", sizes=["S", "M"]),
    product("2", GarmentCategory.top, price=60, gender="women", brand="Acme", sizes=["L"]),
    product("3", GarmentCategory.bottom, price=30, currency="EUR", gender="unisex"),
    product("4", GarmentCategory.other, price=5, path=("Groceries", "Juices"), title="Apple juice"),
    product("5", GarmentCategory.top, price=None, title="Women's tee"),
]


@pytest.fixture(scope="module")
def setup():
    lexicon = QueryLexicon.from_products(PRODUCTS)
    return QueryParser(lexicon), CatalogFacets.from_products(PRODUCTS, lexicon)


def allowed(setup, text: str) -> set[int] | None:
    parser, facets = setup
    ids = facets.allowed_ids(parser.parse(text))
    return None if ids is None else set(np.asarray(ids).tolist())


def test_no_constraint_no_filter(setup) -> None:
    assert allowed(setup, "something nice") is None


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("under 40", {1, 3, 4}),  # no price (5) never matches a price bound
        ("under $40", {1, 4}),  # "$": priced in USD
        ("under 40 eur", {3}),  # a currency keeps the products priced in it
        ("over 50", {2}),
        ("tee", {1, 2, 5}),  # garment category top
        ("juice", {4}),  # a catalog category outside the garment taxonomy: its path
        ("acme tee", {1, 2}),
        ("tee for women", {2, 5}),  # 5 is women's by its title
        ("shorts for men", {3}),  # unisex matches
        ("size L", {2, 3, 5}),  # unknown sizes match; the apparel gate drops the juice
        ("women's", {2, 3, 5}),
        ("tee under $10", set()),
    ],
)
def test_each_constraint_kind(setup, text, expect) -> None:
    assert allowed(setup, text) == expect


def test_effective_gender() -> None:
    assert effective_gender(product("9", GarmentCategory.top, gender="Women")) == "women"
    assert effective_gender(product("9", GarmentCategory.top, path=("Men", "Tops"))) == "men"
    assert effective_gender(product("9", GarmentCategory.top)) is None


def test_a_product_nothing_describes_stays_under_a_category_constraint() -> None:
    """A crawled shop without categories (no category, no path, a title naming no garment) is not
    emptied by "t-shirt": its products are unknown, not "other", and the embedding ranks them."""
    products = [
        product("1", GarmentCategory.bottom, title="Chinos"),
        product("2", None, path=(), title="Gerald the Giraffe"),
        product("3", GarmentCategory.other, path=("Groceries",), title="Apple juice"),
        product("4", GarmentCategory.other, path=(), title="Apple juice box"),  # as ingest stores it
    ]
    lexicon = QueryLexicon.from_products(products)
    setup = QueryParser(lexicon), CatalogFacets.from_products(products, lexicon)
    assert allowed(setup, "giraffe t-shirt") == {2, 4}
    assert allowed(setup, "chinos") == {1, 2, 4}


def test_colour_filters_by_family_with_catalog_names_and_synonyms() -> None:
    def coloured(pid: str, colors: list[str], title: str = "x") -> Product:
        p = product(pid, GarmentCategory.top, title=title)
        return p.model_copy(update={"colors": colors})

    items = [
        coloured("1", ["Blue"]),
        coloured("2", ["Black"]),
        coloured("3", [], title="Navy tee"),
        coloured("4", []),
    ]
    lexicon = QueryLexicon.from_products(items)
    parser, facets = QueryParser(lexicon), CatalogFacets.from_products(items, lexicon)
    navy = parser.parse("navy tee")
    assert facets.allowed_ids(navy) is not None and len(facets.allowed_ids(navy)) == 4  # ranks only
    assert set(facets.allowed_ids(navy, color=True).tolist()) == {1, 3}  # navy -> blue family
    assert set(facets.allowed_ids(parser.parse("black tee"), color=True).tolist()) == {2}
    assert facets.product_count(facets.mask(navy, color=True)) == 2
    assert facets.product_count(None) == 4


def test_the_classifier_says_what_an_undescribed_image_shows() -> None:
    """A product nothing describes takes each image's classifier reading (``image_garment``):
    the filter and the evaluation's violation check agree on it."""
    from fittingroom.catalog.models import PhotoType
    from fittingroom.retrieval.constraints import image_garment
    from fittingroom.retrieval.query_eval import violation

    def undescribed(pid: str, **image_fields) -> Product:
        p = product(pid, None, path=(), title="Gerald")
        return p.model_copy(update={"images": [p.images[0].model_copy(update=image_fields)]})

    bag = undescribed(
        "1", garment_category_pred=GarmentCategory.bag_accessory, photo_type=PhotoType.product_only
    )
    keyring = undescribed("2", photo_type=PhotoType.other, garment_category_pred=GarmentCategory.top)
    tee = undescribed("3", garment_category_pred=GarmentCategory.top, photo_type=PhotoType.on_model)
    plain = undescribed("4")
    described = product("5", GarmentCategory.bottom, title="Chinos")
    items = [bag, keyring, tee, plain, described]
    assert [image_garment(p, p.images[0]) for p in items] == [
        GarmentCategory.bag_accessory,
        GarmentCategory.other,  # no garment photo, whatever the category head says
        GarmentCategory.top,
        None,
        GarmentCategory.bottom,
    ]
    # the feed's category wins over the classifier
    chinos = described.model_copy(
        update={
            "images": [described.images[0].model_copy(update={"garment_category_pred": GarmentCategory.top})]
        }
    )
    assert image_garment(chinos, chinos.images[0]) is GarmentCategory.bottom
    lexicon = QueryLexicon.from_products(items)
    parser, facets = QueryParser(lexicon), CatalogFacets.from_products(items, lexicon)
    assert allowed((parser, facets), "t-shirt") == {3, 4}  # unknown 4 stays, ranked by the embedding
    assert allowed((parser, facets), "clothes") == {1, 3, 4, 5}
    assert allowed((parser, facets), "size M") == {1, 3, 4, 5}  # the apparel gate
    tshirt = parser.parse("t-shirt")
    assert violation(bag, tshirt, bag.images[0]) is not None
    assert violation(tee, tshirt, tee.images[0]) is None
    assert violation(plain, tshirt, plain.images[0]) is not None  # the evaluation counts unknown as other


def test_an_unsure_classifier_reading_leaves_the_image_unknown() -> None:
    """A printed tee read 0.51 one-piece / 0.49 top (a real Fur storefront shirt): no category
    constraint may hide it; a confident reading still places the image."""
    from fittingroom.catalog.models import PhotoType
    from fittingroom.retrieval.constraints import CLASSIFIER_CATEGORY_FLOOR, image_garment

    def undescribed(pid: str, pred: GarmentCategory, probs: dict[str, float]) -> Product:
        p = product(pid, None, path=(), title="Gerald the Giraffe")
        image = p.images[0].model_copy(
            update={
                "photo_type": PhotoType.product_only,
                "garment_category_pred": pred,
                "garment_category_probs": probs,
            }
        )
        return p.model_copy(update={"images": [image]})

    unsure = undescribed("1", GarmentCategory.one_piece, {"one_piece": 0.511, "top": 0.489})
    sure = undescribed("2", GarmentCategory.one_piece, {"one_piece": CLASSIFIER_CATEGORY_FLOOR, "top": 0.2})
    assert image_garment(unsure, unsure.images[0]) is None
    assert image_garment(sure, sure.images[0]) is GarmentCategory.one_piece
    items = [unsure, sure]
    lexicon = QueryLexicon.from_products(items)
    parser, facets = QueryParser(lexicon), CatalogFacets.from_products(items, lexicon)
    assert allowed((parser, facets), "t-shirt") == {1}
    assert allowed((parser, facets), "dress") == {1, 2}


def test_a_wrong_shop_photo_does_not_answer_a_garment_query() -> None:
    """Luma's Electra Bra Top lists a tote-bag photo among its black images (wb01-black-0.jpg,
    read bag 0.999): that image is a bag under category constraints, the product's other images
    stay tops; an unsure or garment reading never overrules the feed."""
    from fittingroom.catalog.models import PhotoType
    from fittingroom.retrieval.constraints import image_garment

    base = product("1", GarmentCategory.top, title="Electra Bra Top")

    def with_reading(pred: GarmentCategory, prob: float, photo_type=PhotoType.product_only):
        image = base.images[0].model_copy(
            update={
                "photo_type": photo_type,
                "garment_category_pred": pred,
                "garment_category_probs": {pred.value: prob},
            }
        )
        return base.model_copy(update={"images": [image]})

    def reads(p: Product) -> GarmentCategory | None:
        return image_garment(p, p.images[0])

    assert reads(with_reading(GarmentCategory.bag_accessory, 0.999)) is GarmentCategory.bag_accessory
    assert reads(with_reading(GarmentCategory.bag_accessory, 0.6)) is GarmentCategory.top  # unsure
    assert reads(with_reading(GarmentCategory.bottom, 0.99)) is GarmentCategory.top  # the feed wins
    assert reads(with_reading(GarmentCategory.top, 0.99, PhotoType.other)) is GarmentCategory.other
    bag = with_reading(GarmentCategory.bag_accessory, 0.999)
    tee = product("2", GarmentCategory.top, title="Gwyn Tee")
    items = [bag, tee]
    lexicon = QueryLexicon.from_products(items)
    parser, facets = QueryParser(lexicon), CatalogFacets.from_products(items, lexicon)
    assert allowed((parser, facets), "top") == {2}
