/**
 * fittingroom page: photo search (click a garment), text search, results with filters
 * and paging, and try-on. Talks only to the services' public HTTP APIs (see http.ts).
 */

import "./styles.css";

import { imageColorOff, renderChips, withImageColorOff } from "./chips";
import { imageCategoryChoice, renderImageCategoryChip, withImageCategory } from "./image-category";
import { ApiError } from "./http";
import { MASK_COLORS, PhotoStage, cutoutPreview, type DrawableMask, type PointPrompt } from "./photo";
import { preparePhoto } from "./photo-prep";
import { ProductView, productFromPath, productPath } from "./product";
import { filterMatchNote, renderCard, showEmpty, type CardActions } from "./results";
import {
  getFacets,
  getProduct,
  getSimilar,
  search,
  type ProductSummary,
  type SearchFilters,
  type SearchQuery,
  type SearchResult,
} from "./retrieval";
import { fetchCutout, fetchImage, maskAlpha, predictMasks, uploadImage, type MaskCandidate } from "./segmentation";
import { TryOnDialog } from "./tryon-dialog";
import { GarmentDots } from "./dots";

const PAGE_SIZE = 24;

function $<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} missing from index.html`);
  return node as T;
}

// ---- messages ------------------------------------------------------------------------
const toast = $("toast");
const toastText = $("toast-text");
let toastTimer: number | undefined;

function message(err: unknown): string {
  if (err instanceof ApiError || err instanceof Error) return err.message;
  return String(err);
}

export function showError(err: unknown): void {
  if (err instanceof DOMException && err.name === "AbortError") return;
  console.error(err);
  toastText.textContent = message(err);
  toast.hidden = false;
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => (toast.hidden = true), 12000);
}

$("toast-close").addEventListener("click", () => (toast.hidden = true));

// ---- search state ----------------------------------------------------------------------
interface State {
  query: SearchQuery | null;
  /** What the query is, for the summary line. */
  label: string;
  offset: number;
  nextOffset: number | null;
  controller: AbortController | null;
}

const state: State = { query: null, label: "", offset: 0, nextOffset: null, controller: null };

const grid = $<HTMLUListElement>("results-grid");
const statusLine = $("results-status");
const emptyState = $("empty-state");
const loadMore = $<HTMLButtonElement>("load-more");
const summary = $("query-summary");
const refineField = $("refine-field");
const refineText = $<HTMLInputElement>("refine-text");
const brandList = $<HTMLDataListElement>("brand-list");
const knownBrands = new Set<string>();

function readFilters(): SearchFilters {
  const num = (id: string): number | null => {
    const value = $<HTMLInputElement>(id).value.trim();
    return value === "" ? null : Number(value);
  };
  return {
    category: $<HTMLSelectElement>("filter-category").value || null,
    brand: $<HTMLInputElement>("filter-brand").value.trim() || null,
    min_price: num("filter-min-price"),
    max_price: num("filter-max-price"),
    eligible: $<HTMLInputElement>("filter-eligible").checked ? true : null,
  };
}

function rememberBrands(brands: (string | null | undefined)[]): void {
  for (const brand of brands) {
    if (brand && !knownBrands.has(brand)) {
      knownBrands.add(brand);
      brandList.append(new Option(brand));
    }
  }
}

// every brand the catalog knows, for the brand field's suggestions (a misspelt one is read as
// the closest by the service); without them the brands of the results are suggested
getFacets()
  .then((facets) => rememberBrands(facets.brands))
  .catch(() => undefined);

/** Why the filters cannot be searched with, as a sentence; null when they are fine. */
function filterProblem(filters: SearchFilters): string | null {
  const { min_price: min, max_price: max } = filters;
  for (const [value, name] of [
    [min, "minimum"],
    [max, "maximum"],
  ] as const) {
    if (value !== null && value !== undefined && (!Number.isFinite(value) || value < 0)) {
      return `The ${name} price must be a number of 0 or more.`;
    }
  }
  if (min !== null && min !== undefined && max !== null && max !== undefined && min > max) {
    return `The minimum price (${min}) is higher than the maximum price (${max}). Lower the minimum or raise the maximum.`;
  }
  return null;
}

const tryOn = new TryOnDialog(showError);
const cardActions: CardActions = {
  open(result: SearchResult) {
    if (!productFromPath(window.location.pathname)) resultsScroll = window.scrollY;
    navigate(productPath(result.uid));
  },
  moreLikeThis(result: SearchResult) {
    refineText.value = "";
    if (productFromPath(window.location.pathname)) navigate("/");
    void runSearch({ productId: result.uid }, `More like “${result.title}”`);
  },
  tryOn(result: ProductSummary) {
    tryOn.open(result);
  },
};

/** Start a new search (page 1), or with `append` the next page of the current one. */
async function runSearch(query: SearchQuery | null, label: string, append = false): Promise<void> {
  state.controller?.abort();
  if (!query) return;
  const controller = new AbortController();
  state.controller = controller;
  if (!append) {
    state.query = query;
    state.label = label;
    state.offset = 0;
  }
  // image and product queries can be refined by text
  const refinable = Boolean(query.image || query.productId);
  refineField.hidden = !refinable;
  const refine = refinable ? refineText.value.trim() : "";
  const effective: SearchQuery = refine ? { ...query, text: refine } : query;
  const filters = readFilters();
  const problem = filterProblem(filters);
  if (problem) {
    state.controller = null;
    grid.removeAttribute("aria-busy");
    loadMore.disabled = false;
    statusLine.textContent = problem;
    showError(new Error(problem));
    $<HTMLInputElement>("filter-min-price").focus();
    return;
  }
  summary.textContent = refine ? `${label}, refined by “${refine}”` : label;
  statusLine.textContent = append ? "Loading more…" : "Searching…";
  grid.setAttribute("aria-busy", "true");
  loadMore.disabled = true;
  try {
    const page = await search(effective, filters, { k: PAGE_SIZE, offset: state.offset }, controller.signal);
    if (!append) {
      grid.replaceChildren();
      const typed = query.image || query.productId ? undefined : effective.text;
      renderChips($("query-chips"), typed, page, (rest) => {
        textQuery.value = rest;
        navigate(searchPath(rest, readFilters()));
      }, typed ? () => navigate(searchPath(typed, readFilters(), true)) : undefined, colorOff(query, label));
      renderImageCategoryChip($("query-chips"), page, query.image ? (use) => photoChip(query, label, use) : undefined);
    }
    rememberBrands(page.results.map((r) => r.brand));
    const note = filterMatchNote(page.filter_matches);
    grid.append(...page.results.map((r) => renderCard(r, cardActions)));
    state.nextOffset = page.next_offset;
    const shown = grid.children.length;
    emptyState.hidden = shown > 0;
    if (shown === 0) {
      showEmpty(
        emptyState,
        "No products match.",
        note || "Remove a filter, or try other words or another garment.",
      );
    }
    statusLine.textContent = shown
      ? `${shown} product${shown === 1 ? "" : "s"}${page.next_offset !== null ? " so far" : ""}.${note ? ` ${note}` : ""}`
      : "";
    loadMore.hidden = page.next_offset === null;
    if (!append && query.image && shown > 0 && phone.matches) {
      // on a phone the results of a photo click come first: fold the photo, show the results
      compactPhoto(true);
      window.scrollTo({ top: 0 });
    }
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") return;
    statusLine.textContent = "";
    if (!append) {
      grid.replaceChildren();
      const unavailable = err instanceof ApiError && err.unavailable;
      showEmpty(emptyState, unavailable ? "Search is unavailable." : "The search failed.", message(err));
    }
    showError(err);
  } finally {
    if (state.controller === controller) {
      grid.removeAttribute("aria-busy");
      loadMore.disabled = false;
    }
  }
}

loadMore.addEventListener("click", () => {
  if (state.query && state.nextOffset !== null) {
    state.offset = state.nextOffset;
    void runSearch(state.query, state.label, true);
  }
});

/** URL parameters of a text search and the filters: `?q=..&category=..&brand=..&min=..&max=..&tryon=1`
 * (`&exact=1`: the words as typed, no spelling correction). */
function searchPath(text: string, filters: SearchFilters, exact = false): string {
  const params = new URLSearchParams({ q: text });
  if (exact) params.set("exact", "1");
  if (filters.category) params.set("category", filters.category);
  if (filters.brand) params.set("brand", filters.brand);
  if (filters.min_price !== null && filters.min_price !== undefined) params.set("min", String(filters.min_price));
  if (filters.max_price !== null && filters.max_price !== undefined) params.set("max", String(filters.max_price));
  if (filters.eligible) params.set("tryon", "1");
  return `/?${params}`;
}

/** Put the filters named by the URL into the form. */
function applyFilterParams(params: URLSearchParams): void {
  $<HTMLSelectElement>("filter-category").value = params.get("category") ?? "";
  $<HTMLInputElement>("filter-brand").value = params.get("brand") ?? "";
  $<HTMLInputElement>("filter-min-price").value = params.get("min") ?? "";
  $<HTMLInputElement>("filter-max-price").value = params.get("max") ?? "";
  $<HTMLInputElement>("filter-eligible").checked = params.get("tryon") === "1";
}

/** Search again with the current filters: a text search through the URL (Back undoes it). */
function refilter(): void {
  const query = state.query;
  if (!query) return;
  if (query.text && !query.image && !query.productId && !filterProblem(readFilters())) {
    const path = searchPath(query.text, readFilters(), query.exact);
    if (path !== window.location.pathname + window.location.search) {
      navigate(path);
      return;
    }
  }
  void runSearch(query, state.label);
}

$<HTMLFormElement>("filters").addEventListener("submit", (e) => {
  e.preventDefault();
  refilter();
});
for (const id of ["filter-category", "filter-eligible"]) {
  $(id).addEventListener("change", refilter);
}
refineText.addEventListener("keydown", (e) => {
  if (e.key === "Enter") {
    e.preventDefault();
    if (state.query) void runSearch(state.query, state.label);
  }
});

// ---- text search -------------------------------------------------------------------------
const textQuery = $<HTMLInputElement>("text-query");
$<HTMLFormElement>("text-search").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = textQuery.value.trim();
  if (!text) {
    textQuery.focus();
    showError(new Error("Type what you are looking for, e.g. “black hooded sweatshirt”."));
    return;
  }
  const path = searchPath(text, readFilters());
  if (window.location.pathname + window.location.search === path) void runSearch({ text }, `Results for “${text}”`);
  else navigate(path);
});

// ---- photo search --------------------------------------------------------------------------
const photoPanel = $("photo-panel");
const photoInput = $<HTMLInputElement>("photo-input");
const photoBusy = $("photo-busy");
const photoBusyText = $("photo-busy-text");
const maskChoices = $("mask-choices");
const maskOptions = $("mask-options");
const undoBtn = $<HTMLButtonElement>("undo-point");
const clearBtn = $<HTMLButtonElement>("clear-points");

interface PhotoSession {
  imageId: string | null;
  objectUrl: string;
  candidates: MaskCandidate[];
  drawable: DrawableMask[];
  selected: number;
  /** The points that produced `candidates`. */
  maskPoints: PointPrompt[];
  controller: AbortController;
  /** The candidate to select when the masks of the restored points come (a reopened URL). */
  restoreMask?: number;
  /** The shopper removed the colour chip: the garment's colour does not re-rank (`&color=0`). */
  colorOff?: boolean;
  /** The shopper's choice on the inferred category chip (`&cat=1` / `&cat=0`); unset: the server's default. */
  useCategory?: boolean;
}

/** The image colour chip's remove action: search this photo again without the colour re-rank. */
function colorOff(query: SearchQuery, label: string): (() => void) | undefined {
  if (!query.image || query.useColor === false || !photo) return undefined;
  return () => photoChip(query, label, undefined, false);
}

/** A photo chip pressed: search the photo again with (`use`) or without the inferred category, or without the colour. */
function photoChip(query: SearchQuery, label: string, use: boolean | undefined, color?: boolean): void {
  const session = photo;
  if (!session) return;
  if (color === false) session.colorOff = true;
  if (use !== undefined) session.useCategory = use;
  navigatePhoto(session);
  void runSearch({ ...query, useColor: !session.colorOff, useCategory: session.useCategory }, label);
}

/** True when `next` is `prev` plus one more point: a correction of the mask `prev` gave. */
function extendsByOne(prev: PointPrompt[], next: PointPrompt[]): boolean {
  return (
    prev.length > 0 &&
    next.length === prev.length + 1 &&
    prev.every((p, i) => p.x === next[i].x && p.y === next[i].y && p.label === next[i].label)
  );
}

let photo: PhotoSession | null = null;

const stage = new PhotoStage(
  {
    stage: $("photo-stage"),
    img: $<HTMLImageElement>("photo-img"),
    canvas: $<HTMLCanvasElement>("photo-overlay"),
    cursor: $("photo-cursor"),
  },
  (points) => void onPoints(points),
);

// garment dots: a press is a fresh click there (one include point)
const dots = new GarmentDots(
  { stage: $("photo-stage"), shopButton: $<HTMLButtonElement>("shop-look-button"), look: $("shop-look") },
  (dot) => {
    stage.clear(false);
    stage.addPoint(dot.x, dot.y, 1);
  },
  { cardActions, filters: readFilters },
);

function busy(text: string | null): void {
  photoBusy.hidden = text === null;
  if (text !== null) photoBusyText.textContent = text;
}

$("photo-button").addEventListener("click", () => photoInput.click());
photoInput.addEventListener("change", () => {
  const file = photoInput.files?.[0];
  photoInput.value = "";
  if (file) void openPhoto(file);
});

// drop a photo anywhere on the page
document.addEventListener("dragover", (e) => {
  if (e.dataTransfer?.types.includes("Files")) e.preventDefault();
});
document.addEventListener("drop", (e) => {
  const file = e.dataTransfer?.files?.[0];
  if (!file) return;
  e.preventDefault();
  void openPhoto(file);
});

function closePhoto(): void {
  photo?.controller.abort();
  if (photo) URL.revokeObjectURL(photo.objectUrl);
  photo = null;
  dots.clear();
  compactPhoto(false, false);
  stage.setEnabled(false);
  stage.setPending(false);
  photoPanel.hidden = true;
  maskChoices.hidden = true;
  busy(null);
}
$("photo-close").addEventListener("click", closePhoto);

// ---- phone: the photo folds to a small sticky bar once its results come -----------------------
const phone = window.matchMedia("(max-width: 760px)");
const expandBtn = $<HTMLButtonElement>("photo-expand");

/** Fold the photo panel (`on`) so the results show first on a phone, or unfold it (and with
 * `reveal` scroll to it). */
function compactPhoto(on: boolean, reveal = true): void {
  const compact = on && phone.matches && !photoPanel.hidden;
  if (compact === photoPanel.classList.contains("compact")) return;
  photoPanel.classList.toggle("compact", compact);
  expandBtn.hidden = !compact;
  stage.setEnabled(!compact && Boolean(photo?.imageId));
  if (!compact && reveal) {
    photoPanel.scrollIntoView({ block: "start" });
    $("photo-stage").focus({ preventScroll: true });
  }
}

expandBtn.addEventListener("click", () => compactPhoto(false));
$("photo-stage").addEventListener("click", () => {
  if (photoPanel.classList.contains("compact")) compactPhoto(false);
});
$("photo-stage").addEventListener("keydown", (e) => {
  if (photoPanel.classList.contains("compact") && (e.key === "Enter" || e.key === " ")) {
    e.preventDefault();
    compactPhoto(false);
  }
});

async function openPhoto(file: File): Promise<void> {
  closePhoto();
  refineText.value = ""; // the refine text of the previous photo does not carry over
  if (productFromPath(window.location.pathname)) navigate("/");
  const controller = new AbortController();
  const session: PhotoSession = {
    imageId: null,
    objectUrl: "",
    candidates: [],
    drawable: [],
    selected: -1,
    maskPoints: [],
    controller,
  };
  photo = session;
  photoPanel.hidden = false;
  undoBtn.disabled = clearBtn.disabled = true;
  busy("Reading the photo…");
  try {
    // too small: said before any upload; too big: downscaled here first
    const prepared = await preparePhoto(file);
    if (photo !== session) return;
    session.objectUrl = URL.createObjectURL(prepared.file);
    // show it at once (when the browser can decode it), upload in parallel; clicks made
    // meanwhile wait (drawn pending) and run when the service has read the photo
    const shown = stage
      .show(session.objectUrl)
      .then((size) => {
        if (photo === session) {
          stage.setPending(true);
          stage.setEnabled(true);
        }
        return size;
      })
      .catch(() => null);
    const uploaded = await uploadImage(prepared.file, controller.signal);
    if (photo !== session) return;
    session.imageId = uploaded.image_id;
    void dots.load(uploaded.image_id);
    if (!(await shown)) throw new Error("This photo cannot be shown by your browser.");
    navigatePhoto(session, true);
    stage.setPending(false);
    busy(null);
    $("photo-stage").focus({ preventScroll: true });
    statusLine.textContent = "Click the garment you want in your photo.";
    if (stage.points.length) void onPoints([...stage.points]);
  } catch (err) {
    if (photo !== session) return;
    closePhoto();
    showError(
      err instanceof ApiError && (err.status === 415 || err.status === 422)
        ? new Error(`That file is not a photo we can read: ${err.message}`)
        : err,
    );
  }
}

async function onPoints(points: PointPrompt[]): Promise<void> {
  const session = photo;
  if (!session) return;
  undoBtn.disabled = clearBtn.disabled = points.length === 0;
  if (!session.imageId) {
    // still being read: the points wait, and run when it is ready (openPhoto)
    const n = points.length;
    statusLine.textContent = n
      ? `${n} point${n === 1 ? "" : "s"} waiting: they run as soon as the photo is read.`
      : "";
    return;
  }
  session.controller.abort();
  session.controller = new AbortController();
  const { signal } = session.controller;
  if (!points.some((p) => p.label === 1)) {
    stage.setMasks([], -1);
    session.maskPoints = [];
    session.selected = -1;
    maskChoices.hidden = true;
    navigatePhoto(session);
    if (points.length) statusLine.textContent = "Add a point on the garment (a plain click).";
    return;
  }
  busy("Finding the garment…");
  try {
    // a new point after a mask was shown corrects the selected mask (SAM's mask prompt)
    const previous =
      extendsByOne(session.maskPoints, points) && session.selected >= 0
        ? session.candidates[session.selected]?.mask_id
        : undefined;
    const res = await predictMasks(session.imageId, points, signal, previous);
    const drawable = await Promise.all(
      res.candidates.map(async (c, i) => ({
        source: await maskAlpha(c),
        color: MASK_COLORS[i % MASK_COLORS.length],
        bbox: c.bbox,
      })),
    );
    if (signal.aborted || photo !== session) return;
    session.candidates = res.candidates;
    session.maskPoints = points.map((p) => ({ ...p }));
    session.drawable = drawable;
    renderChoices(session);
    const restored = session.restoreMask;
    session.restoreMask = undefined;
    if (restored === undefined) session.colorOff = false; // new points, a new garment: its colour ranks
    selectMask(session, restored !== undefined && restored < res.candidates.length ? restored : 0);
  } catch (err) {
    showError(err);
  } finally {
    if (!signal.aborted) busy(null);
  }
}

function renderChoices(session: PhotoSession): void {
  const img = $<HTMLImageElement>("photo-img");
  maskOptions.replaceChildren(
    ...session.candidates.map((c, i) => {
      const label = document.createElement("label");
      label.className = "mask-option";
      label.style.setProperty("--swatch", session.drawable[i].color);
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "mask";
      input.value = String(i);
      input.addEventListener("change", () => selectMask(session, i));
      const caption = document.createElement("span");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      caption.append(swatch, i === 0 ? "Best match" : `Option ${i + 1}`);
      caption.title = `score ${c.score.toFixed(2)}, ${c.area.toLocaleString()} pixels`;
      label.append(input, cutoutPreview(img, session.drawable[i]), caption);
      return label;
    }),
  );
  maskChoices.hidden = session.candidates.length === 0;
}

function selectMask(session: PhotoSession, index: number): void {
  session.selected = index;
  stage.setMasks(session.drawable, index);
  const radio = maskOptions.querySelectorAll<HTMLInputElement>("input[type=radio]")[index];
  if (radio) radio.checked = true;
  navigatePhoto(session);
  void searchWithMask(session, index);
}

async function searchWithMask(session: PhotoSession, index: number): Promise<void> {
  const candidate = session.candidates[index];
  if (!candidate || !session.imageId) return;
  try {
    const cutout = await fetchCutout(session.imageId, candidate.mask_id, session.controller.signal);
    if (photo !== session || session.selected !== index) return;
    await runSearch(
      { image: cutout, useColor: !session.colorOff, useCategory: session.useCategory },
      "Similar to the garment in your photo",
    );
  } catch (err) {
    showError(err);
  }
}

/** `?photo=<image_id>&pts=x,y,label;...&mask=<candidate index>`: the photo session in the URL. */
function photoPath(session: PhotoSession): string {
  // built by hand: the points are digits, commas and semicolons, readable unescaped in a URL
  let path = `/?photo=${encodeURIComponent(session.imageId ?? "")}`;
  const points = stage.points;
  if (points.length) path += `&pts=${points.map((p) => `${p.x},${p.y},${p.label}`).join(";")}`;
  if (points.length && session.selected >= 0) path += `&mask=${session.selected}`;
  return withImageCategory(withImageColorOff(path, session.colorOff), session.useCategory);
}

/** Point prompts from the URL's `pts` (malformed entries are skipped). */
function parsePoints(value: string | null): PointPrompt[] {
  const points: PointPrompt[] = [];
  for (const part of (value ?? "").split(";")) {
    const [x, y, label] = part.split(",").map(Number);
    if (Number.isFinite(x) && Number.isFinite(y) && (label === 0 || label === 1)) {
      points.push({ x: Math.round(x), y: Math.round(y), label });
    }
  }
  return points;
}

/** Keep the URL on the photo session: a new entry for a new photo, else replaced in place. */
function navigatePhoto(session: PhotoSession, push = false): void {
  if (photo !== session || !session.imageId) return;
  const path = photoPath(session);
  if (path === window.location.pathname + window.location.search) return;
  if (push) history.pushState(null, "", path);
  else history.replaceState(null, "", path);
}

/** Reopen the photo session a URL names: the photo from the service, its points and chosen mask. */
async function restorePhoto(imageId: string, points: PointPrompt[], mask: number | undefined): Promise<void> {
  closePhoto();
  refineText.value = "";
  const controller = new AbortController();
  const session: PhotoSession = {
    imageId: null,
    objectUrl: "",
    candidates: [],
    drawable: [],
    selected: -1,
    maskPoints: [],
    controller,
    restoreMask: mask,
    colorOff: imageColorOff(window.location.search),
    useCategory: imageCategoryChoice(window.location.search),
  };
  photo = session;
  photoPanel.hidden = false;
  undoBtn.disabled = clearBtn.disabled = true;
  busy("Reading the photo…");
  try {
    const blob = await fetchImage(imageId, controller.signal);
    if (photo !== session) return;
    session.objectUrl = URL.createObjectURL(blob);
    const size = await stage.show(session.objectUrl);
    if (photo !== session) return;
    session.imageId = imageId;
    void dots.load(imageId);
    stage.setEnabled(true);
    busy(null);
    const inside = points.filter((p) => p.x >= 0 && p.y >= 0 && p.x < size.width && p.y < size.height);
    stage.setPoints(inside);
    if (inside.length) void onPoints([...inside]);
    else statusLine.textContent = "Click the garment you want in your photo.";
  } catch (err) {
    if (photo !== session) return;
    if (err instanceof DOMException && err.name === "AbortError") return;
    closePhoto();
    history.replaceState(null, "", "/");
    const gone = err instanceof ApiError && err.status === 404;
    const text = gone
      ? "The photo of this link is no longer kept. Choose it again with “Search with a photo”."
      : message(err);
    showEmpty(emptyState, gone ? "That photo is gone." : "The photo cannot be opened.", text);
    showError(new Error(text));
  }
}

undoBtn.addEventListener("click", () => stage.undo());
clearBtn.addEventListener("click", () => stage.clear());

// ---- start --------------------------------------------------------------------------------
// On a phone the filters start folded away (the summary line opens them).
if (window.matchMedia("(max-width: 760px)").matches) $<HTMLDetailsElement>("filters-box").open = false;

// ---- views and the URL -------------------------------------------------------------------------
// `/?q=<text>`: results of a text search; `/?photo=<image_id>&pts=..&mask=..`: a photo session
// (photoPath); `/product/<uid>`: a product. Back and Forward walk through these (popstate).
const body = document.body;
const productPanel = $("product-panel");
const productView = new ProductView($("product-content"), cardActions);
let productController: AbortController | null = null;
let shownProduct: string | null = null;
/** Where the results were scrolled to when a product was opened (restored on the way back). */
let resultsScroll = 0;
/** The URL (path + query) whose text search the results show. */
let searchedPath = "";

/** Go to `path` (a new history entry) and show its view. */
function navigate(path: string): void {
  const next = new URL(path, window.location.href);
  if (next.pathname + next.search !== window.location.pathname + window.location.search) {
    history.pushState(null, "", next);
  }
  route();
}

function showResultsView(): void {
  productController?.abort();
  shownProduct = null;
  const wasProduct = body.classList.contains("viewing-product");
  body.classList.remove("viewing-product");
  productPanel.hidden = true;
  if (wasProduct) {
    window.scrollTo({ top: resultsScroll });
    $("results-heading").focus({ preventScroll: true });
  }
}

async function showProduct(uid: string): Promise<void> {
  body.classList.add("viewing-product");
  productPanel.hidden = false;
  window.scrollTo({ top: 0 });
  if (shownProduct === uid) return;
  shownProduct = uid;
  productController?.abort();
  const controller = new AbortController();
  productController = controller;
  productView.loading();
  try {
    const product = await getProduct(uid, controller.signal);
    if (controller.signal.aborted) return;
    productView.render(product);
    document.title = `${product.title} · fittingroom`;
    $("product-title").focus({ preventScroll: true });
    try {
      const similar = await getSimilar(uid, 8, controller.signal);
      if (!controller.signal.aborted) productView.similar(similar.results);
    } catch (err) {
      if (err instanceof DOMException && err.name === "AbortError") return;
      productView.similar(null);
    }
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") return;
    shownProduct = null;
    const missing = err instanceof ApiError && (err.status === 404 || err.status === 422);
    productView.failed(
      missing ? "This product is not in the catalog." : "The product cannot be shown right now.",
      missing ? "It may have been removed from the shop. Search for something similar above." : message(err),
    );
    $("product-title").focus({ preventScroll: true });
  }
}

/** Show the view the URL names. */
function route(): void {
  const url = new URL(window.location.href);
  const uid = productFromPath(url.pathname);
  if (uid) {
    void showProduct(uid);
    return;
  }
  document.title = "fittingroom";
  showResultsView();
  const photoId = url.searchParams.get("photo");
  if (photoId) {
    // a reload, a copied URL, or Back/Forward to another photo: reopen it with its points
    if (photo?.imageId !== photoId) {
      const mask = Number(url.searchParams.get("mask"));
      void restorePhoto(photoId, parsePoints(url.searchParams.get("pts")), Number.isInteger(mask) ? mask : undefined);
    }
    return;
  }
  const q = url.searchParams.get("q")?.trim() ?? "";
  if (q) {
    // a new text or new filters in the URL (a link, a reload, Back/Forward): search with them
    const text = state.query && !state.query.image && !state.query.productId ? state.query.text : undefined;
    if (text !== q || searchedPath !== url.pathname + url.search) {
      textQuery.value = q;
      applyFilterParams(url.searchParams);
      searchedPath = url.pathname + url.search;
      void runSearch({ text: q, exact: url.searchParams.get("exact") === "1" }, `Results for “${q}”`);
    }
  } else if (!state.query) {
    showEmpty(
      emptyState,
      "Find a garment.",
      "Search by words above, or use “Search with a photo” and click the garment you like.",
    );
  }
}

$("product-back").addEventListener("click", () => {
  // back to where the shopper came from when that was this page, else to the start
  if (state.query) history.back();
  else navigate("/");
});
window.addEventListener("popstate", route);
route();
