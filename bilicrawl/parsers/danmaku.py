"""Danmaku bodies (protobuf segments, the view reply, the XML pool) -> rows.

A row is a plain dict with only the fields its source carries, never ``cid``,
``aid`` or ``crawled_at``: danmaku come by the million, so the spider adds
those once per batch instead of the parser building an item per row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError
from lxml import etree

from bilicrawl.parsers.live import BEIJING
from bilicrawl.parsers.payload import PayloadError, check, optional, required
from bilicrawl.proto.dm_pb2 import DmSegMobileReply, DmWebViewReply

SEGMENT_SECONDS = 360
"""Video time one protobuf segment covers (6 minutes)."""

_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
# The control characters XML 1.0 forbids. Some rows hold them (pakku.js issue #24)
# and the site's own player deletes them before parsing; in UTF-8 each is one byte.
_XML_ILLEGAL = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Segment(NamedTuple):
    """One protobuf segment (``DmSegMobileReply``)."""

    closed: bool
    """The video's danmaku are closed (``state == 1``)."""
    rows: list[dict[str, Any]]


# A frozen dataclass, not a NamedTuple: a field named count would shadow tuple.count.
@dataclass(frozen=True)
class DanmakuView:
    """What ``/x/v2/dm/web/view`` says about a video's danmaku."""

    closed: bool
    segments: int | None
    """6-minute segments to fetch (``dm_sge.total``), None when the reply does not say."""
    count: int
    """Danmaku in all, as the site counts them."""


class XmlPool(NamedTuple):
    """The XML snapshot of a video's live danmaku pool."""

    cid: int
    maxlimit: int
    """The pool's size: the XML holds at most this many, the newest."""
    closed: bool
    rows: list[dict[str, Any]]


def _id_str(id_str: str, index: int) -> int:
    # Only reached when the int64 ``id`` is 0, so the common row pays nothing.
    try:
        return int(id_str)
    except ValueError:
        raise PayloadError(f"elems[{index}] has id 0 and idStr {id_str!r}") from None


def parse_segment(body: bytes) -> Segment:
    """Return the rows of a ``DmSegMobileReply`` body (``seg.so``, ``history/seg.so``).

    An empty body is an empty open segment; proto3 cannot tell a missing number
    from 0, so every row has all eleven fields.
    """
    reply = DmSegMobileReply()
    try:
        reply.ParseFromString(body)
    except DecodeError as exc:
        raise PayloadError(f"body is not a DmSegMobileReply: {exc}") from None
    rows = [
        {
            "dmid": elem.id or _id_str(elem.idStr, i),
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
        for i, elem in enumerate(reply.elems)
    ]
    return Segment(closed=reply.state == 1, rows=rows)


def parse_view(body: bytes) -> DanmakuView:
    """Return the segment count and danmaku count of a ``DmWebViewReply`` body."""
    reply = DmWebViewReply()
    try:
        reply.ParseFromString(body)
    except DecodeError as exc:
        raise PayloadError(f"body is not a DmWebViewReply: {exc}") from None
    return DanmakuView(
        closed=reply.state == 1, segments=reply.dm_sge.total or None, count=reply.count
    )


def _progress_ms(seconds: str) -> int:
    # Exact decimal arithmetic, ties away from zero: "1.2345" s is 1235 ms, where
    # round(1.2345 * 1000) gives 1234 (the float product is 1234.5, rounded to even).
    return int((Decimal(seconds) * 1000).to_integral_value(ROUND_HALF_UP))


def _header(root: Any, tag: str, default: str | None = None) -> int:
    text = root.findtext(tag, default)
    if text is None:
        raise PayloadError(f"XML has no <{tag}>")
    try:
        return int(text)
    except ValueError:
        raise PayloadError(f"<{tag}> should be an integer, got {text!r}") from None


def _bad_row(index: int, d: Any) -> PayloadError:
    return PayloadError(f"<d> row {index} has a bad p attribute {d.get('p')!r}")


def parse_xml(body: bytes) -> XmlPool:
    """Return the pool in an inflated ``list.so`` or ``comment.bilibili.com/{cid}.xml`` body.

    Rows carry no ``attr`` (the XML has none) and a ``weight`` only when the
    ``p`` attribute has the ninth field that newer responses add.
    """
    try:
        root = etree.fromstring(body.translate(None, _XML_ILLEGAL), _XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise PayloadError(f"body is not XML: {exc}") from None
    cid = _header(root, "chatid")
    maxlimit = _header(root, "maxlimit")
    closed = _header(root, "state", "0") == 1
    rows = []
    for i, d in enumerate(root.iter("d")):
        p = d.get("p", "").split(",")
        if len(p) not in (8, 9):
            raise _bad_row(i, d)
        try:
            row = {
                "dmid": int(p[7]),
                "progress_ms": _progress_ms(p[0]),
                "mode": int(p[1]),
                "fontsize": int(p[2]),
                "color": int(p[3]),
                "ctime": int(p[4]),
                "pool": int(p[5]),
                "mid_hash": p[6],
                "content": d.text or "",
            }
            if len(p) == 9:
                row["weight"] = int(p[8])
        except (ValueError, ArithmeticError):  # Decimal raises InvalidOperation, OverflowError
            raise _bad_row(i, d) from None
        rows.append(row)
    return XmlPool(cid=cid, maxlimit=maxlimit, closed=closed, rows=rows)


def parse_history_index(data: Any) -> list[str]:
    """Return the dates with history danmaku in ``/x/v2/dm/history/index`` ``data``.

    The site answers null for a month without any.
    """
    if data is None:
        return []
    dates = check(data, list, "data")
    for i, date in enumerate(dates):
        if not _DATE.fullmatch(check(date, str, f"data[{i}]")):
            raise PayloadError(f"field 'data[{i}]' should be YYYY-MM-DD, got {date!r}")
    return list(dates)


def segment_count(duration_s: int) -> int:
    """Return how many 6-minute protobuf segments a video of ``duration_s`` seconds has."""
    return max(1, -(-duration_s // SEGMENT_SECONDS))


_MEDAL_ROOM, _MEDAL_ANCHOR = 3, 12
"""Positions in a live ``medal`` array: [level, name, anchor name, room id, ..., anchor uid]."""


def _beijing_seconds(value: str, path: str) -> int:
    try:
        sent = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        raise PayloadError(f"field {path!r} is {value!r}, not YYYY-MM-DD HH:MM:SS") from None
    return int(sent.timestamp())


def _live_medal(medal: list[Any], path: str) -> dict[str, Any] | None:
    """The fan medal a live danmaku's sender wore, or None for ``[]`` (none worn)."""
    if not medal:
        return None
    if len(medal) <= _MEDAL_ROOM:
        raise PayloadError(f"field {path!r} should have at least 4 items, got {medal!r}")
    anchor = (
        check(medal[_MEDAL_ANCHOR], int, f"{path}[{_MEDAL_ANCHOR}]")
        if len(medal) > _MEDAL_ANCHOR
        else None  # older arrays (2018) stop after the colours, without the anchor uid
    )
    return {
        "name": check(medal[1], str, f"{path}[1]"),
        "level": check(medal[0], int, f"{path}[0]"),
        "room_id": check(medal[_MEDAL_ROOM], int, f"{path}[{_MEDAL_ROOM}]"),
        "anchor_uid": anchor,
    }


def _live_row(entry: Any, path: str, room_id: int) -> dict[str, Any]:
    entry = check(entry, dict, path)
    id_str = required(entry, "id_str", str, f"{path}.id_str")
    if not id_str:
        raise PayloadError(f"field '{path}.id_str' is empty")
    levels = required(entry, "user_level", list, f"{path}.user_level")
    if not levels:
        raise PayloadError(f"field '{path}.user_level' is empty")
    return {
        "room_id": room_id,
        "id_str": id_str,
        "uid": required(entry, "uid", int, f"{path}.uid"),
        "nickname": required(entry, "nickname", str, f"{path}.nickname"),
        "text": required(entry, "text", str, f"{path}.text"),
        "timeline": _beijing_seconds(
            required(entry, "timeline", str, f"{path}.timeline"), f"{path}.timeline"
        ),
        "dm_type": optional(entry, "dm_type", int, f"{path}.dm_type"),
        "user_level": check(levels[0], int, f"{path}.user_level[0]"),
        "medal": _live_medal(required(entry, "medal", list, f"{path}.medal"), f"{path}.medal"),
    }


def parse_live_history(data: Any, *, room_id: int) -> list[dict[str, Any]]:
    """Return the danmaku in ``/xlive/web-room/v1/dM/gethistory`` ``data``, one row each.

    ``data.admin`` (the room admins' latest danmaku, usually empty) and
    ``data.room`` (the latest ten of everyone else, oldest first) hold entries
    of one shape; rows follow that order. The reply names no room, so the
    caller passes *room_id*: the long id, whatever id was asked for.

    ``(room_id, id_str)`` is the row's natural key. ``id_str`` is the id the
    site gives each danmaku (the live message stream carries it too); every
    other field may repeat between danmaku: text and sender, ``rnd`` (the
    sender's page load, shared by all their danmaku) and ``timeline`` (whole
    seconds). A danmaku listed twice gives one row. ``timeline`` is kept as
    Unix seconds (the site prints Beijing time; ``check_info.ts`` equals it in
    every real example, so it is not kept), ``user_level`` as the first item
    of the site's ``[level, 0, colour, rank]``, ``medal`` as ``{name, level,
    room_id, anchor_uid}`` or None.
    """
    data = check(data, dict, "data")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    lists = {
        # Only ``room`` is required: an absent or null ``admin`` is taken as no admin danmaku.
        "admin": optional(data, "admin", list, "admin") or [],
        "room": required(data, "room", list, "room"),
    }
    for name, entries in lists.items():
        for i, entry in enumerate(entries):
            row = _live_row(entry, f"{name}[{i}]", room_id)
            if row["id_str"] not in seen:
                seen.add(row["id_str"])
                rows.append(row)
    return rows
