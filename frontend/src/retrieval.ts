/**
 * Client of the retrieval service (services/retrieval/schemas.py):
 * `POST /search` (JSON: text, product_id), `POST /search/image` (multipart upload),
 * `GET /products/{uid}`, `GET /products/{uid}/similar`, `GET /images/{sha256}`.
 */

import type { ImageColor, ParsedQuery } from "./chips";
import type { ImageCategory } from "./image-category";
import { postJson, requestJson, serviceUrl } from "./http";

export interface SearchFilters {
  category?: string | null;
  brand?: string | null;
  min_price?: number | null;
  max_price?: number | null;
  eligible?: boolean | null;
}

export interface ImageOut {
  sha256: string;
  url: string;
  image_url: string | null;
  color: string | null;
  is_main: boolean;
  tryon_eligible: boolean | null;
}

export interface ProductSummary {
  uid: string;
  source: string;
  id: string;
  title: string;
  brand: string | null;
  price: number | null;
  currency: string | null;
  category_path: string[];
  garment_category: string | null;
  link: string | null;
  tryon_eligible: boolean | null;
  tryon_image: ImageOut | null;
  /** Try on is offered (the product has an image try-on uses); absent from older servers. */
  tryon_ready?: boolean;
}

/** True when the page offers Try on for this product. */
export function canTryOn(p: ProductSummary): boolean {
  return p.tryon_ready ?? p.tryon_eligible === true;
}

export interface ColorGroup {
  color: string | null;
  images: ImageOut[];
}

/** `GET /products/{uid}`: a product page. */
export interface ProductOut extends ProductSummary {
  description: string;
  colors: string[];
  sizes: string[];
  gender: string | null;
  attributes: Record<string, string>;
  images: ImageOut[];
  image_groups: ColorGroup[];
  main_image: ImageOut | null;
  availability: string | null;
}

export interface SimilarResponse {
  uid: string;
  results: SearchResult[];
}

export interface SearchResult extends ProductSummary {
  score: number;
  image: ImageOut;
}

/** A brand / category filter that named no known value exactly, and how the service read it. */
export interface FilterMatch {
  field: "brand" | "category";
  given: string;
  /** The known name filtered with; null: none is close (no results). */
  used: string | null;
  suggestions: string[];
}

export interface SearchResponse {
  results: SearchResult[];
  k: number;
  offset: number;
  next_offset: number | null;
  took_ms: number;
  filter_matches?: FilterMatch[];
  parsed?: ParsedQuery | null;
  corrected?: string | null;
  relaxed?: string[];
  image_color?: ImageColor | null;
  image_category?: ImageCategory | null;
}

/** The names the brand and category filters know (`GET /facets`). */
export interface Facets {
  brands: string[];
  categories: string[];
}

export function getFacets(signal?: AbortSignal): Promise<Facets> {
  return requestJson<Facets>("retrieval", "/facets", { signal });
}

/** What the user searches with: a text, an image (a garment cut-out), a product, or text plus one image. */
export interface SearchQuery {
  text?: string;
  image?: Blob;
  productId?: string;
  /** The words as typed: no spelling correction. */
  exact?: boolean;
  /** Image queries: false = the garment's colour does not re-rank the results (`use_color`). */
  useColor?: boolean;
  /** Image queries: whether the category inferred from the photo filters (`use_category`; unset: the server's default). */
  useCategory?: boolean;
}

/** Drop unset filters so the request carries only what the user chose. */
function compactFilters(filters: SearchFilters): SearchFilters {
  const out: SearchFilters = {};
  for (const [key, value] of Object.entries(filters) as [keyof SearchFilters, unknown][]) {
    if (value !== null && value !== undefined && value !== "" && value !== false) {
      (out as Record<string, unknown>)[key] = value;
    }
  }
  return out;
}

/** Run one page of a search. Image queries go multipart to `/search/image`; the rest as JSON to `/search`. */
export async function search(
  query: SearchQuery,
  filters: SearchFilters,
  page: { k: number; offset: number },
  signal?: AbortSignal,
): Promise<SearchResponse> {
  const flt = compactFilters(filters);
  const text = query.text?.trim() || undefined;
  if (query.image) {
    const form = new FormData();
    form.append("image", query.image, query.image instanceof File ? query.image.name : "garment.png");
    if (text) form.append("text", text);
    if (query.useColor === false) form.append("use_color", "false");
    if (query.useCategory !== undefined) form.append("use_category", String(query.useCategory));
    for (const [key, value] of Object.entries(flt)) form.append(key, String(value));
    form.append("k", String(page.k));
    form.append("offset", String(page.offset));
    return requestJson<SearchResponse>("retrieval", "/search/image", { method: "POST", body: form, signal });
  }
  return postJson<SearchResponse>(
    "retrieval",
    "/search",
    { text, product_id: query.productId, filters: flt, k: page.k, offset: page.offset, exact: query.exact || undefined },
    signal,
  );
}

/** A URL the browser can load for a catalog image, or null when the service has none. */
export function imageSrc(image: ImageOut | null | undefined): string | null {
  if (!image?.image_url) return null;
  return serviceUrl("retrieval", image.image_url);
}

/** One product page (404: ApiError with the service's sentence). */
export function getProduct(uid: string, signal?: AbortSignal): Promise<ProductOut> {
  return requestJson<ProductOut>("retrieval", `/products/${encodeURIComponent(uid)}`, { signal });
}

/** The products nearest to `uid`, itself excluded. */
export function getSimilar(uid: string, k: number, signal?: AbortSignal): Promise<SimilarResponse> {
  return requestJson<SimilarResponse>("retrieval", `/products/${encodeURIComponent(uid)}/similar?k=${k}`, {
    signal,
  });
}
