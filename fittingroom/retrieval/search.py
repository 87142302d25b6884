"""Product search over the vector index: encode, search with filters, group per product.

The index holds one vector per product image; a search fetches
``(offset + k + 1) * candidate_multiplier`` image hits, keeps the best image of
each product (its score is the product's score and it is returned as the
matching image), and fetches more hits until the page is full or the index is
exhausted.

``Searcher.search_text`` understands the text first (``fittingroom.retrieval.query``):
its constraints become an id filter inside the index search
(``fittingroom.retrieval.constraints``), its residual is what gets embedded, and with a
relevance floor (``text_relevance_floor``, calibrated per encoder: ``RELEVANCE_FLOORS``)
every hit is labelled ``match = "good"`` or ``"weak"`` and the page says
``no_good_match`` when no hit reaches the floor (or nothing matches the constraints).

Image searches may prefer a colour family (``Searcher.search(prefer_color=...)``, the dominant
colour of the query garment): a bounded re-rank, not a filter (see ``Searcher.search``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from fittingroom.catalog.models import ImageRecord, Product, split_uid
from fittingroom.catalog.store import CatalogStore, ProductFilter
from fittingroom.index import AnyIndex
from fittingroom.models.encoders.base import Encoder, Query, l2_normalize

if TYPE_CHECKING:
    from PIL import Image

    from fittingroom.retrieval.constraints import CatalogFacets
    from fittingroom.retrieval.names import KnownNames
    from fittingroom.retrieval.query import ParsedQuery, QueryParser

#: Text-query relevance floor per encoder name: a text hit scoring below it is a weak match.
#: Calibrated on the Luma catalog (``fittingroom eval queries`` prints the calibration).
RELEVANCE_FLOORS: dict[str, float] = {
    # balanced accuracy 0.979 on 350 relevant / 240 irrelevant hits (issue 16)
    "offline-efficientnet-lite0-gem-minilm-v2": 0.571,
}


class ProductNotFoundError(LookupError):
    """The product id given for "more like this" is not in the catalog."""


class NoIndexedImageError(ValueError):
    """The product has no image embedded with the current encoder."""


@dataclass(frozen=True)
class SearchHit:
    """One product in a result page: its best-matching image and that image's score."""

    product: Product
    image: ImageRecord
    score: float
    #: "good" / "weak" (score at / below the relevance floor); None without a floor.
    match: str | None = None


@dataclass
class SearchPage:
    hits: list[SearchHit]
    k: int
    offset: int
    has_more: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: The understood text query (``search_text``), else None.
    parsed: ParsedQuery | None = None
    #: No hit reaches the relevance floor, or nothing matches the query's constraints.
    no_good_match: bool = False
    relevance_floor: float | None = None
    #: Constraint kinds parsed but not applied as filters (too few matches): ``["color"]``.
    relaxed: list[str] = field(default_factory=list)

    @property
    def next_offset(self) -> int | None:
        return self.offset + len(self.hits) if self.has_more else None


def main_image(product: Product) -> ImageRecord | None:
    """The product's main image (``is_main``), else its first image."""
    for img in product.images:
        if img.is_main:
            return img
    return product.images[0] if product.images else None


class Searcher:
    """Search the catalog with an ``Encoder`` and a ``VectorIndex``.

    ``index`` may be a callable returning the current index (so a service can swap in a
    freshly synced index without rebuilding the searcher). Thread-safe: encoding is
    serialised (one model, few cores), index search and store reads are not.
    """

    def __init__(
        self,
        store: CatalogStore,
        index: AnyIndex | Callable[[], AnyIndex],
        encoder: Encoder,
        *,
        candidate_multiplier: int = 4,
        text_relevance_floor: float | None = None,
        color_filter_min: int = 10,
        color_boost: float = 0.02,
    ) -> None:
        self.store = store
        #: Cosine-score margin a hit of the preferred colour family jumps (``search(prefer_color=)``).
        self.color_boost = color_boost
        #: A named colour filters when at least this many products (one page) match it.
        self.color_filter_min = color_filter_min
        self._index = index
        self.encoder = encoder
        self.candidate_multiplier = candidate_multiplier
        self.text_relevance_floor = (
            text_relevance_floor if text_relevance_floor is not None else RELEVANCE_FLOORS.get(encoder.name)
        )
        self._encode_lock = threading.Lock()
        self._vocab_lock = threading.Lock()
        self._vocab: tuple[tuple[int, int, int], QueryParser, CatalogFacets] | None = None
        self._names: tuple[int, KnownNames] | None = None

    @property
    def index(self) -> AnyIndex:
        return self._index() if callable(self._index) else self._index

    # ---- query vectors ------------------------------------------------------
    def encode(self, query: Query) -> np.ndarray:
        """Query vector, float32 (dim,), L2-normalised."""
        with self._encode_lock:
            v = self.encoder.query_vectors([query])
        return np.asarray(v, dtype=np.float32).reshape(-1)

    def product_vector(self, uid: str) -> tuple[Product, np.ndarray]:
        """The stored document vector of a product's main image (the "more like this" query).

        Raises ValueError for a malformed uid, ProductNotFoundError, NoIndexedImageError.
        """
        source, pid = split_uid(uid)
        product = self.store.get_product(source, pid)
        if product is None:
            raise ProductNotFoundError(f"no product {uid!r} in the catalog")
        images = [img for img in ([main_image(product)] + product.images) if img is not None]
        got = self.store.get_embeddings(self.encoder.name, [img.vector_id for img in images])
        for img in images:  # main image first, else any embedded image
            if img.vector_id in got:
                return product, got[img.vector_id].astype(np.float32)
        raise NoIndexedImageError(f"product {uid!r} has no image indexed with encoder {self.encoder.name!r}")

    def more_like_this_vector(
        self, uid: str, text: str | None = None, image_weight: float = 0.5
    ) -> np.ndarray:
        """Query vector of "more like this" for ``uid``, optionally steered by a text.

        With a text: ``normalise(w * doc_vector + (1 - w) * text_query_vector)``, ``w`` = image_weight.
        """
        _, doc = self.product_vector(uid)
        if text and text.strip():
            tq = self.encode(Query(text=text))
            doc = image_weight * l2_normalize(doc) + (1.0 - image_weight) * tq
        return l2_normalize(doc).reshape(-1)

    # ---- search -------------------------------------------------------------------
    def neighbor_vectors(self, index: AnyIndex, ids: np.ndarray) -> np.ndarray:
        """Document vectors of ``ids`` (M, dim): from the index when it can reconstruct them,
        else from the store (ids missing from the store get zero vectors)."""
        if index.can_reconstruct:
            try:
                return index.reconstruct(ids)
            except KeyError:
                pass
        got = self.store.get_embeddings(self.encoder.name, ids.tolist())
        return np.stack([got.get(int(i), np.zeros(index.dim, np.float32)) for i in ids]).astype(np.float32)

    def search(
        self,
        query: Query | None = None,
        *,
        vector: np.ndarray | None = None,
        k: int = 10,
        offset: int = 0,
        flt: ProductFilter | None = None,
        exclude: Collection[str] = (),
        allowed_ids: np.ndarray | None = None,
        prefer_color: str | None = None,
    ) -> SearchPage:
        """One page of products for ``query`` and/or a query ``vector`` (float32 (dim,)).

        ``vector`` alone: searched as is ("more like this", precomputed vectors). ``query``
        alone: encoded first. Both: ``vector`` is the encoded ``query`` (batched encoding).
        When the encoder asks for pseudo-relevance feedback (``encoder.expansion_neighbors >
        0``) and the query has an image, a first pass fetches that many image hits (same
        filters) and ``encoder.expand_query`` gives the final query vector.
        ``k`` products from rank ``offset``; ``flt`` restricts to matching products and
        ``allowed_ids`` to these image vector ids (both inside the index search);
        ``exclude`` lists product uids to leave out.

        ``prefer_color`` (a colour family, e.g. ``"blue"``: the query garment's dominant colour)
        re-ranks, it does not filter: the images of that family (catalog facets, as the text
        colour filter) rank as if they scored ``color_boost`` more, so a matching product moves
        ahead of non-matching ones at most that far below it (and never past a better match);
        the reported scores stay the cosine similarities. The re-rank happens within the fetched
        candidates (``candidate_multiplier``), so it is bounded by that window too.
        """
        if query is None and vector is None:
            raise ValueError("give a query, a query vector, or both")
        if k < 1 or offset < 0:
            raise ValueError(f"need k >= 1 and offset >= 0, got k={k}, offset={offset}")
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if vector is None:
            assert query is not None
            vector = self.encode(query)
        qv = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        t1 = time.perf_counter()
        timings["encode"] = (t1 - t0) * 1000

        allowed = None if allowed_ids is None else np.asarray(allowed_ids, dtype=np.int64)
        if flt is not None and not flt.is_empty():
            matching = self.store.vector_ids_matching(flt)
            allowed = matching if allowed is None else np.intersect1d(allowed, matching)
        t2 = time.perf_counter()
        timings["filter"] = (t2 - t1) * 1000

        preferred: np.ndarray | None = None
        if prefer_color and self.color_boost > 0:
            _, facets = self.understanding()
            preferred = facets.vector_ids[facets.color_rows(prefer_color)]
        index = self.index
        available = len(index) if allowed is None else min(len(index), len(allowed))
        expansion = int(getattr(self.encoder, "expansion_neighbors", 0) or 0)
        if query is not None and query.image is not None and expansion > 0 and available > 0:
            ts = time.perf_counter()
            s1, i1 = index.search(qv, min(expansion, available), allowed)
            ok = i1[0] >= 0
            if ok.any():
                nv = self.neighbor_vectors(index, i1[0][ok])
                qv = np.asarray(
                    self.encoder.expand_query(query, qv[0], nv, s1[0][ok]), dtype=np.float32
                ).reshape(1, -1)
            timings["expand"] = (time.perf_counter() - ts) * 1000
        need = offset + k + 1  # one more product than the page, to know whether a next page exists
        excluded = set(exclude)
        n = min(available, need * self.candidate_multiplier)
        groups: dict[str, SearchHit] = {}
        timings["search"] = timings["fetch"] = 0.0
        while n > 0:
            ts = time.perf_counter()
            scores, ids = index.search(qv, n, allowed)
            tf = time.perf_counter()
            valid = ids[0] >= 0
            hit_ids, hit_scores = ids[0][valid], scores[0][valid]
            if preferred is not None and len(preferred):
                key = hit_scores + self.color_boost * np.isin(hit_ids, preferred)
                order = np.argsort(-key, kind="stable")
                hit_ids, hit_scores = hit_ids[order], hit_scores[order]
            products = self.store.products_by_vector_ids(hit_ids.tolist())
            groups = {}
            for vid, score in zip(hit_ids.tolist(), hit_scores.tolist(), strict=True):
                product = products.get(vid)
                if product is None:  # index ahead of the store (deleted meanwhile)
                    continue
                uid = product.uid
                if uid in groups or uid in excluded:
                    continue
                image = next((img for img in product.images if img.vector_id == vid), None)
                if image is None:
                    continue
                groups[uid] = SearchHit(product=product, image=image, score=float(score))
            timings["search"] += (tf - ts) * 1000
            timings["fetch"] += (time.perf_counter() - tf) * 1000
            if len(groups) >= need or n >= available or len(hit_ids) < n:
                break
            n = min(available, n * 4)
        ranked = list(groups.values())
        page = ranked[offset : offset + k]
        timings["total"] = (time.perf_counter() - t0) * 1000
        return SearchPage(
            hits=page, k=k, offset=offset, has_more=len(ranked) > offset + k, timings_ms=timings
        )

    # ---- understood text queries ----------------------------------------------------------
    def understanding(self) -> tuple[QueryParser, CatalogFacets]:
        """The query parser and the catalog facets of the current catalog generation.

        Built from the store on first use and again whenever the index object, its size or
        the number of products changes (ingest replaced or grew the catalog).
        """
        from fittingroom.retrieval.constraints import CatalogFacets
        from fittingroom.retrieval.lexicon import QueryLexicon
        from fittingroom.retrieval.query import QueryParser

        index = self.index
        key = (id(index), len(index), self.store.count_products())
        with self._vocab_lock:
            if self._vocab is None or self._vocab[0] != key:
                products = list(self.store.iter_products())
                lexicon = QueryLexicon.from_products(products)
                self._vocab = (key, QueryParser(lexicon), CatalogFacets.from_products(products, lexicon))
            _, parser, facets = self._vocab
        return parser, facets

    def known_names(self) -> KnownNames:
        """The catalog's brand and category names (for forgiving filters and suggestions); built
        from the store on first use and again when the number of products changes."""
        from fittingroom.retrieval.names import KnownNames

        key = self.store.count_products()
        with self._vocab_lock:
            if self._names is None or self._names[0] != key:
                self._names = (key, KnownNames.from_products(self.store.iter_products()))
            return self._names[1]

    def parse(self, text: str) -> ParsedQuery:
        """``text`` understood against the catalog's vocabulary; ValueError when blank."""
        parser, _ = self.understanding()
        return parser.parse(text)

    def search_text(
        self,
        text: str,
        *,
        image: Image.Image | None = None,
        image_weight: float = 0.5,
        k: int = 10,
        offset: int = 0,
        flt: ProductFilter | None = None,
        parsed: ParsedQuery | None = None,
        correct: bool = True,
    ) -> SearchPage:
        """Search with an understood text (optionally with a query image; ``correct=False``:
        no spelling correction, the words as typed).

        The text's constraints restrict the index search (id filter, together with ``flt``),
        its residual is embedded (with ``image`` when given). A colour filters too when at
        least ``color_filter_min`` products (one page, whatever ``k``, so pages of any size
        agree) match it with the other constraints; else it only ranks (the
        colour words are embedded) and ``page.relaxed`` lists ``"color"``. Text-only pages
        label each hit against ``text_relevance_floor``. ValueError when ``text`` is blank.
        """
        from fittingroom.retrieval.lexicon import ConstraintKind

        parser, facets = self.understanding()
        parsed = parsed or parser.parse(text, correct=correct)
        relaxed: list[str] = []
        strict = facets.mask(parsed, color=True) if parsed.of(ConstraintKind.color) else None
        if strict is not None and flt is not None and not flt.is_empty():
            # count what the page could show: the explicit filters apply too
            strict = strict & np.isin(facets.vector_ids, self.store.vector_ids_matching(flt))
        if strict is not None and facets.product_count(strict) >= self.color_filter_min:
            allowed: np.ndarray | None = facets.vector_ids[strict]
        else:
            allowed = facets.allowed_ids(parsed)
            if strict is not None:
                relaxed.append(ConstraintKind.color.value)
        query = Query(text=parsed.residual, image=image, image_weight=image_weight)
        if allowed is not None and len(allowed) == 0:
            page = SearchPage(hits=[], k=k, offset=offset, has_more=False)
        else:
            page = self.search(query, k=k, offset=offset, flt=flt, allowed_ids=allowed)
        page.parsed = parsed
        page.relaxed = relaxed
        floor = self.text_relevance_floor if image is None else None
        page.relevance_floor = floor
        if floor is not None:
            page.hits = [
                SearchHit(h.product, h.image, h.score, "good" if h.score >= floor else "weak")
                for h in page.hits
            ]
        page.no_good_match = not any(h.match in ("good", None) for h in page.hits)
        return page

    def more_like_this(
        self,
        uid: str,
        *,
        text: str | None = None,
        image_weight: float = 0.5,
        k: int = 10,
        offset: int = 0,
        flt: ProductFilter | None = None,
    ) -> SearchPage:
        """Products like ``uid`` (itself excluded); see ``more_like_this_vector``."""
        vector = self.more_like_this_vector(uid, text, image_weight)
        return self.search(vector=vector, k=k, offset=offset, flt=flt, exclude={uid})
