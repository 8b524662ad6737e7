"""Tests of the fake API's users and relations area: graph, shapes, screens, pagination.

The ``*_KEYS`` strings are the keys of the real example responses saved with
the API notes (acc_info.json, card.json, relation_stat.json, upstat.json,
arc_search.json, followers.json), objects nested in braces; lists and the
``tlist`` keyed by zone are checked apart. recArchivesByKeywords has no saved
example: its keys are the ones the brief lists.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import urllib.parse
from typing import TYPE_CHECKING, Any

import pytest

from bilicrawl.ids import MAX_MID
from tests.fakeapi import graph, users, videos
from tests.fakeapi.app import Knobs
from tests.fakeapi.data import user_card
from tests.fakeapi.process import FakeApi
from tests.helpers.fakeapi_client import (
    BUVID,
    DM_IMG,
    LOGGED_IN,
    get,
    key_tree,
    parse_keys,
    signed,
    space,
)

if TYPE_CHECKING:
    pass

ACC_INFO_KEYS = """
mid name sex face face_nft face_nft_type sign rank level jointime moral silence coins fans_badge
fans_medal{show wear medal{uid target_id medal_id level medal_name medal_color intimacy
next_intimacy day_limit today_feed medal_color_start medal_color_end medal_color_border
is_lighted guard_level light_status wearing_status score}} official{role title desc type}
vip{type status due_date vip_pay_type theme_type label{path text label_theme text_color bg_style
bg_color border_color use_img_label img_label_uri_hans img_label_uri_hant
img_label_uri_hans_static img_label_uri_hant_static} avatar_subscript nickname_color role
avatar_subscript_url tv_vip_status tv_vip_pay_type tv_due_date avatar_icon{icon_type
icon_resource{}}} pendant{pid name image expire image_enhance image_enhance_frame n_pid}
nameplate{nid name image image_small level condition} user_honour_info{mid colour tags
is_latest_100honour} is_followed top_photo theme{} sys_notice{} live_room{roomStatus liveStatus
url title cover roomid roundStatus broadcast_type watched_show{switch num text_small text_large
icon icon_location icon_web}} birthday school{name} profession{name department title is_show}
tags series{user_upgrade_status show_upgrade_window} is_senior_member mcn_info gaia_res_type
gaia_data is_risk elec{show_info{show state title icon jump_url}} contract{is_display
is_follow_display} certificate_show name_render
"""
NO_LIVE_ROOM_KEYS = "roomStatus liveStatus url title cover roomid roundStatus broadcast_type"
CARD_KEYS = """
card{mid name approve sex rank face DisplayRank regtime spacesta birthday place description
article attentions fans friend attention sign level_info{current_level current_min current_exp
next_exp} pendant{pid name image expire image_enhance image_enhance_frame} nameplate{nid name
image image_small level condition} Official{role title desc type} official_verify{type desc}
vip{type status due_date vip_pay_type theme_type label{path text label_theme text_color bg_style
bg_color border_color} avatar_subscript nickname_color role avatar_subscript_url vipType
vipStatus}} space{s_img l_img} following archive_count article_count follower like_num
"""
STAT_KEYS = "mid following whisper black follower"
UPSTAT_KEYS = "archive{view} article{view} likes"
ARC_SEARCH_KEYS = """
list{slist tlist vlist} page{pn ps count} episodic_button{text uri} is_risk gaia_res_type
gaia_data
"""
TLIST_ENTRY_KEYS = "tid count name"
VLIST_ENTRY_KEYS = """
comment typeid play pic subtitle description copyright title review author mid created length
video_review aid bvid hide_click is_pay is_union_video is_steins_gate is_live_playback
is_lesson_video is_lesson_finished lesson_update_info jump_url meta{id title cover mid intro
sign_state attribute stat{season_id view danmaku reply favorite coin share like mtime vt vv}
ep_count first_aid ptime ep_num} is_avoided season_id attribute is_charging_arc elec_arc_type vt
enable_vt vt_display playback_position is_self_view
"""
REC_ARCHIVES_KEYS = "archives page{num size total}"
REC_ARCHIVE_KEYS = """
aid title pubdate ctime state pic duration stat{view} bvid ugc_pay interactive_video enable_vt
vt_display playback_position is_self_view
"""
RELATION_LIST_KEYS = "list re_version total"
RELATION_ENTRY_KEYS = """
mid attribute mtime tag special contract_info{} uname face sign face_nft official_verify{type
desc} vip{vipType vipDueDate dueRemark accessStatus vipStatus vipStatusWarn themeType
label{path text label_theme text_color bg_style bg_color border_color} avatar_subscript
nickname_color avatar_subscript_url} name_render{} nft_icon rec_reason track_id follow_time
"""

REFERER = {"Referer": "https://space.bilibili.com/2/fans/fans"}
ACC_INFO = "/x/space/wbi/acc/info"
ARC_SEARCH = "/x/space/wbi/arc/search"
CARD = "/x/web-interface/card"
STAT = "/x/relation/stat"
UPSTAT = "/x/space/upstat"
REC_ARCHIVES = "/x/series/recArchivesByKeywords"
FOLLOWERS = "/x/relation/followers"
FOLLOWINGS = "/x/relation/followings"
MID_PARAMS = {
    ACC_INFO: "mid",
    ARC_SEARCH: "mid",
    CARD: "mid",
    STAT: "vmid",
    UPSTAT: "mid",
    REC_ARCHIVES: "mid",
    FOLLOWERS: "vmid",
    FOLLOWINGS: "vmid",
}
OUTSIDERS = (2, 3494000000000001)
"""Mids of users outside the graph: profiles, but no relations and no uploads."""
NAMED_USERS = (
    graph.CELEBRITY, graph.HEAVY_FOLLOWER, graph.HIDES_FOLLOWERS, graph.HIDES_FOLLOWINGS,
    graph.SMALL_SEED, graph.NO_UPLOADS, graph.MANY_UPLOADS,
)  # fmt: skip


# --- helpers --------------------------------------------------------------------------------


def plain(api: FakeApi, path: str, cookies: str = BUVID, **params: Any) -> dict[str, Any]:
    """GET an unsigned path as a space page would; the JSON body."""
    return get(api, path, urllib.parse.urlencode(params), cookies=cookies, headers=REFERER)[1]


def whole_list(
    api: FakeApi, path: str, mid: int, cookies: str = BUVID
) -> tuple[list[dict[str, Any]], int, int]:
    """Every entry of a relation list, page by page until an empty one: (entries, pages, total)."""
    entries: list[dict[str, Any]] = []
    for pn in itertools.count(1):
        body = plain(api, path, cookies, vmid=mid, pn=pn)
        assert body["code"] == 0, body
        if not body["data"]["list"]:
            return entries, pn - 1, body["data"]["total"]
        entries += body["data"]["list"]
    raise AssertionError("unreachable")


def all_uploads(api: FakeApi, mid: int, ps: int = 50) -> list[dict[str, Any]]:
    """Every ``vlist`` entry of *mid*'s ``arc/search``, page by page."""
    entries: list[dict[str, Any]] = []
    for pn in itertools.count(1):
        body = space(api, ARC_SEARCH, mid=mid, pn=pn, ps=ps)
        assert body["code"] == 0, body
        if not body["data"]["list"]["vlist"]:
            return entries
        entries += body["data"]["list"]["vlist"]
    raise AssertionError("unreachable")


def pairs(entries: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(entry["mid"], entry["mtime"]) for entry in entries]


def crawl_requests(seed: int) -> int:
    """Requests of a depth-2 crawl from *seed*: it and everyone it follows or is followed by.

    Each user costs four profile requests (card, acc/info, stat, upstat), its
    ``arc/search`` pages and every page of its two lists (logged in).
    """
    neighbours = {mid for mid, _ in graph.followers(seed) + graph.followings(seed)}
    total = 0
    for mid in {seed} | neighbours:
        served = (graph.served_list(mid, d, True) for d in ("followers", "followings"))
        total += 4 + max(1, math.ceil(len(graph.uploads(mid)) / 50))
        total += sum(max(1, math.ceil(len(pairs) / 50)) for pairs in served)
    return total


# --- the graph ------------------------------------------------------------------------------


def test_the_graph_is_big_skewed_and_consistent() -> None:
    mids = graph.graph_mids()
    assert 2900 <= len(set(mids)) == len(mids) <= 3100
    assert sum(mid < 10**10 for mid in mids) > 500
    assert sum(len(str(mid)) == 16 for mid in mids) > 500
    assert not set(mids) & (set(users.ERROR_MIDS) | set(OUTSIDERS))

    by_followers, by_followings = set(), set()
    for mid in mids:
        for direction, listed in (("followers", by_followers), ("followings", by_followings)):
            pairs_ = graph.followers(mid) if direction == "followers" else graph.followings(mid)
            assert pairs_ == sorted(pairs_, key=lambda pair: (-pair[1], pair[0]))
            assert len({other for other, _ in pairs_}) == len(pairs_)
            for other, mtime in pairs_:
                assert 1420070400 <= mtime <= 1782777600
                listed.add(
                    (other, mid, mtime) if direction == "followers" else (mid, other, mtime)
                )
    assert by_followers == by_followings, "each follow is in both lists, with the same mtime"
    ties = sum(a[1] == b[1] for mid in mids for a, b in itertools.pairwise(graph.followings(mid)))
    assert ties > 10, "some equal mtimes, ordered by mid"

    followers = {mid: len(graph.followers(mid)) for mid in mids}
    celebrities = {mid for mid, count in followers.items() if count > 1000}
    assert 2 <= len(celebrities) <= 10
    assert 2 <= sum(len(graph.followings(mid)) > 100 for mid in mids) <= 150
    assert sorted(followers.values())[len(mids) // 2] < 30, "most users have a handful"
    for direction in ("followers", "followings"):
        hiding = {mid for mid in mids if graph.hides(mid, direction)}
        assert 0.03 < len(hiding) / len(mids) < 0.07
        assert not hiding & celebrities

    uploads = [aid for mid in mids for aid in graph.uploads(mid)]
    assert len(set(uploads)) == len(uploads), "every upload has one uploader"
    assert not set(uploads) & set(videos.ERROR_AIDS)
    counts = [len(graph.uploads(mid)) for mid in mids]
    assert 0.1 < counts.count(0) / len(counts) < 0.6
    assert 60 <= max(counts) <= 120

    for outsider in OUTSIDERS:
        assert graph.followers(outsider) == graph.followings(outsider) == []
        assert graph.uploads(outsider) == ()
        assert not graph.hides(outsider, "followers")


def test_served_lists_are_capped_and_hidden_lists_empty() -> None:
    celebrity = graph.followers(graph.CELEBRITY)
    assert graph.served_list(graph.CELEBRITY, "followers", True) == celebrity[:1000]
    assert graph.served_list(graph.CELEBRITY, "followers", False) == celebrity[:100]
    heavy = graph.followings(graph.HEAVY_FOLLOWER)
    for logged_in in (True, False):
        assert graph.served_list(graph.HEAVY_FOLLOWER, "followings", logged_in) == heavy[:100]
    assert graph.served_list(graph.HIDES_FOLLOWERS, "followers", True) == []
    assert graph.served_list(graph.HIDES_FOLLOWINGS, "followings", True) == []
    assert (
        graph.FOLLOWERS_CAP_LOGGED_IN,
        graph.FOLLOWERS_CAP_ANONYMOUS,
        graph.FOLLOWINGS_CAP,
    ) == (1000, 100, 100)


def test_the_named_users_fit_their_descriptions() -> None:
    assert set(NAMED_USERS) <= set(graph.graph_mids())
    assert len(graph.followers(graph.CELEBRITY)) > 1000
    assert not graph.hides(graph.CELEBRITY, "followers")
    assert len(graph.followings(graph.HEAVY_FOLLOWER)) > 100
    assert not graph.hides(graph.HEAVY_FOLLOWER, "followings")
    assert graph.followers(graph.HIDES_FOLLOWERS)
    assert graph.hides(graph.HIDES_FOLLOWERS, "followers")
    assert not graph.hides(graph.HIDES_FOLLOWERS, "followings")
    assert graph.followings(graph.HIDES_FOLLOWINGS)
    assert graph.hides(graph.HIDES_FOLLOWINGS, "followings")
    assert not graph.hides(graph.HIDES_FOLLOWINGS, "followers")

    seed = graph.SMALL_SEED
    assert 5 <= len(graph.followers(seed)) <= 40
    assert 5 <= len(graph.followings(seed)) <= 40
    assert not graph.hides(seed, "followers")
    assert not graph.hides(seed, "followings")
    for mid, _ in graph.followers(seed) + graph.followings(seed):
        assert len(graph.followers(mid)) <= 1000, "no celebrity around the seed"
    assert crawl_requests(seed) < 400

    assert graph.uploads(graph.NO_UPLOADS) == ()
    assert 60 <= len(graph.uploads(graph.MANY_UPLOADS)) <= 120


# --- shapes ---------------------------------------------------------------------------------


def test_profiles_have_the_keys_of_the_real_examples(api: FakeApi) -> None:
    infos = {mid: users.acc_info(mid) for mid in graph.graph_mids()[:1000]}
    share = {
        "live room": sum(bool(i["live_room"]["roomid"]) for i in infos.values()) / len(infos),
        "birthday": sum(bool(i["birthday"]) for i in infos.values()) / len(infos),
        "silenced": sum(i["silence"] for i in infos.values()) / len(infos),
        "senior": sum(i["is_senior_member"] for i in infos.values()) / len(infos),
    }
    assert 0.2 < share["live room"] < 0.4
    assert 0.5 < share["birthday"] < 0.7
    assert 0.005 < share["silenced"] < 0.05
    assert 0 < share["senior"] < 1
    for info in infos.values():
        assert re.fullmatch(r"(\d\d-\d\d)?", info["birthday"])
        assert info["silence"] in (0, 1)
    roomed = next(
        m for m, i in infos.items() if i["live_room"]["roomid"] and i["fans_medal"]["wear"]
    )
    plainest = next(
        m for m, i in infos.items() if not i["live_room"]["roomid"] and not i["fans_medal"]["wear"]
    )
    body = space(api, ACC_INFO, mid=roomed)
    assert body["code"] == 0
    assert key_tree(body["data"]) == parse_keys(ACC_INFO_KEYS)
    assert body["data"] == users.acc_info(roomed)
    room = body["data"]["live_room"]
    assert (
        room["url"]
        == f"https://live.bilibili.com/{room['roomid']}?broadcast_type=0&is_room_feed=0"
    )
    assert room["roomStatus"] == 1

    data = space(api, ACC_INFO, mid=plainest)["data"]
    expected = parse_keys(ACC_INFO_KEYS)
    expected["fans_medal"]["medal"] = None
    expected["live_room"] = parse_keys(NO_LIVE_ROOM_KEYS)
    assert key_tree(data) == expected
    assert data["live_room"] == {
        "roomStatus": 0,
        "liveStatus": 0,
        "url": "",
        "title": "",
        "cover": "",
        "roomid": 0,
        "roundStatus": 0,
        "broadcast_type": 0,
    }
    assert data["fans_medal"] == {"show": False, "wear": False, "medal": None}

    for path, keys in ((CARD, CARD_KEYS), (STAT, STAT_KEYS)):
        body = plain(api, path, **{MID_PARAMS[path]: graph.CELEBRITY})
        assert (body["code"], body["message"], body["ttl"]) == (0, "0", 1)
        assert key_tree(body["data"]) == parse_keys(keys)
    body = plain(api, UPSTAT, LOGGED_IN, mid=graph.MANY_UPLOADS)
    assert key_tree(body["data"]) == parse_keys(UPSTAT_KEYS)


def test_lists_have_the_keys_of_the_real_examples(api: FakeApi) -> None:
    with_season = next(
        mid
        for mid in graph.graph_mids()
        if any(entry["meta"] for entry in users.arc_search(mid, 1, 50)["list"]["vlist"])
    )
    body = space(api, ARC_SEARCH, mid=with_season, ps=50)
    assert body["code"] == 0
    data = body["data"]
    zones = data["list"]["tlist"]
    assert key_tree({**data, "list": {**data["list"], "tlist": None}}) == parse_keys(
        ARC_SEARCH_KEYS
    )
    assert data["list"]["slist"] == []
    for tid, zone in zones.items():
        assert key_tree(zone) == parse_keys(TLIST_ENTRY_KEYS)
        assert tid == str(zone["tid"])
    assert sum(zone["count"] for zone in zones.values()) == data["page"]["count"]
    no_meta = parse_keys(VLIST_ENTRY_KEYS) | {"meta": None}
    for entry in data["list"]["vlist"]:
        assert key_tree(entry) == (parse_keys(VLIST_ENTRY_KEYS) if entry["meta"] else no_meta)
        assert entry["season_id"] == (entry["meta"]["id"] if entry["meta"] else 0)
        assert isinstance(entry["copyright"], str)
    assert (
        data["episodic_button"]["uri"]
        == f"//www.bilibili.com/medialist/play/{with_season}?from=space"
    )

    body = plain(api, REC_ARCHIVES, mid=with_season)
    assert key_tree(body["data"]) == parse_keys(REC_ARCHIVES_KEYS)
    for archive in body["data"]["archives"]:
        assert key_tree(archive) == parse_keys(REC_ARCHIVE_KEYS)

    for path in (FOLLOWERS, FOLLOWINGS):
        body = plain(api, path, vmid=graph.SMALL_SEED)
        assert key_tree(body["data"]) == parse_keys(RELATION_LIST_KEYS)
        assert body["data"]["re_version"] == 0
        for entry in body["data"]["list"]:
            assert key_tree(entry) == parse_keys(RELATION_ENTRY_KEYS)
            assert (entry["attribute"], entry["tag"], entry["special"]) == (0, None, 0)


# --- consistency ----------------------------------------------------------------------------


def test_every_endpoint_agrees_on_each_user(api: FakeApi) -> None:
    sample = random.Random(5).sample(graph.graph_mids(), 6)
    for mid in (*NAMED_USERS, *sample, *OUTSIDERS):
        card = plain(api, CARD, mid=mid)["data"]
        info = space(api, ACC_INFO, mid=mid)["data"]
        stat = plain(api, STAT, vmid=mid)["data"]
        assert card == user_card(mid)
        assert (info["name"], info["face"], info["sign"], info["sex"]) == (
            card["card"]["name"],
            card["card"]["face"],
            card["card"]["sign"],
            card["card"]["sex"],
        )
        assert info["level"] == card["card"]["level_info"]["current_level"]
        assert info["official"] == card["card"]["Official"]
        assert (info["vip"]["type"], info["vip"]["status"], info["vip"]["due_date"]) == (
            card["card"]["vip"]["vipType"],
            card["card"]["vip"]["vipStatus"],
            card["card"]["vip"]["due_date"],
        )
        assert info["vip"]["label"]["text"] == card["card"]["vip"]["label"]["text"]
        assert info["pendant"]["pid"] == card["card"]["pendant"]["pid"]
        assert info["top_photo"] == card["space"]["l_img"]

        follower_count, following_count = len(graph.followers(mid)), len(graph.followings(mid))
        assert card["follower"] == card["card"]["fans"] == stat["follower"] == follower_count
        assert card["card"]["attention"] == stat["following"] == following_count
        assert stat == {
            "mid": mid,
            "following": following_count,
            "whisper": 0,
            "black": 0,
            "follower": follower_count,
        }
        for path, count, direction in (
            (FOLLOWERS, follower_count, "followers"),
            (FOLLOWINGS, following_count, "followings"),
        ):
            if not graph.hides(mid, direction):
                assert plain(api, path, vmid=mid, ps=1)["data"]["total"] == count
        uploads = space(api, ARC_SEARCH, mid=mid, ps=1)["data"]["page"]["count"]
        assert card["archive_count"] == uploads == len(graph.uploads(mid))
    assert user_card(OUTSIDERS[0])["follower"] == 0


def test_list_entries_agree_with_the_cards(api: FakeApi) -> None:
    body = plain(api, FOLLOWINGS, vmid=graph.SMALL_SEED)
    assert pairs(body["data"]["list"]) == graph.followings(graph.SMALL_SEED)
    for entry in body["data"]["list"]:
        card = user_card(entry["mid"])["card"]
        assert (entry["uname"], entry["face"], entry["sign"]) == (
            card["name"],
            card["face"],
            card["sign"],
        )
        assert entry["official_verify"] == card["official_verify"]
        vip = entry["vip"]
        assert (vip["vipType"], vip["vipDueDate"], vip["vipStatus"], vip["label"]) == (
            card["vip"]["vipType"],
            card["vip"]["due_date"],
            card["vip"]["vipStatus"],
            card["vip"]["label"],
        )


def test_uploads_agree_across_endpoints(api: FakeApi) -> None:
    mid = graph.MANY_UPLOADS
    card = user_card(mid)
    entries = all_uploads(api, mid)
    count = len(graph.uploads(mid))
    assert sorted(entry["aid"] for entry in entries) == sorted(graph.uploads(mid))
    assert [(e["created"], e["aid"]) for e in entries] == sorted(
        ((e["created"], e["aid"]) for e in entries), reverse=True
    ), "newest first"
    archives = plain(api, REC_ARCHIVES, mid=mid, ps=100)["data"]
    assert archives["page"] == {"num": 1, "size": 100, "total": count}
    assert [a["aid"] for a in archives["archives"]] == [e["aid"] for e in entries]

    for entry, archive in zip(entries, archives["archives"], strict=True):
        view = get(api, "/x/web-interface/view", f"aid={entry['aid']}")[1]["data"]
        assert view["owner"] == {
            "mid": mid,
            "name": card["card"]["name"],
            "face": card["card"]["face"],
        }
        minutes, seconds = divmod(view["duration"], 60)
        assert (entry["mid"], entry["author"]) == (mid, card["card"]["name"])
        assert (entry["bvid"], entry["title"], entry["created"]) == (
            view["bvid"],
            view["title"],
            view["pubdate"],
        )
        assert entry["length"] == f"{minutes:02d}:{seconds:02d}"
        assert (entry["play"], entry["typeid"]) == (view["stat"]["view"], view["tid"])
        assert (archive["bvid"], archive["title"], archive["pubdate"], archive["ctime"]) == (
            view["bvid"],
            view["title"],
            view["pubdate"],
            view["ctime"],
        )
        assert (archive["duration"], archive["stat"]) == (
            view["duration"],
            {"view": view["stat"]["view"]},
        )

    # The owner registry names every graph user's uploads, and them only.
    for other in random.Random(3).sample(graph.graph_mids(), 25):
        for aid in graph.uploads(other)[:5]:
            assert videos.video_view(aid)["owner"]["mid"] == other
    assert videos.video_view(170001)["owner"]["mid"] not in graph.graph_mids()


def test_upload_pages(api: FakeApi) -> None:
    mid, count = graph.MANY_UPLOADS, len(graph.uploads(graph.MANY_UPLOADS))
    first = space(api, ARC_SEARCH, mid=mid)["data"]
    assert first["page"] == {"pn": 1, "ps": 30, "count": count}
    assert len(first["list"]["vlist"]) == 30
    clamped = space(api, ARC_SEARCH, mid=mid, pn=2, ps=500)["data"]
    assert clamped["page"] == {"pn": 2, "ps": 50, "count": count}
    assert len(clamped["list"]["vlist"]) == count - 50
    past = space(api, ARC_SEARCH, mid=mid, pn=9, ps=50)
    assert past["code"] == 0
    assert (past["data"]["list"]["vlist"], past["data"]["page"]["count"]) == ([], count)

    archives = plain(api, REC_ARCHIVES, mid=mid)["data"]
    assert archives["page"] == {"num": 1, "size": 20, "total": count}
    assert len(archives["archives"]) == 20
    assert plain(api, REC_ARCHIVES, mid=mid, ps=1000)["data"]["page"]["size"] == 100
    assert plain(api, REC_ARCHIVES, mid=mid, pn=3, ps=50)["data"] == {
        "archives": [],
        "page": {"num": 3, "size": 50, "total": count},
    }
    everything = plain(api, REC_ARCHIVES, mid=mid, pn=0)["data"]["archives"]
    assert [a["aid"] for a in everything] == [e["aid"] for e in all_uploads(api, mid)]
    word = everything[0]["title"].split()[0]
    matching = plain(api, REC_ARCHIVES, mid=mid, keywords=word, ps=100)["data"]
    assert matching["page"]["total"] == len(matching["archives"]) >= 1
    assert all(word.casefold() in a["title"].casefold() for a in matching["archives"])

    for nobody in (graph.NO_UPLOADS, OUTSIDERS[0]):
        empty = space(api, ARC_SEARCH, mid=nobody)["data"]
        assert (empty["list"]["vlist"], empty["list"]["tlist"], empty["page"]["count"]) == (
            [],
            {},
            0,
        )
        assert plain(api, REC_ARCHIVES, mid=nobody)["data"]["archives"] == []
    assert plain(api, REC_ARCHIVES, mid=mid, pn="x")["code"] == -400


def test_upstat_needs_a_login(api: FakeApi) -> None:
    mid = graph.MANY_UPLOADS
    assert plain(api, UPSTAT, mid=mid) == {"code": 0, "message": "0", "ttl": 1, "data": {}}
    data = plain(api, UPSTAT, LOGGED_IN, mid=mid)["data"]
    views = sum(videos.video_view(aid)["stat"]["view"] for aid in graph.uploads(mid))
    assert data == {**data, "archive": {"view": views}, "likes": user_card(mid)["like_num"]}


# --- relation lists -------------------------------------------------------------------------


def test_follower_caps_anonymous_and_logged_in(api: FakeApi) -> None:
    mid = graph.CELEBRITY
    total = len(graph.followers(mid))
    entries, pages, reported = whole_list(api, FOLLOWERS, mid)
    assert (pages, reported) == (2, total)
    assert pairs(entries) == graph.served_list(mid, "followers", False)
    entries, pages, reported = whole_list(api, FOLLOWERS, mid, LOGGED_IN)
    assert (pages, reported) == (20, total)
    assert pairs(entries) == graph.served_list(mid, "followers", True)
    assert pairs(entries) == graph.followers(mid)[:1000]

    page = plain(api, FOLLOWERS, vmid=mid, ps=100)["data"]
    assert len(page["list"]) == 50, "ps is clamped to 50"
    page = plain(api, FOLLOWERS, LOGGED_IN, vmid=mid, pn=50, ps=20)["data"]
    assert pairs(page["list"]) == graph.followers(mid)[980:1000]
    assert plain(api, FOLLOWERS, LOGGED_IN, vmid=mid, pn=51, ps=20)["data"] == {
        "list": [],
        "re_version": 0,
        "total": total,
    }


def test_followings_cap_is_the_same_for_everyone(api: FakeApi) -> None:
    mid = graph.HEAVY_FOLLOWER
    for cookies in (BUVID, LOGGED_IN):
        entries, pages, total = whole_list(api, FOLLOWINGS, mid, cookies)
        assert (pages, total) == (2, len(graph.followings(mid)))
        assert pairs(entries) == graph.followings(mid)[:100]
    entries, pages, total = whole_list(api, FOLLOWINGS, graph.SMALL_SEED)
    assert (pages, total) == (1, len(graph.followings(graph.SMALL_SEED)))
    assert whole_list(api, FOLLOWERS, OUTSIDERS[1]) == ([], 0, 0)


def test_hidden_lists(api: FakeApi) -> None:
    assert plain(api, FOLLOWERS, LOGGED_IN, vmid=graph.HIDES_FOLLOWERS) == {
        "code": 22118,
        "message": "用户已设置隐私，无法查看",
        "ttl": 1,
    }
    assert plain(api, FOLLOWINGS, LOGGED_IN, vmid=graph.HIDES_FOLLOWINGS) == {
        "code": 22115,
        "message": "用户已设置隐私，无法查看",
        "ttl": 1,
    }
    assert plain(api, FOLLOWINGS, vmid=graph.HIDES_FOLLOWERS)["code"] == 0
    assert plain(api, FOLLOWERS, vmid=graph.HIDES_FOLLOWINGS)["code"] == 0
    stat = plain(api, STAT, vmid=graph.HIDES_FOLLOWERS)["data"]
    assert stat["follower"] == len(graph.followers(graph.HIDES_FOLLOWERS)) > 0


def test_login_required_knob(api: FakeApi) -> None:
    api.configure(relation_login_required=True)
    for path in (FOLLOWERS, FOLLOWINGS):
        assert plain(api, path, vmid=graph.SMALL_SEED) == {
            "code": -101,
            "message": "账号未登录",
            "ttl": 1,
        }
        assert plain(api, path, LOGGED_IN, vmid=graph.SMALL_SEED)["code"] == 0
    assert plain(api, STAT, vmid=graph.SMALL_SEED)["code"] == 0
    assert plain(api, CARD, mid=graph.SMALL_SEED)["code"] == 0


@pytest.mark.parametrize("path", list(MID_PARAMS))
def test_reserved_and_malformed_mids(api: FakeApi, path: str) -> None:
    cases = [
        *((str(mid), code, message) for mid, (code, message) in users.ERROR_MIDS.items()),
        *((value, -400, "请求错误")
          for value in ("", "abc", "0", "-5", "1.5", str(MAX_MID), "9" * 40, "１２")),
    ]  # fmt: skip
    for value, code, message in cases:
        params = {MID_PARAMS[path]: value}
        body = space(api, path, **params) if "/wbi/" in path else plain(api, path, **params)
        assert body == {"code": code, "message": message, "ttl": 1}, value
    assert plain(api, STAT, vmid=str(MAX_MID - 1))["code"] == 0


# --- screens --------------------------------------------------------------------------------


def test_space_paths_need_wbi_and_dm_img_when_anonymous(api: FakeApi) -> None:
    mid = graph.SMALL_SEED
    assert space(api, ACC_INFO, mid=mid)["code"] == 0
    bare = get(api, ACC_INFO, signed(api, {"mid": str(mid)}), cookies=BUVID)[1]
    assert bare["code"] == -352
    assert bare["data"]["v_voucher"].startswith("voucher_")
    assert get(api, ARC_SEARCH, signed(api, {"mid": str(mid)}), cookies=BUVID)[1]["code"] == -352
    for name in DM_IMG:
        without = {key: value for key, value in DM_IMG.items() if key != name}
        for params in (without, {**DM_IMG, name: ""}):
            query = signed(api, {**params, "mid": mid})
            assert get(api, ACC_INFO, query, cookies=BUVID)[1]["code"] == -352, params
    for inter in ("{}", "[1]", "not json", '{"ds":[],"wh":[1,2,3]}'):
        params = {**DM_IMG, "mid": mid, "dm_img_inter": inter}
        assert get(api, ACC_INFO, signed(api, params), cookies=BUVID)[1]["code"] == -352

    logged_in = get(api, ACC_INFO, signed(api, {"mid": str(mid)}), cookies=LOGGED_IN)[1]
    assert logged_in["code"] == 0
    unsigned = urllib.parse.urlencode({**DM_IMG, "mid": mid})
    assert get(api, ACC_INFO, unsigned, cookies=BUVID)[1]["code"] == -352
    tampered = signed(api, {**DM_IMG, "mid": mid}).replace("dm_img_list=%5B%5D", "dm_img_list=x")
    assert get(api, ACC_INFO, tampered, cookies=BUVID)[1]["code"] == -403, "dm_img is signed"
    assert space(api, ACC_INFO, "", mid=mid)["code"] == -352, "buvid3 is needed"

    api.configure(require_dm_img=False)
    assert get(api, ACC_INFO, signed(api, {"mid": str(mid)}), cookies=BUVID)[1]["code"] == 0
    # upstat and recArchives are not WBI paths: no signature, no dm_img.
    api.configure(require_dm_img=True)
    assert get(api, UPSTAT, f"mid={mid}", cookies=BUVID)[1]["code"] == 0
    assert get(api, REC_ARCHIVES, f"mid={mid}")[1]["code"] == 0


@pytest.mark.parametrize(
    ("referer", "allowed"),
    [
        ("https://space.bilibili.com/2/fans/fans", True),
        ("https://www.bilibili.com/", True),
        ("https://bilibili.com", True),
        (None, False),
        ("", False),
        ("https://evil.com/?r=https://www.bilibili.com/", False),
        ("https://notbilibili.com/", False),
        ("https://bilibili.com.evil.com/", False),
    ],
)
def test_relation_lists_need_a_bilibili_referer(
    api: FakeApi, referer: str | None, allowed: bool
) -> None:
    headers = {} if referer is None else {"Referer": referer}
    for path in (FOLLOWERS, FOLLOWINGS):
        body = get(api, path, f"vmid={graph.SMALL_SEED}", cookies=BUVID, headers=headers)[1]
        assert body["code"] == (0 if allowed else -352)
    assert get(api, STAT, f"vmid={graph.SMALL_SEED}", cookies=BUVID)[1]["code"] == 0


def test_the_log_says_who_was_logged_in(api: FakeApi) -> None:
    plain(api, CARD, mid=2)
    plain(api, CARD, LOGGED_IN, mid=2)
    assert [entry["logged_in"] for entry in api.log()] == [False, True]


def test_cli_switches_and_options() -> None:
    with FakeApi(require_dm_img=False, relation_login_required=True) as api:
        knobs = api.config()
    assert (knobs["require_dm_img"], knobs["relation_login_required"]) == (False, True)
    defaults = vars(Knobs())
    assert (defaults["require_dm_img"], defaults["relation_login_required"]) == (True, False)
