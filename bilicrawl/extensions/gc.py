"""Run Python's cyclic garbage collector less often while crawling: it took a fifth of the CPU.

Every response allocates hundreds of container objects (a decoded JSON body,
headers, requests, an item), so with CPython's default first-generation
threshold (700 allocations) a collection runs every few responses, and the
older generations, which hold the whole Scrapy engine, are scanned again and
again. While the engine runs, this extension raises that threshold to
``BILI_GC_THRESHOLD``. Reference counting still frees almost everything at
once; only cycles wait a little longer. (Freezing the start-up heap with
``gc.freeze()`` on top measured no better.) The default comes back when the
engine stops. Measured in docs/benchmarks.md.

Settings: ``BILI_GC_THRESHOLD`` (10000; 0 leaves the collector alone).
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured

from bilicrawl.config import get_int

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler


class GcTuning:
    """Raises the collector's first-generation threshold while the engine runs."""

    def __init__(self, crawler: Crawler) -> None:
        self.threshold = get_int(crawler.settings, "BILI_GC_THRESHOLD", minimum=0)
        if not self.threshold:
            raise NotConfigured("BILI_GC_THRESHOLD is 0")
        self.defaults: tuple[int, ...] | None = None
        crawler.signals.connect(self.engine_started, signal=signals.engine_started)
        crawler.signals.connect(self.engine_stopped, signal=signals.engine_stopped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def engine_started(self) -> None:
        self.defaults = gc.get_threshold()
        gc.set_threshold(self.threshold, *self.defaults[1:])

    def engine_stopped(self) -> None:
        if self.defaults is not None:
            gc.set_threshold(*self.defaults)
            self.defaults = None
