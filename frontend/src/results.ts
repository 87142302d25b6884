/** The results grid: one card per product, built with DOM calls (no HTML strings, so no injection). */

import { canTryOn, imageSrc, type FilterMatch, type ProductSummary, type SearchResult } from "./retrieval";

export interface CardActions {
  /** Open the product view (a click on the card, or Enter while it has the focus). */
  open(result: SearchResult): void;
  moreLikeThis(result: SearchResult): void;
  tryOn(result: ProductSummary): void;
}

/** Only http(s) shop links are rendered (never javascript:, data:, ...). */
export function safeLink(link: string | null | undefined): string | null {
  if (!link) return null;
  try {
    const url = new URL(link);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

const priceFormats = new Map<string, Intl.NumberFormat>();

/** "$32.00", "€49.95"; the bare number when the currency is unknown or not ISO 4217. */
export function formatPrice(price: number | null, currency: string | null): string {
  if (price === null || price === undefined) return "";
  if (currency) {
    let fmt = priceFormats.get(currency);
    if (!fmt) {
      try {
        fmt = new Intl.NumberFormat(undefined, { style: "currency", currency });
      } catch {
        return `${price.toFixed(2)} ${currency}`;
      }
      priceFormats.set(currency, fmt);
    }
    return fmt.format(price);
  }
  return price.toFixed(2);
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

export function renderCard(result: SearchResult, actions: CardActions): HTMLLIElement {
  const li = el("li", { className: "card" });
  li.dataset.uid = result.uid;
  li.dataset.eligible = String(result.tryon_eligible === true);
  li.dataset.garmentCategory = result.garment_category ?? "";
  li.dataset.categoryPath = result.category_path.join("/");
  li.tabIndex = 0;
  li.setAttribute("aria-label", `${result.title}: open the product`);
  li.addEventListener("click", (e) => {
    if ((e.target as HTMLElement).closest("button, a")) return; // the card's own buttons and links
    actions.open(result);
  });
  li.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target === li) {
      e.preventDefault();
      actions.open(result);
    }
  });

  const thumb = el("div", { className: "thumb" });
  const src = imageSrc(result.image) ?? imageSrc(result.tryon_image);
  if (src) {
    thumb.append(el("img", { src, alt: result.title, loading: "lazy", decoding: "async" }));
  }
  // the badge, the "Try-on ready only" filter and the Try on button follow one rule: the product
  // has an image try-on uses (a product-only shot or an on-model photo)
  if (canTryOn(result)) {
    thumb.append(el("span", { className: "badge", title: "This product can be tried on" }, "Try-on ready"));
  }
  li.append(thumb);

  const body = el("div", { className: "body" });
  body.append(el("h3", {}, result.title));
  if (result.brand) body.append(el("span", { className: "brand" }, result.brand));
  const price = formatPrice(result.price, result.currency);
  if (price) body.append(el("span", { className: "price" }, price));

  const row = el("div", { className: "actions" });
  const more = el("button", { type: "button", className: "btn more-like" }, "More like this");
  more.setAttribute("aria-label", `More like this: ${result.title}`);
  more.addEventListener("click", () => actions.moreLikeThis(result));
  row.append(more);
  if (canTryOn(result)) {
    const tryBtn = el("button", { type: "button", className: "btn primary try-on" }, "Try on");
    tryBtn.setAttribute("aria-label", `Try on ${result.title}`);
    tryBtn.addEventListener("click", () => actions.tryOn(result));
    row.append(tryBtn);
  }
  const link = safeLink(result.link);
  if (link) {
    const shop = el("a", { className: "btn shop", href: link, target: "_blank", rel: "noopener" }, "Shop");
    shop.setAttribute("aria-label", `Open ${result.title} in the shop (new tab)`);
    row.append(shop);
  }
  body.append(row);
  li.append(body);
  return li;
}

/** Show a message in place of results: `title` bold, `text` below. */
export function showEmpty(container: HTMLElement, title: string, text: string): void {
  container.replaceChildren(el("strong", {}, title), el("span", {}, text));
  container.hidden = false;
}

/** What the shopper reads about brand / category filters the service read as other names. */
export function filterMatchNote(matches: FilterMatch[] | undefined): string {
  const quote = (s: string): string => `“${s}”`;
  return (matches ?? [])
    .map((m) => {
      const what = m.field === "brand" ? "brand" : "category";
      if (m.used !== null) return `Showing the ${what} ${quote(m.used)} for ${quote(m.given)}.`;
      const near = m.suggestions.map(quote);
      const hint = near.length
        ? ` Did you mean ${near.length > 1 ? `${near.slice(0, -1).join(", ")} or ${near[near.length - 1]}` : near[0]}?`
        : ` Pick one from the ${what} list.`;
      return `No ${what} is called ${quote(m.given)}.${hint}`;
    })
    .join(" ");
}
