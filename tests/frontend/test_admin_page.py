"""The catalog admin page (admin.html) in real Chromium against the real admin service (fake
colour encoder, real store and FAISS index): enter the token, upload a small feed, watch the
job end with its report, delete the source."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.browser

TOKEN = "browser-admin-token"


def small_feed(folder: Path) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for pid, rgb in (("R1", (220, 20, 20)), ("B1", (20, 20, 220))):
        Image.new("RGB", (32, 48), rgb).save(folder / f"{pid}.png")
        lines.append(
            json.dumps(
                {
                    "id": pid,
                    "title": f"Tee {pid}",
                    "link": f"https://shop.example/{pid}",
                    "image_link": str(folder / f"{pid}.png"),
                    "price": "19.00 USD",
                }
            )
        )
    lines.insert(1, "{broken")
    return ("\n".join(lines) + "\n").encode()


def test_upload_a_feed_and_watch_the_job_finish(page, stub_server, shot, tmp_path: Path) -> None:
    from catalog_ingest.jobs import AdminSettings
    from fittingroom.settings import CoreSettings
    from services.admin.app import create_app
    from tests.services.retrieval.retrieval_fakes import ColorEncoder

    core = CoreSettings(home=tmp_path / "home")
    settings = AdminSettings(token=TOKEN, image_roots=[tmp_path / "img"])
    url = stub_server(
        {"admin": lambda: create_app(settings, core=core, encoder=ColorEncoder(), annotators=False)}
    )
    page.goto(url + "admin.html")
    page.fill("#token", "wrong")
    page.click("#token-form button")
    page.wait_for_selector("#token-status.error:has-text('wrong admin token')")

    page.fill("#token", TOKEN)
    page.click("#token-form button")
    page.wait_for_selector("#token-status.ok")
    page.set_input_files(
        "#feed-file",
        files=[
            {"name": "shop.jsonl", "mimeType": "application/x-ndjson", "buffer": small_feed(tmp_path / "img")}
        ],
    )
    page.fill("#feed-source", "shop")
    page.click("#preview-button")
    page.wait_for_selector("#preview:has-text('2 products')")
    preview = page.inner_text("#preview")
    assert "shop.jsonl:2" in preview and "image_link" in page.inner_text("#preview table.mapping")

    page.click("#upload-button")
    row = page.wait_for_selector("#jobs tbody tr[data-status='done']", timeout=60_000)
    text = row.inner_text()
    assert "2 new, 0 updated, 0 unchanged, 1 bad rows" in text
    assert re.search(r"2/2", text)
    page.click("#jobs details summary")
    assert "shop.jsonl:2" in page.inner_text("#jobs details")
    page.wait_for_selector("#sources tr[data-source='shop']:has-text('2')")
    shot(page, "done")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#sources tr[data-source='shop'] button")
    page.wait_for_selector(
        "#jobs tbody tr[data-status='done']:has-text('2 products deleted')", timeout=60_000
    )
    page.wait_for_selector("#sources tr[data-source='shop']", state="detached")
