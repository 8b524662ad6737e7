"""Live room payloads (api.live.bilibili.com) -> ``LiveRoomItem`` and room ids.

Each function takes the ``data`` object of an envelope the middleware already
checked (``code == 0``). A required field that is missing or of the wrong type
raises ``PayloadError`` naming the field; nothing is made up to fill it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from bilicrawl.items import LiveArea, LiveRoomItem
from bilicrawl.parsers.payload import PayloadError, check, required

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
"""The site's clock: China has no daylight saving time, so a fixed offset is exact."""
_NEVER = "0000-00-00 00:00:00"


def _live_time(value: str) -> int | None:
    """Unix seconds of a Beijing "YYYY-MM-DD HH:MM:SS"; None off air ("" or all zeros)."""
    if value in {"", _NEVER}:
        return None
    try:
        started = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        raise PayloadError(f"field 'live_time' is {value!r}, not YYYY-MM-DD HH:MM:SS") from None
    return int(started.timestamp())


def parse_room(data: dict[str, Any], *, crawled_at: int) -> LiveRoomItem:
    """Return the live room described by ``/room/v1/Room/get_info`` ``data``.

    ``room_id`` is the long id whichever id was asked for. ``tags`` is one
    comma-separated string on the site, stored as a list.
    """
    data = check(data, dict, "data")
    tags = required(data, "tags", str, "tags")
    return LiveRoomItem(
        room_id=required(data, "room_id", int, "room_id"),
        short_id=required(data, "short_id", int, "short_id"),
        uid=required(data, "uid", int, "uid"),
        title=required(data, "title", str, "title"),
        description=required(data, "description", str, "description"),
        tags=[tag.strip() for tag in tags.split(",") if tag.strip()],
        area=LiveArea(
            id=required(data, "area_id", int, "area_id"),
            name=required(data, "area_name", str, "area_name"),
            parent_id=required(data, "parent_area_id", int, "parent_area_id"),
            parent_name=required(data, "parent_area_name", str, "parent_area_name"),
        ),
        live_status=required(data, "live_status", int, "live_status"),
        live_time=_live_time(required(data, "live_time", str, "live_time")),
        online=required(data, "online", int, "online"),
        attention=required(data, "attention", int, "attention"),
        user_cover=required(data, "user_cover", str, "user_cover"),
        keyframe=required(data, "keyframe", str, "keyframe"),
        crawled_at=crawled_at,
    )


def parse_room_of_user(data: dict[str, Any]) -> int | None:
    """Return the room id in ``/room/v1/Room/getRoomInfoOld?mid=`` ``data``, None for none.

    ``roomStatus`` 0 means the user has no room; the id may be the short one,
    which get_info accepts as well.
    """
    data = check(data, dict, "data")
    if required(data, "roomStatus", int, "roomStatus") == 0:
        return None
    return required(data, "roomid", int, "roomid") or None
