"""Embed, annotate and write one batch of products; sync the FAISS index from the store.

A batch is committed in this order: all vectors and annotations are computed first
(nothing is written if the encoder or an annotator fails), then the products are
upserted (which also drops the embeddings of images they no longer have), then their
new embeddings are stored. So at any moment every stored embedding belongs to a stored
product; a crash between the two writes leaves products whose new images have no
embedding yet, which the next run embeds. The FAISS index is derived from the store's
embeddings (``fittingroom.index.sync_index``) and re-synced at the end of every run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from catalog_ingest.annotators import ANNOTATION_FIELDS, ImageAnnotator, product_tryon_eligible
from fittingroom.catalog.models import ImageRecord, Product, fill_tryon_modes
from fittingroom.models.encoders.base import document_text

if TYPE_CHECKING:
    from PIL import Image

    from fittingroom.catalog.store import CatalogStore
    from fittingroom.models.encoders.base import Encoder

log = logging.getLogger(__name__)


class IndexSync(Protocol):
    """``sync(store, encoder_name, index_dir, force_rebuild=...)`` -> a report object."""

    def __call__(
        self, store: CatalogStore, encoder_name: str, index_dir: Path, *, force_rebuild: bool = False
    ) -> object: ...


def default_index_sync(
    store: CatalogStore,
    encoder_name: str,
    index_dir: Path,
    *,
    force_rebuild: bool = False,
    encoder: Encoder | None = None,
) -> object:
    """``fittingroom.index.sync_index`` (imported lazily: FAISS loads only when needed).

    With ``encoder``, an approximate index tunes its search depth on real text queries too.
    """
    from fittingroom.index import sync_index

    return sync_index(store, encoder_name, index_dir, force_rebuild=force_rebuild, encoder=encoder)


@dataclass
class PendingImage:
    """A decoded image of ``WorkItem.product.images[index]`` that needs embedding and/or annotation."""

    index: int
    image: Image.Image
    embed: bool
    annotate: bool
    #: What the encoder embeds instead of ``image`` when set: ``encoder.prepare_image(image)``
    #: (an encoder-specific resize, made in the decode pool; embeds like ``image``).
    encoder_image: Image.Image | None = None


@dataclass
class WorkItem:
    """A product to write and its images that need work (may be empty: fields changed only)."""

    product: Product
    pending: list[PendingImage] = field(default_factory=list)


@dataclass
class WriteStats:
    products: int = 0
    embedded: int = 0
    annotated: int = 0


class CatalogWriter:
    """Writes batches of products with their image embeddings to a store.

    ``encoder``: ``document_vectors(images, texts)`` makes one vector per image, with
    ``texts[i] = document_text(product, image_record)``; vectors are stored under
    ``encoder.name``. ``annotators`` run on the same decoded images (``ImageAnnotator``).
    ``batch_size``: images per encoder/annotator call. ``sync``/``index_dir``: how to sync
    the FAISS index (``sync=None`` disables it).
    """

    def __init__(
        self,
        store: CatalogStore,
        encoder: Encoder,
        *,
        annotators: Sequence[ImageAnnotator] = (),
        batch_size: int = 32,
        index_dir: Path | None = None,
        sync: IndexSync | Callable[..., object] | None = default_index_sync,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.store = store
        self.encoder = encoder
        self.annotators = list(annotators)
        self.batch_size = batch_size
        self.index_dir = index_dir
        self.sync = sync
        self._warned_fields: set[str] = set()

    # ---- write ---------------------------------------------------------------------------
    def write(self, items: Sequence[WorkItem]) -> WriteStats:
        """Embed and annotate the pending images of ``items``, then commit them (see module docstring).

        Raises whatever the encoder or an annotator raises (nothing of this batch is written
        then) and ValueError when the encoder returns vectors of the wrong shape or NaNs.
        """
        stats = WriteStats(products=len(items))
        to_embed = [(it, p) for it in items for p in it.pending if p.embed]
        to_annotate = [(it, p) for it in items for p in it.pending if p.annotate]

        vector_ids: list[int] = []
        chunks: list[np.ndarray] = []
        for start in range(0, len(to_embed), self.batch_size):
            batch = to_embed[start : start + self.batch_size]
            images = [p.image if p.encoder_image is None else p.encoder_image for _, p in batch]
            texts = [document_text(it.product, it.product.images[p.index]) for it, p in batch]
            vecs = np.asarray(self.encoder.document_vectors(images, texts))
            if vecs.shape != (len(batch), self.encoder.dim):
                raise ValueError(
                    f"encoder {self.encoder.name!r} returned vectors of shape {vecs.shape}, "
                    f"expected ({len(batch)}, {self.encoder.dim})"
                )
            if not np.isfinite(vecs).all():
                raise ValueError(f"encoder {self.encoder.name!r} returned non-finite values")
            chunks.append(vecs.astype(np.float32, copy=False))
            vector_ids += [it.product.images[p.index].vector_id for it, p in batch]

        # Image features already inside this batch's document vectors, for annotators that
        # compute the same feature (one backbone pass per image instead of two).
        shared_name = getattr(self.encoder, "image_feature_name", None)
        row_of = {vid: n for n, vid in enumerate(vector_ids)}
        all_vecs = np.concatenate(chunks) if chunks else None
        for annotator in self.annotators:
            reuse = (
                shared_name is not None
                and getattr(annotator, "feature_name", None) == shared_name
                and hasattr(annotator, "annotate_features")
                and all_vecs is not None
            )
            for start in range(0, len(to_annotate), self.batch_size):
                batch = to_annotate[start : start + self.batch_size]
                rows = [row_of.get(it.product.images[p.index].vector_id) for it, p in batch] if reuse else []
                if reuse and all(r is not None for r in rows):
                    feats = self.encoder.image_features(all_vecs[rows])  # type: ignore[attr-defined, index]
                    results = annotator.annotate_features(feats)  # type: ignore[attr-defined]
                else:
                    results = annotator.annotate([p.image for _, p in batch])
                if len(results) != len(batch):
                    raise ValueError(
                        f"annotator {annotator.name!r} returned {len(results)} results "
                        f"for {len(batch)} images"
                    )
                for (it, p), values in zip(batch, results, strict=True):
                    it.product.images[p.index] = self._annotated(
                        it.product.images[p.index], values, annotator.name
                    )
        stats.annotated = len(to_annotate) if self.annotators else 0

        for it in items:
            fill_tryon_modes(it.product)
            it.product.tryon_eligible = product_tryon_eligible(it.product)
        if items:
            self.store.upsert_products([it.product for it in items])
        if vector_ids:
            self.store.put_embeddings(self.encoder.name, vector_ids, np.concatenate(chunks))
        stats.embedded = len(vector_ids)
        return stats

    def _annotated(self, record: ImageRecord, values: dict[str, Any], annotator: str) -> ImageRecord:
        unknown = set(values) - ANNOTATION_FIELDS
        for key in unknown - self._warned_fields:
            log.warning("annotator %s returned unknown field %r (ignored)", annotator, key)
            self._warned_fields.add(key)
        update = {k: v for k, v in values.items() if k in ANNOTATION_FIELDS}
        # the try-on mode is derived from the new fields (fill_tryon_modes), never carried over
        update |= {"tryon_mode": None, "tryon_mode_reason": None}
        return ImageRecord.model_validate({**record.model_dump(), **update})

    # ---- index ---------------------------------------------------------------------------
    def sync_index(self, *, force_rebuild: bool = False) -> object | None:
        """Sync the FAISS index of ``encoder.name`` from the store; None when syncing is disabled."""
        if self.sync is None or self.index_dir is None:
            return None
        if self.sync is default_index_sync:
            return default_index_sync(
                self.store,
                self.encoder.name,
                self.index_dir,
                force_rebuild=force_rebuild,
                encoder=self.encoder,
            )
        return self.sync(self.store, self.encoder.name, self.index_dir, force_rebuild=force_rebuild)
