"""SAM backends behind one interface (``fittingroom.models.sam.base.SamBackend``).

They are built through the model shelf (``fittingroom.models.specs.SAM_ONNX`` / ``SAM_TORCH``;
``fittingroom.segmentation.backend.sam_backend`` turns the segmentation settings into
their options), so segmentation and try-on share one instance per process.
"""

from __future__ import annotations

from fittingroom.models.sam.base import Candidates, ImageEmbedding, SamBackend

__all__ = ["Candidates", "ImageEmbedding", "SamBackend"]
