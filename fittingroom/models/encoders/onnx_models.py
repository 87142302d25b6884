"""onnxruntime versions of the offline encoder's two models, and their export cache.

* ``OnnxImageFeatures``: the EfficientNet-Lite GeM feature extractor (batch-norm folded into
  the convolutions at export) -> (N, 1280) float32, L2-normalised; preprocessing identical
  to ``offline.EfficientNetLiteFeatures``.
* ``OnnxSentenceEncoder``: a sentence-transformers BERT model (all-MiniLM-L6-v2) as
  ``tokenizers`` + onnxruntime, mean pooling over the attention mask and L2 normalisation,
  as the model's ``modules.json`` (Transformer -> Pooling(mean) -> Normalize) prescribes.

Neither imports torch: the ``.onnx`` files are exported once (``onnx_export``, which needs
torch) into the model cache (``settings.resolved_model_dir / "onnx"``) by
``cached_onnx``, on first use or by ``fittingroom models export-encoder``; never committed.
A manifest next to each file records the source weights' path, size, mtime and SHA-256:
when the weights change (other SHA-256), the model is exported again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fittingroom.atomicio import atomic_write, temporary_name
from fittingroom.images import NEUTRAL_BACKGROUND, flatten_alpha
from fittingroom.models.encoders.base import l2_normalize

log = logging.getLogger(__name__)

#: Bumped when the exported graphs change meaning (forces a re-export of cached files).
EXPORT_FORMAT = 1
IMAGE_DIM = 1280


def default_threads() -> int:
    """Cores this process may run on (``sched_getaffinity``), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def session_options(threads: int | None = None) -> Any:
    """``onnxruntime.SessionOptions``: ``threads`` intra-op threads (default: the core count),
    one inter-op thread, all graph optimisations, no spinning (idle threads leave the cores to
    the image-decoding pool)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


def onnx_has_cuda() -> bool:
    """Whether the installed onnxruntime has the CUDA execution provider."""
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def providers(device: str) -> list[str]:
    """onnxruntime execution providers for ``device`` (``auto``/``cpu``/``cuda[:N]``).

    CUDA only when the installed onnxruntime has it (``auto``); ``cuda`` without it raises
    RuntimeError (use the torch backend then).
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.startswith("cuda") or device == "auto":
        if "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if device != "auto":
            raise RuntimeError(f"device {device!r}: this onnxruntime has no CUDA provider ({available})")
    return ["CPUExecutionProvider"]


# ---- export cache ----------------------------------------------------------------------------
def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _source_stat(source: Path) -> dict[str, Any]:
    st = source.stat()
    return {"source": str(source.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _manifest_ok(manifest_path: Path, source: Path, onnx_path: Path) -> bool:
    """Whether ``onnx_path`` was exported from these source weights (SHA-256 checked when the
    file's size or mtime differ from the manifest's; the manifest is refreshed then)."""
    if not onnx_path.is_file():
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("format") != EXPORT_FORMAT:
        return False
    stat = _source_stat(source)
    if all(manifest.get(k) == v for k, v in stat.items()):
        return True
    if manifest.get("sha256") != sha256_file(source):
        return False
    atomic_write(manifest_path, json.dumps({**manifest, **stat}, indent=1), fsync=False)
    return True


def cached_onnx(
    name: str, source: Path, cache_dir: Path, export: Callable[[Path], None], *, force: bool = False
) -> Path:
    """Path of ``cache_dir/<name>-<hash of source path>.onnx``, exported first when missing or stale.

    ``source``: the weights file the model is exported from; ``export(path)`` writes the
    ``.onnx`` file to ``path``. A file lock serialises concurrent processes; the file appears
    atomically. Raises whatever ``export`` raises (nothing is cached then).
    """
    from filelock import FileLock

    cache_dir.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:10]
    onnx_path = cache_dir / f"{name}-{tag}.onnx"
    manifest_path = onnx_path.with_suffix(".json")
    if not force and _manifest_ok(manifest_path, source, onnx_path):
        return onnx_path
    with FileLock(str(onnx_path.with_suffix(".lock"))):
        if not force and _manifest_ok(manifest_path, source, onnx_path):
            return onnx_path  # another process exported it meanwhile
        log.info("exporting %s from %s to %s", name, source, onnx_path)
        tmp = temporary_name(onnx_path)
        try:
            export(tmp)
            os.replace(tmp, onnx_path)
        finally:
            tmp.unlink(missing_ok=True)
        manifest = {
            "format": EXPORT_FORMAT,
            "name": name,
            "sha256": sha256_file(source),
            **_source_stat(source),
        }
        atomic_write(manifest_path, json.dumps(manifest, indent=1), fsync=False)
    return onnx_path


# ---- image ---------------------------------------------------------------------------------
def square_pad(img: Image.Image, fill: tuple[int, int, int] = NEUTRAL_BACKGROUND) -> Image.Image:
    """Pad an RGB image to a centred square on ``fill`` (keeps the aspect ratio)."""
    if img.width == img.height:
        return img
    side = max(img.size)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return canvas


def prepare_lite_image(
    img: Image.Image, size: int, fill: tuple[int, int, int] = NEUTRAL_BACKGROUND
) -> Image.Image:
    """RGB/RGBA image -> the (size, size) RGB image the network sees: alpha flattened on
    ``fill``, padded to a square on ``fill``, bicubic resize. Idempotent: a prepared image
    comes back as an equal copy (so ingest can prepare in its decode pool)."""
    rgb = square_pad(flatten_alpha(img, fill) if img.mode != "RGB" else img, fill)
    return rgb.resize((size, size), Image.Resampling.BICUBIC)


def lite_pixels(
    images: Sequence[Image.Image], size: int, fill: tuple[int, int, int] = NEUTRAL_BACKGROUND
) -> np.ndarray:
    """(N, 3, size, size) float32 network input, (x - 127) / 128 (how the Lite models were trained)."""
    arr = np.stack([np.asarray(prepare_lite_image(im, size, fill)) for im in images]).astype(np.float32)
    arr -= 127.0
    arr /= 128.0
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))


class OnnxImageFeatures:
    """EfficientNet-Lite GeM features on onnxruntime: images -> (N, 1280) float32, L2-normalised.

    ``model_path``: an ``.onnx`` file from ``onnx_export.export_lite_gem`` (input ``pixels``
    (N, 3, size, size) float32, output ``gem`` (N, 1280)). ``threads``: intra-op threads
    (default: the core count). ``fill``: background of padding and alpha.
    """

    def __init__(
        self,
        model_path: str | Path,
        size: int,
        fill: tuple[int, int, int],
        *,
        threads: int | None = None,
        device: str = "cpu",
    ) -> None:
        import onnxruntime as ort

        self.size = size
        self.fill = fill
        self.session = ort.InferenceSession(
            str(model_path), session_options(threads), providers=providers(device)
        )

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) float32 network input -> (N, 1280) GeM features, not normalised."""
        return np.asarray(self.session.run(["gem"], {"pixels": pixels})[0], np.float32)

    def __call__(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        out = [
            self.run(lite_pixels(images[i : i + batch_size], self.size, self.fill))
            for i in range(0, len(images), batch_size)
        ]
        return l2_normalize(np.concatenate(out)) if out else np.zeros((0, IMAGE_DIM), np.float32)


# ---- text ----------------------------------------------------------------------------------
def sentence_model_weights(folder: Path) -> Path:
    """The weights file of a sentence-transformers / Hugging Face model folder.

    Raises FileNotFoundError when it has none.
    """
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: no model.safetensors or pytorch_model.bin")


def max_seq_length(folder: Path, default: int = 256) -> int:
    """``max_seq_length`` of ``sentence_bert_config.json`` (what sentence-transformers truncates to)."""
    try:
        return int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return default


class OnnxSentenceEncoder:
    """A BERT sentence model as ``tokenizers`` + onnxruntime: texts -> (N, D) float32, L2-normalised.

    ``folder``: the sentence-transformers model folder (``tokenizer.json``,
    ``sentence_bert_config.json``); ``model_path``: its export by ``onnx_export.export_sentence_model``
    (inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` int64 (N, L); output ``mean``
    (N, D), the attention-masked mean of the last hidden states).
    """

    def __init__(
        self, folder: str | Path, model_path: str | Path, *, threads: int | None = None, device: str = "cpu"
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_seq_length(folder))
        pad = self.tokenizer.padding or {}
        self.tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))
        self.session = ort.InferenceSession(
            str(model_path), session_options(threads), providers=providers(device)
        )
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def __call__(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(list(texts[i : i + batch_size]))
            feeds = {
                "input_ids": np.array([e.ids for e in enc], np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], np.int64),
            }
            out.append(np.asarray(self.session.run(["mean"], feeds)[0], np.float32))
        return l2_normalize(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)
