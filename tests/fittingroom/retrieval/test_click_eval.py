"""click_eval: street photos with label maps, click -> top mask -> page search scoring, the
product-only catalog feed and its scoring (fake segmenter and fake search, real PNG cut-outs)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fittingroom.catalog.models import ImageRecord, Product
from fittingroom.retrieval.click_eval import (
    CLASS_TYPES,
    END_TO_END_TARGET,
    PAGE_K,
    TopMask,
    evaluate_click_search,
    evaluate_product_only,
    iou,
    load_click_photos,
    page_image_search,
    service_top_mask,
    write_product_feed,
)
from fittingroom.retrieval.evaluation import GarmentType, RankedProduct, load_street_items
from fittingroom.retrieval.search import SearchHit, SearchPage
from fittingroom.retrieval.settings import CUTOUT_BACKGROUND

W, H = 60, 100
RED, BLUE = (200, 30, 30), (30, 40, 200)
#: label ids of the fake annotations (as in Clothing Co-Parsing: an id per label)
TEE, PANTS, HAIR = 48, 31, 19


def _write_photo(root: Path, pid: str, tee_rows: tuple[int, int], pants_rows: tuple[int, int]) -> dict:
    """A photo: a red tee block over blue pants, with its label map; returns the annotation record."""
    lm = np.zeros((H, W), np.uint8)
    lm[tee_rows[0] : tee_rows[1], 10:50] = TEE
    lm[pants_rows[0] : pants_rows[1], 10:50] = PANTS
    lm[0:5, 20:30] = HAIR
    rgb = np.full((H, W, 3), 235, np.uint8)
    rgb[lm == TEE] = RED
    rgb[lm == PANTS] = BLUE
    (root / "photos").mkdir(exist_ok=True)
    (root / "label-maps").mkdir(exist_ok=True)
    Image.fromarray(rgb).save(root / "photos" / f"{pid}.jpg", quality=95)
    Image.fromarray(lm).save(root / "label-maps" / f"{pid}.png")

    def item(label: str, lid: int) -> dict:
        ys, xs = np.nonzero(lm == lid)
        box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
        return {"label": label, "label_id": lid, "bbox_xyxy": box, "pixels": int((lm == lid).sum())}

    return {
        "image": f"photos/{pid}.jpg",
        "size_wh": [W, H],
        "annotation": "pixel-level",
        "label_map": f"label-maps/{pid}.png",
        "items": [item("t-shirt", TEE), item("pants", PANTS), item("hair", HAIR)],
    }


@pytest.fixture()
def street(tmp_path) -> Path:
    root = tmp_path / "street-photos"
    root.mkdir()
    images = {
        "0002": _write_photo(root, "0002", (10, 50), (50, 95)),
        "0001": _write_photo(root, "0001", (5, 45), (45, 90)),
        "0003": _write_photo(root, "0003", (20, 60), (60, 98)),
        # tags only: not in the click eval (no label map), like photos 1005-1104
        "1005": {"image": "photos/1005.jpg", "annotation": "image-level", "items": [{"label": "t-shirt"}]},
    }
    (root / "annotations.json").write_text(json.dumps({"labels": [], "images": images}))
    return root


def test_click_photos_are_the_crop_eval_items_with_their_label_maps(street) -> None:
    # min_pixels 100: the fake garments are small; the hair has no garment type
    photos = load_click_photos(street, min_pixels=100)
    assert [p.photo_id for p in photos] == ["0001", "0002", "0003"]  # id order
    assert [[it.street.label for it in p.items] for p in photos] == [["t-shirt", "pants"]] * 3
    assert [it.label_id for it in photos[0].items] == [TEE, PANTS]
    crop_items = load_street_items(street, min_pixels=100)
    assert [it.street for p in photos for it in p.items] == crop_items  # same items, same order
    assert [p.photo_id for p in load_click_photos(street, min_pixels=100, limit=2)] == ["0001", "0002"]
    assert [p.photo_id for p in load_click_photos(street, min_pixels=100, photo_ids={"0003"})] == ["0003"]
    # the pants of 0003 have 38 x 40 = 1520 pixels, the tees 1600: a floor between drops the pants
    assert [it.street.label for it in load_click_photos(street, min_pixels=1550)[2].items] == ["t-shirt"]


def _cutout_png(photo: Path, mask: np.ndarray) -> bytes:
    """RGBA cut-out cropped to the mask box, as ``GET .../masks/{id}/cutout`` serves it."""
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    alpha = (mask * 255).astype(np.uint8)
    ys, xs = np.nonzero(mask)
    rgba = np.dstack([rgb, alpha])[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


class FakeSegmenter:
    """Top mask of a click: the label-map region under the click (``good``), the region of the
    other garment (``swap``: the wrong garment), or nothing (``none``)."""

    def __init__(self, mode: str = "good", scale: int = 1) -> None:
        self.mode, self.scale, self.clicks = mode, scale, []

    def __call__(self, photo: Path, click: tuple[int, int]) -> TopMask | None:
        self.clicks.append((photo.stem, click))
        if self.mode == "none":
            return None
        lm = np.asarray(Image.open(photo.parent.parent / "label-maps" / f"{photo.stem}.png"))
        lid = int(lm[click[1], click[0]])
        assert lid in (TEE, PANTS), "the click must land inside the garment"
        if self.mode == "swap":
            lid = PANTS if lid == TEE else TEE
        mask = lm == lid
        png = _cutout_png(photo, mask)
        if self.scale != 1:  # the service works at another resolution
            mask = np.kron(mask, np.ones((self.scale, self.scale), bool))
        return TopMask(mask, png)


TEES = [f"tee{i}" for i in range(12)]
PANTS_IDS = [f"pants{i}" for i in range(4)]
OF_TYPE = {GarmentType.tee: set(TEES), GarmentType.pants: set(PANTS_IDS)}


def colour_search(data: bytes) -> list[RankedProduct]:
    """The page search of a fake catalog: a red cut-out finds tees, a blue one pants then tees."""
    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA")).reshape(-1, 4)
    r, _, b = img[img[:, 3] > 0, :3].mean(axis=0)
    ids = TEES if r > b else PANTS_IDS + TEES
    return [RankedProduct(pid, pid, 1.0 - i / 100) for i, pid in enumerate(ids[:PAGE_K])]


def test_end_to_end_scores_the_page_results_of_the_top_mask(street) -> None:
    photos = load_click_photos(street, min_pixels=100)
    seg = FakeSegmenter("good")
    report = evaluate_click_search(photos, OF_TYPE, seg, colour_search)
    out = report.as_json()
    # one click per garment, inside it (the most interior pixel)
    assert len(seg.clicks) == 6
    # tees: 10 of the 10 first are tees; pants: 4 pants of 10
    assert out["type_p10_by_type"]["tee"] == 1.0 and out["type_p10_by_type"]["pants"] == pytest.approx(0.4)
    assert out["type_p10"] == pytest.approx(0.7) and out["type_p10_worst"] == pytest.approx(0.4)
    assert out["top_mask_miou"] == 1.0 and out["no_mask"] == 0
    assert out["garments"] == 6 and out["photos"] == 3
    assert out["garments_by_type"]["tee"] == 3 and out["garments_by_type"]["jacket"] == 0
    assert out["type_p10_by_type"]["jacket"] is None  # no garment of that type: no figure
    assert out["target_type_p10"] == END_TO_END_TARGET and "validation" not in out
    assert json.dumps(out)

    # the wrong garment's mask: its results are of the other type, and the IoU says so
    wrong = evaluate_click_search(photos, OF_TYPE, FakeSegmenter("swap"), colour_search).as_json()
    # (a tee click searches the blue pants: 4 pants, then 6 tees; a pants click finds tees only)
    assert (
        wrong["type_p10_by_type"]["tee"] == pytest.approx(0.6) and wrong["type_p10_by_type"]["pants"] == 0.0
    )
    assert wrong["type_p10"] == pytest.approx(0.3) and wrong["type_p10"] < out["type_p10"]
    assert wrong["top_mask_miou"] == 0.0

    # no mask: the shopper sees nothing, 0
    none = evaluate_click_search(photos, OF_TYPE, FakeSegmenter("none"), colour_search).as_json()
    assert none["type_p10"] == 0.0 and none["no_mask"] == 6 and none["top_mask_miou"] == 0.0


def test_end_to_end_pairs_the_crop_search_and_the_validation_photos(street) -> None:
    photos = load_click_photos(street, min_pixels=100)
    seen = []

    def crop(item) -> list[RankedProduct]:  # the crop eval finds every garment's own type
        seen.append(item.label)
        ids = TEES if item.garment_type is GarmentType.tee else PANTS_IDS
        return [RankedProduct(p, p, 0.5) for p in ids]

    # the service works at twice the resolution: masks are compared at the label map's size
    report = evaluate_click_search(
        photos, OF_TYPE, FakeSegmenter("good", scale=2), colour_search, crop_search=crop,
        validation_photos={"0002"},
    )  # fmt: skip
    out = report.as_json()
    assert seen == ["t-shirt", "pants"] * 3
    assert out["top_mask_miou"] == 1.0
    assert out["crop_type_p10_by_type"]["pants"] == pytest.approx(0.4)  # 4 pants exist: 4 of 10
    assert out["crop_type_p10"] == pytest.approx(0.7)
    val = out["validation"]
    assert val["photos"] == 1 and val["garments"] == 2 and val["type_p10"] == pytest.approx(0.7)


def test_a_label_missing_from_its_label_map_is_noted_not_scored(street) -> None:
    photos = load_click_photos(street, min_pixels=100)
    Image.fromarray(np.zeros((H, W), np.uint8)).save(street / "label-maps" / "0001.png")
    report = evaluate_click_search(photos, OF_TYPE, FakeSegmenter(), colour_search)
    assert len(report.scores) == 4 and len(report.notes) == 2 and "0001 t-shirt" in report.notes[0]


def test_iou() -> None:
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert iou(a, b) == 0.0
    a[:2] = True
    b[1:3] = True
    assert iou(a, b) == pytest.approx(4 / 12)
    assert iou(a, a) == 1.0


class FakeSearcher:
    """Records what the page search asks ``Searcher.search``."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def search(self, query, **kw) -> SearchPage:
        self.calls.append({"image": query.image, **kw})
        p = Product(
            source="luma",
            id="T1",
            title="t",
            images=[ImageRecord(url="u", sha256="s" * 64, vector_id=1)],
        )
        return SearchPage(hits=[SearchHit(p, p.images[0], 0.9)], k=kw["k"], offset=0, has_more=False)


def test_page_image_search_sends_what_the_page_sends(street) -> None:
    photo = street / "photos" / "0001.jpg"
    lm = np.asarray(Image.open(street / "label-maps" / "0001.png"))
    mask = lm == TEE
    mask[5:8, 10:13] = False  # the crop's top-left corner is transparent
    png = _cutout_png(photo, mask)
    fake = FakeSearcher()
    ranked = page_image_search(fake, source="luma")(png)
    assert ranked == [RankedProduct("T1", "s" * 64, 0.9)]
    call = fake.calls[0]
    assert call["k"] == PAGE_K and call["flt"].source == "luma"
    assert call["prefer_color"] == "red"  # the cut-out's dominant colour re-ranks
    # as the route: the transparent pixels filled with the grey of RETRIEVAL_CUTOUT_BACKGROUND
    assert call["image"].mode == "RGB" and call["image"].getpixel((0, 0)) == (CUTOUT_BACKGROUND,) * 3
    page_image_search(fake, use_color=False, cutout_background=100)(png)
    assert fake.calls[1]["prefer_color"] is None and fake.calls[1]["flt"] is None
    assert fake.calls[1]["image"].getpixel((0, 0)) == (100, 100, 100)
    assert fake.calls[1]["image"].getpixel((20, 20)) == fake.calls[0]["image"].getpixel((20, 20))  # garment


def test_service_top_mask_takes_the_first_candidate(street) -> None:
    class Seg:
        def __init__(self, mask):
            self.mask, self.mask_id = mask, "m0"

    class Service:
        def __init__(self, masks):
            self.masks, self.asked = masks, []

        def add_image(self, data, name):
            return type("Entry", (), {"image_id": "img"})()

        def segment(self, image_id, points, labels):
            self.asked.append((points, labels))
            return [Seg(m) for m in self.masks]

        def cutout(self, image_id, mask_id):
            return Image.new("RGBA", (3, 3), (255, 0, 0, 255))

    first = np.zeros((H, W), bool)
    first[:3] = True
    service = Service([first, np.ones((H, W), bool)])
    top = service_top_mask(service)(street / "photos" / "0001.jpg", (5, 7))
    assert top is not None and top.mask is first and top.cutout_png.startswith(b"\x89PNG")
    assert service.asked == [([(5, 7)], [1])]  # one positive click
    assert service_top_mask(Service([]))(street / "photos" / "0001.jpg", (5, 7)) is None
    assert service_top_mask(Service([np.zeros((H, W), bool)]))(street / "photos" / "0001.jpg", (1, 1)) is None


def _garment_photos(root: Path, rows: list[tuple[str, str, str]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "index.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "split", "label", "width", "height"])
        for path, split, label in rows:
            w.writerow([path, split, label, 10, 10])
    return root


def test_product_feed_of_one_split(tmp_path) -> None:
    gp = _garment_photos(
        tmp_path / "gp",
        [
            ("validation/shirt/a1.jpg", "validation", "shirt"),
            ("validation/hat/b2.jpg", "validation", "hat"),
            ("train/shirt/c3.jpg", "train", "shirt"),
        ],
    )
    classes = write_product_feed(gp, tmp_path / "feed.jsonl")
    assert classes == {"a1": "shirt", "b2": "hat"}
    rows = [json.loads(line) for line in (tmp_path / "feed.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a1", "b2"]
    assert rows[0]["product_type"] == "shirt" and rows[0]["image_link"] == str(
        gp.resolve() / "validation/shirt/a1.jpg"
    )
    assert write_product_feed(gp, tmp_path / "t.jsonl", split="train") == {"c3": "shirt"}
    with pytest.raises(ValueError, match="no photo in split 'test'"):
        write_product_feed(gp, tmp_path / "x.jsonl", split="test")
    dup = _garment_photos(
        tmp_path / "dup",
        [
            ("validation/shirt/a1.jpg", "validation", "shirt"),
            ("validation/pants/a1.jpg", "validation", "pants"),
        ],
    )
    with pytest.raises(ValueError, match="two validation photos named a1"):
        write_product_feed(dup, tmp_path / "d.jsonl")
    with pytest.raises(FileNotFoundError):
        write_product_feed(tmp_path / "nowhere", tmp_path / "n.jsonl")


def test_product_only_scores_by_class_type(street) -> None:
    items = [it.street for p in load_click_photos(street, min_pixels=100) for it in p.items]
    classes = {f"s{i}": "shirt" for i in range(6)} | {f"t{i}": "t-shirt" for i in range(4)}
    classes |= {f"p{i}": "pants" for i in range(5)} | {f"h{i}": "hat" for i in range(5)}
    assert CLASS_TYPES["shirt"] is CLASS_TYPES["t-shirt"] is GarmentType.tee

    def search(item) -> list[RankedProduct]:
        # tees: 6 shirts + 4 t-shirts (all tee); pants: 5 pants then 5 hats (distractors)
        ids = (
            [p for p in classes if p[0] in "st"]
            if item.garment_type is GarmentType.tee
            else ([p for p in classes if p[0] in "ph"])
        )
        return [RankedProduct(p, p, 0.5) for p in ids]

    report = evaluate_product_only(items, classes, search)
    out = report.summary()
    assert out["type_p10_by_type"]["tee"] == 1.0 and out["type_p10_by_type"]["pants"] == pytest.approx(0.5)
    assert out["type_p10"] == pytest.approx(0.75) and out["photos"] == 3 and out["garments"] == 6
    assert all(math.isnan(s.iou) for s in report.scores)
    assert report.notes == ["no catalog product of type hoodie, jacket, shorts"]
