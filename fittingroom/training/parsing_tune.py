"""Choice of the parsing-guided ranking constants (``LayerWeights``) on the head's *tune* photos.

``python -m fittingroom.training.parsing_tune`` decodes every garment of the tune photos once (one
click at its most interior pixel, as the evaluation does), builds the parsing-guided candidates for
each ``min_prob``, and grid-searches ``agree``, ``parsing_bonus`` and ``min_share`` for the best
top-1 mean IoU (ties: best-of-3). Validation photos are never touched.
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fittingroom.segmentation.evaluation import iou, iter_photos
from fittingroom.segmentation.layers import LayerWeights
from fittingroom.segmentation.ranking import GarmentRanker
from fittingroom.segmentation.service import SegmentationService


@dataclass
class Cand:
    gt_iou: float
    base: float
    agreement: float
    share: float
    parsing: bool
    sam: bool
    small: np.ndarray


def collect(
    service: SegmentationService, street_photos: Path, photo_ids: set[str], min_probs: tuple[float, ...]
) -> list[dict[Any, list[Cand]]]:
    """Per garment: ``{min_prob: candidates, "old": the rule's own candidates}``."""
    ranker = service.ranker
    assert isinstance(ranker, GarmentRanker)
    rows = []
    for _, photo, label_map, items in iter_photos(street_photos, photo_ids=photo_ids):
        entry = service.add_image(photo.read_bytes(), str(photo))
        if entry.parsing is None:
            raise RuntimeError("the parsing head is off: tuning its layer weights needs SEGMENTATION_PARSING=true and a head file")
        for item in items:
            pts, labs = np.array([item.click], dtype=np.float64), np.array([1])
            gt = label_map == item.label_id
            decoded = ranker.decode(service.backend, entry.embedding, pts, labs, None, entry.cues)
            per: dict[Any, list[Cand]] = {
                "old": [Cand(iou(r.mask, gt), r.score, 0, 1, False, True, r.mask[::4, ::4]) for r in decoded]
            }
            for mp in min_probs:
                ranker.layer_weights = LayerWeights(min_prob=mp, min_share=0.0, agree=0.0, parsing_bonus=0.0)
                cands = ranker.rank_layers(
                    decoded, entry.parsing, pts, labs, entry.cues, service.backend.image_size,
                    entry.embedding.input_size,
                )  # fmt: skip
                per[mp] = [
                    Cand(iou(c.mask, gt), c.features["base"], c.features["agreement"], c.features["share"],
                         bool(c.features["parsing"]), c.variant.endswith(":sam"), c.mask[::4, ::4])
                    for c in cands
                ]  # fmt: skip
            rows.append(per)
    return rows


def _small_iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / u if u else 0.0


def score_rows(rows: list[list[Cand]], agree: float, bonus: float, min_share: float) -> tuple[float, float]:
    """(top-1 mean IoU, best-of-3 mean IoU) with these constants."""
    top1, best3 = [], []
    for cands in rows:
        scored = sorted(
            ((c.base + agree * c.agreement + (bonus if c.parsing else 0.0), i) for i, c in enumerate(cands)
             if not (c.sam and c.share < min_share)),
            reverse=True,
        )  # fmt: skip
        chosen: list[Cand] = []
        for _, i in scored:
            c = cands[i]
            if not c.small.any() or any(_small_iou(c.small, d.small) >= 0.85 for d in chosen):
                continue
            chosen.append(c)
            if len(chosen) == 3:
                break
        top1.append(chosen[0].gt_iou if chosen else 0.0)
        best3.append(max((c.gt_iou for c in chosen), default=0.0))
    return float(np.mean(top1)), float(np.mean(best3))


def main() -> None:
    from fittingroom.segmentation.settings import SegmentationSettings
    from fittingroom.settings import get_settings

    service = SegmentationService(SegmentationSettings(disk_cache=False))
    assert service.parser is not None
    photo_ids = set(service.parser.meta["tune_photos"])
    min_probs = (0.2, 0.35, 0.5)
    rows = collect(service, get_settings().shared_data / "street-photos", photo_ids, min_probs)
    print(f"{len(rows)} tune garments; rule without parsing:", score_rows([r["old"] for r in rows], 0, 0, 0))
    results = []
    for mp, agree, bonus, share in itertools.product(
        min_probs, (0.0, 0.5, 1.0, 1.5, 2.0), (-0.2, 0.0, 0.2, 0.4), (0.0, 0.5, 0.7, 0.9)
    ):
        t1, b3 = score_rows([r[mp] for r in rows], agree, bonus, share)
        results.append({"min_prob": mp, "agree": agree, "parsing_bonus": bonus, "min_share": share,
                        "top1": round(t1, 4), "best3": round(b3, 4)})  # fmt: skip
    results.sort(key=lambda r: (-r["top1"], -r["best3"]))
    for r in results[:10]:
        print(json.dumps(r))
    default = LayerWeights()
    for r in results:
        if (r["min_prob"], r["agree"], r["parsing_bonus"], r["min_share"]) == (
            default.min_prob,
            default.agree,
            default.parsing_bonus,
            default.min_share,
        ):
            print("shipped:", json.dumps(r))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
