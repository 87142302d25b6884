"""Static checks of the page's source (no browser): stored text (titles, brands, links from
feeds and crawls) reaches the DOM only as text, never as HTML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "frontend" / "src"
HTML_SINKS = re.compile(
    r"\.(innerHTML|outerHTML)\s*[+]?=|insertAdjacentHTML|document\.write|DOMParser|createContextualFragment"
)


def sources() -> list[Path]:
    found = sorted(SRC.glob("**/*.ts"))
    assert found, f"no TypeScript sources under {SRC}"
    return found


@pytest.mark.parametrize("path", sources(), ids=lambda p: p.name)
def test_no_html_sink_in_the_page_source(path: Path) -> None:
    hits = [
        f"{path.name}:{n}: {line.strip()}"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if HTML_SINKS.search(line)
    ]
    assert hits == [], "stored text must be set with textContent / append(string), not as HTML"


def test_the_shop_link_is_only_rendered_for_http_urls() -> None:
    results = (SRC / "results.ts").read_text(encoding="utf-8")
    assert re.search(r"result\.link && /\^https\?:\\/\\//\.test\(result\.link\)", results), (
        "results.ts must check the shop link is http(s) before putting it in an href"
    )


def test_the_sink_pattern_catches_html_assignments() -> None:
    for bad in ("card.innerHTML = title", "x.outerHTML += y", "el.insertAdjacentHTML('beforeend', t)"):
        assert HTML_SINKS.search(bad)
    assert not HTML_SINKS.search("h3.textContent = title")
