"""The benchmark scripts' command lines: every script takes ``--quick`` and ``--help``.

Only the argument parsers run here (no benchmark work: ``make bench-quick`` runs them); the
scripts are imported from their files, so importing one must stay cheap.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(autouse=True)
def _benchmarks_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as `python benchmarks/NAME.py` does


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_quick_gives_smaller_settings(path: Path) -> None:
    from _common import parse

    module = load(path)
    full = parse(module.build_parser(), [])
    quick = parse(module.build_parser(), ["--quick"])
    assert quick.quick and not full.quick
    values = module.build_parser().get_default("_quick_values")
    assert values, f"{path.name}: --quick changes nothing"
    for dest, value in values.items():
        assert getattr(quick, dest) == value
        assert getattr(full, dest) != value, f"{path.name}: --{dest} is the same with and without --quick"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_help_lists_quick(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from _common import parse

    with pytest.raises(SystemExit) as exit_:
        parse(load(path).build_parser(), ["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out
    assert out.lstrip().startswith("usage:")


def test_explicit_option_wins_over_quick() -> None:
    from _common import make_parser, parse

    ap = make_parser("doc", quick={"rows": 10, "runs": 1})
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    args = parse(ap, ["--rows", "50", "--quick"])
    assert (args.rows, args.runs) == (50, 1)
    assert not hasattr(args, "_quick_values")


def test_quick_value_for_a_missing_option_is_an_error() -> None:
    from _common import make_parser, parse

    ap = make_parser("doc", quick={"rowz": 10})
    ap.add_argument("--rows", type=int, default=1000)
    with pytest.raises(ValueError, match="rowz"):
        parse(ap, [])


def test_bad_option_exits_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    from _common import parse

    with pytest.raises(SystemExit) as exit_:
        parse(load(BENCHMARKS / "store_bench.py").build_parser(), ["--quick", "--products", "many"])
    assert exit_.value.code == 2
    assert "invalid int value" in capsys.readouterr().err


def test_scripts_are_imported_without_running(capsys: pytest.CaptureFixture[str]) -> None:
    for path in SCRIPTS:
        module = load(path)
        assert isinstance(module.build_parser(), argparse.ArgumentParser)
    assert capsys.readouterr().out == ""
    assert "_common" in sys.modules
