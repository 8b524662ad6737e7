"""End-to-end: the real ``danmaku`` spider against the fake API's danmaku."""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from typing import Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from bilicrawl.config import ConfigError
from bilicrawl.pseudonyms import Pseudonymizer
from bilicrawl.spiders.danmaku import SEG_PATHS, DanmakuSpider
from tests.fakeapi import danmaku, live, videos
from tests.helpers.store import stored_documents
from tests.utils import run_crawl

FIELDS = {"dmid", "cid", "aid", "progress_ms", "mode", "fontsize", "color", "ctime", "pool",
          "mid_hash", "content", "weight", "attr", "crawled_at"}  # fmt: skip
PSEUDONYM_KEY = "test-pseudonym-key-0123456789"
HISTORY_INDEX, HISTORY_DAY = "/x/v2/dm/history/index", "/x/v2/dm/web/history/seg.so"


def stored_danmaku(settings: dict[str, Any]) -> dict[int, dict[str, Any]]:
    documents = list(stored_documents(settings["SQLITE_PATH"], "danmaku"))
    assert max(Counter(document["dmid"] for document in documents).values(), default=1) == 1
    return {document["dmid"]: document for document in documents}


def parts(settings: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {p["cid"]: p for p in stored_documents(settings["SQLITE_PATH"], "danmaku_parts")}


def history_days(settings: dict[str, Any]) -> dict[tuple[int, str], dict[str, Any]]:
    documents = stored_documents(settings["SQLITE_PATH"], "danmaku_history_days")
    return {(document["cid"], document["date"]): document for document in documents}


def requested(fakeapi: Any) -> Counter[str]:
    """The danmaku paths the crawl asked for, each with its count."""
    return Counter(entry["path"] for entry in fakeapi.log() if "/dm/" in entry["path"])


def requested_values(fakeapi: Any, path: str, name: str) -> list[str]:
    """The query parameter *name* of every request for *path*, in order."""
    return sorted(entry["query"][name] for entry in fakeapi.log() if entry["path"] == path)


def served_segments(cid: int) -> dict[int, dict[str, Any]]:
    """Every danmaku the segments of *cid* serve (the site caps a segment at 6000)."""
    facts = danmaku.part(cid)
    return {
        row["dmid"]: row
        for n in range(1, facts["segments"] + 1)
        for row in danmaku.segment(cid, n)
    }


@pytest.fixture
def settings(crawl_settings: dict[str, Any], fakeapi: Any) -> dict[str, Any]:
    fakeapi.reset()
    return {**crawl_settings, "BILI_API_URL": fakeapi.url}


@pytest.mark.parametrize("video_endpoint", ["detail", "view"])
@deferred_f_from_coro_f
async def test_segments_store_exactly_what_the_site_serves(
    settings: dict[str, Any], video_endpoint: str
) -> None:
    small, pool = danmaku.SMALL_CID, danmaku.POOL_CID
    result = await run_crawl(
        DanmakuSpider,
        {**settings, "BILI_VIDEO_ENDPOINT": video_endpoint},
        aids=str(danmaku.POOL_AID),
        cids=f"{small},x,99999999999",
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
    return [video["aid"] for video in stored_documents(settings["SQLITE_PATH"], "videos")]


@pytest.mark.parametrize("xml_endpoint", ["list", "comment"])
@deferred_f_from_coro_f
async def test_xml_gives_the_pool_and_both_give_the_union(
    settings: dict[str, Any], fakeapi: Any, xml_endpoint: str
) -> None:
    cid = danmaku.POOL_CID
    settings = {**settings, "BILI_DANMAKU_XML_ENDPOINT": xml_endpoint,
                "BILI_COMMENT_URL": fakeapi.url}  # fmt: skip
    await run_crawl(DanmakuSpider, settings, cids=str(cid), source="xml")
    xml_paths = {entry["path"] for entry in fakeapi.log()} & {"/x/v1/dm/list.so", f"/{cid}.xml"}
    assert xml_paths == ({"/x/v1/dm/list.so"} if xml_endpoint == "list" else {f"/{cid}.xml"})
    pool = {row["dmid"]: row for row in danmaku.xml_pool(cid)}
    documents = stored_danmaku(settings)
    assert set(documents) == set(pool)
    assert all("attr" not in document for document in documents.values()), "XML has no attr"
    for dmid, row in pool.items():
        assert {k: documents[dmid][k] for k in row if k != "attr"} == {
            k: v for k, v in row.items() if k != "attr"
        }
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
    await run_crawl(
        DanmakuSpider, logged_in, cids=str(cid), source="xml", history=f"{first}..{last}"
    )
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
async def test_resumed_history_fetches_only_the_days_not_stored(
    settings: dict[str, Any], fakeapi: Any
) -> None:
    cid, aid = danmaku.POOL_CID, danmaku.POOL_AID
    dates = danmaku.history_dates(cid)
    recent, wider = dates[-3:], dates[-6:]  # the wider range starts a month earlier
    assert recent[0][:7] != wider[0][:7]
    logged_in = {**settings, "BILI_SESSDATA": "fake-login"}
    await run_crawl(
        DanmakuSpider, logged_in, cids=str(cid), source="xml", history=f"{recent[0]}..{recent[-1]}"
    )
    days = history_days(settings)
    assert set(days) == {(cid, date) for date in recent}
    for (_, date), day in days.items():
        assert day["rows"] == len(danmaku.history_pool(cid, date)) > 0
        assert {k: v for k, v in day.items() if k != "crawled_at"} == {
            "cid": cid,
            "aid": None,
            "date": date,
            "rows": day["rows"],
        }
    stored, record = stored_danmaku(settings), parts(settings)[cid]

    # The same range again, the part named by cid and by its video: only the index.
    fakeapi.reset()
    again = await run_crawl(
        DanmakuSpider,
        logged_in,
        cids=str(cid),
        aids=str(aid),
        source="xml",
        history=f"{recent[0]}..{recent[-1]}",
        resume="true",
    )
    assert requested(fakeapi) == {HISTORY_INDEX: 1}
    assert again.stats["bilicrawl/danmaku/history_resumed_parts"] == 1
    assert again.stats["bilicrawl/danmaku/history_days_already_stored"] == len(recent)
    assert stored_danmaku(settings) == stored
    assert history_days(settings) == days
    assert parts(settings)[cid] == record

    # A wider range, the part named by its video: only the days not fetched before.
    fakeapi.reset()
    await run_crawl(
        DanmakuSpider,
        logged_in,
        aids=str(aid),
        source="xml",
        history=f"{wider[0]}..{wider[-1]}",
        resume="true",
    )
    assert requested_values(fakeapi, HISTORY_DAY, "date") == wider[:3]
    assert requested_values(fakeapi, HISTORY_INDEX, "month") == [wider[0][:7], wider[-1][:7]]
    assert requested(fakeapi).keys() == {HISTORY_INDEX, HISTORY_DAY}
    live = {row["dmid"] for row in danmaku.xml_pool(cid)}
    history = {row["dmid"] for date in wider for row in danmaku.history_pool(cid, date)}
    assert set(stored_danmaku(settings)) == live | history
    assert parts(settings)[cid] == record, "the record of the full crawl stays"
    days_now = history_days(settings)
    assert set(days_now) == {(cid, date) for date in wider}
    assert all(days_now[cid, date]["aid"] == aid for date in wider[:3])
    assert all(days_now[cid, date] == days[cid, date] for date in recent)


@deferred_f_from_coro_f
async def test_an_interrupted_history_crawl_resumes_without_the_stored_days(
    settings: dict[str, Any], fakeapi: Any
) -> None:
    cid = danmaku.POOL_CID
    dates = danmaku.history_dates(cid)[-3:]
    logged_in = {**settings, "BILI_SESSDATA": "fake-login"}
    history = f"{dates[0]}..{dates[-1]}"
    await run_crawl(DanmakuSpider, logged_in, cids=str(cid), history=history)
    # Interrupted before the part's record and the last day's were stored.
    with closing(sqlite3.connect(settings["SQLITE_PATH"])) as db, db:
        db.execute("DELETE FROM danmaku_parts WHERE cid = ?", (cid,))
        db.execute("DELETE FROM danmaku_history_days WHERE cid = ? AND date = ?", (cid, dates[-1]))

    fakeapi.reset()
    result = await run_crawl(
        DanmakuSpider, logged_in, cids=str(cid), history=history, resume="true"
    )
    segments = danmaku.part(cid)["segments"]
    assert requested_values(fakeapi, HISTORY_DAY, "date") == [dates[-1]]
    assert requested(fakeapi)[SEG_PATHS["wbi"]] == segments, "the part is crawled again"
    assert result.stats["bilicrawl/danmaku/history_days_already_stored"] == 2
    assert "bilicrawl/danmaku/history_resumed_parts" not in result.stats
    record = parts(settings)[cid]
    assert record["segments_fetched"] == segments
    assert record["stored"]["history"] == len(danmaku.history_pool(cid, dates[-1]))
    assert set(history_days(settings)) == {(cid, date) for date in dates}


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
    documents = list(stored_documents(settings["SQLITE_PATH"], "live_danmaku"))
    keys = [(document["room_id"], document["id_str"]) for document in documents]
    assert len(keys) == len(set(keys)) == len(expected), "a re-crawl stores nothing twice"
    assert set(keys) == expected
    assert any(live.recent_danmaku(live.ADMIN_ROOM)["admin"]), "the fixture has admin danmaku"
    assert set(documents[0]) == {
        "room_id",
        "id_str",
        "uid",
        "nickname",
        "text",
        "timeline",
        "dm_type",
        "user_level",
        "medal",
        "crawled_at",
    }
    assert result.stats["bilicrawl/api_code/1"] == again.stats["bilicrawl/api_code/1"] == 1


@pytest.mark.parametrize("setting", ["BILI_DANMAKU_SEG_ENDPOINT", "BILI_DANMAKU_XML_ENDPOINT"])
@deferred_f_from_coro_f
async def test_an_unknown_endpoint_is_refused_at_the_start(
    settings: dict[str, Any], fakeapi: Any, setting: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^{setting} must be one of \(.*\), not 'wbi2'$"):
        await run_crawl(DanmakuSpider, {**settings, setting: "wbi2"}, cids=str(danmaku.SMALL_CID))
    assert not fakeapi.log()


@deferred_f_from_coro_f
async def test_random_faults_on_segments_and_pools_lose_nothing(
    crawl_settings: dict[str, Any], fakeapi_factory: Any
) -> None:
    """HTML error pages, 5xx, dropped and truncated answers where protobuf or XML is due."""
    api = fakeapi_factory(fault_rate=0.3, fault_seed=7)
    api.configure(fault_kinds=["html", "http5xx", "drop", "truncate"])
    settings = {**crawl_settings, "BILI_API_URL": api.url, "BILI_COMMENT_URL": api.url}
    cid = danmaku.POOL_CID

    result = await run_crawl(DanmakuSpider, settings, cids=str(cid), source="both")

    expected = set(served_segments(cid)) | {row["dmid"] for row in danmaku.xml_pool(cid)}
    assert not any(key.startswith("bilicrawl/parse_error") for key in result.stats)
    assert set(stored_danmaku(settings)) == expected
    record = parts(settings)[cid]
    assert record["distinct"] == len(expected)
    assert record["segments_fetched"] == record["segments_expected"]
    faults = [entry["fault"] for entry in api.log() if "/dm/" in entry["path"]]
    assert "html" in faults and len([f for f in faults if f]) >= 3, "faults were served"
