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
def test_tryon_and_eval_on_real_examples(shared_data, tmp_path):  # noqa: ANN001
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
