"""Contact sheets: a grid of captioned thumbnails in one PNG, for looking at labels and predictions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from fittingroom.images import flatten_alpha


@dataclass(frozen=True)
class SheetItem:
    """One cell: an image file (or a decoded image) and up to three short caption lines."""

    image: Path | Image.Image
    caption: str = ""


def _open(image: Path | Image.Image) -> Image.Image:
    if isinstance(image, Image.Image):
        img = image
    else:
        try:
            with Image.open(image) as f:
                f.draft("RGB", (512, 512))
                img = f.copy()
        except (OSError, ValueError):
            return Image.new("RGB", (64, 64), (255, 0, 255))  # unreadable: magenta cell
    if img.mode in ("RGBA", "LA", "PA", "P"):
        img = flatten_alpha(img.convert("RGBA"))
    return img.convert("RGB")


def contact_sheet(
    items: Sequence[SheetItem],
    out_path: Path,
    *,
    thumb: int = 160,
    columns: int = 10,
    title: str = "",
) -> Path:
    """Render ``items`` as a grid PNG at ``out_path`` (parents created) and return the path.

    Each cell is ``thumb`` x ``thumb`` pixels (aspect kept, light-grey letterbox) with the
    caption below it (``\\n`` separates lines, each clipped to the cell width).
    """
    if not items:
        raise ValueError("contact_sheet needs at least one item")
    font = ImageFont.load_default()
    line_h = 11
    n_lines = max(1, max(len(i.caption.split("\n")) for i in items))
    cap_h = n_lines * line_h + 4
    title_h = 18 if title else 0
    columns = max(1, min(columns, len(items)))
    rows = math.ceil(len(items) / columns)
    pad = 4
    cell_w, cell_h = thumb + pad, thumb + cap_h + pad
    sheet = Image.new("RGB", (columns * cell_w + pad, rows * cell_h + pad + title_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 3), title, fill=(0, 0, 0), font=font)
    max_chars = max(4, thumb // 6)
    for k, item in enumerate(items):
        r, c = divmod(k, columns)
        x, y = pad + c * cell_w, pad + title_h + r * cell_h
        img = _open(item.image)
        img.thumbnail((thumb, thumb))
        draw.rectangle((x, y, x + thumb - 1, y + thumb - 1), fill=(235, 235, 235))
        sheet.paste(img, (x + (thumb - img.width) // 2, y + (thumb - img.height) // 2))
        for j, line in enumerate(item.caption.split("\n")[:n_lines]):
            draw.text((x, y + thumb + 2 + j * line_h), line[:max_chars], fill=(0, 0, 0), font=font)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_path)
    return out_path


def label_sheets(
    rows: Sequence, out_dir: Path, *, per_sheet: int = 200, thumb: int = 96, columns: int = 20
) -> list[Path]:
    """One contact sheet per label class (``photo_type`` + ``garment_category``) of labelled rows.

    ``rows``: ``fittingroom.training.eligibility.labels.LabelRow``-like objects (``path``, ``photo_type``,
    ``garment_category``, ``source``). A class with more than ``per_sheet`` images is sampled evenly
    (the same images every run). Files: ``out_dir/<photo_type>__<category or none>.png``. This is
    how labels are checked by eye before training (and after every relabelling).
    """
    classes: dict[tuple[str, str], list] = {}
    for r in rows:
        cat = r.garment_category.value if r.garment_category else "none"
        classes.setdefault((r.photo_type.value, cat), []).append(r)
    out: list[Path] = []
    for (pt, cat), members in sorted(classes.items()):
        step = max(1, math.ceil(len(members) / per_sheet))
        shown = members[::step][:per_sheet]
        items = [SheetItem(r.path, f"{r.source[:8]} {Path(r.path).stem[:10]}") for r in shown]
        title = f"{pt} / {cat}: {len(shown)} of {len(members)} images"
        out.append(
            contact_sheet(
                items, Path(out_dir) / f"{pt}__{cat}.png", thumb=thumb, columns=columns, title=title
            )
        )
    return out
