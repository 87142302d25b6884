"""Labels CSV of the eligibility classifier: build it from ``<shared_data>``, read it back.

CSV columns (header required, UTF-8):

``path``
    image file, relative to the CSV's folder (absolute paths are accepted too);
``photo_type``
    a ``PhotoType`` value (``product_only``, ``on_model``, ``other``);
``garment_category``
    a ``GarmentCategory`` value, or empty when not scored (e.g. a street photo of a whole outfit);
``group``
    near-duplicate group (source product or photo): images of one group are always on the
    same side of the train/validation split (optional; default: the path);
``source``
    which data set the row came from (optional, informative).

Sources used by ``build_labels`` (see ``../shared/data/README.md``):

* ``garment-photos`` (CC0): product_only; class -> category by
  ``fittingroom.models.encoders.type_head.GARMENT_PHOTO_CLASSES``;
* ``tryon-examples`` garments: product_only; category from the folder name
  (upper -> top, lower -> bottom, dresses/overall -> one_piece), else a fix table read off a
  contact sheet (``data/label_overrides.csv``: pants, skirts, dresses), else top;
  persons: on_model, no category;
* ``saleor-catalog``: product_only renders; category from the product category path
  (``fittingroom.catalog.garments.garment_category_for``);
* ``luma-catalog``: apparel on_model (category from the product), gear product_only
  (bags, watches -> bag_accessory, fitness equipment -> other);
* ``street-photos`` (first ``street_limit``): on_model, no category;
* ``people-photos``: on_model, no category.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from fittingroom.catalog.models import GarmentCategory, PhotoType

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
CSV_COLUMNS = ["path", "photo_type", "garment_category", "group", "source"]

_TRYON_FOLDER_CATEGORY = {
    "upper": GarmentCategory.top,
    "upper_body": GarmentCategory.top,
    "lower": GarmentCategory.bottom,
    "lower_body": GarmentCategory.bottom,
    "dresses": GarmentCategory.one_piece,
    "overall": GarmentCategory.one_piece,
}


#: Label fixes read off the contact sheets (``path`` relative to the shared data folder,
#: ``photo_type``, ``garment_category``, ``note``), applied last by ``build_labels``: try-on garments
#: whose folder names no category (pants, skirts, dresses; the rest are tops) and Luma bag images
#: that the catalog also lists under a bra top.
OVERRIDES_CSV = Path(__file__).resolve().parent / "data" / "label_overrides.csv"


class LabelsError(ValueError):
    """A labels CSV is malformed; the message names the file and line."""


@dataclass(frozen=True)
class LabelRow:
    """One labelled image. ``path`` is absolute after ``read_labels``."""

    path: Path
    photo_type: PhotoType
    garment_category: GarmentCategory | None
    group: str
    source: str = ""


def split_of(group: str, val_fraction: float, seed: int = 0) -> str:
    """``'val'`` or ``'train'`` from a hash of ``(seed, group)``: deterministic, order independent."""
    h = hashlib.blake2b(f"{seed}\x00{group}".encode(), digest_size=8).digest()
    return "val" if int.from_bytes(h, "big") / 2**64 < val_fraction else "train"


# ---- builders per source -------------------------------------------------------------------
def _garment_photos(root: Path) -> Iterator[LabelRow]:
    from fittingroom.models.encoders.type_head import GARMENT_PHOTO_CLASSES

    with (root / "index.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            category = GARMENT_PHOTO_CLASSES.get(row["label"])
            if category is None:
                continue
            path = root / row["path"]
            yield LabelRow(
                path, PhotoType.product_only, category, f"garment-photos:{path.stem}", "garment-photos"
            )


def _tryon_examples(root: Path) -> Iterator[LabelRow]:
    with (root / "index.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            path = root / row["path"]
            # VITON-HD / DressCode ids repeat across repos (00055_00 in two of them): group by id.
            group = f"tryon:{path.stem.split('_')[0]}"
            if row["role"] == "garment":
                folders = [p.lower() for p in Path(row["path"]).parts[:-1]]
                category = next(
                    (_TRYON_FOLDER_CATEGORY[p] for p in reversed(folders) if p in _TRYON_FOLDER_CATEGORY),
                    GarmentCategory.top,  # most are tops; the others are listed in OVERRIDES_CSV
                )
                yield LabelRow(path, PhotoType.product_only, category, group, "tryon-examples")
            elif row["role"] == "person":
                yield LabelRow(path, PhotoType.on_model, None, group, "tryon-examples")


def _saleor(root: Path) -> Iterator[LabelRow]:
    from fittingroom.catalog.garments import garment_category_for

    for line in (root / "products.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        product = json.loads(line)
        path_parts = [p for p in str(product.get("category", "")).split("/") if p]
        if path_parts[:1] == ["Apparel"]:
            category = garment_category_for(path_parts, title=product.get("name"))
        else:
            # "Accessories/Audiobooks", "Accessories/Homewares", "Groceries/Juices": not worn.
            category = garment_category_for(path_parts[-1:])
        for rel in product.get("images", []):
            yield LabelRow(
                root / rel, PhotoType.product_only, category, f"saleor:{product['id']}", "saleor-catalog"
            )


def _luma(root: Path) -> Iterator[LabelRow]:
    from fittingroom.catalog.garments import garment_category_for

    for line in (root / "products.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        product = json.loads(line)
        cats = product.get("categories") or []
        path_parts = [p for p in (cats[0].split("/") if cats else []) if p]
        is_gear = product.get("top_category") == "gear" or (path_parts[:1] == ["Gear"])
        if is_gear:
            # Gear: bags, watches -> bag_accessory; fitness equipment (and anything else) -> other.
            leaf = " ".join(cats).lower()
            category = (
                GarmentCategory.bag_accessory if ("bag" in leaf or "watch" in leaf) else GarmentCategory.other
            )
            photo_type = PhotoType.product_only
        else:
            category = garment_category_for(path_parts, title=product.get("name"))
            photo_type = PhotoType.on_model
        for rel in dict.fromkeys(product.get("images", [])):
            yield LabelRow(root / rel, photo_type, category, f"luma:{product['sku']}", "luma-catalog")


def _photos(folder: Path, source: str, limit: int | None = None) -> Iterator[LabelRow]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    for p in files[:limit]:
        group = p.stem.removesuffix("_1024")  # people-photos: an original and its _1024 copy = one group
        yield LabelRow(p, PhotoType.on_model, None, f"{source}:{group}", source)


def make_collages(
    rows: Sequence[LabelRow], out_dir: Path, *, n: int = 60, seed: int = 0, val_fraction: float = 0.2
) -> list[LabelRow]:
    """Synthetic ``other`` photos: 2x2 or 1x3 collages of product-only garment photos ("several items").

    The shared data has no collage/banner images, so without these the photo_type head would never
    see ``other``. Each collage is built only from rows of one split side (``split_of`` of their
    group with ``val_fraction``/``seed``) and gets a group on that side, so a garment photo never
    straddles train and validation. Written as JPEG to ``out_dir`` (deterministic for a seed);
    returns rows with photo_type other and no category.
    """
    import random

    from PIL import Image

    from fittingroom.images import load_image

    pool = [r for r in rows if r.photo_type == PhotoType.product_only and r.source == "garment-photos"]
    if len(pool) < 4 or n <= 0:
        return []
    sides: dict[str, list[LabelRow]] = {"train": [], "val": []}
    for r in pool:
        sides[split_of(r.group, val_fraction, seed)].append(r)
    if max(len(v) for v in sides.values()) < 4:
        return []
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    made: list[LabelRow] = []
    for i in range(n):
        # find a collage group that falls on a side with enough photos
        k = 0
        while True:
            group = f"collage:{seed}:{i}:{k}"
            side = split_of(group, val_fraction, seed)
            if len(sides[side]) >= 4:
                break
            k += 1
        layout = (2, 2) if i % 2 == 0 else (3, 1)
        parts = rng.sample(sides[side], layout[0] * layout[1])
        cell = 200
        canvas = Image.new("RGB", (cell * layout[0], cell * layout[1]), (255, 255, 255))
        for j, part in enumerate(parts):
            img = load_image(part.path).convert("RGB")
            img.thumbnail((cell - 8, cell - 8))
            x, y = (j % layout[0]) * cell, (j // layout[0]) * cell
            canvas.paste(img, (x + (cell - img.width) // 2, y + (cell - img.height) // 2))
        path = out_dir / f"collage-{seed}-{i:03d}.jpg"
        canvas.save(path, quality=90)
        made.append(LabelRow(path, PhotoType.other, None, group, "synthetic-collage"))
    return made


def read_overrides(csv_path: Path) -> dict[str, tuple[PhotoType, GarmentCategory | None]]:
    """Label fixes: ``{path relative to the shared data folder: (photo_type, garment_category)}``.

    Columns ``path, photo_type, garment_category[, note]``. Raises LabelsError (file and line)
    for an unknown value or a duplicated path, FileNotFoundError when the CSV is missing.
    """
    out: dict[str, tuple[PhotoType, GarmentCategory | None]] = {}
    for where, raw, photo_type, category, _ in _records(Path(csv_path), "label overrides CSV"):
        rel = Path(raw).as_posix()
        if rel in out:
            raise LabelsError(f"{where}: {rel} is overridden twice")
        out[rel] = (photo_type, category)
    return out


def _records(
    csv_path: Path, what: str
) -> Iterator[tuple[str, str, PhotoType, GarmentCategory | None, dict[str, str]]]:
    """``(where, path as written, photo_type, category, record)`` per row of a labels-like CSV.

    Raises FileNotFoundError (missing CSV) and LabelsError naming the file and line.
    """
    if not csv_path.is_file():
        raise FileNotFoundError(f"{what} not found: {csv_path}")
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"path", "photo_type", "garment_category"} - set(reader.fieldnames or [])
        if missing:
            raise LabelsError(f"{csv_path}:1: missing column(s) {', '.join(sorted(missing))}")
        for line, rec in enumerate(reader, start=2):
            where = f"{csv_path}:{line}"
            raw = (rec.get("path") or "").strip()
            if not raw:
                raise LabelsError(f"{where}: empty path")
            yield (where, raw, *_parse_labels(rec, where), rec)


def _parse_labels(rec: dict[str, str], where: str) -> tuple[PhotoType, GarmentCategory | None]:
    try:
        photo_type = PhotoType((rec.get("photo_type") or "").strip())
    except ValueError:
        raise LabelsError(
            f"{where}: photo_type {rec.get('photo_type')!r} not one of {[p.value for p in PhotoType]}"
        ) from None
    cat_raw = (rec.get("garment_category") or "").strip()
    try:
        category = GarmentCategory(cat_raw) if cat_raw else None
    except ValueError:
        raise LabelsError(
            f"{where}: garment_category {cat_raw!r} not one of {[c.value for c in GarmentCategory]}"
        ) from None
    return photo_type, category


def build_labels(
    shared_data: Path,
    *,
    overrides: Path | None = OVERRIDES_CSV,
    street_limit: int = 100,
    collage_dir: Path | None = None,
    n_collages: int = 60,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> list[LabelRow]:
    """All label rows from the shared data folder (absolute paths; missing sources are skipped).

    ``overrides`` (default: the committed ``data/label_overrides.csv``; None = none) replaces the
    labels of the listed images. With ``collage_dir``, ``n_collages`` synthetic ``other`` collages
    are added (``make_collages``). Raises FileNotFoundError when ``shared_data`` does not exist.
    """
    shared_data = Path(shared_data)
    if not shared_data.is_dir():
        raise FileNotFoundError(f"shared data folder not found: {shared_data}")
    builders: list[tuple[str, Iterable[LabelRow]]] = []
    if (shared_data / "garment-photos" / "index.csv").is_file():
        builders.append(("garment-photos", _garment_photos(shared_data / "garment-photos")))
    if (shared_data / "tryon-examples" / "index.csv").is_file():
        builders.append(("tryon-examples", _tryon_examples(shared_data / "tryon-examples")))
    if (shared_data / "saleor-catalog" / "products.jsonl").is_file():
        builders.append(("saleor", _saleor(shared_data / "saleor-catalog")))
    if (shared_data / "luma-catalog" / "products.jsonl").is_file():
        builders.append(("luma", _luma(shared_data / "luma-catalog")))
    if (shared_data / "street-photos" / "photos").is_dir():
        builders.append(
            ("street", _photos(shared_data / "street-photos" / "photos", "street-photos", street_limit))
        )
    if (shared_data / "people-photos").is_dir():
        builders.append(("people", _photos(shared_data / "people-photos", "people-photos")))
    rows: list[LabelRow] = []
    seen: set[Path] = set()
    for _, it in builders:
        for row in it:
            if row.path in seen or not row.path.is_file():
                continue
            seen.add(row.path)
            rows.append(row)
    if overrides is not None:
        fixes = read_overrides(overrides)
        root = shared_data.resolve()
        for n, row in enumerate(rows):
            try:
                rel = row.path.resolve().relative_to(root).as_posix()
            except ValueError:
                continue
            if rel in fixes:
                rows[n] = LabelRow(row.path, *fixes[rel], row.group, row.source)
    if collage_dir is not None:
        rows += make_collages(rows, collage_dir, n=n_collages, seed=seed, val_fraction=val_fraction)
    return rows


def write_labels(
    rows: Iterable[LabelRow], csv_path: Path, extra: dict[str, Sequence[object]] | None = None
) -> Path:
    """Write rows to ``csv_path`` (parents created): paths under the CSV's folder relative to it,
    others absolute (a labels CSV in the work folder keeps pointing at the shared data).

    ``extra``: more columns (name -> one value per row), appended after ``CSV_COLUMNS``.
    """
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    base = csv_path.parent.resolve()
    extra = extra or {}
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS + list(extra))
        for n, r in enumerate(rows):
            rel = _relative_or_absolute(Path(r.path), base)
            cat = r.garment_category.value if r.garment_category else ""
            w.writerow([rel, r.photo_type.value, cat, r.group, r.source] + [v[n] for v in extra.values()])
    return csv_path


def _relative_or_absolute(path: Path, base: Path) -> str:
    path = path.resolve()
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def apply_corrections(rows: Sequence[LabelRow], corrections: Sequence[LabelRow]) -> list[LabelRow]:
    """``rows`` with the labels of same-path ``corrections`` rows (e.g. an edited review CSV);
    corrections for images not in ``rows`` are appended."""
    fixed = {c.path: c for c in corrections}
    out = []
    for r in rows:
        c = fixed.pop(r.path, None)
        out.append(LabelRow(r.path, c.photo_type, c.garment_category, r.group, r.source) if c else r)
    return out + list(fixed.values())


def read_labels(csv_path: Path) -> list[LabelRow]:
    """Read a labels CSV (see module docstring); paths are resolved against the CSV's folder.

    Raises:
        FileNotFoundError: the CSV does not exist.
        LabelsError: missing columns, an unknown photo_type/garment_category, or a missing
            image file (the message names the CSV and the line).
    """
    csv_path = Path(csv_path)
    base = csv_path.parent
    rows: list[LabelRow] = []
    for where, raw, photo_type, category, rec in _records(csv_path, "labels CSV"):
        path = Path(raw) if Path(raw).is_absolute() else base / raw
        if not path.is_file():
            raise LabelsError(f"{where}: image not found: {path}")
        group = (rec.get("group") or "").strip() or raw
        rows.append(LabelRow(path.resolve(), photo_type, category, group, (rec.get("source") or "").strip()))
    if not rows:
        raise LabelsError(f"{csv_path}: no label rows")
    return rows
