"""``fittingroom train parsing``: the garment-parsing head on the SAM embedding (imports nothing heavy here)."""

from __future__ import annotations

from pathlib import Path

import typer


def train_parsing_cmd(
    street_photos: Path | None = typer.Option(
        None, "--street-photos", help="Street-photos folder (default: <shared_data>/street-photos)."
    ),
    out_dir: Path | None = typer.Option(
        None,
        "--out-dir",
        help="Where the head, metrics and model card go (default: the committed head's folder).",
    ),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Embedding cache (default: <FITTINGROOM_HOME>/cache/parsing)."
    ),
    seed: int = typer.Option(14, "--seed", help="Split, augmentation and initialisation seed."),
    epochs: int = typer.Option(8, "--epochs", min=1, help="Passes over all train views."),
    jitter_views: int = typer.Option(
        0, "--jitter-views", min=0, help="Crop + colour-jitter views per train photo (each one encoder run)."
    ),
    flip: str = typer.Option(
        "embedding",
        "--flip",
        help="embedding (mirror the cached embedding) or encode (re-encode the mirror).",
    ),
    threads: int = typer.Option(2, "--threads", min=1, help="Torch CPU threads."),
) -> None:
    """Train the parsing head (cached SAM embeddings of photos 0001-0400, split by photo); writes head + card."""
    from fittingroom.models.parsing import HEAD_DIR
    from fittingroom.segmentation.backend import sam_backend
    from fittingroom.segmentation.settings import SegmentationSettings
    from fittingroom.settings import get_settings
    from fittingroom.training.parsing import ParsingTrainConfig, train_parsing

    core = get_settings()
    folder = street_photos or core.shared_data / "street-photos"
    if flip not in ("embedding", "encode"):
        raise typer.BadParameter(f"--flip {flip!r}: use embedding or encode")
    config = ParsingTrainConfig(
        seed=seed, epochs=epochs, jitter_views=jitter_views, flip=flip, threads=threads
    )
    backend = sam_backend(SegmentationSettings(), core)
    command = f"fittingroom train parsing --seed {seed} --epochs {epochs} --jitter-views {jitter_views} --flip {flip}"
    try:
        metrics = train_parsing(
            folder,
            out_dir or HEAD_DIR,
            cache_dir or core.home / "cache" / "parsing",
            backend,
            backend.model_key,
            config,
            command=command,
            log=lambda line: typer.echo(line, err=True),
        )
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--street-photos") from exc
    val = metrics["validation"]
    typer.echo(
        f"head {metrics['head_key']} ({metrics['head_bytes']} bytes) in {metrics['train_seconds']:.0f} s; "
        f"validation pixel accuracy {val['pixel_accuracy']}, main-garment mIoU {val['miou_main_garments']}"
    )
    for group, v in val["iou_per_group"].items():
        typer.echo(f"  {group:12s} IoU {v}")


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    groups["train"].command("parsing")(train_parsing_cmd)
