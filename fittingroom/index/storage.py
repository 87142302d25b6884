"""On-disk format of a vector index: file names, manifest, atomic saves, the writers' lock.

One index per encoder name, stored as ``index_dir/{stem}.faiss`` plus a JSON manifest
``index_dir/{stem}.json`` (``stem`` = the encoder name, made path-safe). The manifest holds
``format``, ``encoder``, ``dim``, ``count``, ``kind``, ``metric``, ``params`` (search
parameters, measured recall), ``created``/``updated`` (ISO 8601 UTC) and ``faiss_version``.

Saves are atomic per file: each file is written to a temporary name, fsynced and moved into
place with ``os.replace``; readers that memory-mapped the previous file keep a valid view of
it. The ``.faiss`` file is written first and is authoritative: after a crash between the two
renames the manifest describes the previous generation and is ignored where it disagrees.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fittingroom.atomicio import atomic_write_path
from fittingroom.index.settings import mismatch_error

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1


def file_stem(encoder_name: str) -> str:
    """File name stem for an encoder name; names with path-unsafe characters get a hash suffix."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_name).strip("._") or "encoder"
    if safe != encoder_name:
        safe += "-" + hashlib.blake2b(encoder_name.encode(), digest_size=4).hexdigest()
    return safe


def index_paths(index_dir: str | Path, encoder_name: str) -> tuple[Path, Path]:
    """``(faiss_file, manifest_file)`` of the index of ``encoder_name`` in ``index_dir``."""
    stem = file_stem(encoder_name)
    d = Path(index_dir)
    return d / f"{stem}.faiss", d / f"{stem}.json"


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, fsync it, then ``os.replace`` it
    (``fittingroom.atomicio.atomic_write_path``)."""
    atomic_write_path(path, write)


@contextlib.contextmanager
def index_lock(index_dir: str | Path, encoder_name: str) -> Iterator[None]:
    """Exclusive inter-process lock for writers of one encoder's index (blocks until free)."""
    d = Path(index_dir)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f".{file_stem(encoder_name)}.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


_saved_generation = 0


def note_saved() -> None:
    """Count one index save made by this process (``VectorIndex.save`` calls it once both files
    are in place): readers in this process then re-check at once (``saved_generation``)."""
    global _saved_generation
    _saved_generation += 1


def saved_generation() -> int:
    """How many index saves this process has made (any encoder); readers compare it to the
    value they last saw to re-open a new generation without waiting for their poll interval."""
    return _saved_generation


def file_stamp(path: Path) -> tuple[int, int, int]:
    """``(inode, mtime_ns, size)``: changes when the file is replaced."""
    st = path.stat()
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def read_manifest(manifest_path: Path) -> dict[str, Any]:
    """The manifest's JSON object; ``{}`` when missing or unreadable (the index file is authoritative)."""
    if not manifest_path.exists():
        return {}
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("ignoring unreadable index manifest %s: %s", manifest_path, exc)
        return {}
    return manifest if isinstance(manifest, dict) else {}


def write_manifest(manifest_path: Path, manifest: dict[str, Any]) -> None:
    atomic_write(manifest_path, lambda tmp: tmp.write_text(json.dumps(manifest, indent=2)))


def read_faiss_index(faiss_path: Path, *, read_only: bool) -> Any:
    """Load a FAISS index; ``read_only`` memory-maps it where the index type allows."""
    import faiss

    if read_only:
        for flags in (faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY, faiss.IO_FLAG_READ_ONLY):
            try:
                return faiss.read_index(str(faiss_path), flags)
            except RuntimeError as exc:  # pragma: no cover - depends on the index type / faiss build
                log.debug("read_index with flags %d failed: %s", flags, exc)
    return faiss.read_index(str(faiss_path))


def check_compatible(
    manifest: dict[str, Any],
    index_dim: int,
    *,
    encoder_name: str,
    dim: int | None,
    faiss_path: Path,
) -> None:
    """Raise ``IndexMismatchError`` when the stored index is not the one of ``encoder_name``/``dim``.

    Compared: the manifest's encoder name (when the manifest has one) with ``encoder_name``, and
    the index file's dimension ``index_dim`` with ``dim`` (when given). The message names the
    stored and requested encoder + dim and the rebuild command.
    """
    stored_name = str(manifest.get("encoder") or encoder_name)
    if stored_name != encoder_name or (dim is not None and int(dim) != int(index_dim)):
        raise mismatch_error(
            stored=(stored_name, int(index_dim)),
            requested=(encoder_name, int(dim) if dim is not None else -1),
            where=f"the vector index {faiss_path}",
            index_dir=faiss_path.parent,
        )


@dataclass(frozen=True)
class IndexState:
    """The index generation on disk: ``generation`` changes on every save (the ``.faiss`` file's
    mtime in ns), ``written_at`` is when it was written (UTC), ``vectors`` the manifest's count
    (None when the manifest is missing or unreadable)."""

    encoder: str
    generation: int
    written_at: datetime
    vectors: int | None


def index_state(index_dir: str | Path, encoder_name: str | None = None) -> IndexState | None:
    """The state of ``encoder_name``'s index in ``index_dir`` (without a name: the most recently
    written index there); None when there is none. Reads file metadata and the manifest only."""
    folder = Path(index_dir)
    if encoder_name is not None:
        candidates = [index_paths(folder, encoder_name)[0]]
    else:
        candidates = sorted(folder.glob("*.faiss")) if folder.is_dir() else []
    best: tuple[int, Path] | None = None
    for path in candidates:
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            continue
        if best is None or mtime > best[0]:
            best = (mtime, path)
    if best is None:
        return None
    mtime, path = best
    manifest = read_manifest(path.with_suffix(".json"))
    count = manifest.get("count")
    return IndexState(
        encoder=str(manifest.get("encoder") or encoder_name or path.stem),
        generation=mtime,
        written_at=datetime.fromtimestamp(mtime / 1e9, UTC),
        vectors=int(count) if isinstance(count, int) else None,
    )
