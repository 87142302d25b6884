"""Feed ingest: reader -> mapper -> image fetch/decode -> writer -> index sync.

``ingest_feed`` (a feed file) and ``ingest_records`` (feed records in memory: the crawler) share
one path and are idempotent per ``(source, id)``:

* every image is fetched and hashed; its vector id is ``vector_id_for(source, id, sha256)``,
  so an unchanged image keeps its id and its stored embedding (nothing is embedded when
  the feed did not change), and a changed image gets a new id: only it is embedded, and
  the old one's embedding is dropped with the product's new version;
* an image whose document text changed (title, colour, category... see
  ``fittingroom.models.encoders.document_text``) is re-embedded under the same id, and the
  index is then rebuilt from the store (a marker file in the index folder keeps that
  request across a crash);
* only images that need an embedding or an annotation are decoded;
* products are committed in batches (``CatalogWriter``); a crash or Ctrl-C loses at most
  the batch in flight, the index is re-synced from the store on the way out, and the
  next run resumes where this one stopped (committed products are unchanged then);
* ``prune=True`` deletes the source's products absent from the feed (after a complete
  pass only; never when the feed yielded no product);
* ``new``/``updated`` count products once their batch is committed (a failed batch adds nothing);
* a bad row (unparsable record, missing id/title/image, unparsable price, an image that
  cannot be fetched or decoded) is reported as ``file:line: reason`` and skipped.

Images are fetched and decoded by a thread pool while the encoder works on the
previous batch.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog_ingest.annotators import ANNOTATION_FIELDS, ImageAnnotator, is_annotated, product_tryon_eligible
from catalog_ingest.images import ImageFetcher, ImageFetchError
from catalog_ingest.mapper import FeedMapper, FieldMapping, ImageRef, ProductDraft
from catalog_ingest.readers import FeedError, FeedFormat, read_feed
from catalog_ingest.writer import CatalogWriter, IndexSync, PendingImage, WorkItem, default_index_sync
from fittingroom.catalog.models import ImageRecord, Product, fill_tryon_modes, utcnow, vector_id_for
from fittingroom.catalog.store import ProductFilter
from fittingroom.images import ImageDecodeError, decode_image_sized
from fittingroom.models.encoders.base import document_text

if TYPE_CHECKING:
    from PIL import Image

    from fittingroom.catalog.store import CatalogStore
    from fittingroom.models.encoders.base import Encoder

log = logging.getLogger(__name__)

#: Decoded images larger than this are bad rows (decompression-bomb guard).
MAX_PIXELS = 60_000_000


@dataclass
class BadRow:
    """A skipped feed row."""

    file: str
    line: int | None
    reason: str
    product_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.reason}"


@dataclass
class IngestReport:
    """What one ingest run did (counts of products and images)."""

    feed: str
    source: str
    encoder: str
    records: int = 0
    products: int = 0
    without_link: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    images: int = 0
    embedded: int = 0
    annotated: int = 0
    pruned: int = 0
    orphans_removed: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    #: Rows kept with a value dropped (e.g. a ``javascript:`` shop link).
    warnings: list[BadRow] = field(default_factory=list)
    index: object | None = None
    index_rebuilt: bool = False
    prune_skipped: str | None = None
    seconds: float = 0.0
    interrupted: bool = False
    error: str | None = None

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``fittingroom ingest --json``)."""
        return {
            "feed": self.feed,
            "source": self.source,
            "encoder": self.encoder,
            "records": self.records,
            "products": self.products,
            "without_link": self.without_link,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "images": self.images,
            "embedded": self.embedded,
            "annotated": self.annotated,
            "pruned": self.pruned,
            "prune_skipped": self.prune_skipped,
            "orphans_removed": self.orphans_removed,
            "index": _describe_index(self.index, self.index_rebuilt),
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
            "error": self.error,
            "bad_rows": [
                {"file": b.file, "line": b.line, "id": b.product_id, "reason": b.reason}
                for b in self.bad_rows
            ],
            "warnings": [
                {"file": b.file, "line": b.line, "id": b.product_id, "reason": b.reason}
                for b in self.warnings
            ],
        }

    def summary_rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs for a summary table."""
        rows = [
            ("feed", self.feed),
            ("source", self.source),
            ("encoder", self.encoder),
            ("records read", str(self.records)),
            ("products in feed", str(self.products)),
            ("products without a shop link", str(self.without_link)),
            ("new", str(self.new)),
            ("updated", str(self.updated)),
            ("unchanged", str(self.unchanged)),
            ("bad rows (skipped)", str(len(self.bad_rows))),
            ("rows kept with a value dropped", str(len(self.warnings))),
            ("images checked", str(self.images)),
            ("images embedded", str(self.embedded)),
            ("images annotated", str(self.annotated)),
            ("pruned", str(self.pruned) if self.prune_skipped is None else f"skipped: {self.prune_skipped}"),
            ("stale embeddings removed", str(self.orphans_removed)),
            ("index", _describe_index(self.index, self.index_rebuilt)),
            ("time", f"{self.seconds:.1f} s ({self.images_per_second:.1f} embedded images/s)"),
        ]
        if self.interrupted:
            rows.append(("status", "interrupted: run again to resume"))
        elif self.error:
            rows.append(("status", f"failed: {self.error}"))
        return rows


def _describe_index(index: object | None, rebuilt: bool) -> str:
    if index is None:
        return "not synced"
    count = getattr(index, "count", None)
    kind = getattr(index, "kind", None)
    reason = getattr(index, "reason", "")
    parts = [f"{count} vectors" if count is not None else "synced"]
    if kind is not None:
        parts.append(str(kind))
    if reason:
        parts.append(str(reason))
    if rebuilt:
        parts.append("rebuilt (document texts changed)")
    return ", ".join(parts)


class IngestAborted(Exception):
    """Ingest stopped on an error after committing ``report`` (store and index are consistent)."""

    def __init__(self, report: IngestReport, message: str) -> None:
        super().__init__(message)
        self.report = report


class IngestInterrupted(KeyboardInterrupt):
    """Ctrl-C during ingest; ``report`` says what was committed. Run again to resume."""

    def __init__(self, report: IngestReport) -> None:
        super().__init__("ingest interrupted")
        self.report = report


#: Feed file stems that do not name a shop: the folder name is used instead.
GENERIC_FEED_STEMS = frozenset({"products", "product", "feed", "catalog", "catalogue", "items", "export"})


def default_source(feed: str | Path) -> str:
    """Source name of a feed: its file stem (``feeds/shop.csv.gz`` -> ``'shop'``), unless the stem
    is generic (``luma-catalog/products.jsonl``): then the folder name without a ``-catalog`` /
    ``-feed`` suffix (``'luma'``), so two shops' ``products.jsonl`` do not share one source."""
    path = Path(feed)
    stem = Path(path.name.removesuffix(".gz")).stem
    if stem.lower() not in GENERIC_FEED_STEMS:
        return stem
    folder = path.resolve().parent.name.lower()
    for suffix in ("-catalog", "-catalogue", "-feed", "_catalog", "_feed"):
        folder = folder.removesuffix(suffix)
    return folder if re.fullmatch(r"[a-z0-9][a-z0-9._-]*", folder) else stem


def validate_source(source: str) -> str:
    """Source names are used in product ids ``source:id``: letters, digits, ``._-`` only."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", source or ""):
        raise ValueError(
            f"invalid source name {source!r}: use letters, digits, '.', '_' or '-' (no ':'); "
            "pass --source NAME"
        )
    return source


# ---- per-image work (runs in the thread pool) -----------------------------------------------


@dataclass
class _Prepared:
    ref: ImageRef
    sha256: str
    vector_id: int
    old: ImageRecord | None
    image: Image.Image | None
    width: int | None
    height: int | None
    embed: bool
    annotate: bool
    reembed: bool  # embedded before under the same id, but the document text changed
    encoder_image: Image.Image | None = None  # ``encoder.prepare_image(image)``, made in the pool


@dataclass
class _Job:
    draft: ProductDraft
    stored: Product | None
    futures: list[Future[_Prepared]]


class _Ingest:
    def __init__(
        self,
        *,
        report: IngestReport,
        label: str,
        store: CatalogStore,
        writer: CatalogWriter,
        fetcher: ImageFetcher,
        annotate: bool,
        embedded_ids: set[int],
        max_pixels: int,
    ) -> None:
        self.report = report
        self.label = label
        self.store = store
        self.writer = writer
        self.fetcher = fetcher
        self.annotate = annotate
        self.embedded_ids = embedded_ids
        self.max_pixels = max_pixels

    def prepare(self, draft: ProductDraft, stored: Product | None, ref: ImageRef) -> _Prepared:
        fetched = self.fetcher.fetch(ref.url)
        product = draft.product
        vid = vector_id_for(product.source, product.id, fetched.sha256)
        old = next((r for r in stored.images if r.vector_id == vid), None) if stored else None
        has_vector = vid in self.embedded_ids
        reembed = False
        if has_vector:
            new_record = ImageRecord(url=ref.url, sha256=fetched.sha256, vector_id=vid, color=ref.color)
            # the stored vector was made from the old text: embed again when the text changed
            reembed = (
                stored is None
                or old is None
                or document_text(stored, old) != document_text(product, new_record)
            )
        embed = not has_vector or reembed
        annotate = self.annotate and not (old is not None and is_annotated(old))
        image = None
        width, height = (old.width, old.height) if old is not None else (None, None)
        encoder_image = None
        if embed or annotate or width is None:
            # only the encoder looks at it: a JPEG may decode downscaled (annotators need it full)
            min_side = (
                getattr(self.writer.encoder, "decode_min_side", None) if embed and not annotate else None
            )
            image, (width, height) = decode_image_sized(
                fetched.read(), max_pixels=self.max_pixels, name=ref.url, min_side=min_side
            )
            prepare = getattr(self.writer.encoder, "prepare_image", None)
            if embed and prepare is not None:  # pad/resize here, in the pool, not in the writer
                encoder_image = prepare(image)
                image = encoder_image if not annotate else image
        return _Prepared(
            ref, fetched.sha256, vid, old, image, width, height, embed, annotate, reembed, encoder_image
        )

    def finish(self, job: _Job) -> tuple[WorkItem | None, bool]:
        """A job's fetched images -> (WorkItem or None when unchanged or bad, whether any was re-embedded).

        Counts ``unchanged`` and bad rows; ``new``/``updated`` are counted after the write commits.
        """
        draft, stored = job.draft, job.stored
        prepared: list[_Prepared] = []
        error: tuple[ImageRef, Exception] | None = None
        for ref, fut in zip(draft.images, job.futures, strict=True):
            try:
                prepared.append(fut.result())
            except (ImageFetchError, ImageDecodeError, OSError) as exc:
                error = error or (ref, exc)
        if error is not None:
            bad_ref, cause = error
            kind = "unreadable image" if isinstance(cause, ImageDecodeError) else "image not available"
            reason = f"{kind}: {cause}"
            self.report.bad_rows.append(BadRow(self.label, bad_ref.line, reason, draft.product.id))
            return None, False

        # one record per distinct image content (two links to the same bytes = one image)
        by_sha: dict[str, _Prepared] = {}
        records: list[ImageRecord] = []
        pending: list[PendingImage] = []
        for prep in prepared:
            if prep.sha256 in by_sha:
                idx = next(i for i, r in enumerate(records) if r.sha256 == prep.sha256)
                records[idx].is_main |= prep.ref.is_main
                records[idx].color = records[idx].color or prep.ref.color
                continue
            by_sha[prep.sha256] = prep
            carried = (
                {k: getattr(prep.old, k) for k in ANNOTATION_FIELDS} if prep.old and not prep.annotate else {}
            )
            records.append(
                ImageRecord(
                    url=prep.ref.url,
                    sha256=prep.sha256,
                    vector_id=prep.vector_id,
                    color=prep.ref.color,
                    width=prep.width,
                    height=prep.height,
                    is_main=prep.ref.is_main,
                    **carried,
                )
            )
            if prep.image is not None and (prep.embed or prep.annotate):
                pending.append(
                    PendingImage(len(records) - 1, prep.image, prep.embed, prep.annotate, prep.encoder_image)
                )

        now = utcnow()
        product = draft.product.model_copy(
            update={
                "images": records,
                "created_at": stored.created_at if stored else now,
                "updated_at": stored.updated_at if stored else now,
                "tryon_eligible": stored.tryon_eligible if stored else None,
            }
        )
        fill_tryon_modes(product)  # as the store derives them, so the comparison below is fair
        if not pending:  # every image carries its annotations: the try-on rule can be applied now
            product.tryon_eligible = product_tryon_eligible(product)
        self.report.images += len(records)
        if (
            stored is not None
            and not pending
            and product.tryon_eligible == stored.tryon_eligible  # a flag stored under an older rule
            and product.content_hash() == stored.content_hash()
            and [r.model_dump() for r in records] == [r.model_dump() for r in stored.images]
        ):
            self.report.unchanged += 1
            return None, False
        product.updated_at = now
        # new/updated are counted once the writer committed the item (see _run)
        return WorkItem(product, pending), any(p.reembed for p in prepared)


def _units(drafts: Sequence[ProductDraft], images_per_unit: int) -> Iterator[list[ProductDraft]]:
    """Consecutive groups of whole products with at most ``images_per_unit`` images
    (a product with more images is a group of its own)."""
    unit: list[ProductDraft] = []
    count = 0
    for d in drafts:
        if unit and count + len(d.images) > images_per_unit:
            yield unit
            unit, count = [], 0
        unit.append(d)
        count += len(d.images)
    if unit:
        yield unit


def _rebuild_marker(index_dir: Path, encoder_name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_name)
    return index_dir / f".{safe}.rebuild-needed"


def ingest_feed(
    feed: str | Path,
    *,
    store: CatalogStore,
    encoder: Encoder,
    source: str | None = None,
    mapping: FieldMapping | None = None,
    feed_format: FeedFormat | str | None = None,
    prune: bool = False,
    batch_size: int = 32,
    workers: int = 4,
    annotators: Sequence[ImageAnnotator] = (),
    fetcher: ImageFetcher | None = None,
    image_cache: str | Path | None = None,
    image_roots: Sequence[str | Path] | None = None,
    index_dir: str | Path | None = None,
    sync: IndexSync | Any | None = default_index_sync,
    progress: bool = True,
    max_pixels: int = MAX_PIXELS,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Ingest one feed file into ``store`` and sync the FAISS index (see the module docstring).

    ``source`` defaults to ``default_source(feed)``; ``mapping`` to auto-detection (GMC names or
    the Luma preset); ``image_cache`` to ``settings.home / 'images'`` (ignored when a
    ``fetcher`` is given); ``image_roots``: folders local image paths may lie in (default: the
    feed's folder; ignored with a ``fetcher``); ``index_dir`` to ``settings.resolved_index_dir``; ``sync=None``
    skips the index. ``batch_size`` images go to the encoder per call; ``workers`` threads
    fetch and decode images. ``on_progress(done, total)`` is called with product counts once the
    feed is mapped and after each committed unit (background jobs report progress with it). Relative image paths are relative to the feed's folder.

    Returns the IngestReport. Raises FeedError when the feed cannot be opened,
    ValueError for a bad source name, IngestInterrupted on Ctrl-C and IngestAborted (its
    ``__cause__`` is the original error) when the encoder, an annotator or the store
    fails; in both cases after committing finished batches and re-syncing the index.
    """
    t0 = time.perf_counter()
    feed_path = Path(feed)
    if not feed_path.is_file():
        raise FeedError(feed_path, None, "feed file not found")
    source = validate_source(source or default_source(feed_path))
    report = IngestReport(feed=str(feed_path), source=source, encoder=encoder.name)

    def on_feed_error(err: FeedError) -> None:
        report.records += 1
        report.bad_rows.append(BadRow(str(feed_path), err.line, err.message))

    return _run(
        report,
        read_feed(feed_path, feed_format, on_error=on_feed_error),
        t0=t0,
        store=store,
        encoder=encoder,
        mapping=mapping,
        prune=prune,
        batch_size=batch_size,
        workers=workers,
        annotators=annotators,
        fetcher=fetcher,
        image_cache=image_cache,
        base_dir=feed_path.parent,
        image_roots=image_roots,
        index_dir=index_dir,
        sync=sync,
        progress=progress,
        max_pixels=max_pixels,
        on_progress=on_progress,
    )


def ingest_records(
    records: Iterable[Mapping[str, Any]],
    *,
    store: CatalogStore,
    encoder: Encoder,
    source: str,
    name: str = "<records>",
    mapping: FieldMapping | None = None,
    prune: bool = False,
    batch_size: int = 32,
    workers: int = 4,
    annotators: Sequence[ImageAnnotator] = (),
    fetcher: ImageFetcher | None = None,
    image_cache: str | Path | None = None,
    base_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    sync: IndexSync | Any | None = default_index_sync,
    progress: bool = True,
    max_pixels: int = MAX_PIXELS,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """``ingest_feed`` on feed records already in memory (the crawler's GMC records): the same
    mapper -> image fetch -> writer -> index sync path, without a feed file.

    ``records`` are feed rows (dicts, one per line of a feed; row ``n`` is "line" ``n`` in bad
    rows, reported under ``name``); ``base_dir`` resolves relative image paths. Other arguments,
    return value and errors as for ``ingest_feed`` (no FeedError: there is no file to open).
    """
    t0 = time.perf_counter()
    source = validate_source(source)
    report = IngestReport(feed=name, source=source, encoder=encoder.name)
    return _run(
        report,
        enumerate(records, start=1),
        t0=t0,
        store=store,
        encoder=encoder,
        mapping=mapping,
        prune=prune,
        batch_size=batch_size,
        workers=workers,
        annotators=annotators,
        fetcher=fetcher,
        image_cache=image_cache,
        base_dir=Path(base_dir) if base_dir is not None else None,
        index_dir=index_dir,
        sync=sync,
        progress=progress,
        max_pixels=max_pixels,
        on_progress=on_progress,
    )


def _run(
    report: IngestReport,
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    *,
    t0: float,
    store: CatalogStore,
    encoder: Encoder,
    mapping: FieldMapping | None,
    prune: bool,
    batch_size: int,
    workers: int,
    annotators: Sequence[ImageAnnotator],
    fetcher: ImageFetcher | None,
    image_cache: str | Path | None,
    base_dir: Path | None,
    index_dir: str | Path | None,
    sync: IndexSync | Any | None,
    progress: bool,
    image_roots: Sequence[str | Path] | None = None,
    max_pixels: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """The shared body of ``ingest_feed`` and ``ingest_records``: map, fetch, write, prune, sync."""
    source, label = report.source, report.feed
    if index_dir is None or (fetcher is None and image_cache is None):
        from fittingroom.settings import get_settings

        settings = get_settings()
        index_dir = index_dir if index_dir is not None else settings.resolved_index_dir
        image_cache = image_cache if image_cache is not None else settings.home / "images"
    index_path = Path(index_dir)
    own_fetcher = fetcher is None
    fetcher = fetcher or ImageFetcher(
        image_cache,  # type: ignore[arg-type]
        base_dir=base_dir,
        local_roots=[base_dir, *image_roots] if image_roots and base_dir else None,
    )
    writer = CatalogWriter(
        store, encoder, annotators=annotators, batch_size=batch_size, index_dir=index_path, sync=sync
    )

    # 1. read + map (the whole feed: rows of one item group may be far apart)
    def count(rows: Iterable[tuple[int, Mapping[str, Any]]]) -> Iterator[tuple[int, Mapping[str, Any]]]:
        for row in rows:
            report.records += 1
            yield row

    mapper = FeedMapper(source, mapping)
    drafts, issues = mapper.map_records(count(rows))
    report.bad_rows += [BadRow(label, i.line, i.reason, i.product_id) for i in issues]
    report.warnings += [BadRow(label, i.line, i.reason, i.product_id) for i in mapper.notices]
    report.products = len(drafts)
    report.without_link = sum(1 for d in drafts if not d.product.link)
    feed_keys = {d.key for d in drafts} | {(source, i.product_id) for i in issues if i.product_id}

    marker = _rebuild_marker(index_path, encoder.name)
    force_rebuild = marker.exists()
    state = _Ingest(
        report=report,
        label=label,
        store=store,
        writer=writer,
        fetcher=fetcher,
        annotate=bool(annotators),
        embedded_ids=store.embedding_ids(encoder.name),
        max_pixels=max_pixels,
    )
    bar = _progress(progress, sum(len(d.images) for d in drafts), source)
    done_products = 0
    if on_progress is not None:
        on_progress(0, len(drafts))
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ingest-image")
    completed = False
    failure: BaseException | None = None
    try:
        # 2. fetch/decode ahead in the pool while the encoder works on the current unit
        units = _units(drafts, batch_size)
        queue: deque[list[_Job]] = deque()

        def submit_next() -> bool:
            unit = next(units, None)
            if unit is None:
                return False
            stored = store.get_products([d.key for d in unit])
            queue.append(
                [
                    _Job(
                        d,
                        stored.get(d.key),
                        [pool.submit(state.prepare, d, stored.get(d.key), r) for r in d.images],
                    )
                    for d in unit
                ]
            )
            return True

        for _ in range(3):
            submit_next()
        while queue:
            jobs = queue.popleft()
            submit_next()
            items: list[WorkItem] = []
            created = 0
            for job in jobs:
                item, reembed = state.finish(job)
                if item is not None:
                    items.append(item)
                    created += job.stored is None
                if reembed and not force_rebuild:
                    marker.parent.mkdir(parents=True, exist_ok=True)
                    marker.touch()  # before the store changes: survives a crash
                    force_rebuild = True
            if items:
                stats = writer.write(items)
                report.new += created  # counted once committed: a failed batch adds nothing
                report.updated += len(items) - created
                report.embedded += stats.embedded
                report.annotated += stats.annotated
                state.embedded_ids.update(
                    it.product.images[p.index].vector_id for it in items for p in it.pending if p.embed
                )
            bar.update(sum(len(j.draft.images) for j in jobs))
            done_products += len(jobs)
            if on_progress is not None:
                on_progress(done_products, len(drafts))
            bar.set_postfix(embedded=report.embedded, bad=len(report.bad_rows), refresh=False)

        # 3. prune, drop embeddings no product owns, done
        if prune:
            if not drafts:
                report.prune_skipped = "the feed yielded no product"
            else:
                gone = sorted(store.product_keys(source) - feed_keys)
                report.pruned = store.delete_products(gone) if gone else 0
        owned = set(store.vector_ids_matching(ProductFilter()).tolist())
        orphans = store.embedding_ids(encoder.name) - owned
        if orphans:
            store.delete_embeddings(encoder.name, orphans)
            report.orphans_removed = len(orphans)
        completed = True
    except KeyboardInterrupt as exc:
        report.interrupted = True
        failure = exc
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {exc}"
        failure = exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        if own_fetcher:
            fetcher.close()
        # 4. the index follows the store, whatever happened above
        try:
            report.index = writer.sync_index(force_rebuild=force_rebuild)
            report.index_rebuilt = force_rebuild and report.index is not None
            if force_rebuild and report.index is not None:
                marker.unlink(missing_ok=True)
        except Exception as exc:
            log.error("index sync failed (the next run retries it): %s", exc)
            if completed:
                report.error = f"index sync failed: {type(exc).__name__}: {exc}"
                failure = exc
        report.seconds = time.perf_counter() - t0
        report.bad_rows.sort(key=lambda b: (b.line is None, b.line or 0))
    for bad in report.bad_rows:
        log.debug("skipped %s", bad)
    if isinstance(failure, KeyboardInterrupt):
        raise IngestInterrupted(report) from None
    if failure is not None:
        raise IngestAborted(report, f"ingest of {label} stopped: {report.error}") from failure
    return report


class _NoBar:
    def update(self, n: int) -> None: ...

    def set_postfix(self, **kw: Any) -> None: ...

    def close(self) -> None: ...


def _progress(enabled: bool, total: int, source: str) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", desc=f"ingest {source}", dynamic_ncols=True)
