"""``fittingroom train type-head``: reproduce the packaged garment-type head."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    @groups["models"].command("export-encoder")
    def export_encoder_cmd(
        force: Annotated[
            bool, typer.Option(help="export again even when the cached files are current")
        ] = False,
    ) -> None:
        """Export the offline encoder's models to ONNX into the model cache (else done on first use)."""
        from fittingroom.models.encoders.offline import OfflineEncoder
        from fittingroom.settings import get_settings

        s = get_settings()
        enc = OfflineEncoder(**(s.encoder_options if s.encoder == "offline" else {}))
        typer.echo(enc.image_model_path(force=force))
        typer.echo(enc.text_model_path(force=force))

    @groups["train"].command("type-head")
    def train_type_head_cmd(
        garment_photos: Annotated[
            Path | None,
            typer.Option(help="garment-photos folder (index.csv); default <shared_data>/garment-photos"),
        ] = None,
        out: Annotated[Path | None, typer.Option(help="output .npz; default: the packaged head")] = None,
        c: Annotated[float, typer.Option(help="inverse L2 regularisation of the logistic regression")] = 1.0,
    ) -> None:
        """Train the garment-type head of the offline encoder on product-only garment photos."""
        import numpy as np
        from rich.console import Console
        from tqdm import tqdm

        from fittingroom.images import load_image
        from fittingroom.models.encoders.offline import EfficientNetLiteFeatures
        from fittingroom.models.encoders.type_head import (
            default_head_path,
            read_garment_photos,
            train_type_head,
        )
        from fittingroom.settings import get_settings, resolve_device

        folder = garment_photos or get_settings().shared_data / "garment-photos"
        rows = read_garment_photos(folder)
        feats = EfficientNetLiteFeatures(device=resolve_device(get_settings().device))
        chunks = []
        for i in tqdm(range(0, len(rows), 32), desc="embedding", unit="batch"):
            chunks.append(feats([load_image(p) for p, _ in rows[i : i + 32]]))
        x = np.concatenate(chunks)
        head = train_type_head(x, [label for _, label in rows], feature="efficientnet-lite0-gem224", c=c)
        from fittingroom.models.encoders.type_head import GARMENT_PHOTO_CLASSES, TYPE_ORDER

        truth = np.array([TYPE_ORDER.index(GARMENT_PHOTO_CLASSES[label]) for _, label in rows])
        acc = float((head.predict_proba(x).argmax(1) == truth).mean())
        target = out or default_head_path()
        head.save(target, trained_on=str(folder), n_images=len(rows), train_accuracy=acc, c=c)
        Console().print(f"wrote {target} ({len(rows)} images, training accuracy {acc:.3f})")
