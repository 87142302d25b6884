"""Encoder registry: name -> factory. Factories import their heavy modules lazily."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fittingroom.models.encoders.base import Encoder


def _offline(**kw: Any) -> Encoder:
    from fittingroom.models.encoders.offline import OfflineEncoder

    return OfflineEncoder(**kw)


def _open_clip(**kw: Any) -> Encoder:
    from fittingroom.models.encoders.openclip import OpenClipEncoder

    return OpenClipEncoder(**kw)


_REGISTRY: dict[str, Callable[..., Encoder]] = {"offline": _offline, "open_clip": _open_clip}


def available_encoders() -> list[str]:
    return sorted(_REGISTRY)


def get_encoder(name: str, **kwargs: Any) -> Encoder:
    """Build (and load) the encoder registered as ``name``.

    Raises KeyError naming the known encoders for an unknown name.
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown encoder {name!r}; known: {', '.join(available_encoders())}") from None
    return factory(**kwargs)
