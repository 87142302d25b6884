"""Encoder names -> shelf entries (``fittingroom.models.specs``). Heavy modules load lazily."""

from __future__ import annotations

from typing import Any

from fittingroom.models.encoders.base import Encoder


def available_encoders() -> list[str]:
    from fittingroom.models.specs import ENCODERS

    return sorted(ENCODERS)


def get_encoder(name: str, **options: Any) -> Encoder:
    """The encoder registered as ``name`` with exactly these options, from the process's model
    shelf (built once per name + options).

    Raises KeyError naming the known encoders for an unknown name, and
    ``fittingroom.models.registry.ModelOptionsError`` (a ValueError) for an option the
    encoder does not take. Callers that mean "the configured encoder" use
    ``fittingroom.models.specs.get_encoder(settings)``, which applies
    ``FITTINGROOM_ENCODER_OPTIONS`` and ``FITTINGROOM_DEVICE``.
    """
    from fittingroom.models.registry import default_shelf
    from fittingroom.models.specs import encoder_spec

    return default_shelf().get(encoder_spec(name), **options)  # type: ignore[no-any-return]
