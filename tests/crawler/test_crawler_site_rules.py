"""Per-site rules: the bundled Fur storefront rule and the rules-file format."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.extract.document import load_document
from crawler.extract.page import parse_page
from crawler.site_rules import SiteRulesError, load_rules, parse_rules, read_rules_file

FUR_COLOURS = {
    "deer": ["Black", "Blue", "Clay", "Cream"],
    "elephant": ["Cream", "Green"],
    "giraffe": ["Green"],
    "hog": ["Clay", "Cream", "Blue"],
    "lion": ["Blue"],
    "tiger": ["Black", "Blue", "Clay", "Cream", "Green"],
}


@pytest.mark.real_data
def test_fur_product_pages_served_anywhere(fur_site: Path) -> None:
    """The Fur shop has no schema.org Product: its rule reads the Snipcart data-item-* attributes."""
    base = "http://127.0.0.1:8000"
    images = 0
    for sku, colours in FUR_COLOURS.items():
        parsed = parse_page(
            (fur_site / "products" / sku / "index.html").read_bytes(), f"{base}/products/{sku}/"
        )
        item = parsed.product
        assert parsed.is_product_page and item is not None, sku
        assert item.sku == sku and item.name and len(item.name.split()) == 3  # "Sacha the Deer"
        assert (item.price, item.currency) == (9.0, "USD")
        assert item.sources["sku"] == "rule:fur" and item.sources["price"] == "rule:fur"
        assert item.colors == colours
        assert item.sizes == ["Small", "Medium", "Large", "XL"]
        # one image per colour, each labelled with its colour, absolute on the serving host
        expected = [f"{base}/images/products/{sku}/{c.lower()}.jpg" for c in colours]
        assert sorted(item.images) == sorted(expected)
        assert {u.rsplit("/", 1)[1]: item.image_colors[u] for u in item.images} == {
            f"{c.lower()}.jpg": c for c in colours
        }
        assert item.description and "T-Shirt" in item.description
        # the canonical URL points at another host (the template's build host): the page URL is kept
        assert item.link == f"{base}/products/{sku}/"
        images += len(item.images)
    assert images == 16


@pytest.mark.real_data
def test_fur_listing_and_info_pages_are_not_products(fur_site: Path) -> None:
    for rel in ("index.html", "about/index.html", "shipping/index.html"):
        parsed = parse_page(
            (fur_site / rel).read_bytes(), "http://127.0.0.1:8000/" + rel.replace("index.html", "")
        )
        assert parsed.product is None, rel


def test_rule_matches_by_domain_and_fills_only_gaps() -> None:
    rules = parse_rules(
        {
            "site": [
                {
                    "name": "demo",
                    "domains": ["shop.example"],
                    "fields": {"brand": ".maker::text", "name": "h2::text"},
                }
            ]
        }
    )
    html = (
        '<html><head><script type="application/ld+json">{"@type": "Product", "name": "From JSON-LD", '
        '"sku": "X1", "image": "/x.jpg", "offers": {"price": "5", "priceCurrency": "USD"}}</script></head>'
        '<body><h2>From rule</h2><span class="maker">Makers Inc</span></body></html>'
    )
    item = parse_page(html, "https://www.sub.shop.example/x", rules=rules).product
    assert item is not None
    assert item.name == "From JSON-LD"  # structured data wins unless override = true
    assert (item.brand, item.sources["brand"]) == ("Makers Inc", "rule:demo")
    other = parse_page(html, "https://elsewhere.example/x", rules=rules).product
    assert other is not None and other.brand is None

    override = parse_rules(
        {
            "site": [
                {
                    "name": "demo",
                    "domains": ["shop.example"],
                    "override": True,
                    "fields": {"name": "xpath://h2/text()"},
                }
            ]
        }
    )
    item = parse_page(html, "https://shop.example/x", rules=override).product
    assert item is not None and item.name == "From rule"


def test_rule_detect_selector() -> None:
    rules = load_rules()
    doc = load_document(
        "<html><body><div class='product-container'><div class='product-details'>"
        "<button class='snipcart-add-item' data-item-id='a' data-item-price='1'></button>"
        "</div></div></body></html>",
        "http://localhost:1234/p/a/",
    )
    rule = rules.match(doc)
    assert rule is not None and rule.name == "fur"
    plain = load_document(
        "<html><body><button class='snipcart-add-item'></button></body></html>", "http://x/"
    )
    assert rules.match(plain) is None


@pytest.mark.parametrize(
    ("site", "message"),
    [
        ({"name": "x", "domains": ["a.example"], "colour": "red"}, "unknown keys ['colour']"),
        ({"domains": ["a.example"]}, "'name' is required"),
        ({"name": "x"}, "give 'domains' or 'detect'"),
        ({"name": "x", "domains": ["a"], "fields": {"price_usd": "p"}}, "unknown field 'price_usd'"),
        ({"name": "x", "domains": ["a"], "fields": {"price": "p[[["}}, "bad selector"),
        ({"name": "x", "domains": ["a"], "fields": {"price": {"split": ","}}}, "needs a selector"),
    ],
)
def test_bad_rules_are_reported(site: dict, message: str) -> None:
    with pytest.raises(SiteRulesError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_rules({"site": [site]}, "rules.toml")


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "rules.toml"
    f.write_text('[[site]]\nname = "x"\ndomains = a.example\n')
    with pytest.raises(SiteRulesError, match=r"rules.toml: .*line 3"):
        read_rules_file(f)
    with pytest.raises(SiteRulesError, match="not found"):
        read_rules_file(tmp_path / "missing.toml")


def test_bundled_rules_file_is_valid() -> None:
    assert "fur" in load_rules().names()


def test_site_rules_depend_only_on_lower_extraction_modules() -> None:
    """No import cycle: the extraction entry point uses the rules, the rules never import it."""
    import ast
    from pathlib import Path

    import crawler.site_rules

    tree = ast.parse(Path(crawler.site_rules.__file__).read_text(encoding="utf-8"))
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    crawler_modules = {m for m in imported if m.startswith("crawler")}
    assert crawler_modules <= {
        "crawler.items",
        "crawler.extract.document",
        "crawler.extract.fields",
        "crawler.extract.text",
    }
    assert "crawler.extract.page" not in crawler_modules


@pytest.mark.parametrize(
    ("url", "shop"),
    [
        ("https://www.amazon.co.uk/dp/1", "amazon"),
        ("https://www.amazon.fr/dp/1", "amazon"),
        ("birmingham.craigslist.org", "craigslist"),
        ("https://www.mobly.com.br/x", "mobly"),
        ("https://dom.1k.by/x", "1k"),
        ("http://127.0.0.1:8000/p/", "127.0.0.1"),
        ("", ""),
    ],
)
def test_shop_key(url: str, shop: str) -> None:
    from crawler.site_rules import shop_key

    assert shop_key(url) == shop


def test_without_shop_drops_only_rules_keyed_to_that_shop() -> None:
    rules = parse_rules(
        {
            "site": [
                {"name": "a", "domains": ["shop-a.example"], "fields": {"sku": "b::text"}},
                {"name": "a-de", "domains": ["shop-a.de"], "fields": {"sku": "b::text"}},
                {"name": "b", "domains": ["shop-b.example"], "fields": {"sku": "b::text"}},
                {"name": "tpl", "detect": "b.sku", "fields": {"sku": "b::text"}},
            ]
        }
    )
    assert rules.without_shop("https://www.shop-a.example/p/1").names() == ["b", "tpl"]
    assert rules.without_shop("https://unseen.test/").names() == ["a", "a-de", "b", "tpl"]
