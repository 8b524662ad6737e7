"""The baseline: a plain Scrapy spider with Scrapy's default settings, outside the project.

Run as::

    python -m bench.plain_spider BASE_URL IDS_FILE RESULT_JSON [-s NAME=VALUE ...]

It fetches ``BASE_URL/x/web-interface/wbi/view/detail?aid=AID`` for each line of
the ids file and yields ``response.json()["data"]`` as a dict item; there is no
pipeline. Its settings are Scrapy's defaults (``CrawlerProcess`` with explicit
settings: nothing of bilicrawl's project is read), plus the ``BASE_SETTINGS``
below and any ``-s`` given. At the end it writes a few of its stats to
RESULT_JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import scrapy
from scrapy.crawler import CrawlerProcess

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from scrapy.http import Response

VIDEO_PATH = "/x/web-interface/wbi/view/detail"
BASE_SETTINGS = {
    "CONCURRENT_REQUESTS": 64,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 64,
    "DOWNLOAD_DELAY": 0,
}
"""The only changes to Scrapy's defaults: bilicrawl's benchmark concurrency and no delay."""
RESULT_STATS = (
    "item_scraped_count", "downloader/response_count", "downloader/request_count",
    "finish_reason", "log_count/ERROR",
)  # fmt: skip


class PlainSpider(scrapy.Spider):
    name = "plain"

    def __init__(self, base_url: str, ids_file: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")
        self.ids_file = ids_file

    async def start(self) -> AsyncIterator[scrapy.Request]:
        with Path(self.ids_file).open(encoding="utf-8") as lines:
            for line in lines:
                if aid := line.strip():
                    yield scrapy.Request(f"{self.base_url}{VIDEO_PATH}?aid={aid}")

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        yield response.json()["data"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.plain_spider", description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("ids_file")
    parser.add_argument("result")
    parser.add_argument("-s", dest="settings", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    settings: dict[str, Any] = dict(BASE_SETTINGS)
    for item in args.settings:
        name, _, value = item.partition("=")
        settings[name] = value
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(PlainSpider)
    process.crawl(crawler, base_url=args.base_url, ids_file=args.ids_file)
    process.start()
    stats = crawler.stats.get_stats()
    result = {name: stats.get(name) for name in RESULT_STATS}
    Path(args.result).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
