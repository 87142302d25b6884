"""SAM backends behind one interface (``backends.base.SamBackend``) and the registry that loads them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fittingroom.models.sam.base import Candidates, ImageEmbedding, SamBackend
from fittingroom.segmentation.settings import BackendName, SegmentationSettings

if TYPE_CHECKING:
    from fittingroom.settings import CoreSettings

__all__ = ["Candidates", "ImageEmbedding", "SamBackend", "load_backend"]


def load_backend(settings: SegmentationSettings, core: CoreSettings | None = None) -> SamBackend:
    """Build the configured backend (loads weights: call at start-up, not import)."""
    if settings.backend == BackendName.onnx:
        from fittingroom.models.sam.onnx_sam import OnnxSamBackend

        return OnnxSamBackend(
            settings.resolved_encoder_path(core),
            settings.resolved_decoder_path(core),
            masks_output=settings.decoder_masks_output,
            iou_output=settings.decoder_iou_output,
            device=settings.resolved_device(core),
            threads=settings.onnx_threads,
        )
    from fittingroom.models.sam.torch_sam import TorchSamBackend
    from fittingroom.settings import resolve_device

    return TorchSamBackend(
        settings.checkpoint,
        settings.model_type.value,
        device=resolve_device(settings.resolved_device(core)),
    )
