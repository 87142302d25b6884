"""The ``fittingroom`` command line: the composition root of all components.

Each component module listed in ``_components`` exposes
``register(app, groups)`` that adds its commands; ``groups`` holds the shared
sub-command groups (``eval``, ``train``, ``review``, ``models``). Component CLI
modules import nothing heavy at module level, so ``fittingroom --help`` is fast.
"""

from __future__ import annotations

from typing import Any

import typer


def _components() -> list[Any]:
    """The modules that add commands (each imports nothing heavy at module level)."""
    from catalog_ingest import cli as ingest_cli
    from crawler import cli as crawler_cli
    from fittingroom.cli import eligibility, encoders, models, parsing, retrieval, segmentation, serve, tryon

    return [encoders, models, ingest_cli, retrieval, segmentation, parsing, tryon, eligibility, crawler_cli, serve]


def build_app() -> typer.Typer:
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
    for module in _components():
        module.register(app, groups)
    return app


def main() -> None:
    """Run the command line; a setting that does not parse (``FITTINGROOM_ENCODER_OPTIONS='{x'``,
    ``SERVE_PORT=abc``) is one line naming it and exit status 2, not a traceback."""
    try:
        build_app()()
    except Exception as exc:
        from pydantic import ValidationError
        from pydantic_settings import SettingsError

        if not isinstance(exc, SettingsError | ValidationError):
            raise
        cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
        typer.echo(f"Error: invalid setting: {exc}{cause}", err=True)
        raise SystemExit(2) from None
