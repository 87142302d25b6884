"""The ``fittingroom`` command line: the composition root of all components.

Each component module listed in ``_COMPONENTS`` exposes
``register(app, groups)`` that adds its commands; ``groups`` holds the shared
sub-command groups (``eval``, ``train``, ``review``, ``models``). Component CLI
modules import nothing heavy at module level, so ``fittingroom --help`` is fast.
"""

from __future__ import annotations

import importlib

import typer

_COMPONENTS = [
    "fittingroom.cli.encoders",
    "catalog_ingest.cli",
    "fittingroom.cli.retrieval",
    "fittingroom.cli.segmentation",
    "fittingroom.cli.parsing",
    "fittingroom.cli.tryon",
    "fittingroom.cli.eligibility",
    "crawler.cli",
    "fittingroom.cli.serve",
]


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
    for mod in _COMPONENTS:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name and mod.startswith(exc.name):
                continue  # component not present in this checkout
            raise
        module.register(app, groups)
    return app


def main() -> None:
    build_app()()
