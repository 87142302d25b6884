"""Feed readers: CSV, TSV and JSONL product feeds -> ``(line_number, record)``.

Line numbers are 1-based physical lines of the file, the way an editor shows them: in
CSV/TSV the header is line 1 and a record spanning several lines (a quoted field with
newlines) reports the line it starts on. Files ending in ``.gz`` are decompressed on the
fly. Text is UTF-8 (a byte-order mark is ignored).

CSV/TSV values are stripped; empty cells are left out of the record, so "missing" and
"empty" look the same to the mapper; the cells of a repeated column name are joined with
commas. JSONL records are passed through as parsed.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

Record = dict[str, Any]


class FeedFormat(StrEnum):
    """Feed file formats ``read_feed`` understands."""

    csv = "csv"
    tsv = "tsv"
    jsonl = "jsonl"


class FeedError(ValueError):
    """A problem at one place of a feed file; ``str()`` is ``'file:line: message'``."""

    def __init__(self, file: str | Path, line: int | None, message: str) -> None:
        self.file = str(file)
        self.line = line
        self.message = message
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: {message}")


_SUFFIXES = {
    ".csv": FeedFormat.csv,
    ".tsv": FeedFormat.tsv,
    ".tab": FeedFormat.tsv,
    ".jsonl": FeedFormat.jsonl,
    ".ndjson": FeedFormat.jsonl,
}


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def detect_format(path: str | Path) -> FeedFormat:
    """Format from the file name (``.csv``, ``.tsv``/``.tab``, ``.jsonl``/``.ndjson``, optionally ``.gz``),
    else from the content: ``{`` starts JSONL, a tab in the header line means TSV, otherwise CSV
    (``.txt`` Merchant Center feeds are usually TSV).

    Raises FeedError when the file cannot be read.
    """
    p = Path(path)
    suffix = Path(p.stem).suffix if p.suffix == ".gz" else p.suffix
    if suffix.lower() in _SUFFIXES:
        return _SUFFIXES[suffix.lower()]
    try:
        with _open_text(p) as f:
            head = f.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise FeedError(p, None, f"cannot read feed: {exc}") from exc
    if head.lstrip().startswith("{"):
        return FeedFormat.jsonl
    return FeedFormat.tsv if "\t" in head else FeedFormat.csv


def read_feed(
    path: str | Path,
    fmt: FeedFormat | str | None = None,
    *,
    on_error: Callable[[FeedError], None] | None = None,
) -> Iterator[tuple[int, Record]]:
    """Yield ``(line_number, record)`` for every record of a feed file.

    A record that cannot be parsed (invalid JSON, a JSON value that is not an object, a
    CSV row with more cells than the header) is passed to ``on_error`` as a FeedError and
    skipped; without ``on_error`` the FeedError is raised. Raises FeedError when the file
    cannot be opened or a CSV/TSV file has no header.
    """
    p = Path(path)
    feed_format = FeedFormat(fmt) if fmt is not None else detect_format(p)

    def report(err: FeedError) -> None:
        if on_error is None:
            raise err
        on_error(err)

    try:
        f = _open_text(p)
    except OSError as exc:
        raise FeedError(p, None, f"cannot open feed: {exc}") from exc
    with f:
        try:
            if feed_format is FeedFormat.jsonl:
                yield from _read_jsonl(p, f, report)
            else:
                yield from _read_delimited(p, f, "\t" if feed_format is FeedFormat.tsv else ",", report)
        except UnicodeDecodeError as exc:
            raise FeedError(p, None, f"not UTF-8 text: {exc}") from exc


def _read_jsonl(path: Path, f: IO[str], report: Callable[[FeedError], None]) -> Iterator[tuple[int, Record]]:
    for line_no, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            report(FeedError(path, line_no, f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        if not isinstance(value, dict):
            report(FeedError(path, line_no, f"expected a JSON object, got {type(value).__name__}"))
            continue
        yield line_no, value


def _read_delimited(
    path: Path, f: IO[str], delimiter: str, report: Callable[[FeedError], None]
) -> Iterator[tuple[int, Record]]:
    reader = csv.reader(f, delimiter=delimiter)
    header: list[str] | None = None
    last_line = 0
    try:
        for row in reader:
            start, last_line = last_line + 1, reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if header is None:
                header = [h.strip() for h in row]
                if not any(header):
                    raise FeedError(path, start, "empty header row")
                continue
            if len(row) > len(header) and any(c.strip() for c in row[len(header) :]):
                report(FeedError(path, start, f"row has {len(row)} cells, the header has {len(header)}"))
                continue
            record: Record = {}
            for h, cell in zip(header, row, strict=False):
                value = cell.strip()
                if not h or not value:
                    continue
                # a repeated column (Merchant Center allows several additional_image_link columns)
                record[h] = f"{record[h]},{value}" if h in record else value
            yield start, record
    except csv.Error as exc:
        raise FeedError(
            path, reader.line_num, f"malformed {'TSV' if delimiter == chr(9) else 'CSV'}: {exc}"
        ) from exc
    if header is None:
        raise FeedError(path, None, "feed is empty: no header row")
