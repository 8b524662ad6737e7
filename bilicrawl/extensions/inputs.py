"""The outcome of every accepted input: stored, absent on the site, or not fetched and why.

This ledger counts each open input's requests not answered yet (tagged
``meta["bili_input"]`` by the base spider and the
:class:`~bilicrawl.spidermiddlewares.inputs.InputTags` spider middleware) and
the keys of its documents not yet committed (``bilicrawl.signals.store_committed``),
and decides the input when both are done; inputs still open at close are
decided then. Only open inputs are kept. Reads no settings.

Stats: ``bilicrawl/input/<outcome>[/<why>]`` (outcomes ``stored``,
``absent``, ``not_fetched``, ``not_stored``), ``bilicrawl/input/unread``.
The outcomes and their reasons are in docs/operations.md ("The end of a crawl").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from scrapy import signals as scrapy_signals

from bilicrawl import signals
from bilicrawl.envelope import BiliApiError
from bilicrawl.extensions.closing import CrawlClosing
from bilicrawl.items import StoredItem
from bilicrawl.middlewares.outcome import unfetched_reason
from bilicrawl.pseudonyms import pseudonymizer_from_settings
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from twisted.python.failure import Failure

    from bilicrawl.pseudonyms import Pseudonymizer

TAG = "bili_input"
"""The request meta key holding the numbers of the inputs a request serves."""
OPTIONAL = "bili_optional"
"""Request meta key: its errback makes up for its failure (a video stored without its tags,
a cards batch split in two), which then does not count against its inputs."""

ABSENT_REASONS = frozenset(
    {
        "api_code_-404",
        "api_code_62002",
        "api_code_62004",
        "api_code_62012",
        "api_code_-626",
        "api_code_1",  # the live API: no such room
    }
)
"""Drops that mean the site has no such thing (docs/bilibili-api.md), not a failure."""
NOTHING = "has_nothing"
"""Why an input is absent when it was answered but gave nothing to store."""
UNCONFIRMED = "unconfirmed"
"""Why an input is not stored when the store never said it committed its documents."""


class OpenInput:
    """An input being crawled: what it still waits for, and how it went so far."""

    __slots__ = ("absent", "awaiting", "failed", "items", "outstanding")

    def __init__(self) -> None:
        self.outstanding = 0
        """Requests of it not answered yet."""
        self.awaiting = 0
        """Documents of it not yet committed by the store."""
        self.items = 0
        self.failed: tuple[str, str] | None = None
        """The first ``(outcome, why)`` that makes it a failure."""
        self.absent: str | None = None


class InputLedger:
    """Decides and counts the outcome of each accepted input (see the module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.open: dict[int, OpenInput] = {}
        self.awaited: dict[tuple[str, Any], list[int]] = {}
        """``(collection, stored key)`` -> the inputs waiting for its commit."""
        self.collections: dict[str, int] = {}
        """Keys awaited per collection: commits of other collections are not looked at."""
        self.numbered = 0
        self.store_failed = False
        """A batch failed in this crawl: a document never confirmed is one it held back."""
        self.pseudonymizer: Pseudonymizer | None = None
        crawler.signals.connect(self._spider_opened, signal=scrapy_signals.spider_opened)
        crawler.signals.connect(self._request_dropped, signal=scrapy_signals.request_dropped)
        crawler.signals.connect(self._item_dropped, signal=scrapy_signals.item_dropped)
        crawler.signals.connect(self._item_error, signal=scrapy_signals.item_error)
        crawler.signals.connect(self._committed, signal=signals.store_committed)
        crawler.signals.connect(self._store_failed, signal=signals.store_failed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _spider_opened(self) -> None:
        self.pseudonymizer = pseudonymizer_from_settings(self.crawler.settings)

    # --- what the base spider and the spider middleware tell ----------------------------

    def accept(self) -> int:
        """Open a new input and return its number."""
        self.numbered += 1
        self.open[self.numbered] = OpenInput()
        return self.numbered

    def sent(self, tag: tuple[int, ...]) -> None:
        """A request serving the inputs of *tag* is on its way."""
        for number in tag:
            if (entry := self.open.get(number)) is not None:
                entry.outstanding += 1

    def answered(self, tag: tuple[int, ...]) -> None:
        """A request of *tag* is answered and what its callback yielded is counted."""
        for number in tag:
            if (entry := self.open.get(number)) is not None:
                entry.outstanding -= 1
                if entry.outstanding <= 0 and not entry.awaiting:
                    self._decide(number, entry)

    def item(self, tag: tuple[int, ...], item: Any) -> None:
        """An item of *tag* goes to the store: its document is awaited (rows are not keyed)."""
        keyed = isinstance(item, StoredItem) and item.rows_field is None
        if keyed:
            collection = item.collection
            key = self._stored_key(item)
            waiting = self.awaited.setdefault((collection, key), [])
        for number in tag:
            if (entry := self.open.get(number)) is not None:
                entry.items += 1
                if keyed:
                    entry.awaiting += 1
                    waiting.append(number)
                    self.collections[collection] = self.collections.get(collection, 0) + 1

    def failed(self, tag: tuple[int, ...], failure: Failure) -> None:
        """A request of *tag* failed for good (before its errback runs)."""
        if failure.request.meta.get(OPTIONAL):  # type: ignore[attr-defined]  # set by Scrapy
            return
        reason = failure_reason(cast("BaseException", failure.value))  # a Failure holds one
        outcome = "absent" if reason in ABSENT_REASONS else "not_fetched"
        for number in tag:
            if (entry := self.open.get(number)) is not None:
                self._mark(entry, outcome, reason)

    def spider_failed(self, tag: tuple[int, ...]) -> None:
        """A callback of *tag* raised: what it would have yielded is not fetched."""
        for number in tag:
            if (entry := self.open.get(number)) is not None:
                self._mark(entry, "not_fetched", "spider_error")

    def nothing(self, tag: tuple[int, ...], why: str = NOTHING) -> None:
        """The site answered that an input of *tag* has nothing (a card left out)."""
        for number in tag:
            if (entry := self.open.get(number)) is not None:
                self._mark(entry, "absent", why)

    def _request_dropped(self, request: Request, **kwargs: Any) -> None:
        """A request the scheduler refused (a duplicate): it will not be answered."""
        if tag := request.meta.get(TAG):
            self.answered(tag)

    # --- the store -----------------------------------------------------------------------

    def _committed(self, collection: str, keys: Any, **kwargs: Any) -> None:
        self._settle(collection, keys, None)

    def _store_failed(self, collection: str, keys: Any, **kwargs: Any) -> None:
        self.store_failed = True
        self._settle(collection, keys, "store_failed")

    def _settle(self, collection: str, keys: Any, failure: str | None) -> None:
        if not self.collections.get(collection):
            return
        for key in keys:
            numbers = self.awaited.pop((collection, tuple(key)), None)
            if numbers is None:
                continue
            self.collections[collection] -= len(numbers)
            for number in numbers:
                self._release(number, failure)

    def _release(self, number: int, failure: str | None) -> None:
        entry = self.open.get(number)
        if entry is None:
            return
        entry.awaiting -= 1
        if failure is not None:
            self._mark(entry, "not_stored", failure)
        if entry.outstanding <= 0 and not entry.awaiting:
            self._decide(number, entry)

    def _item_dropped(self, item: Any, response: Any, **kwargs: Any) -> None:
        self._item_lost(item, response, "invalid")

    def _item_error(self, item: Any, response: Any, **kwargs: Any) -> None:
        self._item_lost(item, response, "pipeline_error")

    def _item_lost(self, item: Any, response: Any, why: str) -> None:
        """An item of an input never reached the store: its document is no longer awaited."""
        request = getattr(response, "request", None)
        tag = request.meta.get(TAG) if request is not None else None
        if not tag or not isinstance(item, StoredItem) or item.rows_field is not None:
            return
        collection = item.collection
        key = (collection, self._stored_key(item))
        numbers = self.awaited.get(key, [])
        for number in tag:
            if number in numbers:
                numbers.remove(number)
                self.collections[collection] -= 1
                if (entry := self.open.get(number)) is not None:
                    self._mark(entry, "not_stored", why)
                self._release(number, None)
        if not numbers:
            self.awaited.pop(key, None)

    def _stored_key(self, item: StoredItem) -> tuple[Any, ...]:
        key = tuple(getattr(item, field) for field in item.natural_key)
        return key if self.pseudonymizer is None else self.pseudonymizer.key(type(item), key)

    # --- outcomes ------------------------------------------------------------------------

    @staticmethod
    def _mark(entry: OpenInput, outcome: str, why: str) -> None:
        if outcome == "absent":
            entry.absent = entry.absent or why
        elif entry.failed is None:
            entry.failed = (outcome, why)

    def _decide(self, number: int, entry: OpenInput) -> None:
        del self.open[number]
        stats = self.crawler.stats
        if entry.failed is not None:
            stats.inc_value(stat_key("input", *entry.failed))
        elif entry.absent is not None or not entry.items:
            stats.inc_value(stat_key("input", "absent", entry.absent or NOTHING))
        else:
            stats.inc_value(stat_key("input", "stored"))

    def finish(self) -> None:
        """Decide the inputs still open at close: the crawl closed before they were done.

        Inputs the spider never read (it has ``unread_inputs()``) are counted apart,
        in ``bilicrawl/input/unread``.
        """
        unread = getattr(self.crawler.spider, "unread_inputs", None)
        if unread is not None and (count := unread()):
            self.crawler.stats.set_value(stat_key("input", "unread"), count)
        unconfirmed = "store_failed" if self.store_failed else UNCONFIRMED
        for number, entry in list(self.open.items()):
            if entry.outstanding > 0:
                self._mark(entry, "not_fetched", "cancelled")
            elif entry.awaiting:
                self._mark(entry, "not_stored", unconfirmed)
            self._decide(number, entry)
        self.awaited.clear()
        self.collections.clear()


def failure_reason(error: BaseException) -> str:
    """Return why a request failed for good, as counted in ``bilicrawl/input/...``."""
    if isinstance(error, BiliApiError):
        return error.unfetched
    if isinstance(error, CrawlClosing):
        return "cancelled"
    return unfetched_reason(error)
