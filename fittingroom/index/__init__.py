"""FAISS vector index of image embeddings, derived from (and synced with) the catalog store.

Modules:

* ``settings`` - ``IndexSettings`` (env prefix ``FITTINGROOM_INDEX_``), ``IndexKind``, errors.
* ``storage`` - files on disk (one ``.faiss`` + ``.json`` manifest per encoder name), atomic
  saves, the writers' lock.
* ``factory`` - which index for how many vectors (flat / IVF-SQ8), nlist, k-means training.
* ``tuning`` - recall measurement against exact search, the choice of ``nprobe``.
* ``vector_index`` - ``VectorIndex``: build, open, add/remove, filtered search, save.
* ``sync`` - ``sync_index``: make the saved index hold exactly the store's embeddings.
* ``milvus`` - ``MilvusIndex``: the same search contract on a Milvus collection (optional extra).
* ``backends`` - ``open_index``: FAISS or Milvus, by ``FITTINGROOM_INDEX_BACKEND``.

Everything public is importable from ``fittingroom.index``. Importing this package does not
import FAISS (it loads on first use).
"""

from fittingroom.index.backends import AnyIndex, open_index
from fittingroom.index.factory import default_nlist, kind_for_count, max_nlist
from fittingroom.index.milvus import MilvusIndex
from fittingroom.index.settings import (
    IndexBackend,
    IndexKind,
    IndexMismatchError,
    IndexNotFoundError,
    IndexSettings,
    ReadOnlyIndexError,
)
from fittingroom.index.storage import MANIFEST_FORMAT, index_lock, index_paths
from fittingroom.index.sync import SyncReport, encoder_query_vectors, sync_index
from fittingroom.index.tuning import (
    QUERY_GROUP,
    RECALL_K,
    NprobeChoice,
    choose_nprobe,
    exact_knn,
    recall_at_k,
)
from fittingroom.index.vector_index import VectorIndex

__all__ = [
    "AnyIndex",
    "MANIFEST_FORMAT",
    "QUERY_GROUP",
    "RECALL_K",
    "IndexBackend",
    "IndexKind",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexSettings",
    "MilvusIndex",
    "NprobeChoice",
    "ReadOnlyIndexError",
    "SyncReport",
    "VectorIndex",
    "choose_nprobe",
    "default_nlist",
    "encoder_query_vectors",
    "exact_knn",
    "index_lock",
    "index_paths",
    "kind_for_count",
    "max_nlist",
    "open_index",
    "recall_at_k",
    "sync_index",
]
