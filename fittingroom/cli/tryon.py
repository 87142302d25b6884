"""CLI of the try-on component: ``fittingroom tryon`` and ``fittingroom eval tryon``.

Nothing heavy is imported at module level.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def tryon_command(
    person: Annotated[Path, typer.Option("--person", help="Photo of the person (full body or upper body).")],
    garment: Annotated[
        str,
        typer.Option(
            "--garment", help="Product-only garment image path, or a catalog product id 'source:id'."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write the result PNG.")],
    category: Annotated[
        str | None,
        typer.Option("--category", help="top, bottom, one_piece (default: the product's category)."),
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", help="preview or fashn (default: TRYON_BACKEND).")
    ] = None,
    debug_dir: Annotated[
        Path | None, typer.Option("--debug-dir", help="Dump each preprocessing step as a PNG here.")
    ] = None,
) -> None:
    """Render PERSON wearing GARMENT (CPU preview by default) and write a PNG."""
    from PIL import Image

    from fittingroom.tryon.person import TryOnInputError, decode_image, dump_debug, overlay
    from fittingroom.tryon.renderers import BackendUnavailable, warp_garment
    from fittingroom.tryon.service import (
        GarmentSource,
        NotFound,
        TryOnService,
        load_region_segmenter,
        read_path_bytes,
    )
    from fittingroom.tryon.settings import TryOnSettings

    settings = TryOnSettings()
    if backend:
        settings.backend = backend
    svc = TryOnService(settings)
    try:
        t0 = time.perf_counter()
        svc.person_pre.load()
        svc.person_pre.sam_backend = load_region_segmenter(settings.garment_region)
        name = settings.backend
        from fittingroom.tryon.renderers import create_backend

        be = create_backend(
            name, fashn_weights_dir=settings.resolved_fashn_weights_dir, fashn_parser=settings.fashn_parser
        )
        be.load()
        pdata = read_path_bytes(person)
        gpath = Path(garment)
        if gpath.exists():
            from fittingroom.tryon.person import sha256_bytes

            gdata = read_path_bytes(gpath)
            src = GarmentSource(gdata, sha256_bytes(gdata), category, str(gpath))
        elif ":" in garment:
            src = svc.garment_from_product(garment, category)
        else:
            raise TryOnInputError(f"{garment}: no such file (and not a product id 'source:id')")
        if src.category is None:
            raise TryOnInputError("pass --category (top, bottom, one_piece) for an image garment")
        from fittingroom.tryon.person import normalize_category

        cat = normalize_category(src.category)
        t1 = time.perf_counter()
        try:
            pprep = svc.person_pre.prepare(pdata, cat)
        except TryOnInputError as e:
            raise TryOnInputError(f"{person}: {e.reason}") from None
        t2 = time.perf_counter()
        try:
            gprep = svc.garment_pre.prepare(src.data, sha256=src.sha256)
        except TryOnInputError as e:
            raise TryOnInputError(f"{src.label}: {e.reason}") from None
        t3 = time.perf_counter()
        result = be.render(
            Image.fromarray(pprep.image),
            pprep,
            decode_image(src.data, max_side=settings.max_side),
            gprep,
            cat,
        )
        t4 = time.perf_counter()
    except (TryOnInputError, NotFound, BackendUnavailable) as e:
        raise _fail(str(e), 2) from e
    finally:
        svc.person_pre.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    result.save(out)
    if debug_dir is not None:
        dump_debug(pprep, debug_dir)
        Image.fromarray(overlay(gprep.image, gprep.mask, (0, 255, 0))).save(debug_dir / "garment_mask.png")
        _, wmask = warp_garment(pprep, gprep, cat)
        Image.fromarray(overlay(pprep.image, wmask, (0, 255, 0))).save(debug_dir / "warped_garment_mask.png")
    label = " (quick preview)" if be.preview else ""
    typer.echo(
        f"wrote {out}{label}: {cat.value}, load {t1 - t0:.2f}s, "
        f"person {t2 - t1:.2f}s (garment region: {pprep.region_source}), "
        f"garment {t3 - t2:.2f}s, render {t4 - t3:.2f}s"
    )


def eval_tryon_command(
    examples: Annotated[
        Path | None,
        typer.Option("--examples", help="Folder with index.csv (default: shared_data/tryon-examples)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Persons to use (0 = all).")] = 8,
    garments: Annotated[int, typer.Option("--garments", min=1, help="Size of the fixed garment set.")] = 3,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", help="Where the contact sheet goes (default: home/eval/tryon)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object.")] = False,
    garment_region: Annotated[
        str | None,
        typer.Option("--garment-region", help="auto | sam | pose (default: TRYON_GARMENT_REGION)."),
    ] = None,
    classifier: Annotated[
        bool,
        typer.Option(
            "--classifier/--file-names",
            help="Categorise garments without a `category` column with the eligibility classifier "
            "(default) or from the source datasets' file names.",
        ),
    ] = True,
    sheet: Annotated[
        Path | None,
        typer.Option("--sheet", help="Write the contact sheet (person | garment | render | quality) here."),
    ] = None,
    on_model: Annotated[
        list[str] | None,
        typer.Option(
            "--on-model",
            help="Extra garment cut out of an on-model catalog photo, PATH=CATEGORY (repeatable), "
            "e.g. shared_data/luma-catalog/images/m/h/mh01-gray_main.jpg=top.",
        ),
    ] = None,
    extra_person: Annotated[
        list[str] | None,
        typer.Option("--person", help="Extra person photo path (repeatable), e.g. a street photo."),
    ] = None,
    non_person: Annotated[
        bool,
        typer.Option(
            "--non-person/--no-non-person",
            help="Also measure non_person_rejected over garment photos and Saleor renders (default on).",
        ),
    ] = True,
    catalog: Annotated[
        Path | None,
        typer.Option(
            "--catalog",
            help="Luma-layout catalog folder (products.jsonl + images/): measure tryon_able_share of its "
            "apparel products (slow: classifier + garment cut-out per product).",
        ),
    ] = None,
) -> None:
    """Preview backend over persons × a fixed garment set: silhouette share, agnostic IoU, face unchanged, timings."""
    from fittingroom.settings import get_settings
    from fittingroom.tryon.evaluation import run_eval

    core = get_settings()
    folder = examples or core.shared_data / "tryon-examples"
    target = out_dir or core.home / "eval" / "tryon"
    try:
        from fittingroom.tryon.renderers import BackendUnavailable
        from fittingroom.tryon.service import load_region_segmenter
        from fittingroom.tryon.settings import TryOnSettings

        mode = garment_region or TryOnSettings().garment_region.value
        if mode not in ("auto", "sam", "pose"):
            raise ValueError(f"--garment-region must be auto, sam or pose, got {mode!r}")
        sam = load_region_segmenter(mode)
        from fittingroom.tryon.person import TryOnCategory

        extra_garments = []
        for item in on_model or []:
            path, sep, cat = item.rpartition("=")
            if not sep:
                raise ValueError(f"--on-model wants PATH=CATEGORY, got {item!r}")
            extra_garments.append((str(Path(path).resolve()), TryOnCategory(cat)))
        res = run_eval(
            folder,
            target,
            limit=limit or None,
            n_garments=garments,
            sam_backend=sam,
            use_classifier=classifier,
            on_model=extra_garments,
            extra_persons=[str(Path(p).resolve()) for p in extra_person or []],
            sheet=sheet,
        )
        summary = res.summary()
        summary.update(_input_figures(core.shared_data, sam, non_person, catalog))
    except (FileNotFoundError, ValueError, BackendUnavailable) as e:
        raise _fail(str(e), 2) from e
    if as_json:
        typer.echo(json.dumps({**summary, "error_details": res.errors}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"try-on preview on {folder}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in summary.items():
        if k in ("non_person_accepted", "tryon_able_failures"):
            continue
        if k in ("per_category", "overall"):
            for cat, metrics in v.items() if k == "per_category" else [("overall", v)]:
                for mk, mv in metrics.items():
                    table.add_row(f"{cat}: {mk}", str(mv))
        else:
            table.add_row(k, str(v))
    Console().print(table)
    for err in res.errors:
        typer.echo(f"skipped {err['person']} × {err['garment']}: {err['error']}")


def _input_figures(shared_data: Path, sam: object, non_person: bool, catalog: Path | None) -> dict:
    """``non_person_rejected`` (and the photos let through) and ``tryon_able_share`` when asked."""
    from fittingroom.tryon.catalog_eval import (
        catalog_garment_preparer,
        non_person_photos,
        non_person_rejected,
        tryon_able_share,
    )
    from fittingroom.tryon.garment import GarmentPreprocessor
    from fittingroom.tryon.onmodel import OnModelExtractor
    from fittingroom.tryon.person import PersonPreprocessor

    out: dict = {}
    pp = PersonPreprocessor()
    pp.load()
    if non_person:
        r = non_person_rejected(non_person_photos(shared_data), pp)
        out |= {
            "non_person_rejected": r["non_person_rejected"],
            "non_person_photos": r["photos"],
            "non_person_accepted": r["accepted"],
        }
    if catalog is not None:
        from fittingroom.models.eligibility import load_annotator

        prepare = catalog_garment_preparer(OnModelExtractor(pp._analyzer, sam), GarmentPreprocessor())
        r = tryon_able_share(catalog, load_annotator(), prepare)
        out |= {
            "tryon_able_share": r["tryon_able_share"],
            "tryon_able_products": r["products"],
            "tryon_modes": r["modes"],
            "tryon_able_failures": r["failures"],
        }
    return out


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("tryon")(tryon_command)
    groups["eval"].command("tryon")(eval_tryon_command)
