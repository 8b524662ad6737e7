"""Typed items, one class per stored entity.

Each item class declares the MongoDB collection it is stored in and its natural
key (the fields that identify one document); storage upserts by that key, so a
re-crawl updates documents and never duplicates them. Pipelines and exporters
see items only through ``ItemAdapter``. Times are Unix seconds unless a field
says otherwise.
"""

from __future__ import annotations

from typing import ClassVar

import attrs


@attrs.define(kw_only=True)
class Owner:
    """The uploader of a video, as embedded in the video document."""

    mid: int
    """User id of the uploader."""
    name: str
    """Display name at crawl time."""
    face: str
    """Avatar URL."""


@attrs.define(kw_only=True)
class StaffMember:
    """One credited member of a joint upload (``staff`` in the view API)."""

    mid: int
    """User id."""
    title: str
    """Role, e.g. "UP主" for the owner or "曲绘" for the illustrator."""
    name: str
    """Display name at crawl time."""


@attrs.define(kw_only=True)
class VideoStat:
    """Counters of a video at crawl time, as returned by /x/web-interface/view."""

    view: int
    danmaku: int
    reply: int
    favorite: int
    coin: int
    share: int
    like: int


@attrs.define(kw_only=True)
class VideoPage:
    """One part (分P) of a video."""

    cid: int
    """Content id of the part: the key of its streams and danmaku."""
    page: int
    """1-based part number."""
    part: str
    """Part title."""
    duration: int
    """Length in seconds."""


@attrs.define(kw_only=True)
class VideoTag:
    """A tag attached to a video (/x/web-interface/view/detail/tag)."""

    tag_id: int
    tag_name: str
    tag_type: str | None = None
    """"old_channel" for an ordinary tag, "topic" or "bgm"."""


@attrs.define(kw_only=True)
class VideoItem:
    """A video (稿件) with its parts, counters and tags."""

    collection: ClassVar[str] = "videos"
    natural_key: ClassVar[tuple[str, ...]] = ("aid",)

    aid: int
    """The av number; above 2**30 for recent uploads, up to 2**51."""
    bvid: str
    """The BV id, 12 characters."""
    title: str
    desc: str
    """Description as plain text."""
    pic: str
    """Cover image URL."""
    owner: Owner
    pubdate: int
    """Publication time."""
    ctime: int
    """Submission time."""
    duration: int
    """Total length of all parts, in seconds."""
    tid: int
    """Legacy zone (分区) id."""
    tname: str
    """Legacy zone name."""
    copyright: int
    """1 original, 2 repost."""
    stat: VideoStat
    pages: list[VideoPage]
    crawled_at: int
    """When bilicrawl fetched the video."""
    videos: int | None = None
    """Number of parts as reported by the API."""
    tid_v2: int | None = None
    """Zone id in the 2025 zone scheme."""
    tname_v2: str | None = None
    state: int | None = None
    """0 when the video is public."""
    dynamic: str | None = None
    """Text of the accompanying feed post."""
    staff: list[StaffMember] | None = None
    """Credited members of a joint upload, or None for a single uploader."""
    tags: list[VideoTag] | None = None
    """Tags, or None when they could not be fetched."""


ITEM_CLASSES: tuple[type, ...] = (VideoItem,)
"""Every stored item class; storage creates a collection and index for each."""
