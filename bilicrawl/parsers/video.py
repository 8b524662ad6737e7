"""Video payloads -> ``VideoItem``.

Each function takes the ``data`` object of an envelope the middleware already
checked (``code == 0``). A required field that is missing or of the wrong type
raises ``PayloadError`` naming the field; nothing is made up to fill it.
"""

from __future__ import annotations

from typing import Any

import attrs

from bilicrawl.ids import av2bv
from bilicrawl.items import (
    Owner,
    StaffMember,
    VideoItem,
    VideoPage,
    VideoStat,
    VideoStatItem,
    VideoTag,
)
from bilicrawl.parsers.payload import check, optional, required


def _pages(data: dict[str, Any]) -> list[VideoPage]:
    raw = optional(data, "pages", list, "pages")
    if not raw:
        # Some old or PGC-redirect videos have no page list: their only part
        # is described by the top-level cid, duration and title.
        return [
            VideoPage(
                cid=required(data, "cid", int, "cid"),
                page=1,
                part=required(data, "title", str, "title"),
                duration=required(data, "duration", int, "duration"),
            )
        ]
    pages = []
    for i, entry in enumerate(raw):
        page = check(entry, dict, f"pages[{i}]")
        pages.append(
            VideoPage(
                cid=required(page, "cid", int, f"pages[{i}].cid"),
                page=required(page, "page", int, f"pages[{i}].page"),
                part=required(page, "part", str, f"pages[{i}].part"),
                duration=required(page, "duration", int, f"pages[{i}].duration"),
            )
        )
    return pages


def _staff(data: dict[str, Any]) -> list[StaffMember] | None:
    raw = optional(data, "staff", list, "staff")
    if raw is None:
        return None
    staff = []
    for i, entry in enumerate(raw):
        member = check(entry, dict, f"staff[{i}]")
        staff.append(
            StaffMember(
                mid=required(member, "mid", int, f"staff[{i}].mid"),
                title=required(member, "title", str, f"staff[{i}].title"),
                name=required(member, "name", str, f"staff[{i}].name"),
            )
        )
    return staff


def parse_owner(data: dict[str, Any], key: str) -> Owner:
    """Return the user embedded at *key* (a video's ``owner``, an article's ``author``)."""
    owner = required(data, key, dict, key)
    return Owner(
        mid=required(owner, "mid", int, f"{key}.mid"),
        name=required(owner, "name", str, f"{key}.name"),
        face=required(owner, "face", str, f"{key}.face"),
    )


def video_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Return the fields every answer describing a video has (view, cards), by item field.

    Responses from before the BV era carry ``"bvid": ""``; the BV id is then
    computed from the aid.
    """
    aid = required(data, "aid", int, "aid")
    stat = required(data, "stat", dict, "stat")
    return {
        "aid": aid,
        "bvid": optional(data, "bvid", str, "bvid") or av2bv(aid),
        "title": required(data, "title", str, "title"),
        "desc": required(data, "desc", str, "desc"),
        "pic": required(data, "pic", str, "pic"),
        "owner": parse_owner(data, "owner"),
        "pubdate": required(data, "pubdate", int, "pubdate"),
        "ctime": required(data, "ctime", int, "ctime"),
        "duration": required(data, "duration", int, "duration"),
        "tid": required(data, "tid", int, "tid"),
        "tname": required(data, "tname", str, "tname"),
        "copyright": required(data, "copyright", int, "copyright"),
        "stat": VideoStat(
            **{
                name: required(stat, name, int, f"stat.{name}")
                for name in ("view", "danmaku", "reply", "favorite", "coin", "share", "like")
            }
        ),
    }


def parse_view(data: dict[str, Any], *, crawled_at: int) -> VideoItem:
    """Return the video described by ``/x/web-interface/view`` ``data``.

    Times are Unix seconds, durations seconds, counters as the API reports
    them. ``tags`` is left None: they come from
    ``/x/web-interface/view/detail/tag`` (see ``parse_tags``).
    """
    data = check(data, dict, "data")
    return VideoItem(
        **video_fields(data),
        pages=_pages(data),
        crawled_at=crawled_at,
        videos=optional(data, "videos", int, "videos"),
        tid_v2=optional(data, "tid_v2", int, "tid_v2"),
        tname_v2=optional(data, "tname_v2", str, "tname_v2"),
        state=optional(data, "state", int, "state"),
        dynamic=optional(data, "dynamic", str, "dynamic"),
        staff=_staff(data),
    )


def parse_tags(data: list[Any] | None) -> list[VideoTag]:
    """Return the tags in ``/x/web-interface/view/detail/tag`` ``data``.

    ``data`` is a list of ``{tag_id, tag_name, music_id, tag_type, jump_url}``;
    None or an empty list means the video has no tags.
    """
    tags = []
    for i, entry in enumerate(data or ()):
        tag = check(entry, dict, f"tags[{i}]")
        tags.append(
            VideoTag(
                tag_id=required(tag, "tag_id", int, f"tags[{i}].tag_id"),
                tag_name=required(tag, "tag_name", str, f"tags[{i}].tag_name"),
                tag_type=optional(tag, "tag_type", str, f"tags[{i}].tag_type"),
            )
        )
    return tags


def parse_view_detail(data: dict[str, Any], *, crawled_at: int) -> VideoItem:
    """Return the video in ``/x/web-interface/wbi/view/detail`` ``data``.

    ``data["View"]`` is parsed like ``parse_view`` and ``data["Tags"]`` like
    ``parse_tags``. Without a ``Tags`` key the tags stay None (unknown), which
    is different from an empty list (the video has none).
    """
    data = check(data, dict, "data")
    item = parse_view(required(data, "View", dict, "View"), crawled_at=crawled_at)
    if "Tags" not in data:
        return item
    return attrs.evolve(item, tags=parse_tags(optional(data, "Tags", list, "Tags")))


def video_stat_snapshot(video: VideoItem) -> VideoStatItem:
    """Return the counters of a crawled video as a snapshot of its time series."""
    return VideoStatItem(aid=video.aid, crawled_at=video.crawled_at, stat=attrs.evolve(video.stat))
