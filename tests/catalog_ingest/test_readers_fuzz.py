"""Fuzz tier of the feed reader (hypothesis): any bytes are rows or FILE:LINE errors, never a
crash; rows written in UTF-8, UTF-16 or Windows-1252 read back as written."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog_ingest.readers import FeedError, FeedFormat, read_feed

pytestmark = pytest.mark.fuzz

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = ["id", "title", "description"]

# text a cell can hold: any character but NUL and surrogates
cell_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
# Windows-1252 text that cannot be mistaken for UTF-8: ASCII and U+00C0..U+00FF
cp1252_text = st.text(
    st.one_of(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.characters(min_codepoint=0xC0, max_codepoint=0xFF),
    ),
    max_size=40,
)


def write(data: bytes, suffix: str) -> Path:
    with tempfile.NamedTemporaryFile("wb", suffix=suffix, delete=False) as f:
        f.write(data)
    return Path(f.name)


def read_all(path: Path, fmt: FeedFormat, **kw: int) -> tuple[list[tuple[int, dict]], list[FeedError]]:
    errors: list[FeedError] = []
    try:
        rows = list(read_feed(path, fmt, on_error=errors.append, **kw))
    except FeedError as exc:  # the whole file (no header, cannot be read): also FILE[:LINE]
        errors.append(exc)
        rows = []
    finally:
        path.unlink()
    return rows, errors


@FUZZ
@given(data=st.binary(max_size=2000), fmt=st.sampled_from(list(FeedFormat)))
def test_any_bytes_are_rows_or_reported_errors(data: bytes, fmt: FeedFormat) -> None:
    path = write(data, f".{fmt.value}")
    name = str(path)
    rows, errors = read_all(path, fmt, max_field_chars=50, max_line_bytes=500)
    lines = [line for line, _ in rows]
    assert lines == sorted(set(lines)) and all(n >= 1 for n in lines)
    for _, record in rows:
        assert isinstance(record, dict) and all(isinstance(k, str) for k in record)
        if fmt is not FeedFormat.jsonl:
            assert all(isinstance(v, str) and len(v) <= 50 for v in record.values())
    for err in errors:
        assert err.file == name and (err.line is None or err.line >= 1)
        assert str(err).startswith(name)


@FUZZ
@given(
    rows=st.lists(st.tuples(cell_text, cell_text, cell_text), max_size=8),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32"]),
    delimiter=st.sampled_from([",", "\t"]),
)
def test_unicode_rows_read_back_in_every_unicode_encoding(
    rows: list[tuple[str, str, str]], encoding: str, delimiter: str
) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(HEADER)
    writer.writerows(rows)
    path = write(buf.getvalue().encode(encoding), ".csv" if delimiter == "," else ".tsv")
    got, errors = read_all(path, FeedFormat.csv if delimiter == "," else FeedFormat.tsv)
    assert errors == []
    expected = [
        {h: c.strip() for h, c in zip(HEADER, row, strict=True) if c.strip()}
        for row in rows
        if any(c.strip() for c in row)
    ]
    assert [record for _, record in got] == expected


@FUZZ
@given(rows=st.lists(st.tuples(cp1252_text, cp1252_text), min_size=1, max_size=8))
def test_windows_1252_rows_read_back(rows: list[tuple[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["id", "title"])
    writer.writerows(rows)
    path = write(buf.getvalue().encode("cp1252"), ".csv")
    got, errors = read_all(path, FeedFormat.csv)
    assert errors == []
    expected = [
        {h: c.strip() for h, c in zip(["id", "title"], row, strict=True) if c.strip()}
        for row in rows
        if any(c.strip() for c in row)
    ]
    assert [record for _, record in got] == expected


@FUZZ
@given(records=st.lists(st.dictionaries(st.sampled_from(HEADER), cell_text, min_size=1), max_size=6))
def test_jsonl_records_read_back_and_oversized_ones_are_reported(records: list[dict[str, str]]) -> None:
    text = "".join(json.dumps(r) + "\n" for r in records)
    path = write(text.encode("utf-8"), ".jsonl")
    got, errors = read_all(path, FeedFormat.jsonl, max_field_chars=20)
    big = [i + 1 for i, r in enumerate(records) if any(len(v) > 20 for v in r.values())]
    assert [e.line for e in errors] == big
    assert got == [(i + 1, r) for i, r in enumerate(records) if i + 1 not in big]
