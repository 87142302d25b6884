"""Two try-on input figures of ``fittingroom eval tryon``.

* :func:`tryon_able_share`: share of a catalog's apparel products whose try-on image (the one rule
  ``fittingroom.catalog.models.tryon_image`` over the eligibility classifier's output) yields a
  garment the renderer can warp: a product-only shot through background removal, an on-model photo
  through ``fittingroom.tryon.onmodel``. Luma feed layout (``products.jsonl`` + ``images/``).
* :func:`non_person_rejected`: share of photos without a person (garment photos, product renders)
  the person check rejects with a :class:`~fittingroom.tryon.person.TryOnInputError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fittingroom.catalog.models import GarmentCategory, ImageRecord, Product, TryOnMode, tryon_image
from fittingroom.tryon.person import PersonPreprocessor, TryOnInputError, normalize_category, sha256_bytes

#: Luma category path segment -> garment category (apparel only; gear is not apparel).
LUMA_CATEGORIES = {
    "Jackets": GarmentCategory.outerwear,
    "Tops": GarmentCategory.top,
    "Bottoms": GarmentCategory.bottom,
}


def luma_category(paths: Iterable[str]) -> GarmentCategory | None:
    """Garment category of a Luma product from its category paths ('Men/Tops/Jackets'), None for gear."""
    for path in paths:
        parts = path.split("/")
        for key in ("Jackets", "Tops", "Bottoms"):
            if key in parts:
                return LUMA_CATEGORIES[key]
    return None


def tryon_able_share(
    catalog_dir: Path,
    annotator: Any,
    prepare: Callable[[bytes, ImageRecord, Product], Any],
    *,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """``{"tryon_able_share", "products", "tryon_able", "modes", "failures"}`` over the apparel products.

    ``annotator``: the eligibility annotator (``annotate(images) -> records``), run on each product's
    main image; ``prepare(data, image, product)`` builds the garment or raises TryOnInputError.
    """
    from fittingroom.images import load_image

    rows = [json.loads(line) for line in (catalog_dir / "products.jsonl").read_text().splitlines() if line]
    apparel = [(r, c) for r in rows if (c := luma_category(r.get("categories", []))) is not None]
    apparel = apparel[:limit] if limit else apparel
    modes: dict[str, int] = {}
    failures: list[dict[str, str]] = []
    ok = 0
    for n, (row, cat) in enumerate(apparel, start=1):
        rel = row.get("main_image") or row["images"][0]
        data = (catalog_dir / rel).read_bytes()
        rec = annotator.annotate([load_image(catalog_dir / rel)])[0]
        image = ImageRecord(url=rel, sha256=sha256_bytes(data), vector_id=n, is_main=True, **rec)
        product = Product(
            source="luma", id=row["sku"], title=row["name"], garment_category=cat, images=[image]
        )
        chosen = tryon_image(product)
        mode = chosen.tryon_mode.value if chosen is not None and chosen.tryon_mode else TryOnMode.none.value
        modes[mode] = modes.get(mode, 0) + 1
        if chosen is None:
            failures.append({"sku": row["sku"], "reason": image.tryon_mode_reason or "no try-on image"})
        else:
            try:
                prepare(data, chosen, product)
                ok += 1
            except TryOnInputError as e:
                failures.append({"sku": row["sku"], "reason": e.reason})
        if progress:
            progress(n, len(apparel))
    return {
        "tryon_able_share": round(ok / len(apparel), 4) if apparel else 0.0,
        "products": len(apparel),
        "tryon_able": ok,
        "modes": modes,
        "failures": failures,
    }


def catalog_garment_preparer(
    extractor: Any, garment_pre: Any
) -> Callable[[bytes, ImageRecord, Product], Any]:
    """``prepare`` for :func:`tryon_able_share`: on-model images through ``extractor``
    (``OnModelExtractor``), product-only ones through ``garment_pre`` (``GarmentPreprocessor``)."""

    def prepare(data: bytes, image: ImageRecord, product: Product) -> Any:
        cat = normalize_category(product.garment_category.value if product.garment_category else None)
        if image.tryon_mode is TryOnMode.on_model:
            return extractor.prepare(data, cat, sha256=image.sha256)
        return garment_pre.prepare(data, sha256=image.sha256)

    return prepare


def non_person_rejected(paths: list[Path], person_pre: PersonPreprocessor) -> dict[str, Any]:
    """``{"non_person_rejected", "photos", "accepted"}``: photos the person check let through are
    listed in ``accepted`` (path names)."""
    accepted: list[str] = []
    for path in paths:
        try:
            person_pre.analyze(path.read_bytes())
        except TryOnInputError:
            continue
        accepted.append(str(path))
    n = len(paths)
    return {
        "non_person_rejected": round((n - len(accepted)) / n, 4) if n else 0.0,
        "photos": n,
        "accepted": accepted,
    }


def non_person_photos(shared_data: Path, n_garment: int = 100, n_renders: int = 40) -> list[Path]:
    """A fixed set of photos without a person: every k-th garment photo (``garment-photos``) and the
    first Saleor product renders (``saleor-catalog/images``), sorted."""
    garments = sorted((shared_data / "garment-photos").glob("*/*/*.jpg"))
    step = max(1, len(garments) // max(1, n_garment))
    renders = sorted((shared_data / "saleor-catalog" / "images").glob("*.png"))[:n_renders]
    return garments[::step][:n_garment] + renders
