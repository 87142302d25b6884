"""``fittingroom tryon`` and ``fittingroom eval tryon`` (real MediaPipe on real examples; errors name the file)."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image
from typer.testing import CliRunner

from fittingroom.cli import build_app

PERSON = "ootdiffusion/model/01008_00.jpg"
GARMENT = "ootdiffusion/garment/00055_00.jpg"


def test_missing_person_file_is_named(tmp_path):  # noqa: ANN001
    missing = tmp_path / "nobody.jpg"
    r = CliRunner().invoke(
        build_app(),
        ["tryon", "--person", str(missing), "--garment", str(missing), "--category", "top", "--out", "o.png"],
    )
    assert r.exit_code == 2
    assert "nobody.jpg" in r.output


def test_eval_examples_without_index_fails(tmp_path):  # noqa: ANN001
    r = CliRunner().invoke(build_app(), ["eval", "tryon", "--examples", str(tmp_path), "--json"])
    assert r.exit_code == 2 and "index.csv" in r.output


@pytest.mark.real_model
@pytest.mark.real_data
def test_tryon_and_eval_on_real_examples(shared_data, tmp_path, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("TRYON_CACHE_DIR", str(tmp_path / "cache"))  # person steps cached on disk here
    src = shared_data / "tryon-examples"
    out = tmp_path / "out.png"
    r = CliRunner().invoke(
        build_app(),
        [
            "tryon",
            "--person",
            str(src / PERSON),
            "--garment",
            str(src / GARMENT),
            "--category",
            "top",
            "--out",
            str(out),
            "--debug-dir",
            str(tmp_path / "dbg"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "quick preview" in r.output
    assert Image.open(out).size == (768, 1024)
    assert (tmp_path / "dbg" / "agnostic_mask.png").is_file()
    assert list((tmp_path / "cache").rglob("*-analysis.npz"))

    ex = tmp_path / "examples"
    for rel in (PERSON, GARMENT):
        (ex / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, ex / rel)
    (ex / "index.csv").write_text(f"path,role,category\n{PERSON},person,\n{GARMENT},garment,top\n")
    r = CliRunner().invoke(
        build_app(), ["eval", "tryon", "--examples", str(ex), "--out-dir", str(tmp_path / "ev"), "--json"]
    )
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.output.strip().splitlines()[-1])
    assert metrics["results"] == 1 and metrics["errors"] == 0
    assert metrics["face_unchanged_share"] == 1.0
    assert metrics["mean_iou"] > 0.4
    assert Image.open(metrics["contact_sheet"]).size == (576, 256)


def test_eval_categories_from_file_names_when_no_classifier(tmp_path):  # noqa: ANN001
    from fittingroom.tryon.evaluation import load_examples
    from fittingroom.tryon.person import TryOnCategory

    (tmp_path / "index.csv").write_text(
        "path,role\nmodel/a.jpg,person\ncloth/01234_00.jpg,garment\nx/condition/overall/d.jpg,garment\n"
        "mystery/7.jpg,garment\n"
    )
    persons, garments, source = load_examples(tmp_path, use_classifier=False)
    assert persons == ["model/a.jpg"]
    assert garments == [("cloth/01234_00.jpg", TryOnCategory.top), ("x/condition/overall/d.jpg", "one_piece")]
    assert source == "file names"
    (tmp_path / "index.csv").write_text("path,role,category\ng.jpg,garment,shoes\n")
    with pytest.raises(ValueError, match=r"index.csv:2: category must be"):
        load_examples(tmp_path)


@pytest.mark.real_model
@pytest.mark.real_data
def test_eval_categories_from_the_eligibility_classifier(shared_data, tmp_path):  # noqa: ANN001
    from fittingroom.tryon.evaluation import load_examples

    src = shared_data / "tryon-examples"
    rows = [
        "ootdiffusion/garment/00055_00.jpg",
        "fitdit/garment/0317.jpg",
        "catvton/condition/overall/21744571_51588794_1000.jpg",
    ]
    (tmp_path / "index.csv").write_text("path,role\n" + "".join(f"{r},garment\n" for r in rows))
    for r in rows:
        (tmp_path / r).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / r, tmp_path / r)
    _, garments, source = load_examples(tmp_path, use_classifier=True)
    if source.startswith("file names"):
        pytest.skip(source)
    assert source == "eligibility classifier"
    assert dict(garments) == {rows[0]: "top", rows[1]: "bottom", rows[2]: "one_piece"}
