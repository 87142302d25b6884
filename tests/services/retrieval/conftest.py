from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from retrieval_fakes import ColorEncoder, make_catalog

from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.index import sync_index
from fittingroom.retrieval.settings import RetrievalSettings
from services.retrieval.app import create_app


@pytest.fixture()
def catalog(tmp_path: Path):
    """(store, encoder, settings, products) of a synced 8-product colour catalog."""
    store = SQLiteStore(tmp_path / "catalog.db")
    encoder = ColorEncoder()
    cache = tmp_path / "images"
    products = make_catalog(store, encoder, cache)
    sync_index(store, encoder.name, tmp_path / "index")
    settings = RetrievalSettings(
        store_uri=f"sqlite:///{tmp_path / 'catalog.db'}",
        index_dir=tmp_path / "index",
        image_cache_dir=cache,
        allow_private_urls=True,
        max_k=20,
        max_offset=50,
        max_upload_bytes=200_000,
        index_reload_s=0,
    )
    yield store, encoder, settings, products
    store.close()


@pytest.fixture()
def client(catalog):
    store, encoder, settings, _ = catalog
    app = create_app(settings, store=store, encoder=encoder)
    with TestClient(app) as c:
        yield c
