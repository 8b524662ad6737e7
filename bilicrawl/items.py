"""Typed items, one class per stored entity.

Every stored item derives from :class:`StoredItem`, which declares where and
how its documents are stored (collection, natural key, partial, rows, records,
user-id and personal fields) and registers the class in ``ITEM_CLASSES``.
Storage upserts by the natural key, so a re-crawl updates documents and never
duplicates them. Pipelines and exporters see items only through
``ItemAdapter``. Times are Unix seconds unless a field says otherwise.
"""

from __future__ import annotations

import builtins  # noqa: TC003 (ItemAdapter resolves the annotations at run time)
from typing import Any, ClassVar

import attrs

_STORED: dict[str, type] = {}
"""Every stored item class by name, in the order defined (filled by ``StoredItem``)."""


class StoredItem:
    """The base of every stored item: where and how its documents are stored.

    A subclass that names its ``collection`` is registered in ``ITEM_CLASSES``
    when it is defined, so storage, validation and pseudonymisation know every
    class without a list kept by hand.
    """

    __slots__ = ()

    collection: ClassVar[str]
    """The MongoDB collection (SQLite table) its documents go to."""
    natural_key: ClassVar[tuple[str, ...]]
    """The fields that identify one document: storage upserts by them."""
    partial: ClassVar[bool] = False
    """Its fields are merged into the stored document instead of replacing it."""
    describes: ClassVar[tuple[str, ...]] = ()
    """For a record, the collections whose stored rows it counts: written after them."""
    rows_field: ClassVar[str | None] = None
    """For a batch item, the field whose rows are its documents."""
    batch_fields: ClassVar[tuple[str, ...]] = ()
    """A batch item's fields that describe the batch and are not copied into its rows."""
    row_fields: ClassVar[dict[str, type]] = {}
    """A batch item's row fields and their types (the SQLite store's columns), in order."""
    user_id_fields: ClassVar[tuple[str, ...]] = ()
    """Where it holds user ids (``a.b`` nested, ``a[].b`` in every element): hashed by
    ``BILI_PSEUDONYMIZE``."""
    personal_fields: ClassVar[tuple[str, ...]] = ()
    """Where it holds personal data: left out by ``BILI_PSEUDONYMIZE``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "collection" in cls.__dict__:
            # attrs builds a new (slotted) class from each decorated one: the last wins.
            _STORED[cls.__qualname__] = cls


@attrs.define(kw_only=True)
class Owner:
    """A user as embedded in another document: a video's uploader, an article's author."""

    mid: int
    """User id."""
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
class VideoItem(StoredItem):
    """A video (稿件) with its parts, counters and tags."""

    collection: ClassVar[str] = "videos"
    natural_key: ClassVar[tuple[str, ...]] = ("aid",)
    user_id_fields: ClassVar[tuple[str, ...]] = ("owner.mid", "staff[].mid")
    personal_fields: ClassVar[tuple[str, ...]] = ("owner.name", "owner.face", "staff[].name")

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


@attrs.define(kw_only=True)
class VideoStatItem(StoredItem):
    """A video's counters when it was crawled: one per crawl, so re-crawls make a time series.

    Keyed by the video and the crawl time, which is the order a series is read in.
    """

    collection: ClassVar[str] = "video_stats"
    natural_key: ClassVar[tuple[str, ...]] = ("aid", "crawled_at")

    aid: int
    crawled_at: int
    """When bilicrawl fetched the video (its document's ``crawled_at``)."""
    stat: VideoStat


@attrs.define(kw_only=True)
class Official:
    """Official verification (认证) of a user, as in ``/x/space/wbi/acc/info``."""

    role: int
    """0 none; 1-7 the kind of person or organisation verified."""
    title: str
    """What the verification says, e.g. "bilibili创始人（站长）"."""
    desc: str
    type: int
    """-1 none, 0 a person, 1 an organisation."""


@attrs.define(kw_only=True)
class OfficialVerify:
    """The part of a user's verification that follower and following lists give."""

    type: int
    """-1 none, 0 a person, 1 an organisation."""
    desc: str


@attrs.define(kw_only=True)
class Vip:
    """A user's membership (大会员)."""

    type: int
    """0 none, 1 monthly, 2 yearly."""
    status: int
    """1 active."""
    label: str
    """The label shown, e.g. "年度大会员"; "" for none."""


@attrs.define(kw_only=True)
class LiveRoom:
    """The live room of a user, as their profile shows it."""

    room_id: int
    live_status: int
    """0 off air, 1 live."""
    title: str
    url: str
    cover: str


@attrs.define(kw_only=True)
class UserItem(StoredItem):
    """A user's profile and counters, from /x/space/wbi/acc/info and /x/web-interface/card."""

    collection: ClassVar[str] = "users"
    natural_key: ClassVar[tuple[str, ...]] = ("mid",)
    user_id_fields: ClassVar[tuple[str, ...]] = ("mid",)
    personal_fields: ClassVar[tuple[str, ...]] = ("name", "face", "sign", "birthday")

    mid: int
    """User id."""
    name: str
    sex: str
    """"男", "女" or "保密" (not given)."""
    face: str
    """Avatar URL."""
    sign: str
    """The profile's signature line."""
    level: int
    """0-6."""
    birthday: str
    """"MM-DD" as given, "" when hidden."""
    silence: int
    """1 when the account is banned."""
    is_senior_member: int
    """1 for a hardcore (硬核) member."""
    official: Official
    vip: Vip
    live_room: LiveRoom | None
    """None when the user has no live room."""
    follower: int
    following: int
    archive_count: int
    """Videos uploaded."""
    article_count: int
    """Articles published."""
    likes: int
    """Likes received, all uploads together."""
    archive_view: int | None
    """Views of all videos; None unless the crawl is logged in (/x/space/upstat)."""
    article_view: int | None
    """Views of all articles; None unless the crawl is logged in."""
    crawled_at: int
    """When bilicrawl fetched the profile; absent from users known only from lists."""


@attrs.define(kw_only=True)
class UserStatItem(StoredItem):
    """A user's counters when the profile was crawled: one per crawl, a time series."""

    collection: ClassVar[str] = "user_stats"
    natural_key: ClassVar[tuple[str, ...]] = ("mid", "crawled_at")
    user_id_fields: ClassVar[tuple[str, ...]] = ("mid",)

    mid: int
    crawled_at: int
    """When bilicrawl fetched the profile (its document's ``crawled_at``)."""
    follower: int
    following: int
    archive_count: int
    article_count: int
    likes: int
    archive_view: int | None
    """None unless the crawl is logged in."""
    article_view: int | None
    """None unless the crawl is logged in."""


@attrs.define(kw_only=True)
class UserStubItem(StoredItem):
    """What a follower or following list says about a user: merged into ``users``."""

    collection: ClassVar[str] = "users"
    natural_key: ClassVar[tuple[str, ...]] = ("mid",)
    partial: ClassVar[bool] = True
    user_id_fields: ClassVar[tuple[str, ...]] = ("mid",)
    personal_fields: ClassVar[tuple[str, ...]] = ("name", "face", "sign")

    mid: int
    name: str
    face: str
    sign: str
    official: OfficialVerify
    vip: Vip


@attrs.define(kw_only=True)
class RelationItem(StoredItem):
    """One edge of the follower graph: ``src_mid`` follows ``dst_mid``."""

    collection: ClassVar[str] = "relations"
    natural_key: ClassVar[tuple[str, ...]] = ("src_mid", "dst_mid")
    user_id_fields: ClassVar[tuple[str, ...]] = ("src_mid", "dst_mid")

    src_mid: int
    dst_mid: int
    mtime: int
    """When the follow happened, as the list gives it (refreshed on a mutual follow)."""
    crawled_at: int


@attrs.define(kw_only=True)
class RelationListItem(StoredItem):
    """How much of one user's follower or following list a crawl got."""

    collection: ClassVar[str] = "relation_lists"
    natural_key: ClassVar[tuple[str, ...]] = ("mid", "direction")
    describes: ClassVar[tuple[str, ...]] = ("relations",)
    """A record of stored edges: written only once they are committed."""
    user_id_fields: ClassVar[tuple[str, ...]] = ("mid",)

    mid: int
    direction: str
    """"followers" (who follows ``mid``) or "followings" (whom ``mid`` follows)."""
    total: int | None
    """The list's length as the site reports it; None if it could not be read."""
    seen: int
    """Distinct users stored from the list in this crawl."""
    status: str
    """"complete"; "capped" (the site's or BILI_*_CAP's limit stopped it); "hidden" (the
    user hides it); "login_required"; "failed" (a page could not be fetched)."""
    crawled_at: int


@attrs.define(kw_only=True)
class VideoCardItem(StoredItem):
    """What the cards API (/x/article/cards) says of a video: merged into ``videos``.

    A card has no parts, tags or staff: merged, it refreshes a stored video's
    counters and never erases those.
    """

    collection: ClassVar[str] = "videos"
    natural_key: ClassVar[tuple[str, ...]] = ("aid",)
    partial: ClassVar[bool] = True
    user_id_fields: ClassVar[tuple[str, ...]] = ("owner.mid",)
    personal_fields: ClassVar[tuple[str, ...]] = ("owner.name", "owner.face")

    aid: int
    bvid: str
    title: str
    desc: str
    pic: str
    owner: Owner
    pubdate: int
    ctime: int
    duration: int
    tid: int
    tname: str
    copyright: int
    state: int
    videos: int
    dynamic: str
    stat: VideoStat
    refreshed_at: int
    """When a cards crawl last refreshed the document."""


@attrs.define(kw_only=True)
class ArticleCategory:
    """A category (分区) of articles."""

    id: int
    parent_id: int
    """0 for a top-level category."""
    name: str


@attrs.define(kw_only=True)
class ArticleStats:
    """Counters of an article at crawl time."""

    view: int
    favorite: int
    like: int
    dislike: int
    reply: int
    share: int
    coin: int
    dynamic: int


@attrs.define(kw_only=True)
class ArticleList:
    """The collection (文集) an article belongs to."""

    id: int
    name: str


@attrs.define(kw_only=True)
class ArticleFields:
    """What every answer describing an article gives: the view and the cards API."""

    cvid: int
    """The article id, the number of ``cv…``."""
    title: str
    summary: str
    """The plain-text lead the site shows in lists."""
    author: Owner
    category: ArticleCategory
    publish_time: int
    ctime: int
    mtime: int
    words: int
    banner_url: str
    # builtins.list: the field "list" below would shadow the name in these annotations.
    image_urls: builtins.list[str]
    stats: ArticleStats
    type: int
    """0: the body was HTML; 3: the body was a Quill delta (both are stored as HTML)."""
    original: int
    """1 original, 0 not."""
    reprint: int
    list: ArticleList | None
    """The collection (文集) the article is in, or None."""


@attrs.define(kw_only=True)
class ArticleItem(ArticleFields, StoredItem):
    """An article (专栏) with its body, from /x/article/view."""

    collection: ClassVar[str] = "articles"
    natural_key: ClassVar[tuple[str, ...]] = ("cvid",)
    user_id_fields: ClassVar[tuple[str, ...]] = ("author.mid",)
    personal_fields: ClassVar[tuple[str, ...]] = ("author.name", "author.face")

    tags: builtins.list[str]
    """Tag names."""
    keywords: str
    """Comma-separated keywords, as given."""
    dyn_id_str: str
    """The id of the matching feed post (opus), "" when none."""
    content_html: str
    """The body in one normalised HTML form: paragraphs, headings, bold and italic, lists,
    quotes, images as ``<figure><img src>``, cards as ``<figure class="card">`` links to
    what they name, cut-offs as ``<hr>``."""
    content_text: str
    """The body as plain text: one paragraph per line, no images or cards."""
    crawled_at: int


@attrs.define(kw_only=True)
class ArticleCardItem(ArticleFields, StoredItem):
    """What the cards API says of an article: merged into ``articles``, never erasing the body."""

    collection: ClassVar[str] = "articles"
    natural_key: ClassVar[tuple[str, ...]] = ("cvid",)
    partial: ClassVar[bool] = True
    user_id_fields: ClassVar[tuple[str, ...]] = ("author.mid",)
    personal_fields: ClassVar[tuple[str, ...]] = ("author.name", "author.face")

    refreshed_at: int
    """When a cards crawl last refreshed the document."""


@attrs.define(kw_only=True)
class LiveArea:
    """The area (分区) a live room streams in."""

    id: int
    name: str
    parent_id: int
    parent_name: str


@attrs.define(kw_only=True)
class LiveRoomItem(StoredItem):
    """A live room, from api.live.bilibili.com /room/v1/Room/get_info."""

    collection: ClassVar[str] = "live_rooms"
    natural_key: ClassVar[tuple[str, ...]] = ("room_id",)
    user_id_fields: ClassVar[tuple[str, ...]] = ("uid",)

    room_id: int
    """The long room id, whatever id the crawl was given."""
    short_id: int
    """The short (vanity) id, 0 when the room has none."""
    uid: int
    """The streamer's user id."""
    title: str
    description: str
    tags: list[str]
    area: LiveArea
    live_status: int
    """0 off air, 1 live, 2 rotation (replays)."""
    live_time: int | None
    """When the current broadcast started (the site gives Beijing time), None off air."""
    online: int
    attention: int
    """Followers of the room."""
    user_cover: str
    keyframe: str
    crawled_at: int


@attrs.define(kw_only=True)
class LiveRoomCardItem(StoredItem):
    """What the cards API says of a live room: merged into ``live_rooms``."""

    collection: ClassVar[str] = "live_rooms"
    natural_key: ClassVar[tuple[str, ...]] = ("room_id",)
    partial: ClassVar[bool] = True
    user_id_fields: ClassVar[tuple[str, ...]] = ("uid",)

    room_id: int
    uid: int
    title: str
    live_status: int
    online: int
    user_cover: str
    refreshed_at: int
    """When a cards crawl last refreshed the document."""


@attrs.define(kw_only=True)
class DanmakuBatchItem(StoredItem):
    """The danmaku of one answer (a segment, an XML pool, a history day): one item, many rows.

    Storage writes one ``danmaku`` document per row, keyed by ``dmid``: the row's
    fields plus the batch's ``cid``, ``aid`` and ``crawled_at``. An item per
    danmaku would cost Scrapy about 50 µs each (docs/danmaku.md). Rows are
    partial documents: sources overlap (segments, XML, history), and one that
    lacks a field (the XML has no ``attr``) leaves it out, so it never erases
    what another stored. The parsers build the rows from typed fields, so only
    the batch's own fields are validated.
    """

    collection: ClassVar[str] = "danmaku"
    natural_key: ClassVar[tuple[str, ...]] = ("dmid",)
    partial: ClassVar[bool] = True
    rows_field: ClassVar[str] = "rows"
    batch_fields: ClassVar[tuple[str, ...]] = ("source",)
    row_fields: ClassVar[dict[str, type]] = {
        "dmid": int, "cid": int, "aid": int, "progress_ms": int, "mode": int, "fontsize": int,
        "color": int, "ctime": int, "pool": int, "mid_hash": str, "content": str, "weight": int,
        "attr": int, "crawled_at": int,
    }  # fmt: skip
    """Every field of a stored row (the SQLite store's columns), in order."""
    user_id_fields: ClassVar[tuple[str, ...]] = ("rows[].mid_hash",)

    cid: int
    """The part (分P) the danmaku belong to."""
    aid: int | None
    """The video, when the crawl knows it (else left out of the rows, not stored as null)."""
    source: str
    """"seg", "xml" or "history": where the rows came from (not stored: sources overlap)."""
    rows: builtins.list[dict[str, Any]]
    """One dict per danmaku: ``dmid``, ``progress_ms``, ``mode``, ``fontsize``, ``color``,
    ``ctime``, ``pool``, ``mid_hash`` (CRC32 of the sender's mid, hex), ``content``,
    ``weight`` and ``attr`` where the source gives them (bilicrawl.parsers.danmaku)."""
    crawled_at: int


@attrs.define(kw_only=True)
class LiveDanmakuBatchItem(StoredItem):
    """The recent danmaku of a live room (/xlive/web-room/v1/dM/gethistory): one per row.

    Rows are keyed by ``(room_id, id_str)``: ``id_str`` is the id the site gives
    each danmaku, and every other field can repeat (one sender, one text, one
    second); docs/danmaku.md. A re-crawl replaces a row with the same values.
    """

    collection: ClassVar[str] = "live_danmaku"
    natural_key: ClassVar[tuple[str, ...]] = ("room_id", "id_str")
    rows_field: ClassVar[str] = "rows"
    row_fields: ClassVar[dict[str, type]] = {
        "room_id": int, "id_str": str, "uid": int, "nickname": str, "text": str,
        "timeline": int, "dm_type": int, "user_level": int, "medal": dict, "crawled_at": int,
    }  # fmt: skip
    """Every field of a stored row (the SQLite store's columns), in order."""
    user_id_fields: ClassVar[tuple[str, ...]] = ("rows[].uid", "rows[].medal.anchor_uid")
    personal_fields: ClassVar[tuple[str, ...]] = ("rows[].nickname",)

    room_id: int
    """The long room id."""
    rows: builtins.list[dict[str, Any]]
    """One dict per danmaku: ``room_id``, ``id_str``, ``uid``, ``nickname``, ``text``,
    ``timeline`` (Unix seconds), ``dm_type``, ``user_level``, ``medal``
    (bilicrawl.parsers.danmaku.parse_live_history)."""
    crawled_at: int


@attrs.define(kw_only=True)
class DanmakuStored:
    """Distinct danmaku each source gave for a part in one crawl."""

    seg: int
    xml: int
    history: int


@attrs.define(kw_only=True)
class DanmakuPartItem(StoredItem):
    """How complete the danmaku of one part are, after a crawl: one record per part."""

    collection: ClassVar[str] = "danmaku_parts"
    natural_key: ClassVar[tuple[str, ...]] = ("cid",)
    describes: ClassVar[tuple[str, ...]] = ("danmaku",)
    """A record of stored rows: written only once they are committed, so ``resume`` trusts it."""

    cid: int
    aid: int | None
    duration: int | None
    """The part's length in seconds, when the crawl knows it."""
    stat_danmaku: int | None
    """The video's own danmaku counter (all parts), when the crawl fetched the video."""
    view_count: int | None
    """The ``count`` /x/v2/dm/web/view gives for the part."""
    xml_maxlimit: int | None
    """How many danmaku the XML pool holds at most; None without the XML source."""
    closed: bool
    """The uploader closed the danmaku: nothing is served."""
    segments_expected: int
    segments_fetched: int
    stored: DanmakuStored
    distinct: int
    """Distinct danmaku over every source."""
    crawled_at: int


@attrs.define(kw_only=True)
class DanmakuHistoryDayItem(StoredItem):
    """One history day of a part, fetched: one record per day, so ``resume`` skips it.

    Stored only once the day's danmaku are committed, so a record means they are stored too.
    """

    collection: ClassVar[str] = "danmaku_history_days"
    natural_key: ClassVar[tuple[str, ...]] = ("cid", "date")
    describes: ClassVar[tuple[str, ...]] = ("danmaku",)

    cid: int
    aid: int | None
    date: str
    """The day (YYYY-MM-DD, Beijing time) whose pool was fetched."""
    rows: int
    """Danmaku the day's answer held (0 is a day fetched that gave none)."""
    crawled_at: int


ITEM_CLASSES: tuple[type[StoredItem], ...] = tuple(_STORED.values())
"""Every stored item class; storage creates a collection and index for each."""
