"""End-to-end: the real ``danmaku`` spider against the fake API's danmaku."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from bilicrawl.config import ConfigError
from bilicrawl.pipelines.pseudonymize import Pseudonymizer
from bilicrawl.pipelines.sqlite import iter_documents
from bilicrawl.spiders.danmaku import DanmakuSpider
from tests.fakeapi import danmaku, live, videos
from tests.utils import run_crawl

FIELDS = {"dmid", "cid", "aid", "progress_ms", "mode", "fontsize", "color", "ctime", "pool",
          "mid_hash", "content", "weight", "attr", "crawled_at"}  # fmt: skip
PSEUDONYM_KEY = "test-pseudonym-key-0123456789"


def stored_danmaku(settings: dict[str, Any]) -> dict[int, dict[str, Any]]:
    documents = list(iter_documents(settings["SQLITE_PATH"], "danmaku"))
    assert max(Counter(document["dmid"] for document in documents).values(), default=1) == 1
    return {document["dmid"]: document for document in documents}


def parts(settings: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {p["cid"]: p for p in iter_documents(settings["SQLITE_PATH"], "danmaku_parts")}


def served_segments(cid: int) -> dict[int, dict[str, Any]]:
    """Every danmaku the segments of *cid* serve (the site caps a segment at 6000)."""
    facts = danmaku.part(cid)
    return {row["dmid"]: row for n in range(1, facts["segments"] + 1)
            for row in danmaku.segment(cid, n)}  # fmt: skip


@pytest.fixture
def settings(crawl_settings: dict[str, Any], fakeapi: Any) -> dict[str, Any]:
    fakeapi.reset()
    return {**crawl_settings, "BILI_API_URL": fakeapi.url}


@deferred_f_from_coro_f
async def test_segments_store_exactly_what_the_site_serves(settings: dict[str, Any]) -> None:
    small, pool = danmaku.SMALL_CID, danmaku.POOL_CID
    result = await run_crawl(
        DanmakuSpider, settings, aids=str(danmaku.POOL_AID), cids=f"{small},x,99999999999"
    )
    expected = {**served_segments(small), **served_segments(pool)}
    documents = stored_danmaku(settings)
    assert set(documents) == set(expected)
    for dmid, document in documents.items():
        cid = document["cid"]
        # A part crawled by cid alone has no known aid: the field is left out, not null.
        assert set(document) == (FIELDS if cid == pool else FIELDS - {"aid"})
        assert document.get("aid") == (danmaku.POOL_AID if cid == pool else None)
        assert {k: document[k] for k in expected[dmid]} == expected[dmid]
    records = parts(settings)
    assert set(records) == {small, pool}
    pool_record = records[pool]
    facts = danmaku.part(pool)
    assert pool_record["segments_expected"] == facts["segments"]
    assert pool_record["segments_fetched"] == facts["segments"]
    assert pool_record["view_count"] == facts["total"]
    assert pool_record["stored"] == {"seg": len(served_segments(pool)), "xml": 0, "history": 0}
    assert pool_record["distinct"] == len(served_segments(pool))
    assert pool_record["stat_danmaku"] == videos.video_view(danmaku.POOL_AID)["stat"]["danmaku"]
    assert result.stats["bilicrawl/input/bad"] == 1
    assert result.stats["bilicrawl/unfetched/api_code_-404"] == 1
    assert set(stored_video_aids(settings)) == {danmaku.POOL_AID}


def stored_video_aids(settings: dict[str, Any]) -> list[int]:
    return [video["aid"] for video in iter_documents(settings["SQLITE_PATH"], "videos")]


@deferred_f_from_coro_f
async def test_xml_gives_the_pool_and_both_give_the_union(settings: dict[str, Any]) -> None:
    cid = danmaku.POOL_CID
    await run_crawl(DanmakuSpider, settings, cids=str(cid), source="xml")
    pool = {row["dmid"]: row for row in danmaku.xml_pool(cid)}
    documents = stored_danmaku(settings)
    assert set(documents) == set(pool)
    assert all("attr" not in document for document in documents.values()), "XML has no attr"
    assert parts(settings)[cid]["xml_maxlimit"] == danmaku.part(cid)["maxlimit"]

    await run_crawl(DanmakuSpider, settings, cids=str(cid), source="both")
    segments = served_segments(cid)
    documents = stored_danmaku(settings)
    assert set(documents) == set(segments) | set(pool)
    for dmid, row in segments.items():
        assert documents[dmid]["attr"] == row["attr"], "the segment's attr is kept"
    record = parts(settings)[cid]
    assert record["stored"] == {"seg": len(segments), "xml": len(pool), "history": 0}
    assert record["distinct"] == len(set(segments) | set(pool))


@deferred_f_from_coro_f
async def test_history_adds_the_older_danmaku(settings: dict[str, Any]) -> None:
    cid = danmaku.POOL_CID
    dates = danmaku.history_dates(cid)[-3:]  # a few days: each is a request
    first, last = dates[0], dates[-1]
    logged_in = {**settings, "BILI_SESSDATA": "fake-login"}
    await run_crawl(DanmakuSpider, logged_in, cids=str(cid), source="xml",
                    history=f"{first}..{last}")  # fmt: skip
    live = {row["dmid"] for row in danmaku.xml_pool(cid)}
    history = {row["dmid"] for date in dates for row in danmaku.history_pool(cid, date)}
    assert set(stored_danmaku(settings)) == live | history
    assert history - live, "history adds danmaku the live pool no longer holds"
    record = parts(settings)[cid]
    assert record["stored"] == {"seg": 0, "xml": len(live), "history": len(history)}
    assert record["distinct"] == len(live | history)

    with pytest.raises(ConfigError, match="BILI_SESSDATA"):
        await run_crawl(DanmakuSpider, settings, cids=str(cid), history=f"{first}..{last}")


@deferred_f_from_coro_f
async def test_closed_parts_and_resume(settings: dict[str, Any], fakeapi: Any) -> None:
    closed = danmaku.CLOSED_CID
    small = danmaku.SMALL_CID
    result = await run_crawl(DanmakuSpider, settings, cids=f"{closed},{small}")
    assert result.stats["bilicrawl/danmaku/closed"] == 1
    assert parts(settings)[closed]["closed"] is True
    assert all(document["cid"] == small for document in stored_danmaku(settings).values())
    fakeapi.reset()
    again = await run_crawl(DanmakuSpider, settings, cids=f"{closed},{small}", resume="true")
    assert again.stats["bilicrawl/input/already_stored"] == 2
    assert fakeapi.log() == [], "nothing is fetched again"


@deferred_f_from_coro_f
async def test_pseudonymised_senders(settings: dict[str, Any]) -> None:
    cid = danmaku.SMALL_CID
    private = {**settings, "BILI_PSEUDONYMIZE": True, "BILI_PSEUDONYM_KEY": PSEUDONYM_KEY}
    await run_crawl(DanmakuSpider, private, cids=str(cid))
    pseudonym = Pseudonymizer(PSEUDONYM_KEY).pseudonym
    served = served_segments(cid)
    for dmid, document in stored_danmaku(settings).items():
        assert document["mid_hash"] == format(pseudonym(served[dmid]["mid_hash"]), "x")


@deferred_f_from_coro_f
async def test_live_rooms_recent_danmaku_are_stored_once(
    crawl_settings: dict[str, Any], fakeapi: Any
) -> None:
    settings = {**crawl_settings, "BILI_API_URL": fakeapi.url, "BILI_LIVE_API_URL": fakeapi.url}
    short, long = live.SHORT_ROOM
    rooms = f"{short},lv{long},{live.ADMIN_ROOM},{live.QUIET_ROOM},999999999"
    result = await run_crawl(DanmakuSpider, settings, rooms=rooms)
    again = await run_crawl(DanmakuSpider, settings, rooms=rooms)

    expected = set()
    for room in (long, live.ADMIN_ROOM, live.QUIET_ROOM):
        recent = live.recent_danmaku(room)
        expected |= {(room, entry["id_str"]) for entry in recent["admin"] + recent["room"]}
    documents = list(iter_documents(settings["SQLITE_PATH"], "live_danmaku"))
    keys = [(document["room_id"], document["id_str"]) for document in documents]
    assert len(keys) == len(set(keys)) == len(expected), "a re-crawl stores nothing twice"
    assert set(keys) == expected
    assert any(live.recent_danmaku(live.ADMIN_ROOM)["admin"]), "the fixture has admin danmaku"
    assert set(documents[0]) == {"room_id", "id_str", "uid", "nickname", "text", "timeline",
                                 "dm_type", "user_level", "medal", "crawled_at"}  # fmt: skip
    assert result.stats["bilicrawl/api_code/1"] == again.stats["bilicrawl/api_code/1"] == 1
