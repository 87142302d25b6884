"""A big feed uploaded from the admin page, with the real encoder: time to the job's report.

    python benchmarks/admin_upload_bench.py [--rows 10000] [--distinct 10000] [--broken-every 500] [--json]
    python benchmarks/admin_upload_bench.py --quick   # 100 rows, one in 50 broken

Builds a JSONL feed of ``--rows`` products whose images are ``--distinct`` different JPEGs
(crops, flips and colour shifts of the shared product-only garment photos, written to a
temporary folder: a real shop's products have different photos, so each image is fetched,
decoded and embedded once). One row in ``--broken-every`` (500) is broken on purpose. Starts ``fittingroom serve``
on a free loopback port with a temporary home, an admin token and that folder as the admin's
image root, the configured (real) models. Then drives the admin page in real Chromium
(Playwright, ``/usr/bin/chromium`` unless ``--chromium`` or ``FITTINGROOM_CHROMIUM``; ``make
system-deps`` installs it): token, file, source, Preview,
Upload and ingest; reads the job row every 0.5 s until it says done, and counts the
distinct progress readings the page showed. Last, searches ``/api/retrieval/search`` for a
title of the feed until the product is found, without a restart.

Prints one table: upload accepted, job done, rows/s, progress readings seen, bad rows
reported (FILE:LINE), first search hit after the job ended.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import make_parser, parse
from PIL import Image, ImageEnhance, ImageOps
from rich.console import Console
from rich.table import Table
from rich.text import Text

TOKEN = "bench-admin-token"


def make_images(src: list[Path], out: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` different JPEGs (random crop 80-100 %, mirror, colour shift) of the ``src`` photos."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        with Image.open(src[i % len(src)]) as im:
            img = im.convert("RGB")
        w, h = img.size
        cw, ch = int(w * rng.uniform(0.8, 1.0)), int(h * rng.uniform(0.8, 1.0))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        img = img.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            img = ImageOps.mirror(img)
        img = ImageEnhance.Color(img).enhance(rng.uniform(0.7, 1.3))
        path = out / f"{i:05d}.jpg"
        img.save(path, quality=88)
        paths.append(path)
    return paths


def make_feed(
    images: list[Path], labels: list[str], rows: int, path: Path, broken_every: int = 500
) -> list[str]:
    """Write the feed, every ``broken_every``-th row broken JSON; returns its titles (row order)."""
    titles = []
    lines = []
    for i in range(rows):
        title = f"{labels[i % len(labels)].replace('_', ' ').title()} no. {i}"
        titles.append(title)
        if i % broken_every == broken_every - 1:
            lines.append('{"id": "broken", ')
            continue
        lines.append(
            json.dumps(
                {
                    "id": f"B{i:05d}",
                    "title": title,
                    "description": f"Bench product {i}.",
                    "link": f"https://shop.example/p/{i}",
                    "image_link": str(images[i % len(images)]),
                    "price": f"{10 + i % 90}.00 USD",
                    "brand": "Bench",
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return titles


def start_server(env: dict[str, str], timeout: float, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``fittingroom serve`` on a free port, its output to ``log`` (a pipe nobody reads would fill
    and block the server); returns once the admin service is up (``/readyz`` stays 503 until the
    first ingest of an empty home: the retrieval service has no index yet)."""
    cmd = [sys.executable, "-c", "from fittingroom.cli import main; main()", "serve", "--port", "0"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd + ["--log-level", "warning"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + timeout
    base = None
    while time.monotonic() < deadline and proc.poll() is None:
        if base is None:
            m = re.search(r"running at (http://\S+)", log.read_text(errors="replace"))
            base = m.group(1).rstrip("/") if m else None
        else:
            try:
                if httpx.get(base + "/api/admin/healthz", timeout=120).status_code == 200:
                    return proc, base
            except httpx.TimeoutException:
                pass  # the models are loading
        time.sleep(1)
    proc.kill()
    raise SystemExit(f"server did not start in time (exit {proc.poll()}); its log: {log}")


def drive_page(base: str, feed: Path, chromium: Path, job_timeout: float) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(base + "/admin.html")
        page.fill("#token", TOKEN)
        page.click("#token-form button")
        page.wait_for_selector("#token-status.ok")
        page.set_input_files("#feed-file", str(feed))
        page.fill("#feed-source", "bench")
        page.click("#preview-button")
        page.wait_for_selector("#preview table.mapping", timeout=60_000)
        t0 = time.perf_counter()
        page.click("#upload-button")
        page.wait_for_selector("#jobs tbody tr", timeout=60_000)
        accepted = time.perf_counter() - t0
        readings: list[str] = []
        deadline = time.monotonic() + job_timeout
        status = ""
        while time.monotonic() < deadline:
            row = page.query_selector("#jobs tbody tr")
            if row is not None:
                status = row.get_attribute("data-status") or ""
                cells = row.query_selector_all("td")
                progress = cells[4].inner_text().strip() if len(cells) > 4 else ""
                if progress and (not readings or readings[-1] != progress):
                    readings.append(progress)
                if status in ("done", "failed"):
                    break
            time.sleep(0.5)
        done = time.perf_counter() - t0
        row = page.query_selector("#jobs tbody tr")
        report = row.inner_text() if row is not None else ""
        if row is not None and row.query_selector("details summary"):
            row.query_selector("details summary").click()  # type: ignore[union-attr]
            report = row.inner_text()
        browser.close()
    return {"accepted_s": accepted, "done_s": done, "status": status, "readings": readings, "report": report}


def first_hit(base: str, title: str, timeout: float) -> float | None:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        r = httpx.post(base + "/api/retrieval/search", json={"text": title, "k": 10}, timeout=60)
        if r.status_code == 200 and any(h.get("title") == title for h in r.json().get("results", [])):
            return time.perf_counter() - t0
        time.sleep(1)
    return None


def build_parser() -> argparse.ArgumentParser:
    ap = make_parser(__doc__, quick={"rows": 100, "broken_every": 50})
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--distinct", type=int, default=None, help="Different images (default: one per row).")
    ap.add_argument("--broken-every", type=int, default=500, help="One row in this many is broken JSON.")
    ap.add_argument(
        "--chromium",
        type=Path,
        default=Path(os.environ.get("FITTINGROOM_CHROMIUM", "/usr/bin/chromium")),
        help="Chromium executable (default: FITTINGROOM_CHROMIUM, else /usr/bin/chromium).",
    )
    ap.add_argument("--job-timeout", type=float, default=3600.0)
    ap.add_argument("--start-timeout", type=float, default=900.0)
    ap.add_argument("--json", dest="as_json", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parse(build_parser(), argv)
    if not args.chromium.is_file():
        raise SystemExit(
            f"Chromium not found at {args.chromium}: `make system-deps` installs Debian's chromium, "
            "or give --chromium PATH"
        )
    from fittingroom.settings import get_settings

    photos_root = get_settings().shared_data / "garment-photos"
    src = sorted(photos_root.glob("*/*/*.jpg"))
    labels = sorted({p.parent.name for p in src})
    with tempfile.TemporaryDirectory(prefix="admin-upload-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        images = make_images(src, root / "img", args.distinct or args.rows)
        titles = make_feed(images, labels, args.rows, root / "bench.jsonl", args.broken_every)
        prep = time.perf_counter() - t0
        env = dict(os.environ, FITTINGROOM_HOME=str(root / "home"), FITTINGROOM_ADMIN_TOKEN=TOKEN)
        env["FITTINGROOM_ADMIN_IMAGE_ROOTS"] = json.dumps([str(root / "img")])
        env.setdefault("FITTINGROOM_MODEL_DIR", str(Path.home() / ".local/share/fittingroom/models"))
        env.setdefault("SERVE_RATE_LIMIT", "")
        proc, base = start_server(env, args.start_timeout, root / "serve.log")
        try:
            admin = httpx.get(base + "/admin.html", timeout=60)
            if admin.status_code != 200 or 'id="token"' not in admin.text:
                raise SystemExit(
                    f"the server has no admin page (GET /admin.html: {admin.status_code}): build the page "
                    "with `make frontend`, or point SERVE_FRONTEND_DIR at a built frontend/dist"
                )
            page = drive_page(base, root / "bench.jsonl", args.chromium, args.job_timeout)
            hit = first_hit(base, titles[-2], 120.0)
        finally:
            proc.terminate()
            proc.wait(30)
    report = str(page["report"])
    bad = sorted(set(re.findall(r"bench\.jsonl:\d+", report)))
    row = {
        "rows": args.rows,
        "distinct_images": args.distinct or args.rows,
        "feed_prep_s": round(prep, 1),
        "accepted_s": round(float(page["accepted_s"]), 2),  # type: ignore[arg-type]
        "job_done_s": round(float(page["done_s"]), 1),  # type: ignore[arg-type]
        "status": page["status"],
        "rows_per_s": round(args.rows / float(page["done_s"]), 1),  # type: ignore[arg-type]
        "progress_readings": len(page["readings"]),  # type: ignore[arg-type]
        "bad_rows_shown": len(bad),
        "search_hit_after_s": None if hit is None else round(hit, 2),
        "report": " ".join(report.split())[:300],
    }
    if args.as_json:
        print(json.dumps(row))
        return
    table = Table(title=f"admin page upload: {args.rows} rows, real encoder")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in row.items():
        table.add_row(key, Text(str(value)))  # as text: "bench.jsonl:100:" is no emoji code
    Console().print(table)


if __name__ == "__main__":
    main()
