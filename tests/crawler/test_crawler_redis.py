"""Distributed crawl: two crawler processes share one scrapy-redis queue and duplicate filter."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from crawler_helpers import REPO, crawler_env, read_jsonl

from crawler.testing import MirrorShop

pytest.importorskip(
    "scrapy_redis", reason="scrapy-redis not installed: pip install 'fittingroom[distributed]'"
)


@pytest.mark.real_data
def test_two_workers_share_the_queue(tmp_path: Path, luma_dir: Path, redis_url: str) -> None:
    n = 150
    # A slow shop (0.2 s a page, 2 at a time): the crawl outlasts a worker's start-up, so both work.
    with MirrorShop(luma_dir, n, delay=0.2) as shop:
        env = crawler_env(tmp_path / "home", REDIS_URL=redis_url)

        def start(i: int, flush: bool) -> subprocess.Popen[str]:
            args = [
                "crawl",
                shop.base_url,
                "-o",
                str(tmp_path / f"w{i}.jsonl"),
                "--no-images",
                "--json",
                "--redis-key",
                "test",
                "--per-domain",
                "2",
            ] + (["--redis-flush"] if flush else [])
            return subprocess.Popen(
                [sys.executable, "-c", "from fittingroom.cli import main; main()", *args],
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )

        first = start(1, True)
        deadline = time.monotonic() + 120
        while shop.requests == 0 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.1)  # the first worker has flushed the old queue and is crawling: the second joins
        second = start(2, False)
        outs = [p.communicate(timeout=300) for p in (first, second)]
        page_requests = shop.requests
    summaries = []
    for p, (out, err) in zip((first, second), outs, strict=True):
        assert p.returncode == 0, err[-3000:]
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    ids = [r.get("item_group_id") or r["id"] for i in (1, 2) for r in read_jsonl(tmp_path / f"w{i}.jsonl")]
    # every product crawled once, by one worker or the other; both workers did some of the work
    assert sorted(set(ids)) == sorted(p.sku for p in shop.products)
    assert sum(s["products"] for s in summaries) == n
    assert all(s["pages"] > 0 for s in summaries)
    # the shared duplicate filter: no page fetched by both workers (robots.txt is per worker)
    assert sum(s["pages"] for s in summaries) == page_requests
