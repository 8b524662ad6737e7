"""Items as a crawl yields them, and the crawler a pipeline is built from in unit tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import scrapy
from scrapy.utils.test import get_crawler

from bilicrawl.items import (
    LiveRoom,
    Official,
    OfficialVerify,
    Owner,
    StaffMember,
    UserItem,
    UserStubItem,
    VideoItem,
    VideoPage,
    VideoStat,
    VideoTag,
    Vip,
)

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from bilicrawl.store.documents import Document

CRAWLED_AT = 1_767_225_600
"""The crawl time of the users made here."""


class PipelineTestSpider(scrapy.Spider):
    name = "pipeline_test"


def build_crawler(settings: dict[str, Any] | None = None) -> Crawler:
    """Return a crawler with its spider created and its stats opened, as during a crawl."""
    crawler = get_crawler(PipelineTestSpider, settings)
    crawler.spider = crawler._create_spider()
    crawler.stats.open_spider()
    return crawler


def make_video(aid: int = 113_784_589_289_472, **overrides: Any) -> VideoItem:
    """Return a realistic video: a recent aid above 2**31, CJK and emoji text, big counters."""
    fields: dict[str, Any] = {
        "aid": aid,
        "bvid": "BV1hVcGeUEhW",
        "title": "【4K·HDR】原神「荣花与炎日之途」纳塔 PV 🎉🔥",
        "desc": "演示视频\n—— 欢迎三连 ٩(◕‿◕)۶ 👍",
        "pic": "https://i0.hdslb.com/bfs/archive/1f0c2b7d3a.jpg",
        "owner": Owner(
            mid=3_493_118_494_116_797,
            name="原神",
            face="https://i2.hdslb.com/bfs/face/9b1f3c.jpg",
        ),
        "pubdate": 1_735_660_800,
        "ctime": 1_735_657_200,
        "duration": 754,
        "tid": 172,
        "tname": "手机游戏",
        "copyright": 1,
        "stat": VideoStat(
            view=4_294_967_296_123,
            danmaku=2_147_483_648,
            reply=98_765,
            favorite=1_234_567,
            coin=3_456_789,
            share=45_678,
            like=9_876_543,
        ),
        "pages": [
            VideoPage(cid=27_123_456_789, page=1, part="正片 🎬", duration=700),
            VideoPage(cid=27_123_456_790, page=2, part="彩蛋", duration=54),
        ],
        "crawled_at": 1_767_225_600,
        "videos": 2,
        "tid_v2": 2_061,
        "tname_v2": "游戏",
        "state": 0,
        "staff": [StaffMember(mid=3_493_118_494_116_797, title="UP主", name="原神")],
        "tags": [VideoTag(tag_id=2_511_282, tag_name="原神", tag_type="old_channel")],
    }
    fields.update(overrides)
    return VideoItem(**fields)


def make_user(mid: int = 2, **overrides: Any) -> UserItem:
    """Return a full profile, as a ``user`` crawl stores it."""
    fields: dict[str, Any] = {
        "mid": mid,
        "name": "碧诗",
        "sex": "男",
        "face": "https://i2.hdslb.com/bfs/face/ef0457addb24141e.jpg",
        "sign": "https://kami.im 直男过气网红 #  We Are Star Dust",
        "level": 6,
        "birthday": "09-19",
        "silence": 0,
        "is_senior_member": 0,
        "official": Official(role=2, title="bilibili创始人（站长）", desc="", type=0),
        "vip": Vip(type=2, status=1, label="十年大会员"),
        "live_room": LiveRoom(
            room_id=1024,
            live_status=0,
            title="试图恰鸡",
            url="https://live.bilibili.com/1024",
            cover="http://i0.hdslb.com/bfs/live/new_room_cover/96ee5bfd.jpg",
        ),
        "follower": 969_999,
        "following": 234,
        "archive_count": 37,
        "article_count": 0,
        "likes": 3_547_978,
        "archive_view": 213_567_370,
        "article_view": None,
        "crawled_at": CRAWLED_AT,
    }
    fields.update(overrides)
    return UserItem(**fields)


def make_stub(mid: int = 2, **overrides: Any) -> UserStubItem:
    """Return what a follower list says about a user, different from ``make_user``."""
    fields: dict[str, Any] = {
        "mid": mid,
        "name": "碧诗 🎉",
        "face": "https://i2.hdslb.com/bfs/face/new-avatar.jpg",
        "sign": "新签名 ✨",
        "official": OfficialVerify(type=1, desc="bilibili 知名UP主"),
        "vip": Vip(type=1, status=0, label=""),
    }
    fields.update(overrides)
    return UserStubItem(**fields)


def with_stub(profile: Document, stub: UserStubItem) -> Document:
    """Return the profile as a stub updates it, spelt out field by field."""
    return {
        **profile,
        "name": stub.name,
        "face": stub.face,
        "sign": stub.sign,
        "official": {
            "role": profile["official"]["role"],
            "title": profile["official"]["title"],
            "desc": stub.official.desc,
            "type": stub.official.type,
        },
        "vip": {"type": stub.vip.type, "status": stub.vip.status, "label": stub.vip.label},
    }


def danmaku_row(dmid: int, **fields: Any) -> dict[str, Any]:
    return {
        "dmid": dmid,
        "progress_ms": 1235,
        "mode": 1,
        "fontsize": 25,
        "color": 16777215,
        "ctime": 1700000000,
        "pool": 0,
        "mid_hash": "bc28c067",
        "content": "弹幕 🎉",
        **fields,
    }
