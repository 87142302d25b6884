"""Labels builder on a tiny fake shared-data folder; CSV round trip, errors, split, corrections."""

from __future__ import annotations

from pathlib import Path

import pytest

from fittingroom.catalog.models import GarmentCategory, PhotoType
from fittingroom.training.eligibility.labels import (
    LabelRow,
    LabelsError,
    apply_corrections,
    build_labels,
    read_labels,
    split_of,
    write_labels,
)


def _by_name(rows: list[LabelRow]) -> dict[str, LabelRow]:
    return {r.path.name: r for r in rows}


def test_build_labels_maps_every_source(fake_shared: Path) -> None:
    rows = build_labels(fake_shared, street_limit=2)
    by = _by_name(rows)
    po, om = PhotoType.product_only, PhotoType.on_model
    # garment-photos: class -> category; unknown classes skipped
    assert (by["t-shirt0.jpg"].photo_type, by["t-shirt0.jpg"].garment_category) == (po, GarmentCategory.top)
    assert by["pants1.jpg"].garment_category == GarmentCategory.bottom
    assert by["shoes0.jpg"].garment_category == GarmentCategory.footwear
    assert "socks0.jpg" not in by
    # tryon-examples: folder name -> category, else top; persons on_model without category
    assert (by["1_00.jpg"].photo_type, by["1_00.jpg"].garment_category) == (po, GarmentCategory.one_piece)
    assert by["2.jpg"].garment_category == GarmentCategory.top
    assert (by["3.jpg"].photo_type, by["3.jpg"].garment_category) == (om, None)
    # saleor: product_only, category from the product path; non-apparel is other
    assert (by["hoodie.png"].photo_type, by["hoodie.png"].garment_category) == (po, GarmentCategory.top)
    assert by["book.png"].garment_category == GarmentCategory.other
    # luma: apparel on_model with its category, gear product_only
    assert (by["mh01-gray_main.jpg"].photo_type, by["mh01-gray_main.jpg"].garment_category) == (
        om,
        GarmentCategory.top,
    )
    assert by["mh01-gray_main.jpg"].group == by["mh01-gray_back.jpg"].group == "luma:MH01"
    assert (by["bag.jpg"].photo_type, by["bag.jpg"].garment_category) == (po, GarmentCategory.bag_accessory)
    assert by["ball.jpg"].garment_category == GarmentCategory.other
    # street photos: first street_limit only; people photos: original and _1024 copy share a group
    assert {"0001.jpg", "0002.jpg"} <= set(by) and "0003.jpg" not in by
    assert by["0001.jpg"].photo_type == om and by["0001.jpg"].garment_category is None
    assert by["girl.jpg"].group == by["girl_1024.jpg"].group
    assert "LICENSE.txt" not in by


def test_csv_round_trip_relative_inside_absolute_outside(fake_shared: Path, tmp_path: Path) -> None:
    rows = build_labels(fake_shared, collage_dir=tmp_path / "home" / "labels" / "collages", n_collages=2)
    expected = [(r.path.resolve(), r.photo_type, r.garment_category, r.group) for r in rows]
    # in the work folder: shared images absolute, the collages next to the CSV relative
    csv_path = write_labels(rows, tmp_path / "home" / "labels" / "labels.csv")
    lines = csv_path.read_text().splitlines()[1:]
    assert all(line.startswith(str(fake_shared.resolve())) or line.startswith("collages/") for line in lines)
    assert any(line.startswith("collages/") for line in lines)
    assert [(r.path, r.photo_type, r.garment_category, r.group) for r in read_labels(csv_path)] == expected
    # next to the images: all relative, and the folder can move
    inside = write_labels(rows[:5], fake_shared / "labels.csv")
    assert str(fake_shared.resolve()) not in inside.read_text()
    moved = fake_shared.rename(tmp_path / "moved")
    back = read_labels(moved / "labels.csv")
    assert [r.path for r in back] == [
        moved.resolve() / r.path.relative_to(fake_shared.resolve()) for r in rows[:5]
    ]


def test_overrides_fix_labels_and_name_bad_lines(fake_shared: Path, tmp_path: Path) -> None:
    ov = _write(
        tmp_path / "ov.csv",
        "path,photo_type,garment_category,note\n"
        "tryon-examples/fitdit/garment/2.jpg,product_only,bottom,pants\n"
        "luma-catalog/images/m/h/mh01-gray_back.jpg,product_only,bag_accessory,a bag\n"
        "not/in/the/data.jpg,other,,ignored\n",
    )
    by = _by_name(build_labels(fake_shared, overrides=ov))
    assert by["2.jpg"].garment_category == GarmentCategory.bottom
    assert (by["mh01-gray_back.jpg"].photo_type, by["mh01-gray_back.jpg"].garment_category) == (
        PhotoType.product_only,
        GarmentCategory.bag_accessory,
    )
    assert by["mh01-gray_back.jpg"].group == "luma:MH01"  # the group (split) is kept
    assert by["mh01-gray_main.jpg"].photo_type == PhotoType.on_model  # others untouched
    _write(ov, "path,photo_type,garment_category\na.jpg,on_model,\nb.jpg,worn,top\n")
    with pytest.raises(LabelsError, match=r"ov\.csv:3: photo_type 'worn'"):
        build_labels(fake_shared, overrides=ov)
    _write(ov, "path,photo_type,garment_category\na.jpg,on_model,\na.jpg,on_model,\n")
    with pytest.raises(LabelsError, match=r"ov\.csv:3: a\.jpg is overridden twice"):
        build_labels(fake_shared, overrides=ov)


def test_committed_overrides_are_valid() -> None:
    from fittingroom.training.eligibility.labels import OVERRIDES_CSV, read_overrides

    fixes = read_overrides(OVERRIDES_CSV)
    assert fixes["luma-catalog/images/w/b/wb01-black-0.jpg"] == (
        PhotoType.product_only,
        GarmentCategory.bag_accessory,
    )
    assert all(p.split("/")[0] in {"tryon-examples", "luma-catalog"} for p in fixes)


def test_read_labels_errors_name_file_and_line(fake_shared: Path, tmp_path: Path) -> None:
    img = next((fake_shared / "people-photos").glob("*.jpg"))
    bad = tmp_path / "bad.csv"
    bad.write_text(f"path,photo_type,garment_category\n{img},on_model,\n{img},flatlay,top\n")
    with pytest.raises(LabelsError, match=r"bad\.csv:3: photo_type 'flatlay'"):
        read_labels(bad)
    bad.write_text(f"path,photo_type,garment_category\n{img},on_model,hoodie\n")
    with pytest.raises(LabelsError, match=r"bad\.csv:2: garment_category 'hoodie'"):
        read_labels(bad)
    bad.write_text("path,photo_type,garment_category\nmissing.jpg,on_model,\n")
    with pytest.raises(LabelsError, match=r"bad\.csv:2: image not found"):
        read_labels(bad)
    bad.write_text("path,label\nx.jpg,top\n")
    with pytest.raises(LabelsError, match="missing column"):
        read_labels(bad)
    ok = read_labels(_write(tmp_path / "ok.csv", f"path,photo_type,garment_category\n{img},on_model,\n"))
    assert ok[0].garment_category is None and ok[0].group  # group defaults to the path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_split_is_deterministic_and_near_fraction() -> None:
    groups = [f"g{i}" for i in range(2000)]
    a = [split_of(g, 0.2, seed=0) for g in groups]
    assert a == [split_of(g, 0.2, seed=0) for g in groups]
    assert 0.17 < a.count("val") / len(a) < 0.23
    assert a != [split_of(g, 0.2, seed=1) for g in groups]


def test_apply_corrections_replaces_labels_keeps_group(fake_shared: Path) -> None:
    rows = build_labels(fake_shared)
    target = next(r for r in rows if r.path.name == "2.jpg")
    fixed = LabelRow(target.path, PhotoType.other, None, "ignored")
    out = apply_corrections(rows, [fixed])
    changed = next(r for r in out if r.path == target.path)
    assert (changed.photo_type, changed.garment_category, changed.group) == (
        PhotoType.other,
        None,
        target.group,
    )
    assert len(out) == len(rows)


def test_collages_are_other_and_split_consistent(fake_shared: Path, tmp_path: Path, make_image) -> None:  # noqa: ANN001
    gp = fake_shared / "garment-photos"
    extra = [f"train/t-shirt/more{i}.jpg,train,t-shirt,64,80" for i in range(12)]
    for i in range(12):
        make_image(gp / f"train/t-shirt/more{i}.jpg", "top", jitter=i)
    with (gp / "index.csv").open("a") as f:
        f.write("\n".join(extra) + "\n")
    rows = build_labels(fake_shared, collage_dir=tmp_path / "collages", n_collages=4)
    collages = [r for r in rows if r.source == "synthetic-collage"]
    assert len(collages) == 4
    for r in collages:
        assert r.photo_type == PhotoType.other and r.garment_category is None and r.path.is_file()
    again = build_labels(fake_shared, collage_dir=tmp_path / "collages2", n_collages=4)
    a = [p.path.read_bytes() for p in collages]
    b = [p.path.read_bytes() for p in again if p.source == "synthetic-collage"]
    assert a == b  # deterministic
