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

Settings: ``BILI_DOWNLOAD_HANDLER``, ``BILI_IMPERSONATE``; a bad value is a
``ConfigError`` (reported in one line by ``scrapy crawl`` through
``WbiSignMiddleware``, which checks this handler is installed).

Stats: ``bilicrawl/wbi/signed``.
"""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING, Any, get_args

from scrapy.utils.misc import build_from_crawler, load_object

from bilicrawl.config import ConfigError
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
    """Signs WBI requests and delegates the download (see the module docstring)."""

    lazy = False

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.browser = impersonated_browser(crawler.settings)
        self.delegate: Any = build_from_crawler(delegate_class(crawler.settings), crawler)
        self.clock: Callable[[], float] = time.time

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def download_request(self, request: Request) -> Response:
        signed_url = sign_for_sending(request, self.clock())
        if signed_url is None and not self.browser:
            return await self.delegate.download_request(request)
        if signed_url is not None:
            self.crawler.stats.inc_value(stat_key("wbi", "signed"))
        sent = self._to_send(request, signed_url or request.url)
        try:
            response: Response = await self.delegate.download_request(sent)
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

    async def close(self) -> None:
        close = getattr(self.delegate, "close", None)
        if close is not None:
            await close()
