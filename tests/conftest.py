"""Shared fixtures: the real data folder and the real offline encoder (loaded once per session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the repository (or FITTINGROOM_SHARED_DATA)."""
    path = Path(os.environ.get("FITTINGROOM_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (path / "README.md").is_file():
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture(scope="session")
def offline_encoder():  # noqa: ANN201
    """The real ``offline`` encoder on CPU (EfficientNet-Lite0 + all-MiniLM-L6-v2 from the wheels)."""
    from fittingroom.models.encoders import get_encoder

    return get_encoder("offline", device="cpu")
