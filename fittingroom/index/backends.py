"""Which vector index a process searches: ``open_index`` picks FAISS or Milvus by setting
(``FITTINGROOM_INDEX_BACKEND``); both answer ``search(queries, k, allowed_ids)`` alike."""

from __future__ import annotations

from pathlib import Path

from fittingroom.index.milvus import MilvusIndex, resolve_uri
from fittingroom.index.settings import IndexBackend, IndexSettings
from fittingroom.index.vector_index import VectorIndex

#: Either backend's index: both answer ``search(queries, k, allowed_ids)``, ``reconstruct``, ``len``.
AnyIndex = VectorIndex | MilvusIndex


def open_index(
    index_dir: str | Path,
    encoder_name: str,
    *,
    read_only: bool = True,
    dim: int | None = None,
    settings: IndexSettings | None = None,
) -> AnyIndex:
    """The index of ``encoder_name``: ``VectorIndex.open(index_dir, ...)`` (backend ``faiss``) or
    the Milvus collection at ``settings.milvus_uri`` (default ``index_dir/milvus.db``).
    Raises ``IndexNotFoundError`` / ``IndexMismatchError`` as ``VectorIndex.open`` does."""
    settings = settings or IndexSettings()
    if settings.backend is IndexBackend.milvus:
        return MilvusIndex.open(resolve_uri(settings, index_dir), encoder_name, dim=dim, settings=settings)
    return VectorIndex.open(index_dir, encoder_name, read_only=read_only, dim=dim, settings=settings)
