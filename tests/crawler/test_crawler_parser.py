"""Product extraction: schema.org (JSON-LD, microdata, RDFa), OpenGraph, prices, variants, heuristics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.extract.fields import currency_code, parse_availability, parse_price
from crawler.extract.heuristics import url_product_id
from crawler.extract.images import image_size_hint, order_images
from crawler.extract.page import extract_product, parse_page
from crawler.items import Availability


def page(*jsonld: dict, head: str = "", body: str = "") -> str:
    scripts = "".join(f'<script type="application/ld+json">{json.dumps(d)}</script>' for d in jsonld)
    return f"<html><head>{scripts}{head}</head><body>{body}</body></html>"


# ---- prices, currencies, availability -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount", "symbol"),
    [
        ("349,95", 349.95, None),
        ("$1,299.00", 1299.0, "$"),
        ("15.99 EUR", 15.99, "EUR"),
        ("1.299,00 €", 1299.0, "€"),
        ("119.99", 119.99, None),
        (52, 52.0, None),
        ("free", 0.0, None),
        ("call us", None, None),
        ("", None, None),
    ],
)
def test_parse_price(text: object, amount: float | None, symbol: str | None) -> None:
    got_amount, got_symbol = parse_price(text)
    assert got_amount == pytest.approx(amount) if amount is not None else got_amount is None
    assert got_symbol == symbol


@pytest.mark.parametrize(
    ("value", "url", "code"),
    [
        ("€", None, "EUR"),
        ("usd", None, "USD"),
        ("$", "https://shop.example.com/x", "USD"),
        ("$", "https://www.bestbuy.ca/p/1", "CAD"),
        ("Rs", "https://www.olx.com.pk/item/1", "PKR"),
        ("zł", None, "PLN"),
        ("gbp", None, "GBP"),
        ("dollars please", None, None),
    ],
)
def test_currency_code(value: str, url: str | None, code: str | None) -> None:
    assert currency_code(value, url) == code


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://schema.org/InStock", Availability.in_stock),
        ("https://schema.org/OutOfStock", Availability.out_of_stock),
        ("in stock", Availability.in_stock),
        ("PreOrder", Availability.preorder),
        ("schema:BackOrder", Availability.backorder),
        ("SoldOut", Availability.out_of_stock),
        ("maybe", None),
    ],
)
def test_parse_availability(value: str, expected: Availability | None) -> None:
    assert parse_availability(value) == expected


# ---- JSON-LD -----------------------------------------------------------------------------------


def test_jsonld_offer_brand_object_images_absolute_and_breadcrumbs() -> None:
    html = page(
        {
            "@context": "https://schema.org",
            "@type": "Product",
            "name": "Linen Shirt",
            "sku": "LS-1",
            "brand": {"@type": "Brand", "name": "Acme"},
            "image": [
                "/img/shirt_200x200.jpg",
                {"@type": "ImageObject", "url": "/img/back.jpg", "width": 1200},
            ],
            "offers": {
                "@type": "Offer",
                "price": "49.90",
                "priceCurrency": "EUR",
                "availability": "https://schema.org/InStock",
            },
        },
        {
            "@context": "https://schema.org",
            "@type": "BreadcrumbList",
            "itemListElement": [
                {"@type": "ListItem", "position": 1, "name": "Home", "item": "https://shop.example/"},
                {
                    "@type": "ListItem",
                    "position": 3,
                    "name": "Shirts",
                    "item": "https://shop.example/men/shirts",
                },
                {"@type": "ListItem", "position": 2, "name": "Men", "item": "https://shop.example/men"},
                {"@type": "ListItem", "position": 4, "name": "Linen Shirt"},
            ],
        },
        head='<link rel="canonical" href="/p/linen-shirt">',
    )
    item = extract_product(html, "https://shop.example/p/linen-shirt?utm=x")
    assert item is not None
    assert (item.name, item.sku, item.brand) == ("Linen Shirt", "LS-1", "Acme")
    assert (item.price, item.currency, item.availability) == (49.9, "EUR", Availability.in_stock)
    # the image with a declared 1200 px width first, the 200 px rendition second, both absolute
    assert item.images == ["https://shop.example/img/back.jpg", "https://shop.example/img/shirt_200x200.jpg"]
    # breadcrumbs in position order, without the home crumb and the product itself
    assert item.category_path == ["Men", "Shirts"]
    assert item.canonical_url == "https://shop.example/p/linen-shirt"
    assert item.sources["price"] == "json-ld"


def test_jsonld_graph_and_id_references() -> None:
    html = page(
        {
            "@context": "https://schema.org",
            "@graph": [
                {"@type": "WebPage", "@id": "https://s.example/p/1#page", "mainEntity": {"@id": "#product"}},
                {
                    "@type": "Product",
                    "@id": "#product",
                    "name": "Wool Coat",
                    "sku": "WC-9",
                    "brand": {"@id": "#brand"},
                    "offers": {"@id": "#offer"},
                    "image": "https://s.example/c.jpg",
                },
                {"@type": "Brand", "@id": "#brand", "name": "Northwind"},
                {
                    "@type": "Offer",
                    "@id": "#offer",
                    "price": 199,
                    "priceCurrency": "GBP",
                    "availability": "http://schema.org/OutOfStock",
                },
            ],
        }
    )
    item = extract_product(html, "https://s.example/p/1")
    assert item is not None
    assert (item.name, item.brand, item.price, item.currency) == ("Wool Coat", "Northwind", 199.0, "GBP")
    assert item.availability is Availability.out_of_stock


def test_aggregate_offer_and_strikethrough_price_specification() -> None:
    agg = page(
        {
            "@type": "Product",
            "name": "Sneaker",
            "sku": "S1",
            "image": "/s.jpg",
            "offers": {
                "@type": "AggregateOffer",
                "lowPrice": "59.00",
                "highPrice": "89.00",
                "priceCurrency": "USD",
                "offerCount": 3,
            },
        }
    )
    item = extract_product(agg, "https://s.example/sneaker")
    assert item is not None and (item.price, item.currency) == (59.0, "USD")
    # an offer without availability but with a price is an offer one can take
    assert item.availability is Availability.in_stock

    spec = page(
        {
            "@type": "Product",
            "name": "Dress",
            "sku": "D1",
            "image": "/d.jpg",
            "offers": {
                "@type": "Offer",
                "priceCurrency": "EUR",
                "priceSpecification": [
                    {
                        "@type": "UnitPriceSpecification",
                        "price": 120,
                        "priceType": "https://schema.org/ListPrice",
                    },
                    {"@type": "UnitPriceSpecification", "price": 79.5},
                ],
            },
        }
    )
    item = extract_product(spec, "https://s.example/dress")
    assert item is not None
    assert (item.price, item.regular_price, item.currency) == (79.5, 120.0, "EUR")


def test_product_group_has_variant_colours_sizes_and_images() -> None:
    offer = {
        "@type": "Offer",
        "price": "25.00",
        "priceCurrency": "USD",
        "availability": "https://schema.org/InStock",
    }
    html = page(
        {
            "@context": "https://schema.org",
            "@type": "ProductGroup",
            "productGroupID": "TEE-1",
            "name": "Tee",
            "brand": "Luma",
            "variesBy": ["https://schema.org/color", "https://schema.org/size"],
            "hasVariant": [
                {
                    "@type": "Product",
                    "sku": "TEE-1-R-S",
                    "color": "Red",
                    "size": "S",
                    "image": "/tee-red.jpg",
                    "offers": offer,
                },
                {
                    "@type": "Product",
                    "sku": "TEE-1-R-M",
                    "color": "Red",
                    "size": "M",
                    "image": "/tee-red.jpg",
                    "offers": offer,
                },
                {
                    "@type": "Product",
                    "sku": "TEE-1-B-S",
                    "color": "Blue",
                    "size": "S",
                    "image": ["/tee-blue.jpg"],
                    "offers": {**offer, "availability": "https://schema.org/OutOfStock"},
                },
            ],
        }
    )
    item = extract_product(html, "https://s.example/tee")
    assert item is not None
    assert item.product_group_id == "TEE-1" and item.product_id() == "TEE-1"
    assert item.colors == ["Red", "Blue"] and item.sizes == ["S", "M"]
    assert len(item.variants) == 3 and item.variants[2].availability is Availability.out_of_stock
    assert item.image_colors == {
        "https://s.example/tee-red.jpg": "Red",
        "https://s.example/tee-blue.jpg": "Blue",
    }
    assert (item.price, item.availability) == (25.0, Availability.in_stock)


def test_variant_in_the_url_picks_its_offer() -> None:
    html = page(
        {
            "@type": "Product",
            "name": "Boot",
            "sku": "B",
            "image": "/b.jpg",
            "offers": [
                {"@type": "Offer", "sku": "B-40", "price": "100", "priceCurrency": "EUR"},
                {"@type": "Offer", "sku": "B-41", "price": "110", "priceCurrency": "EUR"},
            ],
        }
    )
    item = extract_product(html, "https://s.example/boot?variant=B-41")
    assert item is not None and item.price == 110.0


def test_broken_jsonld_block_does_not_hide_the_others() -> None:
    html = (
        '<html><head><script type="application/ld+json">{"@type": "Product", "name": </script>'
        + page(
            {
                "@type": "Product",
                "name": "Hat",
                "sku": "H1",
                "image": "/h.jpg",
                "offers": {"price": "12", "priceCurrency": "USD"},
            }
        )[6:]
    )
    parsed = parse_page(html, "https://s.example/hat")
    assert parsed.product is not None and parsed.product.name == "Hat" and parsed.product.price == 12.0


def test_listing_page_with_many_products_is_not_a_product() -> None:
    items = [
        {
            "@type": "Product",
            "name": f"P{i}",
            "url": f"https://s.example/p/{i}",
            "image": f"/{i}.jpg",
            "offers": {"price": i + 1, "priceCurrency": "USD"},
        }
        for i in range(5)
    ]
    parsed = parse_page(page({"@type": "ItemList", "itemListElement": items}), "https://s.example/c/shoes")
    assert parsed.product is None and not parsed.is_product_page
    assert parsed.listing_urls == [f"https://s.example/p/{i}" for i in range(5)]


def test_related_products_do_not_win() -> None:
    html = page(
        {
            "@type": "Product",
            "name": "Main",
            "sku": "M",
            "image": "/m.jpg",
            "offers": {"price": "10", "priceCurrency": "USD"},
            "isRelatedTo": [
                {
                    "@type": "Product",
                    "name": "Other",
                    "sku": "O",
                    "url": "/o",
                    "offers": {"price": "99", "priceCurrency": "USD"},
                }
            ],
        }
    )
    item = extract_product(html, "https://s.example/m")
    assert item is not None and (item.name, item.price) == ("Main", 10.0)


def test_microdata_and_rdfa() -> None:
    micro = """<html><body><div itemscope itemtype="http://schema.org/Product">
      <h1 itemprop="name">Canvas Tote</h1><img itemprop="image" src="tote.jpg">
      <meta itemprop="sku" content="CT-2"><span itemprop="brand">Bagsy</span>
      <div itemprop="offers" itemscope itemtype="http://schema.org/Offer">
        <span itemprop="price" content="18.00">18,00 €</span><meta itemprop="priceCurrency" content="EUR">
        <link itemprop="availability" href="http://schema.org/InStock"></div></div></body></html>"""
    item = extract_product(micro, "https://s.example/bags/tote")
    assert item is not None and item.sources["name"] == "microdata"
    assert (item.name, item.sku, item.brand, item.price, item.currency) == (
        "Canvas Tote",
        "CT-2",
        "Bagsy",
        18.0,
        "EUR",
    )
    assert item.images == ["https://s.example/bags/tote.jpg"]

    rdfa = """<html><body vocab="https://schema.org/"><div typeof="Product">
      <span property="name">Rain Jacket</span><img property="image" src="/rj.jpg">
      <span property="sku">RJ-7</span>
      <div property="offers" typeof="Offer"><span property="price" content="89.00">89</span>
      <meta property="priceCurrency" content="USD"></div></div></body></html>"""
    item = extract_product(rdfa, "https://s.example/rj")
    assert item is not None and item.sources["name"] == "rdfa"
    assert (item.name, item.sku, item.price, item.currency) == ("Rain Jacket", "RJ-7", 89.0, "USD")


def test_opengraph_product_tags() -> None:
    head = """<meta property="og:type" content="product"><meta property="og:title" content="Beanie">
      <meta property="og:image" content="/beanie_small.jpg"><meta property="og:image:width" content="300">
      <meta property="og:image" content="/beanie_big.jpg"><meta property="og:image:width" content="1200">
      <meta property="product:price:amount" content="15.00">
      <meta property="product:price:currency" content="CAD">
      <meta property="product:availability" content="out of stock">
      <meta property="product:retailer_item_id" content="BN-1">
      <meta property="product:brand" content="Knits">"""
    item = extract_product(f"<html><head>{head}</head><body></body></html>", "https://s.example/beanie")
    assert item is not None
    assert (item.name, item.price, item.currency, item.sku, item.brand) == (
        "Beanie",
        15.0,
        "CAD",
        "BN-1",
        "Knits",
    )
    assert item.availability is Availability.out_of_stock
    assert item.images == ["https://s.example/beanie_big.jpg", "https://s.example/beanie_small.jpg"]


def test_heuristics_without_structured_data() -> None:
    body = """<h1>Leather Belt</h1>
      <div class="gallery"><img class="main-image" src="/belt.jpg" alt="Leather Belt">
      </div><span class="product-price">$35.00</span><del class="price">$50.00</del>
      <table><tr><th>Brand</th><td>Strapco</td></tr><tr><th>SKU</th><td>LB-35</td></tr></table>
      <button class="btn">Add to cart</button>"""
    parsed = parse_page(
        f"<html><head><title>Leather Belt | Strapco shop</title></head><body>{body}</body></html>",
        "https://s.example/belt",
    )
    item = parsed.product
    assert parsed.is_product_page and item is not None
    assert (item.name, item.price, item.currency, item.brand, item.sku) == (
        "Leather Belt",
        35.0,
        "USD",
        "Strapco",
        "LB-35",
    )
    assert item.availability is Availability.in_stock
    assert item.images == ["https://s.example/belt.jpg"]
    assert item.sources["price"] == "heuristic"


def test_out_of_stock_wording() -> None:
    body = '<h1>Scarf</h1><span class="price">€20</span><div id="availability">Sold out</div>'
    item = extract_product(
        f"<html><body>{body}</body></html>", "https://s.example/scarf", assume_product=True
    )
    assert item is not None and item.availability is Availability.out_of_stock


def test_not_a_product_page() -> None:
    parsed = parse_page(
        "<html><head><title>About us</title></head><body><p>We love shirts.</p></body></html>",
        "https://s.example/about",
    )
    assert parsed.product is None and not parsed.is_product_page


@pytest.mark.parametrize(
    "garbage", [b"", b"   ", "\x00\x01\x02 not html at all \xff".encode("latin-1") * 200]
)
def test_garbage_input(garbage: bytes) -> None:
    try:
        parsed = parse_page(garbage, "https://s.example/x")
    except ValueError as exc:
        assert "https://s.example/x" in str(exc)
    else:
        assert parsed.product is None


def test_images_largest_rendition_first() -> None:
    assert image_size_hint("https://cdn.example/p/shirt_1024x1024.jpg?v=1") == 1024
    assert image_size_hint("https://cdn.example/img.jpg?w=640") == 640
    ordered = order_images(
        [
            ("https://cdn.example/a_100x100.jpg", None),
            ("https://cdn.example/b.jpg", None),
            ("https://cdn.example/a_800x800.jpg", None),
        ]
    )
    # two renditions of "a" collapse to the 800 px one, which comes first
    assert ordered == ["https://cdn.example/a_800x800.jpg", "https://cdn.example/b.jpg"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.ebay.com/itm/302474151804", "302474151804"),
        ("https://www.gomaji.com/store/122725?pid=260591", "260591"),
        ("https://www.getit.co.il/Prod/101693/", "101693"),
        ("https://shop.example/taller/TalleR_TR_1047-1609583.html", "1609583"),
        ("https://shop.example/about-us/", None),
    ],
)
def test_url_product_id(url: str, expected: str | None) -> None:
    assert url_product_id(url) == expected


# ---- saved real pages ---------------------------------------------------------------------------


@pytest.mark.real_data
def test_extruct_samples(pages_dir: Path) -> None:
    d = pages_dir / "extruct-samples"
    for name in ("product.html", "product_microdata.html", "product-ref.html"):
        item = extract_product((d / name).read_bytes(), "http://www.example.com/products/anvil")
        assert item is not None, name
        assert (item.name, item.brand, item.mpn, item.price, item.currency) == (
            "Executive Anvil",
            "ACME",
            "925872",
            119.99,
            "USD",
        ), name
        assert item.availability is Availability.in_stock
        assert item.images[0] == "http://www.example.com/products/anvil_executive.jpg"
        # a product without SKU is still identified by its MPN
        assert item.product_id() == "925872"
    expected = json.loads((d / "product-ref.expected.json").read_text())
    ref = extract_product((d / "product-ref.html").read_bytes(), "http://www.example.com/products/anvil")
    assert ref is not None
    # itemref'd properties are merged (the extra image), the referenced product is not the main one
    assert "http://www.example.com/products/img-2.jpg" in ref.images
    assert expected[0]["properties"]["name"] == ref.name

    og = extract_product(
        (d / "opengraph_ns_product_test.html").read_bytes(), "https://www.fye.com/better-off-dead.html"
    )
    assert og is not None
    assert (og.price, og.currency, og.availability) == (17.99, "USD", Availability.in_stock)
    assert og.sku == "fye.000000032429335302"

    md = extract_product(
        (d / "microdata-with-description.html").read_bytes(),
        "http://www.monsterpetsupplies.co.uk/cat/cat-flea-tick/johnsons-4-fleas-cats-kittens-tablets",
    )
    assert md is not None and md.brand == "Johnsons" and md.currency == "GBP"
    assert md.description and "flea" in md.description.lower()


METASCRAPER = {
    # file: (url, name starts with, price, currency, brand)
    "etsy": ("https://www.etsy.com/listing/550571276/x", "EL original", 43.9, "EUR", "OliveCreativeCompany"),
    "overstock": (
        "https://www.overstock.com/x/34092028/product.html",
        "Certified International",
        31.49,
        "USD",
        "Certified International",
    ),
    "wayfair": ("https://www.wayfair.com/x.html", "Penhook", 111.99, "USD", "Wade Logan®"),
    "costco": ("https://www.costco.com/x.product.100432602.html", "AFA Stainless", 329.99, "USD", "AFA"),
    "amazon": ("https://www.amazon.com/dp/B07G2L3JMM", "Modern LED Wall Sconce", 29.99, "USD", "ChangM"),
}


@pytest.mark.real_data
@pytest.mark.parametrize("name", sorted(METASCRAPER))
def test_metascraper_shopping_pages(pages_dir: Path, name: str) -> None:
    url, title, price, currency, brand = METASCRAPER[name]
    parsed = parse_page((pages_dir / "metascraper-shopping-fixtures" / f"{name}.html").read_bytes(), url)
    item = parsed.product
    assert parsed.is_product_page and item is not None
    assert item.name and item.name.startswith(title)
    assert (item.price, item.currency, item.brand) == (price, currency, brand)
    assert item.images and all(u.startswith("https://") for u in item.images)
    assert item.product_id()
