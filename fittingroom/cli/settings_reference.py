"""Every setting of every component, for ``.env.example`` and the README's settings table.

Settings are pydantic-settings classes, one env prefix per component
(``FITTINGROOM_``, ``RETRIEVAL_``, ``SEGMENTATION_``, ``TRYON_``, ``ELIGIBILITY_``,
``CRAWLER_``, ``SERVE_``...). This module finds them by importing the modules of the
project's packages that define a ``BaseSettings`` subclass, and renders them::

    python -m fittingroom.cli.settings_reference env > .env.example
    python -m fittingroom.cli.settings_reference markdown      # the README table

``tests/docker/test_compose.py`` checks that ``.env.example`` names every setting and
nothing else, so the three stay in step.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("fittingroom", "catalog_ingest", "services", "crawler")

#: Variables read by docker compose itself (interpolation), not by a settings class.
COMPOSE_VARIABLES: dict[str, tuple[str, str]] = {
    "COMPOSE_PROFILES": ("gpu", "Try-on profile: 'gpu' (FASHN VTON on an NVIDIA GPU) or 'cpu' (preview)."),
    "FRONTEND_PORT": ("8080", "Host port of the page and the API proxy."),
    "FITTINGROOM_IMAGE_PREFIX": ("fittingroom", "Image name prefix (a registry path when pushing)."),
    "FITTINGROOM_VERSION": ("latest", "Image tag."),
    "FEEDS_DIR": ("./feeds", "Host folder mounted read-only at /feeds in the ingest job."),
}


@dataclass(frozen=True)
class Setting:
    """One environment variable of one settings class."""

    env: str
    default: str
    description: str
    owner: str  # "module:Class"


def _settings_modules() -> Iterator[str]:
    for package in PACKAGES:
        base = ROOT / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            if "tests" in path.parts or "__pycache__" in path.parts:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            if "BaseSettings" in text and "env_prefix" in text:
                rel = path.relative_to(ROOT).with_suffix("")
                parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
                yield ".".join(parts)


def settings_classes() -> list[type[BaseSettings]]:
    """Every ``BaseSettings`` subclass with an env prefix defined in the project's packages."""
    found: dict[str, type[BaseSettings]] = {}
    for name in _settings_modules():
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, BaseSettings)
                and obj is not BaseSettings
                and obj.__module__ == module.__name__
                and obj.model_config.get("env_prefix")
            ):
                found[f"{obj.__module__}:{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found, key=lambda k: (found[k].model_config["env_prefix"], k))]


def _format_default(value: Any) -> str:
    if value is PydanticUndefined or value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict | tuple | set):
        return json.dumps(list(value) if isinstance(value, tuple | set) else value)
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return str(value)


def settings(classes: list[type[BaseSettings]] | None = None) -> list[Setting]:
    """One :class:`Setting` per field of every settings class (env name = prefix + FIELD)."""
    out = []
    for cls in classes if classes is not None else settings_classes():
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field_name, info in cls.model_fields.items():
            if info.default_factory is not None:
                default = (
                    "(computed)" if "home" in field_name else _default_from_factory(info.default_factory)
                )
            else:
                default = _format_default(info.default)
            out.append(
                Setting(
                    env=f"{prefix}{field_name}".upper(),
                    default=default,
                    description=" ".join((info.description or "").split()),
                    owner=f"{cls.__module__}:{cls.__qualname__}",
                )
            )
    return out


def _default_from_factory(factory: Any) -> str:
    """The default a factory gives, or ``(computed)`` when it depends on this machine (an
    absolute path, such as the shared data beside this checkout): the docs stay the same
    wherever they are generated."""
    try:
        value = factory()
    except TypeError:
        return "(computed)"
    # a path computed from where the code runs is not a default a reader can copy
    return "(computed)" if isinstance(value, Path) else _format_default(value)


def render_env(items: list[Setting]) -> str:
    """The ``.env.example`` text: every setting commented out at its default."""
    lines = [
        "# fittingroom settings: copy to .env and uncomment what you change.",
        "# Read by `fittingroom serve` and the CLI (from the working directory) and by every",
        "# container of docker-compose.yml (env_file). Generated by:",
        "#   python -m fittingroom.cli.settings_reference env > .env.example",
        "# Names are <PREFIX><FIELD> of each component's settings class; defaults shown.",
        "# In compose, FITTINGROOM_HOME, FITTINGROOM_MODEL_DIR, FITTINGROOM_INDEX_DIR and",
        "# FITTINGROOM_STORE_URI are set per container (volumes, the mongo service).",
        "",
        "# ---- docker compose",
    ]
    for name, (default, help_text) in COMPOSE_VARIABLES.items():
        lines += [
            f"# {help_text}",
            f"{name}={default}" if name == "COMPOSE_PROFILES" else f"# {name}={default}",
        ]
    owner = None
    for s in items:
        if s.owner != owner:
            owner = s.owner
            lines += ["", f"# ---- {owner}"]
        if s.description:
            lines.append(f"# {s.description}")
        lines.append(f"# {s.env}={s.default}")
    return "\n".join(lines) + "\n"


def render_markdown(items: list[Setting]) -> str:
    """A markdown table of every setting (for the README)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in items:
        desc = s.description.replace("|", "\\|")
        default = f"`{s.default}`" if s.default else ""
        rows.append(f"| `{s.env}` | {default} | {desc} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    fmt = args[0] if args else "env"
    items = settings()
    if fmt == "env":
        sys.stdout.write(render_env(items))
    elif fmt == "markdown":
        sys.stdout.write(render_markdown(items))
    else:
        print(f"unknown format {fmt!r}: use 'env' or 'markdown'", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
