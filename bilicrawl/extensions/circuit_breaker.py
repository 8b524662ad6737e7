"""Close the crawl on a risk-control storm instead of hammering a ban.

After ``BILI_CIRCUIT_BREAKER_THRESHOLD`` consecutive risk-control answers
(``bilicrawl.signals.risk_control``) with no clean answer in between, the crawl
is closed with the reason ``bilicrawl_risk_control``, like Scrapy's CloseSpider
closes on its limits: risk answers are no longer retried
(``bilicrawl.signals.circuit_open``) and requests still waiting in download
slots are cancelled with ``CircuitOpen``, so the crawl stops at once instead of
sending them into the ban. Documents already stored stay; rerunning the same
command later with ``-a resume=true`` fetches only what is missing.

Settings: ``BILI_CIRCUIT_BREAKER_THRESHOLD`` (10; 0 disables the breaker).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.defer import deferred_from_coro
from twisted.python.failure import Failure

from bilicrawl import signals
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

CLOSE_REASON = "bilicrawl_risk_control"


class CircuitOpen(IgnoreRequest):
    """A request cancelled because the circuit breaker closed the crawl."""


class RiskCircuitBreaker:
    """Counts consecutive risk-control answers and closes the crawl at the threshold."""

    def __init__(self, crawler: Crawler) -> None:
        self.threshold = crawler.settings.getint("BILI_CIRCUIT_BREAKER_THRESHOLD")
        if self.threshold <= 0:
            raise NotConfigured("BILI_CIRCUIT_BREAKER_THRESHOLD is 0")
        self.crawler = crawler
        self.consecutive = 0
        self.tripped = False
        crawler.signals.connect(self._on_risk, signal=signals.risk_control)
        crawler.signals.connect(self._on_clean, signal=signals.clean_answer)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _on_risk(self, request: Request, reason: str) -> None:
        self.consecutive += 1
        if self.consecutive < self.threshold or self.tripped:
            return
        self.tripped = True
        self.crawler.stats.set_value(stat_key("circuit_breaker", "tripped"), reason)
        logger.error(
            "Closing the crawl: %(count)d consecutive risk-control answers (last: %(reason)s "
            "for %(request)s). Bilibili is blocking this client; rerun later to resume.",
            {"count": self.consecutive, "reason": reason, "request": request},
            extra={"spider": self.crawler.spider},
        )
        self.crawler.signals.send_catch_log(signals.circuit_open)
        self._cancel_queued_downloads()
        deferred_from_coro(self.crawler.engine.close_spider_async(reason=CLOSE_REASON))

    def _cancel_queued_downloads(self) -> None:
        """Fail the requests waiting in download slots, instead of sending them one per delay.

        Closing waits for every request the downloader holds, and under a long
        back-off each queued one would still be sent, minutes apart, into the ban.
        The slot queues are semi-internal, reached as AutoThrottle reaches slots.
        """
        cancelled = 0
        for slot in self.crawler.engine.downloader.slots.values():
            while slot.queue:
                _, deferred = slot.queue.popleft()
                deferred.errback(Failure(CircuitOpen(f"not sent: {CLOSE_REASON}")))
                cancelled += 1
        if cancelled:
            self.crawler.stats.set_value(stat_key("circuit_breaker", "cancelled"), cancelled)
            logger.info(
                "Cancelled %(count)d queued requests; a rerun with -a resume=true fetches them",
                {"count": cancelled},
                extra={"spider": self.crawler.spider},
            )

    def _on_clean(self, request: Request) -> None:
        self.consecutive = 0
