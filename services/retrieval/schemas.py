"""HTTP schemas of the retrieval service (separate from the stored documents in
``fittingroom.catalog.models``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from services.http import ErrorOut as _ErrorOut
from services.http import LoadedModel


class SearchFilters(BaseModel):
    """Product filters, applied inside the vector search (a filtered page is still full)."""

    model_config = ConfigDict(extra="forbid")

    category: str | None = Field(
        default=None,
        description="Category path element or prefix ('Tops', 'Men/Tops', 'men > tops > tees'), "
        "or a garment category ('top', 'bottom', ...). Case-insensitive.",
        examples=["Men/Tops"],
    )
    brand: str | None = Field(
        default=None,
        description="Brand, case-insensitive; a name the catalog does not have is read as the closest "
        "known one (see `filter_matches` of the answer and GET /facets).",
    )
    min_price: float | None = Field(default=None, ge=0, description="Lowest price (product currency).")
    max_price: float | None = Field(default=None, ge=0, description="Highest price (product currency).")
    eligible: bool | None = Field(
        default=None, description="Only products that can (true) / cannot be tried on"
    )

    @model_validator(mode="after")
    def _price_range(self) -> SearchFilters:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError(f"min_price ({self.min_price}) is greater than max_price ({self.max_price})")
        return self


class SearchRequest(BaseModel):
    """A search: a text, an image (``image_url``, or an indexed ``product_id`` for "more like
    this"), or a text plus one image weighted by ``image_weight``. Upload an image file with
    ``POST /search/image`` (multipart) instead."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, description="Text query, e.g. 'black hooded sweatshirt'.")
    image_url: HttpUrl | None = Field(default=None, description="http(s) URL of a query image (fetched).")
    product_id: str | None = Field(
        default=None,
        description="'source:id' of an indexed product: find products like it (itself excluded).",
        examples=["luma:MH01"],
    )
    image_weight: float | None = Field(
        default=None, ge=0, le=1, description="Weight of the image against the text (default 0.5)."
    )
    filters: SearchFilters = Field(default_factory=SearchFilters)
    k: int | None = Field(default=None, description="Products per page (1..max_k, default 10).")
    offset: int = Field(default=0, ge=0, description="Products to skip (pagination).")
    exact: bool = Field(default=False, description="Search the words as typed: no spelling correction.")

    @model_validator(mode="after")
    def _one_image(self) -> SearchRequest:
        if self.image_url is not None and self.product_id is not None:
            raise ValueError("give either image_url or product_id, not both")
        return self


class ImageOut(BaseModel):
    """One catalog image."""

    sha256: str
    url: str = Field(description="Where the image came from (feed URL or path).")
    image_url: str | None = Field(
        description="URL a browser can load: /images/{sha256} when cached, else the original URL."
    )
    color: str | None = None
    is_main: bool = False
    tryon_eligible: bool | None = Field(default=None, description="This image can be sent to try-on.")


class ProductSummary(BaseModel):
    uid: str = Field(description="'source:id'; use it with GET /products/{uid} and as product_id.")
    source: str
    id: str
    title: str
    brand: str | None = None
    price: float | None = None
    currency: str | None = None
    category_path: list[str] = Field(default_factory=list)
    garment_category: str | None = None
    link: str | None = None
    tryon_eligible: bool | None = Field(default=None, description="The product can be tried on.")
    tryon_image: ImageOut | None = Field(
        default=None, description="The image to send to try-on, when one is eligible."
    )
    tryon_ready: bool = Field(
        default=False, description="Try on is offered: the product has an image try-on uses (tryon_image)."
    )


class SearchResult(ProductSummary):
    score: float = Field(description="Cosine similarity of the best matching image, higher is better.")
    image: ImageOut = Field(description="The product image that matched the query best.")
    match: str | None = Field(
        default=None, description="'good' or 'weak' (below the relevance floor) for text queries."
    )


class ParsedConstraint(BaseModel):
    """A constraint read from the text (a removable chip): applied as a filter."""

    kind: str = Field(description="price, color, gender, category, brand or size.")
    value: str = Field(description="Canonical value, e.g. 'gray', 'women', 'hoodie', '<= 50 USD'.")
    text: str = Field(description="The words of the query it came from.")
    start: int = Field(description="Character offset of `text` in the query.")
    end: int
    min_price: float | None = None
    max_price: float | None = None
    currency: str | None = None
    garment_category: str | None = None


class DroppedConstraint(BaseModel):
    kind: str
    text: str
    start: int
    end: int
    reason: str = Field(description="Why it was not applied, e.g. 'unknown currency'.")


class ParsedQueryOut(BaseModel):
    constraints: list[ParsedConstraint] = Field(default_factory=list)
    dropped: list[DroppedConstraint] = Field(default_factory=list)
    residual: str = Field(description="What was embedded once the constraints were taken out.")


class QueryEcho(BaseModel):
    text: str | None = None
    image: bool = Field(default=False, description="The query had an image (upload or URL).")
    product_id: str | None = None
    image_weight: float | None = None
    filters: SearchFilters = Field(default_factory=SearchFilters)


class FilterMatchOut(BaseModel):
    """A brand or category filter that named no known value exactly, and how it was read."""

    field: str = Field(description="'brand' or 'category'.")
    given: str = Field(description="The value as sent.")
    used: str | None = Field(description="The known name filtered with; null: none is close (no results).")
    suggestions: list[str] = Field(
        default_factory=list, description="The closest known names when `used` is null, best first."
    )


class FacetsOut(BaseModel):
    """The names the brand and category filters know (GET /facets), for suggestions."""

    brands: list[str] = Field(description="Brand names as the feeds spell them, sorted.")
    categories: list[str] = Field(description="Category path elements and garment categories, lower-case.")


class ImageColorOut(BaseModel):
    """Dominant colour of the query image's garment (opaque pixels of a cut-out)."""

    family: str = Field(description="Colour family, e.g. 'red' (the query lexicon's families).")
    lab: tuple[float, float, float] = Field(description="CIELAB (L 0..100, a, b) of the dominant cluster.")
    share: float = Field(description="Fraction of the garment's pixels in that cluster (0..1).")


class ImageCategoryOut(BaseModel):
    """Garment category inferred from the query image (a chip the shopper can remove)."""

    category: str = Field(description="GarmentCategory value, e.g. 'top'.")
    probability: float = Field(description="Classifier probability of that category (0..1).")
    garment_class: str = Field(description="Most likely finer class, e.g. 't-shirt'.")
    applied: bool = Field(
        description="Whether the results are restricted to it (false: turned off, or relaxed for lack "
        "of matches: then `relaxed` lists 'image_category')."
    )


class SearchResponse(BaseModel):
    results: list[SearchResult]
    k: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page, null on the last page.")
    query: QueryEcho
    took_ms: float
    parsed: ParsedQueryOut | None = Field(default=None, description="How the text was understood.")
    corrected: str | None = Field(default=None, description="Spelling-corrected text: 'showing results for'.")
    no_good_match: bool = Field(
        default=False, description="No result reaches the relevance floor: the results are the nearest ones."
    )
    image_color: ImageColorOut | None = Field(
        default=None, description="Image uploads: the dominant colour of the garment (a chip on the page)."
    )
    image_category: ImageCategoryOut | None = Field(
        default=None,
        description="Image uploads: the garment category inferred from the image when the classifier "
        "is confident (RETRIEVAL_IMAGE_CATEGORY_MIN_PROB); it filters unless `use_category` is false.",
    )
    relaxed: list[str] = Field(
        default_factory=list,
        description="Parsed constraint kinds not applied as filters for lack of matches (e.g. 'color').",
    )
    filter_matches: list[FilterMatchOut] = Field(
        default_factory=list, description="Brand / category filters read as another (known) name, or none."
    )


class ColorGroupOut(BaseModel):
    """The images of one colour variant."""

    color: str | None = Field(description="Colour name as the feed gives it; null: images without a colour.")
    images: list[ImageOut]


class ProductOut(ProductSummary):
    """A product page: details, every image (flat and grouped by colour), availability, shop link."""

    description: str = ""
    colors: list[str] = Field(default_factory=list)
    sizes: list[str] = Field(default_factory=list)
    gender: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    images: list[ImageOut] = Field(default_factory=list)
    image_groups: list[ColorGroupOut] = Field(
        default_factory=list, description="The images by colour variant; the main image's group first."
    )
    main_image: ImageOut | None = Field(default=None, description="The product's main image.")
    availability: str | None = Field(
        default=None,
        description="in_stock, out_of_stock, preorder or backorder; null when the feed does not say.",
    )


class SimilarResponse(BaseModel):
    """Products nearest to one product's main image, itself excluded, best first."""

    uid: str
    results: list[SearchResult]


class IndexInfo(BaseModel):
    kind: str
    count: int
    dim: int
    params: dict = Field(default_factory=dict)


class Health(BaseModel):
    status: str = Field(description="'ok', or 'no_index' when nothing was ingested yet.")
    encoder: str
    products: int
    index: IndexInfo | None = None
    detail: str | None = None
    models: list[LoadedModel] = Field(default_factory=list, description="Models this process has loaded.")


ErrorOut = _ErrorOut  # the one error body of every service (services.http)
