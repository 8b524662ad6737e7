"""Close the crawl when going on is pointless: a risk-control storm, or a dead host.

Each breaker watches a run of consecutive failures (:class:`FailureRun`), trips
on a count or, after :data:`MIN_RUN` failures, on a duration, and closes the
crawl through :func:`bilicrawl.extensions.closing.close_now`.

- :class:`RiskCircuitBreaker`: risk-control answers. Settings
  ``BILI_CIRCUIT_BREAKER_THRESHOLD``, ``BILI_CIRCUIT_BREAKER_SECONDS``; stat
  ``bilicrawl/circuit_breaker/tripped``.
- :class:`DeadHostBreaker`: network failures of one host. Settings
  ``BILI_DEAD_HOST_THRESHOLD``, ``BILI_DEAD_HOST_SECONDS``; stat
  ``bilicrawl/dead_host/tripped``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from scrapy import signals as scrapy_signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.httpobj import urlparse_cached

from bilicrawl import signals
from bilicrawl.config import get_float, get_int
from bilicrawl.extensions.closing import close_now
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

CLOSE_REASON = "bilicrawl_risk_control"
DEAD_HOST_REASON = "bilicrawl_dead_host"
MIN_RUN = 3
"""Failures in a row the time rule needs: one or two slow failures are no pattern."""


class FailureRun:
    """A run of consecutive failures that trips at *threshold* of them or after *seconds*."""

    def __init__(self, threshold: int, seconds: float) -> None:
        self.threshold = threshold
        self.seconds = seconds
        self.count = 0
        self.started = 0.0

    def fail(self, now: float) -> bool:
        """Count a failure at *now*; return whether the run trips."""
        if not self.count:
            self.started = now
        self.count += 1
        if self.count >= self.threshold:
            return True
        lasted = now - self.started
        return bool(self.seconds) and self.count >= MIN_RUN and lasted >= self.seconds

    def reset(self) -> None:
        self.count = 0


class Breaker:
    """Reads ``<prefix>_THRESHOLD`` and ``<prefix>_SECONDS``; closes the crawl once, if tripped."""

    prefix: str
    stat: str
    close_reason: str

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.threshold = get_int(settings, f"{self.prefix}_THRESHOLD", minimum=0)
        if not self.threshold:
            raise NotConfigured(f"{self.prefix}_THRESHOLD is 0")
        self.seconds = get_float(settings, f"{self.prefix}_SECONDS", minimum=0)
        self.crawler = crawler
        self.clock: Callable[[], float] = time.monotonic
        self.closing = False
        crawler.signals.connect(self._on_closing, signal=signals.crawl_closing)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def new_run(self) -> FailureRun:
        return FailureRun(self.threshold, self.seconds)

    def trip(self, run: FailureRun, value: str, message: str, args: dict[str, Any]) -> None:
        """Log *message* at ERROR, set the stat to *value* and close the crawl, once."""
        if self.closing:
            return  # another breaker or Ctrl-C got there first
        self.crawler.stats.set_value(stat_key(self.stat, "tripped"), value)
        args = {**args, "count": run.count, "seconds": self.clock() - run.started}
        logger.error(message, args, extra={"spider": self.crawler.spider})
        close_now(self.crawler, self.close_reason)

    def _on_closing(self, reason: str) -> None:
        self.closing = True


class RiskCircuitBreaker(Breaker):
    """Closes the crawl on a run of risk-control answers: Bilibili is blocking this client."""

    prefix = "BILI_CIRCUIT_BREAKER"
    stat = "circuit_breaker"
    close_reason = CLOSE_REASON

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.run = self.new_run()
        crawler.signals.connect(self._on_risk, signal=signals.risk_control)
        crawler.signals.connect(self._on_clean, signal=signals.clean_answer)

    def _on_risk(self, request: Request, reason: str) -> None:
        if self.run.fail(self.clock()):
            self.trip(
                self.run,
                reason,
                "Closing the crawl: %(count)d consecutive risk-control answers over"
                " %(seconds).0f s (last: %(reason)s for %(request)s). Bilibili is blocking this"
                " client; rerun the same command later with -a resume=true to fetch the rest.",
                {"reason": reason, "request": request},
            )

    def _on_clean(self, request: Request) -> None:
        self.run.reset()


class DeadHostBreaker(Breaker):
    """Closes the crawl when a host gives nothing but network failures: it is down."""

    prefix = "BILI_DEAD_HOST"
    stat = "dead_host"
    close_reason = DEAD_HOST_REASON

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.runs: dict[str, FailureRun] = {}
        """The current run of each host."""
        crawler.signals.connect(self._on_failure, signal=signals.network_failure)
        crawler.signals.connect(self._on_response, signal=scrapy_signals.response_downloaded)

    def _on_failure(self, request: Request, reason: str, exception: Exception) -> None:
        host = urlparse_cached(request).netloc
        run = self.runs.setdefault(host, self.new_run())
        if run.fail(self.clock()):
            self.trip(
                run,
                reason,
                "Closing the crawl: %(host)s is unreachable, %(count)d network failures in a row"
                " over %(seconds).0f s with no response (last: %(reason)s: %(error)s). Rerun the"
                " same command with -a resume=true once the host answers again.",
                {"host": host, "reason": reason, "error": exception},
            )

    def _on_response(self, request: Request) -> None:
        """Any response, whatever its status or code, proves the host is alive."""
        run = self.runs.get(urlparse_cached(request).netloc)
        if run is not None:
            run.reset()
