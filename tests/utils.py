"""Helpers for tests: the project's settings and in-process crawls."""

from __future__ import annotations

from typing import Any

from scrapy import signals
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
