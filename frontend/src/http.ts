/**
 * HTTP plumbing shared by the API clients: one base path per service and errors
 * that carry a message a person can read.
 *
 * The page talks to three services under the same origin, each behind its own
 * prefix: `/api/retrieval`, `/api/segmentation`, `/api/tryon`. The all-in-one
 * server mounts them there; in docker compose the frontend container proxies the
 * same prefixes to the service containers.
 */

export type Service = "retrieval" | "segmentation" | "tryon";

const SERVICE_NAMES: Record<Service, string> = {
  retrieval: "search",
  segmentation: "photo",
  tryon: "try-on",
};

/** Base URL of a service, e.g. `/api/retrieval`. */
export function serviceBase(service: Service): string {
  return `/api/${service}`;
}

/** Resolve a URL returned by a service (absolute, root-relative or relative) against its base. */
export function serviceUrl(service: Service, url: string): string {
  if (/^(https?:|data:|blob:)/.test(url)) return url;
  const base = serviceBase(service);
  if (url.startsWith(base + "/")) return url;
  return `${base}/${url.replace(/^\/+/, "")}`;
}

/** An HTTP or network failure, with a message fit to show on the page. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly service: Service,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** True when the service could not be reached or is not ready (network error, 502/503/504). */
  get unavailable(): boolean {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

interface ValidationItem {
  loc?: (string | number)[];
  msg?: string;
  type?: string;
}

/** What the shopper calls the fields the APIs validate. */
const FIELD_NAMES: Record<string, string> = {
  min_price: "The minimum price",
  max_price: "The maximum price",
  text: "The search text",
  image: "The photo",
  image_url: "The image address",
  image_weight: "The photo weight",
  k: "The page size",
  offset: "The page",
  box: "The selected area",
  points: "The points on the photo",
  brand: "The brand",
  category: "The category",
  product_id: "The product",
};

/** Python object reprs (`<_io.BytesIO object at 0x7f...>`) mean nothing to a shopper. */
const REPR = /<[\w.]+ object at 0x[0-9a-f]+>/gi;

/** One sentence, capitalised and ending with a full stop. */
function sentence(text: string): string {
  const t = text.trim().replace(/\s+/g, " ");
  if (!t) return t;
  const s = t[0].toUpperCase() + t.slice(1);
  return /[.!?…]$/.test(s) ? s : `${s}.`;
}

/** A known validation message as a shopper's sentence, else null. */
function knownProblem(msg: string): string | null {
  if (/min_price.*greater than.*max_price/i.test(msg)) {
    return "The minimum price is higher than the maximum price. Lower the minimum or raise the maximum.";
  }
  return null;
}

function describeItem(item: ValidationItem): string {
  const msg = (item.msg ?? "").replace(/^Value error,\s*/i, "");
  const known = knownProblem(msg);
  if (known) return known;
  const field = [...(item.loc ?? [])].reverse().find((p) => typeof p === "string" && p in FIELD_NAMES);
  const name = typeof field === "string" ? FIELD_NAMES[field] : null;
  if (item.type === "missing") return name ? `${name} is missing.` : "Something the request needs is missing.";
  if (/greater than or equal to 0/.test(msg)) return `${name ?? "The value"} cannot be negative.`;
  if (/valid number|valid integer|parse/.test(msg)) return `${name ?? "The value"} must be a number.`;
  return name ? `${name} is not valid: ${msg.toLowerCase()}.` : sentence(msg || "The request was not valid");
}

/**
 * Turn a FastAPI error body (`{"detail": "..."}` or a list of validation items) into sentences a
 * shopper understands: validation items name the field in words, Python reprs are dropped.
 */
export function describeError(body: unknown, fallback: string): string {
  if (body && typeof body === "object" && "detail" in body) {
    const detail = (body as { detail: unknown }).detail;
    if (typeof detail === "string" && detail.trim()) {
      return knownProblem(detail) ?? detail.replace(REPR, "the file");
    }
    if (Array.isArray(detail) && detail.length) {
      return [...new Set((detail as ValidationItem[]).map(describeItem))].join(" ");
    }
    if (detail && typeof detail === "object" && "message" in detail) {
      return String((detail as { message: unknown }).message).replace(REPR, "the file");
    }
  }
  return fallback;
}

/**
 * Fetch `path` from a service and return the response when it is 2xx.
 * Throws ApiError with the service's own message otherwise.
 */
export async function request(service: Service, path: string, init: RequestInit = {}): Promise<Response> {
  const url = path.startsWith("/api/") ? path : `${serviceBase(service)}${path}`;
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(
      `The ${SERVICE_NAMES[service]} service cannot be reached. Check that the server is running.`,
      0,
      service,
    );
  }
  if (response.ok) return response;
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  let fallback = `The ${SERVICE_NAMES[service]} service answered ${response.status} ${response.statusText}.`;
  if (response.status === 502 || response.status === 503 || response.status === 504) {
    fallback = `The ${SERVICE_NAMES[service]} service is unavailable right now (${response.status}). Try again in a moment.`;
  } else if (response.status === 413) {
    fallback = "That file is too large.";
  }
  throw new ApiError(describeError(body, fallback), response.status, service);
}

/** `request` + JSON body. */
export async function requestJson<T>(service: Service, path: string, init: RequestInit = {}): Promise<T> {
  const response = await request(service, path, init);
  return (await response.json()) as T;
}

/** JSON POST helper. */
export function postJson<T>(service: Service, path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  return requestJson<T>(service, path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
}
