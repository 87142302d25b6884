"""Training of the garment-type classifier (``fittingroom train garment-type``).

Data: ``<shared_data>/garment-photos`` (``index.csv``: path, split, label; CC0-1.0): the
``train`` split is embedded with the catalog encoder's image part (``Encoder.embed_images``)
as is, mirrored, and as ``crops`` random crops (``crop_min``..100 % per side, mirrored at
random; seeded), and a multinomial logistic regression (scikit-learn, lbfgs) is fitted on those
views. The ``validation`` split (as is) is only measured, and so are the ground-truth garment
crops of the street photos (``street_crops``: boxes of pixel-labelled garments over 3000
pixels, cropped as the retrieval evaluation crops them, labels mapped by ``STREET_CLASSES``).
Street photos are never trained on.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from fittingroom.images import crop_box, load_image
from fittingroom.models.garment_type import CLASS_CATEGORIES, GarmentTypeClassifier, encoder_feature_id

#: Clothing Co-Parsing label -> garment-photos class (labels not listed are not measured).
STREET_CLASSES: dict[str, str] = {
    "t-shirt": "t-shirt",
    "top": "t-shirt",
    "shirt": "shirt",
    "blouse": "shirt",
    "sweater": "longsleeve",
    "sweatshirt": "longsleeve",
    "hoodie": "longsleeve",
    "jumper": "longsleeve",
    "cardigan": "longsleeve",
    "jacket": "outwear",
    "coat": "outwear",
    "blazer": "outwear",
    "pants": "pants",
    "jeans": "pants",
    "leggings": "pants",
    "shorts": "shorts",
    "skirt": "skirt",
    "dress": "dress",
    "hat": "hat",
    "shoes": "shoes",
    "boots": "shoes",
    "sneakers": "shoes",
    "sandals": "shoes",
    "loafers": "shoes",
    "heels": "shoes",
    "flats": "shoes",
    "pumps": "shoes",
    "wedges": "shoes",
    "clogs": "shoes",
}
STREET_MIN_PIXELS = 3000

#: ``embed(images) -> (N, D) float32`` (the encoder's ``embed_images``).
EmbedFn = Callable[[Sequence[Image.Image]], np.ndarray]


@dataclass(frozen=True)
class LabelledImage:
    """One image to embed: a photo file, optionally a box of it, and its class."""

    path: Path
    label: str
    box: tuple[int, int, int, int] | None = None

    def load(self) -> Image.Image:
        img = load_image(self.path)
        if self.box is None:
            return img
        x0, y0, x1, y1 = self.box
        return crop_box(img, (max(0, x0), max(0, y0), min(img.width, x1), min(img.height, y1)))


def read_split(folder: Path, split: str) -> list[LabelledImage]:
    """The rows of ``folder/index.csv`` in ``split``; ValueError naming the file and line of an
    unknown class, FileNotFoundError when there is no index."""
    import csv

    index = folder / "index.csv"
    rows = []
    with index.open(newline="") as f:
        for line, rec in enumerate(csv.DictReader(f), start=2):
            if rec.get("split") != split:
                continue
            if rec.get("label") not in CLASS_CATEGORIES:
                raise ValueError(f"{index}:{line}: unknown class {rec.get('label')!r}")
            rows.append(LabelledImage(folder / rec["path"], rec["label"]))
    return rows


def street_crops(folder: Path, min_pixels: int = STREET_MIN_PIXELS) -> list[LabelledImage]:
    """Ground-truth garment boxes of the pixel-labelled street photos (``annotations.json``)
    whose label maps to a class (``STREET_CLASSES``) and covers over ``min_pixels`` pixels."""
    ann = json.loads((folder / "annotations.json").read_text())
    out = []
    for _, rec in sorted(ann["images"].items()):
        if rec.get("annotation") != "pixel-level":
            continue
        for it in rec.get("items", []):
            label = STREET_CLASSES.get(it["label"])
            if label is None or int(it.get("pixels", 0)) <= min_pixels:
                continue
            box = tuple(int(v) for v in it["bbox_xyxy"])
            out.append(LabelledImage(folder / rec["image"], label, box))  # type: ignore[arg-type]
    return out


def random_view(img: Image.Image, rng: random.Random, crop_min: float) -> Image.Image:
    """A random crop (each side ``crop_min``..1 of the image), mirrored with probability 1/2."""
    fw, fh = rng.uniform(crop_min, 1.0), rng.uniform(crop_min, 1.0)
    w, h = max(1, round(img.width * fw)), max(1, round(img.height * fh))
    x0, y0 = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
    view = img.crop((x0, y0, x0 + w, y0 + h))
    return ImageOps.mirror(view) if rng.random() < 0.5 else view


def context_view(img: Image.Image, background: Image.Image, rng: random.Random) -> Image.Image:
    """``img`` pasted at a random place over ``background`` (another garment photo) stretched to
    1.15-1.5 x its size: the garment with clutter around it, as in a box cut from a photo of a
    dressed person (other garments and the background at the edges)."""
    s = rng.uniform(1.15, 1.5)
    w, h = round(img.width * s), round(img.height * s)
    canvas = background.convert("RGB").resize((w, h))
    canvas.paste(img.convert("RGB"), (rng.randint(0, w - img.width), rng.randint(0, h - img.height)))
    return canvas


def embed_rows(
    rows: Sequence[LabelledImage],
    embed: EmbedFn,
    *,
    crops: int = 0,
    mirror: bool = False,
    crop_min: float = 0.75,
    context: int = 0,
    seed: int = 0,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Embed every row as is, plus its mirror image, ``crops`` random views and ``context``
    views (``context_view`` over a random row of another class) when asked.

    Returns float32 ``(N_views, D)`` and the label of each view.
    """
    rng = random.Random(seed)
    feats: list[np.ndarray] = []
    labels: list[str] = []
    for start in range(0, len(rows), batch_size):
        views: list[Image.Image] = []
        for r in rows[start : start + batch_size]:
            img = r.load()
            vs = [img] + ([ImageOps.mirror(img)] if mirror else [])
            vs += [random_view(img, rng, crop_min) for _ in range(crops)]
            for _ in range(context):
                other = rng.choice([o for o in rows if o.label != r.label] or list(rows))
                vs.append(context_view(img, other.load(), rng))
            views += vs
            labels += [r.label] * len(vs)
        feats.append(np.asarray(embed(views), np.float32))
        if progress:
            progress(min(batch_size, len(rows) - start))
    dim = feats[0].shape[1] if feats else 0
    return (np.concatenate(feats) if feats else np.zeros((0, dim), np.float32)), labels


def fit(x: np.ndarray, labels: Sequence[str], c: float = 1.0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Multinomial logistic regression (lbfgs, deterministic) -> (weights (C, D), bias (C,), classes)."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=5000).fit(x, list(labels))
    return clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32), [str(v) for v in clf.classes_]


@dataclass
class Accuracy:
    """Accuracy of predictions against labels, overall, per class and per category."""

    n: int
    accuracy: float
    category_accuracy: float
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusions: list[tuple[str, str, int]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "category_accuracy": round(self.category_accuracy, 4),
            "per_class": self.per_class,
            "top_confusions": [list(c) for c in self.confusions],
        }


def accuracy(clf: GarmentTypeClassifier, x: np.ndarray, labels: Sequence[str]) -> Accuracy:
    """Class and category accuracy of ``clf`` on embeddings ``x`` (N, D) with their labels."""
    if len(labels) == 0:
        return Accuracy(0, float("nan"), float("nan"))
    pred = [clf.classes[i] for i in clf.predict_proba(x).argmax(axis=1)]
    by: dict[str, list[bool]] = defaultdict(list)
    for t, p in zip(labels, pred, strict=True):
        by[t].append(t == p)
    cat_ok = [CLASS_CATEGORIES[t] == CLASS_CATEGORIES[p] for t, p in zip(labels, pred, strict=True)]
    conf = Counter((t, p) for t, p in zip(labels, pred, strict=True) if t != p)
    return Accuracy(
        n=len(labels),
        accuracy=float(np.mean([t == p for t, p in zip(labels, pred, strict=True)])),
        category_accuracy=float(np.mean(cat_ok)),
        per_class={c: {"n": len(v), "accuracy": round(float(np.mean(v)), 4)} for c, v in sorted(by.items())},
        confusions=[(t, p, n) for (t, p), n in conf.most_common(5)],
    )


@dataclass
class TrainResult:
    classifier: GarmentTypeClassifier
    validation: Accuracy
    street: Accuracy | None
    train_views: int


def train_garment_type(
    garment_photos: Path,
    encoder: Any,
    *,
    street_photos: Path | None = None,
    c: float = 1.0,
    crops: int = 1,
    mirror: bool = True,
    crop_min: float = 0.75,
    context: int = 0,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> TrainResult:
    """Embed, fit and measure (see the module docstring). ``encoder``: the catalog encoder
    (its ``embed_images`` and name are used). Street photos are measured only, never trained on."""
    train, val = read_split(garment_photos, "train"), read_split(garment_photos, "validation")
    if not train or not val:
        raise ValueError(f"{garment_photos / 'index.csv'}: needs train and validation rows")

    def ticker(task: str, total: int) -> Callable[[int], None] | None:
        if progress is None:
            return None
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            progress(task, done[0], total)

        return tick

    embed = encoder.embed_images
    x, y = embed_rows(
        train,
        embed,
        crops=crops,
        mirror=mirror,
        crop_min=crop_min,
        context=context,
        seed=seed,
        progress=ticker("train", len(train)),
    )
    w, b, classes = fit(x, y, c)
    w, b = w.astype(np.float16).astype(np.float32), b.astype(np.float16).astype(np.float32)  # as stored
    meta = {
        "trained_on": "garment-photos train split (CC0-1.0)",
        "train_images": len(train),
        "train_views": len(y),
        "augmentation": {
            "mirror": mirror,
            "crops": crops,
            "crop_min": crop_min,
            "context": context,
            "seed": seed,
        },
        "c": c,
    }
    clf = GarmentTypeClassifier(w, b, tuple(classes), encoder.name, encoder_feature_id(encoder), meta)
    xv, yv = embed_rows(val, embed, progress=ticker("validation", len(val)))
    street = None
    if street_photos is not None:
        rows = street_crops(street_photos)
        xs, ys = embed_rows(rows, embed, progress=ticker("street crops", len(rows)))
        street = accuracy(clf, xs, ys)
    return TrainResult(clf, accuracy(clf, xv, yv), street, len(y))


def accuracy_table(acc: Accuracy, title: str) -> str:
    """A Markdown table of per-class accuracy (and the overall figures) of ``acc``."""
    lines = [
        f"**{title}**: accuracy {acc.accuracy:.3f}, category accuracy {acc.category_accuracy:.3f} ({acc.n} images)",
        "",
        "| class | images | accuracy |",
        "|---|---:|---:|",
    ]
    lines += [f"| {c} | {int(v['n'])} | {v['accuracy']:.3f} |" for c, v in acc.per_class.items()]
    if acc.confusions:
        lines += [
            "",
            "Most frequent confusions (true -> predicted: count): "
            + ", ".join(f"{t} -> {p}: {n}" for t, p, n in acc.confusions),
        ]
    return "\n".join(lines)


def write_outputs(result: TrainResult, out: Path, command: str) -> dict[str, Any]:
    """Save the classifier to ``out`` and its ``metrics.json`` and ``MODEL_CARD.md`` next to it."""
    clf = result.classifier
    clf.save(out)
    metrics = {
        "validation": result.validation.as_json(),
        "street_crops": result.street.as_json() if result.street else None,
        "train_views": result.train_views,
        "encoder": clf.encoder,
        "image_feature": clf.image_feature,
        "command": command,
    }
    (out.parent / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    aug = clf.meta["augmentation"]
    street = (
        accuracy_table(result.street, "Street-photo ground-truth crops (evaluation only, never trained on)")
        if result.street
        else "(street photos not measured)"
    )
    card = f"""# Garment-type classifier `{out.name}`

**What**: a multinomial logistic regression (scikit-learn, lbfgs, C = {clf.meta["c"]}) on the
catalog encoder's image embedding: encoder `{clf.encoder}`, image feature `{clf.image_feature}`
({clf.dim}-d). 10 classes ({", ".join(clf.classes)}), mapped to the catalog's coarse categories by
`fittingroom.models.garment_type.CLASS_CATEGORIES` (t-shirt / shirt / longsleeve -> top, outwear ->
outerwear, pants / shorts / skirt -> bottom, dress -> one_piece, shoes -> footwear, hat -> headwear).
Float16 weights, {out.stat().st_size} bytes on disk; numpy inference (`fittingroom/models/garment_type.py`).
The model is off (with a log line) when the catalog encoder gives another image feature.

**Intended use**: the inferred category of an image-search query (a removable chip, and a
category filter inside the index search when confident). Not for anything about people.

**Data**: `../shared/data/garment-photos` (crowd-sourced photos of single garments, no person;
**CC0-1.0**), its own split: train {clf.meta["train_images"]} images -> {result.train_views} views
(each image as is{", mirrored" if aug["mirror"] else ""}, and {aug["crops"]} random crop(s) of
{aug["crop_min"]:.0%}-100 % per side, mirrored at random; {aug.get("context", 0)} context view(s): the
photo pasted over another class's photo stretched to 1.15-1.5 x, clutter at the edges as in a box
cut from a street photo; seed {aug["seed"]}); validation
{result.validation.n} images, never trained on. No street photo and no catalog image is trained on.

## Metrics

{accuracy_table(result.validation, "Validation split")}

{street}

**Limits**: the training photos are product-only (flat lay, hanger, plain backgrounds); street
crops (a garment on a person, with other garments and the background in the box) are a different
distribution and are classified markedly worse, above all long vs short sleeves and shirt vs
t-shirt; classes with few training photos (skirt, hat) are the least reliable. The probability is a
softmax of a linear model: calibrated on product photos only. No bags, accessories, swimwear or
underwear classes: such images get one of the 10 classes.

Reproduce: `{command}` (deterministic for one encoder build); the committed file is its output.
"""
    (out.parent / "MODEL_CARD.md").write_text(card)
    return metrics
