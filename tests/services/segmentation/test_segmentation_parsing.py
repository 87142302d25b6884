"""Parsing-guided click ranking (layers, hair), whole-photo garment regions and POST /images/{id}/parse.

A synthetic person wears a blouse under an open jacket (two panels), with hair over the blouse;
the parsing map is given exactly, SAM is a fixed list of masks (as in test_segmentation_ranking.py).
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from segmentation_helpers import FakeBackend, png_bytes

from fittingroom.models.parsing import ParsingHead, ParsingMap
from fittingroom.models.parsing_groups import N_GROUPS, Group
from fittingroom.models.person import PersonAnalysis
from fittingroom.models.sam.base import Candidates, ImageEmbedding, SamBackend
from fittingroom.segmentation.garments import garment_regions
from fittingroom.segmentation.layers import mask_to_low_res
from fittingroom.segmentation.ranking import GarmentRanker, SamScoreRanker
from fittingroom.segmentation.service import SegmentationService
from fittingroom.segmentation.settings import SegmentationSettings
from services.segmentation.app import create_app

W, H = 100, 200
FRAME, INPUT = 1024, (1024, 512)


def scene() -> tuple[Image.Image, dict[str, np.ndarray], np.ndarray]:
    """Image, masks and the true group map of the synthetic person."""
    g = np.full((H, W), int(Group.background), np.uint8)
    m = {k: np.zeros((H, W), bool) for k in ("person", "hair", "blouse", "jacket", "pants", "shoes")}
    m["person"][20:195, 28:72] = True
    m["jacket"][60:130, 28:40] = True
    m["jacket"][60:130, 60:72] = True
    m["blouse"][60:125, 40:60] = True
    m["hair"][20:90, 52:60] = True  # long hair over the blouse's right side
    m["pants"][130:185, 32:68] = True
    m["shoes"][185:195, 32:46] = True
    m["shoes"][185:195, 54:68] = True
    g[m["person"]] = Group.skin
    for name, grp in (("jacket", Group.outer), ("blouse", Group.upper_inner), ("pants", Group.lower),
                      ("shoes", Group.footwear), ("hair", Group.hair)):  # fmt: skip
        g[m[name]] = grp
    m["blouse"] &= ~m["hair"]
    img = np.full((H, W, 3), 230, np.uint8)
    colours = {Group.skin: (220, 170, 140), Group.outer: (30, 30, 30), Group.upper_inner: (240, 240, 250),
               Group.hair: (90, 60, 20), Group.lower: (30, 40, 160), Group.footwear: (120, 10, 10)}  # fmt: skip
    for grp, col in colours.items():
        img[g == grp] = col
    return Image.fromarray(img), m, g


def probs_of(groups: np.ndarray, p: float = 0.9) -> np.ndarray:
    """float16 [10, 128, 128] frame probabilities whose arg-max is ``groups`` (photo at the frame's top left)."""
    lh, lw = INPUT[0] * 128 // FRAME, INPUT[1] * 128 // FRAME
    small = np.asarray(Image.fromarray(groups).resize((lw, lh), Image.Resampling.NEAREST))
    probs = np.full((N_GROUPS, 128, 128), (1 - p) / (N_GROUPS - 1), np.float32)
    probs[:, :lh, :lw] = (1 - p) / (N_GROUPS - 1)
    for gi in range(N_GROUPS):
        probs[gi, :lh, :lw][small == gi] = p
    probs[0, lh:, :] = p
    probs[0, :, lw:] = p
    return probs.astype(np.float16)


class FakeParser(ParsingHead):
    """A 'head' that returns the true group map of the scene for any embedding."""

    def __init__(self, groups: np.ndarray) -> None:
        self.key, self.meta, self.w = "parsing-fake", {}, {}
        self._probs = probs_of(groups)

    def predict_probs(self, features: np.ndarray) -> np.ndarray:
        return self._probs


def parsing_map(groups: np.ndarray) -> ParsingMap:
    return FakeParser(groups).from_probs(probs_of(groups), INPUT, (H, W), FRAME)


class FixedAnalyzer:
    def __init__(self, person: np.ndarray) -> None:
        self.person = person

    def analyze(self, image: Image.Image) -> PersonAnalysis:
        lm = np.zeros((33, 3), np.float32)
        for i, (x, y) in {0: (45, 40), 11: (62, 62), 12: (38, 62), 23: (60, 128), 24: (40, 128)}.items():
            lm[i] = (x, y, 0.99)
        return PersonAnalysis(W, H, self.person, lm)


class FixedBackend(SamBackend):
    """Returns the given full-resolution masks for every prompt."""

    model_key = "fixed"
    image_size = FRAME

    def __init__(self, masks: list[np.ndarray], ious: list[float]) -> None:
        self.masks, self.ious = masks, ious

    def embed(self, image):  # type: ignore[no-untyped-def]
        return ImageEmbedding(np.zeros((1, 1, 1, 1), np.float32), (H, W), INPUT, self.model_key)

    def predict(self, embedding, points, labels, box=None, mask_input=None):  # type: ignore[no-untyped-def]
        return Candidates(np.zeros((len(self.masks), 256, 256), np.float32), np.array(self.ious, np.float32))

    def upscale(self, embedding, candidates):  # type: ignore[no-untyped-def]
        return np.stack([np.where(x, 1.0, -1.0) for x in self.masks]).astype(np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture
def layered():  # type: ignore[no-untyped-def]
    img, m, groups = scene()
    sam = [m["person"], m["jacket"] | m["blouse"] | m["hair"], m["blouse"] | m["hair"], m["jacket"]]
    backend = FixedBackend(sam, [0.99, 0.95, 0.8, 0.7])
    ranker = GarmentRanker(analyzer=FixedAnalyzer(m["person"]))
    return img, m, groups, backend, ranker


def rank(backend, ranker, img, click, parsing):  # type: ignore[no-untyped-def]
    emb = backend.embed(img)
    return ranker.rank(backend, emb, np.array([click], float), np.array([1]), None, ranker.analyze(img),
                       parsing=parsing)  # fmt: skip


def test_blouse_click_no_longer_returns_the_jacket_nor_the_hair(layered) -> None:  # type: ignore[no-untyped-def]
    img, m, groups, backend, ranker = layered
    without = rank(backend, ranker, img, (45, 90), None)[0].mask
    assert (without & m["jacket"]).sum() > 0.5 * m["jacket"].sum()  # SAM alone: the layered mask wins
    ranked = rank(backend, ranker, img, (45, 90), parsing_map(groups))
    top = ranked[0].mask
    assert iou(top, m["blouse"]) > 0.85, ranked[0].variant
    assert (top & m["jacket"]).sum() == 0 and (top & m["hair"]).sum() < 0.1 * m["hair"].sum()
    assert 1 < len(ranked) <= 3
    for i in range(len(ranked)):
        for j in range(i):
            assert iou(ranked[i].mask, ranked[j].mask) < 0.85  # top-3 stay distinct
    for r in ranked:  # every candidate can be corrected later (SAM mask prompt)
        assert r.low_res_logits is not None and r.low_res_logits.shape == (256, 256)


def test_open_jacket_click_gets_both_panels(layered) -> None:  # type: ignore[no-untyped-def]
    img, m, groups, backend, ranker = layered
    top = rank(backend, ranker, img, (33, 100), parsing_map(groups))[0].mask
    assert iou(top, m["jacket"]) > 0.85
    assert (top & m["blouse"]).sum() < 0.1 * m["blouse"].sum()  # at most the 1-2 px blend of the low-res map


def test_trimmed_candidate_logits_follow_the_trimmed_mask() -> None:
    _, m, _ = scene()
    low = mask_to_low_res(m["blouse"], FRAME, INPUT, 256)
    assert low.shape == (256, 256) and low.any()
    assert (
        not low[:, 128:].any() and low[:, :128].any()
    )  # nothing in the padding (photo: 1024 x 512 of the frame)


def test_garment_regions_one_per_group_with_box_and_score() -> None:
    _, m, groups = scene()
    regions = {r.group: r for r in garment_regions(parsing_map(groups))}
    assert set(regions) == {Group.outer, Group.upper_inner, Group.lower, Group.footwear}  # no hair, skin
    shoes = regions[Group.footwear]
    assert shoes.parts == 2 and iou(shoes.mask, m["shoes"]) > 0.7  # both shoes, one garment
    assert regions[Group.outer].parts == 2  # both panels of the open jacket
    x0, y0, x1, y1 = regions[Group.lower].bbox
    assert abs(x0 - 32) <= 2 and abs(x1 - 68) <= 2 and abs(y0 - 130) <= 2 and abs(y1 - 185) <= 2
    assert all(0.5 < r.score <= 1.0 for r in regions.values())


def make_service(tmp_path, parser=None) -> SegmentationService:  # type: ignore[no-untyped-def]
    settings = SegmentationSettings(cache_dir=tmp_path / "cache")
    return SegmentationService(settings, backend=FakeBackend(), ranker=SamScoreRanker(), parser=parser)


def test_parse_route_returns_garments_and_serves_their_masks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    img, m, groups = scene()
    service = make_service(tmp_path, FakeParser(groups))
    with TestClient(create_app(service.settings, service=service)) as client:
        r = client.post("/images", files={"file": ("p.png", png_bytes(img), "image/png")})
        image_id = r.json()["image_id"]
        r = client.post(f"/images/{image_id}/parse")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["head"] == "parsing-fake" and (body["width"], body["height"]) == (W, H)
        by_group = {g["group"]: g for g in body["garments"]}
        assert set(by_group) == {"outer", "upper_inner", "lower", "footwear"}
        areas = [g["area"] for g in body["garments"]]
        assert areas == sorted(areas, reverse=True)
        lower = by_group["lower"]
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(lower["mask_png"]))).convert("1"))
        assert iou(mask, m["pants"]) > 0.8 and int(mask.sum()) == lower["area"]
        got = client.get(f"/images/{image_id}/masks/{lower['mask_id']}")
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        assert client.get(lower["cutout_url"]).status_code == 200
        r = client.post(f"/images/{'0' * 64}/parse")
        assert r.status_code == 404 and "unknown image_id" in r.json()["detail"]


def test_parse_route_without_head_is_503_with_detail(tmp_path) -> None:  # type: ignore[no-untyped-def]
    service = make_service(tmp_path)
    img, _, _ = scene()
    with TestClient(create_app(service.settings, service=service)) as client:
        image_id = client.post("/images", files={"file": ("p.png", png_bytes(img), "image/png")}).json()[
            "image_id"
        ]
        r = client.post(f"/images/{image_id}/parse")
        assert r.status_code == 503 and "parsing" in r.json()["detail"]


def test_parsing_output_is_cached_on_disk_with_the_embedding(tmp_path) -> None:  # type: ignore[no-untyped-def]
    img, _, groups = scene()
    parser = FakeParser(groups)
    calls = []
    original = parser.predict_probs
    parser.predict_probs = lambda f: calls.append(1) or original(f)  # type: ignore[method-assign]
    data = png_bytes(img)
    make_service(tmp_path, parser).add_image(data)
    restarted = make_service(tmp_path, parser)
    entry = restarted.add_image(data)
    assert len(calls) == 1 and restarted.backend.embed_calls == 0  # type: ignore[attr-defined]
    assert entry.parsing is not None and (entry.parsing.groups == parsing_map(groups).groups).all()


def test_missing_head_file_is_a_start_up_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fittingroom.models.parsing import ParsingHeadError

    settings = SegmentationSettings(cache_dir=tmp_path, parsing_head=tmp_path / "gone.npz")
    with pytest.raises(ParsingHeadError, match="gone.npz.*fittingroom train parsing"):
        SegmentationService(settings)


def test_dots_route_puts_each_dot_inside_its_garment_in_image_pixels(tmp_path) -> None:  # type: ignore[no-untyped-def]
    img, m, groups = scene()
    service = make_service(tmp_path, FakeParser(groups))
    truth = {"outer": m["jacket"], "upper_inner": m["blouse"], "lower": m["pants"], "footwear": m["shoes"]}
    with TestClient(create_app(service.settings, service=service)) as client:
        image_id = client.post("/images", files={"file": ("p.png", png_bytes(img), "image/png")}).json()[
            "image_id"
        ]
        r = client.get(f"/images/{image_id}/dots")
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["width"], body["height"]) == (W, H) and body["head"] == "parsing-fake"
        dots = {d["group"]: d for d in body["dots"]}
        assert set(dots) == set(truth)
        for group, d in dots.items():
            mask = np.asarray(
                Image.open(io.BytesIO(client.get(f"/images/{image_id}/masks/{d['mask_id']}").content))
            )
            assert mask.shape == (H, W) and mask[d["y"], d["x"]], group  # the dot is a pixel of its mask
            assert truth[group][d["y"], d["x"]], group  # ... and of the true garment
            x0, y0, x1, y1 = d["bbox"]
            assert x0 <= d["x"] < x1 and y0 <= d["y"] < y1
            assert client.get(d["cutout_url"]).status_code == 200
        # the open jacket's centroid lies on the blouse between its panels; its dot does not
        ys, xs = np.nonzero(m["jacket"])
        assert not m["jacket"][int(ys.mean()), int(xs.mean())]
        assert client.get(f"/images/{'0' * 64}/dots").status_code == 404


def test_dots_route_without_head_is_503(tmp_path) -> None:  # type: ignore[no-untyped-def]
    service = make_service(tmp_path)
    img, _, _ = scene()
    with TestClient(create_app(service.settings, service=service)) as client:
        image_id = client.post("/images", files={"file": ("p.png", png_bytes(img), "image/png")}).json()[
            "image_id"
        ]
        r = client.get(f"/images/{image_id}/dots")
        assert r.status_code == 503 and "parsing" in r.json()["detail"]


def test_dots_of_a_photo_above_the_working_size_are_in_original_pixels(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A photo twice the working side (four times the scene): the dot, its box and its area are mapped back to the upload."""
    from fittingroom.settings import CoreSettings

    img, m, groups = scene()
    big = img.resize((4 * W, 4 * H), Image.Resampling.NEAREST)
    truth = {k: np.kron(v, np.ones((4, 4), dtype=bool)) for k, v in m.items()}
    settings = SegmentationSettings(cache_dir=tmp_path / "cache")
    service = SegmentationService(
        settings,
        core=CoreSettings(home=tmp_path / "home", working_side=2 * H),
        backend=FakeBackend(),
        ranker=SamScoreRanker(),
        parser=FakeParser(groups),
    )
    with TestClient(create_app(service.settings, service=service)) as client:
        image_id = client.post("/images", files={"file": ("p.png", png_bytes(big), "image/png")}).json()[
            "image_id"
        ]
        body = client.get(f"/images/{image_id}/dots").json()
        assert (body["width"], body["height"]) == (4 * W, 4 * H)
        dots = {d["group"]: d for d in body["dots"]}
        assert dots["lower"] and dots["outer"]
        name = {"outer": "jacket", "upper_inner": "blouse", "lower": "pants", "footwear": "shoes"}
        for group, d in dots.items():
            assert truth[name[group]][d["y"], d["x"]], group
            x0, y0, x1, y1 = d["bbox"]
            ys, xs = np.nonzero(truth[name[group]])
            # the box of the true garment in upload pixels, to within the working pixel's size
            assert abs(x0 - xs.min()) <= 4 and abs(x1 - xs.max() - 1) <= 4, (group, d["bbox"])
            assert abs(y0 - ys.min()) <= 4 and abs(y1 - ys.max() - 1) <= 4, (group, d["bbox"])
            assert abs(d["area"] - truth[name[group]].sum()) <= 0.25 * truth[name[group]].sum(), (
                group
            )  # not 4x or 16x off
