"""Count the requests that end in a download error, by why (the input ledger says why alike).

It is the outermost downloader middleware, so its ``process_exception`` sees only
final failures, after every retry: a request cancelled because the crawl is
closing (``cancelled``), a network error Scrapy's RetryMiddleware gave up on
(``network``) or a request another component ignored (``ignored``). Each is
counted in ``bilicrawl/unfetched/<why>``, beside the answers the API middleware
drops (those never reach ``process_exception``).

A network give-up is re-raised as :class:`NetworkGaveUp`, an ``IgnoreRequest``:
RetryMiddleware has already logged it in one line, and Scrapy would otherwise log
it again with a full traceback (72 of them for a dead host). Errbacks still get
the original error as its ``__cause__``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.exceptions import IgnoreRequest

from bilicrawl.extensions.closing import CrawlClosing
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class NetworkGaveUp(IgnoreRequest):
    """A request that failed on the network on every try."""


def unfetched_reason(exception: BaseException) -> str:
    """Return the low-cardinality reason a request ended with *exception*."""
    if isinstance(exception, CrawlClosing):
        return "cancelled"
    if isinstance(exception, NetworkGaveUp):
        return "network"
    if isinstance(exception, IgnoreRequest):
        return "ignored"
    return "network"


class RequestOutcomeMiddleware:
    """Counts final failures in ``bilicrawl/unfetched/<why>`` (see the module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_exception(self, request: Request, exception: Exception) -> None:
        reason = unfetched_reason(exception)
        self.crawler.stats.inc_value(stat_key("unfetched", reason))
        if reason == "network":
            raise NetworkGaveUp(f"{type(exception).__name__}: {exception}") from exception
