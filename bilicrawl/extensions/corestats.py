"""Scrapy's CoreStats, minus its error when a crawl closes without having opened.

When an item pipeline's ``open_spider`` fails (an unreachable MongoDB, a file
that is not a SQLite database), Scrapy 2.19 closes the spider without ever
sending ``spider_opened``, and ``CoreStats.spider_closed`` then fails an
assertion: a second error, with a traceback, after the one clear line that
explains the failure. This subclass only records the finish reason then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.extensions import corestats

if TYPE_CHECKING:
    from scrapy import Spider


class CoreStats(corestats.CoreStats):
    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.start_time is None:  # the spider never opened
            self.stats.set_value("finish_reason", reason)
            return
        super().spider_closed(spider, reason)
