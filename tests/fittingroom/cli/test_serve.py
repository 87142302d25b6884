"""``fittingroom serve --service NAME``, the command of the Docker images: one service, hardened
like the all-in-one app (security headers, Host allow-list, rate limit, header-read timeout)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fittingroom.cli import build_app
from services.hardening import PAGE_CSP, HeaderTimeoutH11Protocol

ROOT = Path(__file__).resolve().parents[3]


def image_command(service: str) -> list[str]:
    """The CMD of ``docker/<service>.Dockerfile`` (the admin runs the retrieval image with the
    compose file's ``command``)."""
    if service == "admin":
        text = (ROOT / "docker-compose.yml").read_text()
        match = re.search(r'command: (\["fittingroom", "serve", "--service", "admin".*?\])', text, re.S)
    else:
        text = (ROOT / "docker" / f"{service}.Dockerfile").read_text()
        match = re.search(r"^CMD (\[.*?\])", text.replace("\\\n", ""), re.S | re.M)
    assert match, f"no command found for {service}"
    return json.loads(match.group(1))


@pytest.mark.parametrize("service", ["retrieval", "segmentation", "tryon", "admin"])
def test_the_image_command_serves_the_hardened_service(
    service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FITTINGROOM_HOME", str(tmp_path))
    monkeypatch.setenv("FITTINGROOM_ADMIN_TOKEN", "image-test-token")  # admin routes on
    seen: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.append(self.config))
    argv = image_command(service)
    assert argv[:4] == ["fittingroom", "serve", "--service", service]
    result = CliRunner().invoke(build_app("serve"), argv[1:])
    assert result.exit_code == 0, result.output
    config = seen[0]
    assert (config.host, config.port, config.forwarded_allow_ips) == ("0.0.0.0", 8000, "*")
    assert issubclass(config.http, HeaderTimeoutH11Protocol)  # the header-read timeout
    client = TestClient(config.app, base_url="http://127.0.0.1")  # no lifespan: no model loads
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == PAGE_CSP
    assert client.get("/openapi.json", headers={"Host": "evil.example"}).status_code == 400


def test_an_unknown_service_is_refused() -> None:
    result = CliRunner().invoke(build_app("serve"), ["serve", "--service", "nope"])
    assert result.exit_code == 2 and "unknown service" in result.output
