"""The end of a crawl in plain words, and the exit status it deserves.

At ``spider_closed`` (after the storage pipeline wrote its last batch) one
block is logged: inputs accepted, bad, duplicate and already stored; what
became of the accepted ones, adding up (stored, absent on the site, not fetched
or not stored, by why: ``bilicrawl.extensions.inputs``) and the inputs left
unread; distinct documents written per collection; documents dead-lettered or
lost; the slowdowns; the finish reason; and what to do next. Its exit status is
put in the ``bilicrawl/exit_status`` stat, which bilicrawl's ``scrapy crawl``
exits with. The statuses are documented in the README; :func:`exit_status`
decides them, from the first reason the crawl began closing for.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from scrapy import signals

from bilicrawl import signals as bili_signals
from bilicrawl.extensions.inputs import InputLedger
from bilicrawl.extensions.store_guard import STORE_FAILED
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

OK = 0
"""Every accepted input is stored, or the site says it does not exist or has nothing."""
FAILED = 1
"""Some accepted input was not fetched or not stored, the store failed, or a start error."""
USAGE = 2
"""A bad argument or setting, or no input that names anything: nothing to crawl."""
BLOCKED = 3
"""A circuit breaker closed the crawl: Bilibili blocked it, or the host went away."""
INTERRUPTED = 130
"""Ctrl-C or SIGTERM, the shell's status for an interrupted program."""

FORCED_SHUTDOWN = "forced_shutdown"
"""Finish reason of a crawl whose spider never closed (a second Ctrl-C)."""
FIRST_REASON = stat_key("closing", "first_reason")
"""The stat holding the first reason the crawl began closing for, which decides."""

BREAKER_ADVICE = {
    "bilicrawl_risk_control": (
        "Bilibili is blocking this client (risk control). Wait (a ban typically lasts about"
        " 30 minutes), then rerun the same command with -a resume=true."
    ),
    "bilicrawl_dead_host": (
        "The API host stopped answering. Check the network and BILI_API_URL, then rerun the"
        " same command with -a resume=true."
    ),
}
INTERRUPTED_REASONS = frozenset({"shutdown", FORCED_SHUTDOWN})
RESUME = "rerun the same command with -a resume=true"


class Outcome(NamedTuple):
    """An exit status and the sentence that explains it."""

    status: int
    explanation: str


def _tail_counts(stats: dict[str, Any], prefix: str) -> dict[str, int]:
    """Return ``{tail: value}`` of the integer stats directly under ``bilicrawl/<prefix>/``."""
    base = stat_key(prefix) + "/"
    return {
        key[len(base) :]: value
        for key, value in sorted(stats.items())
        if key.startswith(base) and "/" not in key[len(base) :] and isinstance(value, int)
    }


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items()) or "none"


class Inputs(NamedTuple):
    """What became of a crawl's inputs, read from its stats."""

    accepted: int
    bad: int
    duplicate: int
    already_stored: int
    stored: int
    absent: dict[str, int]
    not_fetched: dict[str, int]
    not_stored: dict[str, int]
    unread: int

    @classmethod
    def from_stats(cls, stats: dict[str, Any]) -> Self:
        def count(name: str) -> int:
            return int(stats.get(stat_key("input", name), 0))

        return cls(
            count("accepted"),
            count("bad"),
            count("duplicate"),
            count("already_stored"),
            count("stored"),
            _tail_counts(stats, "input/absent"),
            _tail_counts(stats, "input/not_fetched"),
            _tail_counts(stats, "input/not_stored"),
            count("unread"),
        )

    @property
    def failed(self) -> int:
        """Accepted inputs not fetched or not stored: a resumed rerun is due."""
        return sum(self.not_fetched.values()) + sum(self.not_stored.values())


def exit_status(stats: dict[str, Any], reason: str) -> Outcome:
    """Return how a crawl with these final *stats* and finish *reason* went.

    The first reason the crawl began closing for (``FIRST_REASON``, else the
    finish reason) decides: a store failure then a Ctrl-C is a store failure.
    Then the first rule that holds.
    """
    first = stats.get(FIRST_REASON) or reason
    inputs = Inputs.from_stats(stats)
    not_written = sum(_tail_counts(stats, "storage/failed").values()) + sum(
        _tail_counts(stats, "storage/lost").values()
    )
    named = inputs.accepted + inputs.duplicate + inputs.already_stored
    rules = [
        (
            first in INTERRUPTED_REASONS,
            Outcome(INTERRUPTED, f"Interrupted: {RESUME} to fetch the rest."),
        ),
        (first in BREAKER_ADVICE, Outcome(BLOCKED, BREAKER_ADVICE.get(first, ""))),
        (
            first == STORE_FAILED,
            Outcome(
                FAILED,
                "The store could not write: see the ERROR above. Fix it, replay"
                " the dead letters (scrapy replay-dead-letters), then " + RESUME + ".",
            ),
        ),
        (
            first == "start_error",
            Outcome(FAILED, "Reading the inputs failed: see the error above."),
        ),
        (
            not named,
            Outcome(
                USAGE,
                "Every input was bad: see the warnings above."
                if inputs.bad
                else "Nothing to crawl: the arguments and the ids file name no input.",
            ),
        ),
        (
            bool(not_written),
            Outcome(
                FAILED,
                f"{not_written} fetched documents could not be stored: see the"
                " errors above and the failed-<collection>[.partial].jsonl files.",
            ),
        ),
        (
            bool(inputs.failed),
            Outcome(
                FAILED,
                f"{inputs.failed} inputs were not fetched or not stored: {RESUME}"
                " to try them again.",
            ),
        ),
        (first != "finished", Outcome(FAILED, f"The crawl closed early ({first}).")),
    ]
    absent = sum(inputs.absent.values())
    done = f"Done ({absent} absent on the site)." if absent else "Done."
    return next((outcome for holds, outcome in rules if holds), Outcome(OK, done))


def summary_lines(stats: dict[str, Any], reason: str, outcome: Outcome) -> list[str]:
    """Return the summary block's lines for these final *stats*."""
    inputs = Inputs.from_stats(stats)
    absent, not_fetched, not_stored = (
        sum(inputs.absent.values()),
        sum(inputs.not_fetched.values()),
        sum(inputs.not_stored.values()),
    )
    lines = [
        f"inputs: {inputs.accepted} accepted, {inputs.bad} bad, {inputs.duplicate} duplicate,"
        f" {inputs.already_stored} already stored",
        f"accepted {inputs.accepted} = stored {inputs.stored} + absent on the site {absent}"
        f" + not fetched {not_fetched} + not stored {not_stored}",
    ]
    for name, counts in (
        ("absent on the site", inputs.absent),
        ("not fetched", inputs.not_fetched),
        ("not stored", inputs.not_stored),
    ):
        if counts:
            lines.append(f"{name}: {_counts(counts)}")
    if inputs.unread:
        lines.append(f"not read (the crawl closed first): {inputs.unread} inputs")
    written = _tail_counts(stats, "storage/written")
    lines.append(f"written (distinct documents): {_counts(written)}")
    if dead_lettered := _tail_counts(stats, "storage/failed"):
        where = "failed-<collection>[.partial].jsonl"
        lines.append(f"dead-lettered (in {where}): {_counts(dead_lettered)}")
    if lost := _tail_counts(stats, "storage/lost"):
        lines.append(f"LOST (could not be written anywhere): {_counts(lost)}")
    if slowdowns := _tail_counts(stats, "throttle/slowdowns"):
        lines.append(f"slowdowns: {_counts(slowdowns)}")
    first = stats.get(FIRST_REASON)
    lines += [
        f"finish reason: {reason}"
        + (f" (closing began: {first})" if first and first != reason else ""),
        f"exit status: {outcome.status}",
        f"next: {outcome.explanation}",
    ]
    return lines


class CrawlSummary:
    """Logs the summary block at close and records the exit status."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.started = False
        self.reported = False
        crawler.signals.connect(self.engine_started, signal=signals.engine_started)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.closing, signal=bili_signals.crawl_closing)
        crawler.signals.connect(self.store_failed, signal=bili_signals.store_failed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def engine_started(self) -> None:
        self.started = True

    def closing(self, reason: str) -> None:
        """Remember the first reason the crawl began closing for: it decides the status."""
        if self.crawler.stats.get_value(FIRST_REASON) is None:
            self.crawler.stats.set_value(FIRST_REASON, reason)

    def store_failed(self, **kwargs: Any) -> None:
        self.closing(STORE_FAILED)

    def spider_closed(self, reason: str) -> None:
        if self.started:  # a crawl that failed to start has nothing to sum up
            self.report(reason)

    def report(self, reason: str) -> int:
        """Log the summary once, record and return the exit status."""
        stats = self.crawler.stats
        if not self.reported and (ledger := self.crawler.get_extension(InputLedger)):
            ledger.finish()
        outcome = exit_status(stats.get_stats(), reason)
        if not self.reported:
            self.reported = True
            stats.set_value(stat_key("exit_status"), outcome.status)
            lines = summary_lines(stats.get_stats(), reason, outcome)
            level = logging.INFO if outcome.status == OK else logging.WARNING
            name = self.crawler.spider.name if self.crawler.spider else "?"
            logger.log(
                level,
                "Crawl summary (%(spider)s):\n  %(lines)s",
                {"spider": name, "lines": "\n  ".join(lines)},
                extra={"spider": self.crawler.spider},
            )
        return outcome.status
