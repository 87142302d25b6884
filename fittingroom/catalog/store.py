"""The catalog store interface. Implementations: SQLite (embedded), MongoDB.

Both pass ``tests/fittingroom/catalog/test_store_contract.py``.

Besides product documents, the store keeps every image embedding
(``vector_id -> float32 vector``, per encoder name). The store is the source of
truth; the FAISS index is derived from it (``fittingroom.index.sync_index``),
so a crash between writing the store and saving the index is repaired by the
next sync.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from fittingroom.catalog.jobs import JobRecord
from fittingroom.catalog.models import Product, tryon_image


@dataclass(frozen=True)
class ProductFilter:
    """Filters applied inside vector search. ``None`` = no constraint.

    ``category`` matches a product whose category path contains the value as a
    path element or prefix (case-insensitive; 'Men/Tops' and 'Tops' both match
    'Men/Tops/Tees'), or whose ``garment_category`` equals it.
    Prices are in the product's currency units.
    """

    category: str | None = None
    brand: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    tryon_eligible: bool | None = None
    source: str | None = None

    def is_empty(self) -> bool:
        return all(
            v is None
            for v in (
                self.category,
                self.brand,
                self.min_price,
                self.max_price,
                self.tryon_eligible,
                self.source,
            )
        )


@dataclass
class SourceStats:
    """What the catalog holds of one source (counts of products unless said otherwise).

    ``tryon_able``: products for which ``fittingroom.catalog.models.tryon_image`` finds an image;
    ``without_link``: products with no shop link; ``without_image``: products with no image;
    ``images``: images over all the source's products.
    """

    source: str
    products: int = 0
    images: int = 0
    tryon_able: int = 0
    without_link: int = 0
    without_image: int = 0

    @property
    def tryon_share(self) -> float | None:
        """``tryon_able / products`` in [0, 1]; None for a source without products."""
        return self.tryon_able / self.products if self.products else None

    def add(self, product: Product) -> None:
        """Count one product in."""
        self.products += 1
        self.images += len(product.images)
        self.tryon_able += tryon_image(product) is not None
        self.without_link += not product.link
        self.without_image += not product.images


class CatalogStore(ABC):
    """Product documents keyed by (source, id), plus image embeddings keyed by vector id."""

    # ---- products -------------------------------------------------------
    @abstractmethod
    def upsert_products(self, products: Sequence[Product]) -> None:
        """Insert or replace products atomically (all or none of the batch)."""

    @abstractmethod
    def get_product(self, source: str, product_id: str) -> Product | None: ...

    @abstractmethod
    def get_products(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Product]:
        """Fetch many products by key; missing keys are absent from the result."""

    @abstractmethod
    def delete_products(self, keys: Sequence[tuple[str, str]]) -> int:
        """Delete products and their embeddings; returns how many were deleted."""

    @abstractmethod
    def iter_products(self, source: str | None = None) -> Iterator[Product]: ...

    @abstractmethod
    def product_keys(self, source: str | None = None) -> set[tuple[str, str]]: ...

    @abstractmethod
    def count_products(self, source: str | None = None) -> int: ...

    @abstractmethod
    def products_by_vector_ids(self, vector_ids: Sequence[int]) -> dict[int, Product]:
        """Map each known vector id to the product that owns the image."""

    @abstractmethod
    def vector_ids_matching(self, flt: ProductFilter) -> np.ndarray:
        """int64 array of the vector ids of all images of products matching ``flt``."""

    # ---- embeddings -------------------------------------------------------
    @abstractmethod
    def put_embeddings(self, encoder: str, vector_ids: Sequence[int], vectors: np.ndarray) -> None:
        """Store float32 vectors (N, D) for ``encoder`` (replacing existing ids)."""

    @abstractmethod
    def get_embeddings(self, encoder: str, vector_ids: Sequence[int]) -> dict[int, np.ndarray]: ...

    @abstractmethod
    def embedding_ids(self, encoder: str) -> set[int]: ...

    @abstractmethod
    def iter_embeddings(
        self, encoder: str, batch_size: int = 4096
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids int64 (B,), vectors float32 (B, D)) batches."""

    @abstractmethod
    def delete_embeddings(self, encoder: str, vector_ids: Iterable[int]) -> None: ...

    # ---- sources ------------------------------------------------------------
    @abstractmethod
    def source_counts(self) -> dict[str, int]:
        """Number of products of every source that has one."""

    def source_stats(self, source: str | None = None) -> dict[str, SourceStats]:
        """``SourceStats`` of every source with products (only ``source`` when given), sorted by
        name. This default reads every product once; backends override it with aggregates."""
        out: dict[str, SourceStats] = {}
        for product in self.iter_products(source):
            out.setdefault(product.source, SourceStats(product.source)).add(product)
        return dict(sorted(out.items()))

    # ---- jobs (fittingroom.catalog.jobs) ----------------------------------------
    @abstractmethod
    def save_job(self, job: JobRecord) -> None:
        """Insert or replace the job with ``job.id``."""

    @abstractmethod
    def get_job(self, job_id: str) -> JobRecord | None: ...

    @abstractmethod
    def list_jobs(self, *, limit: int = 50, statuses: Sequence[str] | None = None) -> list[JobRecord]:
        """Jobs, newest first (by ``created_at``), at most ``limit``; only ``statuses`` when given."""

    # ---- lifecycle ----------------------------------------------------------
    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> CatalogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(uri: str, *, read_only: bool = False) -> CatalogStore:
    """Open a store from a URI: ``sqlite:///path.db`` or ``mongodb://...``.

    Raises ValueError for an unknown scheme.
    """
    if uri.startswith("sqlite:///"):
        from fittingroom.catalog.sqlite import SQLiteStore

        return SQLiteStore(uri.removeprefix("sqlite:///"), read_only=read_only)
    if uri.startswith(("mongodb://", "mongodb+srv://")):
        from fittingroom.catalog.mongo import MongoStore

        return MongoStore(uri)
    raise ValueError(f"unknown store URI {uri!r}: use sqlite:///PATH or mongodb://HOST/DB")
