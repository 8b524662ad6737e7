"""Dead-letter files written by the real storage pipeline, and the items to fill them.

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

from bilicrawl.items import (
    DanmakuBatchItem,
    DanmakuPartItem,
    DanmakuStored,
    Official,
    OfficialVerify,
    Owner,
    UserItem,
    UserStubItem,
    VideoItem,
    VideoPage,
    VideoStat,
    Vip,
)
from bilicrawl.pipelines.store import StorePipeline
from tests.fakeapi.process import PROJECT_ROOT

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bilicrawl.store.documents import Upsert

CRAWLED_AT = 1_767_225_600


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


def make_video(aid: int, title: str) -> VideoItem:
    return VideoItem(
        aid=aid,
        bvid="BV1hVcGeUEhW",
        title=title,
        desc="演示视频\n👍",
        pic="https://i0.hdslb.com/bfs/archive/1f0c2b7d3a.jpg",
        owner=Owner(mid=3_493_118_494_116_797, name="原神", face="https://i2.hdslb.com/f.jpg"),
        pubdate=1_735_660_800,
        ctime=1_735_657_200,
        duration=754,
        tid=172,
        tname="手机游戏",
        copyright=1,
        stat=VideoStat(
            view=4_294_967_296_123,
            danmaku=2_147_483_648,
            reply=98_765,
            favorite=1_234_567,
            coin=3_456_789,
            share=45_678,
            like=9_876_543,
        ),
        pages=[VideoPage(cid=27_123_456_789, page=1, part="正片 🎬", duration=754)],
        crawled_at=CRAWLED_AT,
    )


def make_user(mid: int) -> UserItem:
    """A full profile, as a ``user`` crawl stores it."""
    return UserItem(
        mid=mid,
        name="碧诗",
        sex="男",
        face="https://i2.hdslb.com/bfs/face/old.jpg",
        sign="直男过气网红",
        level=6,
        birthday="09-19",
        silence=0,
        is_senior_member=0,
        official=Official(role=2, title="bilibili创始人（站长）", desc="", type=0),
        vip=Vip(type=2, status=1, label="十年大会员"),
        live_room=None,
        follower=969_999,
        following=234,
        archive_count=37,
        article_count=0,
        likes=3_547_978,
        archive_view=213_567_370,
        article_view=None,
        crawled_at=CRAWLED_AT,
    )


def make_stub(mid: int) -> UserStubItem:
    """What a follower list says about a user: merged into the stored profile."""
    return UserStubItem(
        mid=mid,
        name="碧诗 🎉",
        face="https://i2.hdslb.com/bfs/face/new.jpg",
        sign="新签名 ✨",
        official=OfficialVerify(type=1, desc="bilibili 知名UP主"),
        vip=Vip(type=1, status=0, label=""),
    )


def danmaku_row(dmid: int) -> dict[str, Any]:
    return {
        "dmid": dmid,
        "progress_ms": 1235 + dmid,
        "mode": 1,
        "fontsize": 25,
        "color": 16777215,
        "ctime": 1700000000,
        "pool": 0,
        "mid_hash": "bc28c067",
        "content": f"弹幕 {dmid} 🎉",
        "weight": 3,
    }


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
