"""End-to-end: the real ``relation`` spider, and pseudonymised crawls, against the fake API."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from typing import Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from bilicrawl.pseudonyms import Pseudonymizer
from bilicrawl.spiders.relation import RelationSpider
from bilicrawl.spiders.user import UserSpider
from tests.fakeapi import graph, users, videos
from tests.helpers.store import stored_documents
from tests.utils import run_crawl

DIRECTIONS = ("followers", "followings")
PSEUDONYM_KEY = "test-pseudonym-key-0123456789"

Edge = tuple[int, int]


def served(mid: int, direction: graph.Direction, *, logged_in: bool = False) -> list[int]:
    return [other for other, _ in graph.served_list(mid, direction, logged_in)]


def full_list(mid: int, direction: graph.Direction) -> list[tuple[int, int]]:
    return graph.followers(mid) if direction == "followers" else graph.followings(mid)


def edges_of(mid: int, direction: graph.Direction, listed: list[int]) -> set[Edge]:
    """The follow edges a list of *mid* shows: m -> mid for followers, mid -> m for followings."""
    if direction == "followers":
        return {(other, mid) for other in listed}
    return {(mid, other) for other in listed}


def expected_list(mid: int, direction: graph.Direction) -> dict[str, Any]:
    """The relation_lists document (without crawled_at) of an anonymous crawl, default caps."""
    total = len(full_list(mid, direction))
    if graph.hides(mid, direction):
        return {"mid": mid, "direction": direction, "total": total, "seen": 0, "status": "hidden"}
    seen = len(served(mid, direction))
    status = "complete" if seen == total else "capped"
    return {"mid": mid, "direction": direction, "total": total, "seen": seen, "status": status}


def stored(settings: dict[str, Any], collection: str) -> list[dict[str, Any]]:
    return list(stored_documents(settings["SQLITE_PATH"], collection))


def stored_edges(settings: dict[str, Any]) -> list[Edge]:
    return [(edge["src_mid"], edge["dst_mid"]) for edge in stored(settings, "relations")]


def stored_lists(settings: dict[str, Any]) -> dict[tuple[int, str], dict[str, Any]]:
    lists = {}
    for document in stored(settings, "relation_lists"):
        assert isinstance(document.pop("crawled_at"), int)
        lists[document["mid"], document["direction"]] = document
    return lists


@pytest.fixture
def settings(crawl_settings: dict[str, Any], fakeapi: Any) -> dict[str, Any]:
    fakeapi.reset()
    return {**crawl_settings, "BILI_API_URL": fakeapi.url}


@deferred_f_from_coro_f
async def test_a_depth_2_crawl_stores_exactly_the_visible_graph(settings: dict[str, Any]) -> None:
    seed = graph.SMALL_SEED
    result = await run_crawl(RelationSpider, settings, mids=str(seed), depth="2")

    neighbours = set(served(seed, "followers")) | set(served(seed, "followings"))
    admitted = {seed} | neighbours
    expected_edges: set[Edge] = set()
    for mid in admitted:
        for direction in DIRECTIONS:
            expected_edges |= edges_of(mid, direction, served(mid, direction))
    edges = stored_edges(settings)
    assert len(edges) == len(set(edges)), "no duplicate edge"
    assert set(edges) == expected_edges
    lists = stored_lists(settings)
    assert lists == {(mid, d): expected_list(mid, d) for mid in admitted for d in DIRECTIONS}
    statuses = {document["status"] for document in lists.values()}
    assert {"complete", "capped", "hidden"} <= statuses, "the fixture covers every case"
    stats = result.stats
    assert stats["bilicrawl/relation/users"] == len(admitted)
    assert stats["bilicrawl/relation/lists/hidden"] == sum(
        document["status"] == "hidden" for document in lists.values()
    )

    stubs = {document["mid"]: document for document in stored(settings, "users")}
    listed = {other for mid in admitted for d in DIRECTIONS for other in served(mid, d)}
    assert set(stubs) == listed
    some = next(iter(neighbours))
    entry = users.relation_entry(some, 0)
    assert stubs[some] == {
        "mid": some,
        "name": entry["uname"],
        "face": entry["face"],
        "sign": entry["sign"],
        "official": entry["official_verify"],
        "vip": {
            "type": entry["vip"]["vipType"],
            "status": entry["vip"]["vipStatus"],
            "label": entry["vip"]["label"].get("text", ""),
        },
    }


@deferred_f_from_coro_f
async def test_a_list_stops_at_the_sites_cap_and_at_the_crawls(
    settings: dict[str, Any], fakeapi: Any
) -> None:
    celebrity = graph.CELEBRITY
    await run_crawl(RelationSpider, settings, mids=str(celebrity), direction="followers")
    anonymous = served(celebrity, "followers")
    assert len(anonymous) == graph.FOLLOWERS_CAP_ANONYMOUS
    assert set(stored_edges(settings)) == edges_of(celebrity, "followers", anonymous)
    total = len(graph.followers(celebrity))
    assert stored_lists(settings) == {
        (celebrity, "followers"): {
            "mid": celebrity,
            "direction": "followers",
            "total": total,
            "seen": 100,
            "status": "capped",
        }
    }

    logged_in = {**settings, "BILI_SESSDATA": "fake-login", "BILI_FOLLOWERS_CAP": 120}
    fakeapi.reset()
    await run_crawl(RelationSpider, logged_in, mids=str(celebrity), direction="followers")
    first_120 = served(celebrity, "followers", logged_in=True)[:120]
    assert set(stored_edges(settings)) == edges_of(celebrity, "followers", first_120) | set(
        edges_of(celebrity, "followers", anonymous)
    )
    assert stored_lists(settings)[celebrity, "followers"]["seen"] == 120
    pages = [
        entry["query"]["pn"] for entry in fakeapi.log() if entry["path"] == "/x/relation/followers"
    ]
    assert sorted(pages) == ["1", "2", "3"], "no page past the crawl's cap"


@deferred_f_from_coro_f
async def test_lists_that_need_a_login_are_recorded_with_the_total(
    crawl_settings: dict[str, Any], fakeapi_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    api = fakeapi_factory(relation_login_required=True)
    settings = {**crawl_settings, "BILI_API_URL": api.url}
    seed = graph.SMALL_SEED
    result = await run_crawl(RelationSpider, settings, mids=f"{seed},{graph.CELEBRITY}")
    assert stored_edges(settings) == []
    lists = stored_lists(settings)
    assert lists == {
        (mid, direction): {
            "mid": mid,
            "direction": direction,
            "status": "login_required",
            "total": len(full_list(mid, direction)),
            "seen": 0,
        }
        for mid in (seed, graph.CELEBRITY)
        for direction in DIRECTIONS
    }
    assert result.stats["bilicrawl/relation/lists/login_required"] == 4
    warnings = [
        record
        for record in caplog.records
        if "login" in record.getMessage() and record.levelname == "WARNING"
    ]
    assert len(warnings) == 1, "logged once"


@deferred_f_from_coro_f
async def test_max_users_keeps_the_users_nearest_the_seed(settings: dict[str, Any]) -> None:
    seed = graph.SMALL_SEED
    result = await run_crawl(RelationSpider, settings, mids=str(seed), depth="3", max_users="5")
    in_bfs_order = [*served(seed, "followers"), *served(seed, "followings")]
    level_1 = list(dict.fromkeys(mid for mid in in_bfs_order if mid != seed))
    first_four = level_1[:4]
    assert {mid for mid, _ in stored_lists(settings)} == {seed, *first_four}
    assert result.stats["bilicrawl/relation/users"] == 5
    level_2 = {
        mid for user in first_four for direction in DIRECTIONS for mid in served(user, direction)
    } - {seed, *first_four}
    turned_away = len(level_1) - 4 + len(level_2)
    assert result.stats["bilicrawl/relation/users_over_max"] == turned_away, "once per level"


def store_text(settings: dict[str, Any]) -> str:
    """Every row of every table of the store, as text: what a grep of the store sees."""
    with closing(sqlite3.connect(settings["SQLITE_PATH"])) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        ]
        return "\n".join(
            repr(row)
            for table in tables
            for row in connection.execute(f"SELECT * FROM {table}")  # noqa: S608
        )


@deferred_f_from_coro_f
async def test_a_pseudonymised_store_holds_no_mid_name_or_face(settings: dict[str, Any]) -> None:
    private = {**settings, "BILI_PSEUDONYMIZE": True, "BILI_PSEUDONYM_KEY": PSEUDONYM_KEY}
    seed, uploader = graph.SMALL_SEED, graph.MANY_UPLOADS
    await run_crawl(RelationSpider, private, mids=str(seed))
    await run_crawl(UserSpider, private, mids=f"{seed},{uploader}", uploads="true")

    people = {seed, uploader} | set(served(seed, "followers")) | set(served(seed, "followings"))
    for aid in graph.uploads(uploader):
        view = videos.video_view(aid)
        people |= {view["owner"]["mid"], *(member["mid"] for member in view.get("staff") or [])}
    text = store_text(settings)
    for mid in people:
        assert not re.search(rf"(?<!\d){mid}(?!\d)", text), f"raw mid {mid} is stored"
    for mid in people:
        profile = users.acc_info(mid)
        assert profile["face"] not in text
        assert len(profile["name"]) < 2 or profile["name"] not in text
    pseudonym = Pseudonymizer(PSEUDONYM_KEY).pseudonym
    expected = {
        (pseudonym(a), pseudonym(b))
        for d in DIRECTIONS
        for a, b in edges_of(seed, d, served(seed, d))
    }
    assert set(stored_edges(settings)) == expected, "the graph still joins"
    user_mids = {document["mid"] for document in stored(settings, "users")}
    assert {pseudonym(seed), pseudonym(uploader)} <= user_mids
    assert {video["owner"]["mid"] for video in stored(settings, "videos")} == {pseudonym(uploader)}
    resumed = await run_crawl(UserSpider, private, mids=f"{seed},{uploader}", resume="true")
    assert resumed.stats["bilicrawl/input/already_stored"] == 2, "resume finds hashed keys"
