/**
 * Garment dots and "shop the look".
 *
 * After a photo is read, `GET /images/{image_id}/dots` (services/segmentation/app.py) gives the
 * garments the parsing head found, each with a point inside it in image pixels. They show as
 * buttons over the photo (Tab reaches them; Enter or Space presses them); pressing one is the same
 * as a click there: one include point -> masks -> search. "Shop the look" searches with every
 * detected garment's own mask (its cut-out) and shows one row of results per garment.
 */

import { requestJson } from "./http";
import { el, renderCard, type CardActions } from "./results";
import { search, type SearchFilters } from "./retrieval";
import { fetchCutout } from "./segmentation";

export interface GarmentDot {
  mask_id: string;
  /** upper_inner, outer, lower, one_piece, footwear, bag or headwear. */
  group: string;
  /** A pixel inside the garment, in the uploaded image's pixels. */
  x: number;
  y: number;
  score: number;
  area: number;
  bbox: [number, number, number, number];
  cutout_url: string;
}

export interface DotsResponse {
  image_id: string;
  width: number;
  height: number;
  dots: GarmentDot[];
}

/** What the shopper calls each garment group. */
export const GROUP_NAMES: Record<string, string> = {
  upper_inner: "top",
  outer: "jacket",
  lower: "bottoms",
  one_piece: "dress",
  footwear: "shoes",
  bag: "bag",
  headwear: "hat",
};

export function groupName(group: string): string {
  return GROUP_NAMES[group] ?? group.replace(/_/g, " ");
}

export function fetchDots(imageId: string, signal?: AbortSignal): Promise<DotsResponse> {
  return requestJson<DotsResponse>("segmentation", `/images/${encodeURIComponent(imageId)}/dots`, { signal });
}

/** Results per garment of a look shown. */
const LOOK_K = 6;

export interface DotsElements {
  /** The photo stage the dot layer goes into (positioned, the image fills its width). */
  stage: HTMLElement;
  shopButton: HTMLButtonElement;
  /** Where the rows of "shop the look" go. */
  look: HTMLElement;
}

export class GarmentDots {
  private readonly layer: HTMLDivElement;
  private dots: GarmentDot[] = [];
  private imageId: string | null = null;
  private controller: AbortController | null = null;

  constructor(
    private readonly el: DotsElements,
    private readonly onPress: (dot: GarmentDot) => void,
    private readonly deps: { cardActions: CardActions; filters: () => SearchFilters },
  ) {
    this.layer = document.createElement("div");
    this.layer.className = "dot-layer";
    this.layer.hidden = true;
    // the stage turns pointer and key events into points: a dot's own events stay here
    for (const type of ["pointerdown", "pointerup", "keydown", "click"]) {
      this.layer.addEventListener(type, (e) => {
        if (e.target !== this.layer) e.stopPropagation();
      });
    }
    el.stage.append(this.layer);
    el.shopButton.hidden = true;
    el.shopButton.addEventListener("click", () => void this.shopTheLook());
  }

  /** Load and show the dots of an uploaded photo; failures only mean no dots. */
  async load(imageId: string): Promise<void> {
    this.clear();
    this.imageId = imageId;
    const controller = new AbortController();
    this.controller = controller;
    try {
      const res = await fetchDots(imageId, controller.signal);
      if (controller.signal.aborted || this.imageId !== imageId) return;
      this.show(res);
    } catch {
      // no parsing head (503) or a dropped photo: the page works without dots
    }
  }

  show(res: DotsResponse): void {
    this.dots = res.dots;
    this.layer.replaceChildren(
      ...res.dots.map((dot) => {
        const name = groupName(dot.group);
        const button = document.createElement("button");
        button.type = "button";
        button.className = "garment-dot";
        button.dataset.group = dot.group;
        button.setAttribute("aria-label", `Select the ${name}`);
        button.title = `Select the ${name}`;
        button.style.left = `${((dot.x + 0.5) / res.width) * 100}%`;
        button.style.top = `${((dot.y + 0.5) / res.height) * 100}%`;
        button.addEventListener("click", () => this.onPress(dot));
        return button;
      }),
    );
    this.layer.hidden = res.dots.length === 0;
    this.el.shopButton.hidden = res.dots.length === 0;
  }

  clear(): void {
    this.controller?.abort();
    this.controller = null;
    this.imageId = null;
    this.dots = [];
    this.layer.replaceChildren();
    this.layer.hidden = true;
    this.el.shopButton.hidden = true;
    this.el.look.replaceChildren();
    this.el.look.hidden = true;
  }

  /** One image search per detected garment (its mask's cut-out), shown as one row each. */
  async shopTheLook(): Promise<void> {
    const imageId = this.imageId;
    if (!imageId || !this.dots.length) return;
    const controller = this.controller ?? new AbortController();
    this.controller = controller;
    const { look } = this.el;
    look.hidden = false;
    look.setAttribute("aria-busy", "true");
    const heading = el("h3", { className: "look-heading" }, "Shop the look");
    heading.tabIndex = -1;
    const rows = this.dots.map((dot) => {
      const section = el("section", { className: "look-row" });
      section.dataset.group = dot.group;
      const title = el("h4", { className: "look-title" }, `The ${groupName(dot.group)}`);
      const status = el("p", { className: "status" }, "Searching…");
      section.append(title, status);
      return { dot, section, status };
    });
    look.replaceChildren(heading, ...rows.map((r) => r.section));
    heading.focus({ preventScroll: true });
    heading.scrollIntoView({ block: "nearest" });
    const filters = this.deps.filters();
    await Promise.all(
      rows.map(async ({ dot, section, status }) => {
        try {
          const cutout = await fetchCutout(imageId, dot.mask_id, controller.signal);
          const page = await search({ image: cutout }, filters, { k: LOOK_K, offset: 0 }, controller.signal);
          if (controller.signal.aborted) return;
          const grid = el("ul", { className: "grid look-grid" });
          grid.append(...page.results.map((r) => renderCard(r, this.deps.cardActions)));
          status.textContent = page.results.length ? "" : "No products match.";
          section.append(grid);
        } catch (err) {
          if (controller.signal.aborted) return;
          status.textContent = `The search failed: ${err instanceof Error ? err.message : String(err)}`;
        }
      }),
    );
    if (!controller.signal.aborted) look.removeAttribute("aria-busy");
  }
}
