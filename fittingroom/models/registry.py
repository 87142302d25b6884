"""The model shelf: every model the product runs, each constructed once per process.

A :class:`ModelSpec` says what a model is (name, kind, source, licence, its files) and
how to build it from keyword options; a :class:`ModelShelf` holds the built instances,
keyed by spec name + options (JSON, sorted keys), so two callers asking for the same
model with the same options get the same object. Construction is thread-safe and happens
once per key: the FastAPI lifespan preloads what a service needs, the CLI asks lazily.
Nothing is built at import.

The process-wide shelf is :func:`default_shelf`; services and tests may pass their own.

``constructions`` counts builds per spec name (tests assert "once per process");
``loaded()`` describes every built entry for ``/healthz`` and ``fittingroom models list``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class ModelOptionsError(ValueError):
    """A model was asked for with options its factory does not take (names the model and options)."""


@dataclass(frozen=True)
class ModelFile:
    """One file a model loads: where it is, its sha256 when known, and where it comes from."""

    path: str
    sha256: str | None = None
    source: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """What one shelf entry is and how it is built.

    ``factory(**options)`` builds the model (loads weights); ``files(**options)`` lists
    the files it would load (no loading); ``options`` names the keyword options the
    factory accepts (an unknown one is a :class:`ModelOptionsError`, never ignored).
    ``close`` (optional) releases an instance when the shelf is closed.
    """

    name: str
    kind: str
    source: str
    licence: str
    factory: Callable[..., Any]
    options: frozenset[str]
    files: Callable[..., list[ModelFile]] = field(default=lambda **_: [])
    close: Callable[[Any], None] | None = None
    notes: str = ""

    def check_options(self, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - self.options)
        if unknown:
            raise ModelOptionsError(
                f"model {self.name!r} has no option {', '.join(map(repr, unknown))}; "
                f"its options are: {', '.join(sorted(self.options)) or '(none)'}"
            )

    def describe(self, **options: Any) -> dict[str, Any]:
        """Source, licence and files of this model with these options (loads nothing)."""
        try:
            files = [f.__dict__ for f in self.files(**options)]
        except Exception as exc:  # a description never fails: say why the files are unknown
            files = [{"path": f"(unknown: {exc})", "sha256": None, "source": ""}]
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "licence": self.licence,
            "files": files,
            "notes": self.notes,
        }


def options_key(options: Mapping[str, Any]) -> str:
    """Stable key of an options mapping (JSON with sorted keys; paths as strings)."""
    return json.dumps(options, sort_keys=True, default=str)


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str | None:
    """sha256 hex digest of a file, or None when it does not exist.

    Remembered per (path, size, mtime): ``/healthz`` describes the loaded models on every
    call, and hashing a 600 MB checkpoint each time took seconds (past the readiness timeout).
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return None
    if not p.is_file():
        return None
    return _sha256_of(str(p.resolve()), st.st_size, st.st_mtime_ns, chunk)


@functools.lru_cache(maxsize=256)
def _sha256_of(path: str, size: int, mtime_ns: int, chunk: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class _Entry:
    spec: ModelSpec
    options: dict[str, Any]
    instance: Any = None
    error: BaseException | None = None
    load_s: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelShelf:
    """Built models of one process, keyed by (spec name, options). Thread-safe."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self.constructions: Counter[str] = Counter()

    def get(self, spec: ModelSpec, **options: Any) -> Any:
        """The model of ``spec`` with ``options``, built on first use (once per key).

        Raises ModelOptionsError for an option the spec does not take, and whatever the
        factory raises (missing weights: FileNotFoundError naming the file). A failed
        build is not cached: the next call tries again.
        """
        spec.check_options(options)
        key = (spec.name, options_key(options))
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(spec, dict(options))
        if entry.instance is not None:
            return entry.instance
        with entry.lock:
            if entry.instance is None:
                t0 = time.perf_counter()
                try:
                    instance = spec.factory(**options)
                except BaseException as exc:
                    entry.error = exc
                    raise
                entry.instance, entry.error = instance, None
                entry.load_s = round(time.perf_counter() - t0, 3)
                with self._lock:
                    self.constructions[spec.name] += 1
                log.info("loaded model %s in %.2f s", spec.name, entry.load_s)
        return entry.instance

    def peek(self, spec: ModelSpec, **options: Any) -> Any | None:
        """The instance if it was already built, else None (builds nothing)."""
        entry = self._entries.get((spec.name, options_key(options)))
        return None if entry is None else entry.instance

    def loaded(self) -> list[dict[str, Any]]:
        """One description per built model: name, kind, source, licence, options, files, load time."""
        out = []
        with self._lock:
            entries = list(self._entries.values())
        for e in entries:
            if e.instance is None:
                continue
            desc = e.spec.describe(**e.options)
            desc["options"] = json.loads(options_key(e.options))
            desc["load_s"] = e.load_s
            model_key = getattr(e.instance, "name", None) or getattr(e.instance, "model_key", None)
            if isinstance(model_key, str):
                desc["model_key"] = model_key
            out.append(desc)
        return out

    def close(self) -> None:
        """Release every built model (calls each spec's ``close``) and forget them."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for e in entries:
            if e.instance is not None and e.spec.close is not None:
                try:
                    e.spec.close(e.instance)
                except Exception:  # closing is best effort
                    log.exception("closing model %s failed", e.spec.name)


_default: ModelShelf | None = None
_default_lock = threading.Lock()


def default_shelf() -> ModelShelf:
    """The process-wide shelf (created on first call, never at import)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ModelShelf()
        return _default
