"""Sync the saved index of one encoder with the catalog store (the source of truth)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fittingroom.index.factory import kind_for_count
from fittingroom.index.settings import (
    IndexBackend,
    IndexKind,
    IndexMismatchError,
    IndexNotFoundError,
    IndexSettings,
)
from fittingroom.index.storage import index_lock
from fittingroom.index.vector_index import VectorIndex

if TYPE_CHECKING:
    from fittingroom.catalog.store import CatalogStore
    from fittingroom.models.encoders.base import Encoder

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """What ``sync_index`` did. Counts are vectors."""

    encoder: str
    kind: IndexKind | None
    count: int
    added: int = 0
    removed: int = 0
    rebuilt: bool = False
    reason: str = ""
    saved: bool = False
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)


def sync_index(
    store: CatalogStore,
    encoder_name: str,
    index_dir: str | Path,
    *,
    settings: IndexSettings | None = None,
    force_rebuild: bool = False,
    batch_size: int = 8192,
    encoder: Encoder | None = None,
) -> SyncReport:
    """Make the saved index of ``encoder_name`` hold exactly the store's embeddings.

    Adds vectors present in the store and missing from the index, removes vectors gone
    from the store, and rebuilds when the index kind must change (the count crossed
    ``settings.approx_threshold``), when an IVF index outgrew its training
    (``retrain_growth``), when the dimension changed, or when ``force_rebuild``. An IVF index
    whose content changed by more than ``retune_fraction`` gets its nprobe re-tuned.
    Saves atomically when anything changed; takes an inter-process lock while it runs.
    A store without embeddings for this encoder leaves no index file (nothing to search).

    ``encoder`` (the one named ``encoder_name``, optional): when an IVF index is (re)tuned,
    text queries made from sampled products (``encoder_query_vectors``) join the tuning
    sample (their recall is then part of the measured ``recall_at_10``).
    """
    settings = settings or IndexSettings()
    t0 = time.perf_counter()
    if settings.backend is IndexBackend.milvus:
        return _sync_milvus(store, encoder_name, index_dir, settings, t0)
    with index_lock(index_dir, encoder_name):
        store_ids = np.fromiter(store.embedding_ids(encoder_name), dtype=np.int64)
        n = len(store_ids)
        want = kind_for_count(n, settings, _store_dim(store, encoder_name, int(store_ids[0])) if n else None)
        existing: VectorIndex | None
        mismatch = ""
        try:
            existing = VectorIndex.open(index_dir, encoder_name, read_only=False, settings=settings)
        except IndexMismatchError as exc:  # another encoder's file under this name: replace it
            log.warning("%s", exc)
            existing, mismatch = None, f"stored index was built for encoder {exc.stored[0]!r}"
        except IndexNotFoundError:
            existing = None
        except Exception as exc:  # corrupt file: the store is the source of truth
            log.warning("unreadable index for %s, rebuilding: %s", encoder_name, exc)
            existing = None

        reason = ""
        if existing is None:
            reason = mismatch or "no index yet"
        elif force_rebuild:
            reason = "rebuild requested"
        elif existing.kind is not want and not _keep_kind(existing.kind, want, n, settings):
            reason = f"{len(existing)} -> {n} vectors: {existing.kind} -> {want}"
        elif existing.kind.approximate and n > settings.retrain_growth * max(
            1, int(existing.params.get("trained_count", n))
        ):
            reason = f"IVF trained on {existing.params.get('trained_count')} vectors, now {n}"
        elif n and existing.dim != _store_dim(store, encoder_name, int(store_ids[0])):
            reason = f"dimension changed from {existing.dim}"

        if reason:
            if n == 0:
                if existing is None:
                    return SyncReport(
                        encoder_name,
                        None,
                        0,
                        reason="store has no embeddings",
                        seconds=time.perf_counter() - t0,
                    )
                vi = VectorIndex.create(encoder_name, existing.dim, settings=settings)
            else:
                qv = encoder_query_vectors(store, encoder, store_ids, settings) if want.approximate else None
                built = VectorIndex.build_from_store(
                    store, encoder_name, kind=want, settings=settings, batch_size=batch_size, query_vectors=qv
                )
                assert built is not None
                vi = built
            vi.save(index_dir)
            return SyncReport(
                encoder_name,
                vi.kind,
                len(vi),
                added=len(vi),
                removed=len(existing) if existing else 0,
                rebuilt=True,
                reason=reason,
                saved=True,
                seconds=time.perf_counter() - t0,
                params=vi.params,
            )

        assert existing is not None
        vi = existing
        index_ids = vi.ids()
        to_remove = np.setdiff1d(index_ids, store_ids, assume_unique=True)
        to_add = np.setdiff1d(store_ids, index_ids, assume_unique=True)
        removed = vi.remove(to_remove) if len(to_remove) else 0
        added = 0
        for start in range(0, len(to_add), batch_size):
            chunk = [int(x) for x in to_add[start : start + batch_size]]
            got = store.get_embeddings(encoder_name, chunk)
            keep = [i for i in chunk if i in got]
            if keep:
                vi.add(np.asarray(keep, dtype=np.int64), np.stack([got[i] for i in keep]))
                added += len(keep)
        changed = bool(added or removed)
        if vi.kind.approximate and int(
            vi.params.get("changed_since_tune", 0)
        ) > settings.retune_fraction * max(1, int(vi.params.get("tuned_count", len(vi)))):
            rng = np.random.default_rng(settings.seed)
            all_ids = vi.ids()

            def sample(k: int) -> tuple[np.ndarray, np.ndarray]:
                chosen = np.sort(rng.choice(all_ids, size=min(k, len(all_ids)), replace=False)).tolist()
                got = store.get_embeddings(encoder_name, chosen)
                keep = [i for i in chosen if i in got]
                return np.asarray(keep, dtype=np.int64), np.stack([got[i] for i in keep])

            vi.retune(
                sample,
                lambda: store.iter_embeddings(encoder_name, batch_size=batch_size),
                encoder_query_vectors(store, encoder, all_ids, settings),
            )
            changed = True
        if changed:
            vi.save(index_dir)
        return SyncReport(
            encoder_name,
            vi.kind,
            len(vi),
            added=added,
            removed=removed,
            saved=changed,
            reason="incremental" if changed else "up to date",
            seconds=time.perf_counter() - t0,
            params=vi.params,
        )


def encoder_query_vectors(
    store: CatalogStore, encoder: Encoder | None, vector_ids: np.ndarray, settings: IndexSettings, n: int = 96
) -> np.ndarray | None:
    """Real text-query vectors for tuning: ``encoder.query_vectors`` of short texts made from
    ``n`` sampled products (``'<colour> <last title word>'``, the leaf category, ``'<colour>
    <leaf>'``). None without an encoder or when it fails."""
    if encoder is None or len(vector_ids) == 0:
        return None
    from fittingroom.models.encoders.base import Query

    rng = np.random.default_rng(settings.seed + 2)
    chosen = rng.choice(vector_ids, size=min(n, len(vector_ids)), replace=False).tolist()
    texts: dict[str, None] = {}
    for vid, product in store.products_by_vector_ids(chosen).items():
        # short, generic queries (what users type) match many products: the hardest for IVF
        image = next((i for i in product.images if i.vector_id == vid), None)
        color = (image.color if image is not None and image.color else "").lower()
        words = product.title.split()
        noun = words[-1].lower() if words else ""
        leaf = product.category_path[-1].lower() if product.category_path else noun
        for t in (f"{color} {noun}", leaf, f"{color} {leaf}"):
            if t.strip():
                texts[" ".join(t.split())] = None
    if not texts:
        return None
    try:
        return np.asarray(
            encoder.query_vectors([Query(text=t) for t in list(texts)[: 2 * n]]), dtype=np.float32
        )
    except Exception as exc:  # tuning must not fail the sync
        log.warning("encoder %s could not embed tuning queries: %s", getattr(encoder, "name", "?"), exc)
        return None


def _keep_kind(have: IndexKind, want: IndexKind, n: int, settings: IndexSettings) -> bool:
    """Hysteresis: keep an approximate index until the store shrinks well below the threshold
    that chose it (half of it); an index that crossed ``pca_threshold`` upwards gets PCA now."""
    if not have.approximate:
        return False
    if want is IndexKind.pca_ivf_sq8:
        return False
    if have is IndexKind.pca_ivf_sq8 and want.approximate:
        return n >= settings.pca_threshold // 2
    return n >= settings.approx_threshold // 2


def _store_dim(store: CatalogStore, encoder_name: str, vector_id: int) -> int:
    got = store.get_embeddings(encoder_name, [vector_id])
    return int(next(iter(got.values())).shape[-1]) if got else -1


def _sync_milvus(
    store: CatalogStore, encoder_name: str, index_dir: str | Path, settings: IndexSettings, t0: float
) -> SyncReport:
    """``sync_index`` for the Milvus backend: upsert / delete in the encoder's collection (created
    on first use; re-created when it holds vectors of another dimension)."""
    from fittingroom.index.milvus import MilvusIndex, collection_name, resolve_uri, sync_milvus

    ids = store.embedding_ids(encoder_name)
    if not ids:
        return SyncReport(
            encoder_name, None, 0, reason="store has no embeddings", seconds=time.perf_counter() - t0
        )
    uri = resolve_uri(settings, index_dir)
    dim = _store_dim(store, encoder_name, next(iter(ids)))
    reason = "milvus"
    try:
        index = MilvusIndex.open(uri, encoder_name, dim=dim, create=True, settings=settings)
    except IndexMismatchError as exc:
        from pymilvus import MilvusClient

        log.warning("%s: dropping the collection", exc)
        client = MilvusClient(uri)
        client.drop_collection(collection_name(encoder_name))
        client.close()
        index = MilvusIndex.open(uri, encoder_name, dim=dim, create=True, settings=settings)
        reason = f"milvus: dimension changed from {exc.stored[1]}"
    try:
        counts = sync_milvus(store, encoder_name, index)
    finally:
        index.close()
    return SyncReport(
        encoder_name,
        None,
        counts["count"],
        added=counts["added"],
        removed=counts["removed"],
        reason=reason,
        saved=bool(counts["added"] or counts["removed"]),
        seconds=time.perf_counter() - t0,
        params={"backend": "milvus", "uri": uri},
    )
