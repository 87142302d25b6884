"""Retrieval service (FastAPI): image / text / text+image product search with filters.

Run alone with ``uvicorn --factory services.retrieval.app:create_app``. The encoder,
the catalog store (read-only) and the FAISS index (memory-mapped, read-only) are
loaded in the lifespan, never at import; encoding and search run in the thread
pool, off the event loop. The index is re-opened when ingest replaces it.

Endpoints: ``POST /search`` (JSON: text, image_url, product_id "more like this"),
``POST /search/image`` (multipart upload + the same fields), ``GET /products/{uid}`` (a product
page), ``GET /products/{uid}/similar``, ``GET /images/{sha256}`` (catalog images from the ingest
cache), ``GET /healthz``, OpenAPI docs at ``/docs``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, HTTPException, Path, Request, UploadFile
from fastapi import Query as QueryParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from PIL import Image
from pydantic import ValidationError

from fittingroom.catalog.image_cache import find_cached_image
from fittingroom.catalog.models import ImageRecord, Product, split_uid, tryon_image
from fittingroom.catalog.store import CatalogStore, ProductFilter
from fittingroom.images import ImageDecodeError, crop_box, decode_image, decode_image_sized, flatten_alpha
from fittingroom.models.encoders.base import Encoder, Query
from fittingroom.models.garment_type import GarmentTypeClassifier, classifier_for_encoder
from fittingroom.models.registry import ModelShelf, default_shelf
from fittingroom.retrieval.garment_color import dominant_color
from fittingroom.retrieval.image_category import (
    RELAXED_KIND,
    InferredCategory,
    infer_category,
    query_image_embedding,
    restrict_to_image_category,
)
from fittingroom.retrieval.product_page import product_page, similar_products
from fittingroom.retrieval.resources import (
    ImageFetcher,
    ImageFetchError,
    IndexHolder,
    IndexUnavailableError,
    image_media_type,
    parse_box,
)
from fittingroom.retrieval.search import (
    NoIndexedImageError,
    ProductNotFoundError,
    Searcher,
    SearchPage,
)
from fittingroom.retrieval.settings import RetrievalSettings, get_retrieval_settings
from services.http import error_responses, guard, image_error, loaded_models, read_upload
from services.retrieval.schemas import (
    ColorGroupOut,
    FacetsOut,
    FilterMatchOut,
    Health,
    ImageCategoryOut,
    ImageColorOut,
    ImageOut,
    IndexInfo,
    ParsedQueryOut,
    ProductOut,
    ProductSummary,
    QueryEcho,
    SearchFilters,
    SearchRequest,
    SearchResponse,
    SearchResult,
    SimilarResponse,
)

log = logging.getLogger(__name__)

_ERRORS = error_responses(400, 404, 413, 415, 422, 503)


class RetrievalState:
    """What the lifespan loads: settings, store, encoder, index holder, searcher, URL fetcher,
    and the garment-type classifier (None when it was trained for another encoder)."""

    def __init__(
        self,
        settings: RetrievalSettings,
        store: CatalogStore,
        encoder: Encoder,
        holder: IndexHolder,
        fetcher: ImageFetcher,
        garment_types: GarmentTypeClassifier | None = None,
    ) -> None:
        self.settings = settings
        self.garment_types = garment_types
        self.store = store
        self.encoder = encoder
        self.holder = holder
        self.fetcher = fetcher
        self.searcher = Searcher(
            store,
            holder.require,
            encoder,
            candidate_multiplier=settings.candidate_multiplier,
            text_relevance_floor=settings.text_relevance_floor,
            color_boost=settings.image_color_boost,
        )


def create_app(
    settings: RetrievalSettings | None = None,
    *,
    store: CatalogStore | None = None,
    encoder: Encoder | None = None,
    shelf: ModelShelf | None = None,
) -> FastAPI:
    """Build the retrieval app. Nothing is loaded until the lifespan starts.

    Models come from ``shelf`` (default: the process's model shelf), so the all-in-one
    server builds each model once for every service.

    ``store`` / ``encoder`` replace the ones named by the settings (tests, the all-in-one
    server sharing loaded models); an injected store is not closed at shutdown.
    """
    settings = settings or get_retrieval_settings()
    models = shelf or default_shelf()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None

        def load() -> RetrievalState:
            from fittingroom.catalog.store import open_store
            from fittingroom.models.specs import get_encoder

            settings.apply_faiss_threads()
            enc = encoder or get_encoder(settings.core(), settings.resolved_encoder, shelf=models)
            st = store or open_store(settings.resolved_store_uri, read_only=True)
            holder = IndexHolder(
                settings.resolved_index_dir, enc.name, reload_s=settings.index_reload_s, dim=enc.dim
            )
            holder.get()  # open now (logs when missing); the service still starts
            if settings.warmup:  # the first forward passes are slow: pay them before the first request
                from PIL import Image as PILImage

                enc.query_vectors(
                    [Query(text="warm-up"), Query(image=PILImage.new("RGB", (64, 64), (128, 128, 128)))]
                )
            garment_types = classifier_for_encoder(enc, models)  # missing file: GarmentTypeModelError
            return RetrievalState(settings, st, enc, holder, ImageFetcher(settings), garment_types)

        state = await run_in_threadpool(load)
        app.state.retrieval = state
        try:
            yield
        finally:
            state.fetcher.close()
            if own_store:
                state.store.close()

    app = FastAPI(
        title="fittingroom retrieval",
        version="0.1.0",
        description="Find shop products from a garment photo, a text, or both. "
        "Results are grouped per product, with the matching image and try-on eligibility.",
        lifespan=lifespan,
    )
    guard(app, settings.max_upload_bytes + 64 * 1024)

    def state_of(request: Request) -> RetrievalState:
        return request.app.state.retrieval  # type: ignore[no-any-return]

    # ---- response building -------------------------------------------------------
    def image_out(request: Request, st: RetrievalState, img: ImageRecord) -> ImageOut:
        if find_cached_image(st.settings.resolved_image_cache_dir, img.sha256) is not None:
            image_url: str | None = request.scope.get("root_path", "") + str(
                request.app.url_path_for("get_image", sha256=img.sha256)
            )
        elif img.url.startswith(("http://", "https://")):
            image_url = img.url
        else:
            image_url = None
        return ImageOut(
            sha256=img.sha256,
            url=img.url,
            image_url=image_url,
            color=img.color,
            is_main=img.is_main,
            tryon_eligible=img.tryon_eligible,
        )

    def summary_fields(
        request: Request, st: RetrievalState, p: Product, matching: ImageRecord | None
    ) -> dict[str, Any]:
        t_img = tryon_image(p, matching)
        return {
            "uid": p.uid,
            "source": p.source,
            "id": p.id,
            "title": p.title,
            "brand": p.brand,
            "price": p.price,
            "currency": p.currency,
            "category_path": p.category_path,
            "garment_category": p.garment_category.value if p.garment_category else None,
            "link": p.link,
            "tryon_eligible": p.tryon_eligible,
            "tryon_image": image_out(request, st, t_img) if t_img is not None else None,
            "tryon_ready": t_img is not None,
        }

    def page_response(
        request: Request, st: RetrievalState, page: SearchPage, echo: QueryEcho, t0: float
    ) -> SearchResponse:
        results = [
            SearchResult(
                **summary_fields(request, st, h.product, h.image),
                score=round(h.score, 6),
                image=image_out(request, st, h.image),
                match=h.match,
            )
            for h in page.hits
        ]
        parsed = page.parsed
        return SearchResponse(
            parsed=ParsedQueryOut.model_validate(parsed.as_dict()) if parsed is not None else None,
            corrected=parsed.corrected_text if parsed is not None else None,
            no_good_match=page.no_good_match,
            relaxed=page.relaxed,
            results=results,
            k=page.k,
            offset=page.offset,
            next_offset=page.next_offset,
            query=echo,
            took_ms=round((time.perf_counter() - t0) * 1000, 2),
        )

    # ---- validation helpers ------------------------------------------------------------
    def check_page(st: RetrievalState, k: int | None, offset: int) -> int:
        k = st.settings.default_k if k is None else k
        if not 1 <= k <= st.settings.max_k:
            raise HTTPException(422, f"k must be between 1 and {st.settings.max_k}, got {k}")
        if not 0 <= offset <= st.settings.max_offset:
            raise HTTPException(422, f"offset must be between 0 and {st.settings.max_offset}, got {offset}")
        return k

    def clean_text(st: RetrievalState, text: str | None) -> str | None:
        if text is None or not text.strip():
            return None
        if len(text) > st.settings.max_text_chars:
            raise HTTPException(422, f"text is longer than {st.settings.max_text_chars} characters")
        return text.strip()

    def to_filter(
        st: RetrievalState, f: SearchFilters
    ) -> tuple[ProductFilter, SearchFilters, list[FilterMatchOut]]:
        """The store filter of ``f``, with brand / category read as the catalog's closest names;
        also the filters as applied and a note per value read as another name (or as none)."""
        brand, category = f.brand or None, f.category or None
        notes: list[FilterMatchOut] = []
        if brand or category:
            names = st.searcher.known_names()
            for field, value in (("brand", brand), ("category", category)):
                if value is None:
                    continue
                m = names.match_brand(value) if field == "brand" else names.match_category(value)
                if not m.exact:
                    notes.append(
                        FilterMatchOut(field=field, given=value, used=m.used, suggestions=list(m.suggestions))
                    )
                if field == "brand":
                    brand = m.used or value
                else:
                    category = m.used or value
        flt = ProductFilter(
            category=category,
            brand=brand,
            min_price=f.min_price,
            max_price=f.max_price,
            tryon_eligible=f.eligible,
        )
        return flt, f.model_copy(update={"brand": brand, "category": category}), notes

    async def run_search(
        request: Request,
        *,
        text: str | None,
        image: Image.Image | None,
        product_id: str | None,
        image_weight: float | None,
        filters: SearchFilters,
        k: int,
        offset: int,
        t0: float,
        exact: bool = False,
        prefer_color: str | None = None,
        vector: Any = None,
        image_category: InferredCategory | None = None,
        use_category: bool = True,
    ) -> SearchResponse:
        st = state_of(request)
        weight = st.settings.default_image_weight if image_weight is None else image_weight
        flt, filters, notes = await run_in_threadpool(to_filter, st, filters)
        echo = QueryEcho(
            text=text,
            image=image is not None,
            product_id=product_id,
            image_weight=weight if (text and (image is not None or product_id)) else None,
            filters=filters,
        )
        try:
            if product_id is not None:
                page = await run_in_threadpool(
                    st.searcher.more_like_this,
                    product_id,
                    text=text,
                    image_weight=weight,
                    k=k,
                    offset=offset,
                    flt=flt,
                )
            elif text and image is None:  # understood: constraints filter, the rest is embedded
                page = await run_in_threadpool(
                    partial(st.searcher.search_text, correct=not exact), text, k=k, offset=offset, flt=flt
                )
            else:
                query = Query(image=image, text=text, image_weight=weight)
                allowed = None
                if image_category is not None and use_category:
                    image_category, allowed = await run_in_threadpool(
                        partial(restrict_to_image_category, flt=flt), st.searcher, image_category
                    )
                page = await run_in_threadpool(
                    partial(
                        st.searcher.search, prefer_color=prefer_color, vector=vector, allowed_ids=allowed
                    ),
                    query,
                    k=k,
                    offset=offset,
                    flt=flt,
                )
                if image_category is not None and image_category.relaxed:
                    page.relaxed = [*page.relaxed, RELAXED_KIND]
        except IndexUnavailableError as exc:
            raise HTTPException(503, str(exc)) from exc
        except ProductNotFoundError as exc:
            raise HTTPException(404, str(exc)) from exc
        except NoIndexedImageError as exc:
            raise HTTPException(422, str(exc)) from exc
        response = page_response(request, st, page, echo, t0)
        response.filter_matches = notes
        if image_category is not None:
            response.image_category = ImageCategoryOut(
                category=image_category.category.value,
                probability=image_category.probability,
                garment_class=image_category.garment_class,
                applied=image_category.applied,
            )
        return response

    # ---- routes --------------------------------------------------------------------------
    @app.post(
        "/search",
        response_model=SearchResponse,
        responses=_ERRORS,
        summary="Search with a text, an image URL, a product ('more like this'), or text + image",
    )
    async def search(request: Request, body: SearchRequest) -> SearchResponse:
        """JSON search. Give `text`, `image_url` or `product_id` (or a text with one of the two
        images, weighted by `image_weight`). To upload an image file use `POST /search/image`."""
        t0 = time.perf_counter()
        st = state_of(request)
        k = check_page(st, body.k, body.offset)
        text = clean_text(st, body.text)
        if text is None and body.image_url is None and body.product_id is None:
            raise HTTPException(
                422,
                "empty query: give a non-blank text, an image_url or a product_id "
                "(or upload an image to POST /search/image)",
            )
        if body.product_id is not None:
            try:
                split_uid(body.product_id)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from exc
        image = None
        if body.image_url is not None:
            if not st.settings.allow_url_fetch:
                raise HTTPException(400, "image_url queries are disabled on this server: upload the image")
            try:
                data = await st.fetcher.fetch(str(body.image_url))
            except ImageFetchError as exc:
                raise HTTPException(exc.status, str(exc)) from exc
            try:
                image = await run_in_threadpool(
                    decode_image,
                    data,
                    max_pixels=st.settings.max_image_pixels,
                    name="image_url",
                    working_side=st.settings.core().working_side,
                )
            except ImageDecodeError as exc:
                # the request itself is JSON: a URL to something that is not an image is a bad
                # parameter (422); an image over the limit is still 413
                status = image_error(exc).status_code
                raise HTTPException(413 if status == 413 else 422, f"{exc} (from {body.image_url})") from exc
        return await run_search(
            request,
            text=text,
            image=image,
            product_id=body.product_id,
            image_weight=body.image_weight,
            filters=body.filters,
            k=k,
            offset=body.offset,
            t0=t0,
            exact=body.exact,
        )

    @app.post(
        "/search/image",
        response_model=SearchResponse,
        responses=_ERRORS,
        summary="Search with an uploaded image (optionally cropped, optionally with a text)",
    )
    async def search_image(
        request: Request,
        image: Annotated[
            UploadFile,
            File(description="JPEG/PNG/WebP photo; RGBA = cut-out, alpha = garment mask."),
        ],
        text: Annotated[str | None, Form(description="Optional text, weighed against the image.")] = None,
        image_weight: Annotated[float | None, Form(ge=0, le=1)] = None,
        box: Annotated[str | None, Form(description="Crop 'x0,y0,x1,y1' in pixels before searching.")] = None,
        category: Annotated[str | None, Form()] = None,
        brand: Annotated[str | None, Form()] = None,
        min_price: Annotated[float | None, Form(ge=0)] = None,
        max_price: Annotated[float | None, Form(ge=0)] = None,
        eligible: Annotated[bool | None, Form()] = None,
        k: Annotated[int | None, Form()] = None,
        offset: Annotated[int, Form(ge=0)] = 0,
        use_color: Annotated[
            bool,
            Form(description="Rank results of the garment's dominant colour family a little higher."),
        ] = True,
        use_category: Annotated[
            bool | None,
            Form(
                description="Restrict results to the garment category inferred from the image "
                "(default: RETRIEVAL_IMAGE_CATEGORY_FILTER)."
            ),
        ] = None,
    ) -> SearchResponse:
        """Multipart search with an image file (field `image`) and the fields of `POST /search`
        as form fields (filters flattened: `category`, `brand`, `min_price`, `max_price`, `eligible`).
        The garment's dominant colour (`image_color`) re-ranks the results unless `use_color` is false;
        the inferred garment category (`image_category`, when confident) filters them when
        `use_category` is true (default: the server's setting; relaxed when fewer than a page of
        products match)."""
        t0 = time.perf_counter()
        st = state_of(request)
        k = check_page(st, k, offset)
        try:
            filters = SearchFilters(
                category=category, brand=brand, min_price=min_price, max_price=max_price, eligible=eligible
            )
        except ValidationError as exc:
            raise HTTPException(422, "; ".join(e["msg"] for e in exc.errors())) from exc
        crop = None
        if box is not None and box.strip():
            try:
                crop = parse_box(box)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from exc
        data = await read_upload(image, st.settings.max_upload_bytes)
        name = image.filename or "upload"
        try:  # decoded straight to the working resolution; the box is in the original's pixels
            img, (full_w, full_h) = await run_in_threadpool(
                decode_image_sized,
                data,
                max_pixels=st.settings.max_image_pixels,
                name=name,
                working_side=st.settings.core().working_side,
            )
        except ImageDecodeError as exc:
            raise image_error(exc) from exc
        if crop is not None:
            x0, y0, x1, y1 = crop
            if x0 < 0 or y0 < 0 or x1 > full_w or y1 > full_h:
                raise HTTPException(422, f"box {crop} lies outside the {full_w}x{full_h} image")
            sx, sy = img.width / full_w, img.height / full_h
            try:
                img = crop_box(img, (x0 * sx, y0 * sy, x1 * sx, y1 * sy))
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from exc
        color = await run_in_threadpool(dominant_color, img)  # of the garment's pixels only
        img = flatten_alpha(img, (st.settings.cutout_background,) * 3)
        text = clean_text(st, text)
        vector, inferred = None, None
        if st.garment_types is not None:  # one forward pass: the classifier reads the query vector
            weight = st.settings.default_image_weight if image_weight is None else image_weight
            query = Query(image=img, text=text, image_weight=weight)
            vector = await run_in_threadpool(st.searcher.encode, query)
            emb = await run_in_threadpool(query_image_embedding, st.encoder, vector, img)
            guess = infer_category(st.garment_types, emb, st.settings.image_category_min_prob)
            inferred = guess if guess.confident else None
        resp = await run_search(
            request,
            text=text,
            image=img,
            product_id=None,
            image_weight=image_weight,
            filters=filters,
            k=k,
            offset=offset,
            t0=t0,
            prefer_color=color.family if (use_color and color is not None) else None,
            vector=vector,
            image_category=inferred,
            use_category=st.settings.image_category_filter if use_category is None else use_category,
        )
        if color is not None:
            resp.image_color = ImageColorOut(family=color.family, lab=color.lab, share=color.share)
        return resp

    @app.get("/products/{uid}", response_model=ProductOut, responses=error_responses(404, 422))
    async def get_product(
        request: Request, uid: Annotated[str, Path(description="'source:id', e.g. 'luma:MH01'")]
    ) -> ProductOut:
        """A product page: details, images grouped by colour variant, availability, the shop
        link, and whether (and with which image) it can be tried on."""
        st = state_of(request)
        try:
            pg = await run_in_threadpool(product_page, st.store, uid)
        except ProductNotFoundError as exc:
            raise HTTPException(404, str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        product = pg.product
        return ProductOut(
            **summary_fields(request, st, product, None),
            description=product.description,
            colors=product.colors,
            sizes=product.sizes,
            gender=product.gender,
            attributes=product.attributes,
            images=[image_out(request, st, img) for img in product.images],
            image_groups=[
                ColorGroupOut(color=g.color, images=[image_out(request, st, img) for img in g.images])
                for g in pg.groups
            ],
            main_image=image_out(request, st, pg.main_image) if pg.main_image is not None else None,
            availability=pg.availability,
        )

    @app.get(
        "/products/{uid}/similar", response_model=SimilarResponse, responses=error_responses(404, 422, 503)
    )
    async def get_similar(
        request: Request,
        uid: Annotated[str, Path(description="'source:id', e.g. 'luma:MH01'")],
        k: Annotated[int | None, QueryParam(description="How many products (1..max_k, default 8).")] = None,
    ) -> SimilarResponse:
        """The products nearest to this product's main image (itself excluded), best first."""
        st = state_of(request)
        k = check_page(st, 8 if k is None else k, 0)
        try:
            hits = await run_in_threadpool(similar_products, st.searcher, uid, k)
        except IndexUnavailableError as exc:
            raise HTTPException(503, str(exc)) from exc
        except ProductNotFoundError as exc:
            raise HTTPException(404, str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        return SimilarResponse(
            uid=uid,
            results=[
                SearchResult(
                    **summary_fields(request, st, h.product, h.image),
                    score=round(h.score, 6),
                    image=image_out(request, st, h.image),
                )
                for h in hits
            ],
        )

    @app.get(
        "/images/{sha256}",
        name="get_image",
        response_class=FileResponse,
        responses={
            **error_responses(404),
            200: {"content": {"image/*": {}}, "description": "The image bytes."},
        },
    )
    async def get_image(
        request: Request,
        sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="sha256")],
    ) -> FileResponse:
        """A catalog image from the ingest image cache, by content hash (cacheable forever)."""
        st = state_of(request)
        path = find_cached_image(st.settings.resolved_image_cache_dir, sha256)
        if path is None:
            raise HTTPException(404, f"no cached image {sha256}")
        media_type = await run_in_threadpool(image_media_type, path)
        return FileResponse(
            path, media_type=media_type, headers={"Cache-Control": "public, max-age=31536000, immutable"}
        )

    @app.get("/facets", response_model=FacetsOut, summary="The brand and category names the filters know")
    async def facets(request: Request) -> FacetsOut:
        """Brands (as the feeds spell them) and categories (lower-case path elements and garment
        categories) of the catalog, sorted: for suggestions. A filter value naming none of them
        is read as the closest one (`filter_matches` of a search answer)."""
        names = await run_in_threadpool(state_of(request).searcher.known_names)
        return FacetsOut(brands=list(names.brands), categories=list(names.category_names))

    @app.get("/healthz", response_model=Health, responses={503: {"model": Health}})
    async def healthz(request: Request) -> Any:
        """Liveness and readiness: 200 when the index is loaded, 503 (status 'no_index') before ingest."""
        st = state_of(request)
        index = await run_in_threadpool(st.holder.get)
        products = await run_in_threadpool(st.store.count_products)
        if index is None:
            body = Health(
                status="no_index",
                encoder=st.encoder.name,
                products=products,
                detail=st.holder.error,
                models=loaded_models(models),
            )
            return JSONResponse(body.model_dump(), status_code=503)
        return Health(
            status="ok",
            encoder=st.encoder.name,
            products=products,
            index=IndexInfo(kind=index.kind.value, count=len(index), dim=index.dim, params=index.params),
            models=loaded_models(models),
        )

    return app


__all__ = ["create_app", "ProductSummary"]
