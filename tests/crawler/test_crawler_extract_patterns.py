"""Generic DOM patterns of the extraction (crawler/extract/patterns.py and the heuristics that use
them), each on a small synthetic page written here."""

from __future__ import annotations

import pytest

from crawler.extract.document import load_document
from crawler.extract.page import parse_page
from crawler.extract.patterns import class_value, data_layer_value, gtin_candidates, valid_gtin
from crawler.items import Availability

URL = "https://shop.example/p/item"


def _doc(body: str, head: str = ""):  # noqa: ANN202 - a Document
    return load_document(f"<html><head>{head}</head><body>{body}</body></html>", URL)


def test_class_named_sku_and_brand() -> None:
    doc = _doc(
        '<h1>Trail shoe</h1><div class="product-meta"><span class="sku">SKU: TS-4411</span>'
        '<a class="product-brand" href="/b/acme">Acme Outdoor</a></div>'
    )
    assert class_value(doc, "sku") == "TS-4411"
    assert class_value(doc, "brand") == "Acme Outdoor"


def test_class_value_skips_related_blocks_and_non_ids() -> None:
    doc = _doc(
        '<div class="related-products"><span class="brand">Other Brand</span><span class="sku">R-1</span></div>'
        '<span class="sku">not an id at all</span><span id="brand-logo"></span>'
    )
    assert class_value(doc, "brand") is None  # only inside the related block
    assert class_value(doc, "sku") is None  # the main one is prose, not an id
    # a brand logo's alt text stands in for the brand name
    logo = _doc('<div class="brand"><img src="/l.png" alt="Northwind"></div>')
    assert class_value(logo, "brand") == "Northwind"


def test_data_layer_brand_only_when_all_values_agree() -> None:
    one = _doc(
        '<script>dataLayer.push({"ecommerce": {"items": [{"item_id": "1", "item_brand": "Acme"}]}});</script>'
        "<script>var product = {brand: 'ACME', price: 10};</script>"
    )
    assert data_layer_value(one, "brand") == "Acme"  # "Acme" and "ACME" agree
    many = _doc('<script>var items = [{"brand": "Acme"}, {"brand": "Globex"}];</script>')
    assert data_layer_value(many, "brand") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4006381333931", "4006381333931"),  # EAN-13
        ("4006381333932", None),  # wrong check digit
        ("0 36000 29145 2", "036000291452"),  # UPC-A written with spaces
        ("96385074", "96385074"),  # EAN-8
        ("12345", None),
        (None, None),
    ],
)
def test_valid_gtin(value: str | None, expected: str | None) -> None:
    assert valid_gtin(value) == expected


def test_gtin_from_itemprop_and_from_a_label() -> None:
    assert gtin_candidates(_doc('<meta itemprop="gtin13" content="4006381333931">')) == "4006381333931"
    table = _doc("<table><tr><th>EAN</th><td>4006381333931</td></tr></table>")
    assert gtin_candidates(table) == "4006381333931"
    assert gtin_candidates(_doc("<p>EAN: 4006381333932</p>")) is None  # bad check digit


def test_brand_labels_in_more_languages_and_make_manufacturer() -> None:
    table = (
        '<h1>Robot mower 400</h1><span class="price">€ 978,00</span>'
        "<table><tr><td>Kaubamärk</td><td><a href='/f'>Boschy</a></td></tr></table>"
    )
    item = parse_page(f"<html><body>{table}</body></html>", URL, assume_product=True).product
    assert item is not None and item.brand == "Boschy" and item.sources["brand"] == "heuristic"
    listing = (
        '<h1>Washing machine 6kg</h1><p class="attrgroup"><span>make/manufacturer: <b>Indeco</b></span></p>'
    )
    item = parse_page(f"<html><body>{listing}</body></html>", URL, assume_product=True).product
    assert item is not None and item.brand == "Indeco"


def test_buy_link_inside_a_button_block_means_in_stock() -> None:
    html = (
        '<html><body><h1>Goose floss</h1><span class="price">NT$294</span>'
        '<div class="buyBtn"><a href="javascript:buy()">加入購物車</a></div></body></html>'
    )
    item = parse_page(html, URL, assume_product=True).product
    assert item is not None and item.availability == Availability.in_stock
    disabled = html.replace('<div class="buyBtn"><a href="javascript:buy()">加入購物車</a></div>', "")
    item = parse_page(disabled, URL, assume_product=True).product
    assert item is not None and item.availability is None


def test_price_inside_an_add_to_cart_form_is_not_cart_noise() -> None:
    html = (
        '<html><body><h1>Amp 12</h1><div id="minicart"><span class="price">€ 5,00</span></div>'
        '<form id="addToCart" class="a-content"><span id="price_inside_buybox">100,00 €</span></form>'
        '<div class="sims-fbt"><span id="mbc-price-1">110,00 €</span></div></body></html>'
    )
    item = parse_page(html, URL, assume_product=True).product
    assert item is not None and item.price == 100.0 and item.currency == "EUR"


_STRUCK = (
    '<html><body><div itemscope itemtype="http://schema.org/Product"><h1 itemprop="name">Glasses</h1>'
    '<div itemprop="offers" itemscope itemtype="http://schema.org/Offer">'
    '<meta itemprop="price" content="219.99"><meta itemprop="priceCurrency" content="EUR"></div>'
    '<div class="price-block"><span class="original-price">EUR219.99</span> -50% '
    '<span class="product-price current">EUR{current}</span></div></div></body></html>'
)


def test_published_price_shown_struck_through_gives_way_to_the_current_price() -> None:
    item = parse_page(_STRUCK.format(current="110.00"), URL).product
    assert item is not None and item.price == 110.0 and item.sources["price"] == "heuristic"
    # not struck on the page: the published price stands
    plain = _STRUCK.format(current="110.00").replace('class="original-price"', 'class="info"')
    item = parse_page(plain, URL).product
    assert item is not None and item.price == 219.99 and item.sources["price"] == "microdata"


def test_lower_case_microdata_price_currency() -> None:
    html = (
        '<html><body><div itemscope itemtype="http://schema.org/Product"><h1 itemprop="name">Book</h1>'
        '<div itemprop="offers" itemscope itemtype="http://schema.org/Offer">'
        '<meta itemprop="price" content="17.10"><meta itemprop="pricecurrency" content="EUR"></div>'
        "</div></body></html>"
    )
    item = parse_page(html, URL).product
    assert item is not None and (item.price, item.currency) == (17.1, "EUR")
    assert item.sources["currency"] == "microdata"


def test_currency_beside_a_bare_amount() -> None:
    html = '<html><body><h1>Phone</h1><div class="prices"><span class="price">44 890</span> <b>тг</b></div></body></html>'
    item = parse_page(html, "https://shop.example/p", assume_product=True).product
    assert item is not None and (item.price, item.currency) == (44890.0, "KZT")
