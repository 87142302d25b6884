"""``fittingroom eval retrieval --image-category``: the four tasks again, every image query
restricted to its inferred garment category as ``POST /search/image`` restricts it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import typer


@dataclass
class CategoryRun:
    """The report of the restricted run, the confidence setting and how often it applied."""

    report: Any
    min_prob: float
    stats: Any

    def title(self, encoder_name: str) -> str:
        s = self.stats
        return (
            f"{encoder_name} + inferred image category (min prob {self.min_prob:g}; "
            f"{s.applied} of {s.image_queries} image queries filtered, {s.relaxed} relaxed)"
        )

    def as_json(self) -> dict[str, Any]:
        return {**self.report.as_json(), "min_prob": self.min_prob, "image_queries": self.stats.as_json()}


def cached_encode(encode: Any) -> Any:
    """``encode`` remembering each query's vector by (image pixels, text, weight): the second run
    re-reads the same images and must not pay the encoder again."""
    memo: dict[str, np.ndarray] = {}

    def key(q: Any) -> str:
        h = hashlib.sha1(f"{q.text}|{q.image_weight}".encode())
        if q.image is not None:
            h.update(f"{q.image.mode}{q.image.size}".encode())
            h.update(q.image.tobytes())
        return h.hexdigest()

    def run(queries: Sequence[Any]) -> np.ndarray:
        keys = [key(q) for q in queries]
        todo = [i for i, k in enumerate(keys) if k not in memo]
        if todo:
            vecs = np.asarray(encode([queries[i] for i in todo]), np.float32)
            for i, v in zip(todo, vecs, strict=True):
                memo[keys[i]] = v
        return np.stack([memo[k] for k in keys])

    return run


def run_with_image_category(
    searcher: Any,
    encoder: Any,
    encode: Any,
    source: str,
    luma: Any,
    catalog_dir: Path,
    street: Any,
    min_prob: float | None,
) -> CategoryRun:
    """The four tasks with the inferred-category restriction (CLI error when the committed
    classifier is missing or was trained for another encoder)."""
    from fittingroom.models.garment_type import GarmentTypeModelError, classifier_for_encoder
    from fittingroom.retrieval.evaluation import evaluate_retrieval, searcher_search_fn
    from fittingroom.retrieval.image_category import RestrictionStats, eval_restrictor
    from fittingroom.retrieval.settings import RetrievalSettings

    try:
        clf = classifier_for_encoder(encoder)
    except GarmentTypeModelError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if clf is None:
        typer.echo(
            f"Error: the garment-type classifier was not trained for encoder {encoder.name}: "
            "run `fittingroom train garment-type --encoder ...`",
            err=True,
        )
        raise typer.Exit(1)
    prob = RetrievalSettings().image_category_min_prob if min_prob is None else min_prob
    stats = RestrictionStats()
    report = evaluate_retrieval(
        luma,
        catalog_dir,
        street,
        encode,
        searcher_search_fn(searcher, source, restrict=eval_restrictor(searcher, clf, prob, stats)),
        progress=None,
    )
    return CategoryRun(report, prob, stats)
