"""Memory of ``fittingroom serve``: RSS after start-up and after a mixed request soak; prints a table.

    python benchmarks/serve_rss_bench.py [--home DIR] [--requests 1000] [--feed FEED | --products N]
    python benchmarks/serve_rss_bench.py --quick   # 12 Luma products, 30 requests

Starts the all-in-one server as a subprocess on a free loopback port with
``FITTINGROOM_HOME=DIR`` (ingests ``--feed`` first when the home has no catalog yet; default:
the Luma catalog, or its first ``--products`` products copied to a temporary folder),
waits for ``/readyz``, reads the server's RSS (``/proc/PID/status`` VmRSS, VmHWM), then
sends ``--requests`` requests round-robin, all to 127.0.0.1:

* text search (``POST /api/retrieval/search``), 4 in 10;
* image search with an uploaded street photo, 2 in 10;
* segmentation: upload a street photo, then one click on it, 2 in 10 (2 requests);
* try-on person upload (``POST /api/tryon/persons``), 1 in 10 ... plus ``/readyz``.

and reads RSS again. ``--python`` / ``--cwd`` run another checkout's server with the same
requests (compare two versions on the same home).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from _common import luma_slice, make_parser, parse
from rich.console import Console
from rich.table import Table

TEXTS = ["black hoodie", "red dress", "running shorts", "yoga pants", "white tee", "jacket", "bag"]


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, MB."""
    text = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]
    hwm = int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]
    return rss, hwm


def start_server(args: argparse.Namespace, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    cmd = [args.python, "-c", "from fittingroom.cli import main; main()", "serve", "--port", "0"]
    cmd += ["--log-level", "warning"]
    if args.feed and not (Path(args.home) / "catalog.db").exists():
        cmd += ["--catalog", str(args.feed)]
    proc = subprocess.Popen(
        cmd, cwd=args.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + args.start_timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        m = re.search(r"running at (http://\S+)", line)
        if m:
            return proc, m.group(1).rstrip("/")
    proc.kill()
    raise SystemExit("server did not start in time")


def soak(base: str, n: int, photos: list[Path]) -> dict[str, int]:
    counts: dict[str, int] = {}
    errors = 0
    with httpx.Client(base_url=base, timeout=120) as c:
        for i in range(n):
            kind = i % 10
            photo = photos[i % len(photos)]
            if kind < 4:
                r = c.post("/api/retrieval/search", json={"text": TEXTS[i % len(TEXTS)], "k": 10})
                key = "text search"
            elif kind < 6:
                r = c.post(
                    "/api/retrieval/search/image",
                    files={"image": (photo.name, photo.read_bytes(), "image/jpeg")},
                )
                key = "image search"
            elif kind < 8:
                r = c.post("/api/segmentation/images", files={"file": (photo.name, photo.read_bytes())})
                if r.status_code < 300:
                    info = r.json()
                    r = c.post(
                        f"/api/segmentation/images/{info['image_id']}/masks",
                        json={"points": [{"x": info["width"] // 2, "y": info["height"] // 2, "label": 1}]},
                    )
                key = "segmentation upload + click"
            elif kind < 9:
                r = c.post("/api/tryon/persons", files={"file": (photo.name, photo.read_bytes())})
                key = "try-on person"
            else:
                r = c.get("/readyz")
                key = "readyz"
            counts[key] = counts.get(key, 0) + 1
            if r.status_code >= 500:
                errors += 1
    counts["5xx"] = errors
    return counts


def _jpeg(width: int, height: int) -> bytes:
    """A noisy photo-like JPEG (noise keeps the encoder from shrinking it to nothing)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (height // 16, width // 16, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small).resize((width, height)).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (120, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _reset_peak(pid: int) -> None:
    """Reset the process's VmHWM to its current RSS (Linux ``clear_refs`` value 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def worst_inputs(base: str, pid: int) -> list[dict[str, object]]:
    """Each hostile or huge request alone: its status and the server's peak RSS above the RSS
    just before it (VmHWM reset before each request), MB."""
    big = _jpeg(8000, 6250)  # 50 MP, the largest accepted (SEGMENTATION_MAX_PIXELS); decoded to 2048 px
    cases: list[tuple[str, Callable[[httpx.Client], httpx.Response]]] = [
        (
            "retrieval image search, 20000x1 strip PNG",
            lambda c: c.post("/api/retrieval/search/image", files={"image": ("s.png", _png(20000, 1))}),
        ),
        (
            "retrieval image search, 50 MP JPEG",
            lambda c: c.post("/api/retrieval/search/image", files={"image": ("b.jpg", big)}),
        ),
        (
            "segmentation upload, 50 MP JPEG",
            lambda c: c.post("/api/segmentation/images", files={"file": ("b.jpg", big)}),
        ),
        (
            "segmentation upload, 20000x1 strip PNG",
            lambda c: c.post("/api/segmentation/images", files={"file": ("s.png", _png(20000, 1))}),
        ),
        (
            "segmentation masks, 30 MB of points",
            lambda c: c.post(
                "/api/segmentation/images/" + "0" * 64 + "/masks",
                content=b'{"points": [' + b'{"x": 1, "y": 1, "label": 1},' * 1_000_000 + b"]}",
                headers={"content-type": "application/json"},
            ),
        ),
        (
            "try-on person, 50 MP JPEG",
            lambda c: c.post("/api/tryon/persons", files={"file": ("b.jpg", big)}),
        ),
        (
            "chunked 300 MB upload",
            lambda c: c.post(
                "/api/segmentation/images",
                content=(b"x" * (1 << 20) for _ in range(300)),
                headers={"content-type": "multipart/form-data; boundary=B"},
            ),
        ),
    ]
    rows = []
    with httpx.Client(base_url=base, timeout=600) as c:
        for name, send in cases:
            before = rss_mb(pid)[0]
            _reset_peak(pid)
            try:
                status: object = send(c).status_code
            except httpx.HTTPError as exc:  # the server may close a refused stream early
                status = type(exc).__name__
            rows.append(
                {"request": name, "status": status, "peak_above_mb": round(rss_mb(pid)[1] - before, 1)}
            )
    return rows


def build_parser() -> argparse.ArgumentParser:
    ap = make_parser(__doc__, quick={"requests": 30, "products": 12})
    ap.add_argument(
        "--home",
        type=Path,
        default=None,
        help="FITTINGROOM_HOME of the server (kept; default: a temporary one).",
    )
    ap.add_argument(
        "--feed",
        type=Path,
        default=None,
        help="Feed ingested when the home is empty (default: the Luma catalog).",
    )
    ap.add_argument(
        "--products", type=int, default=None, help="Without --feed: only the first N Luma products."
    )
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--photos", type=Path, default=None, help="Street photos folder (default: shared data).")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--cwd", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--start-timeout", type=float, default=900.0)
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--json", dest="as_json", action="store_true")
    ap.add_argument(
        "--worst",
        action="store_true",
        help="After the soak, send each worst-case input alone and print its peak.",
    )
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parse(build_parser(), argv)
    if args.photos is None:
        from fittingroom.settings import get_settings

        args.photos = get_settings().shared_data / "street-photos" / "photos"
    photos = sorted(args.photos.glob("*.jpg"))[:20]
    tmp = None
    feed_tmp = None
    if args.home is None:  # `make bench`: a fresh home with the shared Luma catalog, removed afterwards
        tmp = tempfile.TemporaryDirectory(prefix="serve-rss-")
        args.home = Path(tmp.name)
    if args.feed is None and not (args.home / "catalog.db").exists():
        from fittingroom.settings import get_settings

        luma = get_settings().shared_data / "luma-catalog"
        args.feed = luma / "products.jsonl"
        if args.products is not None:
            feed_tmp = tempfile.TemporaryDirectory(prefix="serve-rss-feed-")
            args.feed, _ = luma_slice(luma, args.products, Path(feed_tmp.name) / "luma-catalog")
    env = dict(os.environ, FITTINGROOM_HOME=str(args.home), PYTHONPATH=str(args.cwd))
    env.setdefault("FITTINGROOM_MODEL_DIR", str(Path.home() / ".local/share/fittingroom/models"))
    env.setdefault("SERVE_RATE_LIMIT", "")  # the soak is one client: the upload rate limit would answer 429
    proc, base = start_server(args, env)
    try:
        after_start = rss_mb(proc.pid)
        t0 = time.perf_counter()
        counts = soak(base, args.requests, photos)
        took = time.perf_counter() - t0
        after_soak = rss_mb(proc.pid)
        health = httpx.get(base + "/healthz", timeout=30).json()
        worst = worst_inputs(base, proc.pid) if args.worst else []
    finally:
        proc.terminate()
        proc.wait(30)
        if tmp is not None:
            tmp.cleanup()
        if feed_tmp is not None:
            feed_tmp.cleanup()
    row = {
        "label": args.label,
        "rss_after_start_mb": round(after_start[0], 1),
        "rss_after_soak_mb": round(after_soak[0], 1),
        "peak_rss_mb": round(after_soak[1], 1),
        "requests": args.requests,
        "soak_s": round(took, 1),
        "counts": counts,
        "models": [m["name"] for m in health.get("models", [])],
    }
    if args.as_json:
        print(json.dumps({**row, "worst": worst} if worst else row))
        return
    table = Table(title=f"serve RSS ({args.label})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in row.items():
        table.add_row(k, json.dumps(v) if isinstance(v, dict | list) else str(v))
    Console().print(table)
    if worst:
        wt = Table(title="peak RSS of single worst-case requests (above the RSS before each)")
        for col in ("request", "status", "peak_above_mb"):
            wt.add_column(col, justify="left" if col == "request" else "right")
        for w in worst:
            wt.add_row(*(str(w[c]) for c in ("request", "status", "peak_above_mb")))
        Console().print(wt)


if __name__ == "__main__":
    main()
