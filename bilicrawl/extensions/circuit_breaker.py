"""Close the crawl on a risk-control storm instead of hammering a ban.

After ``BILI_CIRCUIT_BREAKER_THRESHOLD`` consecutive risk-control answers
(``bilicrawl.signals.risk_control``) with no clean answer in between, the crawl
is closed with the reason ``bilicrawl_risk_control``, like Scrapy's CloseSpider
closes on its limits, through :func:`bilicrawl.extensions.closing.close_now`:
nothing is retried any more and requests still waiting in download slots are
cancelled, so the crawl stops at once instead of sending them into the ban. Documents already stored stay; rerunning the same
command later with ``-a resume=true`` fetches only what is missing.

Settings: ``BILI_CIRCUIT_BREAKER_THRESHOLD`` (10; 0 disables the breaker).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.exceptions import NotConfigured

from bilicrawl import signals
from bilicrawl.extensions.closing import close_now
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

CLOSE_REASON = "bilicrawl_risk_control"


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
        close_now(self.crawler, CLOSE_REASON)

    def _on_clean(self, request: Request) -> None:
        self.consecutive = 0
