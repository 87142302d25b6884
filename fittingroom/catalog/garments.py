"""Coarse garment category (``GarmentCategory``) from a shop's category path by keywords.

The mapping (English keywords, singular or plural, case-insensitive, whole words):

=============== ======================================================================
category        keywords
=============== ======================================================================
top             tee, t-shirt, tank, top, shirt, blouse, polo, hoodie, sweatshirt,
                sweater, jumper, pullover, cardigan, bra, camisole, tunic, crop top
outerwear       jacket, coat, parka, blazer, anorak, windbreaker, gilet, vest, poncho
bottom          pants, trousers, jeans, leggings, tights, joggers, shorts, skirt,
                chinos, bottoms
one_piece       dress, gown, jumpsuit, romper, playsuit, overall, dungarees, bodysuit
footwear        shoe, sneaker, trainer, boot, sandal, loafer, heel, slipper, footwear
headwear        hat, cap, beanie, beret, headband, headwear
bag_accessory   bag, backpack, tote, handbag, purse, wallet, clutch, luggage, duffel,
                watch, belt, scarf, sunglasses, jewelry, jewellery, accessory
=============== ======================================================================

Anything else is ``other`` (e.g. Luma's "Gear > Fitness Equipment").

Search order: the category path from the leaf to the root (the most specific element
decides: "Men > Tops > Jackets" is outerwear, not top; a grouping element such as
"Accessories" decides only as the leaf, so Saleor's "Accessories > Audiobooks" is other), then the Google product
category text (also leaf to root, ignoring its root "Apparel & Accessories"), then the
title. Inside one text the *last* keyword wins, because English
puts the head noun last ("Dress Shirts" is top, "Shirt Dresses" is one_piece).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fittingroom.catalog.models import GarmentCategory

_KEYWORDS: dict[GarmentCategory, list[str]] = {
    GarmentCategory.top: [
        "tee",
        "t-shirt",
        "tshirt",
        "tank",
        "tank top",
        "top",
        "shirt",
        "blouse",
        "polo",
        "hoodie",
        "hoody",
        "sweatshirt",
        "sweater",
        "jumper",
        "pullover",
        "cardigan",
        "bra",
        "camisole",
        "cami",
        "tunic",
    ],
    GarmentCategory.outerwear: [
        "jacket",
        "coat",
        "parka",
        "blazer",
        "anorak",
        "windbreaker",
        "gilet",
        "vest",
        "poncho",
        "outerwear",
        "outwear",
    ],
    GarmentCategory.bottom: [
        "pant",
        "pants",
        "trouser",
        "trousers",
        "jeans",
        "legging",
        "leggings",
        "tights",
        "jogger",
        "joggers",
        "short",
        "shorts",
        "skirt",
        "chino",
        "chinos",
        "bottom",
        "bottoms",
    ],
    GarmentCategory.one_piece: [
        "dress",
        "gown",
        "jumpsuit",
        "romper",
        "playsuit",
        "overall",
        "overalls",
        "dungarees",
        "bodysuit",
    ],
    GarmentCategory.footwear: [
        "shoe",
        "sneaker",
        "trainer",
        "boot",
        "sandal",
        "loafer",
        "heel",
        "slipper",
        "footwear",
        "flip-flop",
    ],
    GarmentCategory.headwear: ["hat", "cap", "beanie", "beret", "headband", "headwear"],
    GarmentCategory.bag_accessory: [
        "bag",
        "backpack",
        "tote",
        "handbag",
        "purse",
        "wallet",
        "clutch",
        "luggage",
        "duffel",
        "duffle",
        "watch",
        "belt",
        "scarf",
        "sunglasses",
        "jewelry",
        "jewellery",
        "accessory",
        "accessories",
    ],
}


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "sh", "ch")):
        return word + "(?:es)?"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "(?:y|ies)"
    return word + "s?"


def _flexible(pattern: str) -> str:
    """An escaped space or hyphen matches a space, a hyphen or nothing ('t-shirt', 't shirt', 'tshirt')."""
    return pattern.replace("\\ ", "[ -]?").replace("\\-", "[ -]?")


_PATTERN = re.compile(
    r"(?<![a-z0-9])(?:"
    + "|".join(
        f"(?P<{cat.value}_{i}>{_flexible(_plural(re.escape(w)))})"
        for cat, words in _KEYWORDS.items()
        for i, w in enumerate(sorted(words, key=len, reverse=True))
    )
    + r")(?![a-z0-9])",
    re.IGNORECASE,
)


#: Category path elements that group unrelated products (shops file books and mugs under
#: "Accessories"): they decide only as the leaf ("Women > Accessories").
GROUPING_ELEMENTS = frozenset({"accessory", "accessories"})


def garment_category_of_text(text: str) -> GarmentCategory | None:
    """The category of the last keyword in ``text``, or None when there is none."""
    last: GarmentCategory | None = None
    for m in _PATTERN.finditer(text):
        name = m.lastgroup
        if name:
            last = GarmentCategory(name.rsplit("_", 1)[0])
    return last


def garment_category_for(
    category_path: Iterable[str], *, google_category: str | None = None, title: str | None = None
) -> GarmentCategory:
    """Garment category of a product: path leaf to root, then ``google_category``, then ``title``."""
    elements = list(category_path)
    for depth, element in enumerate(reversed(elements)):
        if depth > 0 and element.strip().lower() in GROUPING_ELEMENTS:
            continue  # "Accessories > Audiobooks": the grouping says nothing about the leaf
        found = garment_category_of_text(element)
        if found is not None:
            return found
    if google_category:
        # Google's taxonomy root "Apparel & Accessories" says nothing about the garment.
        for element in reversed(google_category.split(">")):
            if element.strip().lower() == "apparel & accessories":
                continue
            found = garment_category_of_text(element)
            if found is not None:
                return found
    if title:
        found = garment_category_of_text(title)
        if found is not None:
            return found
    return GarmentCategory.other
