"""Tests of the fake API's danmaku area: segments, view, XML pool, history, unknown cids.

The protobuf bodies are decoded with the project's ``dm_pb2`` and compared
with what ``tests.fakeapi.danmaku`` says the part holds; the lazy pools
(XML, history) are also checked against a brute-force reading of every
danmaku of the smaller named parts.
"""

from __future__ import annotations

import calendar
import json
import re
import time
import urllib.parse
import xml.etree.ElementTree as ET
import zlib
from typing import Any

import pytest

from bilicrawl.proto import dm_pb2
from tests.fakeapi import danmaku as dm
from tests.fakeapi.data import LATEST
from tests.fakeapi.process import FakeApi
from tests.fakeapi.videos import video_view
from tests.helpers.fakeapi_client import BUVID, LOGGED_IN, fetch, signed

SEG = "/x/v2/dm/web/seg.so"
WBI_SEG = "/x/v2/dm/wbi/web/seg.so"
VIEW = "/x/v2/dm/web/view"
LIST = "/x/v1/dm/list.so"
HISTORY_INDEX = "/x/v2/dm/history/index"
HISTORY_SEG = "/x/v2/dm/web/history/seg.so"
NOT_FOUND = {"code": -404, "message": "啥都木有", "ttl": 1}
NOT_LOGGED_IN = {"code": -101, "message": "账号未登录", "ttl": 1}
FIELDS = ("dmid", "progress_ms", "mode", "fontsize", "color", "ctime", "pool", "mid_hash",
          "content", "weight", "attr")  # fmt: skip
BEIJING = 8 * 3600


# --- helpers --------------------------------------------------------------------------------


def call(
    api: FakeApi,
    path: str,
    cookies: str = "",
    headers: dict[str, str] | None = None,
    **params: Any,
) -> tuple[int, dict[str, str], bytes]:
    query = urllib.parse.urlencode(params)
    return fetch(f"{api.url}{path}?{query}", headers=headers, cookies=cookies)


def seg(api: FakeApi, cid: int, n: int, **params: Any) -> bytes:
    status, headers, body = call(api, SEG, type=1, oid=cid, segment_index=n, **params)
    assert status == 200
    assert headers["Content-Type"] == "application/octet-stream"
    return body


def rows(body: bytes) -> list[dict[str, Any]]:
    """The danmaku of a ``DmSegMobileReply`` body, as stored-document fields."""
    reply = dm_pb2.DmSegMobileReply.FromString(body)
    assert reply.state == 0
    decoded = []
    for elem in reply.elems:
        assert elem.idStr == str(elem.id)
        decoded.append(
            {
                "dmid": elem.id,
                "progress_ms": elem.progress,
                "mode": elem.mode,
                "fontsize": elem.fontsize,
                "color": elem.color,
                "ctime": elem.ctime,
                "pool": elem.pool,
                "mid_hash": elem.midHash,
                "content": elem.content,
                "weight": elem.weight,
                "attr": elem.attr,
            }
        )
    return decoded


def envelope(body: bytes) -> dict[str, Any]:
    return json.loads(body)


def beijing_date(moment: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(moment + BEIJING))


def by_dmid(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda row: row["dmid"])


def find_aid(accept: Any, start: int = 5000) -> int:
    """The first single-part aid from *start* whose part satisfies *accept* (a part dict)."""
    for aid in range(start, start + 5000):
        if len(video_view(aid)["pages"]) == 1:
            (cid,) = dm.register(aid)
            if accept(dm.part(cid)):
                return aid
    raise AssertionError("no such aid")


# --- the generated data ---------------------------------------------------------------------


def test_named_examples_fit_their_descriptions() -> None:
    named = {
        "SMALL": (dm.SMALL_AID, dm.SMALL_CID),
        "POOL": (dm.POOL_AID, dm.POOL_CID),
        "CLOSED": (dm.CLOSED_AID, dm.CLOSED_CID),
        "EIGHT_FIELD": (dm.EIGHT_FIELD_AID, dm.EIGHT_FIELD_CID),
        "CAPPED": (dm.CAPPED_AID, dm.CAPPED_CID),
        "MILLION": (dm.MILLION_AID, dm.MILLION_CID),
    }
    for name, (aid, cid) in named.items():
        assert cid in [page["cid"] for page in video_view(aid)["pages"]], name
        assert dm.part(cid)["aid"] == aid, name
    small, pool = dm.part(dm.SMALL_CID), dm.part(dm.POOL_CID)
    assert 100 <= small["total"] < 1000
    assert small["total"] < small["maxlimit"]
    assert small["segments"] >= 2
    assert pool["maxlimit"] < pool["total"] < 10_000
    assert pool["segments"] >= 2
    assert dm.part(dm.CLOSED_CID)["closed"]
    assert dm.part(dm.EIGHT_FIELD_CID)["eight_fields"]
    assert not small["eight_fields"]
    capped = dm.part(dm.CAPPED_CID)
    assert len(list(dm._segment_rows(dm._known(dm.CAPPED_CID), 0))) > dm.SEGMENT_CAP
    assert capped["total"] > dm.SEGMENT_CAP
    million = dm.part(dm.MILLION_CID)
    assert million["total"] > 1_000_000
    assert million["segments"] == million["duration"] // 360 == 170
    assert million["maxlimit"] == 8000


def test_rows_are_well_formed_and_varied() -> None:
    every = list(dm.danmaku(dm.SMALL_CID)) + list(dm.danmaku(dm.POOL_CID))
    for cid in (dm.SMALL_CID, dm.POOL_CID):
        facts = dm.part(cid)
        items = list(dm.danmaku(cid))
        assert len(items) == facts["total"]
        for row in items:
            assert tuple(row) == FIELDS
            assert 0 <= row["progress_ms"] < facts["duration"] * 1000
            assert facts["pubdate"] <= row["ctime"] < LATEST
        ordered = by_dmid(items)
        assert [row["ctime"] for row in ordered] == sorted(row["ctime"] for row in items)
    assert len({row["dmid"] for row in every}) == len(every)
    for row in every:
        assert row["mode"] in {1, 4, 5, 6, 7, 8}
        assert (row["pool"] == 2) == (row["mode"] == 8)
        assert row["pool"] in {0, 1, 2}
        assert row["fontsize"] in {18, 25, 36}
        assert 0 <= row["color"] < 1 << 24
        assert re.fullmatch(r"[1-9a-f][0-9a-f]{0,7}", row["mid_hash"])
        assert 0 <= row["weight"] <= 10
        assert 0 <= row["attr"] <= 7
        assert row["content"]
        assert 0 < row["dmid"] < 1 << 63
    share = {
        key: sum(check(row) for row in every) / len(every)
        for key, check in {
            "mode1": lambda row: row["mode"] == 1,
            "size25": lambda row: row["fontsize"] == 25,
            "white": lambda row: row["color"] == 16777215,
            "pool0": lambda row: row["pool"] == 0,
            "attr0": lambda row: row["attr"] == 0,
        }.items()
    }
    assert all(value > 0.75 for value in share.values()), share
    assert {row["mode"] for row in every} == {1, 4, 5, 6, 7, 8}
    assert {row["fontsize"] for row in every} == {18, 25, 36}
    assert {row["pool"] for row in every} == {0, 1, 2}
    contents = "".join(row["content"] for row in every)
    assert all(char in contents for char in "&<>\"'")
    assert re.search(r"[\u4e00-\u9fff]", contents)
    assert re.search(r"[\U0001F300-\U0001FAFF]", contents)
    assert re.search(r"[A-Za-z]", contents)


def test_dmids_are_unique_across_parts() -> None:
    seen: set[int] = set()
    for cid in (dm.SMALL_CID, dm.POOL_CID, dm.EIGHT_FIELD_CID, dm.CAPPED_CID):
        dmids = {row["dmid"] for row in dm.danmaku(cid)}
        assert not dmids & seen
        seen |= dmids
    million = dm.segment(dm.MILLION_CID, 1)
    assert not {row["dmid"] for row in million} & seen


def test_pools_are_the_most_recent_danmaku() -> None:
    for cid in (dm.SMALL_CID, dm.POOL_CID):
        facts = dm.part(cid)
        everything = by_dmid(list(dm.danmaku(cid)))
        assert by_dmid(dm.xml_pool(cid)) == everything[-facts["maxlimit"] :]
        days = sorted({beijing_date(row["ctime"]) for row in everything})
        assert dm.history_dates(cid) == days
        month = days[len(days) // 2][:7]
        assert dm.history_dates(cid, month) == [day for day in days if day.startswith(month)]
        for date in (days[0], days[len(days) // 3], days[-1], "2009-01-01"):
            end = calendar.timegm(time.strptime(date, "%Y-%m-%d")) - BEIJING + 86400
            before = [row for row in everything if row["ctime"] < end]
            assert by_dmid(dm.history_pool(cid, date)) == before[-facts["maxlimit"] :]
    pool = dm.part(dm.POOL_CID)
    assert len(dm.xml_pool(dm.POOL_CID)) == pool["maxlimit"]
    assert len(dm.xml_pool(dm.SMALL_CID)) == dm.part(dm.SMALL_CID)["total"]


def test_the_million_part_is_lazy() -> None:
    started = time.monotonic()
    first = dm.segment(dm.MILLION_CID, 1)
    last = dm.segment(dm.MILLION_CID, 170)
    pool = dm.xml_pool(dm.MILLION_CID)
    assert time.monotonic() - started < 3
    assert 5000 < len(first) <= dm.SEGMENT_CAP
    assert 5000 < len(last) <= dm.SEGMENT_CAP
    assert all(169 * dm.SEGMENT_MS <= row["progress_ms"] < 170 * dm.SEGMENT_MS for row in last)
    assert len(pool) == 8000
    assert max(row["ctime"] for row in first) <= max(row["ctime"] for row in pool)


# --- the endpoints --------------------------------------------------------------------------


@pytest.mark.parametrize("cid", [dm.SMALL_CID, dm.POOL_CID])
def test_segments_add_up_to_every_danmaku(api: FakeApi, cid: int) -> None:
    served = []
    for n in range(1, dm.part(cid)["segments"] + 1):
        answered = rows(seg(api, cid, n))
        assert answered == dm.segment(cid, n)
        low, high = (n - 1) * dm.SEGMENT_MS, n * dm.SEGMENT_MS
        assert all(low <= row["progress_ms"] < high for row in answered)
        served += answered
    assert by_dmid(served) == by_dmid(list(dm.danmaku(cid)))
    assert seg(api, cid, dm.part(cid)["segments"] + 1) == b""


def test_empty_closed_and_capped_segments(api: FakeApi) -> None:
    silent = find_aid(lambda part: part["total"] == 0 and not part["closed"])
    (silent_cid,) = dm.register(silent)
    # pid names the video: the server learns its parts from it.
    assert seg(api, silent_cid, 1, pid=silent) == b""
    for n in (1, 2, 99):
        assert seg(api, dm.CLOSED_CID, n) == dm.CLOSED_BODY
    assert dm_pb2.DmSegMobileReply.FromString(dm.CLOSED_BODY).state == 1
    capped = rows(seg(api, dm.CAPPED_CID, 1))
    assert capped == dm.segment(dm.CAPPED_CID, 1)
    assert len(capped) == dm.SEGMENT_CAP
    everything = dm._segment_rows(dm._known(dm.CAPPED_CID), 0)
    kept = {row["dmid"] for row in capped}
    dropped = [row for row in everything if row["dmid"] not in kept]
    assert min((row["weight"], row["dmid"]) for row in capped) > max(
        (row["weight"], row["dmid"]) for row in dropped
    )


def test_the_wbi_path_needs_a_signature(api: FakeApi) -> None:
    params = {"type": "1", "oid": str(dm.SMALL_CID), "segment_index": "1"}
    _, _, unsigned = call(api, WBI_SEG, cookies=BUVID, **params)
    assert envelope(unsigned)["code"] == -352
    status, _, body = fetch(f"{api.url}{WBI_SEG}?{signed(api, params)}", cookies=BUVID)
    assert status == 200
    assert rows(body) == dm.segment(dm.SMALL_CID, 1)
    assert seg(api, dm.SMALL_CID, 1) == body  # the plain path needs nothing


def test_view(api: FakeApi) -> None:
    _, headers, body = call(api, VIEW, type=1, oid=dm.POOL_CID, pid=dm.POOL_AID)
    assert headers["Content-Type"] == "application/octet-stream"
    view = dm_pb2.DmWebViewReply.FromString(body)
    pool = dm.part(dm.POOL_CID)
    assert view.state == 0
    assert view.dm_sge.page_size == dm.SEGMENT_MS
    assert view.dm_sge.total == pool["segments"] == -(-pool["duration"] // 360)
    assert view.count == pool["total"]
    assert not view.HasField("player_config")
    _, _, body = call(api, VIEW, cookies=LOGGED_IN, type=1, oid=dm.POOL_CID)
    assert dm_pb2.DmWebViewReply.FromString(body).player_config.dm_switch
    closed = dm_pb2.DmWebViewReply.FromString(call(api, VIEW, type=1, oid=dm.CLOSED_CID)[2])
    assert closed.state == 1
    million = dm_pb2.DmWebViewReply.FromString(call(api, VIEW, type=1, oid=dm.MILLION_CID)[2])
    assert million.dm_sge.total == 170
    assert million.count > 1_000_000


def xml_rows(body: bytes) -> tuple[ET.Element, list[ET.Element]]:
    xml = zlib.decompress(body, -zlib.MAX_WBITS)
    document = ET.fromstring(xml)  # noqa: S314 (our own fake server's XML)
    return document, document.findall("d")


@pytest.mark.parametrize("accept", [None, "gzip", "gzip, deflate, br"])
def test_xml_is_always_raw_deflate(api: FakeApi, accept: str | None) -> None:
    headers = {"Accept-Encoding": accept} if accept else None
    for path, params in ((LIST, {"oid": dm.SMALL_CID}), (f"/{dm.SMALL_CID}.xml", {})):
        status, answered, body = call(api, path, headers=headers, **params)
        assert status == 200
        assert answered["Content-Encoding"] == "deflate"
        with pytest.raises(zlib.error):
            zlib.decompress(body)  # no zlib header: raw deflate
        assert zlib.decompress(body, -zlib.MAX_WBITS).startswith(
            b'<?xml version="1.0" encoding="UTF-8"?><i><chatserver>'
        )


@pytest.mark.parametrize("cid", [dm.POOL_CID, dm.EIGHT_FIELD_CID])
def test_xml_holds_the_pool(api: FakeApi, cid: int) -> None:
    facts = dm.part(cid)
    document, elements = xml_rows(call(api, LIST, oid=cid)[2])
    assert [child.tag for child in document][:7] == [
        "chatserver",
        "chatid",
        "mission",
        "maxlimit",
        "state",
        "real_name",
        "source",
    ]
    assert document.findtext("chatid") == str(cid)
    assert document.findtext("maxlimit") == str(facts["maxlimit"])
    assert document.findtext("state") == "0"
    assert document.findtext("source") == "k-v"
    pool = dm.xml_pool(cid)
    assert len(elements) == len(pool) == min(facts["total"], facts["maxlimit"])
    for element, row in zip(elements, pool, strict=True):
        seconds = f"{row['progress_ms'] / 1000:.5f}"
        expected = [seconds, row["mode"], row["fontsize"], row["color"], row["ctime"]]
        expected += [row["pool"], row["mid_hash"], row["dmid"]]
        if not facts["eight_fields"]:
            expected.append(row["weight"])
        assert element.get("p") == ",".join(map(str, expected))
        assert element.text == row["content"]
    assert call(api, f"/{cid}.xml")[2] == call(api, LIST, oid=cid)[2]


def test_closed_xml(api: FakeApi) -> None:
    document, elements = xml_rows(call(api, f"/{dm.CLOSED_CID}.xml")[2])
    assert document.findtext("state") == "1"
    assert elements == []


def test_history_needs_a_login(api: FakeApi) -> None:
    month = dm.history_dates(dm.POOL_CID)[0][:7]
    for cookies in ("", BUVID):
        _, _, body = call(api, HISTORY_INDEX, cookies, type=1, oid=dm.POOL_CID, month=month)
        assert envelope(body) == NOT_LOGGED_IN
        _, _, body = call(api, HISTORY_SEG, cookies, type=1, oid=dm.POOL_CID, date=f"{month}-01")
        assert envelope(body) == NOT_LOGGED_IN


def test_history(api: FakeApi) -> None:
    days = dm.history_dates(dm.POOL_CID)
    month = days[len(days) // 2][:7]
    _, _, body = call(api, HISTORY_INDEX, LOGGED_IN, type=1, oid=dm.POOL_CID, month=month)
    answer = envelope(body)
    assert answer["code"] == 0
    assert answer["data"] == dm.history_dates(dm.POOL_CID, month)
    assert answer["data"] == [day for day in days if day.startswith(month)]
    _, _, body = call(api, HISTORY_INDEX, LOGGED_IN, type=1, oid=dm.POOL_CID, month="2008-01")
    assert envelope(body)["data"] is None
    for date in (days[0], answer["data"][-1], days[-1]):
        _, _, body = call(api, HISTORY_SEG, LOGGED_IN, type=1, oid=dm.POOL_CID, date=date)
        assert rows(body) == dm.history_pool(dm.POOL_CID, date)
    assert by_dmid(dm.history_pool(dm.POOL_CID, days[-1])) == by_dmid(dm.xml_pool(dm.POOL_CID))
    assert dm.history_pool(dm.POOL_CID, days[0]) != dm.xml_pool(dm.POOL_CID)
    _, _, body = call(api, HISTORY_SEG, LOGGED_IN, type=1, oid=dm.POOL_CID, date="2008-01-01")
    assert body == b""
    _, _, body = call(api, HISTORY_SEG, LOGGED_IN, type=1, oid=dm.CLOSED_CID, date=days[-1])
    assert body == dm.CLOSED_BODY


def test_unknown_cids(api: FakeApi) -> None:
    unknown = 12345
    answers = [
        call(api, SEG, type=1, oid=unknown, segment_index=1),
        fetch(
            f"{api.url}{WBI_SEG}?"
            + signed(api, {"type": "1", "oid": str(unknown), "segment_index": "1"}),
            cookies=BUVID,
        ),
        call(api, VIEW, type=1, oid=unknown),
        call(api, LIST, oid=unknown),
        call(api, f"/{unknown}.xml"),
        call(api, HISTORY_INDEX, LOGGED_IN, type=1, oid=unknown, month="2024-01"),
        call(api, HISTORY_SEG, LOGGED_IN, type=1, oid=unknown, date="2024-01-01"),
    ]
    for status, headers, body in answers:
        assert status == 200
        assert "Content-Encoding" not in headers
        assert envelope(body) == NOT_FOUND


@pytest.mark.parametrize(
    "params",
    [
        {"type": 1, "oid": dm.SMALL_CID, "segment_index": 0},
        {"type": 1, "oid": dm.SMALL_CID, "segment_index": -1},
        {"type": 1, "oid": dm.SMALL_CID},
        {"type": 1, "oid": "abc", "segment_index": 1},
        {"type": 2, "oid": dm.SMALL_CID, "segment_index": 1},
    ],
)
def test_bad_segment_parameters(api: FakeApi, params: dict[str, Any]) -> None:
    assert envelope(call(api, SEG, **params)[2]) == {"code": -400, "message": "请求错误", "ttl": 1}


def test_serving_a_video_makes_its_parts_known(api: FakeApi) -> None:
    aid = find_aid(lambda part: part["total"] > 0 and not part["closed"], start=20_000)
    (cid,) = dm.register(aid)
    assert envelope(call(api, SEG, type=1, oid=cid, segment_index=1)[2]) == NOT_FOUND
    assert call(api, "/x/web-interface/view", aid=aid)[0] == 200
    assert rows(seg(api, cid, 1)) == dm.segment(cid, 1)


def test_a_million_part_segment_is_served_quickly(api: FakeApi) -> None:
    started = time.monotonic()
    served = rows(seg(api, dm.MILLION_CID, 100))
    assert time.monotonic() - started < 2
    assert served == dm.segment(dm.MILLION_CID, 100)
