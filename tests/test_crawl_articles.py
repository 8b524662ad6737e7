"""End-to-end: the real ``article`` (and cards) and ``live`` spiders against the fake API."""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from bilicrawl.spiders.article import ArticleSpider
from bilicrawl.spiders.live import LiveSpider
from bilicrawl.spiders.video import VideoSpider
from tests.fakeapi import articles, live, videos
from tests.helpers.store import stored_documents
from tests.utils import run_crawl

ARTICLE_FIELDS = {
    "cvid", "title", "summary", "author", "category", "tags", "keywords", "publish_time",
    "ctime", "mtime", "words", "banner_url", "image_urls", "stats", "type", "original",
    "reprint", "list", "dyn_id_str", "content_html", "content_text", "crawled_at",
}  # fmt: skip
STATS = ("view", "favorite", "like", "dislike", "reply", "share", "coin", "dynamic")
BEIJING = timezone(timedelta(hours=8))


def expected_article(cvid: int) -> dict[str, Any]:
    """The fields of a correct article document that the fake's answer gives directly."""
    view = articles.view(cvid)
    listed = view["list"]
    return {
        **{
            field: view[field]
            for field in (
                "title",
                "summary",
                "publish_time",
                "ctime",
                "mtime",
                "words",
                "banner_url",
                "image_urls",
                "type",
                "original",
                "reprint",
            )
        },
        "cvid": cvid,
        "author": {key: view["author"][key] for key in ("mid", "name", "face")},
        "category": {key: view["category"][key] for key in ("id", "parent_id", "name")},
        "tags": [tag["name"] for tag in view["tags"] or []],
        "keywords": view["keywords"],
        "stats": {key: view["stats"][key] for key in STATS},
        "list": None if listed is None else {"id": listed["id"], "name": listed["name"]},
        "dyn_id_str": view["dyn_id_str"],
        "content_text": "\n".join(articles.article_lines(cvid)),
    }


def expected_room(room_id: int) -> dict[str, Any]:
    info = live.room(room_id)
    started = info["live_time"]
    return {
        "room_id": info["room_id"],
        "short_id": info["short_id"],
        "uid": info["uid"],
        "title": info["title"],
        "description": info["description"],
        "tags": [tag for tag in info["tags"].split(",") if tag],
        "area": {
            "id": info["area_id"],
            "name": info["area_name"],
            "parent_id": info["parent_area_id"],
            "parent_name": info["parent_area_name"],
        },
        "live_status": info["live_status"],
        "live_time": None
        if started.startswith("0000")
        else int(
            datetime.strptime(started, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).timestamp()
        ),
        "online": info["online"],
        "attention": info["attention"],
        "user_cover": info["user_cover"],
        "keyframe": info["keyframe"],
    }


def stored(settings: dict[str, Any], collection: str) -> dict[int, dict[str, Any]]:
    key = {"articles": "cvid", "videos": "aid", "live_rooms": "room_id"}[collection]
    documents = list(stored_documents(settings["SQLITE_PATH"], collection))
    counts = Counter(document[key] for document in documents)
    assert not counts or max(counts.values()) == 1
    return {document[key]: document for document in documents}


@pytest.fixture
def settings(crawl_settings: dict[str, Any], fakeapi: Any) -> dict[str, Any]:
    fakeapi.reset()
    return {**crawl_settings, "BILI_API_URL": fakeapi.url, "BILI_LIVE_API_URL": fakeapi.url}


@deferred_f_from_coro_f
async def test_articles_by_id_are_stored_with_their_text(settings: dict[str, Any]) -> None:
    cvids = [*articles.article_cvids()[:40], articles.TYPE3_ARTICLE]
    text = ",".join(f"cv{cvid}" for cvid in cvids[1:])
    url = f"https://www.bilibili.com/read/cv{cvids[0]}?from=search"
    result = await run_crawl(ArticleSpider, settings, cvids=f"{text},{url},cvx,404,403")
    documents = stored(settings, "articles")
    assert set(documents) == set(cvids)
    assert {document["type"] for document in documents.values()} == {0, 3}
    for cvid, document in documents.items():
        assert set(document) == ARTICLE_FIELDS
        html = document.pop("content_html")
        assert html.startswith("<") and "data-src" not in html
        del document["crawled_at"]
        assert document == expected_article(cvid)
    stats = result.stats
    assert stats["bilicrawl/input/bad"] == 1
    assert (stats["bilicrawl/api_code/-404"], stats["bilicrawl/api_code/-403"]) == (1, 1)


@deferred_f_from_coro_f
async def test_articles_of_users_and_collections_are_each_stored_once(
    settings: dict[str, Any], fakeapi: Any
) -> None:
    author, nobody, collection = articles.AUTHOR, articles.NO_ARTICLES, articles.LIST_ID
    result = await run_crawl(
        ArticleSpider, settings, mids=f"{author},{nobody}", lists=f"rl{collection}"
    )
    expected = set(articles.articles_of(author)) | set(articles.list_articles(collection))
    assert set(stored(settings, "articles")) == expected
    views = Counter(
        entry["query"]["id"] for entry in fakeapi.log() if entry["path"] == "/x/article/view"
    )
    assert max(views.values()) == 1, "an article listed twice is fetched once"
    assert result.stats["bilicrawl/article/listed"] == len(expected)
    pages = [
        entry["query"]["pn"]
        for entry in fakeapi.log()
        if entry["path"] == "/x/space/wbi/article" and entry["query"]["mid"] == str(author)
    ]
    assert sorted(pages) == ["1", "2"]


def tamper(settings: dict[str, Any], collection: str, key: str, value: int, path: str) -> None:
    """Set a stored counter to -1, as if the crawl were old: a refresh must overwrite it."""
    with closing(sqlite3.connect(settings["SQLITE_PATH"])) as connection, connection:
        query = f"UPDATE {collection} SET doc = json_set(doc, ?, -1) WHERE {key} = ?"  # noqa: S608
        connection.execute(query, (path, value))


@deferred_f_from_coro_f
async def test_cards_refresh_counters_and_keep_what_cards_lack(settings: dict[str, Any]) -> None:
    aid = 170001
    cvid = articles.TYPE3_ARTICLE
    room = live.LIVE_ROOM
    await run_crawl(VideoSpider, settings, aids=str(aid))
    await run_crawl(ArticleSpider, settings, cvids=str(cvid))
    await run_crawl(LiveSpider, settings, rooms=str(room))
    full = {
        "videos": stored(settings, "videos")[aid],
        "articles": stored(settings, "articles")[cvid],
        "live_rooms": stored(settings, "live_rooms")[room],
    }
    tamper(settings, "videos", "aid", aid, "$.stat.view")
    tamper(settings, "articles", "cvid", cvid, "$.stats.view")
    tamper(settings, "live_rooms", "room_id", room, "$.online")

    result = await run_crawl(ArticleSpider, settings, cards=f"av{aid},cv{cvid},lv{room},cv404")

    video = stored(settings, "videos")[aid]
    assert video["stat"]["view"] == videos.video_view(aid)["stat"]["view"]
    assert (video["pages"], video["tags"]) == (full["videos"]["pages"], full["videos"]["tags"])
    article = stored(settings, "articles")[cvid]
    assert article["stats"]["view"] == articles.view(cvid)["stats"]["view"]
    for kept in ("content_html", "content_text", "tags", "keywords", "crawled_at"):
        assert article[kept] == full["articles"][kept]
    room_document = stored(settings, "live_rooms")[room]
    assert room_document["online"] == live.room(room)["online"]
    assert room_document["description"] == full["live_rooms"]["description"]
    for document in (video, article, room_document):
        assert isinstance(document["refreshed_at"], int)
    assert result.stats["bilicrawl/cards/left_out"] == 1


@deferred_f_from_coro_f
async def test_a_rejected_batch_of_cards_is_split_not_lost(
    settings: dict[str, Any], fakeapi: Any
) -> None:
    cvids = articles.article_cvids()[:45]
    result = await run_crawl(
        ArticleSpider,
        {**settings, "BILI_CARDS_BATCH": 45},  # above the fake API's limit of 30
        cards=",".join(f"cv{cvid}" for cvid in cvids),
    )
    documents = stored(settings, "articles")
    assert set(documents) == set(cvids)
    assert all("content_html" not in document for document in documents.values())
    assert result.stats["bilicrawl/cards/split"] == 1
    assert "bilicrawl/cards/left_out" not in result.stats
    cards_requests = [entry for entry in fakeapi.log() if entry["path"] == articles.CARDS]
    assert next(entry["code"] for entry in cards_requests) == -400


@deferred_f_from_coro_f
async def test_live_rooms_by_id_short_id_url_and_user(settings: dict[str, Any]) -> None:
    short, long = live.SHORT_ROOM
    result = await run_crawl(
        LiveSpider,
        settings,
        rooms=f"{live.LIVE_ROOM},{short},lv{long},https://live.bilibili.com/{live.OFFLINE_ROOM},"
        "999999999,abc",
        mids=f"{live.ROOM_OWNER},{live.NO_ROOM_MID}",
    )
    documents = stored(settings, "live_rooms")
    assert set(documents) == {live.LIVE_ROOM, long, live.OFFLINE_ROOM}
    for room_id, document in documents.items():
        assert isinstance(document.pop("crawled_at"), int)
        assert document == expected_room(room_id)
    assert documents[long]["short_id"] == short
    stats = result.stats
    assert stats["bilicrawl/api_code/1"] == 1
    assert stats["bilicrawl/input/bad"] == 1
    assert stats["bilicrawl/live/no_room"] == 1
    assert stats["bilicrawl/live/same_room"] == 1, "the short id named a room stored already"


@deferred_f_from_coro_f
async def test_a_resumed_crawl_still_fetches_what_only_a_card_stored(
    settings: dict[str, Any],
) -> None:
    aid = 170002
    await run_crawl(ArticleSpider, settings, cards=f"av{aid}")
    assert "pages" not in stored(settings, "videos")[aid]
    result = await run_crawl(VideoSpider, settings, aids=str(aid), resume="true")
    assert "bilicrawl/input/already_stored" not in result.stats
    assert stored(settings, "videos")[aid]["pages"], "the full video filled in the card"
