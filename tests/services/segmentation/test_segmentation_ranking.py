"""Candidate ranking: the garment rule prefers the garment over the whole person and the face."""

from __future__ import annotations

import numpy as np
from PIL import Image

from fittingroom.models.person import PersonAnalysis
from fittingroom.models.sam.base import Candidates, ImageEmbedding, SamBackend
from fittingroom.segmentation.ranking import GarmentRanker, RankedMask, SamScoreRanker, select_diverse

W, H = 100, 200


def scene() -> tuple[Image.Image, dict[str, np.ndarray]]:
    """A synthetic 'person': skin-coloured body, dark hair/face on top, a red top, blue trousers."""
    img = np.full((H, W, 3), 230, dtype=np.uint8)
    masks = {k: np.zeros((H, W), dtype=bool) for k in ("person", "head", "top", "pants")}
    masks["person"][20:190, 30:70] = True
    masks["head"][20:55, 38:62] = True
    masks["top"][60:110, 30:70] = True
    masks["pants"][110:190, 32:68] = True
    img[masks["person"]] = (220, 170, 140)
    img[masks["head"]] = (60, 40, 30)
    img[masks["top"]] = (200, 20, 30)
    img[masks["pants"]] = (30, 40, 160)
    return Image.fromarray(img), masks


def landmarks() -> np.ndarray:
    lm = np.zeros((33, 3), dtype=np.float32)
    pts = {0: (50, 40), 2: (46, 36), 5: (54, 36), 7: (42, 38), 8: (58, 38), 9: (47, 47), 10: (53, 47),
           11: (62, 62), 12: (38, 62), 23: (60, 110), 24: (40, 110)}  # fmt: skip
    for i, (x, y) in pts.items():
        lm[i] = (x, y, 0.99)
    return lm


class FixedAnalyzer:
    def __init__(self, person: np.ndarray) -> None:
        self.person = person

    def analyze(self, image: Image.Image) -> PersonAnalysis:
        return PersonAnalysis(W, H, self.person, landmarks())


class FixedBackend(SamBackend):
    """Returns the given full-resolution masks for every prompt; records the prompts."""

    model_key = "fixed"
    image_size = 64

    def __init__(self, masks: list[np.ndarray], ious: list[float]) -> None:
        self.masks, self.ious, self.prompts = masks, ious, []

    def embed(self, image):  # type: ignore[no-untyped-def]
        return ImageEmbedding(np.zeros((1, 1, 1, 1), np.float32), (H, W), (64, 32), self.model_key)

    def predict(self, embedding, points, labels, box=None, mask_input=None):  # type: ignore[no-untyped-def]
        self.prompts.append((np.asarray(points).copy(), np.asarray(labels).copy()))
        self.mask_inputs = getattr(self, "mask_inputs", []) + [mask_input]
        return Candidates(np.zeros((len(self.masks), 16, 16), np.float32), np.array(self.ious, np.float32))

    def upscale(self, embedding, candidates):  # type: ignore[no-untyped-def]
        return np.stack([np.where(m, 1.0, -1.0) for m in self.masks]).astype(np.float32)


def setup():  # type: ignore[no-untyped-def]
    img, m = scene()
    cands = [m["person"], m["top"], m["top"] | m["head"], m["top"] & (np.arange(W) < 50)[None, :]]
    backend = FixedBackend(cands, [0.99, 0.85, 0.9, 0.7])
    ranker = GarmentRanker(analyzer=FixedAnalyzer(m["person"]))
    return img, m, backend, ranker


def test_sam_scores_pick_the_whole_person_but_garment_ranker_picks_the_top() -> None:
    img, m, backend, ranker = setup()
    emb = backend.embed(img)
    click = np.array([[50.0, 85.0]])
    sam_first = SamScoreRanker().rank(backend, emb, click, np.array([1]), None, None)[0]
    assert np.array_equal(sam_first.mask, m["person"])
    ranked = ranker.rank(backend, emb, click, np.array([1]), None, ranker.analyze(img))
    assert np.array_equal(ranked[0].mask, m["top"])
    assert len(ranked) == 3 and [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
    face_version = next(r for r in ranked if np.array_equal(r.mask, m["top"] | m["head"]))
    assert face_version.features["face"] > 0.1


def test_prompt_variants_add_nose_negative_and_mirrored_click() -> None:
    img, m, backend, ranker = setup()
    cues = ranker.analyze(img)
    variants = dict(
        (name, (p, lab))
        for name, p, lab in ranker.prompt_variants(np.array([[35.0, 85.0]]), np.array([1]), cues)
    )
    assert set(variants) == {"B", "M"}
    pts, labs = variants["B"]
    assert labs.tolist() == [1, 0] and pts[1].tolist() == [50.0, 40.0]  # nose
    pts, labs = variants["M"]
    assert labs.tolist() == [1, 1, 0] and pts[1].tolist() == [65.0, 85.0]  # mirrored across x = 50
    # a click on the face: no nose negative; several user points: no mirror
    face_click = ranker.prompt_variants(np.array([[50.0, 40.0], [50.0, 30.0]]), np.array([1, 1]), cues)
    assert [name for name, _, _ in face_click] == ["A"]


def test_candidates_not_containing_the_click_are_demoted() -> None:
    img, m, backend, ranker = setup()
    ranked = ranker.rank(
        backend, backend.embed(img), np.array([[60.0, 85.0]]), np.array([1]), None, ranker.analyze(img)
    )
    assert ranked[0].mask[85, 60]
    assert ranked[0].mask.sum() != m["person"].sum()


def test_a_users_negative_point_inside_a_mask_demotes_it() -> None:
    img, m, backend, ranker = setup()
    cues = ranker.analyze(img)
    emb = backend.embed(img)
    # without the negative point the top wins; a negative on its right half leaves the left half
    assert np.array_equal(
        ranker.rank(backend, emb, np.array([[35.0, 85.0]]), np.array([1]), None, cues)[0].mask, m["top"]
    )
    pts, labs = np.array([[35.0, 85.0], [60.0, 85.0]]), np.array([1, 0])
    ranked = ranker.rank(backend, emb, pts, labs, None, cues)
    assert ranked[0].mask[85, 35] and not ranked[0].mask[85, 60]


def test_refinement_decodes_the_base_variant_with_the_mask_prompt() -> None:
    img, m, backend, ranker = setup()
    cues = ranker.analyze(img)
    previous = np.full((16, 16), 3.0, np.float32)
    ranked = ranker.rank(
        backend, backend.embed(img), np.array([[35.0, 85.0]]), np.array([1]), None, cues, mask_input=previous
    )
    assert len(backend.prompts) == 1 and backend.prompts[0][1].tolist() == [1, 0]  # B only, no mirror
    assert backend.mask_inputs[-1] is previous
    assert all(r.low_res_logits is not None and r.low_res_logits.shape == (16, 16) for r in ranked)


def test_without_person_cues_the_ranker_falls_back_to_sam_scores() -> None:
    img, m, backend, ranker = setup()
    ranked = ranker.rank(backend, backend.embed(img), np.array([[50.0, 85.0]]), np.array([1]), None, None)
    assert np.array_equal(ranked[0].mask, m["person"])


def test_select_diverse_drops_near_duplicates_and_empty_masks() -> None:
    a = np.zeros((40, 40), bool)
    a[5:30, 5:30] = True
    b = a.copy()
    b[29, 5:30] = False  # near-duplicate
    c = np.zeros((40, 40), bool)
    c[30:38, 30:38] = True
    ranked = [RankedMask(x, s, s, "A", 0) for x, s in [(a, 3), (b, 2), (np.zeros_like(a), 1.5), (c, 1)]]
    out = select_diverse(ranked, 3)
    assert [r.score for r in out] == [3, 1]
