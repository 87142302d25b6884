"""Typed settings shared by every component (env prefix ``FITTINGROOM_``).

Each service adds its own settings class with its own prefix
(``RETRIEVAL_``, ``SEGMENTATION_``, ``TRYON_``, ``CRAWLER_``); this one holds
what they all need: where data and models live and which store to use.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AnyHttpUrl, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "fittingroom"


def _default_shared_data() -> Path:
    """``shared/data`` beside the checkout this package runs from (not the working directory)."""
    return Path(__file__).resolve().parents[2] / "shared" / "data"


class CoreSettings(BaseSettings):
    """Settings read from ``FITTINGROOM_*`` environment variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(env_prefix="FITTINGROOM_", env_file=".env", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Root folder for the store, index, caches.")
    store_uri: str = Field(
        default="",
        description="Catalog store: 'sqlite:///path/catalog.db' (embedded, default under home) "
        "or 'mongodb://host:27017/fittingroom' (production).",
    )
    index_dir: Path | None = Field(
        default=None, description="Folder of the FAISS index (default: home/index)."
    )
    model_dir: Path | None = Field(default=None, description="Model cache (default: home/models).")
    encoder: str = Field(default="offline", description="Encoder registry name: 'offline' or 'open_clip'.")
    encoder_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword options of the encoder as JSON, e.g. "
        '{"model": "hf-hub:Marqo/marqo-fashionSigLIP"} or {"image_weights": "/models/lite0.pth"}.',
    )
    shared_data: Path = Field(
        default_factory=lambda: _default_shared_data(),
        description="Folder of the shared real data (evaluations, training; never ingested by itself). "
        "Default: shared/data beside this checkout.",
    )
    device: str = Field(default="auto", description="'auto' (CUDA when present), 'cpu' or 'cuda[:N]'.")
    working_side: int = Field(
        default=2048,
        ge=256,
        le=20_000,
        description="Longest side (px) of the working resolution uploaded photos are decoded to on the "
        "server (segmentation, try-on person uploads, image search): a bigger photo is downscaled while it "
        "is decoded (JPEG in the DCT), never kept at full size; the page downscales to 2048 px before upload.",
    )
    server: AnyHttpUrl | None = Field(
        default=None,
        description="URL of a running 'fittingroom serve' (e.g. http://127.0.0.1:8000): 'fittingroom search' "
        "sends its query there instead of loading models (--server overrides; unset or empty: search locally).",
    )

    @field_validator("server", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def resolved_store_uri(self) -> str:
        return self.store_uri or f"sqlite:///{self.home / 'catalog.db'}"

    @property
    def resolved_index_dir(self) -> Path:
        return self.index_dir or self.home / "index"

    @property
    def resolved_model_dir(self) -> Path:
        return self.model_dir or self.home / "models"


@lru_cache(maxsize=1)
def get_settings() -> CoreSettings:
    """Process-wide settings, read once from the environment."""
    return CoreSettings()


def resolve_device(device: str = "auto") -> str:
    """Return a torch device string: CUDA when present and ``device == 'auto'``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
