"""Shared product values: prices, currencies, gender, availability, colours."""

from __future__ import annotations

import pytest

from fittingroom import values
from fittingroom.values import (
    color_key,
    currency_code,
    gmc_gender,
    normalise_availability,
    normalise_color,
    normalise_gender,
    parse_price,
)


@pytest.mark.parametrize(
    ("value", "amount", "currency", "symbol"),
    [
        ("$1,299.00", 1299.0, "USD", "$"),
        ("1.299,00 €", 1299.0, "EUR", "€"),
        ("349,95", 349.95, None, None),
        ("119.99", 119.99, None, None),
        ("15.99 EUR", 15.99, "EUR", "EUR"),
        ("£7", 7.0, "GBP", "£"),
        ("2.5e2 EUR", 250.0, "EUR", "EUR"),
        (52, 52.0, None, None),
        ("free", 0.0, None, None),
    ],
)
def test_parse_price_amounts(value: object, amount: float, currency: str | None, symbol: str | None) -> None:
    p = parse_price(value)
    assert p.amount == pytest.approx(amount) and p.reason is None
    assert (p.currency, p.symbol) == (currency, symbol)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1e309 USD", "not finite"),  # price-parser alone reads this as 1.0
        ("1e309", "not finite"),
        (float("inf"), "not finite"),
        (float("nan"), "not finite"),
        ("NaN EUR", "not finite"),
        (10**400, "not finite"),
        ("1e12 USD", "absurd"),
        (5e11, "absurd"),
        ("-5 USD", "negative"),
        (-3, "negative"),
        ("call us", "no amount"),
        ("", "empty"),
        (None, "empty"),
        (True, "empty"),
    ],
)
def test_parse_price_rejects_with_a_reason(value: object, reason: str) -> None:
    p = parse_price(value)
    assert p.amount is None and p.reason == reason


def test_rejected_price_keeps_the_currency_it_names() -> None:
    assert parse_price("1e309 USD").currency == "USD"


def test_max_price_bound_is_inclusive() -> None:
    assert parse_price(values.MAX_PRICE).amount == values.MAX_PRICE


@pytest.mark.parametrize(
    ("value", "url", "code"),
    [
        ("€", None, "EUR"),
        ("usd", None, "USD"),
        ("US$", None, "USD"),
        ("$", None, "USD"),
        ("$", "https://www.bestbuy.ca/p/1", "CAD"),
        ("Rs", "https://www.olx.com.pk/item/1", "PKR"),
        ("kr", "https://shop.example.dk/", "DKK"),
        ("kr", None, "SEK"),
        ("zł", None, "PLN"),
        ("dkk", None, "DKK"),
        ("dollars please", None, None),
        ("", None, None),
    ],
)
def test_currency_code(value: str, url: str | None, code: str | None) -> None:
    assert currency_code(value, url) == code


def test_price_currency_resolves_a_bare_dollar_by_the_shop_domain() -> None:
    assert parse_price("$20", url="https://shop.example.com.au/x").currency == "AUD"


@pytest.mark.parametrize(
    ("value", "gender", "gmc"),
    [
        ("Male", "men", "male"),
        ("men's", "men", "male"),
        ("Herren", "men", "male"),
        ("https://schema.org/Female", "women", "female"),
        ("Damen", "women", "female"),
        ("ladies", "women", "female"),
        ("Men\nWomen", "unisex", "unisex"),
        ("men, women", "unisex", "unisex"),
        ("Unisex", "unisex", "unisex"),
        ("girls", "girls", "female"),
        ("kids", "kids", None),
        ("aliens", None, None),
        (None, None, None),
    ],
)
def test_one_gender_vocabulary(value: str | None, gender: str | None, gmc: str | None) -> None:
    assert normalise_gender(value) == gender
    assert gmc_gender(value) == gmc


def test_gmc_gender_accepts_its_own_values() -> None:
    assert [gmc_gender(g) for g in ("male", "female", "unisex")] == ["male", "female", "unisex"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://schema.org/InStock", "in_stock"),
        ("https://schema.org/OutOfStock", "out_of_stock"),
        ("schema:BackOrder", "backorder"),
        ("PreOrder", "preorder"),
        ("in stock", "in_stock"),
        ("in_stock", "in_stock"),
        ("Sold Out", "out_of_stock"),
        ("LimitedAvailability", "in_stock"),
        ("Discontinued", "out_of_stock"),
        ("maybe", None),
        ("", None),
    ],
)
def test_normalise_availability(value: str, expected: str | None) -> None:
    assert normalise_availability(value) == expected
    assert expected is None or expected in values.AVAILABILITY_VALUES


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  navy   blue ", "Navy blue"),
        ("Navy/White", "Navy/White"),
        ("BLACK", "BLACK"),
        ("n/a", None),
        ("Default", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_color(value: str | None, expected: str | None) -> None:
    assert normalise_color(value) == expected


def test_color_key_ignores_case_and_spacing() -> None:
    assert color_key("Navy  Blue") == color_key("navy blue") != color_key("navy")


def test_values_is_a_core_module() -> None:
    """Only the standard library and third-party packages: nothing from the app layers."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(values.__file__).read_text(encoding="utf-8"))
    imported = {
        (n.module or "") if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    roots = {m.split(".")[0] for m in imported}
    assert not roots & {"crawler", "catalog_ingest", "services", "fittingroom"}


def test_currency_words_price_parser_does_not_know_come_from_the_one_table() -> None:
    """price-parser reads no currency in "44 890 тг."; the table's "тг" (tenge) is found beside it."""
    p = parse_price("44 890 тг.")
    assert (p.amount, p.currency) == (44890.0, "KZT")
    assert parse_price("1 200 words").currency is None  # no table word: no currency
    assert currency_code("RUR") == "RUB"  # the old ruble code
