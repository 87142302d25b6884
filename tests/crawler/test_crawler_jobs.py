"""The crawl job body (``crawler.jobs``) without a real crawl: a stand-in ``python`` plays the
crawl subprocess (progress file, summary, feed, exit status), the ingest body is recorded."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from catalog_ingest.jobs import JobFailed
from crawler.jobs import check_crawl_target, crawl_command, crawl_runner, default_source
from fittingroom.catalog.jobs import JobKind, JobRecord


def fake_python(tmp_path: Path, body: str) -> str:
    """An executable standing in for ``python -m fittingroom.cli crawl ...``: ``body`` is shell
    with ``$OUT`` (the job folder, from the -o path) set."""
    script = tmp_path / "fake-python"
    script.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$prev" in -o) OUT=$(dirname "$a");; esac; prev="$a"; done\n' + body
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def crawl_job(**params: Any) -> JobRecord:
    return JobRecord(
        kind=JobKind.crawl,
        source="shop",
        params={"url": "https://shop.example/", "max_pages": 10, "max_depth": 3} | params,
    )


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None, dict | None]] = []

    def __call__(self, done: int, total: int | None, detail: dict | None = None) -> None:
        self.calls.append((done, total, detail))


def test_the_crawl_command_line() -> None:
    cmd = crawl_command(crawl_job(), Path("/w/j1"), python="py")
    assert cmd[:5] == ["py", "-m", "fittingroom.cli", "crawl", "https://shop.example/"]
    joined = " ".join(cmd)
    assert "--shop shop --max-pages 10 --max-depth 3 -o /w/j1/crawl.jsonl --no-images" in joined
    assert "--progress-file /w/j1/progress.json --json" in joined


def test_a_crawl_then_its_feed_ingested_with_a_merged_report(tmp_path: Path) -> None:
    feed_line = json.dumps({"id": "A1", "title": "Tee", "link": "https://shop.example/a1"})
    python = fake_python(
        tmp_path,
        f"""echo '{{"pages": 4, "products": 1, "failed_urls": [{{"url": "https://shop.example/x", "reason": "http_500"}}]}}' > $OUT/progress.json
echo '{feed_line}' > $OUT/crawl.jsonl
sleep 0.3
echo 'log line'
echo '{{"pages": 4, "products": 1}}'
""",
    )
    ingested: list[JobRecord] = []

    def ingest(job: JobRecord, progress: Any) -> dict:
        ingested.append(job)
        assert Path(job.params["feed"]).read_text().strip() == feed_line
        progress(1, 1)
        return {"new": 1, "updated": 0, "unchanged": 0, "bad_rows": []}

    rec = Recorder()
    run = crawl_runner(ingest, work_dir=tmp_path / "w", home=tmp_path / "home", poll_s=0.05, python=python)
    report = run(crawl_job(), rec)
    assert report["new"] == 1 and report["phase"] == "done"
    assert report["pages"] == 4 and report["products"] == 1 and report["crawl"] == {"pages": 4, "products": 1}
    assert report["failed_urls"] == [{"url": "https://shop.example/x", "reason": "http_500"}]
    assert ingested[0].kind is JobKind.ingest and ingested[0].source == "shop"
    assert rec.calls[0] == (0, 10, {"phase": "crawl", "pages": 0, "products": 0, "failed_urls": []})
    assert (4, 10) in [(d, t) for d, t, _ in rec.calls]  # pages of max_pages while crawling
    assert rec.calls[-1][:2] == (1, 1) and rec.calls[-1][2]["phase"] == "ingest"
    assert not (tmp_path / "w" / ingested[0].id).exists()


def test_a_crawl_without_products_skips_the_ingest(tmp_path: Path) -> None:
    python = fake_python(tmp_path, 'echo \'{"pages": 1, "products": 0}\'\n')
    run = crawl_runner(
        lambda job, p: pytest.fail("no ingest"), work_dir=tmp_path / "w", home=tmp_path, python=python
    )
    report = run(crawl_job(), Recorder())
    assert (report["new"], report["crawl"]["pages"]) == (0, 1)


def test_a_failing_crawl_fails_the_job_with_its_last_log_lines(tmp_path: Path) -> None:
    python = fake_python(tmp_path, "echo 'Error: start URL refused' >&2\nexit 2\n")
    run = crawl_runner(lambda job, p: {}, work_dir=tmp_path / "w", home=tmp_path, python=python)
    with pytest.raises(JobFailed, match=r"the crawl failed \(exit 2\): Error: start URL refused"):
        run(crawl_job(), Recorder())


def test_a_crawl_past_its_timeout_or_at_shutdown_is_killed(tmp_path: Path) -> None:
    python = fake_python(tmp_path, "echo $$ > $OUT/pid\nexec sleep 30\n")
    run = crawl_runner(
        lambda job, p: {}, work_dir=tmp_path / "w", home=tmp_path, timeout_s=0.5, poll_s=0.05, python=python
    )
    job = crawl_job()
    with pytest.raises(JobFailed, match="timed out after 0.5 s"):
        run(job, Recorder())
    pid = int((tmp_path / "w" / job.id / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed, and reaped

    stop = threading.Event()
    stop.set()
    run = crawl_runner(
        lambda job, p: {}, work_dir=tmp_path / "w", home=tmp_path, stop=stop, poll_s=0.05, python=python
    )
    with pytest.raises(JobFailed, match="the crawl stopped"):
        run(crawl_job(), Recorder())


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://shop.example/", True),
        ("http://127.0.0.1/", False),
        ("http://localhost.test/", False),  # resolves to loopback
        ("http://[fe80::1]/", False),
        ("http://192.168.1.10:8080/", False),
        ("http://169.254.169.254/latest/", False),
    ],
)
def test_crawl_targets(url: str, allowed: bool) -> None:
    addresses = {"shop.example": ["93.184.216.34"], "localhost.test": ["127.0.0.1"]}

    def resolver(host: str, port: int) -> list[str]:
        return addresses[host]

    if allowed:
        assert check_crawl_target(url, resolver=resolver) == url
    else:
        with pytest.raises(ValueError, match="private or local address"):
            check_crawl_target(url, resolver=resolver)
        assert check_crawl_target(url, allow_private=True, resolver=resolver) == url


def test_default_source_names() -> None:
    assert default_source("https://www.Shop.example:8443/x") == "shop.example"
    assert default_source("http://127.0.0.1:9/") == "127.0.0.1"
