"""``fittingroom eval retrieval --end-to-end / --product-only``: argument errors before any
work, the product-only run through the real ingest runner (fake encoder), the printed tables,
and one small real run on the shared data."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fittingroom.cli import build_app
from fittingroom.images import flatten_alpha
from fittingroom.models.encoders.base import Encoder, Query, l2_normalize
from fittingroom.retrieval.click_eval import ClickSearchReport, ItemScore, TypeP10Report

RED, BLUE, GREEN = (210, 30, 30), (30, 40, 210), (30, 190, 40)


class ChromaEncoder(Encoder):
    """An image is its mean colour minus its gray level; texts are ignored (all documents alike)."""

    name = "fake-chroma"
    dim = 4

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = np.zeros((len(images), self.dim), np.float32)
        for i, img in enumerate(images):
            rgb = np.asarray(flatten_alpha(img).convert("RGB"), np.float32).reshape(-1, 3).mean(0) / 255
            out[i, :3], out[i, 3] = rgb - rgb.mean(), 0.01
        return l2_normalize(out)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_images([Image.new("RGB", (4, 4), (128, 128, 128))] * len(texts))

    def document_vectors(self, images: Sequence[Image.Image], texts: Sequence[str]) -> np.ndarray:
        return self.embed_images(images)

    def query_vectors(self, queries: Sequence[Query]) -> np.ndarray:
        blank = Image.new("RGB", (4, 4), (128, 128, 128))
        return self.embed_images([q.image if q.image is not None else blank for q in queries])


def street_folder(root: Path) -> Path:
    """One labelled street photo: a red t-shirt (label 48) over blue pants (label 31)."""
    lm = np.zeros((120, 80), np.uint8)
    lm[10:60, 10:70], lm[60:115, 10:70] = 48, 31
    rgb = np.full((120, 80, 3), 240, np.uint8)
    rgb[lm == 48], rgb[lm == 31] = RED, BLUE
    (root / "photos").mkdir(parents=True)
    (root / "label-maps").mkdir()
    Image.fromarray(rgb).save(root / "photos" / "0001.jpg", quality=95)
    Image.fromarray(lm).save(root / "label-maps" / "0001.png")
    items = [
        {"label": "t-shirt", "label_id": 48, "bbox_xyxy": [10, 10, 70, 60], "pixels": 3001},
        {"label": "pants", "label_id": 31, "bbox_xyxy": [10, 60, 70, 115], "pixels": 3300},
    ]
    rec = {"image": "photos/0001.jpg", "annotation": "pixel-level", "label_map": "label-maps/0001.png"}
    (root / "annotations.json").write_text(
        json.dumps({"labels": [], "images": {"0001": {**rec, "items": items}}})
    )
    return root


def garment_folder(root: Path) -> Path:
    """garment-photos: 3 red t-shirts, 3 blue pants, 2 green hats (validation), 1 red train t-shirt."""
    rows = []
    for split, label, color, n in [
        ("validation", "t-shirt", RED, 3),
        ("validation", "pants", BLUE, 3),
        ("validation", "hat", GREEN, 2),
        ("train", "t-shirt", RED, 1),
    ]:
        (root / split / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rel = f"{split}/{label}/{label}-{split[0]}{i}.jpg"
            shade = tuple(min(255, c + 8 * i) for c in color)
            Image.new("RGB", (40, 40), shade).save(root / rel)
            rows.append([rel, split, label, 40, 40])
    with (root / "index.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([["path", "split", "label", "width", "height"], *rows])
    return root


def invoke(args: list[str]):
    return CliRunner().invoke(build_app(), ["eval", "retrieval", *args], env={"COLUMNS": "400"})


@pytest.fixture()
def no_work(monkeypatch):
    """Fail the test when an evaluation starts (ingest, model load)."""
    import fittingroom.cli.retrieval as cli

    def boom(*a, **kw):
        raise AssertionError("an evaluation started")

    monkeypatch.setattr(cli, "_eval_searcher", boom)
    monkeypatch.setattr(cli, "_load_encoder", boom)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--no-standard"], "nothing to evaluate: --no-standard needs --end-to-end and/or --product-only"),
        (["--limit", "3"], "--limit applies to --end-to-end / --product-only only"),
        (["--end-to-end", "--limit", "0"], "--limit"),  # min 1
        (["--garment-photos", "."], "--garment-photos needs --product-only"),
    ],
)
def test_argument_errors_are_clear(no_work, args, says) -> None:
    r = invoke(args)
    assert r.exit_code == 2, r.output
    assert says in " ".join(r.output.split())


def test_missing_inputs_fail_before_any_evaluation(no_work, tmp_path) -> None:
    street = street_folder(tmp_path / "street")
    gp = tmp_path / "no-garments"
    gp.mkdir()
    r = invoke(["--product-only", "--street-photos", str(street), "--garment-photos", str(gp)])
    assert r.exit_code == 2 and "no index.csv there" in " ".join(r.output.split())
    r = invoke(["--end-to-end", "--street-photos", str(tmp_path), "--catalog", str(tmp_path / "x.jsonl")])
    assert r.exit_code == 2 and "no such file" in " ".join(r.output.split())


def test_product_only_through_the_ingest_runner(tmp_path, monkeypatch) -> None:
    """--no-standard --product-only: no Luma catalog needed; the validation photos are ingested
    (train left out), the red tee crop finds the 3 t-shirts, the blue pants crop the 3 pants."""
    import fittingroom.models.specs as specs

    monkeypatch.setattr(specs, "get_encoder", lambda core, name, **kw: ChromaEncoder())
    street = street_folder(tmp_path / "street")
    gp = garment_folder(tmp_path / "gp")
    args = ["--no-standard", "--product-only", "--street-photos", str(street), "--garment-photos", str(gp)]
    args += ["--catalog", str(tmp_path / "no-luma.jsonl"), "--encoder", "fake"]
    r = invoke([*args, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["encoder"] == "fake-chroma" and "luma_other_color_hit@1" not in out
    po = out["product_only"]
    assert po["garments"] == 2 and po["photos"] == 1
    assert po["type_p10_by_type"]["tee"] == pytest.approx(0.3)  # 3 t-shirts first, of 10
    assert po["type_p10_by_type"]["pants"] == pytest.approx(0.3)
    assert po["type_p10"] == pytest.approx(0.3)
    assert "catalog: 8 validation photos of garment-photos" in po["notes"]
    table = invoke(args)
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.split())
    assert "Product-only catalog: street GT crops (2 on 1 photos)" in text
    assert "tee │ t-shirt, shirt │ 1 │ 0.300" in text and "all │ │ 2 │ 0.300" in text


def test_end_to_end_table_prints_every_figure(capsys) -> None:
    from fittingroom.cli.retrieval_click import print_end_to_end, print_product_only, product_only_json

    scores = [
        ItemScore("0001", "t-shirt", "tee", 0.8, 0.9, 0.7),
        ItemScore("0002", "pants", "pants", 0.2, 0.5, 0.6),
    ]
    print_end_to_end(ClickSearchReport(scores, photos=2, no_mask=1, validation_photos=frozenset({"0002"})))
    out = " ".join(capsys.readouterr().out.split())
    assert "2 garments on 2 photos; target type P@10 >= 0.65" in out
    assert "0.800" in out and "0.700" in out and "0.900" in out  # click, GT crop, IoU of the tee
    assert "all │ 2 │ 0.500 │ 0.650 │ 0.700" in out
    assert "clicks with no mask: 1; worst type P@10 0.200" in out
    assert "(1 garments on 1 photos): click P@10 0.200, GT-crop P@10 0.600, top-mask IoU 0.500" in out
    po = TypeP10Report([ItemScore("0001", "t-shirt", "tee", 0.4, math.nan)], photos=1, notes=["a note"])
    data = product_only_json(po)
    assert data["class_types"]["longsleeve"] == "hoodie" and data["notes"] == ["a note"]
    print_product_only(po)
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "tee │ t-shirt, shirt │ 1 │ 0.400" in out and "shorts │ shorts │ 0 │ n/a" in out and "a note" in out
    )


@pytest.mark.real_data
@pytest.mark.real_model
def test_a_small_real_end_to_end_run(tmp_path) -> None:
    """Two street photos, the real segmentation and encoder over the shared Luma catalog."""
    from fittingroom.settings import get_settings

    shared = get_settings().shared_data
    if not (shared / "street-photos" / "annotations.json").is_file():
        pytest.skip(f"shared data not found at {shared}")
    r = invoke(["--no-standard", "--end-to-end", "--limit", "2", "--json", "--workdir", str(tmp_path)])
    if r.exit_code != 0 and "model" in r.output.lower() and "not found" in r.output.lower():
        pytest.skip(f"models not installed: {r.output[-300:]}")
    assert r.exit_code == 0, r.output
    e2e = json.loads(r.stdout.strip().splitlines()[-1])["end_to_end"]
    assert e2e["photos"] == 2 and e2e["garments"] >= 2
    assert 0.0 <= e2e["type_p10"] <= 1.0 and e2e["top_mask_miou"] > 0.3  # the click finds the garment
    assert e2e["no_mask"] < e2e["garments"]
