"""Image and text encoders behind a small registry (``get_encoder``)."""

from fittingroom.encoders.base import Encoder, Query, document_text, l2_normalize
from fittingroom.encoders.registry import available_encoders, get_encoder

__all__ = ["Encoder", "Query", "available_encoders", "document_text", "get_encoder", "l2_normalize"]
