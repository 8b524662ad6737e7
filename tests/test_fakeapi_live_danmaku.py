"""Tests of the fake API's ``/xlive/web-room/v1/dM/gethistory``: what it serves and its shape.

The shape is the real 2024 example saved in tests/fixtures/live_danmaku/
(room1.json): every path of its entries, with the same JSON types, and nothing
else.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from bilicrawl.parsers.danmaku import parse_live_history
from tests.fakeapi import live
from tests.fakeapi.process import FakeApi
from tests.helpers.fakeapi_client import flatten, get
from tests.utils import FIXTURES

GETHISTORY = "/xlive/web-room/v1/dM/gethistory"
REAL = json.loads((FIXTURES / "live_danmaku/room1.json").read_text(encoding="utf-8"))
SAMPLE = 60
"""The first rooms, among which some chatters wear a medal and some send emoticons."""


def history(api: FakeApi, room_id: object) -> dict[str, Any]:
    return get(api, GETHISTORY, urllib.parse.urlencode({"roomid": room_id}))[1]


def test_gethistory_serves_recent_danmaku(api: FakeApi) -> None:
    short, long = live.SHORT_ROOM
    rooms = [live.LIVE_ROOM, live.OFFLINE_ROOM, live.ROTATING_ROOM, live.ADMIN_ROOM, long]
    for room_id in [*rooms, short]:
        body = history(api, room_id)
        assert list(body) == ["code", "msg", "message", "data"]
        assert (body["code"], body["msg"], body["message"]) == (0, "", "")
        assert body["data"] == live.recent_danmaku(room_id)
        assert list(body["data"]) == ["admin", "room"]
    assert live.recent_danmaku(short) == live.recent_danmaku(long)
    # Asked again, a room lists the same danmaku: a re-crawl finds the same keys.
    assert history(api, live.LIVE_ROOM) == history(api, live.LIVE_ROOM)


def test_gethistory_lists_the_latest_ten_oldest_first() -> None:
    for room_id in [*live.rooms()[:SAMPLE], live.ADMIN_ROOM]:
        data = live.recent_danmaku(room_id)
        if not data["room"]:  # a room off air nobody wrote in
            continue
        assert len(data["room"]) == live.HISTORY_SIZE
        for name, admin in (("admin", 1), ("room", 0)):
            stamps = [entry["check_info"]["ts"] for entry in data[name]]
            assert stamps == sorted(stamps), (room_id, name)
            assert all(entry["isadmin"] == admin for entry in data[name])
        rows = parse_live_history(data, room_id=room_id)
        assert len(rows) == len(data["admin"]) + len(data["room"])
        assert len({row["id_str"] for row in rows}) == len(rows)
        entries = data["admin"] + data["room"]
        assert [row["timeline"] for row in rows] == [e["check_info"]["ts"] for e in entries]
    assert live.recent_danmaku(live.QUIET_ROOM) == {"admin": [], "room": []}
    assert live.room(live.QUIET_ROOM)["live_status"] != 1
    assert live.recent_danmaku(live.ADMIN_ROOM)["admin"]
    assert not live.recent_danmaku(live.LIVE_ROOM)["admin"]


def test_gethistory_entries_have_the_real_shape() -> None:
    entries = [
        entry
        for data in map(live.recent_danmaku, [*live.rooms()[:SAMPLE], live.ADMIN_ROOM])
        for entry in data["admin"] + data["room"]
    ]
    assert flatten(entries) == flatten(REAL["data"]["room"])
    assert {entry["dm_type"] for entry in entries} == {0, 1}
    assert {len(entry["medal"]) for entry in entries} == {0, 13}
    for entry in entries:
        assert (entry["medal"] == []) == (entry["user"]["medal"] is None)
        assert entry["uid"] == entry["user"]["uid"]
        assert entry["nickname"] == entry["user"]["base"]["name"]
        assert int(entry["rnd"]) <= entry["check_info"]["ts"]
        if entry["medal"]:
            owner = entry["medal"][12]
            assert live.room_of(owner) == entry["medal"][3]
            assert entry["user"]["medal"]["ruid"] == owner


def test_unknown_or_malformed_rooms_answer_code_1(api: FakeApi) -> None:
    assert history(api, 999999999) == {
        "code": 1,
        "msg": "未找到该房间",
        "message": "未找到该房间",
        "data": [],
    }
    for value in ("", "abc", "0", "-1", "lv5440", "9" * 20):
        body = history(api, value)
        assert (body["code"], body["data"]) == (1, []), value
    assert get(api, GETHISTORY)[1]["code"] == 1
    with pytest.raises(KeyError):
        live.recent_danmaku(999999999)
