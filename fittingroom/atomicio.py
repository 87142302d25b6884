"""Atomic file writes: a reader sees the old file or the complete new one, never a partial file.

:func:`atomic_write` writes to a temporary file in the target's folder (same file
system, so the rename is atomic), optionally fsyncs it, then ``os.replace``-s it over
the target. On any error, including KeyboardInterrupt, the temporary file is removed
and the target is left as it was. Temporary names are ``.<name>.<random>.tmp``, so
:func:`is_temporary` lets folder scanners (cache eviction) skip files being written.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"

Writer = Callable[[BinaryIO], object]


def temporary_name(path: Path) -> Path:
    """A fresh temporary file name next to ``path`` (``.<name>.<16 hex>.tmp``)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}{TEMP_SUFFIX}")


def is_temporary(path: Path) -> bool:
    """True for a name made by :func:`temporary_name` (a write in progress or a crash's leftover)."""
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)


def atomic_write(
    path: str | os.PathLike[str], data: bytes | bytearray | memoryview | str | Writer, *, fsync: bool = True
) -> Path:
    """Replace ``path`` atomically with ``data`` and return it as a Path.

    ``data``: the bytes (a ``str`` is written as UTF-8) or a callable that writes them to
    the binary file object it receives. ``fsync``: flush the file and its folder to disk
    before and after the rename (durable across a power cut; caches may skip it).
    Missing parent folders are created; the new file gets the usual permissions
    (0o666 minus the umask). Raises what the writer or the file system raise (OSError...),
    after removing the temporary file.
    """

    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())

    return _replace_with(Path(path), write, fsync_file=False, fsync_dir=fsync)


def atomic_write_path(path: str | os.PathLike[str], write: Callable[[Path], object], *, fsync: bool = True) -> Path:
    """:func:`atomic_write` for writers that need a file *name* (``faiss.write_index``): calls
    ``write(tmp_path)``, then fsyncs and renames it over ``path`` like :func:`atomic_write`."""
    return _replace_with(Path(path), write, fsync_file=fsync, fsync_dir=fsync)


def _replace_with(target: Path, write: Callable[[Path], object], *, fsync_file: bool, fsync_dir: bool) -> Path:
    """The one write-then-rename: ``write(tmp)``, optional fsync of tmp, ``os.replace``, tmp
    removed on any error (KeyboardInterrupt too), optional fsync of the folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(target)
    try:
        write(tmp)
        if fsync_file:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync_dir:
        _fsync_dir(target.parent)
    return target


def _fsync_dir(folder: Path) -> None:
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible on some platforms (Windows)
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
