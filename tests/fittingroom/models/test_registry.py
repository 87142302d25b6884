"""The model shelf: one construction per (model, options), thread-safe, options checked."""

from __future__ import annotations

import hashlib
import inspect
import os
import threading
import time
from pathlib import Path

import pytest

from fittingroom.models import registry
from fittingroom.models.registry import ModelOptionsError, ModelShelf, ModelSpec, file_sha256
from fittingroom.models.specs import ALL_SPECS, ENCODER_OFFLINE, ENCODER_OPEN_CLIP, encoder_options
from fittingroom.settings import CoreSettings


class Built:
    def __init__(self, **options: object) -> None:
        self.options = options
        self.closed = False


def spec(factory=None, options=("size",), close=None) -> ModelSpec:  # noqa: ANN001
    return ModelSpec(
        name="test.model",
        kind="test",
        source="unit test",
        licence="none",
        factory=factory or (lambda **kw: Built(**kw)),
        options=frozenset(options),
        close=close,
    )


def test_one_instance_per_name_and_options() -> None:
    shelf, s = ModelShelf(), spec()
    a = shelf.get(s, size=1)
    assert shelf.get(s, size=1) is a
    b = shelf.get(s, size=2)
    assert b is not a and b.options == {"size": 2}
    assert shelf.constructions["test.model"] == 2
    assert shelf.peek(s, size=3) is None


def test_concurrent_first_use_builds_once() -> None:
    calls = []

    def slow(**kw: object) -> Built:
        calls.append(1)
        time.sleep(0.05)
        return Built(**kw)

    shelf, s = ModelShelf(), spec(slow)
    got: list[Built] = []
    threads = [threading.Thread(target=lambda: got.append(shelf.get(s, size=1))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(g) for g in got}) == 1


def test_unknown_option_is_an_error_naming_it() -> None:
    with pytest.raises(ModelOptionsError, match="no option 'colour'.*size"):
        ModelShelf().get(spec(), colour="red")


def test_a_failed_build_is_not_cached() -> None:
    attempts = []

    def flaky(**kw: object) -> Built:
        attempts.append(1)
        if len(attempts) == 1:
            raise FileNotFoundError("weights.bin not found")
        return Built(**kw)

    shelf, s = ModelShelf(), spec(flaky)
    with pytest.raises(FileNotFoundError, match="weights.bin"):
        shelf.get(s, size=1)
    assert shelf.get(s, size=1).options == {"size": 1}
    assert shelf.constructions["test.model"] == 1


def test_loaded_describes_and_close_releases() -> None:
    closed = []
    shelf, s = ModelShelf(), spec(close=lambda m: closed.append(m))
    m = shelf.get(s, size=1)
    (desc,) = shelf.loaded()
    assert desc["name"] == "test.model" and desc["licence"] == "none" and desc["options"] == {"size": 1}
    shelf.close()
    assert closed == [m] and shelf.loaded() == []


def test_every_spec_declares_source_and_licence() -> None:
    names = [s.name for s in ALL_SPECS]
    assert len(names) == len(set(names))
    for s in ALL_SPECS:
        assert s.source and s.licence and s.kind, s.name


@pytest.mark.parametrize("spec_", [ENCODER_OFFLINE, ENCODER_OPEN_CLIP])
def test_encoder_spec_options_are_the_constructor_parameters(spec_: ModelSpec) -> None:
    from fittingroom.models.encoders.offline import OfflineEncoder
    from fittingroom.models.encoders.openclip import OpenClipEncoder

    cls = OfflineEncoder if spec_ is ENCODER_OFFLINE else OpenClipEncoder
    params = {
        n
        for n, p in inspect.signature(cls.__init__).parameters.items()
        if n != "self" and p.kind is not p.VAR_KEYWORD
    }
    assert spec_.options == params


def test_settings_options_and_device_reach_the_encoder_options() -> None:
    core = CoreSettings(encoder="offline", encoder_options={"type_weight": 0.5}, device="cpu")
    spec_, options = encoder_options(core)
    assert spec_ is ENCODER_OFFLINE and options == {"type_weight": 0.5, "device": "cpu"}
    with pytest.raises(ModelOptionsError, match="no_such_option"):
        encoder_options(CoreSettings(encoder_options={"no_such_option": 1}))
    # options configured for one encoder are not given to another one asked for by name
    _, other = encoder_options(core, "open_clip")
    assert other == {"device": "cpu"}


def test_file_sha256_is_remembered_until_the_file_changes(tmp_path: Path) -> None:
    """/healthz describes the loaded models on every call: a checkpoint is hashed once per version."""
    path = tmp_path / "weights.bin"
    path.write_bytes(b"first")
    assert file_sha256(path) == hashlib.sha256(b"first").hexdigest()
    misses = registry._sha256_of.cache_info().misses
    assert file_sha256(path) == hashlib.sha256(b"first").hexdigest()
    assert registry._sha256_of.cache_info().misses == misses  # not read again
    path.write_bytes(b"second!")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert file_sha256(path) == hashlib.sha256(b"second!").hexdigest()


def test_file_sha256_of_a_missing_file_or_folder_is_none(tmp_path: Path) -> None:
    assert file_sha256(tmp_path / "missing.bin") is None
    assert file_sha256(tmp_path) is None
