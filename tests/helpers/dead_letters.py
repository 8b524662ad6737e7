"""Dead-letter files written by the real storage pipeline, and the danmaku to fill them.

:func:`store_items` runs a whole crawl's worth of pipeline calls with the
store refusing the collections named: their batches are dead-lettered as a
crawl whose store failed leaves them. The items are small but real (CJK and
emoji text, ids above 2**32, nested objects to merge).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import scrapy
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from bilicrawl.items import DanmakuBatchItem, DanmakuPartItem, DanmakuStored
from bilicrawl.pipelines.store import StorePipeline
from tests.fakeapi.process import PROJECT_ROOT
from tests.helpers.items import CRAWLED_AT, danmaku_row

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bilicrawl.store.documents import Upsert


class _Spider(scrapy.Spider):
    name = "dead_letters"


async def store_items(
    settings: dict[str, Any], items: Iterable[Any], *, refused: Iterable[str] = ()
) -> None:
    """Store *items* through the storage pipeline, its store refusing the *refused* collections.

    No retries: a refused batch is dead-lettered at once.
    """
    refusing = frozenset(refused)
    crawler = get_crawler(_Spider, {**settings, "BILI_STORE_RETRY_DELAYS": []})
    crawler.spider = crawler._create_spider()
    crawler.stats.open_spider()
    pipeline = build_from_crawler(StorePipeline, crawler)
    write = pipeline.store.write

    def refusing_write(collection: str, upserts: list[Upsert]) -> None:
        if collection in refusing:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(collection, upserts)

    pipeline.store.write = refusing_write
    await pipeline.open_spider()
    for item in items:
        await pipeline.process_item(item)
    await pipeline.close_spider()


def replay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``scrapy replay-dead-letters ARGS`` in the project, its store named in *env*."""
    # A store named in the developer's environment would take precedence over *env*'s.
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"BILI_STORE_URI", "MONGO_URI"}
    }
    command = [sys.executable, "-m", "scrapy", "replay-dead-letters", *args]
    return subprocess.run(  # noqa: S603
        command,
        cwd=PROJECT_ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def make_danmaku(cid: int, dmids: Iterable[int]) -> DanmakuBatchItem:
    return DanmakuBatchItem(
        cid=cid,
        aid=2,
        source="seg",
        crawled_at=CRAWLED_AT,
        rows=[danmaku_row(dmid) for dmid in dmids],
    )


def make_part(cid: int, distinct: int) -> DanmakuPartItem:
    """The record of a part whose *distinct* danmaku were all stored."""
    return DanmakuPartItem(
        cid=cid,
        aid=2,
        duration=754,
        stat_danmaku=None,
        view_count=distinct,
        xml_maxlimit=None,
        closed=False,
        segments_expected=1,
        segments_fetched=1,
        stored=DanmakuStored(seg=distinct, xml=0, history=0),
        distinct=distinct,
        crawled_at=CRAWLED_AT,
    )
