"""The ``fittingroom`` app: a top-level command builds the app with its component alone, and a
search imports only what it needs (fresh interpreters, so ``sys.modules`` is the command's own)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from fittingroom.cli import _component_of, _components, build_app

REPO = Path(__file__).resolve().parents[3]


def top_level_commands(app: typer.Typer) -> set[str]:
    return {c.name for c in app.registered_commands if c.name}


def test_every_top_level_command_is_built_by_its_component_alone() -> None:
    full = build_app()
    names = top_level_commands(full)
    assert {"search", "serve", "ingest", "crawl", "segment", "tryon"} <= names
    for name in names:
        module = _component_of(name)
        assert module is not None, f"{name}: no component in _component_of"
        assert module in _components()
        alone = build_app(name)
        assert name in top_level_commands(alone)
        assert top_level_commands(alone) < names or len(names) == 1
    for group in ("eval", "models", "train", "review", "--help", None):
        assert _component_of(group) is None  # groups take commands of many components: all loaded


def imported_after(argv: list[str]) -> dict:
    """Run ``fittingroom ARGV`` in a fresh interpreter; its exit code and the top-level packages loaded."""
    code = (
        "import json, sys\n"
        "from fittingroom.cli import main\n"
        f"sys.argv = ['fittingroom', *{argv!r}]\n"
        "try:\n    main()\n    rc = 0\nexcept SystemExit as e:\n    rc = e.code\n"
        "print(json.dumps({'rc': rc, 'mods': sorted({m.split('.')[0] for m in sys.modules} | "
        "{m for m in sys.modules if m.startswith(('fittingroom.cli.', 'crawler.', 'catalog_ingest.'))})}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


HEAVY = {
    "torch",
    "torchvision",
    "sentence_transformers",
    "transformers",
    "scrapy",
    "fastapi",
    "open_clip",
    "cv2",
}


def test_a_local_search_imports_neither_torch_nor_other_components(tmp_path: Path) -> None:
    out = imported_after(["search", "--text", "red", "--store", f"sqlite:///{tmp_path / 'none.db'}"])
    assert out["rc"] == 1  # no catalog there
    mods = set(out["mods"])
    assert not mods & HEAVY
    assert "httpx" not in mods  # the server client and the service's URL fetcher are not needed
    assert not {m for m in mods if m.startswith(("crawler", "catalog_ingest", "fittingroom.cli.tryon"))}
    assert "fittingroom.cli.retrieval" in mods


def test_a_search_on_a_server_loads_no_model_library() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = imported_after(["search", "--text", "red", "--server", f"http://127.0.0.1:{port}"])
    assert out["rc"] == 2  # nobody listens there
    mods = set(out["mods"])
    assert "urllib" in mods and "httpx" not in mods  # a text query: the standard library's client
    assert not mods & (HEAVY | {"numpy", "faiss", "onnxruntime", "tokenizers", "PIL"})


@pytest.mark.parametrize("argv", [["--help"], ["search", "--help"]])
def test_help_stays_light(argv: list[str]) -> None:
    out = imported_after(argv)
    assert out["rc"] == 0 and not set(out["mods"]) & (HEAVY | {"numpy", "faiss", "onnxruntime", "httpx"})
