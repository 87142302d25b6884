/**
 * Chips for what the search understood in a text query (`parsed.constraints` of the search
 * response): price bounds, colour, gender, category, brand and size, each with a remove
 * button; a spelling correction ("Showing results for …"); and a note when a constraint was
 * relaxed for lack of matches (`relaxed: ["color"]`).
 *
 * Removing a chip cuts its source span out of the query text and searches again with the
 * shorter text (the caller puts it in the URL), so the URL is the whole state.
 *
 * An image search shows the garment's dominant colour (`image_color`), which re-ranks the
 * results; removing that chip searches again without it (`use_color=false`; in the photo's
 * URL `&color=0`: `withImageColorOff`, `imageColorOff`).
 */

/** One parsed constraint as the API returns it (`start`/`end`: offsets into the query text). */
export interface ParsedConstraint {
  kind: "price" | "color" | "gender" | "category" | "brand" | "size";
  value: string;
  text: string;
  start: number;
  end: number;
  min_price?: number | null;
  max_price?: number | null;
  currency?: string | null;
}

export interface ParsedQuery {
  constraints: ParsedConstraint[];
  residual: string;
}

/** The dominant colour of an uploaded garment (`image_color` of `POST /search/image`). */
export interface ImageColor {
  family: string;
  /** CIELAB: L 0..100, a, b. */
  lab: [number, number, number];
  share: number;
}

/** The parts of a search response the chips read. */
export interface UnderstoodPage {
  parsed?: ParsedQuery | null;
  corrected?: string | null;
  relaxed?: string[];
  image_color?: ImageColor | null;
}

const KIND_LABEL: Record<ParsedConstraint["kind"], string> = {
  price: "price",
  color: "colour",
  gender: "gender",
  category: "category",
  brand: "brand",
  size: "size",
};

/** The chip's text: the words the shopper typed ("under 60", "black"), else the canonical value. */
export function chipLabel(c: ParsedConstraint): string {
  const typed = c.text.trim();
  if (typed) return typed;
  return c.kind === "size" ? `size ${c.value}` : c.value;
}

/** `text` without the span `[start, end)`, blanks collapsed ("black hoodie under 60" - "black"). */
export function withoutSpan(text: string, start: number, end: number): string {
  return `${text.slice(0, start)} ${text.slice(end)}`.replace(/\s+/g, " ").trim();
}

/** `path` (a URL path with a query string) with `&color=0` when `off`: the image colour chip removed. */
export function withImageColorOff(path: string, off: boolean | undefined): string {
  return off ? `${path}${path.includes("?") ? "&" : "?"}color=0` : path;
}

/** Whether the URL query string `search` says the image colour chip was removed (`color=0`). */
export function imageColorOff(search: string): boolean {
  return new URLSearchParams(search).get("color") === "0";
}

/**
 * Show the chips of `page` for the query `text` in `box` (emptied first; hidden when there is
 * nothing to show). `onRemove(newText)` runs when a chip's remove button is pressed; a chip
 * whose removal would leave no text has no remove button. `onExact()`, when given, runs when the
 * shopper asks for the words as typed instead of the spelling correction. The image colour chip
 * shows only with `onRemoveColor()`, its remove button (search again without the colour re-rank).
 */
export function renderChips(
  box: HTMLElement,
  text: string | undefined,
  page: UnderstoodPage,
  onRemove: (newText: string) => void,
  onExact?: () => void,
  onRemoveColor?: () => void,
): void {
  box.replaceChildren();
  const constraints = text ? (page.parsed?.constraints ?? []) : [];
  if (page.corrected) {
    const p = document.createElement("p");
    p.className = "chips-note";
    p.textContent = `Showing results for “${page.corrected}”. `;
    if (onExact && text) {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "link-button";
      btn.textContent = `Search instead for “${text}”`;
      btn.addEventListener("click", onExact);
      p.append(btn);
    }
    box.append(p);
  }
  const list = document.createElement("ul");
  list.className = "chips";
  list.setAttribute("aria-label", "Understood from your search");
  if (page.image_color && onRemoveColor) {
    // what the photo's garment looks like: the image search ranks that colour a little higher
    const [l, a, b] = page.image_color.lab;
    const li = document.createElement("li");
    li.className = "chip";
    li.dataset.kind = "image-color";
    const swatch = document.createElement("span");
    swatch.className = "chip-swatch";
    swatch.setAttribute("aria-hidden", "true");
    swatch.style.backgroundColor = `lab(${l.toFixed(1)}% ${a.toFixed(1)} ${b.toFixed(1)})`;
    const span = document.createElement("span");
    span.textContent = `${page.image_color.family} garment`;
    span.title = "dominant colour of the selected garment";
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "chip-remove";
    btn.setAttribute("aria-label", `Remove colour “${page.image_color.family}”`);
    btn.textContent = "×";
    btn.addEventListener("click", onRemoveColor);
    li.append(swatch, span, btn);
    list.append(li);
  }
  if (constraints.length && text) {
    for (const c of constraints) {
      const label = chipLabel(c);
      const li = document.createElement("li");
      li.className = "chip";
      li.dataset.kind = c.kind;
      const span = document.createElement("span");
      span.textContent = label;
      span.title = KIND_LABEL[c.kind];
      li.append(span);
      const rest = withoutSpan(text, c.start, c.end);
      if (rest) {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.className = "chip-remove";
        btn.setAttribute("aria-label", `Remove ${KIND_LABEL[c.kind]} “${label}”`);
        btn.textContent = "×";
        btn.addEventListener("click", () => onRemove(rest));
        li.append(btn);
      }
      list.append(li);
    }
  }
  if (list.childElementCount) box.append(list);
  if (page.relaxed?.includes("color")) {
    const colours = constraints.filter((c) => c.kind === "color").map(chipLabel);
    const p = document.createElement("p");
    p.className = "chips-note";
    p.textContent = `Not enough ${colours.join(" or ") || "matching"} products; showing other colours too.`;
    box.append(p);
  }
  box.hidden = box.childElementCount === 0;
}
