"""Ranking of SAM's candidate masks so that the first one is the clicked garment.

Why: SAM answers a click with masks at several granularities (sub-part, part,
whole). On street photos its own predicted IoU prefers the *whole person*
far too often (top-1 mean IoU 0.43 on our evaluation; best of its 3 is 0.74).

The ``garment`` ranker (default) does two things.

1. **More prompts per click** (cues from MediaPipe, see ``person.py``), each
   decoded into SAM's 4 mask tokens:

   * ``B``: the user's prompt plus a negative point on the nose (pose landmark 0):
     pushes hair/face/skin out of the mask. ``A`` (the prompt as given) replaces it
     when no nose is visible or the user clicked the face;
   * ``M``: for a single click, ``B`` plus a positive point mirrored across the body
     axis (mean x of the shoulder and hip midpoints): the other leg of trousers, the
     other panel of an open jacket.

   Two decoder runs per click (a third variant with the bare prompt added
   nothing measurable: top-1 0.689 with or without it on the tuning split).

2. **A rule score** per candidate mask ``m`` (all terms in 0..1)::

       score = predicted_iou
               - max(0, coverage(m, person) - 0.55)   # whole-silhouette masks
               - face_fraction(m)                     # share of m inside the head ellipse
               + edge_strength(m)                     # boundary on strong colour edges
               + 0.2 * [variant M]                    # two-sided garments
               - 1.0 * [a positive point outside m, or a user's negative point inside m]

   ``coverage`` = |m ∩ person| / |person| with the selfie-segmentation person mask;
   ``edge_strength`` = mean normalised Lab gradient magnitude (1.5 px Gaussian, divided
   by its 99th percentile over the image) on the mask boundary inside the person: a
   mask that stops at a garment boundary sits on a strong colour edge, a sub-part or a
   leak does not. Candidates are then taken in score order, skipping any whose IoU with
   an already chosen one is >= 0.85, so the 3 returned differ.

The constants were chosen by a small grid search on every 2nd garment of every 4th
street photo and checked on the other half (see README "Candidate ranking").

**Refinement.** With ``mask_input`` (the low-res logits of a mask returned earlier, which the
user corrects with more points) only the base variant is decoded, with that mask as SAM's mask
prompt, and its 4 masks are scored by the same rule.

The ``sam`` ranker orders the user prompt's 4 masks by SAM's predicted IoU.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image

from fittingroom.models.person import (
    LEFT_HIP,
    LEFT_SHOULDER,
    NOSE,
    RIGHT_HIP,
    RIGHT_SHOULDER,
    PersonAnalysis,
)
from fittingroom.models.sam.base import MASK_THRESHOLD, ImageEmbedding, SamBackend
from fittingroom.segmentation.layers import (
    LayerWeights,
    candidate_logits,
    layer_candidates,
    parsing_confidence,
)
from fittingroom.segmentation.settings import RankerName, SegmentationSettings

if TYPE_CHECKING:
    from fittingroom.models.parsing import ParsingMap

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


@dataclass
class RankedMask:
    """One candidate after ranking. ``mask``: bool ``[H, W]`` at the original resolution."""

    mask: np.ndarray
    score: float
    predicted_iou: float
    variant: str
    token: int
    features: dict[str, float] = field(default_factory=dict)
    #: float32 ``[S/4, S/4]`` SAM low-res logits of this mask (the ``mask_input`` of a refinement).
    low_res_logits: np.ndarray | None = None


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def select_diverse(ranked: list[RankedMask], limit: int, max_iou: float = 0.85) -> list[RankedMask]:
    """Take masks in order, skipping near-duplicates (IoU >= ``max_iou`` with a chosen one); compares at 1/4 size."""
    chosen: list[RankedMask] = []
    small: list[np.ndarray] = []
    for cand in ranked:
        if not cand.mask.any():
            continue
        s = cand.mask[::4, ::4]
        if all(_iou(s, t) < max_iou for t in small):
            chosen.append(cand)
            small.append(s)
            if len(chosen) == limit:
                break
    return chosen


class Ranker(ABC):
    """Turns a user prompt into ranked candidate masks. ``analyze`` runs once per image (cached)."""

    name: str

    def analyze(self, image: Image.Image) -> Any:
        """Per-image cues for :meth:`rank`; None by default."""
        return None

    @abstractmethod
    def rank(
        self,
        backend: SamBackend,
        embedding: ImageEmbedding,
        points: np.ndarray,
        labels: np.ndarray,
        box: np.ndarray | None,
        cues: Any,
        *,
        limit: int = 3,
        mask_input: np.ndarray | None = None,
        parsing: ParsingMap | None = None,
    ) -> list[RankedMask]:
        """Decode the prompt (and variants) and return at most ``limit`` masks, best first.

        ``mask_input``: float32 ``[S/4, S/4]`` low-res logits of the mask being refined (SAM's
        iterative refinement: the previous answer plus the new points). ``parsing``: the photo's
        garment parsing (``fittingroom.models.parsing``), used by rankers that know it.
        """


class SamScoreRanker(Ranker):
    """Baseline: the prompt's 4 masks ordered by SAM's predicted IoU."""

    name = "sam"

    def rank(self, backend, embedding, points, labels, box, cues, *, limit=3, mask_input=None, parsing=None):  # type: ignore[no-untyped-def]
        cands = backend.predict(embedding, points, labels, box, mask_input)
        masks = backend.upscale(embedding, cands) > MASK_THRESHOLD
        ranked = [
            RankedMask(
                masks[t],
                float(cands.iou_predictions[t]),
                float(cands.iou_predictions[t]),
                "A",
                t,
                low_res_logits=cands.low_res_logits[t],
            )
            for t in range(len(cands))
        ]
        ranked.sort(key=lambda r: -r.score)
        return select_diverse(ranked, limit)


@dataclass
class GarmentCues:
    """Per-image cues of :class:`GarmentRanker`."""

    person: PersonAnalysis | None
    edges: np.ndarray  # float32 [H, W], normalised colour gradient magnitude
    face: np.ndarray | None  # bool [H, W] head ellipse
    person_near: np.ndarray | None  # bool [H, W] person mask grown by 3 px
    person_area: int = field(init=False)  # pixels in the person mask (0 without one)

    def __post_init__(self) -> None:
        mask = self.person.person_mask if self.person is not None else None
        self.person_area = int(np.count_nonzero(mask)) if mask is not None else 0


def edge_map(image: Image.Image) -> np.ndarray:
    """Colour edge strength: Lab gradient magnitude after a 1.5 px blur, divided by its 99th percentile."""
    lab = cv2.GaussianBlur(
        cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2LAB).astype(np.float32), (0, 0), 1.5
    )
    gx = cv2.Sobel(lab, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(lab, cv2.CV_32F, 0, 1)
    mag = np.sqrt((gx**2 + gy**2).sum(-1))
    return (mag / (np.percentile(mag, 99) + 1e-6)).astype(np.float32)


@dataclass
class GarmentRankerWeights:
    """Constants of the garment rule (see the module docstring)."""

    coverage_free: float = 0.55
    coverage: float = 1.0
    face: float = 1.0
    edge: float = 1.0
    mirror_bonus: float = 0.2
    negative_bonus: float = 0.0
    outside_click: float = 1.0
    dedup_iou: float = 0.85


class GarmentRanker(Ranker):
    """Person/pose-aware ranking (see the module docstring). ``analyzer`` defaults to MediaPipe."""

    name = "garment"

    def __init__(
        self,
        analyzer: Any = None,
        weights: GarmentRankerWeights | None = None,
        layer_weights: LayerWeights | None = None,
    ) -> None:
        if analyzer is None:
            from fittingroom.models.registry import default_shelf
            from fittingroom.models.specs import PERSON

            analyzer = default_shelf().get(PERSON)
        self.analyzer = analyzer
        self.weights = weights or GarmentRankerWeights()
        self.layer_weights = layer_weights or LayerWeights()

    def analyze(self, image: Image.Image) -> GarmentCues:
        person = self.analyzer.analyze(image)
        near = None
        if person is not None and person.person_mask is not None:
            near = cv2.dilate(person.person_mask.view(np.uint8), _CROSS, iterations=3).view(bool)
        return GarmentCues(
            person=person,
            edges=edge_map(image),
            face=person.face_mask() if person else None,
            person_near=near,
        )

    # ---------------------------------------------------------------- prompts
    @staticmethod
    def body_axis_x(person: PersonAnalysis) -> float | None:
        """x of the body's vertical axis: mean of the shoulder and hip midpoints that are visible."""
        mids = []
        for a, b in ((LEFT_SHOULDER, RIGHT_SHOULDER), (LEFT_HIP, RIGHT_HIP)):
            pa, pb = person.point(a), person.point(b)
            if pa is not None and pb is not None:
                mids.append((pa[0] + pb[0]) / 2)
        return float(np.mean(mids)) if mids else None

    def prompt_variants(
        self, points: np.ndarray, labels: np.ndarray, cues: GarmentCues
    ) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(name, points, labels) to decode: B (or A without a usable nose) and M (mirrored click)."""
        person = cues.person
        if person is None:
            return [("A", points, labels)]
        nose = person.point(NOSE)
        in_face = cues.face is not None and any(
            cues.face[int(y), int(x)] for (x, y), lab in zip(points, labels, strict=True) if lab == 1
        )
        base_name, base_pts, base_labs = "A", points, labels
        if nose is not None and not in_face:
            base_name = "B"
            base_pts = np.vstack([points, [nose]])
            base_labs = np.concatenate([labels, [0]])
        variants = [(base_name, base_pts, base_labs)]
        axis = self.body_axis_x(person)
        if axis is not None and len(points) == 1:
            x, y = points[0]
            mx = 2 * axis - x
            if 0 <= mx < person.width and abs(mx - x) > 10:
                pts = np.vstack([points, [[mx, y]], base_pts[1:]])
                labs = np.concatenate([labels, [1], base_labs[1:]])
                variants.append(("M", pts, labs))
        return variants

    # ---------------------------------------------------------------- scoring
    def features(self, mask: np.ndarray, cues: GarmentCues) -> dict[str, float]:
        area = float(np.count_nonzero(mask))
        person_mask = cues.person.person_mask if cues.person is not None else None
        feats = {"area": area, "coverage": 0.0, "face": 0.0, "edge": 0.0}
        if area == 0:
            return feats
        # everything below is local to the mask's box (grown by 1 px for the boundary)
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        box = np.s_[max(rows[0] - 1, 0) : rows[-1] + 2, max(cols[0] - 1, 0) : cols[-1] + 2]
        m = mask[box]
        if person_mask is not None:
            feats["coverage"] = float(np.count_nonzero(m & person_mask[box]) / max(cues.person_area, 1))
        if cues.face is not None:
            feats["face"] = float(np.count_nonzero(m & cues.face[box]) / area)
        m8 = m.view(np.uint8)
        boundary = (m8 - cv2.erode(m8, _CROSS, iterations=2)).view(bool)
        if cues.person_near is not None:
            boundary &= cues.person_near[box]
        if boundary.any():
            feats["edge"] = float(cues.edges[box][boundary].mean())
        return feats

    def score(self, predicted_iou: float, variant: str, contains_click: bool, f: dict[str, float]) -> float:
        w = self.weights
        s = predicted_iou
        s -= w.coverage * max(0.0, f["coverage"] - w.coverage_free)
        s -= w.face * f["face"]
        s += w.edge * f["edge"]
        s += {"M": w.mirror_bonus, "B": w.negative_bonus}.get(variant, 0.0)
        if not contains_click:
            s -= w.outside_click
        return s

    def decode(
        self,
        backend: SamBackend,
        embedding: ImageEmbedding,
        points: np.ndarray,
        labels: np.ndarray,
        box: np.ndarray | None,
        cues: GarmentCues,
        mask_input: np.ndarray | None = None,
    ) -> list[RankedMask]:
        """SAM's masks of every prompt variant, scored by the garment rule (unsorted)."""
        positives = [(int(y), int(x)) for (x, y), lab in zip(points, labels, strict=True) if lab == 1]
        negatives = [(int(y), int(x)) for (x, y), lab in zip(points, labels, strict=True) if lab == 0]
        variants = self.prompt_variants(points, labels, cues)
        if mask_input is not None:  # refining the user's mask: the base variant only
            variants = variants[:1]
        ranked: list[RankedMask] = []
        for name, pts, labs in variants:
            cands = backend.predict(embedding, pts, labs, box, mask_input)
            masks = backend.upscale(embedding, cands) > MASK_THRESHOLD
            for t in range(len(cands)):
                m = masks[t]
                f = self.features(m, cues)
                contains = all(m[p] for p in positives) and not any(m[p] for p in negatives)
                iou_pred = float(cands.iou_predictions[t])
                ranked.append(
                    RankedMask(
                        m,
                        self.score(iou_pred, name, contains, f),
                        iou_pred,
                        name,
                        t,
                        f,
                        low_res_logits=cands.low_res_logits[t],
                    )
                )
        return ranked

    def rank_layers(
        self,
        decoded: list[RankedMask],
        parsing: ParsingMap,
        points: np.ndarray,
        labels: np.ndarray,
        cues: GarmentCues,
        frame: int,
        input_size: tuple[int, int],
    ) -> list[RankedMask]:
        """Parsing-guided candidates (``layers.py``) scored by the rule plus the agreement with the parsing."""
        lw = self.layer_weights
        _, cands = layer_candidates([r.mask for r in decoded], parsing, points, labels, lw)
        positives = [(int(y), int(x)) for (x, y), lab in zip(points, labels, strict=True) if lab == 1]
        negatives = [(int(y), int(x)) for (x, y), lab in zip(points, labels, strict=True) if lab == 0]
        low = (
            decoded[0].low_res_logits.shape[-1] if decoded and decoded[0].low_res_logits is not None else 256
        )
        out: list[RankedMask] = []
        for c in cands:
            if c.kind == "sam" and c.share < lw.min_share:
                continue
            src = decoded[c.source] if c.source >= 0 else None
            if c.kind == "sam" and src is not None:
                base, f, iou_pred, logits = src.score, src.features, src.predicted_iou, src.low_res_logits
            else:
                f = self.features(c.mask, cues)
                iou_pred = src.predicted_iou if src is not None else parsing_confidence(parsing, c.mask)
                contains = all(c.mask[p] for p in positives) and not any(c.mask[p] for p in negatives)
                base = self.score(iou_pred, src.variant if src is not None else "P", contains, f)
                logits = candidate_logits(
                    c.mask, None if src is None else src.low_res_logits, frame, input_size, low
                )
            s = base + lw.agree * c.agreement + (lw.parsing_bonus if src is None else 0.0)
            variant = f"{src.variant}:{c.kind}" if src is not None else c.kind
            f = {**f, "base": base, "agreement": c.agreement, "share": c.share, "parsing": float(src is None)}
            out.append(RankedMask(c.mask, s, iou_pred, variant, src.token if src else -1, f, logits))
        return out

    def rank(self, backend, embedding, points, labels, box, cues, *, limit=3, mask_input=None, parsing=None):  # type: ignore[no-untyped-def]
        if cues is None:
            return SamScoreRanker().rank(
                backend, embedding, points, labels, box, None, limit=limit, mask_input=mask_input
            )
        ranked = self.decode(backend, embedding, points, labels, box, cues, mask_input)
        if parsing is not None:
            ranked = self.rank_layers(
                ranked, parsing, points, labels, cues, backend.image_size, embedding.input_size
            )
        ranked.sort(key=lambda r: -r.score)
        return select_diverse(ranked, limit, self.weights.dedup_iou)


def make_ranker(settings: SegmentationSettings, *, shelf: Any = None) -> Ranker:
    """The configured ranker ('garment' takes the shelf's MediaPipe person analyser)."""
    if settings.ranker == RankerName.sam:
        return SamScoreRanker()
    from fittingroom.models.registry import default_shelf
    from fittingroom.models.specs import PERSON

    return GarmentRanker(analyzer=(shelf or default_shelf()).get(PERSON))
