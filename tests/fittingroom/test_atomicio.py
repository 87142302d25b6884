"""fittingroom.atomicio.atomic_write: complete file or the old one, never a partial file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from fittingroom.atomicio import atomic_write, is_temporary


def test_writes_bytes_text_and_writer_creating_folders(tmp_path: Path) -> None:
    p = atomic_write(tmp_path / "a" / "b" / "f.bin", b"\x00\x01")
    assert p == tmp_path / "a" / "b" / "f.bin" and p.read_bytes() == b"\x00\x01"
    atomic_write(p, "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n"
    atomic_write(p, lambda f: f.write(b"from a writer"))
    assert p.read_bytes() == b"from a writer"
    assert os.listdir(p.parent) == ["f.bin"]


class Boom(Exception):
    pass


def failing_writer(f) -> None:  # type: ignore[no-untyped-def]
    f.write(b"partial" * 1000)
    f.flush()
    raise Boom("disk on fire")


def test_error_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    p = tmp_path / "f.json"
    p.write_bytes(b"old")
    with pytest.raises(Boom):
        atomic_write(p, failing_writer)
    assert p.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.json"]


@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt])
def test_error_on_a_new_file_leaves_nothing(tmp_path: Path, exc: type[BaseException]) -> None:
    def writer(f) -> None:  # type: ignore[no-untyped-def]
        f.write(b"half")
        raise exc()

    with pytest.raises(exc):
        atomic_write(tmp_path / "new.bin", writer)
    assert os.listdir(tmp_path) == []


def test_failed_rename_removes_the_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_replace(src: str, dst: str) -> None:
        raise OSError("EXDEV")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(OSError, match="EXDEV"):
        atomic_write(tmp_path / "f", b"data")
    assert os.listdir(tmp_path) == []


def test_fsync_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    atomic_write(tmp_path / "f", b"x", fsync=False)
    assert calls == []
    atomic_write(tmp_path / "f", b"y")
    assert len(calls) >= 1  # the file (and its folder where possible)


def test_permissions_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        p = atomic_write(tmp_path / "f", b"x")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o644


def test_concurrent_writers_leave_one_complete_payload(tmp_path: Path) -> None:
    p = tmp_path / "f"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    threads = [threading.Thread(target=atomic_write, args=(p, d), kwargs={"fsync": False}) for d in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert p.read_bytes() in payloads
    assert not any(is_temporary(x) for x in tmp_path.iterdir())
