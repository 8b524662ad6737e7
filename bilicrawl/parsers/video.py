"""Video payloads -> ``VideoItem``.

Each function takes the ``data`` object of an envelope the middleware already
checked (``code == 0``). A required field that is missing or of the wrong type
raises ``PayloadError`` naming the field; nothing is made up to fill it.
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

from bilicrawl.ids import av2bv
from bilicrawl.items import Owner, StaffMember, VideoItem, VideoPage, VideoStat, VideoTag

T = TypeVar("T")


class PayloadError(ValueError):
    """A payload lacks a required field or has one of the wrong type."""


def _check(value: Any, kind: type[T], path: str) -> T:
    # bool is an int subclass; a flag where a count belongs is a wrong shape.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PayloadError(f"field {path!r} should be {kind.__name__}, got {value!r}")
    return value


def _req(obj: dict[str, Any], key: str, kind: type[T], path: str) -> T:
    value = obj.get(key)
    if value is None:
        raise PayloadError(f"required field {path!r} is missing")
    return _check(value, kind, path)


def _opt(obj: dict[str, Any], key: str, kind: type[T], path: str) -> T | None:
    value = obj.get(key)
    return None if value is None else _check(value, kind, path)


def _pages(data: dict[str, Any]) -> list[VideoPage]:
    raw = _opt(data, "pages", list, "pages")
    if not raw:
        # Some old or PGC-redirect videos have no page list: their only part
        # is described by the top-level cid, duration and title.
        return [
            VideoPage(
                cid=_req(data, "cid", int, "cid"),
                page=1,
                part=_req(data, "title", str, "title"),
                duration=_req(data, "duration", int, "duration"),
            )
        ]
    pages = []
    for i, entry in enumerate(raw):
        page = _check(entry, dict, f"pages[{i}]")
        pages.append(
            VideoPage(
                cid=_req(page, "cid", int, f"pages[{i}].cid"),
                page=_req(page, "page", int, f"pages[{i}].page"),
                part=_req(page, "part", str, f"pages[{i}].part"),
                duration=_req(page, "duration", int, f"pages[{i}].duration"),
            )
        )
    return pages


def _staff(data: dict[str, Any]) -> list[StaffMember] | None:
    raw = _opt(data, "staff", list, "staff")
    if raw is None:
        return None
    staff = []
    for i, entry in enumerate(raw):
        member = _check(entry, dict, f"staff[{i}]")
        staff.append(
            StaffMember(
                mid=_req(member, "mid", int, f"staff[{i}].mid"),
                title=_req(member, "title", str, f"staff[{i}].title"),
                name=_req(member, "name", str, f"staff[{i}].name"),
            )
        )
    return staff


def parse_view(data: dict[str, Any], *, crawled_at: int) -> VideoItem:
    """Return the video described by ``/x/web-interface/view`` ``data``.

    Times are Unix seconds, durations seconds, counters as the API reports
    them. Responses from before the BV era carry ``"bvid": ""``; the BV id is
    then computed from the aid. ``tags`` is left None: they come from
    ``/x/web-interface/view/detail/tag`` (see ``parse_tags``).
    """
    data = _check(data, dict, "data")
    aid = _req(data, "aid", int, "aid")
    owner = _req(data, "owner", dict, "owner")
    stat = _req(data, "stat", dict, "stat")
    return VideoItem(
        aid=aid,
        bvid=_opt(data, "bvid", str, "bvid") or av2bv(aid),
        title=_req(data, "title", str, "title"),
        desc=_req(data, "desc", str, "desc"),
        pic=_req(data, "pic", str, "pic"),
        owner=Owner(
            mid=_req(owner, "mid", int, "owner.mid"),
            name=_req(owner, "name", str, "owner.name"),
            face=_req(owner, "face", str, "owner.face"),
        ),
        pubdate=_req(data, "pubdate", int, "pubdate"),
        ctime=_req(data, "ctime", int, "ctime"),
        duration=_req(data, "duration", int, "duration"),
        tid=_req(data, "tid", int, "tid"),
        tname=_req(data, "tname", str, "tname"),
        copyright=_req(data, "copyright", int, "copyright"),
        stat=VideoStat(
            view=_req(stat, "view", int, "stat.view"),
            danmaku=_req(stat, "danmaku", int, "stat.danmaku"),
            reply=_req(stat, "reply", int, "stat.reply"),
            favorite=_req(stat, "favorite", int, "stat.favorite"),
            coin=_req(stat, "coin", int, "stat.coin"),
            share=_req(stat, "share", int, "stat.share"),
            like=_req(stat, "like", int, "stat.like"),
        ),
        pages=_pages(data),
        crawled_at=crawled_at,
        videos=_opt(data, "videos", int, "videos"),
        tid_v2=_opt(data, "tid_v2", int, "tid_v2"),
        tname_v2=_opt(data, "tname_v2", str, "tname_v2"),
        state=_opt(data, "state", int, "state"),
        dynamic=_opt(data, "dynamic", str, "dynamic"),
        staff=_staff(data),
    )


def parse_tags(data: list[Any] | None) -> list[VideoTag]:
    """Return the tags in ``/x/web-interface/view/detail/tag`` ``data``.

    ``data`` is a list of ``{tag_id, tag_name, music_id, tag_type, jump_url}``;
    None or an empty list means the video has no tags.
    """
    tags = []
    for i, entry in enumerate(data or ()):
        tag = _check(entry, dict, f"tags[{i}]")
        tags.append(
            VideoTag(
                tag_id=_req(tag, "tag_id", int, f"tags[{i}].tag_id"),
                tag_name=_req(tag, "tag_name", str, f"tags[{i}].tag_name"),
                tag_type=_opt(tag, "tag_type", str, f"tags[{i}].tag_type"),
            )
        )
    return tags


def parse_view_detail(data: dict[str, Any], *, crawled_at: int) -> VideoItem:
    """Return the video in ``/x/web-interface/wbi/view/detail`` ``data``.

    ``data["View"]`` is parsed like ``parse_view`` and ``data["Tags"]`` like
    ``parse_tags``. Without a ``Tags`` key the tags stay None (unknown), which
    is different from an empty list (the video has none).
    """
    data = _check(data, dict, "data")
    item = parse_view(_req(data, "View", dict, "View"), crawled_at=crawled_at)
    if "Tags" not in data:
        return item
    return attrs.evolve(item, tags=parse_tags(_opt(data, "Tags", list, "Tags")))
