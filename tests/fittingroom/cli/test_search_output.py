"""fittingroom search's printout: a relaxed colour is said."""

from __future__ import annotations

from fittingroom.cli.search_output import print_results

HIT = {
    "uid": "t:1",
    "title": "Blue tee",
    "category_path": ["Tops"],
    "price": 10.0,
    "currency": "USD",
    "brand": "Acme",
    "score": 0.5,
    "match": None,
    "image": {"url": "1.png", "sha256": "a" * 64, "color": "Blue"},
    "tryon_eligible": True,
    "link": None,
}


def results(relaxed: list[str]) -> dict[str, object]:
    return {
        "results": [HIT],
        "parsed": {"constraints": [{"kind": "color", "value": "red"}], "dropped": [], "residual": "red tee"},
        "corrected": None,
        "no_good_match": False,
        "relaxed": relaxed,
        "next_offset": None,
        "took_ms": 1.0,
    }


def test_a_relaxed_colour_is_said(capsys) -> None:
    print_results(results(["color"]), 0, as_json=False)
    assert "other colours are shown too" in capsys.readouterr().out
    print_results(results([]), 0, as_json=False)
    assert "other colours" not in capsys.readouterr().out
