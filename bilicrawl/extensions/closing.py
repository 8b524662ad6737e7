"""Close a crawl at once: the one path shared by the circuit breakers, Ctrl-C and SIGTERM.

Scrapy's graceful close waits for every request the engine holds, and a
request waiting in a download slot is sent only after the slot's delay: under a
long back-off, or against a dead host, closing would take minutes and send
those requests into the ban. :func:`close_now` tells bilicrawl's components the
crawl is closing (``bilicrawl.signals.crawl_closing``: retries stop, buffered
documents are written, the download handler sends nothing more) and fails the
requests queued in download slots with :class:`CrawlClosing`, so only the
requests already on the wire are waited for. A request that reaches a slot
later (the WBI-key or buvid fetch a middleware was waiting on, a network retry)
is cancelled in turn by :class:`bilicrawl.handlers.BiliDownloadHandler`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import deferred_from_coro
from twisted.python.failure import Failure

from bilicrawl import signals
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class CrawlClosing(IgnoreRequest):
    """A request not sent because the crawl is closing; a resumed rerun fetches it."""


def close_now(crawler: Crawler, reason: str, *, close_spider: bool = True) -> None:
    """Signal ``crawl_closing``, cancel queued downloads and (unless told not to) close.

    *close_spider* is False when Scrapy is already closing the spider (Ctrl-C).
    """
    crawler.signals.send_catch_log(signals.crawl_closing, reason=reason)
    cancelled = cancel_queued_downloads(crawler, reason)
    if cancelled:
        logger.info(
            "Cancelled %(count)d queued requests (%(reason)s); a rerun with -a resume=true"
            " fetches them",
            {"count": cancelled, "reason": reason},
            extra={"spider": crawler.spider},
        )
    if close_spider:
        deferred_from_coro(crawler.engine.close_spider_async(reason=reason))


def cancel_queued_downloads(crawler: Crawler, reason: str) -> int:
    """Fail the requests waiting in download slots with CrawlClosing; return how many.

    Counted in ``bilicrawl/closing/cancelled``. The slot queues are
    semi-internal, reached as AutoThrottle reaches slots.
    """
    cancelled = 0
    for slot in crawler.engine.downloader.slots.values():
        while slot.queue:
            _, deferred = slot.queue.popleft()
            deferred.errback(Failure(CrawlClosing(f"not sent: {reason}")))
            cancelled += 1
    if cancelled:
        crawler.stats.inc_value(stat_key("closing", "cancelled"), cancelled)
    return cancelled
