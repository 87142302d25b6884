"""``fittingroom search`` (CliRunner, fake colour encoder, SQLite store)."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from retrieval_fakes import COLORS, ColorEncoder
from typer.testing import CliRunner

import fittingroom.models.specs as specs
from fittingroom.cli import build_app


@pytest.fixture()
def run(catalog, monkeypatch):
    _, _, settings, _ = catalog
    monkeypatch.setattr(specs, "get_encoder", lambda core, name, **kw: ColorEncoder())
    runner = CliRunner()
    app = build_app()
    common = ["--store", settings.store_uri, "--index-dir", str(settings.index_dir)]

    def invoke(*args: str):
        return runner.invoke(app, ["search", *args, *common], env={"COLUMNS": "400"})

    return invoke


def test_text_json_lines(run):
    r = run("--text", "green", "-k", "3", "--json")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 3
    assert {rows[0]["id"], rows[1]["id"]} == {"test:T2", "test:J2"}
    for key in ("id", "title", "category_path", "price", "score"):
        assert key in rows[0]
    assert rows[0]["score"] >= rows[1]["score"] >= rows[2]["score"]


def test_image_with_box_table(run, tmp_path):
    img = Image.new("RGB", (40, 20), COLORS["green"])
    img.paste(COLORS["blue"], (20, 0, 40, 20))
    path = tmp_path / "photo.png"
    img.save(path)
    r = run("--image", str(path), "--box", "20,0,40,20", "-k", "3")
    assert r.exit_code == 0, r.output
    assert "Blue tee" in r.stdout and "Blue pants" in r.stdout and "Green tee" not in r.stdout
    r = run("--image", str(path), "--box", "20,0,40,20", "--json", "--category", "Pants")
    assert [json.loads(line)["id"] for line in r.stdout.splitlines()][0] == "test:P2"


def test_more_like_this_by_bare_id(run):
    r = run("--product", "T3", "--json", "-k", "2")
    assert r.exit_code == 0, r.output
    ids = [json.loads(line)["id"] for line in r.stdout.splitlines()]
    assert "test:T3" not in ids and ids[0] in {"test:P2", "test:H1"}


def test_filters_and_pagination(run):
    r = run("--text", "red", "--brand", "Acme", "--max-price", "30", "--json")
    assert {json.loads(line)["id"] for line in r.stdout.splitlines()} == {"test:T1", "test:T2"}
    r = run("--text", "red", "-k", "2")
    assert "next page: --offset 2" in r.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 2, "give --image, --text or --product"),
        (("--image", "/nonexistent/x.jpg"), 2, "no such file"),
        (("--text", "red", "--box", "1,2,3,4"), 2, "--box crops --image"),
        (("--product", "NOPE"), 2, "no product with id 'NOPE'"),
        (("--product", "test:NOPE"), 1, "no product 'test:NOPE'"),
        (("--text", "red", "--min-price", "9", "--max-price", "1"), 2, "greater than --max-price"),
        (("--text", "red", "-k", "0"), 2, "greater than or equal to 1"),
    ],
)
def test_errors(run, args, code, message):
    r = run(*args)
    assert r.exit_code == code, r.output
    assert message in " ".join(r.output.split())


def test_not_an_image_and_bad_box(run, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    r = run("--image", str(bad))
    assert r.exit_code == 2 and "not a decodable image" in " ".join(r.output.split())
    good = tmp_path / "a.png"
    Image.new("RGB", (10, 10)).save(good)
    r = run("--image", str(good), "--box", "0,0,50,50")
    assert r.exit_code == 2 and "outside" in " ".join(r.output.split())


def test_missing_index_says_ingest(tmp_path, monkeypatch):
    monkeypatch.setattr(specs, "get_encoder", lambda core, name, **kw: ColorEncoder())
    from fittingroom.catalog.sqlite import SQLiteStore

    SQLiteStore(tmp_path / "c.db").close()
    r = CliRunner().invoke(
        build_app(),
        [
            "search",
            "--text",
            "red",
            "--store",
            f"sqlite:///{tmp_path / 'c.db'}",
            "--index-dir",
            str(tmp_path / "i"),
        ],
    )
    assert r.exit_code == 1 and "fittingroom ingest" in r.output
