"""Fixtures of the admin API tests: settings in a temporary home and a client of the admin app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from admin_helpers import TOKEN
from fastapi.testclient import TestClient

from catalog_ingest.jobs import AdminSettings
from fittingroom.settings import CoreSettings
from services.admin.app import create_app


@pytest.fixture
def core(tmp_path: Path) -> CoreSettings:
    return CoreSettings(home=tmp_path / "home", store_uri="", index_dir=None)


@pytest.fixture
def admin_settings(tmp_path: Path) -> AdminSettings:
    return AdminSettings(token=TOKEN, image_roots=[tmp_path / "img"], max_feed_bytes=20_000)


@pytest.fixture
def client(core: CoreSettings, admin_settings: AdminSettings) -> Iterator[TestClient]:
    from tests.services.retrieval.retrieval_fakes import ColorEncoder

    app = create_app(admin_settings, core=core, encoder=ColorEncoder(), annotators=False)
    with TestClient(app) as c:
        yield c
