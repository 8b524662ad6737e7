"""``scrapy crawl``, with one-line start-up errors and an exit status that says how it went.

Scrapy's own command exits 0 whenever the crawl started, and shows a bad
argument or setting as a traceback. This one (``COMMANDS_MODULE``) reports a
:class:`~bilicrawl.config.ConfigError` raised while the crawl starts (spider
arguments, settings, the store) as one line on stderr, checks Scrapy's own
typed settings first (:func:`check_scrapy_settings`: ``-s
CONCURRENT_REQUESTS=abc`` would be a traceback deep in the engine), and exits
with the status the end-of-crawl summary decided (``bilicrawl.extensions.summary``;
the statuses are listed in the README), saying on stderr too when no input
named anything to crawl.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING, Any

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError
from scrapy.settings import default_settings
from twisted.internet.defer import Deferred, FirstError
from twisted.python.failure import Failure

from bilicrawl.config import ConfigError, get_float
from bilicrawl.extensions.summary import FAILED, FORCED_SHUTDOWN, USAGE, CrawlSummary
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    import argparse

    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)


def config_error(error: BaseException | None) -> ConfigError | None:
    """Return the ConfigError behind *error*, unwrapping Twisted's FirstError."""
    while error is not None:
        if isinstance(error, ConfigError):
            return error
        if isinstance(error, FirstError):
            error = error.subFailure.value
        elif isinstance(error, Failure):
            error = error.value
        else:
            error = error.__cause__
    return None


def check_scrapy_settings(settings: BaseSettings) -> None:
    """Raise ConfigError for a Scrapy setting given as text that its type refuses.

    The type is that of Scrapy's default: a boolean must be one Scrapy reads, a
    number any number (an integer default may take a float, ``DOWNLOAD_DELAY``).
    """
    for name in dir(default_settings):
        default = getattr(default_settings, name)
        if not name.isupper() or type(default) not in (bool, int, float):
            continue
        value = settings.get(name)
        if not isinstance(value, str):
            continue
        if isinstance(default, bool):
            try:
                settings.getbool(name)
            except ValueError:
                raise ConfigError(f"{name} must be true or false, not {value!r}") from None
        else:
            get_float(settings, name)


class Command(ScrapyCrawlCommand):
    def short_desc(self) -> str:
        return "Run a spider of the current project; the exit status says how it went"

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give exactly one spider name" if args else None)
        process, settings = self.crawler_process, self.settings
        if process is None or settings is None:
            raise RuntimeError("scrapy crawl runs with a crawler process and settings")
        try:
            check_scrapy_settings(settings)
        except ConfigError as error:
            self._fail(USAGE, str(error))
            return
        try:
            crawler = self._create_crawler(args[0])
        except KeyError:
            names = ", ".join(sorted(process.spider_loader.list()))
            self._fail(USAGE, f"unknown spider {args[0]!r}; the spiders are: {names}")
            return
        started = process.crawl(crawler, **opts.spargs)
        if isinstance(started, Deferred):
            started.addErrback(self._start_failed)
        else:  # AsyncCrawlerProcess: a task
            asyncio.ensure_future(started).add_done_callback(self._task_done)
        process.start()
        if self.exitcode == 0:
            self.exitcode = self._crawl_status(crawler)
            if self.exitcode == USAGE:
                sys.stderr.write(
                    "scrapy crawl: error: no input names anything to crawl"
                    " (see the crawl summary)\n"
                )

    def _crawl_status(self, crawler: Crawler) -> int:
        status = crawler.stats.get_value(stat_key("exit_status"))
        if status is not None:
            return int(status)
        summary = crawler.get_extension(CrawlSummary)
        if crawler.stats.get_value("finish_reason") is None and summary is not None:
            # The spider never closed: a second Ctrl-C stopped the reactor.
            return summary.report(FORCED_SHUTDOWN)
        return FAILED if self.crawler_process and self.crawler_process.bootstrap_failed else 0

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        exception = None if task.cancelled() else task.exception()
        if exception is not None and self._start_failed(Failure(exception)) is not None:
            # Retrieving the exception silenced asyncio's report of it: log it instead.
            logger.error("The crawl could not start", exc_info=exception)

    def _start_failed(self, failure: Failure) -> Failure | None:
        """Report a ConfigError in one line and swallow it; pass anything else on."""
        error = config_error(failure.value)
        if error is None:
            self.exitcode = FAILED
            return failure
        self._fail(USAGE, str(error))
        return None

    def _fail(self, status: int, message: str) -> None:
        self.exitcode = status
        sys.stderr.write(f"scrapy crawl: error: {message}\n")
