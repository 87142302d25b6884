"""Query understanding: each constraint kind with its span, spelling, bad input, the query set."""

from __future__ import annotations

from pathlib import Path

import pytest

from fittingroom.catalog.models import GarmentCategory, ImageRecord, Product
from fittingroom.retrieval.lexicon import ConstraintKind, QueryLexicon
from fittingroom.retrieval.query import ParsedQuery, QueryParser
from fittingroom.retrieval.query_eval import case_errors, evaluate_parsing, load_query_set
from fittingroom.settings import CoreSettings

QUERY_SET = Path(__file__).parent / "data" / "queries.jsonl"


def product(
    pid: str, title: str, path: list[str], garment: GarmentCategory, brand: str | None = None
) -> Product:
    return Product(
        source="shop",
        id=pid,
        title=title,
        category_path=path,
        garment_category=garment,
        brand=brand,
        price=10.0,
        currency="USD",
        images=[ImageRecord(url=f"{pid}.jpg", sha256=pid * 8, vector_id=hash(pid) & 0xFFFF)],
    )


@pytest.fixture(scope="module")
def parser() -> QueryParser:
    products = [
        product(
            "1",
            "Chaz Hoodie",
            ["Men", "Tops", "Hoodies & Sweatshirts"],
            GarmentCategory.top,
            "Luma (Magento sample data)",
        ),
        product("2", "White Plimsolls", ["Apparel", "Sneakers"], GarmentCategory.footwear, "Saleor Loom"),
        product("3", "Apple Juice", ["Groceries", "Juices"], GarmentCategory.other, "Frutello"),
    ]
    return QueryParser(QueryLexicon.from_products(products))


def only(parsed: ParsedQuery, kind: ConstraintKind):
    found = parsed.of(kind)
    assert len(found) == 1, parsed.constraints
    c = found[0]
    assert parsed.text[c.start : c.end] == c.text  # the span points into the query as given
    return c


@pytest.mark.parametrize(
    ("text", "lo", "hi", "currency", "span"),
    [
        ("red dress under $50", None, 50.0, "USD", "under $50"),
        ("jackets between 20 and 40 eur", 20.0, 40.0, "EUR", "between 20 and 40 eur"),
        ("tee less than £30", None, 30.0, "GBP", "less than £30"),
        ("shorts 50-80 usd", 50.0, 80.0, "USD", "50-80 usd"),
        ("pants cheaper than 100", None, 100.0, None, "cheaper than 100"),
        ("hoodie over 1,000 dollars", 1000.0, None, "USD", "over 1,000 dollars"),
        ("bag under 50€", None, 50.0, "EUR", "under 50€"),
        ("between 80 and 20 dollars jacket", 20.0, 80.0, "USD", "between 80 and 20 dollars"),
        ("hoodie around $50", 40.0, 60.0, "USD", "around $50"),
    ],
)
def test_price_bounds_and_currency(parser, text, lo, hi, currency, span) -> None:
    parsed = parser.parse(text)
    c = only(parsed, ConstraintKind.price)
    assert (c.min_price, c.max_price, c.currency, c.text) == (lo, hi, currency, span)
    assert "$" not in parsed.residual and "under" not in parsed.residual.split()


def test_a_bare_number_is_not_a_price_but_can_be_a_size(parser) -> None:
    parsed = parser.parse("men's shorts size 32 less than 40")
    assert only(parsed, ConstraintKind.size).value == "32"
    assert only(parsed, ConstraintKind.price).max_price == 40.0
    assert parser.parse("tee 50").of(ConstraintKind.price) == []


def test_colour_gender_category_size(parser) -> None:
    parsed = parser.parse("Navy blue hoodie for women in size XL")
    assert only(parsed, ConstraintKind.color).value == "navy"
    assert only(parsed, ConstraintKind.color).family == "blue"
    assert only(parsed, ConstraintKind.gender).value == "women"
    cat = only(parsed, ConstraintKind.category)
    assert (cat.value, cat.garment_category) == ("hoodie", GarmentCategory.top)
    assert only(parsed, ConstraintKind.size).value == "XL"
    # colour and category words describe the look and are embedded; gender and size are not
    assert parsed.residual == "Navy blue hoodie"
    assert parsed.is_garment_query


def test_sizes_need_a_cue_unless_unambiguous(parser) -> None:
    assert parser.parse("small bag").of(ConstraintKind.size) == []
    assert only(parser.parse("hoodie in large"), ConstraintKind.size).value == "L"
    assert only(parser.parse("2xl tee"), ConstraintKind.size).value == "XXL"


def test_catalog_vocabulary_brands_and_categories(parser) -> None:
    parsed = parser.parse("saleor sneakers")
    assert only(parsed, ConstraintKind.brand).value == "Saleor Loom"
    assert only(parsed, ConstraintKind.category).value == "sneaker"
    assert only(parser.parse("luma hoodie"), ConstraintKind.brand).value == "Luma (Magento sample data)"
    juice = only(parser.parse("frutello juice"), ConstraintKind.category)
    assert juice.value == "juice" and juice.garment_category is None and not juice.apparel
    assert juice.catalog_categories == ("groceries/juices",)
    assert not parser.parse("frutello juice").is_garment_query


def test_head_noun_wins_for_adjacent_categories(parser) -> None:
    assert parser.parse("dress shirt").values(ConstraintKind.category) == ["shirt"]
    assert parser.parse("hoodie or jacket").values(ConstraintKind.category) == ["hoodie", "jacket"]


def test_typo_hoddie_is_corrected_to_hoodie(parser) -> None:
    parsed = parser.parse("grey hoddie under $40")
    assert parsed.corrected_text == "grey hoodie under $40"
    assert parsed.values(ConstraintKind.category) == ["hoodie"]
    assert parsed.residual == "grey hoodie"
    assert [(c.original, c.corrected) for c in parsed.corrections] == [("hoddie", "hoodie")]


def test_common_words_are_not_corrected(parser) -> None:
    parsed = parser.parse("cheap winter leather gloves")
    assert parsed.corrected_text is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hoodie under $-5", "negative price"),
        ("jacket under 1e309", "not a finite number"),
        ("tee under 50 xyz", "unknown currency"),
        ("hoodie under $0", "excludes every product"),
    ],
)
def test_bad_prices_are_dropped_with_a_reason(parser, text, reason) -> None:
    parsed = parser.parse(text)
    assert parsed.of(ConstraintKind.price) == []
    assert [d.kind for d in parsed.dropped] == ["price"] and reason in parsed.dropped[0].reason
    assert parsed.values(ConstraintKind.category)  # the rest is still understood


def test_empty_and_huge_queries(parser) -> None:
    for blank in ("", "   ", "\n\t"):
        with pytest.raises(ValueError, match="empty query"):
            parser.parse(blank)
    huge = "red hoodie " + "x" * 10_000
    parsed = parser.parse(huge)
    assert parsed.values(ConstraintKind.category) == ["hoodie"]
    assert [d.kind for d in parsed.dropped] == ["text"] and len(parsed.residual) <= parser.max_chars
    for odd in ("$$$", "🙂", "ß", "under", "İstanbul jacket under 30", "-" * 50):
        parser.parse(odd)  # never raises


def test_query_set_format_and_checker(parser) -> None:
    cases = load_query_set(QUERY_SET)
    assert len(cases) >= 100
    kinds = {k for c in cases for k in c.expect}
    assert kinds == {"price", "color", "gender", "category", "brand", "size"}
    assert sum(c.check_corrected for c in cases) >= 15 and sum(bool(c.dropped) for c in cases) >= 4
    case = next(c for c in cases if c.q == "red dress under $50")
    assert case_errors(case, parser.parse(case.q)) == []
    assert case_errors(case, parser.parse("blue dress under $50")) == ["color: got ['blue'], want ['red']"]


@pytest.mark.real_data
def test_query_set_parse_accuracy_on_the_real_catalogs() -> None:
    from catalog_ingest.mapper import FeedMapper
    from catalog_ingest.readers import read_feed

    shared = CoreSettings().shared_data
    products = []
    for name in ("luma", "saleor"):
        feed = shared / f"{name}-catalog" / "products.jsonl"
        if not feed.exists():
            pytest.skip(f"{feed} not found")
        drafts, _ = FeedMapper(name).map_records(read_feed(feed))
        products += [d.product for d in drafts]
    accuracy, failures = evaluate_parsing(
        QueryParser(QueryLexicon.from_products(products)), load_query_set(QUERY_SET)
    )
    assert accuracy >= 0.95, failures
