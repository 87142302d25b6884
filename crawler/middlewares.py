"""Downloader and spider middlewares of the crawler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.spidermiddlewares.depth import DepthMiddleware

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.http import Response

logger = logging.getLogger(__name__)


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's RetryMiddleware with exponential backoff before each retry.

    Retry n (1-based) waits ``RETRY_BACKOFF_BASE * 2**(n-1)`` seconds, capped at
    ``RETRY_BACKOFF_MAX``; a ``Retry-After`` header (seconds) on a 429/503 wins
    when it is longer. The wait happens after the failed download has left its
    slot, so other requests to the shop carry on meanwhile.
    """

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE", 1.0)
        self.backoff_max = settings.getfloat("RETRY_BACKOFF_MAX", 60.0)

    def backoff(self, retry_times: int, response: Response | None = None) -> float:
        delay = self.backoff_base * (2 ** max(0, retry_times - 1))
        if response is not None and response.status in (429, 503):
            header = response.headers.get(b"Retry-After")
            if header:
                with contextlib.suppress(ValueError):  # an HTTP date: keep the exponential delay
                    delay = max(delay, float(header.decode().strip()))
        return min(delay, self.backoff_max)

    async def _wait(self, new: Any, response: Response | None = None) -> None:
        from scrapy import Request

        if isinstance(new, Request) and self.backoff_base > 0:
            delay = self.backoff(new.meta.get("retry_times", 1), response)
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value("retry/backoff_ms", int(delay * 1000))
            await asyncio.sleep(delay)

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        result = super().process_response(request, response)
        await self._wait(result, response)
        return result

    async def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception, spider: Spider | None = None
    ) -> Request | Response | None:
        result = super().process_exception(request, exception)
        await self._wait(result)
        return result


class ListingDepthMiddleware(DepthMiddleware):
    """Scrapy's DepthMiddleware, except that the next page of a listing keeps the listing's depth.

    ``DEPTH_LIMIT`` then limits how far the crawl wanders from the start pages
    (home -> category -> product), not how many pages a category has: a request
    with ``meta["same_depth"] = True`` (the spider's pagination links) gets the
    depth of the page that links to it.
    """

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        if response is None or not request.meta.pop("same_depth", False):
            return super().get_processed_request(request, response)
        depth = response.meta.get("depth", 0)
        request.meta["depth"] = depth
        if self.prio:
            request.priority -= depth * self.prio
        self.stats.inc_value("depth/pagination_same_depth")
        return request
