"""Browser headers for every request.

One User-Agent per crawl from ``BILI_USER_AGENTS`` (cookies such as ``buvid3`` are tied
to it), none with ``BILI_IMPERSONATE`` (curl_cffi sends the impersonated browser's own,
matching its TLS fingerprint), and the ``Referer``, ``Origin``, ``Accept`` and
``Accept-Language`` of a browser on www.bilibili.com; headers a request already carries
win. It runs before Scrapy's ``DefaultHeadersMiddleware`` (400) so these are set first.
docs/request-layer.md, "Download handlers and browser impersonation", says why.

Settings: ``BILI_HEADERS_ENABLED`` (True), ``BILI_USER_AGENTS`` (a pool of current
desktop browsers), ``BILI_REFERER`` (``https://www.bilibili.com/``), ``BILI_IMPERSONATE``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.exceptions import NotConfigured

from bilicrawl.config import ConfigError, get_bool, get_str_list
from bilicrawl.handlers import impersonated_browser

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler


class BrowserHeadersMiddleware:
    """Adds the User-Agent, Referer, Origin and Accept headers a browser sends."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not get_bool(settings, "BILI_HEADERS_ENABLED"):
            raise NotConfigured("BILI_HEADERS_ENABLED is off")
        referer = settings["BILI_REFERER"]
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(referer))
        self.headers = {
            "Accept": "application/json, text/plain, */*",
            "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8",
            "Referer": referer,
            "Origin": origin,
        }
        if not impersonated_browser(settings):
            user_agents = get_str_list(settings, "BILI_USER_AGENTS")
            if not user_agents:
                raise ConfigError(
                    "BILI_USER_AGENTS is empty: Bilibili rejects non-browser clients"
                )
            self.headers["User-Agent"] = random.choice(user_agents)  # noqa: S311 (not security)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        for name, value in self.headers.items():
            request.headers.setdefault(name, value)
