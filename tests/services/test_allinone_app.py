"""The all-in-one app: mounting, sub-app lifespans, failure isolation, health, the page.

These tests use small FastAPI apps in place of the three services (the real ones
load models); the browser tests (tests/frontend) and the three-process integration
test (tests/integration) run the real services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from services.app import ServeSettings, ServiceSlot, create_app


def fake_service(
    name: str, events: list[str], *, fail: bool = False, healthy: bool = True
) -> Callable[[], FastAPI]:
    """A service whose lifespan records start/stop and whose routes need the lifespan to have run."""

    def factory() -> FastAPI:
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
            events.append(f"start {name}")
            if fail:
                raise RuntimeError(f"{name} weights not found at /nowhere")
            app.state.model = f"{name}-model"
            yield {f"{name}_state": "shared"}
            events.append(f"stop {name}")

        app = FastAPI(lifespan=lifespan)

        @app.get("/whoami")
        async def whoami(request: Request) -> dict[str, str]:
            return {
                "model": request.app.state.model,
                "state": getattr(request.state, f"{name}_state", None),
                "root_path": request.scope.get("root_path", ""),
            }

        @app.get("/healthz")
        async def healthz() -> JSONResponse:
            return JSONResponse(
                {"status": "ok" if healthy else "no_index"}, status_code=200 if healthy else 503
            )

        return app

    return factory


@pytest.fixture
def page(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>fittingroom</title><h1>page</h1>")
    (dist / "assets" / "app.js").write_text("console.log('hi')")
    return dist


def make(page: Path, events: list[str], **flags: dict[str, bool]) -> FastAPI:
    services = {
        name: fake_service(name, events, **flags.get(name, {}))
        for name in ("retrieval", "segmentation", "tryon")
    }
    return create_app(ServeSettings(frontend_dir=page), services=services)


def test_lifespans_of_mounted_services_run_in_order_and_stop_in_reverse(page: Path) -> None:
    events: list[str] = []
    app = make(page, events)
    with TestClient(app) as client:
        assert events == ["start retrieval", "start segmentation", "start tryon"]
        body = client.get("/api/segmentation/whoami").json()
        assert body["model"] == "segmentation-model"
        assert body["state"] == "shared"  # a lifespan's yielded state reaches the sub-app's requests
        assert body["root_path"] == "/api/segmentation"  # services build their URLs from it
        assert client.get("/api/tryon/whoami").json()["model"] == "tryon-model"
    assert events[3:] == ["stop tryon", "stop segmentation", "stop retrieval"]


def test_a_service_that_fails_to_start_answers_503_and_the_others_still_serve(page: Path) -> None:
    events: list[str] = []
    ready: list[list[ServiceSlot]] = []
    services = {
        "retrieval": fake_service("retrieval", events),
        "segmentation": fake_service("segmentation", events, fail=True),
        "tryon": fake_service("tryon", events),
    }
    app = create_app(ServeSettings(frontend_dir=page), services=services, on_ready=ready.append)
    with TestClient(app) as client:
        resp = client.get("/api/segmentation/whoami")
        assert resp.status_code == 503
        assert "segmentation service is unavailable" in resp.json()["detail"]
        assert "weights not found at /nowhere" in resp.json()["detail"]
        assert client.get("/api/retrieval/whoami").status_code == 200
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["services"]["segmentation"]["started"] is False
        readyz = client.get("/readyz")
        assert readyz.status_code == 503
        assert readyz.json()["services"]["retrieval"]["ready"] is True
        assert readyz.json()["services"]["segmentation"]["ready"] is False
    assert [s.started for s in ready[0]] == [True, False, True]


def test_readyz_follows_each_services_own_healthz(page: Path) -> None:
    events: list[str] = []
    with TestClient(make(page, events)) as client:
        resp = client.get("/readyz")
        assert resp.status_code == 200
        assert resp.json()["ready"] is True
        assert client.get("/healthz").json()["status"] == "ok"
    with TestClient(make(page, events, retrieval={"healthy": False})) as client:
        resp = client.get("/readyz")
        assert resp.status_code == 503
        assert resp.json()["services"]["retrieval"]["health"] == {"status": "no_index"}
        assert resp.json()["services"]["tryon"]["ready"] is True


def test_serves_the_built_page_and_its_assets(page: Path) -> None:
    with TestClient(make(page, [])) as client:
        root = client.get("/")
        assert root.status_code == 200
        assert "<h1>page</h1>" in root.text
        assert client.get("/assets/app.js").text == "console.log('hi')"
        assert client.get("/nope.js").status_code == 404
        # the API prefixes are not shadowed by the static mount
        assert client.get("/api/retrieval/whoami").status_code == 200
        assert client.get("/api/retrieval/openapi.json").status_code == 200


def test_a_product_deep_link_serves_the_page(page: Path) -> None:
    with TestClient(make(page, [])) as client:
        r = client.get("/product/luma:MH01")
        assert r.status_code == 200 and "<h1>page</h1>" in r.text
        assert r.headers["content-type"].startswith("text/html")
        assert client.get("/product/luma:MH01/extra").status_code == 404
        assert client.get("/api/retrieval/whoami").status_code == 200


def test_missing_page_build_is_a_clear_503(tmp_path: Path) -> None:
    services = {"retrieval": fake_service("retrieval", [])}
    app = create_app(ServeSettings(frontend_dir=tmp_path / "not-built"), services=services)
    with TestClient(app) as client:
        resp = client.get("/")
        assert resp.status_code == 503
        assert "npm ci" in resp.text
        assert client.get("/api/retrieval/whoami").status_code == 200


def test_default_services_are_the_three_service_apps() -> None:
    from services.app import SERVICES, _default_factories

    assert list(SERVICES) == ["retrieval", "segmentation", "tryon"]
    assert list(_default_factories()) == list(SERVICES)


def test_a_service_that_cannot_be_built_is_reported_and_the_others_run(page: Path) -> None:
    def broken() -> FastAPI:
        raise ModuleNotFoundError("No module named 'fashn_vton'")

    services = {"retrieval": fake_service("retrieval", []), "tryon": broken}
    with TestClient(create_app(ServeSettings(frontend_dir=page), services=services)) as client:
        assert client.get("/api/retrieval/whoami").status_code == 200
        resp = client.get("/api/tryon/tryon/123")
        assert resp.status_code == 503
        assert "fashn_vton" in resp.json()["detail"]
        assert client.get("/healthz").json()["services"]["tryon"]["started"] is False
        assert client.get("/readyz").status_code == 503
