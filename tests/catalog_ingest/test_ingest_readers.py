from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from catalog_ingest.readers import FeedError, FeedFormat, detect_format, read_feed


def test_csv_line_numbers_count_the_header_and_multiline_cells(tmp_path: Path) -> None:
    feed = tmp_path / "shop.csv"
    feed.write_text(
        "\ufeffid,title,description,price\n"
        'A1,Tee,"plain",10 USD\n'
        "\n"
        'A2,Hoodie,"two\nlines",\n'
        "A3, Shorts ,, 5 USD\n",
        encoding="utf-8",
    )
    rows = list(read_feed(feed))
    assert [line for line, _ in rows] == [2, 4, 6]
    assert rows[0][1] == {"id": "A1", "title": "Tee", "description": "plain", "price": "10 USD"}
    assert rows[1][1] == {"id": "A2", "title": "Hoodie", "description": "two\nlines"}  # empty price left out
    assert rows[2][1] == {"id": "A3", "title": "Shorts", "price": "5 USD"}


def test_tsv_and_gzip(tmp_path: Path) -> None:
    feed = tmp_path / "feed.tsv.gz"
    with gzip.open(feed, "wt", encoding="utf-8") as f:
        f.write("id\ttitle\tprice\nX\tA, B and C\t1.00 EUR\n")
    assert detect_format(feed) is FeedFormat.tsv
    assert list(read_feed(feed)) == [(2, {"id": "X", "title": "A, B and C", "price": "1.00 EUR"})]


def test_jsonl_reports_bad_lines_and_goes_on(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"id": "1"}\n\n{"id": \n[1, 2]\n{"id": "2", "variants": [{"color": "Red"}]}\n')
    errors: list[FeedError] = []
    rows = list(read_feed(feed, on_error=errors.append))
    assert rows == [(1, {"id": "1"}), (5, {"id": "2", "variants": [{"color": "Red"}]})]
    assert [(e.line, e.file) for e in errors] == [(3, str(feed)), (4, str(feed))]
    assert "invalid JSON" in errors[0].message
    assert "expected a JSON object" in errors[1].message
    assert str(errors[0]).startswith(f"{feed}:3: ")


def test_without_on_error_a_bad_line_raises_with_file_and_line(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"id": "1"}\nnot json\n')
    with pytest.raises(FeedError, match=r"feed\.jsonl:2: invalid JSON"):
        list(read_feed(feed))


def test_csv_row_with_extra_cells_is_reported(tmp_path: Path) -> None:
    feed = tmp_path / "f.csv"
    feed.write_text("id,title\n1,a\n2,b,surplus\n3,c\n")
    errors: list[FeedError] = []
    rows = list(read_feed(feed, on_error=errors.append))
    assert [r[1]["id"] for r in rows] == ["1", "3"]
    assert errors[0].line == 3 and "3 cells" in errors[0].message


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.csv", "id,title\n", FeedFormat.csv),
        ("a.tsv", "id\ttitle\n", FeedFormat.tsv),
        ("a.jsonl", "{}\n", FeedFormat.jsonl),
        ("a.ndjson", "{}\n", FeedFormat.jsonl),
        ("feed.txt", "id\ttitle\timage_link\n", FeedFormat.tsv),  # Merchant Center .txt feeds
        ("feed.txt", "id,title\n", FeedFormat.csv),
        ("feed", '{"id": 1}\n', FeedFormat.jsonl),
    ],
)
def test_detect_format(tmp_path: Path, name: str, content: str, expected: FeedFormat) -> None:
    p = tmp_path / name
    p.write_text(content)
    assert detect_format(p) is expected


def test_empty_and_missing_feeds(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n")
    with pytest.raises(FeedError, match="no header"):
        list(read_feed(empty))
    with pytest.raises(FeedError, match="cannot open"):
        list(read_feed(tmp_path / "missing.csv"))
