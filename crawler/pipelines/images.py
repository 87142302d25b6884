"""Product images with Scrapy's ImagesPipeline, keeping the original bytes.

Scrapy's pipeline gives the local store (``IMAGES_STORE``), one file per URL
(``full/<sha1 of the URL>.<ext>``: a URL is downloaded once, however many
products use it), expiry (``IMAGES_EXPIRES`` days) and a minimum size
(``IMAGES_MIN_WIDTH``/``IMAGES_MIN_HEIGHT``: icons and tracking pixels are
skipped). Unlike the stock pipeline it stores the bytes as the shop served
them (no JPEG re-encoding, alpha kept), so the catalog hashes the same bytes a
feed ingest of the URL would. Each downloaded image also carries the SHA-256 of its bytes, so the
catalog ingest links the file into its content-addressed cache instead of fetching, hashing or
copying it again; files are written by atomic replacement (never rewritten in place), so such
a hard link keeps its bytes when the crawler re-downloads the URL later.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import tempfile
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.exceptions import DropItem, NotConfigured
from scrapy.pipelines.files import FSFilesStore
from scrapy.pipelines.images import ImagesPipeline

from crawler.items import ProductItem

if TYPE_CHECKING:
    from PIL import Image
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)
_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".avif", ".bmp", ".tif", ".tiff"}


class ReplacingFSFilesStore(FSFilesStore):
    """Scrapy's local file store, writing each file to a temporary name and renaming it into place.

    A file is never rewritten in place: a hard link to it (the catalog's image cache) keeps
    the bytes it was made from.
    """

    def persist_file(
        self,
        path: str | os.PathLike[str],
        buf: BytesIO,
        info: Any,
        meta: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        target = self._get_filesystem_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ProductImagesPipeline(ImagesPipeline):
    """Download ``item.image_urls``; fill ``item.images_downloaded`` and reorder ``item.images``.

    Each downloaded image becomes ``{"url", "path" (absolute), "checksum" (MD5), "sha256" (hex
    SHA-256 of the stored bytes), "width", "height", "content_type"}``. ``item.images`` keeps only images that downloaded,
    largest first (pixel area; ties keep page order). An item none of whose
    images downloaded is dropped (counted as ``items/dropped/no_image_downloaded``);
    each failed image counts in ``images/failed``.
    """

    LOG_FAILED_RESULTS = False
    STORE_SCHEMES = {**ImagesPipeline.STORE_SCHEMES, "": ReplacingFSFilesStore, "file": ReplacingFSFilesStore}
    store_dir: Path

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProductImagesPipeline:
        if not crawler.settings.getbool("CRAWLER_IMAGES", True):
            raise NotConfigured  # --no-images
        pipe = super().from_crawler(crawler)
        pipe.crawler = crawler
        pipe.store_dir = Path(crawler.settings["IMAGES_STORE"])
        return pipe

    def file_path(
        self, request: Request, response: Response | None = None, info: Any = None, *, item: Any = None
    ) -> str:
        guid = hashlib.sha1(request.url.encode()).hexdigest()  # noqa: S324 - a file name, not security
        ext = Path(urlsplit(request.url).path).suffix.lower()
        if ext not in _EXTENSIONS:
            ext = ".img"
        return f"full/{guid}{ext}"

    def convert_image(
        self, image: Image.Image, size: tuple[int, int] | None = None, *, response_body: BytesIO
    ) -> tuple[Image.Image, BytesIO]:
        if size is None:
            return image, response_body  # the full image: the shop's own bytes
        return super().convert_image(image, size, response_body=response_body)

    async def media_downloaded(
        self, response: Response, request: Request, info: Any, *, item: Any = None
    ) -> Any:
        """Check status, decodability and size first: a bad image is a quiet "failed" result.

        (Scrapy would log each one as an error with a traceback; here it is counted
        in ``images/failed`` and logged once per product at INFO.)
        """
        from PIL import Image

        problem = None
        if response.status != 200:
            problem = f"HTTP {response.status}"
        elif not response.body:
            problem = "empty response"
        else:
            try:
                with Image.open(BytesIO(response.body)) as im:
                    width, height = im.size
                if width < self.min_width or height < self.min_height:
                    problem = f"too small ({width}x{height})"
            except Exception as exc:  # PIL raises several types on garbage
                problem = f"not a decodable image ({type(exc).__name__})"
        if problem is not None:
            return {"url": request.url, "path": None, "checksum": None, "status": "failed", "error": problem}
        result: dict[str, Any] = dict(await super().media_downloaded(response, request, info, item=item))
        result["sha256"] = hashlib.sha256(response.body).hexdigest()  # the bytes stored as they came
        return result

    def item_completed(self, results: list[Any], item: Any, info: Any) -> Any:
        if not isinstance(item, ProductItem):
            return item
        stats = self.crawler.stats
        assert stats is not None
        done: list[dict[str, Any]] = []
        for ok, value in results:
            if not ok or not value or not value.get("path"):
                stats.inc_value("images/failed")
                reason = (
                    value.get("error") if ok and value else getattr(value, "getErrorMessage", lambda: "?")()
                )
                logger.info(
                    "image %s failed for %s: %s", value.get("url") if ok and value else "", item.url, reason
                )
                continue
            path = self.store_dir / value["path"]
            width = height = None
            try:
                from PIL import Image

                with Image.open(path) as im:
                    width, height = im.size
            except OSError:
                stats.inc_value("images/failed")
                continue
            stats.inc_value("images/ok")
            done.append(
                {
                    "url": value["url"],
                    "path": str(path),
                    "checksum": value["checksum"],
                    # an image still fresh in the store was not downloaded: hash the local file
                    "sha256": value.get("sha256") or _sha256_file(path),
                    "width": width,
                    "height": height,
                    "content_type": mimetypes.guess_type(path.name)[0],
                }
            )
        if not done:
            stats.inc_value("items/dropped/no_image_downloaded")
            logger.warning("dropped %s: none of its %d images could be downloaded", item.url, len(results))
            raise DropItem(f"no image could be downloaded: {item.url}")
        order = {u: i for i, u in enumerate(item.images)}
        done.sort(key=lambda d: (-(d["width"] or 0) * (d["height"] or 0), order.get(d["url"], 0)))
        item.images_downloaded = done
        item.images = [d["url"] for d in done]
        return item
