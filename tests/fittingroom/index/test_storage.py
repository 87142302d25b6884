"""Tests of fittingroom.index.storage (file names, atomic saves, manifest, compatibility check)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import faiss
import pytest
from index_fakes import build

from fittingroom.index import IndexKind, IndexMismatchError, VectorIndex, index_paths
from fittingroom.index.storage import check_compatible, read_manifest


def test_encoder_names_become_safe_file_names(tmp_path: Path):
    a, _ = index_paths(tmp_path, "open_clip:ViT-B-32/laion2b")
    b, _ = index_paths(tmp_path, "open_clip:ViT-B-32/laion2c")
    assert a.parent == tmp_path and "/" not in a.name and a != b


def test_atomic_save_survives_failure_mid_save(tmp_path: Path, data, monkeypatch):
    x, ids = data
    old = build(x[:500], ids[:500], IndexKind.flat)
    old.save(tmp_path)
    before = sorted(os.listdir(tmp_path))

    new = build(x[:800], ids[:800], IndexKind.flat)
    real_write = faiss.write_index

    def crash(index, path):
        real_write(index, path)
        with open(path, "r+b") as fh:  # a half-written file, then the process dies
            fh.truncate(100)
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", crash)
    with pytest.raises(OSError, match="disk full"):
        new.save(tmp_path)
    monkeypatch.undo()

    assert sorted(os.listdir(tmp_path)) == before  # no temp file left behind
    reopened = VectorIndex.open(tmp_path, "test")
    assert len(reopened) == 500
    assert set(reopened.ids().tolist()) == set(ids[:500].tolist())


def test_manifest_mismatch_trusts_index_file(tmp_path: Path, data):
    x, ids = data
    build(x[:50], ids[:50], IndexKind.flat).save(tmp_path)
    _, manifest = index_paths(tmp_path, "test")
    m = json.loads(manifest.read_text())
    m["count"] = 7
    manifest.write_text(json.dumps(m))
    assert len(VectorIndex.open(tmp_path, "test")) == 50


def test_unreadable_manifest_is_ignored(tmp_path: Path):
    p = tmp_path / "m.json"
    assert read_manifest(p) == {}
    p.write_text("{not json")
    assert read_manifest(p) == {}
    p.write_text('{"encoder": "x", "dim": 3}')
    assert read_manifest(p) == {"encoder": "x", "dim": 3}


def test_check_compatible(tmp_path: Path):
    path = tmp_path / "offline.faiss"
    check_compatible({"encoder": "offline"}, 2056, encoder_name="offline", dim=2056, faiss_path=path)
    check_compatible({}, 2056, encoder_name="offline", dim=None, faiss_path=path)  # nothing to compare
    with pytest.raises(IndexMismatchError) as err:
        check_compatible({"encoder": "offline"}, 2056, encoder_name="offline", dim=768, faiss_path=path)
    assert "'offline' (dim 2056)" in str(err.value) and "'offline' (dim 768)" in str(err.value)
    with pytest.raises(IndexMismatchError, match="dim unknown"):
        check_compatible({"encoder": "clip"}, 512, encoder_name="offline", dim=None, faiss_path=path)


def test_stale_manifest_does_not_override_the_saved_nprobe(tmp_path: Path, data):
    """Crash after the new .faiss replaced the old one but before the manifest: the file's
    nlist/nprobe are used, not the previous generation's."""
    x, ids = data
    build(x[:3000], ids[:3000], IndexKind.ivf_sq8).save(tmp_path)
    _, manifest_path = index_paths(tmp_path, "test")
    old_manifest = manifest_path.read_text()
    new = build(x, ids, IndexKind.ivf_sq8)
    faiss.extract_index_ivf(new.faiss_index).nprobe = 3
    new.params["nprobe"] = 3
    new.save(tmp_path)
    manifest_path.write_text(old_manifest)  # the manifest rename never happened
    ro = VectorIndex.open(tmp_path, "test")
    assert len(ro) == len(x)
    assert ro.params["nprobe"] == 3 and ro.params["nlist"] == new.params["nlist"]


def test_index_state_reads_the_newest_generation(tmp_path: Path) -> None:
    from fittingroom.index.storage import index_paths, index_state

    assert index_state(tmp_path / "missing") is None
    old, _ = index_paths(tmp_path, "old-enc")
    new, new_manifest = index_paths(tmp_path, "new-enc")
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    new_manifest.write_text(json.dumps({"encoder": "new-enc", "count": 7}))
    os.utime(old, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    os.utime(new, ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))
    state = index_state(tmp_path)
    assert state is not None
    assert (state.encoder, state.vectors, state.generation) == ("new-enc", 7, 2_000_000_000_000_000_000)
    assert state.written_at.year == 2033
    named = index_state(tmp_path, "old-enc")
    assert named is not None and (named.encoder, named.vectors) == ("old-enc", None)  # no manifest
    assert index_state(tmp_path, "other") is None
