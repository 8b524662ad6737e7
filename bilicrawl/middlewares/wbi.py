"""Keep the WBI keys and mark ``/wbi/`` requests for signing when they are sent.

:class:`WbiSignMiddleware` fetches the two site-wide keys from
``{BILI_API_URL}/x/web-interface/nav`` (``data.wbi_img``) through Scrapy, one fetch
shared by the requests waiting, and puts their mixin in ``meta["bili_wbi"]``, with the
crawl's ``dm_img_*`` parameters for paths under ``BILI_DM_IMG_PATHS``. The download
handler (:mod:`bilicrawl.handlers`, required for http and https, else ``ConfigError``)
signs at send time. Keys are refreshed after ``BILI_WBI_KEY_TTL`` and after a -403 or
-352 answer to a request signed with them; a -403 is retried (``wbi_stale_keys``), and
requests whose key fetch failed too (``wbi_keys_unavailable``). Why the handler signs:
docs/request-layer.md, "WBI keys and signing".

Settings: ``BILI_API_URL``, ``BILI_WBI_KEY_TTL``, ``BILI_DM_IMG_PATHS``, ``DOWNLOAD_HANDLERS``.
Stats: ``bilicrawl/wbi/{keys_refreshed,keys_invalidated,keys_failed}``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import load_object

from bilicrawl import signals
from bilicrawl.config import ConfigError, get_float, get_str_list
from bilicrawl.envelope import decode_envelope
from bilicrawl.extensions.closing import CrawlClosing
from bilicrawl.handlers import BiliDownloadHandler, delegate_class
from bilicrawl.signing import WBI_META, dm_img_params, key_from_url, mixin_key
from bilicrawl.stats import RETRY_BASE, stat_key

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

HANDLER = "bilicrawl.handlers.BiliDownloadHandler"
"""The download handler that signs; ``DOWNLOAD_HANDLERS`` must use it for http and https."""

STALE_SIGNATURE_CODE = -403
INVALIDATING_CODES = frozenset({STALE_SIGNATURE_CODE, -352})
"""Envelope codes that suggest stale keys (bilibili-api refreshes its keys on -403)."""

NAV_ALLOWED_CODES = (0, -101)
"""Nav answers -101 (not logged in) to anonymous clients, with the keys."""


def _mixin_from_nav(response: Response) -> str:
    """Return the mixin key published by a nav response; ValueError if it has none."""
    payload = decode_envelope(response)
    if response.status != 200 or payload is None:
        raise ValueError(f"HTTP {response.status} without a JSON envelope")
    if payload["code"] not in NAV_ALLOWED_CODES:
        raise ValueError(f"code {payload['code']}")
    try:
        wbi_img = payload["data"]["wbi_img"]
        img_key, sub_key = key_from_url(wbi_img["img_url"]), key_from_url(wbi_img["sub_url"])
    except (KeyError, TypeError) as exc:
        raise ValueError("no data.wbi_img in the answer") from exc
    if len(img_key) != 32 or len(sub_key) != 32:
        raise ValueError("data.wbi_img does not hold two 32-character keys")
    return mixin_key(img_key, sub_key)


def check_handlers(crawler: Crawler) -> None:
    """Raise ConfigError unless http and https downloads go through :data:`HANDLER`.

    Its own settings are checked here too: Scrapy only logs a handler that fails to load.
    """
    handlers = crawler.settings.getwithbase("DOWNLOAD_HANDLERS")
    for scheme in ("http", "https"):
        path = handlers.get(scheme)
        handler = load_object(path) if path else None
        if not (isinstance(handler, type) and issubclass(handler, BiliDownloadHandler)):
            raise ConfigError(
                f"WbiSignMiddleware needs DOWNLOAD_HANDLERS[{scheme!r}] = {HANDLER!r}, "
                f"which signs requests when they are sent, not {path!r}; to download "
                f"with another handler, set BILI_DOWNLOAD_HANDLER to it"
            )
    delegate_class(crawler.settings)


class WbiSignMiddleware:
    """Keeps WBI keys and marks ``/wbi/`` requests for signing (see the module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.nav_url = settings["BILI_API_URL"].rstrip("/") + "/x/web-interface/nav"
        self.key_ttl = get_float(settings, "BILI_WBI_KEY_TTL", positive=True)
        check_handlers(crawler)
        self.dm_img_paths = get_str_list(settings, "BILI_DM_IMG_PATHS")
        self.dm_img = dm_img_params(random.Random())  # noqa: S311 (a plausible browser, not a secret)
        self.clock: Callable[[], float] = time.time
        self._mixin: str | None = None
        self._fetched_at = 0.0
        self._fetch: asyncio.Task[str] | None = None
        self.closing: str | None = None
        """Why the crawl is closing, once it is."""
        crawler.signals.connect(self._on_closing, signal=signals.crawl_closing)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_request(self, request: Request) -> Request | None:
        path = urlparse_cached(request).path
        if "/wbi/" not in path:
            # e.g. a redirect away from a /wbi/ path, which copied the meta
            request.meta.pop(WBI_META, None)
            return None
        try:
            mixin = await self._current_mixin()
        except CrawlClosing:
            raise
        except IgnoreRequest:
            # The request is not at fault: try it again later, within its retry budget.
            retry = self._retry(request, "wbi_keys_unavailable")
            if retry is None:
                raise
            return retry
        signature: dict[str, Any] = {"mixin": mixin}
        if path.startswith(self.dm_img_paths):
            signature["params"] = self.dm_img
        request.meta[WBI_META] = signature
        return None

    def _uses_current_keys(self, signature: dict[str, Any] | None) -> bool:
        """Tell whether *signature* was made with the keys of the latest fetch, after it."""
        return (
            signature is not None
            and "wts" in signature  # else never sent (an answer from a cache, say)
            and signature["mixin"] == self._mixin
            # A refetch after -403/-352 may return the same keys: older signatures are stale.
            and int(self._fetched_at) <= signature["wts"]
        )

    def process_response(self, request: Request, response: Response) -> Request | Response:
        signature = request.meta.get(WBI_META)
        if signature is None:
            return response
        envelope = decode_envelope(response)
        code = envelope["code"] if envelope else None
        if code not in INVALIDATING_CODES:
            return response
        if self._uses_current_keys(signature):
            self._mixin = None
            self.crawler.stats.inc_value(stat_key("wbi", "keys_invalidated"))
            logger.info(
                "WBI keys dropped after code %(code)s on %(request)s; fetching new ones",
                {"code": code, "request": request},
                extra={"spider": self.crawler.spider},
            )
        if code == STALE_SIGNATURE_CODE:
            # On a signed request -403 means "stale keys", which a re-signed
            # retry fixes; the API middleware would drop it as a refusal.
            retry = self._retry(request, "wbi_stale_keys")
            if retry is not None:
                return retry
        return response

    def _retry(self, request: Request, reason: str) -> Request | None:
        """Return a retry of *request* counted under ``bilicrawl/retry``, or None when out."""
        spider = self.crawler.spider
        if spider is None:  # never: requests come only once the spider is open
            raise RuntimeError("a request before the spider was opened")
        return get_retry_request(
            request,
            spider=spider,
            reason=reason,
            logger=logger,
            stats_base_key=RETRY_BASE,
        )

    async def _current_mixin(self) -> str:
        """Return the cached mixin key, fetching new keys if needed (one fetch at a time)."""
        if self._mixin is not None and self.clock() - self._fetched_at < self.key_ttl:
            return self._mixin
        if self._fetch is None:
            self._fetch = asyncio.ensure_future(self._fetch_mixin())
            self._fetch.add_done_callback(self._fetch_done)
        # shield: a cancelled waiter must not cancel the fetch the others wait for.
        return await asyncio.shield(self._fetch)

    def _fetch_done(self, _task: asyncio.Task[str]) -> None:
        self._fetch = None

    async def _fetch_mixin(self) -> str:
        request = Request(self.nav_url, meta={"bili_allow_codes": [-101]}, dont_filter=True)
        try:
            response = await self.crawler.engine.download_async(request)
            mixin = _mixin_from_nav(response)
        except Exception as exc:  # any failure (network, API error, bad body) means no keys
            if self.closing is not None:  # no failure of the site: nothing is sent any more
                raise CrawlClosing(f"not sent: {self.closing}") from exc
            self.crawler.stats.inc_value(stat_key("wbi", "keys_failed"))
            logger.warning(
                "Could not get WBI keys from %(url)s: %(error)s",
                {"url": self.nav_url, "error": exc},
                extra={"spider": self.crawler.spider},
            )
            raise IgnoreRequest(f"WBI keys unavailable ({self.nav_url}: {exc})") from exc
        self._mixin, self._fetched_at = mixin, self.clock()
        self.crawler.stats.inc_value(stat_key("wbi", "keys_refreshed"))
        logger.info(
            "WBI keys refreshed from %(url)s",
            {"url": self.nav_url},
            extra={"spider": self.crawler.spider},
        )
        return mixin

    def _on_closing(self, reason: str) -> None:
        self.closing = reason
