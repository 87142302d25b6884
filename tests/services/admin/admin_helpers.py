"""Helpers of the admin API tests: the token, colour feeds with image files, waiting for a job."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COLORS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}


def color_feed(folder: Path, items: list[tuple[str, str]], *, bad: bool = False) -> bytes:
    """JSON Lines feed bytes: one product per (id, colour), its image a solid PNG in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for pid, color in items:
        path = folder / f"{pid}.png"
        buf = io.BytesIO()
        Image.new("RGB", (32, 48), COLORS[color]).save(buf, format="PNG")
        path.write_bytes(buf.getvalue())
        lines.append(
            json.dumps(
                {
                    "id": pid,
                    "title": f"{color.title()} tee {pid}",
                    "link": f"https://shop.example/{pid}",
                    "image_link": str(path),
                    "price": "20.00 USD",
                    "brand": "Acme",
                    "product_type": "Men > Tops > Tees",
                    "color": color.title(),
                }
            )
        )
        if bad and len(lines) == 1:
            lines.append("{broken json")
            lines.append(json.dumps({"id": "NOIMG", "title": "No image"}))
    return ("\n".join(lines) + "\n").encode()


def wait_job(client: TestClient, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}", headers=AUTH).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")
