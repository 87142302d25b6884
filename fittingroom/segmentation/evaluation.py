"""Segmentation evaluation on the pixel-labelled street photos (Clothing Co-Parsing).

For every garment item of the listed labels with more than 3000 pixels on a photo
that has a label map: one positive click at the garment's most interior pixel
(maximum of the Euclidean distance transform of its label mask, image border counted
as boundary) -> IoU of the top-ranked candidate and the best IoU among the returned
candidates (up to 3). Reports the mean overall and per label, and the median latency
of the image encoder, of the upload (encoder + person cues) and of a click (warm cache).

With ``clicks > 1`` it also simulates a user correcting the top mask, with the usual protocol
of interactive segmentation (e.g. Sofiiuk et al. 2022, RITM, https://arxiv.org/abs/2102.06583):
the next click goes to the most interior pixel (distance-transform maximum) of the larger
error region, positive on a missed garment region, negative on a wrongly included one. Each
correction sends all clicks so far plus the previous top mask as ``previous_mask_id``, and the
IoU of the new top mask is recorded after every click. Like a user, the simulation stops
correcting a mask that is already right (IoU >= ``SATISFIED_IOU``, as in the NoC@90 protocol)
and keeps it for the remaining clicks.

With the garment-parsing head, results are also given per garment group (``LABEL_GROUPS``), and the
head's own parsing mIoU per group is measured at full resolution on the same photos. The CLI then
restricts the default street photos to the head's validation split (``photo_ids``), so no photo the
head was trained or tuned on is scored; an explicit ``--street-photos DIR`` counts all its photos.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from fittingroom.models.parsing_groups import IGNORE, N_GROUPS, Group, group_of, label_lut
from fittingroom.segmentation.garments import interior_point
from fittingroom.segmentation.service import SegmentationService

GARMENT_LABELS = (
    "t-shirt", "top", "blouse", "shirt", "sweater", "sweatshirt", "hoodie", "jumper", "cardigan",
    "jacket", "coat", "blazer", "vest", "dress", "skirt", "pants", "jeans", "leggings", "shorts",
)  # fmt: skip
MIN_PIXELS = 3000
#: A simulated user stops correcting once the top mask has this IoU.
SATISFIED_IOU = 0.9


@dataclass(frozen=True)
class EvalItem:
    photo_id: str
    label: str
    label_id: int
    click: tuple[int, int]  # (x, y)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def load_annotations(street_photos: Path) -> dict[str, Any]:
    """``annotations.json`` of a street-photos folder; FileNotFoundError naming it when missing."""
    ann_path = street_photos / "annotations.json"
    if not ann_path.is_file():
        raise FileNotFoundError(f"{ann_path} not found: --street-photos must be the street-photos folder")
    return json.loads(ann_path.read_text())


def iter_photos(
    street_photos: Path,
    *,
    every: int = 1,
    limit: int | None = None,
    photo_ids: set[str] | None = None,
) -> Iterator[tuple[str, Path, np.ndarray, list[EvalItem]]]:
    """(photo_id, photo path, label map, items) for the pixel-labelled photos, in id order.

    ``photo_ids``: only these photos (e.g. the parsing head's validation split).
    """
    ann = load_annotations(street_photos)
    chosen = sorted(
        pid
        for pid, rec in ann["images"].items()
        if rec.get("label_map") and (photo_ids is None or pid in photo_ids)
    )[::every]
    if limit is not None:
        chosen = chosen[:limit]
    for pid in chosen:
        rec = ann["images"][pid]
        label_map = np.asarray(Image.open(street_photos / rec["label_map"]))
        items = []
        for it in rec["items"]:
            if it["label"] in GARMENT_LABELS and it["pixels"] > MIN_PIXELS:
                gt = label_map == it["label_id"]
                if gt.any():
                    items.append(EvalItem(pid, it["label"], int(it["label_id"]), interior_point(gt)))
        if items:
            yield pid, street_photos / rec["image"], label_map, items


def corrective_click(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int]:
    """(x, y, label) of the next simulated click: interior of the larger error region.

    Label 1 when that region is a missed part of ``gt`` (false negative), 0 when it is a wrongly
    included part of ``pred`` (false positive).
    """
    best = (-1.0, 0, 0, 1)
    for err, label in ((gt & ~pred, 1), (pred & ~gt, 0)):
        dist = cv2.distanceTransform(np.pad(err.astype(np.uint8), 1), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        if dist[y, x] > best[0]:
            best = (float(dist[y, x]), int(x) - 1, int(y) - 1, label)
    return best[1], best[2], best[3]


def evaluate(
    service: SegmentationService,
    street_photos: Path,
    *,
    every: int = 1,
    limit: int | None = None,
    clicks: int = 1,
    progress: Callable[[str], None] | None = None,
    photo_ids: set[str] | None = None,
    split: str = "all",
) -> dict[str, Any]:
    """Run the evaluation; returns the metrics as a JSON-ready dict.

    ``photo_ids``: score only these photos; ``split`` names them in the output ("validation", "all").

    ``clicks``: clicks per garment, the first at its most interior pixel and the others
    corrective (module docstring); ``miou_by_clicks[k]`` is the top-1 mean IoU after k+1 clicks.

    ``service`` should have its disk cache disabled so every photo runs the encoder.
    """
    backend = service.backend
    encoder_s: list[float] = []
    original_embed = backend.embed

    def timed_embed(image):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        out = original_embed(image)
        encoder_s.append(time.perf_counter() - t)
        return out

    backend.embed = timed_embed  # type: ignore[method-assign]
    upload_s: list[float] = []
    click_s: list[float] = []
    first_click_s: list[float] = []
    per_label: dict[str, list[tuple[float, float]]] = defaultdict(list)
    by_click: list[list[float]] = [[] for _ in range(clicks)]
    n_photos = 0
    lut = label_lut(load_annotations(street_photos)["labels"])
    parsing_conf = np.zeros((N_GROUPS, N_GROUPS), dtype=np.int64)
    try:
        for pid, photo, label_map, items in iter_photos(
            street_photos, every=every, limit=limit, photo_ids=photo_ids
        ):
            n_photos += 1
            t0 = time.perf_counter()
            entry = service.add_image(photo.read_bytes(), str(photo))
            upload_s.append(time.perf_counter() - t0)
            if (entry.height, entry.width) != label_map.shape:
                raise ValueError(f"{photo}: size {entry.width}x{entry.height} differs from its label map")
            if entry.parsing is not None:
                gt_groups = lut[label_map]
                ok = gt_groups != IGNORE
                parsing_conf += np.bincount(
                    gt_groups[ok].astype(np.int64) * N_GROUPS + entry.parsing.groups[ok],
                    minlength=N_GROUPS * N_GROUPS,
                ).reshape(N_GROUPS, N_GROUPS)
            for i, item in enumerate(items):
                t = time.perf_counter()
                segs = service.segment(entry.image_id, [item.click], [1])
                dt = time.perf_counter() - t
                click_s.append(dt)
                if i == 0:
                    first_click_s.append(upload_s[-1] + dt)
                gt = label_map == item.label_id
                ious = [iou(s.mask, gt) for s in segs]
                per_label[item.label].append((ious[0] if ious else 0.0, max(ious, default=0.0)))
                points, labels = [item.click], [1]
                current = ious[0] if ious else 0.0
                by_click[0].append(current)
                for k in range(1, clicks):
                    if segs and current < SATISFIED_IOU:
                        x, y, lab = corrective_click(segs[0].mask, gt)
                        points.append((x, y))
                        labels.append(lab)
                        segs = service.segment(
                            entry.image_id, points, labels, previous_mask_id=segs[0].mask_id
                        )
                        current = iou(segs[0].mask, gt) if segs else 0.0
                    by_click[k].append(current)
            if progress:
                progress(pid)
    finally:
        del backend.embed  # restore the class method
    allv = [v for vs in per_label.values() for v in vs]
    per_group: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for label, vs in per_label.items():
        per_group[group_of(label).name].extend(vs)
    parsing_iou: dict[str, float | None] | None = None
    if parsing_conf.sum():
        parsing_iou = {}
        for g in Group:
            tp = parsing_conf[g, g]
            union = parsing_conf[g, :].sum() + parsing_conf[:, g].sum() - tp
            parsing_iou[g.name] = round(float(tp / union), 4) if union else None

    def ms(xs: list[float], q: float = 50) -> float | None:
        return round(float(np.percentile(xs, q)) * 1000, 1) if xs else None

    def summary(vs: list[tuple[float, float]]) -> dict[str, Any]:
        return {
            "n": len(vs),
            "top1_miou": round(float(np.mean([a for a, _ in vs])), 4),
            "best3_miou": round(float(np.mean([b for _, b in vs])), 4),
        }

    return {
        "split": split,
        "parsing_head": service.parser.key if service.parser is not None else None,
        "photos": n_photos,
        "garments": len(allv),
        "ranker": service.ranker.name,
        "model": backend.model_key,
        "top1_miou": round(float(np.mean([a for a, _ in allv])), 4) if allv else None,
        "best3_miou": round(float(np.mean([b for _, b in allv])), 4) if allv else None,
        "miou_by_clicks": [round(float(np.mean(v)), 4) if v else None for v in by_click],
        "share_iou_085_by_clicks": [
            round(float(np.mean(np.asarray(v) >= 0.85)), 4) if v else None for v in by_click
        ],
        "per_label": {
            label: summary(vs) for label, vs in sorted(per_label.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        },
        "per_group": {g.name: summary(per_group[g.name]) for g in Group if per_group.get(g.name)},
        "parsing_iou_per_group": parsing_iou,
        "encoder_ms_median": ms(encoder_s),
        "upload_ms_median": ms(upload_s),
        "click_ms_median": ms(click_s),
        "click_ms_p95": ms(click_s, 95),
        "first_click_ms_median": ms(first_click_s),
    }
