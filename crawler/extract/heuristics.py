"""Generic page heuristics for pages without (complete) structured data: ``<h1>``, elements
whose id/class says "price", label/value pairs ("SKU: ..."), add-to-cart buttons,
out-of-stock wording, product-looking images, ids in URLs."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from lxml.html import HtmlElement

from crawler.extract.document import Document
from crawler.extract.fields import currency_code
from crawler.extract.patterns import class_value, data_layer_value, gtin_candidates
from crawler.extract.product import clean_brand, set_field
from crawler.extract.text import WS, abs_url, clean_text, leading_int
from crawler.items import Availability, ProductItem
from fittingroom import values

_PRICE_ATTR = re.compile(r"price|preis|prix|prezzo|precio|preco|cena|hind|цена|價|价", re.I)
_NOT_PRICE = re.compile(
    r"old|was|strike|regular|list|compare|save|saving|discount|unit|per[-_]|shipping|delivery|instal|"
    r"month|crossed|before|original|rrp|msrp|uvp|former|tax|vat|range|filter|slider|label|title|total|"
    r"bundle|points|coupon|voucher|min|max|from",
    re.I,
)
_NOISE_CONTAINER = re.compile(
    r"related|recommend|similar|carousel|upsell|cross-?sell|footer|header|nav|menu|cart|basket|minicart|"
    r"sponsored|also|accessor|bundle|frequently|recently|slider|breadcrumb",
    re.I,
)
_ADD_TO_CART = re.compile(
    r"add[\s_-]*to[\s_-]*(cart|bag|basket|trolley)|buy[\s_-]*(it[\s_-]*)?now|in[\s-]*den[\s-]*warenkorb|"
    r"ajouter[\s-]*au[\s-]*panier|aggiungi[\s-]*al[\s-]*carrello|añadir[\s-]*al[\s-]*carrito|"
    r"agregar[\s-]*al[\s-]*carro|adicionar[\s-]*ao[\s-]*carrinho|comprar|do[\s-]*koszyka|в[\s-]*корзину|"
    r"купить|sepete[\s-]*ekle|ostukorvi|v[\s-]*košarico|pievienot[\s-]*grozam|"
    r"ostoskoriin|lägg[\s-]*i[\s-]*varukorgen|læg[\s-]*i[\s-]*kurv|legg[\s-]*i[\s-]*handlekurv|"
    r"in[\s-]*winkelwagen|加入購物車|加入购物车|購買|カートに入れる|장바구니|구매하기|adaugă[\s-]*în[\s-]*coș|"
    r"buy[\s_-]*(?:btn|button)|kosárba|do[\s-]*košíku|הוספה[\s-]*לסל|הוסף[\s-]*לסל|place[\s-]*(a[\s-]*)?bid|snipcart-add-item",
    re.I,
)
_OUT_OF_STOCK = re.compile(
    r"out[\s-]*of[\s-]*stock|sold[\s-]*out|currently[\s-]*unavailable|no[\s-]*longer[\s-]*available|"
    r"ausverkauft|nicht[\s-]*(mehr[\s-]*)?verfügbar|derzeit[\s-]*nicht|épuisé|rupture[\s-]*de[\s-]*stock|"
    r"actuellement[\s-]*indisponible|esaurito|non[\s-]*disponibile|attualmente[\s-]*non[\s-]*disponibile|"
    r"agotado|sin[\s-]*stock|no[\s-]*disponible|esgotado|indisponível|niedostępny|wyprzedany|"
    r"нет[\s-]*в[\s-]*наличии|tükendi|slutsåld|udsolgt|utsolgt|uitverkocht|loppuunmyyty|nav[\s-]*pieejams|"
    r"ei[\s-]*ole[\s-]*saadaval|ni[\s-]*na[\s-]*zalogi",
    re.I,
)
_IN_STOCK = re.compile(
    r"\bin[\s-]*stock|\bavailable\b|auf[\s-]*lager|sofort[\s-]*lieferbar|en[\s-]*stock|disponible|"
    r"disponibilit[àa][\s-]*immediata|disponibile|disponível|dostępny|в[\s-]*наличии|na[\s-]*zalogi|"
    r"laos|pieejams|på[\s-]*lager|op[\s-]*voorraad|varastossa|dobavljivo",
    re.I,
)
#: Label/value pairs; earlier patterns win (an explicit "SKU" beats "Ref.").
_LABELS: dict[str, list[str]] = {
    "sku": [
        r"sku|asin|item\s*(?:#|no\.?|number|code)|art(?:ikel)?\.?\s*-?\s*(?:nr|nummer|no)\.?|artikelnummer|"
        r"product\s*(?:code|id|number|no\.?)|varenummer|varenr\.?|produktnummer|tootekood|šifra|"
        r"код\s*товара|артикул|kod\s*produktu|codice\s*articolo|código\s*(?:de\s*)?(?:producto|artículo)",
        r"réf(?:érence)?\.?|ref(?:erence)?\.?|código|codice|kod|код|item",
    ],
    "brand": [
        r"brand|marke|marque|marca|merk|marka|бренд|zīmols|znamka|品牌|ブランド|브랜드",
        r"manufacturer|hersteller|fabricant|fabricante|producent|производитель|tootja|proizvajalec|"
        r"ražotājs|gamintojas|valmistaja|tillverkare|produsent|kaubamärk|trademark|marchio|značka|márka|"
        r"merkki|varumärke|mærke|merke|prekės\s*ženklas|make(?:\s*/\s*manufacturer)?",
    ],
    "mpn": [r"mpn|model\s*(?:#|no\.?|number)|mfr\.?\s*part\s*(?:#|no\.?|number)|part\s*(?:#|no\.?|number)"],
    "availability": [
        r"availability|stock(?:\s*status)?|disponibilit\w*|verfügbarkeit|lieferbarkeit|disponibilidad|"
        r"razpoložljivost|наличие|dostępność|pieejamība|saadavus|dostupnost"
    ],
}
_LABEL_RES = {
    f: [re.compile(rf"^\s*(?:{p})\s*(?:[:：#]\s*(?P<value>\S.{{0,60}}?))?\s*[:：]?\s*$", re.I) for p in pats]
    for f, pats in _LABELS.items()
}
_ID_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/\-]{1,40}$")


def _text(el: Any) -> str:
    try:
        return WS.sub(" ", el.text_content()).strip()
    except (AttributeError, ValueError):
        return ""


def _visible_text(el: HtmlElement) -> str:
    """Text of an element without its scripts and styles."""
    parts = el.xpath(".//text()[not(ancestor::script) and not(ancestor::style)]")
    return WS.sub(" ", " ".join(parts)).strip()


#: An add-to-cart form or button block holds the product's own price and stock: not a cart widget.
_ADD_TO_CART_BLOCK = re.compile(r"add[\s_-]*to[\s_-]*(?:cart|bag|basket)", re.I)


def _in_noise(el: HtmlElement, stop: int = 12) -> bool:
    for anc in el.iterancestors():
        if stop == 0 or anc.tag in ("body", "main"):
            break
        stop -= 1
        if anc.tag in ("del", "s", "strike", "nav", "footer", "header", "aside"):
            return True
        cls = _ADD_TO_CART_BLOCK.sub(" ", f"{anc.get('class') or ''} {anc.get('id') or ''}")
        if cls.strip() and _NOISE_CONTAINER.search(cls):
            return True
    return False


_RELATED_CONTAINER = re.compile(
    r"related|recommend|similar|carousel|upsell|cross-?sell|sponsored|also-", re.I
)


def _in_related(el: HtmlElement, stop: int = 10) -> bool:
    """Inside a related/recommended-products block."""
    for anc in el.iterancestors():
        if stop == 0 or anc.tag == "body":
            return False
        stop -= 1
        cls = f"{anc.get('class') or ''} {anc.get('id') or ''}"
        if cls.strip() and _RELATED_CONTAINER.search(cls):
            return True
    return False


def _heuristic_price(
    doc: Document, exclude: frozenset[float] = frozenset()
) -> tuple[float | None, str | None]:
    """The best price-looking element (id/class mentions price) outside related-product blocks,
    ``(amount, currency symbol as written)``; amounts in ``exclude`` are skipped."""
    best: tuple[float, int, float, str | None] | None = None  # (score, -position, amount, symbol)
    for pos, el in enumerate(doc.xpath("//body//*[@id or @class or @data-price]")):
        if el.tag in ("script", "style", "option", "select", "input", "del", "s", "strike"):
            continue
        attrs = f"{el.get('id') or ''} {el.get('class') or ''}"
        if not _PRICE_ATTR.search(attrs) and el.get("data-price") is None:
            continue
        if _NOT_PRICE.search(attrs):
            continue
        text = WS.sub(
            " ",
            " ".join(
                el.xpath(
                    ".//text()[not(ancestor::del) and not(ancestor::s) and not(ancestor::strike) "
                    "and not(ancestor::script)]"
                )
            ),
        ).strip()
        if not text or len(text) > 40:
            continue
        p = values.parse_price(text)
        amount = p.amount
        if amount is None or amount <= 0 or amount in exclude:
            continue
        if not p.symbol:
            # "<span class=price>24 990</span> <span>тг</span>": the currency sits beside the amount
            parent = el.getparent()
            around = _text(parent) if parent is not None else ""
            q = values.parse_price(around) if 0 < len(around) <= 60 else None
            if q is not None and q.amount == amount and q.symbol:
                p = q
        score = 1.0
        if p.symbol:
            score += 2
        if "price" in (el.get("id") or "").lower():
            score += 1
        if _in_noise(el):
            score -= 4
        if el.get("data-price") is not None:
            score += 0.5
        cand = (score, -pos, amount, p.symbol)
        if best is None or cand[:2] > best[:2]:
            best = cand
    if best is None or best[0] < 1:
        return None, None
    return best[2], best[3]


_OLD_PRICE = re.compile(
    r"old|was|strike|regular|list|compare|crossed|before|original|rrp|msrp|uvp|former|barred|full[-_]?price",
    re.I,
)


def _struck_amounts(doc: Document) -> set[float]:
    """Amounts shown as a former price: in ``<del>``/``<s>``/``<strike>`` or an element whose
    id/class says old/was/original/list price, outside related-product blocks."""
    out: set[float] = set()
    for el in doc.xpath("//body//del | //body//s | //body//strike | //body//*[@id or @class]"):
        if el.tag not in ("del", "s", "strike"):
            attrs = f"{el.get('id') or ''} {el.get('class') or ''}"
            if not (_PRICE_ATTR.search(attrs) or el.get("class") and "barred" in el.get("class")):
                continue
            if not _OLD_PRICE.search(attrs):
                continue
        text = _text(el)
        if not text or len(text) > 40 or _in_related(el):
            continue
        p = values.parse_price(text)
        if p.amount is not None and p.amount > 0:
            out.add(p.amount)
    return out


def correct_struck_price(item: ProductItem, doc: Document) -> None:
    """A published price that the page shows struck through (a stale list price in the markup,
    the sale price beside it) gives way to the lower current price the page shows."""
    if item.price is None:
        return
    struck = _struck_amounts(doc)
    if item.price not in struck:
        return
    amount, _ = _heuristic_price(doc, frozenset(struck))
    if amount is not None and amount < item.price:
        item.price = amount
        item.sources["price"] = "heuristic"


def _label_elements(doc: Document) -> list[tuple[HtmlElement, str]]:
    """Short leaf-ish text elements that may be labels (cached per document)."""
    cached = getattr(doc, "_labels", None)
    if cached is None:
        cached = []
        for el in doc.xpath(
            "//body//*[self::span or self::div or self::li or self::p or self::dt or self::th or self::td or "
            "self::strong or self::b or self::label or self::a or self::h3 or self::h4]"
            "[not(*[not(self::br)]) or (count(*)=1 and (strong or b or span))]"
        ):
            t = _text(el)
            if t and len(t) <= 80:
                cached.append((el, t))
        doc._labels = cached  # type: ignore[attr-defined]
    return cached


def _label_value(doc: Document, field_name: str) -> str | None:
    """Value next to a label: "SKU: 12345", <th>Brand</th><td>ACME</td>, <dt>..</dt><dd>..</dd>."""
    for pattern in _LABEL_RES[field_name]:
        for el, text in _label_elements(doc):
            m = pattern.match(text)
            if not m:
                continue
            value = m.group("value")
            if not value:
                nxt = el.getnext()
                if nxt is None:
                    parent = el.getparent()
                    if parent is not None and len(_text(parent)) <= len(text) + 2:
                        nxt = parent.getnext()
                value = _text(nxt) if nxt is not None else None
            value = (value or "").strip(" :：#")
            if not value or len(value) > 60 or (field_name in ("sku", "mpn") and not _ID_LIKE.match(value)):
                continue
            if field_name == "brand" and len(value) < 2:
                continue
            return value
    return None


_EMBEDDED_SKU = re.compile(r'"(?:sku|productSku|product_sku)"\s*:\s*"([A-Za-z0-9][A-Za-z0-9._/\-]{1,40})"')


def _embedded_sku(doc: Document) -> str | None:
    """The first ``"sku": "..."`` in an inline script (Shopify meta, analytics data layers)."""
    for script in doc.xpath("//script[not(@src)]/text()"):
        m = _EMBEDDED_SKU.search(script)
        if m:
            return m.group(1)
    return None


_URL_ID_PARAMS = ("sku", "pid", "productid", "product_id", "products_id", "itemid", "item_id", "item", "id")


def url_product_id(url: str) -> str | None:
    """A product id written in the URL, or None.

    ``?pid=260591``, ``/itm/123808916008``, ``/Prod/101693/``, ``/M14876706.htm``,
    ``/some-slug-1609583.html``, ``/item/93133869_some-slug``.
    """
    parts = urlsplit(url)
    query = {k.lower(): v for k, v in parse_qsl(parts.query)}
    for k in _URL_ID_PARAMS:
        v = query.get(k, "")
        if re.fullmatch(r"[A-Za-z0-9_\-]{3,40}", v) and re.search(r"\d", v):
            return v
    segments = [s for s in parts.path.split("/") if s]
    for seg in reversed(segments[-2:]):
        stem = re.sub(r"\.(html?|php|aspx?|jsp)$", "", seg, flags=re.I)
        if re.fullmatch(r"[A-Za-z]{0,3}\d{5,}[A-Za-z0-9]{0,6}", stem):
            return stem
        m = re.search(r"[-_](\d{5,})$", stem) or re.match(r"^(\d{5,})[-_]", stem)
        if m:
            return m.group(1)
    return None


_AVAILABILITY_LABEL = re.compile(
    r"^\W*(?:availability|in\s*stock\?|stock(?:\s*status)?|disponibilit\w*|verfügbarkeit|disponibilidad|"
    r"razpoložljivost|наличие|dostępność|pieejamība|saadavus)\s*[:：]?\s*",
    re.I,
)


def _availability_text(doc: Document) -> Availability | None:
    for el in doc.xpath(
        "//body//*[contains(translate(@class,'STOCK','stock'),'stock') or "
        "contains(translate(@id,'STOCK','stock'),'stock') or "
        "contains(translate(@class,'AVILBTY','avilbty'),'availab') or "
        "contains(translate(@id,'AVILBTY','avilbty'),'availab')]"
    ):
        if el.tag in ("script", "style") or _in_noise(el):
            continue
        t = _AVAILABILITY_LABEL.sub("", _visible_text(el))
        if not t or len(t) > 250:
            continue
        # the stock wording must lead the element's text ("Image not available" is not about stock)
        if _OUT_OF_STOCK.match(t):
            return Availability.out_of_stock
        if _IN_STOCK.match(t):
            return Availability.in_stock
    return None


def has_add_to_cart(doc: Document) -> bool:
    for b in doc.xpath(
        "//body//button | //body//input[@type='submit' or @type='button' or @type='image'] | "
        "//body//a[contains(@class,'btn') or contains(@class,'button') or contains(@class,'cart') or "
        "contains(translate(@id,'BUY','buy'),'buy') or contains(translate(@class,'BUY','buy'),'buy') or "
        "contains(translate(../@class,'BTN','btn'),'btn') or contains(translate(../@class,'BUY','buy'),'buy')]"
    ):
        if b.get("disabled") is not None or _in_related(b):
            continue
        label = " ".join(
            x
            for x in (
                _text(b),
                b.get("value"),
                b.get("title"),
                b.get("aria-label"),
                b.get("class"),
                b.get("id"),
                b.get("name"),
            )
            if x
        )
        if label and _ADD_TO_CART.search(label):
            return True
    return False


def _heuristic_availability(doc: Document) -> Availability | None:
    """Stock wording in an availability/stock element, else an enabled add-to-cart button = in stock."""
    found = _availability_text(doc)
    if found is not None:
        return found
    label = _label_value(doc, "availability")
    if label:
        if _OUT_OF_STOCK.match(label):
            return Availability.out_of_stock
        if _IN_STOCK.match(label):
            return Availability.in_stock
    return Availability.in_stock if has_add_to_cart(doc) else None


def _tokens(s: str) -> set[str]:
    return {t for t in re.split(r"\W+", s.lower()) if len(t) > 1}


def _heuristic_name(doc: Document) -> str | None:
    """The heading that best matches the <title> (product pages title themselves after the product)."""
    titles = [clean_text(t) for t in doc.xpath("//title/text()")]
    title = next((t for t in titles if t), None)
    heads = [
        _text(h)
        for h in doc.xpath(
            "//h1 | //*[@id='productTitle' or @itemprop='name' or contains(@class,'product-title') or "
            "contains(@class,'product-name') or contains(@class,'product_title')]"
        )
    ]
    heads = [h for h in heads if h and len(h) < 300]
    if title and heads:
        tt = _tokens(title)
        scored = [(len(_tokens(h) & tt) / max(1, len(_tokens(h))), -i, h) for i, h in enumerate(heads)]
        best = max(scored)
        if best[0] >= 0.5:
            return best[2]
    if heads and not title:
        return heads[0]
    if title:
        return re.split(r"\s+[|–—]\s+|\s+-\s+(?=[^-]+$)|[｜]", title)[0].strip() or title
    return None


_IMG_SKIP = re.compile(r"logo|icon|sprite|pixel|spacer|blank|placeholder|banner|badge|flag|\.svg|\.gif", re.I)
_IMG_GOOD = re.compile(r"main|primary|product|zoom|hero|landing|gallery|large|big", re.I)


def heuristic_images(doc: Document, name: str | None) -> list[tuple[str, int | None]]:
    """Product-looking images: in a product/gallery block or named like the product; not logos or banners."""
    scored: list[tuple[float, int, str, int | None]] = []
    name_tokens = _tokens(name or "")
    for pos, img in enumerate(doc.xpath("//body//img")):
        if _in_noise(img):
            continue
        src = (
            img.get("data-old-hires")
            or img.get("data-zoom-image")
            or img.get("data-large")
            or img.get("data-src")
            or img.get("src")
        )
        u = abs_url(doc.base_url, src)
        if not u or _IMG_SKIP.search(u):
            continue
        w = leading_int(img.get("width"))
        if w is not None and w < 150:
            continue
        score = 0.0
        attrs = " ".join(x for x in (img.get("id"), img.get("class")) if x)
        parent = img.getparent()
        if parent is not None:
            attrs += " " + " ".join(x for x in (parent.get("id"), parent.get("class")) if x)
        if _IMG_GOOD.search(attrs):
            score += 2
        alt = _tokens(img.get("alt") or "")
        if name_tokens and len(alt & name_tokens) >= max(1, len(name_tokens) // 3):
            score += 2
        if score > 0:
            scored.append((score, -pos, u, w))
    scored.sort(reverse=True)
    return [(u, w) for _, _, u, w in scored[:10]]


def fill_from_heuristics(item: ProductItem, doc: Document) -> None:
    """Fill what structured data left empty from the page's visible content."""
    if item.price is None:
        amount, sym = _heuristic_price(doc)
        set_field(item, "price", amount, "heuristic")
        if sym:
            set_field(item, "currency", currency_code(sym, doc.url), "heuristic")
    if item.sku is None:
        set_field(
            item,
            "sku",
            _label_value(doc, "sku") or class_value(doc, "sku") or _embedded_sku(doc),
            "heuristic",
        )
    if item.mpn is None:
        set_field(item, "mpn", _label_value(doc, "mpn"), "heuristic")
    if item.brand is None:
        brand = (
            clean_brand(_label_value(doc, "brand"))
            or clean_brand(class_value(doc, "brand"))
            or clean_brand(data_layer_value(doc, "brand"))
        )
        set_field(item, "brand", brand, "heuristic")
    if item.gtin is None:
        set_field(item, "gtin", gtin_candidates(doc), "heuristic")
    if item.availability is None:
        set_field(item, "availability", _heuristic_availability(doc), "heuristic")
    if item.name is None:
        set_field(item, "name", _heuristic_name(doc), "heuristic")


def page_currency(doc: Document) -> str | None:
    for q in ("//*[@data-currency]/@data-currency", "//meta[@itemprop='priceCurrency']/@content"):
        for v in doc.xpath(q):
            c = currency_code(v, doc.url)
            if c:
                return c
    return None
