"""Helpers for tests: saved payloads, the project's settings, in-process crawls, stand-ins."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scrapy import Request, signals
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from bilicrawl import settings

FIXTURES = Path(__file__).parent / "fixtures"
DELETE = object()
"""Stands for "remove the field" in ``edit``."""


def payload(path: str) -> Any:
    """The ``data`` of a saved envelope under tests/fixtures."""
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))["data"]


def edit(root: Any, path: str, value: object) -> None:
    """Set (or with ``DELETE`` remove) the field at an error-message path like ``list[1].mid``."""
    *parents, last = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]
    for key in parents:
        root = root[key]
    if value is DELETE:
        del root[last]
    else:
        root[last] = value


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
