"""Cold start of the command line: wall time of fresh ``fittingroom`` processes; prints a table.

    python benchmarks/cli_bench.py [--home DIR] [--runs 5] [--image PHOTO] [--json]
    python benchmarks/cli_bench.py --quick   # 1 round, a home with 12 Luma products

Without ``--home`` (and no catalog in the default home), or with ``--quick``, the commands run
on a temporary home: the first ``--products`` Luma products ingested with ``fittingroom
ingest`` first (not timed).

Each command runs ``--runs`` times as a new process (the rounds interleave the commands, so a
load spike on a shared machine hits them all alike); the table gives the median, min and max
wall time (seconds) and the ratio of the median to ``python -c pass``:

* ``python -c pass`` (the interpreter alone);
* ``fittingroom --help``;
* ``fittingroom search --text hoodie`` (cold: imports, store, index and text model loaded);
* ``fittingroom search --image PHOTO`` (cold: the image model);
* ``fittingroom search --text hoodie --server URL`` against a ``fittingroom serve`` started
  here on a free loopback port, on a copy of the home (the server writes into its home;
  ``DIR`` is never written). ``--no-server`` skips it.

Targets (issue 20): ``--text`` <= 2 s, ``--image`` <= 3 s cold, ``--server`` <= 0.5 s.
``--python`` / ``--cwd`` time another checkout (``--cwd`` is put on ``PYTHONPATH``);
``--baseline DIR`` adds the cold ``--help`` / ``--text`` / ``--image`` rows of the checkout in DIR
(e.g. ``git archive main | tar -x -C DIR``) to the same rounds, and their ratio to this one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import luma_slice, make_parser, parse

TARGETS_S = {"search --text": 2.0, "search --image": 3.0, "search --text --server": 0.5}


def run_once(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall seconds of one process; raises when it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stderr[-2000:]}")
    return took


def start_server(python: str, env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """``fittingroom serve --port 0``; returns the process and its base URL once it is ready."""
    cmd = [python, "-m", "fittingroom.cli", "serve", "--port", "0", "--log-level", "warning"]
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        m = re.search(r"running at (http://\S+)", line)
        if m:
            base = m.group(1).rstrip("/")
            import httpx

            while time.monotonic() < deadline:  # the retrieval service loads its models first
                if httpx.get(base + "/readyz", timeout=30).status_code == 200:
                    return proc, base
                time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not start in time")


def ingest_home(python: str, env: dict[str, str], cwd: Path, home: Path, products: int) -> None:
    """Ingest the first ``products`` Luma products into ``home`` (``fittingroom ingest``)."""
    from fittingroom.settings import get_settings

    feed, _ = luma_slice(get_settings().shared_data / "luma-catalog", products, home.parent / "luma-catalog")
    cmd = [python, "-m", "fittingroom.cli", "ingest", str(feed), "--no-progress", "--json"]
    proc = subprocess.run(
        cmd, cwd=cwd, env=dict(env, FITTINGROOM_HOME=str(home)), capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        raise SystemExit(f"ingest into {home} exited with {proc.returncode}:\n{proc.stderr[-2000:]}")


def build_parser() -> argparse.ArgumentParser:
    ap = make_parser(__doc__, quick={"runs": 1, "products": 12})
    ap.add_argument(
        "--home",
        type=Path,
        default=None,
        help="FITTINGROOM_HOME with a catalog (read only; default: FITTINGROOM_HOME when it holds one, "
        "else a temporary home with --products Luma products).",
    )
    ap.add_argument("--products", type=int, default=191, help="Luma products of a temporary home.")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--image", type=Path, default=None, help="Query photo (default: a street photo).")
    ap.add_argument("--no-server", action="store_true", help="Skip the --server row.")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--cwd", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--baseline", type=Path, default=None, help="Another checkout timed in the same rounds.")
    ap.add_argument("--json", dest="as_json", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parse(build_parser(), argv)
    env = dict(os.environ, PYTHONPATH=str(args.cwd))
    env.setdefault("FITTINGROOM_MODEL_DIR", str(Path.home() / ".local/share/fittingroom/models"))
    env.pop("FITTINGROOM_SERVER", None)
    if args.home is not None:
        env["FITTINGROOM_HOME"] = str(args.home)
    home = Path(env.get("FITTINGROOM_HOME", Path.home() / ".local/share/fittingroom"))
    home_tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.home is not None and not (home / "catalog.db").exists():
        raise SystemExit(f"{home}: no catalog.db there; ingest first (fittingroom ingest ...)")
    if args.home is None and (args.quick or not (home / "catalog.db").exists()):
        home_tmp = tempfile.TemporaryDirectory(prefix="fittingroom-cli-bench-home-")
        home = Path(home_tmp.name) / "home"
        ingest_home(args.python, env, args.cwd, home, args.products)
        env["FITTINGROOM_HOME"] = str(home)
    if args.image is None:
        from fittingroom.settings import get_settings

        args.image = get_settings().shared_data / "street-photos" / "photos" / "0001.jpg"
    cli = [args.python, "-m", "fittingroom.cli"]
    commands: dict[str, list[str]] = {
        "python -c pass": [args.python, "-c", "pass"],
        "fittingroom --help": [*cli, "--help"],
        "search --text": [*cli, "search", "--text", "hoodie"],
        "search --image": [*cli, "search", "--image", str(args.image)],
    }
    where: dict[str, tuple[dict[str, str], Path]] = {}
    if args.baseline is not None:
        for name in ["fittingroom --help", "search --text", "search --image"]:
            commands[f"{name} (baseline)"] = commands[name]
            where[f"{name} (baseline)"] = (dict(env, PYTHONPATH=str(args.baseline)), args.baseline)
    server: subprocess.Popen[str] | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    try:
        if not args.no_server:
            tmp = tempfile.TemporaryDirectory(prefix="fittingroom-cli-bench-")
            server_home = Path(tmp.name) / "home"
            shutil.copytree(home, server_home, ignore=shutil.ignore_patterns("models"))
            server, base = start_server(args.python, dict(env, FITTINGROOM_HOME=str(server_home)), args.cwd)
            commands["search --text --server"] = [*cli, "search", "--text", "hoodie", "--server", base]
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, cmd in commands.items():
                times[name].append(run_once(cmd, *where.get(name, (env, args.cwd))))
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        if tmp is not None:
            tmp.cleanup()
        if home_tmp is not None:
            home_tmp.cleanup()
    base_s = statistics.median(times["python -c pass"])
    rows = [
        {
            "command": name,
            "median_s": round(statistics.median(t), 3),
            "min_s": round(min(t), 3),
            "max_s": round(max(t), 3),
            "vs_python": round(statistics.median(t) / base_s, 1),
            "target_s": TARGETS_S.get(name),
            "vs_baseline": (
                round(statistics.median(t) / statistics.median(times[f"{name} (baseline)"]), 2)
                if f"{name} (baseline)" in times
                else None
            ),
        }
        for name, t in times.items()
    ]
    if args.as_json:
        print(json.dumps({"label": args.label, "runs": args.runs, "rows": rows}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"CLI cold start, {args.label} ({args.runs} runs each, wall seconds)")
    for col in ["command", "median", "min", "max", "x python -c pass", "x baseline", "target"]:
        table.add_column(col, justify="left" if col == "command" else "right", no_wrap=True)
    for r in rows:
        target = r["target_s"]
        mark = "" if target is None else (" ok" if r["median_s"] <= target else " missed")
        table.add_row(
            r["command"],
            f"{r['median_s']:.2f}",
            f"{r['min_s']:.2f}",
            f"{r['max_s']:.2f}",
            f"{r['vs_python']:.1f}",
            "" if r["vs_baseline"] is None else f"{r['vs_baseline']:.2f}",
            "" if target is None else f"<= {target}{mark}",
        )
    Console(width=max(120, Console().width)).print(table)


if __name__ == "__main__":
    main()
