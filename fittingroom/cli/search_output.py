"""What ``fittingroom search`` prints, for a local search and for one sent to a server alike.

Both kinds of search become one ``results`` dict shaped like the retrieval service's
``SearchResponse`` JSON (the keys this module reads): ``results`` (``uid``, ``title``,
``category_path``, ``price``, ``currency``, ``brand``, ``score``, ``match``, ``image``
{``url``, ``sha256``, ``color``}, ``tryon_eligible``, ``link``), ``parsed``
(``constraints`` [{``kind``, ``value``}], ``dropped`` [{``kind``, ``text``, ``reason``}],
``residual``) or None, ``corrected``, ``no_good_match``, ``relaxed`` (constraint kinds not
applied for lack of matches, e.g. ``["color"]``), ``next_offset`` and ``took_ms``.
A local ``SearchPage`` is turned into that dict by ``page_results``; a server's answer is
that dict already. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def page_results(page: Any) -> dict[str, Any]:
    """A ``fittingroom.retrieval.search.SearchPage`` as the service's response dict (the keys above)."""
    parsed = page.parsed
    return {
        "results": [
            {
                "uid": h.product.uid,
                "title": h.product.title,
                "category_path": h.product.category_path,
                "price": h.product.price,
                "currency": h.product.currency,
                "brand": h.product.brand,
                "score": round(h.score, 6),
                "match": h.match,
                "image": {"url": h.image.url, "sha256": h.image.sha256, "color": h.image.color},
                "tryon_eligible": h.product.tryon_eligible,
                "link": h.product.link,
            }
            for h in page.hits
        ],
        "parsed": parsed.as_dict() if parsed is not None else None,
        "corrected": parsed.corrected_text if parsed is not None else None,
        "no_good_match": page.no_good_match,
        "relaxed": list(page.relaxed),
        "next_offset": page.next_offset,
        "took_ms": page.timings_ms.get("total", 0.0),
    }


def print_results(results: dict[str, Any], offset: int, as_json: bool) -> None:
    """One JSON object per result and line (``--json``), else a rich table with the parse
    (understood constraints, ignored ones, the spelling correction) above it."""
    hits = results["results"]
    if as_json:
        for rank, h in enumerate(hits, offset + 1):
            row = {
                "rank": rank,
                "id": h["uid"],
                "title": h["title"],
                "category_path": h["category_path"],
                "price": h["price"],
                "currency": h["currency"],
                "brand": h["brand"],
                "score": h["score"],
                "match": h["match"],
                "image": h["image"]["url"],
                "image_sha256": h["image"]["sha256"],
                "color": h["image"]["color"],
                "tryon_eligible": h["tryon_eligible"],
                "link": h["link"],
            }
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    parsed = results.get("parsed")
    if parsed is not None:
        if results.get("corrected"):
            console.print(f"Showing results for: [bold]{results['corrected']}[/bold]")
        chips = [f"{c['kind']}: {c['value']}" for c in parsed["constraints"]]
        if chips:
            console.print("Understood: " + ", ".join(chips) + f" (embedded: {parsed['residual']!r})")
        for d in parsed["dropped"]:
            console.print(f"[yellow]Ignored {d['kind']} {d['text']!r}: {d['reason']}[/yellow]")
        if "color" in (results.get("relaxed") or []):
            console.print("[yellow]Too few products in that colour: other colours are shown too.[/yellow]")
    if not hits:
        console.print("[yellow]No product matches.[/yellow]")
        return
    if results.get("no_good_match"):
        console.print("[yellow]No good match: the nearest products are shown.[/yellow]")
    table = Table(title=f"{len(hits)} products ({results.get('took_ms') or 0:.0f} ms)")
    for col, kw in [
        ("#", {"justify": "right"}),
        ("score", {"justify": "right"}),
        ("id", {}),
        ("title", {}),
        ("category", {}),
        ("price", {"justify": "right"}),
        ("colour", {}),
        ("try-on", {}),
        ("match", {}),
    ]:
        table.add_column(col, **kw)  # type: ignore[arg-type]
    for rank, h in enumerate(hits, offset + 1):
        price = f"{h['price']:.2f} {h['currency'] or ''}".strip() if h["price"] is not None else ""
        eligible = {True: "yes", False: "no", None: "?"}[h["tryon_eligible"]]
        table.add_row(
            str(rank),
            f"{h['score']:.3f}",
            h["uid"],
            h["title"],
            " > ".join(h["category_path"]),
            price,
            h["image"]["color"] or "",
            eligible,
            h["match"] or "",
        )
    console.print(table)
    if results.get("next_offset") is not None:
        console.print(f"next page: --offset {results['next_offset']}")
