"""The ``fittingroom`` command line: the composition root of all components.

Each component module listed in ``_components`` exposes
``register(app, groups)`` that adds its commands; ``groups`` holds the shared
sub-command groups (``eval``, ``train``, ``review``, ``models``). Component CLI
modules import nothing heavy at module level, so ``fittingroom --help`` is fast, and
``fittingroom search ...`` (or any other top-level command of one component) builds the app
with that component alone (``_component_of``): the other components are not even imported.
"""

from __future__ import annotations

import sys
from typing import Any

import typer


def _components() -> list[Any]:
    """The modules that add commands (each imports nothing heavy at module level)."""
    from catalog_ingest import cli as ingest_cli
    from crawler import cli as crawler_cli
    from fittingroom.cli import (
        eligibility,
        encoders,
        garment_type,
        models,
        parsing,
        retrieval,
        segmentation,
        serve,
        tryon,
    )

    return [
        encoders,
        models,
        ingest_cli,
        retrieval,
        segmentation,
        parsing,
        garment_type,
        tryon,
        eligibility,
        crawler_cli,
        serve,
    ]


def _component_of(command: str | None) -> Any | None:
    """The one component module that registers the top-level ``command`` (``search``,
    ``serve``, ...); None for a group (``eval``, ``models``, ...), an option or anything else."""
    match command:
        case "search":
            from fittingroom.cli import retrieval

            return retrieval
        case "segment":
            from fittingroom.cli import segmentation

            return segmentation
        case "tryon":
            from fittingroom.cli import tryon

            return tryon
        case "serve":
            from fittingroom.cli import serve

            return serve
        case "ingest":
            from catalog_ingest import cli as ingest_cli

            return ingest_cli
        case "crawl" | "parse":
            from crawler import cli as crawler_cli

            return crawler_cli
    return None


def build_app(command: str | None = None) -> typer.Typer:
    """The ``fittingroom`` app with every command; with ``command`` (the first argument on the
    command line) naming a top-level command of one component, with that component's commands
    only (the same command, fewer imports). The groups are always there (an app with one
    command would turn into that command)."""
    app = typer.Typer(
        name="fittingroom",
        help="Garment search and virtual try-on.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    groups: dict[str, typer.Typer] = {}
    for name, help_text in [
        ("eval", "Evaluations on real data; each prints a table (or --json)."),
        ("train", "Train models."),
        ("review", "Review model predictions."),
        ("models", "Fetch and prepare model files."),
    ]:
        groups[name] = typer.Typer(help=help_text, no_args_is_help=True)
        app.add_typer(groups[name], name=name)
    module = _component_of(command)
    for component in [module] if module is not None else _components():
        component.register(app, groups)
    return app


def main() -> None:
    """Run the command line; a setting that does not parse (``FITTINGROOM_ENCODER_OPTIONS='{x'``,
    ``SERVE_PORT=abc``) is one line naming it and exit status 2, not a traceback."""
    try:
        build_app(sys.argv[1] if len(sys.argv) > 1 else None)()
    except Exception as exc:
        from pydantic import ValidationError
        from pydantic_settings import SettingsError

        if not isinstance(exc, SettingsError | ValidationError):
            raise
        cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
        typer.echo(f"Error: invalid setting: {exc}{cause}", err=True)
        raise SystemExit(2) from None
