"""Helpers of the crawler tests: shared data paths, crawl subprocesses, JSONL reading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fittingroom.settings import CoreSettings

REPO = Path(__file__).resolve().parents[2]


def shared_data() -> Path:
    """``FITTINGROOM_SHARED_DATA`` (default ``../shared/data`` from the repository root)."""
    p = CoreSettings().shared_data
    return p if p.is_absolute() else (REPO / p).resolve()


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (set FITTINGROOM_SHARED_DATA)")
    return path


def crawler_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment of a crawl subprocess: its own home, no politeness delays on loopback."""
    env = dict(os.environ)
    env.update(
        FITTINGROOM_HOME=str(home),
        FITTINGROOM_SHARED_DATA=str(shared_data()),
        CRAWLER_AUTOTHROTTLE="false",
        CRAWLER_DOWNLOAD_DELAY="0",
        CRAWLER_LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str] | None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``fittingroom ARGS`` in a subprocess (Twisted's reactor runs once per process)."""
    return subprocess.run(
        [sys.executable, "-c", "from fittingroom.cli import main; main()", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def crawl_json(args: list[str], env: dict[str, str], timeout: float = 300) -> dict[str, Any]:
    """Run ``fittingroom crawl ARGS --json`` and return the summary (fails the test on a non-zero exit)."""
    proc = run_cli(["crawl", *args, "--json"], env, timeout)
    assert proc.returncode == 0, f"crawl failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class WordHashEncoder:
    """A tiny deterministic stand-in for a real encoder (ingest code-path tests only).

    Image part: mean colour on a 2x2 grid; text part: a 16-bucket bag of words.
    """

    name = "test-word-hash"
    dim = 28

    def __init__(self) -> None:
        self.images_embedded = 0

    def _vectors(self, images: Any, texts: Any) -> Any:
        import hashlib

        import numpy as np

        from fittingroom.images import flatten_alpha
        from fittingroom.models.encoders.base import l2_normalize

        out = np.zeros((len(texts), self.dim), np.float32)
        for i, (img, text) in enumerate(zip(images, texts, strict=True)):
            a = np.asarray(flatten_alpha(img).convert("RGB").resize((2, 2)), np.float32) / 255.0
            out[i, :12] = a.reshape(-1)
            for w in text.lower().split():
                out[i, 12 + int(hashlib.md5(w.encode()).hexdigest(), 16) % 16] += 1.0
        return l2_normalize(out + 1e-3)

    def document_vectors(self, images: Any, texts: Any) -> Any:
        self.images_embedded += len(images)
        return self._vectors(images, texts)
