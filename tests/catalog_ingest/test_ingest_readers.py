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


# ---- hardening: oversized cells, encodings, long lines (issue 19) -----------------------------


def test_a_cell_over_csvs_field_limit_is_a_bad_row_and_the_other_rows_go_in(tmp_path: Path) -> None:
    feed = tmp_path / "big.csv"
    feed.write_text(f'id,title\n1,a\n2,"{"x" * 200_000}"\n3,c\n', encoding="utf-8")
    errors: list[FeedError] = []
    rows = list(read_feed(feed, on_error=errors.append))
    assert [r[1]["id"] for r in rows] == ["1", "3"]
    assert [e.line for e in errors] == [3]
    assert "field size limit" in errors[0].message
    assert str(errors[0]).startswith(f"{feed}:3: ")


def test_the_rest_of_an_oversized_multiline_cell_is_not_read_as_rows(tmp_path: Path) -> None:
    feed = tmp_path / "big.csv"
    cell = ("x" * 1000 + "\n") * 200  # 200 lines, 200,200 characters: over csv's limit
    feed.write_text(f'id,title\n1,a\n2,"{cell}say ""hi""",x\n3,c\n', encoding="utf-8")
    errors: list[FeedError] = []
    rows = list(read_feed(feed, on_error=errors.append))
    assert rows == [(2, {"id": "1", "title": "a"}), (204, {"id": "3", "title": "c"})]
    assert [e.line for e in errors] == [3]


def test_a_field_over_the_documented_limit_is_a_bad_row(tmp_path: Path) -> None:
    feed = tmp_path / "desc.csv"
    feed.write_text(f"id,title,description\n1,a,{'d' * 70_000}\n2,b,short\n", encoding="utf-8")
    errors: list[FeedError] = []
    rows = list(read_feed(feed, on_error=errors.append))
    assert rows == [(3, {"id": "2", "title": "b", "description": "short"})]
    assert errors[0].line == 2 and "'description'" in errors[0].message and "65536" in errors[0].message
    # a smaller limit is a parameter
    assert [r[0] for r in read_feed(feed, on_error=errors.append, max_field_chars=4)] == []


def test_jsonl_field_limits_reach_nested_values(tmp_path: Path) -> None:
    feed = tmp_path / "f.jsonl"
    feed.write_text(
        '{"id": "1", "variants": [{"color": "' + "r" * 70_000 + '"}]}\n{"id": "2", "description": "ok"}\n'
    )
    errors: list[FeedError] = []
    rows = list(read_feed(feed, on_error=errors.append))
    assert rows == [(2, {"id": "2", "description": "ok"})]
    assert errors[0].line == 1 and "variants[0].color" in errors[0].message


def test_a_line_over_the_line_limit_is_skipped_in_bounded_pieces(tmp_path: Path) -> None:
    feed = tmp_path / "long.jsonl"
    feed.write_text('{"id": "1"}\n{"id": "' + "z" * 5000 + '"}\n{"id": "3"}\n')
    errors: list[FeedError] = []
    rows = list(read_feed(feed, on_error=errors.append, max_line_bytes=1024))
    assert [line for line, _ in rows] == [1, 3]
    assert errors[0].line == 2 and "longer than 1024 bytes" in errors[0].message


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_8_bit_feeds_are_decoded_as_windows_1252(tmp_path: Path, encoding: str) -> None:
    feed = tmp_path / "legacy.csv"
    title = "Café crème – “Señor”" if encoding == "cp1252" else "Café crème Señor Müller"
    feed.write_bytes(f"id,title\n1,plain\n2,{title}\n".encode(encoding))
    assert list(read_feed(feed)) == [(2, {"id": "1", "title": "plain"}), (3, {"id": "2", "title": title})]


def test_utf8_lines_stay_utf8_next_to_a_latin1_line(tmp_path: Path) -> None:
    feed = tmp_path / "mixed.csv"
    feed.write_bytes("id,title\n1,Crème\n".encode() + "2,Crème\n".encode("latin-1"))
    assert [r["title"] for _, r in read_feed(feed)] == ["Crème", "Crème"]


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-16", True), ("utf-16-le", False), ("utf-16-be", False), ("utf-32", True), ("utf-32-le", False)],
)
def test_utf16_and_utf32_feeds_are_decoded(tmp_path: Path, encoding: str, bom: bool) -> None:
    feed = tmp_path / "wide.tsv"
    feed.write_bytes("id\ttitle\n1\tCafé 日本\n2\tb\n".encode(encoding))  # "utf-16"/"utf-32" write a BOM
    assert list(read_feed(feed)) == [(2, {"id": "1", "title": "Café 日本"}), (3, {"id": "2", "title": "b"})]
    assert detect_format(tmp_path / "wide.tsv") is FeedFormat.tsv


def test_an_undecodable_utf16_line_is_reported_with_its_line_number(tmp_path: Path) -> None:
    feed = tmp_path / "broken.csv"
    good = "id,title\n1,a\n".encode("utf-16")
    bad = "2,".encode("utf-16-le") + b"\x00\xd8" + "x\n".encode("utf-16-le")  # a lone high surrogate
    feed.write_bytes(good + bad + "3,c\n".encode("utf-16-le"))
    errors: list[FeedError] = []
    rows = list(read_feed(feed, on_error=errors.append))
    assert [r[1]["id"] for r in rows] == ["1", "3"]
    assert errors[0].line == 3 and "UTF-16-LE" in errors[0].message


def test_gzip_utf16_and_a_broken_gzip_is_a_feed_error(tmp_path: Path) -> None:
    feed = tmp_path / "f.csv.gz"
    feed.write_bytes(gzip.compress("id,title\n1,é\n".encode("utf-16")))
    assert list(read_feed(feed)) == [(2, {"id": "1", "title": "é"})]
    broken = tmp_path / "b.csv.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(FeedError, match="cannot read feed"):
        list(read_feed(broken, on_error=lambda e: None))
