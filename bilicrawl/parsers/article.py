"""Article payloads -> ``ArticleItem``, the cards API's items and article lists.

Each function takes the ``data`` object of an envelope the middleware already
checked (``code == 0``). A required field that is missing or of the wrong type
raises ``PayloadError`` naming the field; nothing is made up to fill it. The
body conversion is in ``bilicrawl.parsers.content``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from bilicrawl.items import (
    ArticleCardItem,
    ArticleCategory,
    ArticleItem,
    ArticleList,
    ArticleStats,
    LiveRoomCardItem,
    VideoCardItem,
)
from bilicrawl.parsers.content import Body, from_delta, from_html
from bilicrawl.parsers.payload import PayloadError, check, optional, required
from bilicrawl.parsers.video import parse_owner, video_fields

if TYPE_CHECKING:
    from collections.abc import Callable

CardItem = VideoCardItem | ArticleCardItem | LiveRoomCardItem


class ArticleListPage(NamedTuple):
    """A collection (文集) and its articles, from /x/article/list/web/articles."""

    id: int
    name: str
    cvids: list[int]
    """The articles in the collection's order."""


# A frozen dataclass, not a NamedTuple: a field named count would shadow tuple.count.
@dataclass(frozen=True)
class ArticlesPage:
    """One page of a user's articles, from /x/space/wbi/article."""

    cvids: list[int]
    count: int
    """Articles the user has published in all, for pagination."""


def _category(data: dict[str, Any]) -> ArticleCategory:
    category = required(data, "category", dict, "category")
    return ArticleCategory(
        id=required(category, "id", int, "category.id"),
        parent_id=required(category, "parent_id", int, "category.parent_id"),
        name=required(category, "name", str, "category.name"),
    )


def _stats(data: dict[str, Any]) -> ArticleStats:
    stats = required(data, "stats", dict, "stats")
    return ArticleStats(
        **{
            name: required(stats, name, int, f"stats.{name}")
            for name in (
                "view",
                "favorite",
                "like",
                "dislike",
                "reply",
                "share",
                "coin",
                "dynamic",
            )
        }
    )


def _list(data: dict[str, Any]) -> ArticleList | None:
    listed = optional(data, "list", dict, "list")
    if listed is None:
        return None
    return ArticleList(
        id=required(listed, "id", int, "list.id"),
        name=required(listed, "name", str, "list.name"),
    )


def _strings(data: dict[str, Any], key: str) -> list[str]:
    return [
        check(value, str, f"{key}[{i}]") for i, value in enumerate(required(data, key, list, key))
    ]


def _article_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The fields /x/article/view and a ``cv…`` value of /x/article/cards share."""
    return {
        "cvid": required(data, "id", int, "id"),
        "title": required(data, "title", str, "title"),
        "summary": required(data, "summary", str, "summary"),
        "author": parse_owner(data, "author"),
        "category": _category(data),
        "publish_time": required(data, "publish_time", int, "publish_time"),
        "ctime": required(data, "ctime", int, "ctime"),
        "mtime": required(data, "mtime", int, "mtime"),
        "words": required(data, "words", int, "words"),
        "banner_url": required(data, "banner_url", str, "banner_url"),
        "image_urls": _strings(data, "image_urls"),
        "stats": _stats(data),
        "type": required(data, "type", int, "type"),
        "original": required(data, "original", int, "original"),
        "reprint": required(data, "reprint", int, "reprint"),
        "list": _list(data),
    }


def _body(data: dict[str, Any], kind: int) -> Body:
    content = required(data, "content", str, "content")
    if kind == 0:
        return from_html(content)
    if kind == 3:
        return from_delta(content)
    # Type 2 is a note (笔记), whose body is neither; no other type is known.
    raise PayloadError(f"field 'type' is {kind}: only 0 (HTML) and 3 (Quill delta) are known")


def parse_article(data: dict[str, Any], *, crawled_at: int) -> ArticleItem:
    """Return the article described by ``/x/article/view`` ``data``.

    The body (``content``) is HTML for ``type`` 0 and a JSON Quill delta for
    ``type`` 3; both are stored in one normalised HTML form and as text. A
    null ``tags`` is no tags; an absent ``keywords`` or ``dyn_id_str`` is "".
    """
    data = check(data, dict, "data")
    fields = _article_fields(data)
    body = _body(data, fields["type"])
    tags = optional(data, "tags", list, "tags") or []
    return ArticleItem(
        **fields,
        tags=[
            required(check(tag, dict, f"tags[{i}]"), "name", str, f"tags[{i}].name")
            for i, tag in enumerate(tags)
        ],
        keywords=optional(data, "keywords", str, "keywords") or "",
        dyn_id_str=optional(data, "dyn_id_str", str, "dyn_id_str") or "",
        content_html=body.html,
        content_text=body.text,
        crawled_at=crawled_at,
    )


def parse_article_card(data: dict[str, Any], *, refreshed_at: int) -> ArticleCardItem:
    """Return the article in a ``cv…`` value of ``/x/article/cards`` ``data``.

    It is the /x/article/view shape without the body, keywords, tags and feed id.
    """
    data = check(data, dict, "data")
    return ArticleCardItem(**_article_fields(data), refreshed_at=refreshed_at)


def parse_video_card(data: dict[str, Any], *, refreshed_at: int) -> VideoCardItem:
    """Return the video in an ``av…``/``BV…`` value of ``/x/article/cards`` ``data``."""
    data = check(data, dict, "data")
    return VideoCardItem(
        **video_fields(data),
        state=required(data, "state", int, "state"),
        videos=required(data, "videos", int, "videos"),
        dynamic=required(data, "dynamic", str, "dynamic"),
        refreshed_at=refreshed_at,
    )


def parse_live_card(data: dict[str, Any], *, refreshed_at: int) -> LiveRoomCardItem:
    """Return the live room in an ``lv…`` value of ``/x/article/cards`` ``data``."""
    data = check(data, dict, "data")
    return LiveRoomCardItem(
        room_id=required(data, "room_id", int, "room_id"),
        uid=required(data, "uid", int, "uid"),
        title=required(data, "title", str, "title"),
        live_status=required(data, "live_status", int, "live_status"),
        online=required(data, "online", int, "online"),
        user_cover=required(data, "cover", str, "cover"),
        refreshed_at=refreshed_at,
    )


def parse_cards(data: dict[str, Any], *, refreshed_at: int) -> dict[str, CardItem]:
    """Return the items in ``/x/article/cards`` ``data``, keyed as the answer keys them.

    The answer is keyed by the requested ids; the prefix of each (``av``/``BV``,
    ``cv``, ``lv``, any case) says what its value is. Ids the site does not know
    are simply absent, and a long and a short room id may collapse into one key.
    A key of another kind, or a value that fails, raises ``PayloadError`` naming it.
    """
    data = check(data, dict, "data")
    parsers: dict[str, Callable[..., CardItem]] = {
        "av": parse_video_card, "bv": parse_video_card,
        "cv": parse_article_card, "lv": parse_live_card,
    }  # fmt: skip
    cards: dict[str, CardItem] = {}
    for key, value in data.items():
        parser = parsers.get(key[:2].lower())
        if parser is None:
            raise PayloadError(f"card {key!r} is not an av, BV, cv or lv id")
        try:
            cards[key] = parser(value, refreshed_at=refreshed_at)
        except PayloadError as exc:
            raise PayloadError(f"card {key!r}: {exc}") from None
    return cards


def _cvids(entries: list[Any], path: str) -> list[int]:
    return [
        required(check(entry, dict, f"{path}[{i}]"), "id", int, f"{path}[{i}].id")
        for i, entry in enumerate(entries)
    ]


def parse_article_list(data: dict[str, Any]) -> ArticleListPage:
    """Return the collection in ``/x/article/list/web/articles`` ``data``."""
    data = check(data, dict, "data")
    listed = required(data, "list", dict, "list")
    return ArticleListPage(
        id=required(listed, "id", int, "list.id"),
        name=required(listed, "name", str, "list.name"),
        cvids=_cvids(optional(data, "articles", list, "articles") or [], "articles"),
    )


def parse_space_articles(data: dict[str, Any]) -> ArticlesPage:
    """Return the cvids and total count in ``/x/space/wbi/article`` ``data``.

    ``articles`` is missing or empty past the last page.
    """
    data = check(data, dict, "data")
    return ArticlesPage(
        cvids=_cvids(optional(data, "articles", list, "articles") or [], "articles"),
        count=required(data, "count", int, "count"),
    )
