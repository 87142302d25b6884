"""Fixtures of the production rehearsal tier (see ``rehearsal_setup.py``)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rehearsal_setup import (
    IMAGES_PER_PRODUCT,
    SUBSET_PRODUCTS,
    Rehearsal,
    build_checkpoints,
    server_env,
    wait_ready,
    write_subset_feed,
)


@pytest.fixture(scope="session")
def rehearsal(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[Rehearsal]:
    """``python -m fittingroom.cli serve --port 0 --catalog SUBSET`` configured as production."""
    luma = shared_data / "luma-catalog" / "products.jsonl"
    if not luma.is_file():
        pytest.fail(f"shared data missing: {luma}")
    root = tmp_path_factory.mktemp("rehearsal")
    home = root / "home"
    home.mkdir()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    clip, sam = build_checkpoints(root)
    timings["build checkpoints"] = time.perf_counter() - t0
    feed = root / "luma.jsonl"  # source name "luma"
    n_images = write_subset_feed(luma, feed, SUBSET_PRODUCTS, IMAGES_PER_PRODUCT)
    env = server_env(home, shared_data, clip, sam)
    log_path = root / "serve.log"
    log = log_path.open("w")
    cmd = [sys.executable, "-m", "fittingroom.cli", "serve", "--port", "0", "--catalog", str(feed)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=home, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    url: str | None = None

    def pump() -> None:
        nonlocal url
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            found = re.search(r"fittingroom is running at (http://\S+/)", line)
            if found:
                url = found.group(1)

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + 600
        while url is None:
            if proc.poll() is not None:
                pytest.fail(
                    f"fittingroom serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"fittingroom serve printed no URL:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        wait_ready(url, proc, log_path, timeout=300)
        timings["serve: load models, ingest, ready"] = time.perf_counter() - t0
        yield Rehearsal(url, home, feed, clip, sam, env, log_path, n_images, timings)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        print("\nrehearsal timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
