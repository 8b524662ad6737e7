"""Pause the crawl while the store retries a write, close it when the store fails.

Fetching what the store cannot keep only loses it (and fills memory), so while
a batch is being retried (``bilicrawl.signals.store_stalled``) the engine sends
no new request and the spiders read no new input; once a batch is given up
(``store_failed``, dead-lettered) the crawl takes the close-now path with the
finish reason :data:`STORE_FAILED`. Reads no settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bilicrawl import signals
from bilicrawl.extensions.closing import close_now

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

STORE_FAILED = "bilicrawl_store_failed"
"""Finish reason of a crawl closed because the store could not keep what it fetched."""


class StoreGuard:
    """Pauses the engine during store retries; closes the crawl when a batch is given up."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stalled = 0
        """Batches being retried now."""
        self.closing = False
        crawler.signals.connect(self._on_stalled, signal=signals.store_stalled)
        crawler.signals.connect(self._on_resumed, signal=signals.store_resumed)
        crawler.signals.connect(self._on_failed, signal=signals.store_failed)
        crawler.signals.connect(self._on_closing, signal=signals.crawl_closing)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _on_stalled(self, collection: str, error: Exception) -> None:
        self.stalled += 1
        self.crawler.engine.pause()

    def _on_resumed(self) -> None:
        self.stalled -= 1
        if not self.stalled:
            self.crawler.engine.unpause()

    def _on_failed(self, collection: str, keys: list[object], error: Exception) -> None:
        if not self.closing:
            close_now(self.crawler, STORE_FAILED)

    def _on_closing(self, reason: str) -> None:
        self.closing = True
