"""``fittingroom train garment-type``: the garment-type classifier on the catalog encoder's image embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train_garment_type_cmd(
    garment_photos: Annotated[
        Path | None,
        typer.Option(
            "--garment-photos", help="garment-photos folder (index.csv); default <shared_data>/garment-photos"
        ),
    ] = None,
    street_photos: Annotated[
        Path | None,
        typer.Option(
            "--street-photos",
            help="Street-photos folder, measured only (default <shared_data>/street-photos when present).",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output .npz (default: the committed classifier).")
    ] = None,
    encoder_name: Annotated[
        str | None, typer.Option("--encoder", help="Catalog encoder (default: settings).")
    ] = None,
    c: Annotated[float, typer.Option("--c", min=1e-6, help="Inverse L2 regularisation strength.")] = 1.0,
    crops: Annotated[int, typer.Option("--crops", min=0, help="Random crop views per train image.")] = 1,
    mirror: Annotated[bool, typer.Option("--mirror/--no-mirror", help="Also train on mirror images.")] = True,
    context: Annotated[
        int, typer.Option("--context", min=0, help="Views per train image pasted over another class's photo.")
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Augmentation seed.")] = 0,
) -> None:
    """Train the garment-type classifier on the garment photos; writes weights, metrics and model card."""
    from rich.console import Console

    from fittingroom.cli.retrieval import _load_encoder
    from fittingroom.models.garment_type import DEFAULT_MODEL_PATH
    from fittingroom.settings import get_settings
    from fittingroom.training.garment_type import accuracy_table, train_garment_type, write_outputs

    shared = get_settings().shared_data
    folder = garment_photos or shared / "garment-photos"
    if not (folder / "index.csv").is_file():
        raise typer.BadParameter(f"{folder}: no index.csv there", param_hint="--garment-photos")
    street = street_photos or shared / "street-photos"
    if street_photos is not None and not (street / "annotations.json").is_file():
        raise typer.BadParameter(f"{street}: no annotations.json there", param_hint="--street-photos")
    encoder = _load_encoder(encoder_name or get_settings().encoder)
    console = Console(stderr=True)

    def progress(task: str, done: int, total: int) -> None:
        if done == total or done % 320 == 0:
            console.print(f"  {task}: {done}/{total} images")

    try:
        result = train_garment_type(
            folder,
            encoder,
            street_photos=street if (street / "annotations.json").is_file() else None,
            c=c,
            crops=crops,
            mirror=mirror,
            context=context,
            seed=seed,
            progress=progress,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--garment-photos") from None
    given = [
        f"--c {c}" if c != 1.0 else "",
        f"--crops {crops}" if crops != 1 else "",
        "" if mirror else "--no-mirror",
        f"--context {context}" if context != 0 else "",
        f"--seed {seed}" if seed != 0 else "",
    ]
    command = " ".join(["fittingroom train garment-type", *[g for g in given if g]])
    target = out or DEFAULT_MODEL_PATH
    write_outputs(result, target, command)
    out_console = Console()
    out_console.print(accuracy_table(result.validation, "Validation split"))
    if result.street is not None:
        out_console.print(accuracy_table(result.street, "Street-photo ground-truth crops (evaluation only)"))
    out_console.print(f"wrote {target} ({result.train_views} train views)")


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    groups["train"].command("garment-type")(train_garment_type_cmd)
