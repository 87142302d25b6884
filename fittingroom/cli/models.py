"""``fittingroom models list``: every model the product can run, with source, licence and files."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer


def configured_models() -> list[dict[str, Any]]:
    """One description per shelf entry (source, licence, files with sha256), for the options the
    current settings give it. Loads no model."""
    from fittingroom.models.specs import ALL_SPECS, encoder_options
    from fittingroom.segmentation.backend import sam_options
    from fittingroom.segmentation.settings import SegmentationSettings
    from fittingroom.settings import get_settings
    from fittingroom.tryon.renderers import RENDERERS
    from fittingroom.tryon.settings import TryOnSettings

    core = get_settings()
    options: dict[str, dict[str, Any]] = {}
    try:
        spec, opts = encoder_options(core)
        options[spec.name] = opts
    except (KeyError, ValueError) as exc:
        typer.echo(f"Warning: the configured encoder is invalid: {exc}", err=True)
    seg = SegmentationSettings()
    spec, opts = sam_options(seg, core)
    options[spec.name] = opts
    if seg.parsing:
        options["parsing"] = {"path": str(seg.resolved_parsing_head())}
    options["garment_type"] = {"path": None}  # the committed classifier (no setting moves it)
    tryon = TryOnSettings()
    weights = tryon.resolved_fashn_weights_dir
    options["tryon.fashn"] = {
        "weights_dir": str(weights) if weights else None,
        "parser": tryon.fashn_parser.value,
    }
    out = []
    for spec in (*ALL_SPECS, *RENDERERS.values()):
        desc = spec.describe(**options.get(spec.name, {}))
        desc["configured"] = spec.name in options or not spec.options
        out.append(desc)
    return out


def _state(f: dict[str, Any]) -> str:
    from pathlib import Path

    if f["sha256"]:
        return str(f["sha256"])[:12]
    return "folder" if Path(f["path"]).is_dir() else "missing"


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    @groups["models"].command("list")
    def models_list(
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    ) -> None:
        """Every model the product can run: source (paper / model card), licence, files and sha256."""
        rows = configured_models()
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title="Models (the shelf's entries, with the files the current settings name)")
        for col in ("name", "kind", "licence", "source", "files (sha256)"):
            table.add_column(col, overflow="fold")
        for r in rows:
            files = "\n".join(f"{f['path']} ({_state(f)})" for f in r["files"])
            table.add_row(r["name"], r["kind"], r["licence"], r["source"], files)
        Console(width=200).print(table)
