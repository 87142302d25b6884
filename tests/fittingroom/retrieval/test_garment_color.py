"""Dominant CIELAB colour of a garment cut-out and its family."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fittingroom.retrieval.garment_color import color_family, dominant_color
from fittingroom.retrieval.lexicon import COLORS


@pytest.mark.parametrize(
    ("rgb", "family"),
    [
        ((15, 15, 18), "black"),
        ((245, 245, 245), "white"),
        ((128, 128, 130), "gray"),
        ((200, 20, 30), "red"),
        ((20, 40, 120), "blue"),  # navy
        ((30, 130, 50), "green"),
        ((230, 200, 30), "yellow"),
        ((110, 60, 30), "brown"),
    ],
)
def test_solid_colours_name_their_family(rgb, family) -> None:
    got = dominant_color(Image.new("RGB", (40, 60), rgb))
    assert got is not None and got.family == family and got.share > 0.99
    assert family in {f for f, _ in COLORS.values()}  # a family the query lexicon filters by


def test_only_the_masked_pixels_count() -> None:
    # a red garment (opaque) on a big blue background (transparent), plus a small white logo
    rgba = np.zeros((60, 40, 4), np.uint8)
    rgba[..., :3] = (20, 20, 220)
    rgba[10:50, 10:30] = (210, 25, 30, 255)
    rgba[20:24, 15:19] = (250, 250, 250, 255)
    got = dominant_color(Image.fromarray(rgba, "RGBA"))
    assert got is not None and got.family == "red" and 0.9 < got.share < 1.0
    assert got.lab[1] > 40  # a* strongly positive: red


def test_nothing_masked_is_none() -> None:
    assert dominant_color(Image.new("RGBA", (8, 8), (255, 0, 0, 0))) is None


def test_low_chroma_is_achromatic_by_lightness() -> None:
    assert color_family(np.asarray([10.0, 2.0, -3.0])) == "black"
    assert color_family(np.asarray([50.0, 5.0, 5.0])) == "gray"
    assert color_family(np.asarray([95.0, 0.0, 4.0])) == "white"
