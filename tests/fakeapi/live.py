"""The live area of the fake API: the rooms of the graph's users, on the live API host.

``/room/v1/Room/get_info`` (room_get_info.json) by long or short room id,
``/room/v1/Room/getRoomInfoOld`` by mid, and ``/xlive/web-room/v1/dM/gethistory``
(the room's latest danmaku, in the shape of tests/fixtures/live_danmaku/) by long
or short room id. Every graph user whose ``acc_info``
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
HISTORY_SIZE = 10
"""Danmaku in ``gethistory``'s ``room`` list: the site's latest ten."""
QUIET_ROOM = 20915
"""A room off air nobody has written in: ``gethistory`` lists no danmaku."""
ADMIN_ROOM = 9934
"""A room whose admins spoke lately: ``gethistory`` has a non-empty ``admin`` list."""
_QUIET_SHARE = 0.1
"""Share of the rooms off air without any danmaku."""
_ADMIN_SHARE = 0.2
_EMOTICON_SHARE = 0.1
_MEDAL_SHARE = 0.4
"""Share of a room's chatters wearing its anchor's fan medal."""
_EMOTICONS = (("official_13", "[赞]"), ("official_103", "[妙]"), ("official_147", "[干杯]"))
_MEDAL_WORDS = ("小", "糖", "喵", "星", "桶", "月", "酱", "团", "家", "君")
_LEVEL_COLOURS = (9868950, 6406234, 5805790, 16746162, 16752445)
"""``user_level[2]``: the live user level's colour, by level band (0-10, ...50-60)."""
_GAPS = (0, 1, 2, 3, 5, 8, 13, 21, 40, 95, 300)
"""Seconds between two danmaku of a room: 0 happens, so a second may hold two."""


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


def recent_danmaku(room_id: int) -> dict[str, Any]:
    """``data`` of ``gethistory`` for the room *room_id* (long or short) names; KeyError if none.

    ``admin`` holds the latest danmaku of the room's admins (most rooms: none),
    ``room`` the latest ``HISTORY_SIZE`` of everyone else, oldest first. Danmaku
    are numbered per room and dated back from the fake site's "now"
    (``LATEST``; a room off air fell silent hours or days before), so every
    answer of a room lists the same danmaku with the same ``id_str``.
    """
    long_id = long_room_id(room_id)
    if long_id is None:
        raise KeyError(room_id)
    return copy.deepcopy(_recent_danmaku(long_id))


@functools.lru_cache(maxsize=256)
def _recent_danmaku(long_id: int) -> dict[str, Any]:
    info = _room(long_id)
    on_air = info["live_status"] == 1
    rng = seeded("live-danmaku", long_id)
    if not on_air and rng.random() < _QUIET_SHARE:
        return {"admin": [], "room": []}
    owner = info["uid"]
    # Its followers chat, and when they are few, some of the graph's first users too.
    fans = list(dict.fromkeys(mid for mid, _ in graph.followers(owner)[:40]))
    fans += [mid for mid in graph.graph_mids()[:10] if mid != owner and mid not in fans]
    chatters = rng.sample(fans, rng.randint(2, 6))
    # An admin's danmaku go to ``admin`` only, so the admin is not among the chatters.
    admins = [mid for mid in fans if mid not in chatters][:1]
    admins = admins if rng.random() < _ADMIN_SHARE else []
    moment = LATEST - (rng.randrange(0, 120) if on_air else rng.randrange(3600, 20 * 86400))
    said: list[tuple[int, int, bool]] = []  # (time, sender, by an admin), newest first
    while sum(not by_admin for *_, by_admin in said) < HISTORY_SIZE:
        moment -= rng.choice(_GAPS)
        if admins and rng.random() < 0.15:
            said.append((moment, admins[0], True))
        else:
            said.append((moment, rng.choice(chatters), False))
    said.reverse()
    # The sender's page load: ``rnd`` is the same for all of one sender's danmaku.
    first = {}
    for sent, sender, _ in reversed(said):
        first[sender] = sent
    loaded = {sender: sent - rng.randrange(0, 900) for sender, sent in sorted(first.items())}
    entries = [
        _danmaku(
            rng,
            long_id,
            owner,
            seq=seq,
            mid=sender,
            moment=sent,
            admin=admin,
            loaded=loaded[sender],
        )
        for seq, (sent, sender, admin) in enumerate(said)
    ]
    return {
        "admin": [entry for entry in entries if entry["isadmin"]],
        "room": [entry for entry in entries if not entry["isadmin"]],
    }


def _medal(owner: int, long_id: int, mid: int) -> tuple[list[Any], dict[str, Any] | None]:
    """The ``medal`` array and ``user.medal`` object of *mid* in *owner*'s room (or [], None)."""
    rng = random.Random(f"live-medal-{owner}-{mid}")
    if rng.random() >= _MEDAL_SHARE:
        return [], None
    name = "".join(seeded("medal-name", owner).sample(_MEDAL_WORDS, 2))
    level = rng.randint(1, 30)
    guard = rng.choice((0, 0, 0, 3))
    lit = rng.choice((0, 1, 1))
    # A medal not lit lately is grey.
    colour, border, start, end = (
        (398668, 6809855, 398668, 6850801) if lit else (1725515, 12632256, 12632256, 12632256)
    )
    array = [level, name, user_facts(owner)["name"], long_id, colour, "", 0, border, start, end,
             guard, lit, owner]  # fmt: skip
    shape = {
        "name": name, "level": level, "color_start": start, "color_end": end,
        "color_border": border, "color": colour, "id": seeded("medal-id", owner).randrange(10**6),
        "typ": 0, "is_light": lit, "ruid": owner, "guard_level": guard,
        "score": 50_000_000 + rng.randrange(200_000),
        "guard_icon": (
            "https://i0.hdslb.com/bfs/live/143f5ec3003b4080d1b5f817a9efdca46d631945.png"
            if guard else ""
        ),
        "honor_icon": "", "v2_medal_color_start": "#4775EFCC", "v2_medal_color_end": "#4775EFCC",
        "v2_medal_color_border": "#58A1F8FF", "v2_medal_color_text": "#FFFFFFFF",
        "v2_medal_color_level": "#000B7099", "user_receive_count": 0,
    }  # fmt: skip
    return array, shape


def _danmaku(
    rng: random.Random,
    long_id: int,
    owner: int,
    *,
    seq: int,
    mid: int,
    moment: int,
    admin: bool,
    loaded: int,
) -> dict[str, Any]:
    """Danmaku *seq* of room *long_id*, sent by *mid* at *moment*, in ``gethistory``'s shape.

    *loaded* is when the sender's page loaded (``rnd``).
    """
    user = user_facts(mid)
    traits = seeded("live-user", mid)
    level = traits.randint(0, 60)
    wealth = traits.randint(0, 40)
    title = "title-86-1" if traits.random() < 0.1 else ""
    medal, medal_shape = _medal(owner, long_id, mid)
    emoticon = rng.choice(_EMOTICONS) if rng.random() < _EMOTICON_SHARE else None
    words = emoticon[1] if emoticon else rng.choice((*_HOT_WORDS, text(rng, 1, 3), ""))
    # id_str: opaque hex on the site (33-36 digits, the send time in hex inside); unique here.
    id_str = f"{hex_id(f'live-dm-{long_id}', seq, 24)}{moment:x}{rng.randrange(10, 100)}"
    origin = {"name": user["name"], "face": user["face"]}
    return {
        "text": words,
        "dm_type": 1 if emoticon else 0,
        "uid": mid,
        "nickname": user["name"],
        "uname_color": "",
        "timeline": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment + _BEIJING)),
        "isadmin": int(admin),
        "vip": 0,
        "svip": 0,
        "medal": medal,
        "title": [title, title],
        "user_level": [
            level,
            0,
            _LEVEL_COLOURS[min(level // 11, 4)],
            level * 97 if level > 40 else ">50000",
        ],
        "rank": 10000,
        "teamid": 0,
        "rnd": str(loaded),
        "user_title": title,
        "guard_level": medal[10] if medal else 0,
        "bubble": 0,
        "bubble_color": "",
        "lpl": 0,
        "yeah_space_url": "",
        "jump_to_url": "",
        # ct: upper-case hex without leading zeros, as the site prints it ("1B75FB").
        "check_info": {"ts": moment, "ct": f"{int(hex_id(f'live-ct-{long_id}', seq, 8), 16):X}"},
        "voice_dm_info": {
            "voice_url": "",
            "file_format": "",
            "text": "",
            "file_duration": 0,
            "file_id": "",
        },
        "emoticon": {
            "id": 0,
            "emoticon_unique": emoticon[0] if emoticon else "",
            "text": emoticon[1] if emoticon else "",
            "perm": 1 if emoticon else 0,
            "url": (
                f"https://i0.hdslb.com/bfs/live/{hex_id(f'emoticon-{emoticon[0]}', 0)}.png"
                if emoticon
                else ""
            ),
            "in_player_area": 1 if emoticon else 0,
            "bulge_display": 1 if emoticon else 0,
            "is_dynamic": 0,
            "height": 60 if emoticon else 0,
            "width": 183 if emoticon else 0,
        },
        "emots": None,
        "id_str": id_str,
        "wealth_level": wealth,
        "bubble_id_v2": 0,
        "reply": {
            "show_reply": True,
            "reply_mid": 0,
            "reply_uname": "",
            "reply_uname_color": "",
            "reply_is_mystery": False,
        },
        "group_medal": None,
        "user": {
            "uid": mid,
            "base": {
                **origin,
                "name_color": 0,
                "is_mystery": False,
                "risk_ctrl_info": None,
                "origin_info": dict(origin),
                "official_info": {"role": 0, "title": "", "desc": "", "type": -1},
                "name_color_str": "",
            },
            "medal": medal_shape,
            "wealth": None,
            "title": {"old_title_css_id": title, "title_css_id": title},
            "guard": None,
            "uhead_frame": None,
            "guard_leader": {"is_guard_leader": False},
        },
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


def _gethistory(request: web.Request) -> Answer:
    # The site answers with message and msg both "", not "ok" as get_info does.
    room_id = _number(request.query.get("roomid", ""))
    if room_id is None:
        return live_answer(1, _BAD_PARAM, [])
    if long_room_id(room_id) is None:
        return live_answer(1, _NOT_FOUND, [])
    return live_answer(0, "", recent_danmaku(room_id))


ENDPOINTS: dict[str, Callable[[web.Request], Answer]] = {
    "/room/v1/Room/get_info": _get_info,
    "/room/v1/Room/getRoomInfoOld": _room_info_old,
    "/xlive/web-room/v1/dM/gethistory": _gethistory,
}
