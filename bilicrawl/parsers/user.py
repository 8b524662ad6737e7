"""User, relation and upload-list payloads -> ``UserItem``, list entries and aids.

Each function takes the ``data`` object of an envelope the middleware already
checked (``code == 0``). A required field that is missing or of the wrong type
raises ``PayloadError`` naming the field; nothing is made up to fill it. Under
risk control ``/x/space/wbi/acc/info`` can answer ``code 0`` with only
``{"v_voucher": ...}`` as ``data``: that fails on the first required field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import attrs

from bilicrawl.items import (
    LiveRoom,
    Official,
    OfficialVerify,
    UserItem,
    UserStatItem,
    UserStubItem,
    Vip,
)
from bilicrawl.parsers.payload import PayloadError, check, optional, required


class ListedUser(NamedTuple):
    """One entry of a follower or following list."""

    stub: UserStubItem
    mtime: int
    """When the follow happened, Unix seconds."""


class RelationList(NamedTuple):
    """One page of a follower or following list."""

    total: int | None
    """The list's length as the site reports it, not what it lets us page through."""
    users: list[ListedUser]


class RelationStat(NamedTuple):
    """A user's follower and following counts (/x/relation/stat)."""

    follower: int
    following: int


# A frozen dataclass, not a NamedTuple: a field named count would shadow tuple.count.
@dataclass(frozen=True)
class UploadsPage:
    """One page of a user's uploaded videos."""

    aids: list[int]
    count: int
    """Videos the user has uploaded in all, for pagination."""


def _label(vip: dict[str, Any], path: str) -> str:
    # The label's text is "" or absent (followings give {"path": ""}) for none.
    label = optional(vip, "label", dict, f"{path}.label") or {}
    return optional(label, "text", str, f"{path}.label.text") or ""


def _live_room(acc: dict[str, Any]) -> LiveRoom | None:
    room = optional(acc, "live_room", dict, "acc_info.live_room")
    if room is None:
        return None
    room_id = required(room, "roomid", int, "acc_info.live_room.roomid")
    if room_id == 0:
        return None
    return LiveRoom(
        room_id=room_id,
        live_status=required(room, "liveStatus", int, "acc_info.live_room.liveStatus"),
        title=required(room, "title", str, "acc_info.live_room.title"),
        url=required(room, "url", str, "acc_info.live_room.url"),
        cover=required(room, "cover", str, "acc_info.live_room.cover"),
    )


def _upstat_view(upstat: dict[str, Any], key: str) -> int | None:
    # Anonymous calls answer {}: the counts are then unknown, not 0.
    counts = optional(upstat, key, dict, f"upstat.{key}") or {}
    return optional(counts, "view", int, f"upstat.{key}.view")


def parse_user(
    acc_info: dict[str, Any],
    card: dict[str, Any],
    upstat: dict[str, Any] | None,
    *,
    crawled_at: int,
) -> UserItem:
    """Return the user described by the ``data`` of three endpoints.

    ``acc_info`` is from ``/x/space/wbi/acc/info`` (the profile), ``card`` from
    ``/x/web-interface/card`` (the counters acc/info lacks) and ``upstat``
    from ``/x/space/upstat``, None when it was not fetched (it needs a login).
    An absent ``birthday`` gives "" and an absent ``is_senior_member`` 0, the
    values the profile shows for them. Error paths start with the argument's
    name, e.g. ``card.card.mid``.
    """
    acc = check(acc_info, dict, "acc_info")
    card = check(card, dict, "card")
    stat = {} if upstat is None else check(upstat, dict, "upstat")
    mid = required(acc, "mid", int, "acc_info.mid")
    inner = required(card, "card", dict, "card.card")
    # The card gives the mid as a string; a mismatch means two users' answers.
    card_mid = required(inner, "mid", str, "card.card.mid")
    if card_mid != str(mid):
        raise PayloadError(f"field 'card.card.mid' is {card_mid!r}, acc_info.mid is {mid}")
    official = required(acc, "official", dict, "acc_info.official")
    vip = required(acc, "vip", dict, "acc_info.vip")
    return UserItem(
        mid=mid,
        name=required(acc, "name", str, "acc_info.name"),
        sex=required(acc, "sex", str, "acc_info.sex"),
        face=required(acc, "face", str, "acc_info.face"),
        sign=required(acc, "sign", str, "acc_info.sign"),
        level=required(acc, "level", int, "acc_info.level"),
        birthday=optional(acc, "birthday", str, "acc_info.birthday") or "",
        silence=required(acc, "silence", int, "acc_info.silence"),
        is_senior_member=optional(acc, "is_senior_member", int, "acc_info.is_senior_member") or 0,
        official=Official(
            role=required(official, "role", int, "acc_info.official.role"),
            title=required(official, "title", str, "acc_info.official.title"),
            desc=required(official, "desc", str, "acc_info.official.desc"),
            type=required(official, "type", int, "acc_info.official.type"),
        ),
        vip=Vip(
            type=required(vip, "type", int, "acc_info.vip.type"),
            status=required(vip, "status", int, "acc_info.vip.status"),
            label=_label(vip, "acc_info.vip"),
        ),
        live_room=_live_room(acc),
        follower=required(card, "follower", int, "card.follower"),
        following=required(inner, "attention", int, "card.card.attention"),
        archive_count=required(card, "archive_count", int, "card.archive_count"),
        article_count=required(card, "article_count", int, "card.article_count"),
        likes=required(card, "like_num", int, "card.like_num"),
        archive_view=_upstat_view(stat, "archive"),
        article_view=_upstat_view(stat, "article"),
        crawled_at=crawled_at,
    )


_SNAPSHOT_FIELDS = attrs.fields(UserStatItem)
"""A snapshot's fields, each a field of the profile it is taken from."""


def user_stat_snapshot(user: UserItem) -> UserStatItem:
    """Return the counters of a crawled profile as a snapshot of its time series."""
    return UserStatItem(**{field.name: getattr(user, field.name) for field in _SNAPSHOT_FIELDS})


def _listed_user(entry: Any, path: str) -> ListedUser:
    user = check(entry, dict, path)
    verify = required(user, "official_verify", dict, f"{path}.official_verify")
    vip = required(user, "vip", dict, f"{path}.vip")
    stub = UserStubItem(
        mid=required(user, "mid", int, f"{path}.mid"),
        name=required(user, "uname", str, f"{path}.uname"),
        face=required(user, "face", str, f"{path}.face"),
        sign=required(user, "sign", str, f"{path}.sign"),
        official=OfficialVerify(
            type=required(verify, "type", int, f"{path}.official_verify.type"),
            desc=required(verify, "desc", str, f"{path}.official_verify.desc"),
        ),
        vip=Vip(
            type=required(vip, "vipType", int, f"{path}.vip.vipType"),
            status=required(vip, "vipStatus", int, f"{path}.vip.vipStatus"),
            label=_label(vip, f"{path}.vip"),
        ),
    )
    return ListedUser(stub=stub, mtime=required(user, "mtime", int, f"{path}.mtime"))


def parse_relation_list(data: Any) -> RelationList:
    """Return a page of ``/x/relation/followers``, ``/fans`` or ``/followings`` ``data``.

    A null or empty ``list`` is a page past what the site lets us read (code 0).
    """
    data = check(data, dict, "data")
    entries = optional(data, "list", list, "list") or []
    return RelationList(
        total=optional(data, "total", int, "total"),
        users=[_listed_user(entry, f"list[{i}]") for i, entry in enumerate(entries)],
    )


def parse_relation_stat(data: Any) -> RelationStat:
    """Return the counts in ``/x/relation/stat`` ``data``."""
    data = check(data, dict, "data")
    return RelationStat(
        follower=required(data, "follower", int, "follower"),
        following=required(data, "following", int, "following"),
    )


def _aids(entries: list[Any], path: str) -> list[int]:
    return [
        required(check(entry, dict, f"{path}[{i}]"), "aid", int, f"{path}[{i}].aid")
        for i, entry in enumerate(entries)
    ]


def parse_arc_search(data: dict[str, Any]) -> UploadsPage:
    """Return the aids and total count in ``/x/space/wbi/arc/search`` ``data``.

    ``list.vlist`` is null or empty past the last page.
    """
    data = check(data, dict, "data")
    videos = required(data, "list", dict, "list")
    page = required(data, "page", dict, "page")
    return UploadsPage(
        aids=_aids(optional(videos, "vlist", list, "list.vlist") or [], "list.vlist"),
        count=required(page, "count", int, "page.count"),
    )


def parse_rec_archives(data: dict[str, Any]) -> UploadsPage:
    """Return the aids and total count in ``/x/series/recArchivesByKeywords`` ``data``.

    It lists uploads without WBI signing, and no risk checks on it are known:
    ``{"archives": [{"aid", ...}], "page": {"num", "size", "total"}}``.
    """
    data = check(data, dict, "data")
    page = required(data, "page", dict, "page")
    return UploadsPage(
        aids=_aids(optional(data, "archives", list, "archives") or [], "archives"),
        count=required(page, "total", int, "page.total"),
    )
