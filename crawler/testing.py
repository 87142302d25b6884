"""A synthetic "mirror shop" on 127.0.0.1 for crawl tests and benchmarks.

``MirrorShop(luma_dir, n_products)`` serves, from memory and the Luma catalog
(``../shared/data/luma-catalog``), a shop of ``n_products`` product pages with
schema.org JSON-LD (every other product a ``ProductGroup`` with one
``hasVariant`` per colour and that colour's images), category listings with
pagination, a robots.txt and the Luma images. Nothing is written to disk.

Page layout::

    /                      home: links to every category
    /c/<cat>/?page=N       listing: ``per_page`` product tiles, rel=next and numbered pages
    /p/<n>/                product page (JSON-LD, breadcrumbs, add-to-cart form)
    /img/<luma path>       image bytes from the Luma catalog
    /robots.txt            allows everything, names no sitemap

``numbered_pages=False`` leaves only a "Next" link on listings (a long pagination
chain). With ``faults=True`` a few extra links lead to a 404, a 500 (retried, then
counted), a page that is slower than a 1 s timeout, a page of binary garbage
and an image that is not an image.
"""

from __future__ import annotations

import html
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class MirrorProduct:
    n: int
    sku: str
    name: str
    brand: str
    price: float
    currency: str
    category: str
    description: str
    colors: tuple[str, ...]
    sizes: tuple[str, ...]
    images: tuple[str, ...]  # luma-relative paths
    color_images: tuple[tuple[str, tuple[str, ...]], ...]
    group: bool


def load_luma(luma_dir: Path) -> list[dict[str, Any]]:
    """The Luma products (``products.jsonl``); raises FileNotFoundError naming the file."""
    path = luma_dir / "products.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Luma catalog not found")
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def mirror_products(luma: list[dict[str, Any]], n_products: int) -> list[MirrorProduct]:
    """``n_products`` products cycling through Luma; product n gets SKU ``M{n:05d}-<luma sku>``."""
    out = []
    for n in range(n_products):
        src = luma[n % len(luma)]
        color_images: dict[str, list[str]] = {}
        for v in src.get("variants", []):
            if v.get("color") and v.get("images"):
                color_images.setdefault(v["color"], [])
                for img in v["images"]:
                    if img not in color_images[v["color"]]:
                        color_images[v["color"]].append(img)
        cats = src.get("categories") or ["Shop/All"]
        out.append(
            MirrorProduct(
                n=n,
                sku=f"M{n:05d}-{src['sku']}",
                name=f"{src['name']} #{n}",
                brand="Luma",
                price=float(src.get("price") or 10.0),
                currency=src.get("currency") or "USD",
                category=cats[0].split("/")[0] if "/" in cats[0] else cats[0],
                description=src.get("description", ""),
                colors=tuple(src.get("colors") or ()),
                sizes=tuple(src.get("sizes") or ()),
                images=tuple(src.get("images") or ([src["main_image"]] if src.get("main_image") else ())),
                color_images=tuple((c, tuple(i)) for c, i in color_images.items()),
                group=n % 2 == 1 and bool(color_images),
            )
        )
    return out


def _esc(s: str) -> str:
    return html.escape(s, quote=True)


class MirrorShop:
    """The shop server (see the module docstring). Use as a context manager or ``start()``/``stop()``."""

    def __init__(
        self,
        luma_dir: str | Path,
        n_products: int = 3000,
        *,
        per_page: int = 24,
        faults: bool = False,
        numbered_pages: bool = True,
        delay: float = 0.0,
    ) -> None:
        self.luma_dir = Path(luma_dir)
        self.delay = delay  # seconds each HTML page takes (a slower shop, for concurrency tests)
        self.products = mirror_products(load_luma(self.luma_dir), n_products)
        self.per_page = per_page
        self.faults = faults
        self.numbered_pages = numbered_pages
        self.categories: dict[str, list[MirrorProduct]] = {}
        for p in self.products:
            self.categories.setdefault(p.category.lower().replace(" ", "-"), []).append(p)
        self.requests = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the shop first"
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/"

    def start(self) -> str:
        shop = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                return

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                with shop._lock:
                    shop.requests += 1
                status, ctype, body = shop.route(self.path)
                if shop.delay and ctype.startswith("text/html"):
                    time.sleep(shop.delay)
                if status == 0:  # the deliberately slow page
                    time.sleep(15)  # well past the test's download timeout, even on a loaded machine
                    status = 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256  # the default 5 refuses connections under a crawler's concurrency

            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # clients hanging up mid-response are expected here

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="mirror-shop")
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> MirrorShop:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- pages -------------------------------------------------------------------------------
    def route(self, raw_path: str) -> tuple[int, str, bytes]:
        parts = urlsplit(raw_path)
        path = parts.path
        html_type = "text/html; charset=utf-8"
        if path == "/robots.txt":
            return 200, "text/plain", b"User-agent: *\nAllow: /\n"
        if path == "/":
            return 200, html_type, self.home().encode()
        if path.startswith("/c/"):
            cat = path.strip("/").split("/")[1] if path.count("/") >= 2 else ""
            page = int((parse_qs(parts.query).get("page") or ["1"])[0] or 1)
            body = self.listing(cat, page)
            return (200, html_type, body.encode()) if body else (404, html_type, b"<h1>Not found</h1>")
        if path.startswith("/p/"):
            try:
                n = int(path.strip("/").split("/")[1])
                return 200, html_type, self.product_page(self.products[n]).encode()
            except (ValueError, IndexError):
                return 404, html_type, b"<h1>Not found</h1>"
        if path.startswith("/img/"):
            if self.faults and path == "/img/broken.jpg":
                return 200, "image/jpeg", b"this is not a JPEG"
            f = (self.luma_dir / path[len("/img/") :]).resolve()
            if self.luma_dir.resolve() in f.parents and f.is_file():
                return 200, "image/jpeg", f.read_bytes()
            return 404, "text/plain", b"no such image"
        if self.faults:
            if path == "/broken/500/":
                return 500, html_type, b"<h1>Internal error</h1>"
            if path == "/broken/slow/":
                return 0, html_type, b"<html><body>too late</body></html>"
            if path == "/broken/garbage/":
                return 200, html_type, bytes(range(256)) * 64
        return 404, html_type, b"<h1>Not found</h1>"

    def _layout(self, title: str, body: str, head: str = "") -> str:
        return (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_esc(title)} | Mirror</title>{head}</head><body><header><nav><a href='/'>Home</a> "
            + " ".join(f"<a href='/c/{c}/'>{_esc(c.title())}</a>" for c in self.categories)
            + " <a href='/cart/'>Cart</a> <a href='/account/login/'>Sign in</a></nav></header>"
            f"<main>{body}</main><footer><a href='/about/'>About</a></footer></body></html>"
        )

    def home(self) -> str:
        links = "".join(f"<li><a href='/c/{c}/'>{_esc(c.title())}</a></li>" for c in self.categories)
        if self.faults:
            links += (
                "<li><a href='/broken/404/'>Old page</a></li><li><a href='/broken/500/'>Flaky</a></li>"
                "<li><a href='/broken/slow/'>Slow</a></li><li><a href='/broken/garbage/'>Garbage</a></li>"
            )
        return self._layout("Mirror shop", f"<h1>Mirror shop</h1><ul>{links}</ul>")

    def listing(self, cat: str, page: int) -> str | None:
        items = self.categories.get(cat)
        if items is None:
            return None
        pages = max(1, -(-len(items) // self.per_page))
        if not 1 <= page <= pages:
            return None
        chunk = items[(page - 1) * self.per_page : page * self.per_page]
        tiles = "".join(
            f"<li class='product-item'><a href='/p/{p.n}/'>"
            f"<img src='/img/{p.images[0]}' alt='{_esc(p.name)}'></a>"
            f"<a class='product-name' href='/p/{p.n}/'>{_esc(p.name)}</a>"
            f"<span class='price'>${p.price:.2f}</span></li>"
            for p in chunk
            if p.images
        )
        nav = "".join(
            f"<li><a href='/c/{cat}/?page={k}'>{k}</a></li>" if k != page else f"<li class='current'>{k}</li>"
            for k in range(1, pages + 1)
            if self.numbered_pages
        )
        head = ""
        if page < pages:
            nav += f"<li class='next'><a href='/c/{cat}/?page={page + 1}' rel='next'>Next</a></li>"
            head = f"<link rel='next' href='/c/{cat}/?page={page + 1}'>"
        sort = f"<a href='/c/{cat}/?page={page}&sort=price'>Sort by price</a>"
        body = (
            f"<h1>{_esc(cat.title())}</h1>{sort}<ul class='products'>{tiles}</ul><ul class='pages'>{nav}</ul>"
        )
        return self._layout(cat.title(), body, head)

    def product_page(self, p: MirrorProduct) -> str:
        offer = {
            "@type": "Offer",
            "price": f"{p.price:.2f}",
            "priceCurrency": p.currency,
            "availability": "https://schema.org/InStock",
            "url": f"/p/{p.n}/",
        }
        images = [f"/img/{i}" for i in p.images]
        if self.faults and p.n == 0:
            images.append("/img/broken.jpg")
        data: dict[str, Any]
        if p.group:
            variants = [
                {
                    "@type": "Product",
                    "sku": f"{p.sku}-{c.lower()}",
                    "name": f"{p.name} {c}",
                    "color": c,
                    "image": [f"/img/{i}" for i in imgs],
                    "offers": offer,
                }
                for c, imgs in p.color_images
            ]
            data = {
                "@context": "https://schema.org",
                "@type": "ProductGroup",
                "productGroupID": p.sku,
                "name": p.name,
                "description": p.description,
                "brand": {"@type": "Brand", "name": p.brand},
                "image": images[:1],
                "variesBy": ["https://schema.org/color"],
                "hasVariant": variants,
            }
        else:
            data = {
                "@context": "https://schema.org",
                "@type": "Product",
                "sku": p.sku,
                "name": p.name,
                "description": p.description,
                "brand": p.brand,
                "image": images,
                "offers": offer,
                "color": ", ".join(p.colors) or None,
            }
        crumbs = {
            "@context": "https://schema.org",
            "@type": "BreadcrumbList",
            "itemListElement": [
                {"@type": "ListItem", "position": 1, "name": "Home", "item": "/"},
                {
                    "@type": "ListItem",
                    "position": 2,
                    "name": p.category.title(),
                    "item": f"/c/{p.category.lower().replace(' ', '-')}/",
                },
                {"@type": "ListItem", "position": 3, "name": p.name},
            ],
        }
        head = (
            f"<script type='application/ld+json'>{json.dumps(data)}</script>"
            f"<script type='application/ld+json'>{json.dumps(crumbs)}</script>"
            f"<link rel='canonical' href='/p/{p.n}/'>"
        )
        body = (
            f"<h1>{_esc(p.name)}</h1><div class='gallery'>"
            + "".join(f"<img src='{i}' alt='{_esc(p.name)}'>" for i in images)
            + f"</div><p class='price'>${p.price:.2f}</p><form action='/cart/add' method='post'>"
            "<button type='submit'>Add to cart</button></form>"
            f"<p>{_esc(p.description)}</p>"
            f"<a href='/p/{(p.n + 1) % len(self.products)}/'>Next product</a>"
        )
        return self._layout(p.name, body, head)
