"""Feed readers: CSV, TSV and JSONL product feeds -> ``(line_number, record)``.

Line numbers are 1-based physical lines of the file, the way an editor shows them: in
CSV/TSV the header is line 1 and a record spanning several lines (a quoted field with
newlines) reports the line it starts on. Files ending in ``.gz`` are decompressed on the
fly.

Text encoding (never a byte-offset abort):

* a byte-order mark decides: UTF-8, UTF-16 LE/BE or UTF-32 LE/BE;
* without one, NUL bytes at the start (what one buffered read gives, at most 64 KiB) mean
  UTF-16/UTF-32, the byte order from where the NULs sit (e.g. ``'A\\0'`` is UTF-16 LE);
* otherwise every line is decoded as strict UTF-8, and a line that is not UTF-8 is decoded as
  **Windows-1252** (cp1252, a superset of latin-1's printable characters; the five bytes cp1252
  leaves undefined are read as latin-1), the encoding of spreadsheet exports on Western systems.
  The first such line is logged as a warning.

A line UTF-16/32 cannot decode is reported (``on_error``) with its line number and skipped.

Size limits (each reported as a bad row ``FILE:LINE`` and skipped; the other rows go in):

* ``MAX_FIELD_CHARS`` (65,536) characters per cell / JSON string value (a 100 MB description is
  refused, not stored). csv's own field limit (131,072) is reported the same way;
* ``MAX_LINE_BYTES`` (4 MiB) per physical line (a JSONL record, a CSV line); the line is read in
  bounded pieces and skipped.

CSV/TSV values are stripped; empty cells are left out of the record, so "missing" and
"empty" look the same to the mapper; the cells of a repeated column name are joined with
commas. JSONL records are passed through as parsed.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Record = dict[str, Any]

#: Characters allowed in one CSV/TSV cell or one JSON string value of a feed.
MAX_FIELD_CHARS = 65_536
#: Bytes allowed in one physical line of a feed file.
MAX_LINE_BYTES = 4 * 1024 * 1024
#: Bytes looked at to tell UTF-16/32 without a byte-order mark.
_SNIFF_BYTES = 64 * 1024

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")


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


def _open_binary(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115


def sniff_encoding(head: bytes) -> tuple[str | None, int]:
    """``(encoding, bom_length)`` of a feed from its first bytes (see the module docstring).

    ``encoding`` is a codec name for BOM'd or NUL-containing text, None for "UTF-8, else
    cp1252 per line"; ``bom_length`` is the number of leading bytes to skip.
    """
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name, len(bom)
    if b"\0" not in head:
        return None, 0
    units = [head[i::4] for i in range(4)]
    all_zero = [len(u) > 0 and u.count(0) == len(u) for u in units]
    if all_zero[2] and all_zero[3]:
        return "utf-32-le", 0
    if all_zero[0] and all_zero[1]:
        return "utf-32-be", 0
    even, odd = head[0::2].count(0), head[1::2].count(0)
    return ("utf-16-be", 0) if even > odd else ("utf-16-le", 0)


class _TextLines:
    """An iterator of decoded lines over a binary feed, with line-level error reporting.

    Problems of one line (too long, undecodable) are recorded in ``problems`` keyed by the line
    number and the line is replaced by an empty line, so csv and the JSONL reader keep their
    line numbers and skip it; ``read_feed`` reports them.
    """

    def __init__(self, f: io.BufferedIOBase, max_line_bytes: int) -> None:
        self._f = f
        self._limit = max_line_bytes
        head = f.peek(_SNIFF_BYTES)[:_SNIFF_BYTES] if hasattr(f, "peek") else b""
        self.encoding, skip = sniff_encoding(head)
        if skip:
            f.read(skip)
        self.line_no = 0
        #: ``"`` characters handed out since the reader last reset it (CSV quote parity).
        self.quotes = 0
        self.problems: dict[int, str] = {}
        self.fallback_line: int | None = None
        self._pending: list[str] = []
        self._lines = self._decoded()

    def __iter__(self) -> _TextLines:
        return self

    def __next__(self) -> str:
        if self._pending:
            item = self._pending.pop(0)
        else:
            line = next(self._lines)
            parts = _LONE_CR.split(line) if "\r" in line else [line]
            self._pending = [p for p in parts[1:] if p]
            item = parts[0]
        self.quotes += item.count('"')
        return item

    def _decoded(self) -> Iterator[str]:
        if self.encoding in (None, "utf-8"):
            yield from self._utf8_lines()
        else:
            yield from self._wide_lines(str(self.encoding))

    def _raw_lines(self, newline: bytes, width: int) -> Iterator[bytes | None]:
        """Raw lines ending in ``newline`` (aligned to ``width``-byte code units); None for a
        line over the limit (already drained)."""
        buf = b""
        while True:
            chunk = self._f.read(64 * 1024)
            buf += chunk
            while True:
                idx = _find_aligned(buf, newline, width)
                if idx < 0:
                    break
                end = idx + len(newline)
                line, buf = buf[:end], buf[end:]
                yield None if len(line) > self._limit else line
            if len(buf) > self._limit:
                # drain the rest of this over-long line
                while True:
                    chunk = self._f.read(64 * 1024)
                    if not chunk:
                        yield None
                        return
                    idx = _find_aligned(chunk, newline, width, start_offset=len(buf))
                    buf += chunk
                    if idx >= 0:
                        buf = buf[idx + len(newline) :]
                        yield None
                        break
                    buf = buf[-width:] if len(buf) % width == 0 else buf[-(len(buf) % width) :]
                continue
            if not chunk:
                if buf:
                    yield buf
                return

    def _utf8_lines(self) -> Iterator[str]:
        for raw in self._raw_lines(b"\n", 1):
            self.line_no += 1
            if raw is None:
                self.problems[self.line_no] = f"line longer than {self._limit} bytes"
                yield "\n"
                continue
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                if self.fallback_line is None:
                    self.fallback_line = self.line_no
                try:
                    yield raw.decode("cp1252")
                except UnicodeDecodeError:
                    yield raw.decode("latin-1")

    def _wide_lines(self, encoding: str) -> Iterator[str]:
        width = 4 if encoding.startswith("utf-32") else 2
        newline = "\n".encode(encoding)
        for raw in self._raw_lines(newline, width):
            self.line_no += 1
            if raw is None:
                self.problems[self.line_no] = f"line longer than {self._limit} bytes"
                yield "\n"
                continue
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as exc:
                self.problems[self.line_no] = f"not valid {encoding.upper()} text: {exc.reason}"
                yield "\n"


def _find_aligned(buf: bytes, needle: bytes, width: int, start_offset: int = 0) -> int:
    """Index (relative to ``buf``) of ``needle`` at a multiple of ``width`` (counted from
    ``-start_offset``), or -1."""
    pos = 0
    while True:
        idx = buf.find(needle, pos)
        if idx < 0:
            return -1
        if (idx + start_offset) % width == 0:
            return idx
        pos = idx + 1


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
        with _open_binary(p) as f:
            head = next(iter(_TextLines(f, MAX_LINE_BYTES)), "")
    except OSError as exc:
        raise FeedError(p, None, f"cannot read feed: {exc}") from exc
    if head.lstrip().startswith("{"):
        return FeedFormat.jsonl
    return FeedFormat.tsv if "\t" in head else FeedFormat.csv


def read_feed(
    path: str | Path,
    fmt: FeedFormat | str | None = None,
    *,
    on_error: Callable[[FeedError], None] | None = None,
    max_field_chars: int = MAX_FIELD_CHARS,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[tuple[int, Record]]:
    """Yield ``(line_number, record)`` for every record of a feed file.

    A record that cannot be parsed (invalid JSON, a JSON value that is not an object, a
    CSV row with more cells than the header, a cell over ``max_field_chars`` characters, a line
    over ``max_line_bytes`` bytes or one its encoding cannot decode) is passed to ``on_error``
    as a FeedError and skipped; without ``on_error`` the FeedError is raised. Raises FeedError
    when the file cannot be opened or read, or a CSV/TSV file has no header.
    """
    p = Path(path)
    feed_format = FeedFormat(fmt) if fmt is not None else detect_format(p)

    def report(err: FeedError) -> None:
        if on_error is None:
            raise err
        on_error(err)

    try:
        f = _open_binary(p)
    except OSError as exc:
        raise FeedError(p, None, f"cannot open feed: {exc}") from exc
    with f:
        try:
            lines = _TextLines(f, max_line_bytes)
            if feed_format is FeedFormat.jsonl:
                yield from _read_jsonl(p, lines, report, max_field_chars)
            else:
                delimiter = "\t" if feed_format is FeedFormat.tsv else ","
                yield from _read_delimited(p, lines, delimiter, report, max_field_chars)
        except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
            raise FeedError(p, None, f"cannot read feed: {exc}") from exc
    if lines.fallback_line is not None:
        log.warning("%s:%d: not UTF-8; such lines were read as Windows-1252", p, lines.fallback_line)


def _line_problem(path: Path, lines: _TextLines, first: int, last: int) -> FeedError | None:
    for n in range(first, last + 1):
        if n in lines.problems:
            return FeedError(path, n, lines.problems.pop(n))
    return None


def _oversized(value: Any, limit: int, name: str = "") -> str | None:
    """The name of the first string in ``value`` (nested) longer than ``limit``, else None."""
    if isinstance(value, str):
        return name if len(value) > limit else None
    if isinstance(value, dict):
        for k, v in value.items():
            found = _oversized(v, limit, f"{name}.{k}" if name else str(k))
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _oversized(v, limit, f"{name}[{i}]")
            if found is not None:
                return found
    return None


def _read_jsonl(
    path: Path, lines: _TextLines, report: Callable[[FeedError], None], max_chars: int
) -> Iterator[tuple[int, Record]]:
    for line_no, line in enumerate(lines, start=1):
        problem = _line_problem(path, lines, line_no, line_no)
        if problem is not None:
            report(problem)
            continue
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            report(FeedError(path, line_no, f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        except RecursionError:
            report(FeedError(path, line_no, "invalid JSON: nested too deeply"))
            continue
        if not isinstance(value, dict):
            report(FeedError(path, line_no, f"expected a JSON object, got {type(value).__name__}"))
            continue
        big = _oversized(value, max_chars)
        if big is not None:
            report(
                FeedError(
                    path, line_no, f"field {big!r} is over the field size limit ({max_chars} characters)"
                )
            )
            continue
        yield line_no, value


def _read_delimited(
    path: Path,
    lines: _TextLines,
    delimiter: str,
    report: Callable[[FeedError], None],
    max_chars: int,
) -> Iterator[tuple[int, Record]]:
    kind = "TSV" if delimiter == "\t" else "CSV"
    reader = csv.reader(lines, delimiter=delimiter)
    header: list[str] | None = None
    last_line = 0
    skipped = 0  # lines read past csv (the rest of an oversized quoted cell)
    while True:
        start = last_line + 1
        lines.quotes = 0
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "field limit" in str(exc) and lines.quotes % 2:
                # csv stopped inside a quoted cell: skip to the line that closes it, so its
                # remaining lines are not read as rows
                for _ in lines:
                    skipped += 1
                    if lines.quotes % 2 == 0:
                        break
            last_line = reader.line_num + skipped
            problem = _line_problem(path, lines, start, last_line)
            if "field limit" in str(exc):
                report(
                    FeedError(
                        path,
                        start,
                        f"a cell is over csv's field size limit ({csv.field_size_limit()} characters)",
                    )
                )
            else:
                report(problem or FeedError(path, start, f"malformed {kind}: {exc}"))
            continue
        last_line = reader.line_num + skipped
        problem = _line_problem(path, lines, start, last_line)
        if problem is not None:
            if header is None and start == 1:
                raise problem
            report(problem)
            continue
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
        big = next((i for i, c in enumerate(row) if len(c) > max_chars), None)
        if big is not None:
            name = header[big] if big < len(header) and header[big] else f"#{big + 1}"
            report(
                FeedError(path, start, f"cell {name!r} is over the field size limit ({max_chars} characters)")
            )
            continue
        record: Record = {}
        for h, cell in zip(header, row, strict=False):
            value = cell.strip()
            if not h or not value:
                continue
            # a repeated column (Merchant Center allows several additional_image_link columns)
            record[h] = f"{record[h]},{value}" if h in record else value
        yield start, record
    if header is None:
        raise FeedError(path, None, "feed is empty: no header row")
