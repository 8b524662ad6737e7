"""Bilibili's identity cookies, put once in each cookie jar for the Bilibili hosts.

``buvid3``/``buvid4`` come from ``{BILI_API_URL}/x/frontend/finger/spi`` once per crawl
(one fetch shared; on failure a WARNING once, requests go without, and the fetch is
retried after ``BILI_COOKIES_RETRY_DELAY``), with ``b_nut``; the optional login cookies
``SESSDATA``, ``bili_jct``, ``DedeUserID`` come from settings, logged only masked. The
first request to a Bilibili host (``HOST_SETTINGS``' and bilibili.com's) in a jar carries
them in ``request.cookies``, for Scrapy's ``CookiesMiddleware`` (700, right after) to keep
in that jar; so it needs ``COOKIES_ENABLED``. Why so: docs/request-layer.md, "Cookies".

Settings: ``BILI_COOKIES_ENABLED`` (True), ``BILI_COOKIES_RETRY_DELAY`` (60 s),
``BILI_SESSDATA``, ``BILI_JCT``, ``BILI_DEDEUSERID`` (empty), the host settings,
``COOKIES_ENABLED``, ``COOKIES_DEBUG`` (logs the login in clear).
Stats: ``bilicrawl/cookies/buvid_fetched``, ``bilicrawl/cookies/buvid_failed``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.http.request import VerboseCookie
from scrapy.utils.httpobj import urlparse_cached

from bilicrawl import signals
from bilicrawl.config import get_bool, get_float
from bilicrawl.envelope import decode_envelope
from bilicrawl.extensions.closing import CrawlClosing
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

# Scrapy's CookiesMiddleware asks tldextract for public suffixes; on its first use
# tldextract tries to download the Public Suffix List and, offline, logs two
# tracebacks before falling back to its bundled copy, which serves us as well.
logging.getLogger("tldextract").setLevel(logging.ERROR)

SPI_META = "bili_buvid_fetch"
"""Meta flag of the spi request itself, which must not wait for its own result."""

SITE_DOMAIN = "bilibili.com"
SITE_SUFFIX = f".{SITE_DOMAIN}"

HOST_SETTINGS = ("BILI_API_URL", "BILI_COMMENT_URL", "BILI_WWW_URL", "BILI_LIVE_API_URL")

LOGIN_SETTINGS = {
    "SESSDATA": "BILI_SESSDATA",
    "bili_jct": "BILI_JCT",
    "DedeUserID": "BILI_DEDEUSERID",
}
"""Login cookie name -> the setting holding its value."""


def mask_secret(value: str) -> str:
    """Return *value* safe to log: its first 3 characters (none if short) and its length."""
    prefix = value[:3] if len(value) > 12 else ""
    return f"{prefix}…({len(value)} chars)"


def _buvid_from_spi(response: Response) -> tuple[str, str]:
    """Return ``(buvid3, buvid4)`` from a finger/spi response; ValueError if absent."""
    payload = decode_envelope(response)
    if response.status != 200 or payload is None:
        raise ValueError(f"HTTP {response.status} without a JSON envelope")
    if payload["code"] != 0:
        raise ValueError(f"code {payload['code']}")
    data = payload.get("data") or {}
    buvid3, buvid4 = data.get("b_3"), data.get("b_4")
    if not (isinstance(buvid3, str) and buvid3 and isinstance(buvid4, str) and buvid4):
        raise ValueError("no data.b_3/data.b_4 in the answer")
    return buvid3, buvid4


def _merge_cookies(request: Request, cookies: dict[str, str], domain: str | None) -> None:
    """Add *cookies* to ``request.cookies`` unless the request has one of that name.

    They get ``path=/``: without it, the jar scopes each to the directory of the
    first URL it came with and sends duplicates to deeper paths. On bilibili.com
    hosts they get ``domain=.bilibili.com``, as the site sets them: a
    ``Set-Cookie`` of the site then replaces ours instead of joining it as a
    second cookie of the same name. A new list is assigned rather than updated
    in place: copies of a request share their ``cookies`` object.
    """
    existing: list[VerboseCookie] = (
        [{"name": name, "value": value} for name, value in request.cookies.items()]
        if isinstance(request.cookies, dict)
        else request.cookies
    )
    present = {cookie["name"] for cookie in existing}
    added: list[VerboseCookie] = []
    for name, value in cookies.items():
        if name in present:
            continue
        cookie = VerboseCookie(name=name, value=value, path="/")
        if domain:
            cookie["domain"] = domain
        added.append(cookie)
    request.cookies = [*existing, *added]


class BiliCookiesMiddleware:
    """Adds buvid3/buvid4/b_nut and optional login cookies (see the module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not get_bool(settings, "BILI_COOKIES_ENABLED"):
            raise NotConfigured("BILI_COOKIES_ENABLED is off")
        if not get_bool(settings, "COOKIES_ENABLED"):
            raise NotConfigured("COOKIES_ENABLED is off: Scrapy would not send request cookies")
        self.crawler = crawler
        self.spi_url = settings["BILI_API_URL"].rstrip("/") + "/x/frontend/finger/spi"
        self.retry_delay = get_float(settings, "BILI_COOKIES_RETRY_DELAY", minimum=0)
        hosts = (urlsplit(settings[name]).hostname for name in HOST_SETTINGS if settings.get(name))
        self.hosts = frozenset(host for host in hosts if host)
        self.login = {
            cookie: value
            for cookie, name in LOGIN_SETTINGS.items()
            if (value := settings.get(name))
        }
        self.clock: Callable[[], float] = time.time
        self._buvid: dict[str, str] | None = None
        self._failed_at: float | None = None
        self._warned = False
        self._fetch: asyncio.Task[dict[str, str]] | None = None
        self.closing: str | None = None
        """Why the crawl is closing, once it is."""
        crawler.signals.connect(self._on_closing, signal=signals.crawl_closing)
        self._seeded: set[tuple[object, str, str]] = set()
        """(cookiejar, scheme, host or ".bilibili.com") whose jar holds the cookies."""
        if self.login:
            logger.info(
                "Sending login cookies: %(cookies)s",
                {"cookies": ", ".join(f"{k}={mask_secret(v)}" for k, v in self.login.items())},
            )
            if get_bool(settings, "COOKIES_DEBUG"):
                logger.warning("COOKIES_DEBUG is on: Scrapy logs the login cookies in clear")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        meta = request.meta
        url = urlparse_cached(request)
        host = url.hostname or ""
        on_site = host == SITE_DOMAIN or host.endswith(SITE_SUFFIX)
        # Cookies on the site are shared by its hosts (domain=.bilibili.com).
        jar = (meta.get("cookiejar"), url.scheme, SITE_SUFFIX if on_site else host)
        if jar in self._seeded or meta.get(SPI_META) or meta.get("dont_merge_cookies"):
            return
        if not (on_site or host in self.hosts):
            return
        buvid = await self._buvid_cookies()
        if jar in self._seeded:  # by another request while this one waited
            return
        _merge_cookies(request, {**buvid, **self.login}, SITE_SUFFIX if on_site else None)
        if buvid:
            self._seeded.add(jar)

    async def _buvid_cookies(self) -> dict[str, str]:
        """Return the buvid cookies, fetching them if needed; empty while unavailable."""
        if self._buvid is not None:
            return self._buvid
        if self._failed_at is not None and self.clock() - self._failed_at < self.retry_delay:
            return {}
        if self._fetch is None:
            self._fetch = asyncio.ensure_future(self._fetch_buvid())
            self._fetch.add_done_callback(self._fetch_done)
        # shield: a cancelled waiter must not cancel the fetch the others wait for.
        return await asyncio.shield(self._fetch)

    def _fetch_done(self, _task: asyncio.Task[dict[str, str]]) -> None:
        self._fetch = None

    async def _fetch_buvid(self) -> dict[str, str]:
        request = Request(self.spi_url, meta={SPI_META: True}, dont_filter=True)
        try:
            response = await self.crawler.engine.download_async(request)
            buvid3, buvid4 = _buvid_from_spi(response)
        except Exception as exc:  # any failure (network, API error, bad body): go without
            if self.closing is not None:  # no failure of the site: nothing is sent any more
                raise CrawlClosing(f"not sent: {self.closing}") from exc
            self._failed_at = self.clock()
            self.crawler.stats.inc_value(stat_key("cookies", "buvid_failed"))
            log = logger.debug if self._warned else logger.warning
            self._warned = True
            log(
                "Could not get buvid cookies from %(url)s (%(error)s); sending requests "
                "without them and retrying in %(delay)s s",
                {"url": self.spi_url, "error": exc, "delay": self.retry_delay},
                extra={"spider": self.crawler.spider},
            )
            return {}
        self._buvid = {"buvid3": buvid3, "buvid4": buvid4, "b_nut": str(int(self.clock()))}
        self.crawler.stats.inc_value(stat_key("cookies", "buvid_fetched"))
        logger.info(
            "Got buvid cookies from %(url)s",
            {"url": self.spi_url},
            extra={"spider": self.crawler.spider},
        )
        return self._buvid

    def _on_closing(self, reason: str) -> None:
        self.closing = reason
