"""SQLite-specific behaviour (the shared behaviour is in test_store_contract.py)."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fittingroom.catalog.models import ImageRecord, Product, vector_id_for
from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.catalog.store import open_store


def product(pid: str) -> Product:
    sha = pid.encode().hex().ljust(64, "0")
    return Product(
        source="s",
        id=pid,
        title=f"T {pid}",
        images=[ImageRecord(url=f"{pid}.jpg", sha256=sha, vector_id=vector_id_for("s", pid, sha))],
    )


def test_open_store_uri_and_read_only_mode(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "catalog.db"
    with open_store(f"sqlite:///{db}") as store:
        assert isinstance(store, SQLiteStore)
        store.upsert_products([product("A")])
    with open_store(f"sqlite:///{db}", read_only=True) as ro:
        assert ro.get_product("s", "A") is not None
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            ro.upsert_products([product("B")])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SQLiteStore(tmp_path / "missing.db", read_only=True)
    with pytest.raises(ValueError, match="unknown store URI"):
        open_store("postgres://x")


def test_wal_mode_and_concurrent_readers(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "c.db") as store:
        store.upsert_products([product(f"P{i}") for i in range(50)])
        assert store._conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with ThreadPoolExecutor(4) as pool:  # one connection per thread
            got = list(pool.map(lambda i: store.get_product("s", f"P{i}"), range(50)))
        assert [p.id for p in got if p] == [f"P{i}" for i in range(50)]
        # a second process-like handle sees committed writes
        with SQLiteStore(tmp_path / "c.db", read_only=True) as reader:
            store.upsert_products([product("NEW")])
            assert reader.get_product("s", "NEW") is not None


def test_iterating_while_writing(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "c.db") as store:
        store.upsert_products([product(f"P{i:04d}") for i in range(2500)])
        seen = 0
        for _ in store.iter_products("s"):
            if seen == 10:
                store.delete_products([("s", "P2499")])  # no open cursor blocks or breaks this
            seen += 1
        assert seen == 2499


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    SQLiteStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="schema version 99"):
        SQLiteStore(db)
