"""Retrieval service settings (env prefix ``RETRIEVAL_``).

Where the catalog and the index live comes from the shared ``FITTINGROOM_*``
settings (``fittingroom.settings.CoreSettings``) unless overridden here.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fittingroom.settings import CoreSettings, get_settings

#: Grey level a cut-out's transparent pixels are filled with before an image search (0-255).
CUTOUT_BACKGROUND = 255


class RetrievalSettings(BaseSettings):
    """Settings of the retrieval service, the ``search`` CLI and ``eval retrieval``."""

    model_config = SettingsConfigDict(env_prefix="RETRIEVAL_", env_file=".env", extra="ignore")

    store_uri: str | None = Field(
        default=None, description="Catalog store URI (default: FITTINGROOM_STORE_URI)."
    )
    index_dir: Path | None = Field(
        default=None, description="FAISS index folder (default: FITTINGROOM_INDEX_DIR)."
    )
    encoder: str | None = Field(
        default=None, description="Encoder registry name (default: FITTINGROOM_ENCODER)."
    )
    image_cache_dir: Path | None = Field(
        default=None, description="Folder of the ingest image cache served at /images (default: home/images)."
    )

    default_k: int = Field(default=10, ge=1, description="Results per page when a request gives no k.")
    max_k: int = Field(default=100, ge=1, le=1000, description="Largest k a request may ask for.")
    max_offset: int = Field(default=1000, ge=0, description="Deepest pagination offset.")
    default_image_weight: float = Field(
        default=0.5, ge=0, le=1, description="Weight of the image against the text when a query has both."
    )
    candidate_multiplier: int = Field(
        default=4, ge=1, description="Image hits fetched per requested product (several images per product)."
    )
    image_color_boost: float = Field(
        default=0.02,
        ge=0,
        le=2,
        description="Image searches: cosine-score margin by which results of the garment's dominant "
        "colour family move ahead of others (0 = off; a re-rank, not a filter).",
    )
    image_category_filter: bool = Field(
        default=False,
        description="Image searches: restrict the results to the garment category inferred from the "
        "image when a request does not say (form field use_category). Off by default: on the shared "
        "evals it left street-photo type precision@10 as it was and lowered Luma other-colour hit@1.",
    )
    image_category_min_prob: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Image searches: the garment category inferred from the image (garment-type "
        "classifier) is reported, and filters when asked, when its probability is at least this "
        "(at 0.7 the filter changed no eval figure; lower, it cost Luma other-colour hit@1).",
    )
    cutout_background: int = Field(
        default=CUTOUT_BACKGROUND,
        ge=0,
        le=255,
        description="Image searches with a cut-out (an upload with transparency, e.g. a selected "
        "garment mask): the grey level (0-255) its transparent pixels are filled with before "
        "embedding (255 = white).",
    )
    max_text_chars: int = Field(default=1000, ge=1)
    text_relevance_floor: float | None = Field(
        default=None,
        description="Score below which a text-query hit is a weak match (default: the floor calibrated "
        "for the encoder, fittingroom.retrieval.search.RELEVANCE_FLOORS; `fittingroom eval queries` "
        "prints the calibration).",
    )

    max_upload_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1, description="Largest accepted image upload."
    )
    max_image_pixels: int = Field(default=50_000_000, ge=1, description="Largest accepted decoded image.")
    allow_url_fetch: bool = Field(
        default=True, description="Accept image_url queries (the server fetches them)."
    )
    allow_private_urls: bool = Field(
        default=False, description="Let image_url point at loopback/private addresses (off: SSRF guard)."
    )
    url_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of an image_url download, seconds.")
    url_max_redirects: int = Field(default=3, ge=0)

    faiss_threads: int = Field(
        default=1,
        ge=0,
        description="OpenMP threads FAISS uses (0 = every core). One query per thread is fastest for "
        "single queries, and concurrent requests run in parallel in the thread pool.",
    )
    warmup: bool = Field(
        default=True, description="Run one text and one image query through the encoder at start-up."
    )
    index_reload_s: float = Field(
        default=5.0, ge=0, description="How often the service checks whether ingest replaced the index file."
    )

    def apply_faiss_threads(self) -> None:
        """Set FAISS's OpenMP thread count (process-wide) from ``faiss_threads``."""
        if self.faiss_threads > 0:
            import faiss

            faiss.omp_set_num_threads(self.faiss_threads)

    def core(self) -> CoreSettings:
        return get_settings()

    @property
    def resolved_store_uri(self) -> str:
        return self.store_uri or self.core().resolved_store_uri

    @property
    def resolved_index_dir(self) -> Path:
        return self.index_dir or self.core().resolved_index_dir

    @property
    def resolved_encoder(self) -> str:
        return self.encoder or self.core().encoder

    @property
    def resolved_image_cache_dir(self) -> Path:
        return self.image_cache_dir or self.core().home / "images"


@lru_cache(maxsize=1)
def get_retrieval_settings() -> RetrievalSettings:
    """Process-wide retrieval settings, read once from the environment."""
    return RetrievalSettings()
