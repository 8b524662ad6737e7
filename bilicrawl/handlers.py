"""The HTTP(S) download handler: WBI signing at send time, optional browser TLS fingerprint.

:class:`BiliDownloadHandler`, installed for ``http`` and ``https`` in
``DOWNLOAD_HANDLERS``, hands every request to a delegate handler: ``BILI_DOWNLOAD_HANDLER``
(Scrapy's HTTP/1.1 one by default) or, with ``BILI_IMPERSONATE`` set to a curl_cffi
browser, scrapy-impersonate's. Right before the delegate sends it, a request the WBI
middleware marked is signed (:func:`bilicrawl.signing.sign_for_sending`) and sent as a
copy with the signed URL; the request keeps its URL and gets the copy's meta back. Once
the crawl is closing nothing is sent (:class:`~bilicrawl.extensions.closing.CrawlClosing`)
and requests on the wire are abandoned after :data:`IN_FLIGHT_GRACE` seconds (why:
docs/request-layer.md, "WBI keys and signing" and "Download handlers").

Settings: ``BILI_DOWNLOAD_HANDLER``, ``BILI_IMPERSONATE`` (a bad value: ``ConfigError``).
Stats: ``bilicrawl/wbi/signed``; ``bilicrawl/closing/{refused,cancelled,abandoned}``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING, Any, get_args

from scrapy import signals as scrapy_signals
from scrapy.utils.asyncio import call_later
from scrapy.utils.misc import build_from_crawler, load_object

from bilicrawl import signals
from bilicrawl.config import ConfigError
from bilicrawl.extensions.closing import CrawlClosing, cancel_queued_downloads
from bilicrawl.signing import sign_for_sending
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Self

    from scrapy import Request
    from scrapy.core.downloader.handlers import DownloadHandlerProtocol
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings


DEFAULT_HANDLER = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
IMPERSONATE_HANDLER = "scrapy_impersonate.ImpersonateDownloadHandler"
IMPERSONATE_META = "impersonate"
IMPERSONATE_ARGS_META = "impersonate_args"
IN_FLIGHT_GRACE = 3.0
"""Seconds a request on the wire may still take once the crawl is closing: the
process exits within 5 s of a breaker trip or a signal."""


def impersonated_browser(settings: BaseSettings) -> str:
    """Return ``BILI_IMPERSONATE`` (empty: off); ConfigError if curl_cffi does not know it."""
    browser = str(settings.get("BILI_IMPERSONATE") or "").strip()
    if not browser:
        return ""
    try:
        from curl_cffi.requests.impersonate import BrowserTypeLiteral  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            f"BILI_IMPERSONATE={browser!r} needs scrapy-impersonate: "
            "pip install scrapy-impersonate"
        ) from None
    browsers = get_args(BrowserTypeLiteral)
    if browser not in browsers:
        raise ConfigError(
            f"BILI_IMPERSONATE must be a curl_cffi browser such as chrome, firefox or "
            f"safari (one of {', '.join(browsers)}), not {browser!r}"
        )
    return browser


def delegate_class(settings: BaseSettings) -> type[DownloadHandlerProtocol]:
    """Return the class of the handler that downloads; ConfigError if it cannot be used."""
    path = settings.get("BILI_DOWNLOAD_HANDLER") or DEFAULT_HANDLER
    if impersonated_browser(settings):
        if path not in (DEFAULT_HANDLER, IMPERSONATE_HANDLER):
            raise ConfigError(
                f"BILI_IMPERSONATE downloads with {IMPERSONATE_HANDLER}; "
                f"unset BILI_DOWNLOAD_HANDLER ({path!r})"
            )
        path = IMPERSONATE_HANDLER
    try:
        handler = load_object(path)
    except (ImportError, NameError, ValueError) as exc:
        raise ConfigError(f"BILI_DOWNLOAD_HANDLER: cannot load {path!r}: {exc}") from None
    if isinstance(handler, type) and issubclass(handler, BiliDownloadHandler):
        raise ConfigError(f"BILI_DOWNLOAD_HANDLER must be a real handler, not {path!r}")
    if not (
        isinstance(handler, type)
        and inspect.iscoroutinefunction(getattr(handler, "download_request", None))
    ):
        raise ConfigError(
            f"BILI_DOWNLOAD_HANDLER: {path!r} is not a download handler with a "
            "coroutine download_request(request) (Scrapy 2.14 and later)"
        )
    return handler


class BiliDownloadHandler:
    """Signs WBI requests, refuses them once the crawl is closing, delegates the download."""

    lazy = False

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.browser = impersonated_browser(crawler.settings)
        self.delegate = build_from_crawler(delegate_class(crawler.settings), crawler)
        self.clock: Callable[[], float] = time.time
        self.closing: str | None = None
        """Why the crawl is closing, once it is."""
        self._in_flight: set[asyncio.Task[Any]] = set()
        """The tasks of the downloads on the wire."""
        self._abandoned: set[asyncio.Task[Any]] = set()
        crawler.signals.connect(self._on_closing, signal=signals.crawl_closing)
        crawler.signals.connect(
            self._on_reached_downloader, signal=scrapy_signals.request_reached_downloader
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def download_request(self, request: Request) -> Response:
        if self.closing is not None:
            self.crawler.stats.inc_value(stat_key("closing", "refused"))
            raise CrawlClosing(f"not sent: {self.closing}")
        signed_url = sign_for_sending(request, self.clock())
        if signed_url is None and not self.browser:
            return await self._delegate(request)
        if signed_url is not None:
            self.crawler.stats.inc_value(stat_key("wbi", "signed"))
        sent = self._to_send(request, signed_url or request.url)
        try:
            response = await self._delegate(sent)
        finally:
            request.meta.update(sent.meta)
        if response.request is sent:
            response.request = request
        return response

    def _to_send(self, request: Request, url: str) -> Request:
        """Return the copy of *request* the delegate downloads."""
        if not self.browser:
            return request.replace(url=url)
        meta = request.meta
        meta.setdefault(IMPERSONATE_META, self.browser)
        if "download_timeout" in meta:
            meta[IMPERSONATE_ARGS_META] = {
                "timeout": meta["download_timeout"],
                **meta.get(IMPERSONATE_ARGS_META, {}),
            }
        return request.replace(url=url, cookies={})

    async def _delegate(self, request: Request) -> Response:
        """Download *request* with the delegate; CrawlClosing if abandoned while closing.

        The task the download runs in (Scrapy's downloader gives each its own) is
        what is cancelled: wrapping the download in a task of its own would cost
        more than the rest of this handler.
        """
        task = asyncio.current_task()
        if task is None:  # run by Twisted, not asyncio: nothing to cancel
            return await self.delegate.download_request(request)
        self._in_flight.add(task)
        try:
            return await self.delegate.download_request(request)
        except asyncio.CancelledError:
            if task not in self._abandoned:
                raise  # cancelled by someone else
            self._abandoned.discard(task)
            task.uncancel()
            self.crawler.stats.inc_value(stat_key("closing", "abandoned"))
            raise CrawlClosing(
                f"no answer {IN_FLIGHT_GRACE:g} s into closing ({self.closing})"
            ) from None
        finally:
            self._in_flight.discard(task)

    def _on_closing(self, reason: str) -> None:
        self.closing = reason
        call_later(IN_FLIGHT_GRACE, self._abandon_in_flight)

    def _abandon_in_flight(self) -> None:
        for task in self._in_flight - self._abandoned:
            self._abandoned.add(task)
            task.cancel()

    def _on_reached_downloader(self, request: Request) -> None:
        """Cancel a request queued after closing began once it is in its slot's queue."""
        if self.closing is not None:
            call_later(0, cancel_queued_downloads, self.crawler, self.closing)

    async def close(self) -> None:
        close = getattr(self.delegate, "close", None)
        if close is not None:
            await close()
