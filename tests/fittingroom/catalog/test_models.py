"""tryon_mode per image and the one try-on image rule (product-only first, then on-model)."""

from __future__ import annotations

import pytest

from fittingroom.catalog.models import (
    GarmentCategory,
    ImageRecord,
    PhotoType,
    Product,
    TryOnMode,
    tryon_image,
    tryon_mode_for,
)


def _img(name: str, **kw) -> ImageRecord:  # noqa: ANN003
    return ImageRecord(url=name, sha256=name * 64, vector_id=ord(name), **kw)


@pytest.mark.parametrize(
    ("kw", "category", "mode", "reason"),
    [
        ({}, GarmentCategory.top, None, None),
        (
            {"tryon_eligible": True, "photo_type": PhotoType.product_only},
            GarmentCategory.top,
            "product_only",
            None,
        ),
        ({"tryon_eligible": False, "photo_type": PhotoType.on_model}, GarmentCategory.top, "on_model", None),
        (
            {"tryon_eligible": False, "photo_type": PhotoType.on_model},
            GarmentCategory.outerwear,
            "on_model",
            None,
        ),
        (
            {"tryon_eligible": False, "photo_type": PhotoType.on_model},
            GarmentCategory.footwear,
            "none",
            "footwear",
        ),
        (
            {"tryon_eligible": False, "photo_type": PhotoType.on_model},
            None,
            "none",
            "unknown garment category",
        ),
        (
            {"tryon_eligible": False, "photo_type": PhotoType.other},
            GarmentCategory.top,
            "none",
            "not a garment photo",
        ),
        (
            {"tryon_eligible": False, "photo_type": PhotoType.product_only},
            GarmentCategory.top,
            "none",
            "not trust",
        ),
    ],
)
def test_tryon_mode_for(kw, category, mode, reason):  # noqa: ANN001
    got_mode, got_reason = tryon_mode_for(_img("a", **kw), category)
    assert (got_mode.value if got_mode else None) == mode
    assert (reason is None and got_reason is None) or reason in got_reason


def test_on_model_category_from_the_classifier_when_the_product_has_none():
    img = _img(
        "a", tryon_eligible=False, photo_type=PhotoType.on_model, garment_category_pred=GarmentCategory.bottom
    )
    assert tryon_mode_for(img, None) == (TryOnMode.on_model, None)


def test_product_fills_and_stores_the_modes():
    on = _img("a", tryon_eligible=False, photo_type=PhotoType.on_model)
    other = _img("b", tryon_eligible=False, photo_type=PhotoType.other)
    p = Product(source="s", id="x", title="x", garment_category=GarmentCategory.top, images=[on, other])
    assert [i.tryon_mode for i in p.images] == [TryOnMode.on_model, TryOnMode.none]
    again = Product.model_validate_json(p.model_dump_json())
    assert again.images[1].tryon_mode_reason == p.images[1].tryon_mode_reason is not None


def test_tryon_image_prefers_product_only_then_on_model():
    on_a = _img("a", tryon_eligible=False, photo_type=PhotoType.on_model)
    on_main = _img("b", tryon_eligible=False, photo_type=PhotoType.on_model, is_main=True)
    flat = _img("c", tryon_eligible=True, tryon_eligible_prob=0.7, photo_type=PhotoType.product_only)
    top = GarmentCategory.top
    p = Product(source="s", id="x", title="x", garment_category=top, images=[on_a, on_main, flat])
    assert tryon_image(p) is p.images[2]
    assert tryon_image(p, p.images[0]) is p.images[2]  # a product-only image beats the matched on-model one
    q = Product(source="s", id="y", title="y", garment_category=top, images=[on_a, on_main])
    assert tryon_image(q) is q.images[1]  # the main on-model photo
    assert tryon_image(q, q.images[0]) is q.images[0]  # the matched one
    shoe = Product(source="s", id="z", title="z", garment_category=GarmentCategory.footwear, images=[on_a])
    assert tryon_image(shoe) is None
