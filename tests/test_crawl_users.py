"""End-to-end: the real ``user`` spider against the fake Bilibili API."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from bilicrawl.spiders.relation import RelationSpider
from bilicrawl.spiders.user import UserSpider
from tests.fakeapi import data, graph, users, videos
from tests.helpers.store import stored_documents
from tests.utils import run_crawl

USER_FIELDS = {
    "mid", "name", "sex", "face", "sign", "level", "birthday", "silence", "is_senior_member",
    "official", "vip", "live_room", "follower", "following", "archive_count", "article_count",
    "likes", "archive_view", "article_view", "crawled_at",
}  # fmt: skip
SESSDATA = "fake-login-cookie"


def expected_user(mid: int, *, logged_in: bool) -> dict[str, Any]:
    """The document a correct crawl stores for *mid* (but ``crawled_at``), from the fake's data."""
    acc, card = users.acc_info(mid), data.user_card(mid)
    room = acc["live_room"]
    upstat = users.upstat(mid) if logged_in else {}
    return {
        **{
            field: acc[field]
            for field in (
                "mid",
                "name",
                "sex",
                "face",
                "sign",
                "level",
                "birthday",
                "silence",
                "is_senior_member",
            )
        },
        "official": {key: acc["official"][key] for key in ("role", "title", "desc", "type")},
        "vip": {
            "type": acc["vip"]["type"],
            "status": acc["vip"]["status"],
            "label": acc["vip"]["label"]["text"],
        },
        "live_room": None
        if not room["roomid"]
        else {
            "room_id": room["roomid"],
            "live_status": room["liveStatus"],
            "title": room["title"],
            "url": room["url"],
            "cover": room["cover"],
        },
        "follower": card["follower"],
        "following": card["card"]["attention"],
        "archive_count": card["archive_count"],
        "article_count": card["article_count"],
        "likes": card["like_num"],
        "archive_view": upstat.get("archive", {}).get("view"),
        "article_view": upstat.get("article", {}).get("view"),
    }


COUNTERS = (
    "follower",
    "following",
    "archive_count",
    "article_count",
    "likes",
    "archive_view",
    "article_view",
)
"""The counters a user's snapshot holds (``user_stats``)."""


def stored(settings: dict[str, Any], collection: str) -> list[dict[str, Any]]:
    return list(stored_documents(settings["SQLITE_PATH"], collection))


def requested(api: Any, path: str) -> list[dict[str, str]]:
    """The queries of the requests the fake API got for *path*."""
    return [entry["query"] for entry in api.log() if entry["path"] == path]


@pytest.fixture
def settings(crawl_settings: dict[str, Any], fakeapi: Any) -> dict[str, Any]:
    fakeapi.reset()
    return {**crawl_settings, "BILI_API_URL": fakeapi.url}


@deferred_f_from_coro_f
async def test_users_are_stored_with_every_field(settings: dict[str, Any], fakeapi: Any) -> None:
    seed, celebrity = graph.SMALL_SEED, graph.CELEBRITY
    space_url = f"https://space.bilibili.com/{graph.HIDES_FOLLOWERS}/video"
    result = await run_crawl(
        UserSpider, settings, mids=f"{seed},UID:{celebrity},abc,404,626,{seed},{space_url}"
    )
    documents = {document["mid"]: document for document in stored(settings, "users")}
    assert set(documents) == {seed, celebrity, graph.HIDES_FOLLOWERS}
    for mid, document in documents.items():
        assert set(document) == USER_FIELDS
        assert isinstance(document["crawled_at"], int)
        assert {k: v for k, v in document.items() if k != "crawled_at"} == expected_user(
            mid, logged_in=False
        )
    # One snapshot of the counters per profile crawled, with the profile's crawl time.
    counters = (*COUNTERS, "mid", "crawled_at")
    assert stored(settings, "user_stats") == [
        {field: documents[mid][field] for field in counters} for mid in sorted(documents)
    ]
    stats = result.stats
    assert stats["bilicrawl/input/bad"] == 1
    assert stats["bilicrawl/input/duplicate"] == 1
    assert stats["bilicrawl/api_code/-404"] == 1
    assert stats["bilicrawl/api_code/-626"] == 1
    assert requested(fakeapi, "/x/space/upstat") == [], "no request spent on anonymous upstat"
    signed = requested(fakeapi, "/x/space/wbi/acc/info")
    assert all({"dm_img_list", "dm_img_inter", "w_rid"} <= set(query) for query in signed)


@deferred_f_from_coro_f
async def test_a_logged_in_crawl_also_reads_upstat(settings: dict[str, Any], fakeapi: Any) -> None:
    mid = graph.MANY_UPLOADS
    await run_crawl(UserSpider, {**settings, "BILI_SESSDATA": SESSDATA}, mids=str(mid))
    [document] = stored(settings, "users")
    del document["crawled_at"]
    assert document == expected_user(mid, logged_in=True)
    assert document["archive_view"] is not None
    assert requested(fakeapi, "/x/space/upstat") == [{"mid": str(mid)}]


@pytest.mark.parametrize("endpoint", ["arc_search", "series"])
@deferred_f_from_coro_f
async def test_uploads_are_stored_once_each(
    settings: dict[str, Any], fakeapi: Any, endpoint: str
) -> None:
    many, none = graph.MANY_UPLOADS, graph.NO_UPLOADS
    result = await run_crawl(
        UserSpider,
        {**settings, "BILI_UPLOADS_ENDPOINT": endpoint},
        mids=f"{many},{none}",
        uploads="true",
    )
    stored_videos = stored(settings, "videos")
    aids = Counter(video["aid"] for video in stored_videos)
    assert set(aids) == set(graph.uploads(many))
    assert max(aids.values()) == 1
    assert {video["owner"]["mid"] for video in stored_videos} == {many}
    for video in stored_videos[:5]:
        assert video["title"] == videos.video_view(video["aid"])["title"]
    assert {user["mid"] for user in stored(settings, "users")} == {many, none}
    assert result.stats["bilicrawl/user/uploads"] == len(graph.uploads(many))
    list_path = {
        "arc_search": "/x/space/wbi/arc/search",
        "series": "/x/series/recArchivesByKeywords",
    }[endpoint]
    pages = Counter(query["mid"] for query in requested(fakeapi, list_path))
    page_size = {"arc_search": 50, "series": 100}[endpoint]
    assert pages == {str(many): -(-len(graph.uploads(many)) // page_size), str(none): 1}


@deferred_f_from_coro_f
async def test_resume_skips_profiles_but_not_users_known_from_lists(
    settings: dict[str, Any], fakeapi: Any
) -> None:
    seed = graph.SMALL_SEED
    await run_crawl(RelationSpider, settings, mids=str(seed), direction="followings")
    listed = [mid for mid, _ in graph.served_list(seed, "followings", logged_in=False)]
    stubs = {document["mid"]: document for document in stored(settings, "users")}
    assert set(stubs) == set(listed)
    assert all("crawled_at" not in document for document in stubs.values())

    first = await run_crawl(UserSpider, settings, mids=f"{seed},{listed[0]}")
    assert first.stats["bilicrawl/input/accepted"] == 2
    fakeapi.reset()
    again = await run_crawl(
        UserSpider, settings, mids=f"{seed},{listed[0]},{listed[1]}", resume="true"
    )
    assert again.stats["bilicrawl/input/already_stored"] == 2
    assert [query["mid"] for query in requested(fakeapi, "/x/space/wbi/acc/info")] == [
        str(listed[1])
    ]
    profiles = {document["mid"]: document for document in stored(settings, "users")}
    merged = profiles[listed[1]]
    assert set(merged) == USER_FIELDS, "the full profile replaced the stub"
    assert "crawled_at" not in profiles[listed[2]], "other stubs are untouched"
