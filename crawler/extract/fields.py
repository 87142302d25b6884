"""Field values as the crawler's items hold them, on top of ``fittingroom.values``.

``parse_price`` keeps the parser's ``(amount, currency text as written)`` form;
``parse_availability`` returns ``crawler.items.Availability``; ``normalise_gender`` gives
Google Merchant Center's ``male``/``female``/``unisex`` (what the crawler's feed carries).
"""

from __future__ import annotations

from typing import Any

from crawler.extract.structured import node_text
from crawler.extract.text import clean_text
from crawler.items import Availability
from fittingroom import values
from fittingroom.values import currency_code

__all__ = ["currency_code", "normalise_gender", "parse_availability", "parse_price"]


def parse_price(value: Any, currency_hint: str | None = None) -> tuple[float | None, str | None]:
    """``(amount, currency symbol or code as written)`` from a number or a price text.

    See ``fittingroom.values.parse_price``: non-finite, negative and absurd amounts give None.
    """
    p = values.parse_price(value, currency_hint)
    return p.amount, p.symbol


def parse_availability(value: Any) -> Availability | None:
    """Map a schema.org ItemAvailability IRI or name (or a node naming one), or an OpenGraph value,
    to ``Availability``; None when not recognised."""
    t = node_text(value) if isinstance(value, dict) else clean_text(value)
    a = values.normalise_availability(t)
    return Availability(a) if a else None


def normalise_gender(g: str | None) -> str | None:
    """'Male'/'men'/'Herren' -> 'male'; 'Female'/'women'/'Damen' -> 'female'; 'unisex'; else None."""
    return values.gmc_gender(g)
