"""What the benchmark scripts share: their command line (``--quick``) and a small Luma feed.

Not a benchmark itself (``make bench`` skips ``benchmarks/_*.py``). The scripts import it as a
sibling module (``python benchmarks/NAME.py`` puts ``benchmarks/`` first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

QUICK_HELP = (
    "Small sizes and few runs: the same code path and the same table in seconds to a few minutes, "
    "to check that the benchmark runs (its figures are not comparable with a full run). "
    "Options given explicitly win over these values: {values}."
)


def make_parser(doc: str | None, quick: Mapping[str, object]) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` described by the script's docstring, with ``--quick``.

    ``quick`` maps option destinations (``"rows"`` for ``--rows``) to the values ``--quick``
    gives them; they are listed in ``--help``. Add the script's own options, then call
    :func:`parse`.
    """
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    values = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in quick.items()) or "none"
    ap.add_argument("--quick", action="store_true", help=QUICK_HELP.format(values=values))
    ap.set_defaults(_quick_values=dict(quick))
    return ap


def parse(ap: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` (default: ``sys.argv[1:]``); with ``--quick``, the parser's quick values
    become the defaults of their options.

    Raises ``ValueError`` when a quick value names no option of ``ap`` (a typo would otherwise
    leave the full-size default in place silently); exits like ``parse_args`` on bad input.
    """
    quick: dict[str, object] = ap.get_default("_quick_values") or {}
    dests = {a.dest for a in ap._actions}
    unknown = sorted(set(quick) - dests)
    if unknown:
        raise ValueError(f"--quick values for options this parser does not have: {unknown}")
    first, _ = ap.parse_known_args(argv)
    if first.quick:
        ap.set_defaults(**quick)
    args = ap.parse_args(argv)
    del args._quick_values
    return args


def luma_image_paths(product: Mapping[str, object]) -> set[str]:
    """Relative image paths a Luma ``products.jsonl`` row refers to (main, gallery, variants)."""
    paths: set[str] = set()
    main = product.get("main_image")
    if isinstance(main, str):
        paths.add(main)
    paths.update(p for p in product.get("images") or [] if isinstance(p, str))  # type: ignore[union-attr]
    for variant in product.get("variants") or []:  # type: ignore[union-attr]
        paths.update(p for p in variant.get("images") or [] if isinstance(p, str))
    return paths


def luma_slice(catalog: Path, products: int, dest: Path) -> tuple[Path, int]:
    """Write the first ``products`` rows of ``catalog/products.jsonl`` to ``dest/products.jsonl``
    and copy the images they refer to beside it (same relative paths), so that the default
    image root of a feed (its own folder) holds them.

    Returns (feed path, images copied). ``dest`` is created; name it ``luma-catalog`` for the
    source to be ``luma`` as with the shared catalog.
    """
    lines = (catalog / "products.jsonl").read_text().splitlines()[:products]
    dest.mkdir(parents=True, exist_ok=True)
    copied = 0
    for line in lines:
        for rel in sorted(luma_image_paths(json.loads(line))):
            src = catalog / rel
            if not src.is_file():
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                shutil.copyfile(src, target)
                copied += 1
    feed = dest / "products.jsonl"
    feed.write_text("".join(line + "\n" for line in lines))
    return feed, copied
