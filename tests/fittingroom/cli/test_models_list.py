"""``fittingroom models list``: every shelf entry with its files, the trained heads included."""

from __future__ import annotations

import pytest

from fittingroom.cli.models import configured_models
from fittingroom.models.garment_type import DEFAULT_MODEL_PATH
from fittingroom.models.parsing import DEFAULT_HEAD_PATH
from fittingroom.settings import get_settings


@pytest.fixture(autouse=True)
def _fresh_settings():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def by_name() -> dict[str, dict]:
    return {row["name"]: row for row in configured_models()}


def test_trained_heads_are_listed_with_their_committed_files() -> None:
    rows = by_name()
    for name, path in (("parsing", DEFAULT_HEAD_PATH), ("garment_type", DEFAULT_MODEL_PATH)):
        row = rows[name]
        assert row["licence"] and row["source"]
        (f,) = row["files"]
        assert f["path"] == str(path) and f["sha256"], f
        assert row["configured"] is True


def test_parsing_head_off_is_listed_as_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENTATION_PARSING", "false")
    assert by_name()["parsing"]["configured"] is False


def test_parsing_head_path_setting_reaches_the_listing(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    head = tmp_path / "head.npz"
    head.write_bytes(b"not a head")
    monkeypatch.setenv("SEGMENTATION_PARSING_HEAD", str(head))
    (f,) = by_name()["parsing"]["files"]
    assert f["path"] == str(head) and f["sha256"]
