"""The HTTP(S) download handler: WBI signing at send time, optional browser TLS fingerprint.

:class:`BiliDownloadHandler` is installed for ``http`` and ``https`` in
``DOWNLOAD_HANDLERS``. It downloads nothing itself: it hands every request to a
*delegate*, a real download handler built from the settings:

- ``BILI_DOWNLOAD_HANDLER``: Scrapy's default
  ``scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler``, or any
  other (Scrapy's experimental aiohttp and httpx handlers were tried, see
  docs/request-layer.md);
- ``BILI_IMPERSONATE`` (empty: off), a curl_cffi browser such as ``chrome``,
  ``firefox`` or ``safari``: scrapy-impersonate's ``ImpersonateDownloadHandler``,
  which sends requests through curl_cffi with that browser's TLS and HTTP/2
  fingerprint and its default headers. Bilibili's risk control looks at more
  than headers. The browser goes in the ``impersonate`` meta key that handler
  reads (a request may set its own), and ``download_timeout`` in its
  ``impersonate_args`` (it ignores ``DOWNLOAD_TIMEOUT`` otherwise). Its
  ``RequestParser`` also sends ``request.cookies`` itself, mangling a list of
  cookie dicts: the copy it gets has none, since Scrapy's ``CookiesMiddleware``
  has already put them, with the jar's, in the ``Cookie`` header.
  ``BrowserHeadersMiddleware`` then leaves the User-Agent to curl_cffi, so
  that it matches the fingerprint.

What it adds, at send time (after the download slot's delay):

- WBI signing: a request that :class:`~bilicrawl.middlewares.wbi.WbiSignMiddleware`
  marked for signing is sent as ``request.replace(url=signed)``
  (:func:`~bilicrawl.middlewares.wbi.sign_for_sending`). The request itself
  keeps its URL; what the delegate writes in the copy's meta
  (``download_latency``, ...) is copied back to it, and a response the delegate
  tied to the copy is tied to the request, so middlewares, the throttle and the
  spider see the request they know. ``response.url`` is the signed URL sent.
- Closing: once the crawl is closing (``bilicrawl.signals.crawl_closing``: a
  breaker trip, Ctrl-C, SIGTERM) nothing is sent any more. Every request passes
  here right before it leaves, whatever it waited for (a WBI-key or buvid fetch
  a middleware awaited, a retry, a probe), so each is refused with
  :class:`~bilicrawl.extensions.closing.CrawlClosing`; one that reaches a
  download slot then is cancelled on the next loop turn, not after the slot's
  delay, which a back-off may have set to ten minutes. Requests already on the
  wire get :data:`IN_FLIGHT_GRACE` seconds to be answered (a fetched document
  is worth keeping), then are abandoned with ``CrawlClosing`` too, so a hung
  connection cannot hold the closing crawl for its ``DOWNLOAD_TIMEOUT``.

Settings: ``BILI_DOWNLOAD_HANDLER``, ``BILI_IMPERSONATE``; a bad value is a
``ConfigError`` (reported in one line by ``scrapy crawl`` through
``WbiSignMiddleware``, which checks this handler is installed).

Stats: ``bilicrawl/wbi/signed``; ``bilicrawl/closing/refused``,
``bilicrawl/closing/cancelled`` and ``bilicrawl/closing/abandoned``, the
requests not sent, cancelled in a slot and abandoned on the wire once closing.
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
from bilicrawl.middlewares.wbi import sign_for_sending
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Self

    from scrapy import Request
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


def delegate_class(settings: BaseSettings) -> type:
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
    if not inspect.iscoroutinefunction(getattr(handler, "download_request", None)):
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
        self.delegate: Any = build_from_crawler(delegate_class(crawler.settings), crawler)
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
