"""The live area of the fake API: the rooms of the graph's users, on the live API host.

``/room/v1/Room/get_info`` (room_get_info.json) by long or short room id, and
``/room/v1/Room/getRoomInfoOld`` by mid. Every graph user whose ``acc_info``
(users area) shows a live room has that room here, with the same room id,
title, cover and live status; about one room in five also has a short id
(below 1000, so never a long id too). Users outside the graph have no room
here, whatever their ``acc_info`` shows. Answers use the live API's envelope
(``code``, ``msg``, ``message``, ``data``), where code 1 means "no such room".
The live endpoints need the browser User-Agent only: no buvid3, no WBI.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.fakeapi import graph
from tests.fakeapi.answers import Answer, dumps
from tests.fakeapi.data import LATEST, hex_id, seeded, text, user_facts
from tests.fakeapi.users import acc_info

if TYPE_CHECKING:
    from aiohttp import web

SHORT_ROOM = (593, 76844)
"""A room with a short id, as (short id, long id)."""
LIVE_ROOM = 123729
"""A room on air (``live_status`` 1)."""
OFFLINE_ROOM = 124978
"""A room off air (``live_status`` 0)."""
ROTATING_ROOM = 291932
"""A room off air that replays recordings (``live_status`` 2, "rotation")."""
ROOM_OWNER = 137078558
"""A graph user with a room (``LIVE_ROOM``)."""
NO_ROOM_MID = 3546612800005019
"""A graph user without a room."""

_NOT_FOUND = "未找到该房间"
_BAD_PARAM = "参数错误"
_SHORT_SHARE = 0.2
_ROTATION_SHARE = 0.3
"""Share of the rooms off air that replay recordings."""
_BEIJING = 8 * 3600
_AREAS = (
    (145, "视频聊天", 1, "娱乐", 6), (207, "舞见", 1, "娱乐", 10), (190, "唱见", 1, "娱乐", 10),
    (86, "英雄联盟", 2, "网游", 4), (236, "主机游戏", 6, "单机游戏", 1),
    (283, "独立游戏", 6, "单机游戏", 1), (376, "学习", 11, "知识", 7),
    (192, "聊天电台", 5, "电台", 6), (371, "虚拟聊天", 9, "虚拟主播", 6),
)  # fmt: skip
"""(area_id, area_name, parent_area_id, parent_area_name, old_area_id) of the rooms."""
_ROOM_TAGS = (
    "唱歌",
    "聊天",
    "ASMR",
    "单机",
    "主机游戏",
    "原神",
    "我的世界",
    "学习",
    "陪伴",
    "画画",
)
_HOT_WORDS = (
    "2333333", "喂，妖妖零吗", "红红火火恍恍惚惚", "FFFFFFFFFF", "Yooooooo", "666666666",
    "老司机带带我", "你为什么这么熟练啊", "gg", "prprpr", "向大佬低头", "请大家注意弹幕礼仪哦！",
)  # fmt: skip
_BLANK_FRAME = {
    "name": "", "value": "", "position": 0, "desc": "", "area": 0, "area_old": 0,
    "bg_color": "", "bg_pic": "", "use_old_area": False,
}  # fmt: skip
_NO_ROOM = {
    "roomStatus": 0, "roundStatus": 0, "liveStatus": 0, "url": "", "title": "", "cover": "",
    "online": 0, "roomid": 0, "broadcast_type": 0, "online_hidden": 0,
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class _Rooms:
    owners: dict[int, int]
    """Long room id -> mid."""
    by_mid: dict[int, int]
    """Mid -> long room id."""
    short_of: dict[int, int]
    """Long room id -> short id, for the rooms that have one."""
    long_of: dict[int, int]
    """Short id -> long room id."""


@functools.cache
def _rooms() -> _Rooms:
    """The rooms of the graph's users, read off their ``acc_info``, and the short ids."""
    owners = {}
    for mid in graph.graph_mids():
        roomid = acc_info(mid)["live_room"]["roomid"]
        if roomid:
            owners[roomid] = mid
    rng = random.Random("live-short-ids")
    with_short = [roomid for roomid in sorted(owners) if rng.random() < _SHORT_SHARE]
    short_of = dict(zip(with_short, rng.sample(range(1, 1000), len(with_short)), strict=True))
    return _Rooms(
        owners=owners,
        by_mid={mid: roomid for roomid, mid in owners.items()},
        short_of=short_of,
        long_of={short: roomid for roomid, short in short_of.items()},
    )


def rooms() -> list[int]:
    """The long ids of every room, ascending."""
    return sorted(_rooms().owners)


def long_room_id(room_id: int) -> int | None:
    """The long id of the room *room_id* (long or short) names, or None if none."""
    catalogue = _rooms()
    if room_id in catalogue.owners:
        return room_id
    return catalogue.long_of.get(room_id)


def short_id(room_id: int) -> int:
    """The short id of the room with long id *room_id*, 0 if it has none."""
    return _rooms().short_of.get(room_id, 0)


def room_of(mid: int) -> int | None:
    """The long id of *mid*'s room, or None."""
    return _rooms().by_mid.get(mid)


def room(room_id: int) -> dict[str, Any]:
    """``data`` of ``get_info`` for the room *room_id* (long or short) names; KeyError if none."""
    long_id = long_room_id(room_id)
    if long_id is None:
        raise KeyError(room_id)
    return copy.deepcopy(_room(long_id))


@functools.lru_cache(maxsize=256)
def _room(long_id: int) -> dict[str, Any]:
    mid = _rooms().owners[long_id]
    shown = acc_info(mid)["live_room"]
    user = user_facts(mid)
    rng = seeded("room", long_id)
    # Off air, a room may replay recordings ("rotation").
    live_status = 1 if shown["liveStatus"] else 2 if rng.random() < _ROTATION_SHARE else 0
    started = LATEST - rng.randrange(60, 6 * 3600)
    area_id, area_name, parent_id, parent_name, old_area_id = rng.choice(_AREAS)
    official = user["official_type"] == 0
    return {
        "uid": mid,
        "room_id": long_id,
        "short_id": short_id(long_id),
        "attention": len(graph.followers(mid)),
        "online": rng.randrange(1, 200_000) if live_status == 1 else 0,
        "is_portrait": rng.random() < 0.1,
        "description": text(rng, 0, 6),
        "live_status": live_status,
        "area_id": area_id,
        "parent_area_id": parent_id,
        "parent_area_name": parent_name,
        "old_area_id": old_area_id,
        "background": "",
        "title": shown["title"],
        "user_cover": shown["cover"],
        "keyframe": (
            f"https://i0.hdslb.com/bfs/live-key-frame/keyframe{long_id:014d}"
            f"{hex_id('keyframe', long_id, 6)}.jpg"
        ),
        "is_strict_room": False,
        "live_time": (
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started + _BEIJING))
            if live_status == 1
            else "0000-00-00 00:00:00"
        ),
        "tags": ",".join(rng.sample(_ROOM_TAGS, rng.randint(0, 4))),
        "is_anchor": 0,
        "room_silent_type": "",
        "room_silent_level": 0,
        "room_silent_second": 0,
        "area_name": area_name,
        "pendants": "",
        "area_pendants": "",
        "hot_words": list(_HOT_WORDS),
        "hot_words_status": 0,
        "verify": "",
        "new_pendants": {
            "frame": dict(_BLANK_FRAME),
            "badge": {
                "name": "v_person" if official else "",
                "position": 3 if official else 0,
                "value": "",
                "desc": user["official_title"],
            },
            "mobile_frame": dict(_BLANK_FRAME),
            "mobile_badge": None,
        },
        "up_session": "",
        "pk_status": 0,
        "pk_id": 0,
        "battle_id": 0,
        "allow_change_area_time": 0,
        "allow_upload_cover_time": 0,
        "studio_info": {"status": 0, "master_list": []},
    }


def room_info_old(mid: int) -> dict[str, Any]:
    """``data`` of ``getRoomInfoOld?mid=``: *mid*'s room as its ``acc_info`` shows it."""
    roomid = room_of(mid)
    if roomid is None:
        return dict(_NO_ROOM)
    shown = acc_info(mid)["live_room"]
    return {
        "roomStatus": 1,
        "roundStatus": 0,
        "liveStatus": shown["liveStatus"],
        "url": shown["url"],
        "title": shown["title"],
        "cover": shown["cover"],
        "online": room(roomid)["online"],
        "roomid": roomid,
        "broadcast_type": 0,
        "online_hidden": 0,
    }


# --- endpoints ------------------------------------------------------------------------------


def live_answer(code: int, message: str, data: object) -> Answer:
    """An answer in the live API's envelope: ``code``, ``msg`` and ``message``, ``data``."""
    return Answer(
        200, dumps({"code": code, "msg": message, "message": message, "data": data}), code
    )


def _number(value: str) -> int | None:
    """*value* as a positive 64-bit id, or None if it is not one."""
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        return None
    number = int(value)
    return number if 0 < number < 1 << 63 else None


def _get_info(request: web.Request) -> Answer:
    room_id = _number(request.query.get("room_id", ""))
    if room_id is None:
        return live_answer(1, _BAD_PARAM, [])
    if long_room_id(room_id) is None:
        return live_answer(1, _NOT_FOUND, [])
    return live_answer(0, "ok", room(room_id))


def _room_info_old(request: web.Request) -> Answer:
    mid = _number(request.query.get("mid", ""))
    if mid is None:
        return live_answer(1, _BAD_PARAM, [])
    return live_answer(0, "ok", room_info_old(mid))


ENDPOINTS: dict[str, Callable[[web.Request], Answer]] = {
    "/room/v1/Room/get_info": _get_info,
    "/room/v1/Room/getRoomInfoOld": _room_info_old,
}
