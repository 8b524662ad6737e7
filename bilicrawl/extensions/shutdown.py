"""Ctrl-C and SIGTERM close the crawl in seconds, even during a long back-off.

This extension wraps the signal handlers Scrapy installs (once the reactor
runs; they are put back when the engine stops): on the signal it first takes
the close-now path, :func:`bilicrawl.extensions.closing.close_now`, then hands
over to Scrapy's handler, so a second Ctrl-C still forces the exit. Why is in
docs/operations.md ("Stopping a crawl"). Reads no settings; stat
``bilicrawl/shutdown/signal``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

from scrapy import signals as scrapy_signals
from scrapy.utils.asyncio import call_later

from bilicrawl.extensions.closing import close_now
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from types import FrameType
    from typing import Self

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)
CLOSE_REASON = "shutdown"
"""Scrapy's own finish reason for a crawl stopped by a signal."""


class FastShutdown:
    """Cancels queued requests and writes buffers on the first Ctrl-C or SIGTERM."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.received: str | None = None
        self._previous: dict[int, Any] = {}
        crawler.signals.connect(self._engine_started, signal=scrapy_signals.engine_started)
        crawler.signals.connect(self._restore_handlers, signal=scrapy_signals.engine_stopped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _engine_started(self) -> None:
        # Later than Scrapy's own "after startup" installation, whichever runs first.
        call_later(0, self._install_handlers)

    def _install_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set signal handlers
        for signum in SHUTDOWN_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def _restore_handlers(self) -> None:
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        from twisted.internet import reactor  # noqa: PLC0415

        # Nothing may log in a signal handler: hand the work to the reactor.
        reactor.callFromThread(self._close_fast, signal.Signals(signum).name)
        previous = self._previous.get(signum)
        self._restore_handlers()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            os.kill(os.getpid(), signum)  # what the signal would have done without us

    def _close_fast(self, name: str) -> None:
        if self.received is not None or self.crawler.engine.spider is None:
            return
        self.received = name
        self.crawler.stats.set_value(stat_key("shutdown", "signal"), name)
        logger.warning(
            "Received %(signal)s: cancelling queued requests and writing every fetched"
            " document; send it again to force the exit (buffered documents are still"
            " written)",
            {"signal": name},
            extra={"spider": self.crawler.spider},
        )
        close_now(self.crawler, CLOSE_REASON, close_spider=False)
