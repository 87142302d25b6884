/**
 * The garment category inferred from an image search's photo (`image_category` of
 * `POST /search/image`: e.g. "top", 92 %): a chip next to the query chips. While it is there the
 * results are restricted to that category; removing it searches again without the restriction
 * (`use_category=false`; in the photo's URL `&cat=0`: `withImageCategoryOff`, `imageCategoryOff`).
 * When too few products of the category match, the service relaxes it (`relaxed:
 * ["image_category"]`) and the page says so.
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

/** `path` with `&cat=0` when `off`: the inferred category chip removed. */
export function withImageCategoryOff(path: string, off: boolean | undefined): string {
  return off ? `${path}${path.includes("?") ? "&" : "?"}cat=0` : path;
}

/** Whether the URL query string `search` says the inferred category chip was removed (`cat=0`). */
export function imageCategoryOff(search: string): boolean {
  return new URLSearchParams(search).get("cat") === "0";
}

/**
 * Add the inferred category chip of `page` to the chips in `box` (after `renderChips`), with a
 * remove button running `onRemove`; nothing without `onRemove` (the shopper removed it) or when the
 * service inferred nothing. A relaxed category adds a note.
 */
export function renderImageCategoryChip(box: HTMLElement, page: CategoryPage, onRemove?: () => void): void {
  const c = page.image_category;
  if (!c || !onRemove) return;
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
  const span = document.createElement("span");
  span.textContent = categoryLabel(c);
  span.title = `category seen in the photo (${c.garment_class})`;
  const btn = document.createElement("button");
  btn.type = "button";
  btn.className = "chip-remove";
  btn.setAttribute("aria-label", `Remove category “${LABEL[c.category] ?? c.category}”`);
  btn.textContent = "×";
  btn.addEventListener("click", onRemove);
  li.append(span, btn);
  list.append(li);
  if (page.relaxed?.includes("image_category")) {
    const p = document.createElement("p");
    p.className = "chips-note";
    p.textContent = `Not enough ${LABEL[c.category] ?? c.category} products; showing other categories too.`;
    box.append(p);
  }
  box.hidden = false;
}
