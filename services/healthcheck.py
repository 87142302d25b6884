"""Container health check: ``python -m services.healthcheck URL [--allow STATUS ...]``.

Exits 0 when ``GET URL`` answers 200, or answers 503 with a JSON ``status`` listed in
``--allow`` (e.g. the retrieval service's ``no_index`` before the first ingest: the
process and its models are up, the catalog is simply empty, and restarting would not
help). Exits 1 otherwise, printing why. Standard library only, so it runs in any of
the Python images without importing the services.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request


def check(url: str, allow: list[str], timeout: float = 4.0) -> tuple[bool, str]:
    """(healthy, reason) of one GET of ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return True, f"{resp.status}"
    except urllib.error.HTTPError as exc:
        try:
            status = json.load(exc).get("status")
        except (ValueError, AttributeError):
            status = None
        if exc.code == 503 and status in allow:
            return True, f"503 {status} (allowed)"
        return False, f"{exc.code} {status or exc.reason}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return False, f"unreachable: {exc}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8000/healthz")
    parser.add_argument(
        "--allow", action="append", default=[], help="503 JSON status that counts as healthy."
    )
    parser.add_argument("--timeout", type=float, default=4.0)
    args = parser.parse_args(argv)
    healthy, reason = check(args.url, args.allow, args.timeout)
    print(f"{args.url}: {reason}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
