"""Shared fixtures: the real data folder and the real offline encoder (loaded once per session)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
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


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A throw-away redis-server on 127.0.0.1 (a free port, nothing saved to disk) for the RQ and
    scrapy-redis tests; skipped when redis-server is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed (Debian: apt-get install -y redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [*args, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(autouse=True)
def _fresh_process_settings() -> Iterator[None]:
    """``get_settings()`` is read once per process; a test that changes the environment (a
    temporary home, a model folder) must not leave its settings to the tests after it."""
    from fittingroom.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
