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
    """Every element attribute ``href: NAME`` in the page's code takes a link that went through
    ``safeLink`` (which keeps only http: and https: URLs); the browser test above shows the effect."""
    results = (SRC / "results.ts").read_text(encoding="utf-8")
    assert re.search(r'url\.protocol === "http:" \|\| url\.protocol === "https:"', results), (
        "safeLink must keep only http(s) links"
    )
    checked = 0
    for ts in sorted(SRC.glob("*.ts")):
        code = ts.read_text(encoding="utf-8")
        for name in re.findall(r"\bhref: (\w+)", code):
            assert re.search(rf"\b(const|let) {name} = safeLink\(", code), (
                f"{ts.name}: href {name} is not a safeLink() result"
            )
            checked += 1
    assert checked >= 2  # the result card's and the product page's shop links


def test_the_sink_pattern_catches_html_assignments() -> None:
    for bad in ("card.innerHTML = title", "x.outerHTML += y", "el.insertAdjacentHTML('beforeend', t)"):
        assert HTML_SINKS.search(bad)
    assert not HTML_SINKS.search("h3.textContent = title")
