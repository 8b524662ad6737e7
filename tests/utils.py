"""Helpers for tests: the project's settings, in-process crawls, stand-ins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from scrapy import Request, signals
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from bilicrawl import settings


def project_settings() -> dict[str, Any]:
    """The shipped settings module as a dict, for ``get_crawler``."""
    return {name: getattr(settings, name) for name in dir(settings) if name.isupper()}


class CrawlResult:
    """What a finished crawl produced: its items and stats."""

    def __init__(self, crawler: Any, items: list[Any]) -> None:
        self.crawler = crawler
        self.items = items
        self.stats: dict[str, Any] = crawler.stats.get_stats()


async def run_crawl(spidercls: type, settings: dict[str, Any], **spider_args: Any) -> CrawlResult:
    """Run *spidercls* in-process to the end and return its items and stats."""
    crawler = get_crawler(spidercls, settings)
    items: list[Any] = []

    def collect(item: Any) -> None:
        items.append(item)

    crawler.signals.connect(collect, signal=signals.item_scraped)
    await crawler.crawl_async(**spider_args)
    return CrawlResult(crawler, items)


class FakeEngine:
    """Stands in for ``crawler.engine``: answers ``download_async`` with *answer*."""

    def __init__(self, answer: Callable[[Request], Response]) -> None:
        self.answer = answer
        self.requests: list[Request] = []

    async def download_async(self, request: Request) -> Response:
        self.requests.append(request)
        await asyncio.sleep(0)  # let concurrent callers pile up, as a real download would
        return self.answer(request)


class Clock:
    """A settable stand-in for ``time.time``/``time.monotonic``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
