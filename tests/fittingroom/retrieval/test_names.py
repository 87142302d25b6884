"""Forgiving brand / category filter values (fittingroom.retrieval.names)."""

from __future__ import annotations

from fittingroom.catalog.models import Product
from fittingroom.retrieval.names import KnownNames

NAMES = KnownNames(
    brands=("Luma (Magento sample data)", "Other & Co", "Saleor"),
    categories=("hoodies & sweatshirts", "jackets", "men", "men/tops", "top", "tops"),
)


def test_exact_names_are_exact_up_to_the_filters_normalisation() -> None:
    m = NAMES.match_brand("  SALEOR ")
    assert (m.used, m.exact) == ("Saleor", True)
    c = NAMES.match_category("Men > Tops")
    assert (c.used, c.exact) == ("men/tops", True)


def test_misspelt_and_partial_names_are_read_as_the_closest() -> None:
    assert NAMES.match_brand("salor").used == "Saleor"
    assert NAMES.match_brand("luma").used == "Luma (Magento sample data)"
    assert NAMES.match_brand("other and co").used == "Other & Co"
    assert not NAMES.match_brand("salor").exact
    assert NAMES.match_category("jackts").used == "jackets"
    assert NAMES.match_category("hoodies").used == "hoodies & sweatshirts"


def test_unknown_and_too_short_values_match_nothing() -> None:
    assert NAMES.match_brand("adidas").used is None
    assert NAMES.match_brand("a").used is None  # one letter is "in" every name
    assert NAMES.match_category("xyzzy").used is None


def test_known_names_of_products() -> None:
    products = [
        Product(source="s", id="1", title="t", brand="Acme  Co", category_path=["Men", "Tops"]),
        Product(source="s", id="2", title="t", brand="acme co", category_path=["Women"]),
        Product(source="s", id="3", title="t", brand=None),
    ]
    names = KnownNames.from_products(products)
    assert names.brands == ("Acme Co",)
    assert names.categories == ("men", "men/tops", "tops", "women")
    assert names.category_names == ("men", "tops", "women")
