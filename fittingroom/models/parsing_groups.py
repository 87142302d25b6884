"""Garment groups of the parsing head and the one table mapping street-photos labels to them.

The street photos (Clothing Co-Parsing) carry 59 fine labels; the parsing head predicts 10
coarse groups, the level at which layered garments separate (an inner top under an outer layer)
and at which a click decides which SAM masks are admissible.

Choices worth knowing:

* ``hoodie`` is **outer**: the label cannot tell an open hoodie from a closed one, and in the
  street photos hoodies are mostly worn over another top. ``suit`` and ``cape`` are outer too.
* ``jumper`` / ``sweater`` / ``sweatshirt`` / ``bodysuit`` / ``bra`` / ``intimate`` are upper
  inner; ``swimwear`` is one-piece; ``panties`` is lower.
* Legwear (``tights``, ``stockings``, ``socks``) is **skin**: it covers the legs, and a click on a
  skirt or shorts must not absorb it.
* Small accessories (belt, jewellery, glasses, gloves, scarf, tie, watch, ``accessories``) are
  **background**: no garment group, never part of a garment mask.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Group(IntEnum):
    """Per-pixel classes of the parsing head (the index is the output channel)."""

    background = 0
    upper_inner = 1
    outer = 2
    lower = 3
    one_piece = 4
    footwear = 5
    bag = 6
    headwear = 7
    hair = 8
    skin = 9


N_GROUPS = len(Group)
#: Groups that are garments (returned by whole-photo parsing, admissible for clicks on them).
GARMENT_GROUPS = (Group.upper_inner, Group.outer, Group.lower, Group.one_piece, Group.footwear,
                  Group.bag, Group.headwear)  # fmt: skip
#: Label value of pixels outside the photo in training targets.
IGNORE = 255

#: The one table: street-photos label name -> group.
LABEL_GROUPS: dict[str, Group] = {
    "null": Group.background,
    # upper inner
    "blouse": Group.upper_inner, "bodysuit": Group.upper_inner, "bra": Group.upper_inner,
    "intimate": Group.upper_inner, "jumper": Group.upper_inner, "shirt": Group.upper_inner,
    "sweater": Group.upper_inner, "sweatshirt": Group.upper_inner, "t-shirt": Group.upper_inner,
    "top": Group.upper_inner,
    # outer
    "blazer": Group.outer, "cape": Group.outer, "cardigan": Group.outer, "coat": Group.outer,
    "hoodie": Group.outer, "jacket": Group.outer, "suit": Group.outer, "vest": Group.outer,
    # lower
    "jeans": Group.lower, "leggings": Group.lower, "pants": Group.lower, "shorts": Group.lower,
    "skirt": Group.lower, "panties": Group.lower,
    # one-piece
    "dress": Group.one_piece, "romper": Group.one_piece, "swimwear": Group.one_piece,
    # footwear
    "boots": Group.footwear, "clogs": Group.footwear, "flats": Group.footwear, "heels": Group.footwear,
    "loafers": Group.footwear, "pumps": Group.footwear, "sandals": Group.footwear,
    "shoes": Group.footwear, "sneakers": Group.footwear, "wedges": Group.footwear,
    # bag
    "bag": Group.bag, "purse": Group.bag, "wallet": Group.bag,
    # headwear
    "hat": Group.headwear,
    # hair, skin (legwear counts as skin)
    "hair": Group.hair,
    "skin": Group.skin, "tights": Group.skin, "stockings": Group.skin, "socks": Group.skin,
    # small accessories: background
    "accessories": Group.background, "belt": Group.background, "bracelet": Group.background,
    "earrings": Group.background, "glasses": Group.background, "gloves": Group.background,
    "necklace": Group.background, "ring": Group.background, "scarf": Group.background,
    "sunglasses": Group.background, "tie": Group.background, "watch": Group.background,
}  # fmt: skip


def group_of(label: str) -> Group:
    """Group of a street-photos label name; raises KeyError naming the label when it is not in the table."""
    try:
        return LABEL_GROUPS[label]
    except KeyError:
        raise KeyError(f"street-photos label {label!r} has no group in LABEL_GROUPS") from None


def label_lut(labels: list[str]) -> np.ndarray:
    """uint8 ``[256]`` lookup: label id (index into ``labels``) -> group id; unknown ids -> IGNORE."""
    lut = np.full(256, IGNORE, dtype=np.uint8)
    for i, name in enumerate(labels):
        lut[i] = int(group_of(name))
    return lut
