"""``fittingroom serve`` helpers: which feeds the first-run ingest loads, source names,
the start-up summary, and the command's errors (no models are loaded here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fittingroom.cli import build_app
from fittingroom.cli.serve import _health_line, announce, feeds_to_ingest, source_for_feed
from services.app import ServiceSlot


def test_explicit_feeds_are_always_ingested(tmp_path: Path) -> None:
    feeds = [tmp_path / "a.jsonl", tmp_path / "b.csv"]
    assert feeds_to_ingest(feeds, product_count=500) == (feeds, None)


def test_nothing_is_ingested_unless_told(tmp_path: Path) -> None:
    feeds, why = feeds_to_ingest([], product_count=0)
    assert feeds == [] and why is not None and "--catalog" in why
    feeds, why = feeds_to_ingest([], product_count=191)
    assert feeds == [] and why is not None and "191 products" in why


@pytest.mark.parametrize(
    ("feed", "source"),
    [
        ("shared/luma-catalog/products.jsonl", "luma"),
        ("shared/saleor-catalog/products.jsonl", "saleor"),
        ("feeds/zalando.csv.gz", "zalando"),
        ("exports/acme_feed/feed.tsv", "acme"),
    ],
)
def test_source_names(tmp_path: Path, feed: str, source: str) -> None:
    assert source_for_feed(tmp_path / feed) == source


def test_health_line_flattens_a_service_report() -> None:
    line = _health_line(
        {
            "started": True,
            "health": {
                "status": "ok",
                "products": 191,
                "index": {"kind": "flat", "count": 725, "params": {}},
            },
        }
    )
    assert line == "status=ok; products=191; index(kind=flat, count=725)"
    assert _health_line({"started": False, "error": "boom"}) == "not started: boom"


def test_announce_prints_the_url_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from fastapi import FastAPI

    slots = [ServiceSlot("retrieval", FastAPI(), started=True, startup_s=1.5)]
    announce("http://127.0.0.1:8123/", slots, {"retrieval": {"ready": True, "started": True, "health": {}}})
    out = capsys.readouterr().out
    assert "fittingroom is running at http://127.0.0.1:8123/\n" in out
    assert "/api/retrieval/" in out


def test_serve_rejects_a_missing_catalog(tmp_path: Path) -> None:
    result = CliRunner().invoke(build_app(), ["serve", "--catalog", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "catalog feed not found" in result.output and "nope.jsonl" in result.output
