"""``fittingroom ingest`` through typer, with the real FAISS index sync and a fake encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from ingest_fakes import PixelStatsEncoder, gmc_records, write_jsonl
from typer.testing import CliRunner

from catalog_ingest.cli import register
from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.settings import get_settings


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from fittingroom.models import specs
    from fittingroom.models.registry import ModelSpec

    monkeypatch.setenv("FITTINGROOM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FITTINGROOM_STORE_URI", raising=False)
    monkeypatch.delenv("FITTINGROOM_INDEX_DIR", raising=False)
    fake = ModelSpec(
        name=f"encoder.fake-{tmp_path.name}",  # a fresh shelf key per test
        kind="encoder",
        source="test",
        licence="test",
        factory=lambda **kw: PixelStatsEncoder(),
        options=frozenset({"device"}),
    )
    monkeypatch.setitem(specs.ENCODERS, "fake", fake)
    get_settings.cache_clear()
    app = typer.Typer()
    register(app, {})

    @app.callback()
    def _root() -> None:  # keep 'ingest' a sub-command
        pass

    def run(*args: str):
        return CliRunner().invoke(app, ["ingest", *args], catch_exceptions=False)

    yield run
    get_settings.cache_clear()


def test_ingest_command_writes_store_and_index(cli, tmp_path: Path) -> None:
    feed = write_jsonl(tmp_path / "shop.jsonl", gmc_records(3, tmp_path / "img"))
    result = cli(str(feed), "--encoder", "fake", "--no-progress", "--no-annotate")
    assert result.exit_code == 0, result.output
    assert "Ingest summary" in result.output and "images embedded" in result.output
    home = tmp_path / "home"
    with SQLiteStore(home / "catalog.db") as store:
        assert store.count_products("shop") == 3
        assert len(store.embedding_ids(PixelStatsEncoder.name)) == 6
    from fittingroom.index import VectorIndex

    index = VectorIndex.open(home / "index", PixelStatsEncoder.name, read_only=True)
    assert len(index) == 6
    # second run: JSON summary, nothing embedded
    result = cli(str(feed), "--encoder", "fake", "--no-progress", "--json", "--source", "shop", "--no-annotate")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert (summary["embedded"], summary["unchanged"], summary["bad_rows"]) == (0, 3, [])


def test_bad_rows_name_file_and_line(cli, tmp_path: Path) -> None:
    records = gmc_records(2, tmp_path / "img")
    feed = write_jsonl(tmp_path / "shop.jsonl", [records[0], {"title": "x"}, "{oops", records[1]])
    result = cli(str(feed), "--encoder", "fake", "--no-progress", "--no-annotate", "--json")
    assert result.exit_code == 0
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert [(b["file"], b["line"]) for b in summary["bad_rows"]] == [(str(feed), 2), (str(feed), 3)]
    assert summary["bad_rows"][0]["reason"] == "missing id"
    strict = cli(str(feed), "--encoder", "fake", "--no-progress", "--no-annotate", "--strict")
    assert strict.exit_code == 1
    assert f"{feed}:2" in strict.output.replace("\n", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "feed file not found"),
        (["FEED", "--map", "sku=nothing"], "unknown target field 'nothing'"),
        (["FEED", "--format", "xml"], "--format 'xml'"),
        (["FEED", "--encoder", "nope"], "unknown encoder 'nope'"),
        (["FEED", "--source", "a:b", "--encoder", "fake"], "invalid source name"),
    ],
)
def test_usage_errors(cli, tmp_path: Path, args: list[str], message: str) -> None:
    feed = write_jsonl(tmp_path / "shop.jsonl", gmc_records(1, tmp_path / "img"))
    args = [str(feed) if a == "FEED" else str(tmp_path / a) if a.endswith(".jsonl") else a for a in args]
    result = cli(*args, "--no-progress")
    assert result.exit_code == 2
    assert message in result.output
