"""``fittingroom eval tryon``: the preview backend over persons × a fixed garment set.

Reads ``index.csv`` (columns ``path``, ``role`` = person|garment, optional
``category``) of a try-on examples folder (default ``../shared/data/tryon-examples``).
A garment without a ``category`` column value gets the eligibility classifier's
``garment_category`` (``fittingroom.models.eligibility.load_annotator()``; outerwear counts as
top, footwear/headwear/bags are skipped). When the classifier cannot be loaded the
category comes from the file name where the source dataset says it (VITON-HD
``NNNNN_00.jpg`` and CatVTON ``condition/upper`` are tops, CatVTON
``condition/overall`` one-pieces; others are skipped) and the summary says so
(``category_source``).

Extra garments cut out of on-model catalog photos (``on_model``: (path, category) pairs, e.g. a
Luma product photo) and extra persons (e.g. street photos) can be added.

Per result: share of the warped garment inside the person silhouette, IoU of the
warped garment mask with the agnostic region, mean absolute pixel difference in the
face box, the quality gate (``fittingroom.tryon.quality``); a contact sheet PNG
(person | garment | render | quality per row). The summary has the figures overall and per
category (``tops``, ``bottoms``, ``one_pieces``).
"""

from __future__ import annotations

import csv
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fittingroom.tryon.garment import GarmentPreprocessor
from fittingroom.tryon.parts import REACH_TOL, covered_reach
from fittingroom.tryon.person import PersonPrep, PersonPreprocessor, TryOnCategory, TryOnInputError
from fittingroom.tryon.quality import assess
from fittingroom.tryon.renderers import RenderLayers, compose

#: Summary keys of the per-category figures.
CATEGORY_KEYS = {"top": "tops", "bottom": "bottoms", "one_piece": "one_pieces"}
INSIDE_MIN = 0.8  # share of warped garment pixels inside the silhouette for "inside"
IOU_MIN = 0.5  # IoU with the agnostic region for "covers"
FACE_MAX_DIFF = 2.0  # mean abs difference (0..255) in the face box for "face unchanged"
#: Product-only garments always added to the chosen set (when the examples folder has them): a pair of
#: straight full-length jeans, so the set has trousers with leg parts besides the classifier's first skirt.
EXTRA_PRODUCTS: tuple[tuple[str, TryOnCategory], ...] = (("fitdit/garment/0329.jpg", TryOnCategory.bottom),)


def category_from_path(path: str) -> TryOnCategory | None:
    """Category implied by the source dataset's file naming, or None."""
    if "/condition/upper/" in path or re.search(r"(^|/)\d{5}_00\.jpg$", path):
        return TryOnCategory.top
    if "/condition/overall/" in path:
        return TryOnCategory.one_piece
    return None


@dataclass
class EvalResult:
    rows: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    sheet: Path | None = None
    category_source: str = "index.csv"

    def summary(self) -> dict:
        ok = self.rows
        n = len(ok)

        def share(key: str, pred) -> float:  # noqa: ANN001
            return round(sum(1 for r in ok if pred(r[key])) / n, 4) if n else 0.0

        def mean(key: str) -> float:
            return round(float(np.mean([r[key] for r in ok])), 4) if n else 0.0

        render = [r["render_s"] for r in ok]
        return {
            "results": n,
            "errors": len(self.errors),
            "garment_inside_silhouette_share": share("inside", lambda v: v >= INSIDE_MIN),
            "agnostic_iou_share": share("iou", lambda v: v >= IOU_MIN),
            "mean_inside": mean("inside"),
            "mean_iou": mean("iou"),
            "face_unchanged_share": share("face_diff", lambda v: v <= FACE_MAX_DIFF),
            "garment_region_sam_share": share("region_source", lambda v: v == "sam"),
            "mean_face_diff": mean("face_diff"),
            "mean_person_s": mean("person_s"),
            "mean_garment_s": mean("garment_s"),
            "mean_render_s": mean("render_s"),
            "p95_render_s": round(float(np.percentile(render, 95)), 4) if n else 0.0,
            "mean_total_s": mean("total_s"),
            "max_total_s": round(max((r["total_s"] for r in ok), default=0.0), 4),
            "category_source": self.category_source,
            "categories": dict(sorted(Counter(r["category"] for r in ok).items())),
            "quality_good_share": share("quality", lambda v: v == "good"),
            "old_garment_leak_median": round(float(np.median([r["old_garment_leak"] for r in ok])), 4)
            if n
            else 0.0,
            **_reach_figures(ok),
            "per_category": {
                CATEGORY_KEYS[c]: _figures([r for r in ok if r["category"] == c])
                for c in CATEGORY_KEYS
                if any(r["category"] == c for r in ok)
            },
            "overall": _figures(ok),
            "contact_sheet": str(self.sheet) if self.sheet else None,
        }


def _figures(rs: list[dict]) -> dict:
    """Target figures of a list of result rows (see :meth:`EvalResult.summary`)."""
    n = len(rs)
    if not n:
        return {"results": 0}
    return {
        "results": n,
        "garment_inside_silhouette_share": round(sum(r["inside"] >= INSIDE_MIN for r in rs) / n, 4),
        "agnostic_iou_share": round(sum(r["iou"] >= IOU_MIN for r in rs) / n, 4),
        "mean_iou": round(float(np.mean([r["iou"] for r in rs])), 4),
        "face_unchanged_share": round(sum(r["face_diff"] <= FACE_MAX_DIFF for r in rs) / n, 4),
        "old_garment_leak_median": round(float(np.median([r["old_garment_leak"] for r in rs])), 4),
        "quality_good_share": round(sum(r["quality"] == "good" for r in rs) / n, 4),
        "render_p50_s": round(float(np.median([r["render_s"] for r in rs])), 4),
        **_reach_figures(rs),
    }


def _reach_figures(rs: list[dict]) -> dict:
    """``sleeve_to_wrist_share`` over renders of long-sleeve tops, ``legs_to_ankle_share`` over full-length
    trousers (None when there are none; ``..._renders`` = how many counted)."""
    out: dict = {}
    for key, cat in (("sleeve_to_wrist", "top"), ("legs_to_ankle", "bottom")):
        vals = [
            r["limbs_reach_end"] for r in rs if r["category"] == cat and r.get("limbs_reach_end") is not None
        ]
        out[f"{key}_share"] = round(sum(vals) / len(vals), 4) if vals else None
        out[f"{key}_renders"] = len(vals)
    return out


def limb_reach(person: PersonPrep, layers: RenderLayers) -> bool | None:
    """Whether the rendered garment reaches the wrists (long sleeves) or the ankles (full-length trousers):
    along every limb the garment covers to its end in its own pose and that is visible on the person (joints
    visible and inside the photo), the
    render's garment (alpha >= 0.5, within 5 % of the limb length of the limb's axis) ends within
    ``REACH_TOL`` of the limb length from the end joint. None when no such limb (short sleeves, shorts)."""
    pose = layers.pose
    if pose is None:
        return None
    lm = person.landmarks
    painted = layers.alpha >= 0.5
    h, w = painted.shape
    ok: list[bool] = []
    for chain, full in zip(pose.limbs, pose.full, strict=True):
        if not full or min(lm[j, 2] for j in chain) < 0.5:
            continue
        if not all(0 <= lm[j, 0] < w and 0 <= lm[j, 1] < h for j in chain):
            continue  # the photo is cropped above the wrist / ankle BlazePose guesses: nothing to reach
        p = lm[list(chain), :2].astype(np.float64)
        length = float(np.linalg.norm(p[1] - p[0]) + np.linalg.norm(p[2] - p[1]))
        ok.append(covered_reach(painted, lm, chain, 0.05 * length) >= 1 - REACH_TOL)
    return all(ok) if ok else None


def classifier_categories(examples: Path, paths: list[str]) -> dict[str, TryOnCategory | None]:
    """Garment category of each image from the eligibility classifier (None = not a try-on category).

    Raises ImportError / FileNotFoundError / ValueError when the classifier cannot be loaded.
    """
    from fittingroom.images import load_image
    from fittingroom.models.eligibility import load_annotator

    if not paths:
        return {}
    annotator = load_annotator()
    records = annotator.annotate([load_image(examples / p) for p in paths])
    out: dict[str, TryOnCategory | None] = {}
    for path, rec in zip(paths, records, strict=True):
        pred = str(rec["garment_category_pred"])
        out[path] = TryOnCategory.top if pred == "outerwear" else _try_category(pred)
    return out


def _try_category(value: str) -> TryOnCategory | None:
    try:
        return TryOnCategory(value)
    except ValueError:
        return None


def load_examples(
    examples: Path, *, use_classifier: bool = False
) -> tuple[list[str], list[tuple[str, TryOnCategory]], str]:
    """(person paths, [(garment path, category)], category source) from ``index.csv``.

    Paths are relative to ``examples``. Garments without a ``category`` value are categorised by
    the eligibility classifier when ``use_classifier`` (falling back to file names when it cannot
    be loaded); the third value says where the categories came from.
    """
    index = examples / "index.csv"
    if not index.is_file():
        raise FileNotFoundError(f"{index}: no index.csv in the examples folder")
    persons: list[str] = []
    garments: list[tuple[str, TryOnCategory]] = []
    unlabelled: list[str] = []
    with index.open(newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            role = (row.get("role") or "").strip()
            path = (row.get("path") or "").strip()
            if not path or role not in ("person", "garment"):
                raise ValueError(f"{index}:{line}: need a path and role person|garment, got {row}")
            if role == "person":
                persons.append(path)
                continue
            cat_text = (row.get("category") or "").strip()
            if not cat_text:
                unlabelled.append(path)
                continue
            cat = _try_category(cat_text)
            if cat is None:
                raise ValueError(
                    f"{index}:{line}: category must be top, bottom or one_piece, got {cat_text!r}"
                )
            garments.append((path, cat))
    source = "index.csv"
    if unlabelled:
        predicted: dict[str, TryOnCategory | None] | None = None
        if use_classifier:
            try:
                predicted = classifier_categories(examples, unlabelled)
                source = "index.csv + eligibility classifier" if garments else "eligibility classifier"
            except (ImportError, FileNotFoundError, ValueError) as exc:
                source = f"file names (eligibility classifier unavailable: {exc})"
        if predicted is None:
            predicted = {p: category_from_path(p) for p in unlabelled}
            if not source.startswith("file names"):
                source = "file names"
        garments += [(p, c) for p, c in predicted.items() if c is not None]
    return sorted(persons), sorted(garments), source


def pick_garments(garments: list[tuple[str, TryOnCategory]], n: int) -> list[tuple[str, TryOnCategory]]:
    """A fixed, category-diverse subset: round-robin over categories in sorted order."""
    by_cat: dict[TryOnCategory, list[tuple[str, TryOnCategory]]] = {}
    for g in garments:
        by_cat.setdefault(g[1], []).append(g)
    out: list[tuple[str, TryOnCategory]] = []
    while len(out) < n and any(by_cat.values()):
        for cat in sorted(by_cat):
            if by_cat[cat] and len(out) < n:
                out.append(by_cat[cat].pop(0))
    return out


def _thumb(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    canvas = Image.new("RGB", size, "white")
    im = img.copy()
    im.thumbnail(size)
    pos = ((size[0] - im.width) // 2, (size[1] - im.height) // 2)
    canvas.paste(im.convert("RGB"), pos, im.split()[3] if im.mode == "RGBA" else None)
    return canvas


def run_eval(
    examples: Path,
    out_dir: Path,
    *,
    limit: int | None = 8,
    n_garments: int = 3,
    max_side: int = 1024,
    sam_backend=None,  # noqa: ANN001 - services.segmentation SamBackend or None (pose polygon region)
    use_classifier: bool = True,
    progress=None,  # noqa: ANN001 - callable(done, total) or None
    on_model: list[tuple[str, TryOnCategory]] | None = None,
    extra_persons: list[str] | None = None,
    sheet: Path | None = None,
    products: list[tuple[str, TryOnCategory]] | None = None,
) -> EvalResult:
    """Render every person x garment; ``on_model`` garments are cut out of on-model photos, paths
    may be absolute (``extra_persons`` likewise); ``products``: product-only garments added to the
    chosen set (default :data:`EXTRA_PRODUCTS`, those the examples folder has; ``[]`` = none); the
    contact sheet goes to ``sheet`` (default ``out_dir/tryon-contact-sheet.png``)."""
    from fittingroom.tryon.onmodel import OnModelExtractor, rgba_image

    persons, garments, category_source = load_examples(examples, use_classifier=use_classifier)
    persons = (persons[:limit] if limit else persons) + list(extra_persons or [])
    chosen = [(g, c, False) for g, c in pick_garments(garments, n_garments)]
    chosen += [
        (g, c, False)
        for g, c in (EXTRA_PRODUCTS if products is None else products)
        if (examples / g).is_file() and all(g != have for have, _, _ in chosen)
    ]
    chosen += [(g, c, True) for g, c in on_model or []]
    pp = PersonPreprocessor(max_side=max_side, sam_backend=sam_backend)
    pp.load()
    gp = GarmentPreprocessor(max_side=max_side)
    extractor = OnModelExtractor(pp._analyzer, sam_backend, max_side=max_side)
    res = EvalResult(category_source=category_source)
    tiles: list[tuple[Image.Image, Image.Image, Image.Image, str, str]] = []
    total = len(persons) * len(chosen)
    done = 0
    try:
        for person in persons:
            pdata = (examples / person).read_bytes()
            for gpath, cat, is_on_model in chosen:
                done += 1
                t0 = time.perf_counter()
                try:
                    prep = pp.prepare(pdata, cat)
                    t1 = time.perf_counter()
                    gdata = (examples / gpath).read_bytes()
                    gprep = extractor.prepare(gdata, cat) if is_on_model else gp.prepare(gdata)
                    t2 = time.perf_counter()
                    layers = compose(prep, gprep, cat)
                    out = Image.fromarray(layers.image)
                    t3 = time.perf_counter()
                except TryOnInputError as e:
                    res.errors.append(
                        {"person": person, "garment": gpath, "category": cat.value, "error": e.reason}
                    )
                    continue
                q = assess(prep, np.asarray(out))
                wmask = layers.warped_mask
                reach = limb_reach(prep, layers)
                inside = float((wmask & prep.person_mask).sum() / max(1, wmask.sum()))
                inter = float((wmask & prep.agnostic_mask).sum())
                union = float((wmask | prep.agnostic_mask).sum())
                x0, y0, x1, y1 = prep.face_box
                diff = np.abs(
                    np.asarray(out, np.float32)[y0:y1, x0:x1] - prep.image[y0:y1, x0:x1].astype(np.float32)
                )
                res.rows.append(
                    {
                        "person": person,
                        "garment": gpath,
                        "category": cat.value,
                        "region_source": prep.region_source,
                        "garment_source": gprep.source,
                        "quality": q.quality,
                        "quality_reasons": q.reasons,
                        "old_garment_leak": q.scores["old_garment_leak"],
                        "coverage": q.scores["coverage"],
                        "limbs_reach_end": reach,
                        "inside": round(inside, 4),
                        "iou": round(inter / max(1.0, union), 4),
                        "face_diff": round(float(diff.mean()) if diff.size else 0.0, 3),
                        "person_s": round(t1 - t0, 4),
                        "garment_s": round(t2 - t1, 4),
                        "render_s": round(t3 - t2, 4),
                        "total_s": round(t3 - t0, 4),
                    }
                )
                gimg = rgba_image(gprep) if is_on_model else Image.fromarray(gprep.image)
                label = (
                    f"{cat.value} ({'on-model' if is_on_model else 'product'})\n{q.quality}\n"
                    + "\n".join(f"{k} {v}" for k, v in q.scores.items())
                )
                tiles.append((Image.fromarray(prep.image), gimg, out, label, q.quality))
                if progress:
                    progress(done, total)
    finally:
        pp.close()
    if tiles:
        res.sheet = sheet or out_dir / "tryon-contact-sheet.png"
        draw_sheet(tiles, res.sheet)
    return res


def draw_sheet(tiles: list[tuple[Image.Image, Image.Image, Image.Image, str, str]], path: Path) -> Path:
    """Contact sheet PNG (256-colour palette): one row per result, person | garment | render | quality
    text (verdict in green or red, then the scores); 576 px wide, 256 px per row."""
    tw, th = 144, 256
    img = Image.new("RGB", (4 * tw, th * len(tiles)), "white")
    draw = ImageDraw.Draw(img)
    for i, (a, b, c, label, verdict) in enumerate(tiles):
        for j, im in enumerate((a, b, c)):
            img.paste(_thumb(im, (tw, th)), (j * tw, i * th))
        colour = (0, 130, 0) if verdict == "good" else (200, 0, 0)
        draw.multiline_text((3 * tw + 6, i * th + 6), label, fill=colour, spacing=3)
        draw.line([(0, i * th), (4 * tw, i * th)], fill=(200, 200, 200))
    path.parent.mkdir(parents=True, exist_ok=True)
    # adaptive 256-colour palette: a sheet of 20 rows stays around 1 MB (for the README)
    img.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path
