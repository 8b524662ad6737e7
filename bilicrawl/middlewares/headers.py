"""Browser headers for every request.

Bilibili rejects clients that do not look like a browser (HTTP 412 for a
missing or scripted User-Agent; relation lists and ``/x/article/cards`` also
want a ``bilibili.com`` Referer). One User-Agent is chosen per crawl, because
cookies such as ``buvid3`` are tied to it; headers a request already carries win.

Settings: ``BILI_HEADERS_ENABLED`` (True), ``BILI_USER_AGENTS`` (a pool of
current desktop browsers), ``BILI_REFERER`` (``https://www.bilibili.com/``).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.exceptions import NotConfigured

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler


class BrowserHeadersMiddleware:
    """Adds the User-Agent, Referer, Origin and Accept headers a browser sends."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("BILI_HEADERS_ENABLED"):
            raise NotConfigured("BILI_HEADERS_ENABLED is off")
        user_agents = settings.getlist("BILI_USER_AGENTS")
        if not user_agents:
            raise ValueError("BILI_USER_AGENTS is empty: Bilibili rejects non-browser clients")
        referer = settings["BILI_REFERER"]
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(referer))
        self.headers = {
            "User-Agent": random.choice(user_agents),  # noqa: S311 (not security)
            "Accept": "application/json, text/plain, */*",
            "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8",
            "Referer": referer,
            "Origin": origin,
        }

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        for name, value in self.headers.items():
            request.headers.setdefault(name, value)
