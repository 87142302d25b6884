/**
 * The garment category inferred from an image search's photo (`image_category` of
 * `POST /search/image`: e.g. "top", 92 %): a chip next to the query chips. When it filters
 * (`applied`; the server's default is RETRIEVAL_IMAGE_CATEGORY_FILTER) the chip has a remove
 * button that searches again without the restriction (`use_category=false`, `&cat=0` in the photo's
 * URL); when it does not, the chip offers to filter by it (`use_category=true`, `&cat=1`):
 * `withImageCategory`, `imageCategoryChoice`. When too few products of the category match, the
 * service relaxes it (`relaxed: ["image_category"]`) and the page says so.
 */

/** `image_category` of a search response. */
export interface ImageCategory {
  category: string;
  probability: number;
  garment_class: string;
  applied: boolean;
}

/** The parts of a search response the chip reads. */
export interface CategoryPage {
  image_category?: ImageCategory | null;
  relaxed?: string[];
}

const LABEL: Record<string, string> = {
  top: "top",
  bottom: "bottom",
  one_piece: "dress / one-piece",
  outerwear: "outerwear",
  footwear: "shoes",
  headwear: "hat",
};

/** The chip's text: "top (92 %)". */
export function categoryLabel(c: ImageCategory): string {
  return `${LABEL[c.category] ?? c.category.replace(/_/g, " ")} (${Math.round(c.probability * 100)} %)`;
}

/** `path` with `&cat=1` / `&cat=0` when the shopper chose to filter by the category or not. */
export function withImageCategory(path: string, use: boolean | undefined): string {
  return use === undefined ? path : `${path}${path.includes("?") ? "&" : "?"}cat=${use ? 1 : 0}`;
}

/** The shopper's choice in the URL query string `search` (`cat=1` / `cat=0`), else undefined. */
export function imageCategoryChoice(search: string): boolean | undefined {
  const v = new URLSearchParams(search).get("cat");
  return v === "1" ? true : v === "0" ? false : undefined;
}

/**
 * Add the inferred category chip of `page` to the chips in `box` (after `renderChips`): when it
 * filters (or was relaxed), a remove button running `onChoose(false)`; else a button filtering by it,
 * `onChoose(true)`. Nothing without `onChoose` (not a photo search) or when nothing was inferred.
 */
export function renderImageCategoryChip(
  box: HTMLElement,
  page: CategoryPage,
  onChoose?: (use: boolean) => void,
): void {
  const c = page.image_category;
  if (!c || !onChoose) return;
  const relaxed = page.relaxed?.includes("image_category") ?? false;
  const on = c.applied || relaxed;
  let list = box.querySelector<HTMLUListElement>("ul.chips");
  if (!list) {
    list = document.createElement("ul");
    list.className = "chips";
    list.setAttribute("aria-label", "Understood from your search");
    box.prepend(list);
  }
  const li = document.createElement("li");
  li.className = "chip";
  li.dataset.kind = "image-category";
  li.dataset.applied = String(c.applied);
  const name = LABEL[c.category] ?? c.category;
  const span = document.createElement("span");
  span.textContent = categoryLabel(c);
  span.title = `category seen in the photo (${c.garment_class})`;
  const btn = document.createElement("button");
  btn.type = "button";
  btn.className = on ? "chip-remove" : "chip-add";
  btn.setAttribute("aria-label", on ? `Remove category “${name}”` : `Show only “${name}”`);
  btn.textContent = on ? "×" : "+";
  btn.addEventListener("click", () => onChoose(!on));
  li.append(span, btn);
  list.append(li);
  if (relaxed) {
    const p = document.createElement("p");
    p.className = "chips-note";
    p.textContent = `Not enough ${name} products; showing other categories too.`;
    box.append(p);
  }
  box.hidden = false;
}
