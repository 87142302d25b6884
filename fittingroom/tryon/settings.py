"""Try-on service settings (env prefix ``TRYON_``)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fittingroom.settings import CoreSettings, get_settings


class GarmentRegionMode(StrEnum):
    """How the person's garment region is found (see ``person.py`` / ``sam_region.py``)."""

    auto = "auto"
    sam = "sam"
    pose = "pose"


class FashnParser(StrEnum):
    """Who parses the person and garment for FASHN VTON (``TRYON_FASHN_PARSER``, ``renderers.FashnBackend``)."""

    own = "own"  # this project's person analysis and garment mask (fashn_parse.py): commercially clean
    fashn = "fashn"  # FASHN's bundled fashn-human-parser: its weights are NON-COMMERCIAL


class TryOnSettings(BaseSettings):
    """Settings of the try-on service, ``fittingroom tryon`` and ``eval tryon``."""

    model_config = SettingsConfigDict(env_prefix="TRYON_", env_file=".env", extra="ignore")

    backend: str = Field(default="preview", description="Default backend: 'preview' (CPU) or 'fashn' (GPU).")
    backends: list[str] = Field(
        default_factory=list,
        description="Backends loaded at start-up (JSON list); empty = only `backend`. A request may pick any of them.",
    )
    fashn_weights_dir: Path | None = Field(
        default=None,
        description="FASHN VTON v1.5 weights folder (model.safetensors, dwpose/); default model_dir/fashn-vton-1.5.",
    )
    fashn_parser: FashnParser = Field(
        default=FashnParser.own,
        description="Human parse for the 'fashn' backend: 'own' (this project's person analysis and garment mask; "
        "fashn-human-parser is never loaded: commercially clean) or 'fashn' (FASHN's fashn-human-parser, whose "
        "weights are NON-COMMERCIAL only).",
    )
    max_side: int = Field(
        default=1024, ge=64, le=4096, description="Longest side (px) images are resized to."
    )
    max_upload_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1, description="Largest accepted image upload."
    )
    max_image_pixels: int = Field(default=50_000_000, ge=1, description="Largest accepted decoded image.")
    workers: int = Field(
        default=1, ge=1, le=16, description="Concurrent try-on jobs (one GPU job at a time by default)."
    )
    max_jobs: int = Field(
        default=1000,
        ge=1,
        description="Jobs kept in memory (count; their result PNGs also count against "
        "TRYON_MEMORY_CACHE_MB); the least recently polled are dropped.",
    )
    result_cache_size: int = Field(
        default=64, ge=0, description="Most rendered results kept, keyed by inputs (0 = none)."
    )
    memory_cache_mb: int = Field(
        default=512,
        ge=8,
        description="Memory (MiB) for try-on's caches, least recently used dropped first: uploaded "
        "photo bytes (persons 1/8, garments 1/8; a dropped upload must be sent again: 404), person "
        "preprocessing (7/16: per photo the decoded RGB, person mask and landmarks, per category "
        "~7 bytes per pixel, SAM embeddings 4 MiB each), garment preprocessing (1/8: RGB + mask, "
        "~4 bytes per pixel), rendered result PNGs (1/16) and jobs with their PNG (1/8).",
    )
    store_uri: str | None = Field(
        default=None, description="Catalog store URI (default: FITTINGROOM_STORE_URI)."
    )
    cache_dir: Path | None = Field(
        default=None,
        description="On-disk cache of person preprocessing steps, keyed by image sha256 (default home/tryon/cache).",
    )
    garment_region: GarmentRegionMode = Field(
        default=GarmentRegionMode.auto,
        description="Garment region on the person: 'sam' (segmentation service's SAM backend prompted from the "
        "pose; start-up error when its model files are missing), 'pose' (pose polygon x person mask), "
        "'auto' (SAM when its model files are present, else pose).",
    )
    image_cache_dir: Path | None = Field(
        default=None, description="Ingest image cache with product images (default: FITTINGROOM home/images)."
    )

    def core(self) -> CoreSettings:
        return get_settings()

    @property
    def memory_cache_bytes(self) -> int:
        """``memory_cache_mb`` in bytes."""
        return self.memory_cache_mb * 1024 * 1024

    @property
    def resolved_store_uri(self) -> str:
        return self.store_uri or self.core().resolved_store_uri

    @property
    def resolved_cache_dir(self) -> Path:
        return self.cache_dir or self.core().home / "tryon" / "cache"

    @property
    def resolved_image_cache_dir(self) -> Path:
        return self.image_cache_dir or self.core().home / "images"

    @property
    def resolved_fashn_weights_dir(self) -> Path:
        return self.fashn_weights_dir or self.core().resolved_model_dir / "fashn-vton-1.5"

    @property
    def enabled_backends(self) -> list[str]:
        names = list(dict.fromkeys([self.backend, *self.backends]))
        return names


@lru_cache(maxsize=1)
def get_tryon_settings() -> TryOnSettings:
    return TryOnSettings()
