"""WBI signing of ``/wbi/`` requests, at send time.

Every request whose URL path contains ``/wbi/`` is signed (``wts`` and ``w_rid``
added, any old ones replaced) when it is sent, never when it is built, so
requests that waited in a queue, in Redis or in their slot's download delay,
and retries, carry a fresh ``wts``. The mixing and hashing are the pure
functions of :mod:`bilicrawl.signing`.

Keys. The two site-wide keys come from ``{BILI_API_URL}/x/web-interface/nav``
(``data.wbi_img``), fetched through Scrapy with ``engine.download_async`` (so
the nav request gets the same headers, cookies, throttling and retries as any
other). The nav request sets ``meta["bili_allow_codes"] = [-101]``: logged out,
nav answers -101 but still carries the keys. Concurrent requests share one
in-flight fetch. The keys are refreshed when older than ``BILI_WBI_KEY_TTL``
and after a request signed with them is answered with code -403 or -352. A
-403 on a signed request is retried here (counted as ``wbi_stale_keys``); a
-352 continues to the API middleware, which retries it as risk control. Either
retry is re-signed with the new keys. When a fetch fails, the requests waiting for it
are retried (reason ``wbi_keys_unavailable``, within their retry budget, then
dropped with Scrapy's "Gave up retrying" error); the next request tries again.
A fetch that fails once the crawl is closing (``bilicrawl.signals.crawl_closing``)
is no failure of the keys: the waiting requests fail with
:class:`~bilicrawl.extensions.closing.CrawlClosing`, neither retried nor logged.

Two halves. :class:`WbiSignMiddleware` owns the keys: its ``process_request``
waits for current keys and puts their mixin in ``meta["bili_wbi"] =
{"mixin": ...}``; its ``process_response`` reads the answer.
For paths under ``BILI_DM_IMG_PATHS`` (the space endpoints, which answer -352 to
anonymous clients without them) it also puts the crawl's ``dm_img_*`` risk
parameters (:func:`bilicrawl.signing.dm_img_params`, drawn once per crawl) in
``meta["bili_wbi"]["params"]``; they are added to the query before signing. The signing itself
is :func:`sign_for_sending`, called by the download handler
:class:`bilicrawl.handlers.BiliDownloadHandler` (``DOWNLOAD_HANDLERS`` for http
and https) after the slot's download delay: it signs at the current second,
records ``wts`` in the same meta key and hands the delegate handler
``request.replace(url=signed)``. The request itself keeps its unsigned URL, so
``response.request.url`` is the URL the spider built (what the fingerprint,
the dupefilter, the logs and retries see) and ``response.url`` is the signed
URL that was sent. The middleware refuses to start (``ConfigError``) when the
handler is not installed for both schemes: requests would go out unsigned.

Why not sign in ``process_request``: ``Request.url`` is read-only in Scrapy's
public API, so a middleware can only return ``request.replace(url=signed)``,
which Scrapy sends back through the scheduler and every downloader middleware
a second time (about 8 % more CPU per response), with ``dont_filter``, a
priority boost and a maximum age to keep that hop correct; and it signed
before the slot's delay, so under a long back-off a ``wts`` was as old as the
delay. ``request._set_url(signed)`` in place would save the hop but is private
and would leave ``urlparse_cached`` and the fingerprint cache, keyed on the
request object, with the unsigned URL. ``DOWNLOAD_HANDLERS`` and
``Request.replace`` are public, and the handler sees every request exactly
when it is sent.

Settings: ``BILI_API_URL`` (``https://api.bilibili.com``), ``BILI_WBI_KEY_TTL``
(43200 s: the keys rotate daily), ``BILI_DM_IMG_PATHS`` (``["/x/space/wbi/"]``),
``DOWNLOAD_HANDLERS`` (see above).

Stats: ``bilicrawl/wbi/signed``, ``bilicrawl/wbi/keys_refreshed``,
``bilicrawl/wbi/keys_invalidated``, ``bilicrawl/wbi/keys_failed``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from scrapy import Request
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import load_object

from bilicrawl import signals
from bilicrawl.config import ConfigError
from bilicrawl.extensions.closing import CrawlClosing
from bilicrawl.middlewares.api import decode_envelope
from bilicrawl.signing import dm_img_params, key_from_url, mixin_key, signed_query
from bilicrawl.stats import RETRY_BASE, stat_key

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

WBI_META = "bili_wbi"
"""Meta key of a request to sign: ``{"mixin": <mixin key>}`` from the middleware, with
``"params"`` (more query parameters to sign, the ``dm_img_*`` ones) for some paths, plus
``"wts": <Unix seconds>`` once the handler has signed it."""

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


def sign_url(url: str, mixin: str, wts: int, extra: Mapping[str, str] | None = None) -> str:
    """Return *url* with its query, plus the *extra* parameters, signed by *mixin* at *wts*.

    Repeated query parameters keep their last value: WBI endpoints take none.
    """
    parts = urlsplit(url)
    params = {**dict(parse_qsl(parts.query, keep_blank_values=True)), **(extra or {})}
    return urlunsplit(parts._replace(query=signed_query(params, mixin, wts)))


def sign_for_sending(request: Request, now: float) -> str | None:
    """Return the URL to send for *request*, signed at *now*; None if it is not to be signed.

    The request is to be signed when :class:`WbiSignMiddleware` put a mixin key in
    ``meta["bili_wbi"]``; the signing time is recorded there as ``wts``. A new dict
    is stored, not the old one updated: copies of a request (retries) share it.
    """
    signature = request.meta.get(WBI_META)
    if signature is None:
        return None
    wts = int(now)
    request.meta[WBI_META] = {**signature, "wts": wts}
    return sign_url(request.url, signature["mixin"], wts, signature.get("params"))


def check_handlers(crawler: Crawler) -> None:
    """Raise ConfigError unless http and https downloads go through :data:`HANDLER`.

    Its own settings are checked here too: Scrapy only logs a handler that fails to load.
    """
    from bilicrawl.handlers import delegate_class  # noqa: PLC0415 (it imports this module)

    handlers = crawler.settings.getwithbase("DOWNLOAD_HANDLERS")
    signer = load_object(HANDLER)
    for scheme in ("http", "https"):
        path = handlers.get(scheme)
        handler = load_object(path) if path else None
        if not (isinstance(handler, type) and issubclass(handler, signer)):
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
        self.key_ttl = settings.getfloat("BILI_WBI_KEY_TTL")
        if self.key_ttl <= 0:
            raise ValueError("BILI_WBI_KEY_TTL must be positive")
        check_handlers(crawler)
        self.dm_img_paths = tuple(settings.getlist("BILI_DM_IMG_PATHS"))
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
        return get_retry_request(
            request,
            spider=self.crawler.spider,
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
