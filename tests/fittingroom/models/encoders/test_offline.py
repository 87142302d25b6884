from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fittingroom.catalog.models import GarmentCategory, ImageRecord, Product
from fittingroom.models.encoders import Query, document_text
from fittingroom.models.encoders.type_head import TYPE_ORDER

pytestmark = pytest.mark.real_model


def _product(**kw: object) -> Product:
    base = dict(
        source="t",
        id="1",
        title="Chaz Kangeroo Hoodie",
        colors=["Gray", "Orange"],
        category_path=["Men", "Tops", "Hoodies & Sweatshirts"],
        gender="men",
        description="Long description that must not be embedded.",
    )
    base.update(kw)
    return Product(**base)  # type: ignore[arg-type]


def test_document_text_is_short_two_lines() -> None:
    p = _product()
    img = ImageRecord(url="x", sha256="0", vector_id=1, color="Orange")
    line1, line2 = document_text(p, img).split("\n")
    assert line1 == "Orange Hoodies & Sweatshirts: Orange Chaz Kangeroo Hoodie (men)"
    assert line2 == "Men > Tops > Hoodies & Sweatshirts"
    assert "description" not in document_text(p)


def test_shapes_norms_and_determinism(offline_encoder) -> None:  # noqa: ANN001
    enc = offline_encoder
    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.integers(0, 255, (120, 80, 3), dtype=np.uint8)) for _ in range(3)]
    a = enc.embed_images(imgs)
    assert a.shape == (3, 1280) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(enc.embed_images(imgs), a, atol=1e-5)
    t = enc.embed_texts(["red tee", "gray hoodie"])
    assert t.shape == (2, 384) and t.dtype == np.float32
    docs = enc.document_vectors(imgs[:2], [document_text(_product()), "Plain text without category"])
    assert docs.shape == (2, enc.dim) and docs.dtype == np.float32
    # type part: one-hot of the garment category (hoodie -> top), zero when unknown
    typ = docs[:, -len(TYPE_ORDER) :]
    assert typ[0, TYPE_ORDER.index(GarmentCategory.top)] == 1.0 and typ[0].sum() == 1.0
    assert typ[1, TYPE_ORDER.index(GarmentCategory.other)] == 1.0
    with pytest.raises(ValueError):
        enc.document_vectors(imgs, ["only one text"])


def test_masked_out_pixels_do_not_matter(offline_encoder) -> None:  # noqa: ANN001
    """An RGBA cutout embeds like the garment on the neutral (white) background, whatever the hidden pixels."""
    rng = np.random.default_rng(1)
    garment = rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)
    alpha = np.zeros((100, 100), np.uint8)
    alpha[20:80, 30:70] = 255
    noisy = np.where(alpha[..., None] > 0, garment, rng.integers(0, 255, (100, 100, 3), dtype=np.uint8))
    white = np.where(alpha[..., None] > 0, garment, 255).astype(np.uint8)
    rgba = Image.fromarray(np.dstack([noisy, alpha]), "RGBA")
    e = offline_encoder.embed_images([rgba, Image.fromarray(white), Image.fromarray(noisy.astype(np.uint8))])
    assert float(e[0] @ e[1]) > 0.999
    assert float(e[0] @ e[2]) < 0.99


def test_text_query_prefers_the_asked_colour_and_type(offline_encoder) -> None:  # noqa: ANN001
    enc = offline_encoder
    img = Image.new("RGB", (64, 64), "white")
    p_hoodie = _product()
    p_tee = _product(id="2", title="Aero Daily Fitness Tee", category_path=["Men", "Tops", "Tees"])
    recs = [
        (p_hoodie, ImageRecord(url="a", sha256="a", vector_id=1, color="Gray")),
        (p_hoodie, ImageRecord(url="b", sha256="b", vector_id=2, color="Orange")),
        (p_tee, ImageRecord(url="c", sha256="c", vector_id=3, color="Orange")),
    ]
    docs = enc.document_vectors([img] * 3, [document_text(p, i) for p, i in recs])
    s = (
        enc.query_vectors([Query(text="orange hoodie"), Query(text="gray hoodie"), Query(text="orange tee")])
        @ docs.T
    )
    assert s[0].argmax() == 1 and s[1].argmax() == 0 and s[2].argmax() == 2


def test_query_validation_and_calibrated_fusion(offline_encoder) -> None:  # noqa: ANN001
    with pytest.raises(ValueError):
        Query()
    with pytest.raises(ValueError):
        Query(text="   ")
    with pytest.raises(ValueError):
        Query(text="x", image_weight=1.5)
    enc = offline_encoder
    assert enc.image_share(0.0) == 0.0 and enc.image_share(1.0) == 1.0
    assert enc.image_share(0.5) == pytest.approx(0.3, abs=0.01)
    q = enc.query_vectors([Query(image=Image.new("RGB", (32, 32)), text="red", image_weight=0.5)])[0]
    assert np.linalg.norm(q[:1280]) == pytest.approx(enc.image_share(0.5), rel=1e-4)


def test_expand_query_gate(offline_encoder) -> None:  # noqa: ANN001
    """Instance match (high cosine): no type prior; weak match: the type prior is added; both expand the category."""
    enc = offline_encoder
    rng = np.random.default_rng(2)
    q_img = rng.normal(size=1280).astype(np.float32)
    q_img /= np.linalg.norm(q_img)
    qv = np.zeros(enc.dim, np.float32)
    qv[:1280] = q_img
    query = Query(image=Image.new("RGB", (8, 8)))
    cat = slice(1280 + 384, 1280 + 768)
    typ = slice(1280 + 768, enc.dim)

    def neighbours(cos: float) -> np.ndarray:
        nv = np.zeros((4, enc.dim), np.float32)
        other = rng.normal(size=1280).astype(np.float32)
        other -= (other @ q_img) * q_img
        other /= np.linalg.norm(other)
        nv[:, :1280] = cos * q_img + np.sqrt(1 - cos**2) * other
        nv[:, cat] = 1.0 / np.sqrt(384)
        return nv

    strong = enc.expand_query(query, qv, neighbours(0.95))
    weak = enc.expand_query(query, qv, neighbours(0.5))
    assert np.all(strong[typ] == 0) and weak[typ].sum() == pytest.approx(enc.type_weight, rel=1e-4)
    np.testing.assert_allclose(strong[cat], enc.expansion_weight / np.sqrt(384), rtol=1e-5)
    text_query = Query(image=Image.new("RGB", (8, 8)), text="red")
    np.testing.assert_array_equal(enc.expand_query(text_query, qv, neighbours(0.5)), qv)
