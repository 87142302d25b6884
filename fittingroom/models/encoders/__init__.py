"""Image and text encoders behind a small registry (``get_encoder``)."""

from fittingroom.models.encoders.base import Encoder, Query, document_text, l2_normalize
from fittingroom.models.encoders.registry import available_encoders, get_encoder

__all__ = ["Encoder", "Query", "available_encoders", "document_text", "get_encoder", "l2_normalize"]
