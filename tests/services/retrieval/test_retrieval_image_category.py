"""POST /search/image: the garment category inferred from the image is a chip and a filter."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from retrieval_fakes import COLORS, solid_png

from fittingroom.catalog.models import GarmentCategory
from fittingroom.models.garment_type import CategoryGuess
from services.retrieval.app import create_app

BOTTOMS = {"test:P1", "test:P2"}


class FakeTypes:
    """Says every image is ``category`` with ``probability``; counts its calls."""

    def __init__(self, category: GarmentCategory, probability: float) -> None:
        self.category, self.probability, self.calls = category, probability, 0

    def guess(self, embedding):  # noqa: ANN001, ANN201
        self.calls += 1
        assert embedding.shape == (8,)  # the fake encoder's image embedding
        return CategoryGuess(self.category, self.probability, "pants", self.probability)


def run(catalog, monkeypatch, fake, *, min_page: int = 2, on: bool = True, **form: str):  # noqa: ANN001, ANN201
    store, encoder, settings, _ = catalog
    monkeypatch.setattr("services.retrieval.app.classifier_for_encoder", lambda enc, shelf: fake)
    update = {"image_category_min_prob": 0.6, "image_category_filter": on}
    app = create_app(settings.model_copy(update=update), store=store, encoder=encoder)
    with TestClient(app) as c:
        app.state.retrieval.searcher.color_filter_min = min_page  # "one page" of the 8-product catalog
        calls = encoder.calls
        r = c.post(
            "/search/image",
            files={"image": ("g.png", solid_png(COLORS["red"]), "image/png")},
            data={"k": "8", **form},
        )
        assert encoder.calls - calls == 1  # the classifier reads the query vector: one encoder pass
    assert r.status_code == 200, r.text
    body = r.json()
    return body, [x["uid"] for x in body["results"]]


def test_a_confident_category_is_a_chip_and_filters_inside_the_search(catalog, monkeypatch) -> None:
    body, uids = run(catalog, monkeypatch, FakeTypes(GarmentCategory.bottom, 0.9))
    assert set(uids) == BOTTOMS  # a red photo would rank the red tee and hoodie first otherwise
    assert body["image_category"] == {
        "category": "bottom",
        "probability": 0.9,
        "garment_class": "pants",
        "applied": True,
    }
    assert body["relaxed"] == []


def test_use_category_false_turns_the_filter_off(catalog, monkeypatch) -> None:
    body, uids = run(catalog, monkeypatch, FakeTypes(GarmentCategory.bottom, 0.9), use_category="false")
    assert set(uids[:3]) == {"test:T1", "test:P1", "test:H1"}  # the red ones first, of any category
    assert body["image_category"]["applied"] is False and body["relaxed"] == []


def test_the_setting_is_the_default_and_the_form_field_wins(catalog, monkeypatch) -> None:
    fake = FakeTypes(GarmentCategory.bottom, 0.9)
    body, uids = run(catalog, monkeypatch, fake, on=False)  # reported, not applied
    assert body["image_category"]["applied"] is False and set(uids) > BOTTOMS
    body, uids = run(catalog, monkeypatch, fake, on=False, use_category="true")
    assert body["image_category"]["applied"] is True and set(uids) == BOTTOMS


def test_too_few_matching_products_relax_the_filter_and_say_so(catalog, monkeypatch) -> None:
    body, uids = run(catalog, monkeypatch, FakeTypes(GarmentCategory.bottom, 0.9), min_page=10)
    assert set(uids) > BOTTOMS
    assert body["image_category"]["applied"] is False and body["relaxed"] == ["image_category"]


def test_the_request_filters_count_towards_one_page(catalog, monkeypatch) -> None:
    # bottoms under $45: only P1 (and 1 < 2 products): relaxed, the price filter still holds
    body, uids = run(catalog, monkeypatch, FakeTypes(GarmentCategory.bottom, 0.9), max_price="45")
    assert body["relaxed"] == ["image_category"] and "test:T1" in uids and "test:P2" not in uids


def test_an_unsure_guess_is_neither_chip_nor_filter(catalog, monkeypatch) -> None:
    fake = FakeTypes(GarmentCategory.bottom, 0.5)
    body, uids = run(catalog, monkeypatch, fake)
    assert fake.calls == 1 and body["image_category"] is None and set(uids) > BOTTOMS


@pytest.mark.parametrize("path", ["/search"])
def test_json_and_text_searches_have_no_image_category(client, path) -> None:  # noqa: ANN001
    assert client.post(path, json={"text": "red tee"}).json()["image_category"] is None


def test_the_committed_classifier_is_off_for_another_encoder(client) -> None:
    r = client.post("/search/image", files={"image": ("g.png", solid_png(COLORS["red"]), "image/png")})
    assert r.status_code == 200 and r.json()["image_category"] is None
    assert client.app.state.retrieval.garment_types is None  # the fake colour encoder is not its encoder
