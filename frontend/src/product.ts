/**
 * The product view (`/product/<uid>`): images by colour variant, details, "Buy at <shop>",
 * Try on when the product can be tried on, and similar products. Built with DOM calls only.
 */

import { canTryOn, imageSrc, type ImageOut, type ProductOut, type SearchResult } from "./retrieval";
import { el, formatPrice, renderCard, safeLink, type CardActions } from "./results";

const AVAILABILITY: Record<string, string> = {
  in_stock: "In stock",
  out_of_stock: "Out of stock",
  preorder: "Available to pre-order",
  backorder: "On back-order",
};

/** "luma.example.com" from a shop link, without "www."; null when it has no host. */
export function shopName(link: string): string | null {
  try {
    return new URL(link).hostname.replace(/^www\./, "") || null;
  } catch {
    return null;
  }
}

/** Page path of a product: `/product/luma:MH01` (the id URL-encoded, the colon kept readable). */
export function productPath(uid: string): string {
  return `/product/${encodeURIComponent(uid).replace(/%3A/gi, ":")}`;
}

/** The product uid of a page path, or null when the path is not a product view. */
export function productFromPath(pathname: string): string | null {
  const m = /^\/product\/([^/]+)\/?$/.exec(pathname);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

export class ProductView {
  constructor(
    private readonly root: HTMLElement,
    private readonly actions: CardActions,
  ) {}

  /** Show "loading" for `uid` (the heading keeps the focus target). */
  loading(): void {
    this.root.replaceChildren(el("p", { className: "status" }, "Loading the product…"));
  }

  /** Show a failure: `title` and a way out. */
  failed(title: string, text: string): void {
    const heading = el("h2", { id: "product-title", tabIndex: -1 }, title);
    this.root.replaceChildren(heading, el("p", {}, text));
  }

  render(product: ProductOut): void {
    const heading = el("h2", { id: "product-title", className: "product-title", tabIndex: -1 }, product.title);
    const gallery = this.gallery(product);
    const info = el("div", { className: "product-info" }, heading);
    if (product.brand) info.append(el("p", { className: "brand" }, product.brand));
    const price = formatPrice(product.price, product.currency);
    if (price) info.append(el("p", { className: "product-price" }, price));
    if (product.availability) {
      const text = AVAILABILITY[product.availability] ?? product.availability;
      info.append(el("p", { className: `availability ${product.availability}` }, text));
    }
    if (product.colors.length) info.append(this.facts("Colours", product.colors));
    if (product.sizes.length) info.append(this.facts("Sizes", product.sizes));

    const buttons = el("div", { className: "product-actions" });
    const link = safeLink(product.link);
    if (link) {
      const shop = shopName(link) ?? "the shop";
      const buy = el(
        "a",
        { className: "btn primary buy", href: link, target: "_blank", rel: "noopener" },
        `Buy at ${shop}`,
      );
      buy.setAttribute("aria-label", `Buy at ${shop}: ${product.title} (opens the shop in a new tab)`);
      buttons.append(buy);
    } else {
      buttons.append(el("p", { className: "hint" }, "This shop did not give a link to buy it."));
    }
    if (canTryOn(product)) {
      const tryBtn = el("button", { type: "button", className: "btn try-on" }, "Try on");
      tryBtn.setAttribute("aria-label", `Try on ${product.title}`);
      tryBtn.addEventListener("click", () => this.actions.tryOn(product));
      buttons.append(tryBtn);
    }
    info.append(buttons);
    if (product.description) info.append(el("p", { className: "description" }, product.description));

    const similar = el(
      "section",
      { className: "similar", id: "similar" },
      el("h3", {}, "Similar products"),
      el("p", { className: "status", id: "similar-status" }, "Finding similar products…"),
      el("ul", { className: "grid", id: "similar-grid" }),
    );
    similar.setAttribute("aria-label", "Similar products");
    this.root.replaceChildren(el("div", { className: "product-layout" }, gallery, info), similar);
    this.root.dataset.uid = product.uid;
  }

  /** Fill in the similar products (or say there are none). */
  similar(results: SearchResult[] | null): void {
    const status = this.root.querySelector<HTMLElement>("#similar-status");
    const grid = this.root.querySelector<HTMLUListElement>("#similar-grid");
    if (!status || !grid) return;
    if (results === null) {
      status.textContent = "Similar products cannot be shown right now.";
      return;
    }
    grid.replaceChildren(...results.map((r) => renderCard(r, this.actions)));
    status.textContent = results.length ? "" : "No similar products in the catalog.";
    status.hidden = results.length > 0;
  }

  private facts(label: string, values: string[]): HTMLElement {
    return el("p", { className: "facts" }, el("span", { className: "label" }, `${label}: `), values.join(", "));
  }

  private gallery(product: ProductOut): HTMLElement {
    const groups = product.image_groups.length
      ? product.image_groups
      : [{ color: null, images: product.images }];
    const first = groups[0]?.images[0] ?? product.main_image;
    const main = el("img", { className: "product-main-img", alt: product.title, decoding: "async" });
    const mainBox = el("div", { className: "product-main" }, main);
    const show = (img: ImageOut | null | undefined, color: string | null): void => {
      const src = imageSrc(img);
      if (src) main.src = src;
      main.alt = color ? `${product.title} in ${color}` : product.title;
    };
    show(first, groups[0]?.color ?? null);
    const box = el("div", { className: "gallery" }, mainBox);
    const variants = el("div", { className: "variants" });
    for (const group of groups) {
      const row = el("div", { className: "variant" });
      const name = group.color ?? (groups.length > 1 ? "Other pictures" : "Pictures");
      row.append(el("span", { className: "variant-name" }, name));
      const thumbs = el("div", { className: "variant-thumbs" });
      for (const [i, img] of group.images.entries()) {
        const src = imageSrc(img);
        if (!src) continue;
        const alt = `${product.title}${group.color ? ` in ${group.color}` : ""}, picture ${i + 1}`;
        const b = el("button", { type: "button", className: "thumb-btn" }, el("img", { src, alt, loading: "lazy" }));
        b.setAttribute("aria-label", `Show ${alt}`);
        b.addEventListener("click", () => {
          show(img, group.color);
          for (const other of variants.querySelectorAll(".thumb-btn")) other.removeAttribute("aria-current");
          b.setAttribute("aria-current", "true");
        });
        if (img === first) b.setAttribute("aria-current", "true");
        thumbs.append(b);
      }
      row.append(thumbs);
      variants.append(row);
    }
    // a lone picture needs no thumbnail strip
    if (groups.reduce((n, g) => n + g.images.length, 0) > 1) box.append(variants);
    return box;
  }
}
