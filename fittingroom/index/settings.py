"""Vector index settings, index kinds and errors."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IndexKind(StrEnum):
    """Which FAISS index structure holds the vectors."""

    flat = "flat"
    ivf_flat = "ivf_flat"
    ivf_sq8 = "ivf_sq8"
    #: PCA to ``pca_dim`` dims, IVF-SQ8 on the projections, re-ranked with ``refine`` codes of the
    #: full vectors (``fittingroom.index.factory``); picked from ``pca_threshold`` vectors.
    pca_ivf_sq8 = "pca_ivf_sq8"

    @property
    def approximate(self) -> bool:
        return self is not IndexKind.flat


class RefineCodec(StrEnum):
    """Codes of the full vectors kept next to a ``pca_ivf_sq8`` index to re-rank its candidates."""

    none = "none"  # no re-ranking: scores are inner products of the PCA projections (SQ8-decoded)
    sq8 = "sq8"  # 1 byte per dimension (2 KB per vector at 2056 dims)
    fp16 = "fp16"  # 2 bytes per dimension


class IndexBackend(StrEnum):
    """Where the vectors are searched: FAISS in each process, or a Milvus collection."""

    faiss = "faiss"
    milvus = "milvus"


class IndexSettings(BaseSettings):
    """Vector index settings (env prefix ``FITTINGROOM_INDEX_``)."""

    model_config = SettingsConfigDict(env_prefix="FITTINGROOM_INDEX_", env_file=".env", extra="ignore")

    approx_threshold: int = Field(
        default=100_000,
        ge=1,
        description="Number of vectors from which an approximate index replaces exact search.",
    )
    approx_kind: IndexKind = Field(default=IndexKind.ivf_sq8, description="Approximate index kind.")
    pca_threshold: int = Field(
        default=500_000,
        ge=1,
        description="Number of vectors from which an approximate index of vectors wider than pca_dim "
        "projects them with PCA first (kind pca_ivf_sq8: the IVF scans pca_dim-byte codes instead of "
        "dim-byte ones; 1M x 2056 full-dimension SQ8 codes alone take 2.1 GB).",
    )
    pca_dim: int = Field(default=256, ge=8, description="Dimensions kept by the PCA of a pca_ivf_sq8 index.")
    pca_train_points: int = Field(
        default=50_000,
        ge=1000,
        description="Sampled vectors the PCA of a pca_ivf_sq8 index is trained on (uncentred: the "
        "projection preserves inner products up to the discarded components).",
    )
    refine: RefineCodec = Field(
        default=RefineCodec.sq8,
        description="Codes of the full vectors a pca_ivf_sq8 index re-ranks its candidates with: "
        "sq8 (dim bytes per vector), fp16 (2 x dim) or none.",
    )
    refine_factor: int = Field(
        default=8,
        ge=1,
        description="A pca_ivf_sq8 index with refine codes re-ranks refine_factor x k candidates.",
    )
    recall_target: float = Field(default=0.95, gt=0, le=1, description="Minimum recall@10 against exact.")
    recall_margin: float = Field(
        default=0.01, ge=0, le=0.05, description="Tune to recall_target + margin (sampling error)."
    )
    tune_queries: int = Field(default=256, ge=16, description="Held-out sample size used to tune nprobe.")
    nlist: int | None = Field(
        default=None,
        ge=1,
        description="IVF lists (default: power of 2 near lists_per_sqrt_n * sqrt(N)); always clamped to "
        "N / min_points_per_list so that k-means has enough training points per centroid.",
    )
    lists_per_sqrt_n: float = Field(
        default=4.0, gt=0, description="Default nlist = this x sqrt(N), rounded to a power of two."
    )
    min_points_per_list: int = Field(
        default=39,
        ge=1,
        description="At most N / this many IVF lists (FAISS warns below 39 training points per centroid).",
    )
    train_points_per_list: int = Field(default=40, ge=10, description="k-means training points per IVF list.")
    kmeans_iterations: int = Field(default=10, ge=1)
    retrain_growth: float = Field(
        default=4.0, gt=1, description="Rebuild an IVF index once it holds this many times its trained size."
    )
    plateau_gain: float = Field(
        default=0.01,
        ge=0,
        description="Keep doubling nprobe past the target while that adds at least this much recall@10.",
    )
    plateau_tolerance: float = Field(
        default=0.005,
        ge=0,
        le=0.1,
        description="When no nprobe below nlist reaches the target (quantisation caps recall), take the "
        "smallest nprobe within this much recall@10 of the best one measured (never a full scan).",
    )
    nprobe_safety_factor: float = Field(
        default=2.0,
        ge=1,
        description="Multiplier of the tuned nprobe: queries outside the tuning sample (short generic "
        "texts with the offline encoder) need more lists for the same recall "
        "(see benchmarks/search_bench.py --prototypes).",
    )
    retune_fraction: float = Field(
        default=0.2, gt=0, description="Re-tune nprobe after this fraction of the index changed."
    )
    use_gpu: bool = Field(default=True, description="Use faiss-gpu for unfiltered search when GPUs exist.")
    seed: int = 1234
    backend: IndexBackend = Field(
        default=IndexBackend.faiss,
        description="'faiss' (an index file per encoder, searched in each process) or 'milvus' "
        "(a Milvus collection per encoder; needs the 'milvus' extra).",
    )
    milvus_uri: str = Field(
        default="",
        description="Milvus server (http://host:19530) or a milvus-lite file; default: index_dir/milvus.db.",
    )
    milvus_index_type: str = Field(
        default="FLAT",
        description="Milvus index of new collections: FLAT (exact, as FAISS flat), HNSW, IVF_FLAT, AUTOINDEX.",
    )


class IndexNotFoundError(FileNotFoundError):
    """No index exists for this encoder in this folder (run ``fittingroom ingest``)."""


class IndexMismatchError(IndexNotFoundError, ValueError):
    """The stored index was built for another encoder (name or embedding dimension), or query
    vectors do not have the index's dimension.

    A subclass of ``IndexNotFoundError`` (callers that report a missing index report this one
    too: there is no usable index for the requested encoder) and of ``ValueError`` (a search with
    vectors of the wrong shape). The message names the stored encoder and dim, the requested
    ones, and the command that rebuilds the index. Attributes: ``stored`` and ``requested``
    ``(encoder_name, dim)`` pairs (``dim`` -1 when unknown).
    """

    def __init__(self, message: str, *, stored: tuple[str, int], requested: tuple[str, int]) -> None:
        super().__init__(message)
        self.stored = stored
        self.requested = requested


class ReadOnlyIndexError(PermissionError):
    """A write was attempted on an index opened read-only."""


def rebuild_hint(encoder_name: str, index_dir: object | None = None) -> str:
    """The command that rebuilds the index of ``encoder_name`` (re-embeds changed images, re-syncs)."""
    where = f" --index-dir {index_dir}" if index_dir is not None else ""
    return f"rebuild it with `fittingroom ingest FEED --encoder {encoder_name}{where}`"


def mismatch_error(
    *, stored: tuple[str, int], requested: tuple[str, int], where: str, index_dir: object | None = None
) -> IndexMismatchError:
    """An ``IndexMismatchError`` whose message names both (encoder, dim) pairs and the rebuild command."""
    s_name, s_dim = stored
    r_name, r_dim = requested
    r_dim_text = f"dim {r_dim}" if r_dim >= 0 else "dim unknown"
    return IndexMismatchError(
        f"{where} was built for encoder {s_name!r} (dim {s_dim}), not for encoder {r_name!r} "
        f"({r_dim_text}): its vectors are not comparable; {rebuild_hint(r_name, index_dir)}",
        stored=stored,
        requested=requested,
    )
