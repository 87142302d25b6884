"""The shipped eligibility model on real catalog images (real weights, real data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fittingroom.catalog.models import PhotoType
from fittingroom.images import load_image
from fittingroom.models.eligibility.settings import HEAD_FILENAME, PACKAGED_WEIGHTS_DIR

SALEOR_APPAREL = ["saleor-grey-hoodie.png", "saleor-blue-polygon-tee-front.png", "saleor-team-tee-front.png"]
LUMA_ON_MODEL = ["m/h/mh01-gray_main.jpg", "w/t/wt01-blue_main.jpg", "m/p/mp01-black_main.jpg"]


@pytest.mark.real_model
@pytest.mark.real_data
def test_shipped_model_saleor_renders_eligible_luma_on_model_not(shared_data: Path) -> None:
    from fittingroom.models.eligibility import load_annotator
    from fittingroom.models.eligibility.settings import EligibilitySettings

    assert (PACKAGED_WEIGHTS_DIR / HEAD_FILENAME).stat().st_size < 2_000_000
    ann = load_annotator(EligibilitySettings(device="cpu"))
    saleor = [load_image(shared_data / "saleor-catalog" / "images" / n) for n in SALEOR_APPAREL]
    luma = [load_image(shared_data / "luma-catalog" / "images" / n) for n in LUMA_ON_MODEL]
    out = ann.annotate(saleor + luma)
    for name, d in zip(SALEOR_APPAREL, out[:3], strict=True):
        assert d["photo_type"] == PhotoType.product_only, name
        assert d["tryon_eligible"] is True, (name, d)
    for name, d in zip(LUMA_ON_MODEL, out[3:], strict=True):
        assert d["photo_type"] == PhotoType.on_model, name
        assert d["tryon_eligible"] is False, (name, d)


@pytest.mark.real_model
def test_ingest_loads_the_annotator_from_core_settings() -> None:
    from catalog_ingest.annotators import load_default_annotators
    from fittingroom.settings import CoreSettings

    annotators = load_default_annotators(CoreSettings(device="cpu"))
    assert len(annotators) == 1
    assert annotators[0].name.startswith("eligibility-lite0-logreg-")
