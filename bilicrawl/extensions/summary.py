"""The end of a crawl in plain words, and the exit status it deserves.

At ``spider_closed`` (after the storage pipelines wrote their last batch) one
block is logged: inputs accepted, bad, duplicate and already stored; documents
stored per collection; requests not fetched and why; documents dead-lettered or
lost; the finish reason; and what to do next. Its exit status is put in the
``bilicrawl/exit_status`` stat, which bilicrawl's ``scrapy crawl`` exits with.
The statuses are documented in the README; :func:`exit_status` decides them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from scrapy import signals

from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

OK = 0
FAILED = 1
"""Nothing stored though inputs were accepted, a start error, or documents not stored."""
USAGE = 2
"""A bad argument or setting: the crawl did not start (set by the crawl command)."""
BLOCKED = 3
"""A circuit breaker closed the crawl: Bilibili blocked it, or the host went away."""
INTERRUPTED = 130
"""Ctrl-C or SIGTERM, the shell's status for an interrupted program."""

FORCED_SHUTDOWN = "forced_shutdown"
"""Finish reason of a crawl whose spider never closed (a second Ctrl-C)."""

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


class Outcome(NamedTuple):
    """An exit status and the sentence that explains it."""

    status: int
    explanation: str


def _tail_counts(stats: dict[str, Any], prefix: str) -> dict[str, int]:
    """Return ``{tail: value}`` of the integer stats under ``bilicrawl/<prefix>/``."""
    base = stat_key(prefix) + "/"
    return {
        key[len(base) :]: value
        for key, value in sorted(stats.items())
        if key.startswith(base) and isinstance(value, int)
    }


def exit_status(stats: dict[str, Any], reason: str) -> Outcome:
    """Return how a crawl with these final *stats* and finish *reason* went.

    The first rule that holds decides, so an interrupted or blocked crawl says
    so even when it also stored nothing.
    """
    not_written = sum(_tail_counts(stats, "storage/failed").values()) + sum(
        _tail_counts(stats, "storage/lost").values()
    )
    accepted = stats.get(stat_key("input", "accepted"), 0)
    stored = sum(_tail_counts(stats, "storage/upserted").values())
    unfetched = _tail_counts(stats, "unfetched")
    resume = "rerun the same command with -a resume=true"
    rules = [
        (reason in INTERRUPTED_REASONS,
         Outcome(INTERRUPTED, f"Interrupted: {resume} to fetch the rest.")),
        (reason in BREAKER_ADVICE, Outcome(BLOCKED, BREAKER_ADVICE.get(reason, ""))),
        (bool(not_written),
         Outcome(FAILED, f"{not_written} fetched documents could not be stored: see the"
                         " errors above and the failed-<collection>[.partial].jsonl files.")),
        (reason == "start_error",
         Outcome(FAILED, "Reading the inputs failed: see the error above.")),
        (bool(accepted) and not stored,
         Outcome(FAILED, "Inputs were accepted but nothing was stored: see the first"
                         " errors above.")),
        (reason != "finished", Outcome(FAILED, f"The crawl closed early ({reason}).")),
        (bool(unfetched.get("network") or unfetched.get("gave_up")),
         Outcome(OK, f"Some requests failed after every retry: {resume} to try them"
                     " again.")),
    ]
    return next((outcome for holds, outcome in rules if holds), Outcome(OK, "Done."))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items()) or "none"


def summary_lines(stats: dict[str, Any], reason: str, outcome: Outcome) -> list[str]:
    """Return the summary block's lines for these final *stats*."""

    def count(*parts: str) -> int:
        return int(stats.get(stat_key(*parts), 0))

    unfetched = _tail_counts(stats, "unfetched")
    dead_lettered = _tail_counts(stats, "storage/failed")
    lost = _tail_counts(stats, "storage/lost")
    lines = [
        f"inputs: {count('input', 'accepted')} accepted, {count('input', 'bad')} bad,"
        f" {count('input', 'duplicate')} duplicate,"
        f" {count('input', 'already_stored')} already stored",
        f"stored: {_counts(_tail_counts(stats, 'storage/upserted'))}",
        f"not fetched: {sum(unfetched.values())}"
        + (f" ({_counts(unfetched)})" if unfetched else ""),
    ]
    if dead_lettered:
        where = "failed-<collection>[.partial].jsonl"
        lines.append(f"dead-lettered (in {where}): {_counts(dead_lettered)}")
    if lost:
        lines.append(f"LOST (could not be written anywhere): {_counts(lost)}")
    lines += [
        f"finish reason: {reason}",
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

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def engine_started(self) -> None:
        self.started = True

    def spider_closed(self, reason: str) -> None:
        if self.started:  # a crawl that failed to start has nothing to sum up
            self.report(reason)

    def report(self, reason: str) -> int:
        """Log the summary once, record and return the exit status."""
        stats = self.crawler.stats
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
