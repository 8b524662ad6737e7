"""Tests of the fake API's articles and live areas: catalogue, bodies, shapes, cards, screens.

The ``*_KEYS`` strings are the keys of the real example responses saved with
the API notes (article_view.json, article_view_type3.json,
article_viewinfo.json, article_cards.json, article_list_web_articles.json,
space_wbi_article.json, room_get_info.json), objects nested in braces; lists
are checked apart. getRoomInfoOld has no saved example: its keys are the
documented ones.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.fakeapi import articles, graph, live, users
from tests.fakeapi.app import Knobs
from tests.fakeapi.articles import (
    AUTHOR,
    ERROR_CVIDS,
    LIST_ID,
    NO_ARTICLES,
    TYPE0_ARTICLE,
    TYPE3_ARTICLE,
    article_cvids,
    article_lines,
    articles_of,
    list_articles,
)
from tests.fakeapi.data import user_facts
from tests.fakeapi.process import FakeApi
from tests.fakeapi.videos import ERROR_AIDS, video_view
from tests.helpers.fakeapi_client import (
    BUVID,
    DM_IMG,
    LOGGED_IN,
    fetch,
    get,
    key_tree,
    parse_keys,
    signed,
    space,
)

AUTHOR_KEYS = """
mid name face pendant{pid name image expire} official_verify{type desc} nameplate{nid name image
image_small level condition} vip{type status due_date vip_pay_type theme_type label{path text
label_theme} avatar_subscript nickname_color}
"""
COLLECTION_KEYS = """
id mid name image_url update_time ctime publish_time summary words read articles_count state
reason apply_time check_time
"""
STATS_KEYS = "view favorite like dislike reply share coin dynamic"
VIEW0_KEYS = f"""
act_id apply_time attributes authenMark author{{{AUTHOR_KEYS} fans level}} banner_url categories
category{{id name parent_id}} check_state check_time content content_pic_list cover_avid ctime
dispute dyn_id_str dynamic id image_urls is_like keywords list{{{COLLECTION_KEYS}}}
media{{area cover media_id score season_id spoiler title type_id type_name}} mtime
origin_image_urls origin_template_id original private_pub publish_time reprint state
stats{{{STATS_KEYS}}} summary tags template_id title top_video_info total_art_num type
version_id words
"""
OPUS_KEYS = """
opus_id opus_source title content{paragraphs} tags pub_info{uid pub_time} article{category_id
list_id originality reproduced cover biz_tags} version{cvid version_id}
"""
VIEW3_KEYS = f"""
id category{{id parent_id name}} categories title summary banner_url template_id state
author{{{AUTHOR_KEYS} fans level}} reprint image_urls publish_time ctime mtime
stats{{{STATS_KEYS}}} tags words origin_image_urls list{{{COLLECTION_KEYS}}} is_like
media{{score media_id title cover area type_id type_name spoiler season_id}} apply_time
check_time original act_id dispute authenMark cover_avid top_video_info type check_state
origin_template_id private_pub content_pic_list content keywords version_id opus{{{OPUS_KEYS}}}
dyn_id_str total_art_num
"""
VIEWINFO_KEYS = f"""
like attention favorite coin stats{{{STATS_KEYS}}} title banner_url mid author_name is_author
image_urls origin_image_urls shareable show_later_watch show_small_window in_list pre next
share_channels type video_url location disable_share
"""
VIDEO_CARD_KEYS = """
aid bvid cid copyright cover43 ctime desc dimension{height rotate width} duration dynamic
owner{face mid name} pic pubdate rights{arc_pay autoplay bp download elec hd5 is_cooperation
movie no_background no_reprint pay pay_free_watch ugc_pay ugc_pay_preview} short_link_v2
stat{aid coin danmaku dislike favorite his_rank like now_rank reply share view vt vv} state tid
title tname videos vt_switch
"""
ARTICLE_CARD_KEYS = f"""
act_id apply_time attributes authenMark author{{{AUTHOR_KEYS} fans level}} banner_url categories
category{{id name parent_id}} check_state check_time content_pic_list cover_avid ctime dispute
dynamic id image_urls is_like list{{{COLLECTION_KEYS}}} media{{area cover media_id score
season_id spoiler title type_id type_name}} mtime origin_image_urls origin_template_id original
private_pub publish_time reprint state stats{{{STATS_KEYS}}} summary template_id title
top_video_info type words
"""
LIVE_CARD_KEYS = """
area_v2_name cover face live_status online pendent_ru pendent_ru_color pendent_ru_pic role
room_id title uid uname
"""
LIST_KEYS = f"""
list{{{COLLECTION_KEYS}}} articles author{{mid name face pendant{{pid name image expire}}
official_verify{{type desc}} nameplate{{nid name image image_small level condition}} vip{{type
status due_date vip_pay_type theme_type label}}}} last{{id title state publish_time words
image_urls category{{id parent_id name}} categories summary}} attention
"""
LIST_ENTRY_KEYS = f"""
id title state publish_time words image_urls category{{id parent_id name}} categories summary
stats{{{STATS_KEYS}}} like_state
"""
SPACE_KEYS = "articles pn ps count"
SPACE_ENTRY_KEYS = f"""
id category{{id parent_id name}} categories title summary banner_url template_id state
author{{{AUTHOR_KEYS}}} reprint image_urls publish_time ctime stats{{{STATS_KEYS}}} tags words
dynamic origin_image_urls list is_like media{{score media_id title cover area type_id type_name
spoiler}} apply_time check_time original act_id dispute authenMark cover_avid top_video_info
type
"""
ROOM_KEYS = """
uid room_id short_id attention online is_portrait description live_status area_id
parent_area_id parent_area_name old_area_id background title user_cover keyframe is_strict_room
live_time tags is_anchor room_silent_type room_silent_level room_silent_second area_name
pendants area_pendants hot_words hot_words_status verify new_pendants{frame{name value position
desc area area_old bg_color bg_pic use_old_area} badge{name position value desc}
mobile_frame{name value position desc area area_old bg_color bg_pic use_old_area} mobile_badge}
up_session pk_status pk_id battle_id allow_change_area_time allow_upload_cover_time
studio_info{status master_list}
"""
ROOM_INFO_OLD_KEYS = """
roomStatus roundStatus liveStatus url title cover online roomid broadcast_type online_hidden
"""

VIEW = "/x/article/view"
VIEWINFO = "/x/article/viewinfo"
CARDS = "/x/article/cards"
LIST = "/x/article/list/web/articles"
SPACE_ARTICLES = "/x/space/wbi/article"
GET_INFO = "/room/v1/Room/get_info"
ROOM_INFO_OLD = "/room/v1/Room/getRoomInfoOld"
REFERER = {"Referer": "https://www.bilibili.com/read/cv1"}
SAMPLE = 50
"""The first cvids, in which every block kind occurs in both types."""
KINDS = {
    "h1", "h2", "h3", "bullet", "ordered", "blockquote", "image", "captioned", "cut-off", "av",
    "bv", "cv", "vote", "lv", "bold", "italic", "link", "color",
}  # fmt: skip
_HTML_MARKERS = {
    "h1": "<h1>", "h2": "<h2>", "h3": "<h3>", "bullet": "<ul><li>", "ordered": "<ol><li>",
    "blockquote": "<blockquote><p>", "image": 'data-size="', "cut-off": 'class="cut-off-',
    "av": 'aid="av', "bv": 'aid="BV', "cv": 'aid="cv', "vote": 'class="vote-display"',
    "lv": 'aid="lv', "bold": "<strong>", "italic": "<em>", "link": '<a href="https://',
}  # fmt: skip
_EMBED_KINDS = {"native-image": "image", "cut-off": "cut-off", "article-card": "cv",
                "vote-card": "vote", "live-card": "lv"}  # fmt: skip


# --- readers of the bodies ------------------------------------------------------------------


class TextBlocks(HTMLParser):
    """The text of each ``p``, ``h1``-``h3`` and ``li`` of an HTML body, as a reader takes it."""

    BLOCKS = frozenset({"p", "h1", "h2", "h3", "li"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCKS and self._text is not None:
            self.lines.append("".join(self._text))
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def html_lines(content: str) -> list[str]:
    reader = TextBlocks()
    reader.feed(content)
    reader.close()
    return reader.lines


def delta_lines(content: str) -> list[str]:
    """The text inserts between the "\\n" inserts of a delta, embeds skipped."""
    lines, current = [], []
    for op in json.loads(content)["ops"]:
        if op["insert"] == "\n":
            lines.append("".join(current))
            current = []
        elif isinstance(op["insert"], str):
            current.append(op["insert"])
    assert not current, "a delta ends with a line break"
    return lines


def opus_lines(opus: dict[str, Any]) -> list[str]:
    return [
        "".join(
            node["word"]["words"] if node["node_type"] == 1 else node["rich"]["text"]
            for node in paragraph["text"]["nodes"]
        )
        for paragraph in opus["content"]["paragraphs"]
        if "text" in paragraph
    ]


def html_kinds(content: str) -> set[str]:
    kinds = {kind for kind, marker in _HTML_MARKERS.items() if marker in content}
    if re.search(r'<span (class="color-[a-z]+-\d+"|style="color: #[0-9a-f]{6};")>', content):
        kinds.add("color")
    if re.search(r'<figcaption class="caption" contenteditable="">[^<]', content):
        kinds.add("captioned")
    return kinds


def delta_kinds(content: str) -> set[str]:
    kinds = set()
    for op in json.loads(content)["ops"]:
        insert, attributes = op["insert"], op.get("attributes", {})
        if isinstance(insert, dict):
            ((name, value),) = insert.items()
            if name == "video-card":
                kinds.add("av" if value["id"].startswith("av") else "bv")
            else:
                kinds.add(_EMBED_KINDS[name])
        elif insert == "\n":
            if "header" in attributes:
                kinds.add(f"h{attributes['header']}")
            kinds.add(attributes.get("list", "blockquote" if "blockquote" in attributes else ""))
        else:
            kinds |= {name for name in ("bold", "italic", "link", "color") if name in attributes}
    return kinds - {""}


# --- helpers --------------------------------------------------------------------------------


def plain(api: FakeApi, path: str, **params: Any) -> dict[str, Any]:
    """GET an unsigned path without cookies, as a browser reading an article would."""
    return get(api, path, urllib.parse.urlencode(params), headers=REFERER)[1]


def card_batch(api: FakeApi, ids: list[str], headers: dict[str, str] = REFERER) -> Any:
    return get(api, CARDS, urllib.parse.urlencode({"ids": ",".join(ids)}), headers=headers)[1]


def expected_keys(spec: str, data: dict[str, Any]) -> dict[str, Any]:
    """The key tree of *spec*, with ``list`` a leaf when *data* is in no collection."""
    keys = parse_keys(spec)
    if data.get("list", {}) is None:
        keys["list"] = None
    return keys


def member() -> int:
    """An article of ``LIST_ID``: its answers carry the collection object."""
    return list_articles(LIST_ID)[0]


# --- the catalogue and the bodies -----------------------------------------------------------


def test_the_catalogue_agrees_with_the_graph() -> None:
    cvids = article_cvids()
    assert list(cvids) == sorted(set(cvids))
    assert 5000 < len(cvids) < 12000
    assert min(cvids) > max(ERROR_CVIDS)
    written = []
    for mid in graph.graph_mids():
        own = articles_of(mid)
        assert list(own) == sorted(own, reverse=True), "newest first"
        if mid != AUTHOR:
            assert len(own) == user_facts(mid)["article_count"], "the card's count"
        written += own
    assert sorted(written) == list(cvids)
    assert 31 <= len(articles_of(AUTHOR)) <= 70
    assert NO_ARTICLES in graph.graph_mids()
    assert articles_of(NO_ARTICLES) == () == articles_of(2)

    author_of = {cvid: mid for mid in graph.graph_mids() for cvid in articles_of(mid)}
    assert len(articles.list_ids()) > 50
    for list_id in articles.list_ids():
        members = list_articles(list_id)
        (mid,) = {author_of[cvid] for cvid in members}
        own = list(reversed(articles_of(mid)))
        start = own.index(members[0])
        assert own[start : start + len(members)] == list(members), "a run of the author's"
        assert 3 <= len(members) <= 8
    assert articles.view(list_articles(LIST_ID)[-1])["author"]["mid"] == AUTHOR
    assert {articles.article_type(TYPE0_ARTICLE), articles.article_type(TYPE3_ARTICLE)} == {0, 3}


def test_the_first_articles_hold_every_block_kind_in_both_types() -> None:
    found: dict[int, set[str]] = {0: set(), 3: set()}
    types = []
    for cvid in article_cvids()[:SAMPLE]:
        data = articles.view(cvid)
        types.append(data["type"])
        kinds = html_kinds if data["type"] == 0 else delta_kinds
        found[data["type"]] |= kinds(data["content"])
        assert len([b for b in articles.blocks(cvid) if b.kind == "paragraph"]) >= 3
    assert found[0] == KINDS
    assert found[3] == KINDS - {"captioned"}, "a delta shows no captions"
    assert len(html_kinds(articles.view(TYPE0_ARTICLE)["content"])) >= 10
    assert len(delta_kinds(articles.view(TYPE3_ARTICLE)["content"])) >= 8


def test_article_lines_are_the_text_a_reader_finds() -> None:
    for cvid in (*article_cvids()[:SAMPLE], *articles_of(AUTHOR)):
        data = articles.view(cvid)
        expected = article_lines(cvid)
        if data["type"] == 0:
            assert html_lines(data["content"]) == expected, cvid
        else:
            assert delta_lines(data["content"]) == expected, cvid
            assert opus_lines(data["opus"]) == expected, cvid
        assert len(expected) >= 3
        for line in expected:
            assert line and line == line.strip() and "\n" not in line and "  " not in line
        assert data["words"] == len("".join(expected))
    awkward = [
        cvid
        for cvid in article_cvids()[:500]
        if articles.article_type(cvid) == 0 and "<b>粗体</b>" in "".join(article_lines(cvid))
    ]
    assert awkward, "some text looks like markup"
    assert "&lt;b&gt;粗体&lt;/b&gt;" in articles.view(awkward[0])["content"]


def test_cards_in_bodies_name_things_that_exist() -> None:
    cvids = set(article_cvids())
    for cvid in article_cvids()[:SAMPLE]:
        for block in articles.blocks(cvid):
            if block.kind == "video":
                aid = int(block.ref[2:]) if block.ref.startswith("av") else None
                assert aid is None or aid not in ERROR_AIDS
                assert articles.cards([block.ref]), block.ref
            elif block.kind == "article":
                assert int(block.ref[2:]) in cvids
            elif block.kind == "live":
                assert live.long_room_id(int(block.ref[2:])) is not None
            elif block.kind == "vote":
                assert block.ref.isdigit()
            elif block.kind in ("image", "cut-off"):
                assert block.ref.startswith("https://i0.hdslb.com/bfs/")


# --- shapes ---------------------------------------------------------------------------------


def test_view_has_the_keys_of_the_real_examples(api: FakeApi) -> None:
    for cvid in (TYPE0_ARTICLE, TYPE3_ARTICLE, member()):
        body = plain(api, VIEW, id=cvid)
        assert (body["code"], body["message"], body["ttl"]) == (0, "0", 1)
        data = body["data"]
        assert data == articles.view(cvid)
        spec = VIEW0_KEYS if data["type"] == 0 else VIEW3_KEYS
        assert key_tree(data) == expected_keys(spec, data)
        assert get(api, VIEW, signed(api, {"id": str(cvid)}))[1]["data"] == data, "WBI optional"
        for tag in data["tags"]:
            assert key_tree(tag) == parse_keys("tid name")
        assert [c["parent_id"] for c in data["categories"]] == [0, data["categories"][0]["id"]]
        assert data["categories"][1] == data["category"]
        assert set(data["keywords"].split(",")) >= {tag["name"] for tag in data["tags"]}
        author = user_facts(data["author"]["mid"])
        assert (data["author"]["name"], data["author"]["face"]) == (author["name"], author["face"])
        assert data["author"]["fans"] == len(graph.followers(data["author"]["mid"]))
        assert data["total_art_num"] == len(articles_of(data["author"]["mid"]))
        assert data["ctime"] <= data["publish_time"] <= data["mtime"]
    paragraphs = articles.view(TYPE3_ARTICLE)["opus"]["content"]["paragraphs"]
    for paragraph in paragraphs:
        assert set(paragraph) <= {"para_type", "text", "format", "pic", "line"}
        for node in paragraph.get("text", {}).get("nodes", []):
            if node["node_type"] == 1:
                assert set(node["word"]) == {"words", "font_size", "style", "font_level"}
    assert articles.view(member())["list"]["id"] == LIST_ID


def test_viewinfo_agrees_with_view(api: FakeApi) -> None:
    for cvid in (TYPE0_ARTICLE, TYPE3_ARTICLE, *list_articles(LIST_ID)):
        info = plain(api, VIEWINFO, id=cvid)["data"]
        data = articles.view(cvid)
        assert key_tree(info) == parse_keys(VIEWINFO_KEYS)
        assert (info["title"], info["stats"], info["mid"], info["type"]) == (
            data["title"],
            data["stats"],
            data["author"]["mid"],
            data["type"],
        )
        assert info["author_name"] == data["author"]["name"]
        assert info["image_urls"] == data["image_urls"]
        assert info["in_list"] == (data["list"] is not None)
    members = list_articles(LIST_ID)
    neighbours = [articles.viewinfo(cvid) for cvid in members]
    assert [info["pre"] for info in neighbours] == [0, *members[:-1]]
    assert [info["next"] for info in neighbours] == [*members[1:], 0]


def test_collections_and_their_articles(api: FakeApi) -> None:
    data = plain(api, LIST, id=LIST_ID)["data"]
    assert key_tree(data) == parse_keys(LIST_KEYS)
    assert [entry["id"] for entry in data["articles"]] == list(list_articles(LIST_ID))
    for entry in data["articles"]:
        assert key_tree(entry) == parse_keys(LIST_ENTRY_KEYS)
        assert entry["title"] == articles.view(entry["id"])["title"]
    collection = data["list"]
    assert collection == articles.view(member())["list"]
    assert (collection["id"], collection["mid"], collection["articles_count"]) == (
        LIST_ID,
        AUTHOR,
        len(data["articles"]),
    )
    assert collection["words"] == sum(entry["words"] for entry in data["articles"])
    assert data["author"]["name"] == user_facts(AUTHOR)["name"]
    assert data["author"]["vip"]["label"] is None
    assert data["attention"] is False


def test_space_article_list_pages(api: FakeApi) -> None:
    own = list(articles_of(AUTHOR))
    first = space(api, SPACE_ARTICLES, mid=AUTHOR)
    assert first["code"] == 0
    assert key_tree(first["data"]) == parse_keys(SPACE_KEYS)
    assert (first["data"]["pn"], first["data"]["ps"], first["data"]["count"]) == (1, 30, len(own))
    assert len(first["data"]["articles"]) == 30
    entries = list(first["data"]["articles"])
    for pn in (2, 3):
        page = space(api, SPACE_ARTICLES, mid=AUTHOR, pn=pn)["data"]
        assert page["count"] == len(own)
        entries += page["articles"]
    assert [entry["id"] for entry in entries] == own, "newest first, every article once"
    for entry in entries:
        keys = parse_keys(SPACE_ENTRY_KEYS)
        data = articles.view(entry["id"])
        if not data["tags"]:
            del keys["tags"]
        assert key_tree({**entry, "list": None}) == keys
        assert (entry["list"], entry.get("tags", [])) == (data["list"], data["tags"])
        if entry["list"]:
            assert key_tree(entry["list"]) == parse_keys(COLLECTION_KEYS)
        assert (entry["title"], entry["stats"], entry["type"]) == (
            data["title"],
            data["stats"],
            data["type"],
        )

    clamped = space(api, SPACE_ARTICLES, mid=AUTHOR, ps=100)["data"]
    assert (clamped["ps"], len(clamped["articles"])) == (30, 30)
    second = space(api, SPACE_ARTICLES, mid=AUTHOR, pn=2, ps=20)["data"]["articles"]
    assert second == entries[20:40]
    past = space(api, SPACE_ARTICLES, mid=AUTHOR, pn=9)
    assert past["data"] == {"articles": [], "pn": 9, "ps": 30, "count": len(own)}
    by_view = space(api, SPACE_ARTICLES, mid=AUTHOR, sort="view", ps=30)["data"]["articles"]
    views = [entry["stats"]["view"] for entry in by_view]
    assert views == sorted(views, reverse=True)
    assert space(api, SPACE_ARTICLES, mid=NO_ARTICLES)["data"] == {
        "articles": [],
        "pn": 1,
        "ps": 30,
        "count": 0,
    }
    for params, code in (
        ({"mid": AUTHOR, "sort": "newest"}, -400),
        ({"mid": AUTHOR, "pn": "x"}, -400),
        ({"mid": "abc"}, -400),
        *(({"mid": mid}, code) for mid, (code, _) in users.ERROR_MIDS.items()),
    ):
        assert space(api, SPACE_ARTICLES, **params)["code"] == code, params


def test_the_space_article_list_is_screened(api: FakeApi) -> None:
    mid = str(AUTHOR)
    assert get(api, SPACE_ARTICLES, signed(api, {"mid": mid}), cookies=BUVID)[1]["code"] == -352
    unsigned = urllib.parse.urlencode({**DM_IMG, "mid": mid})
    assert get(api, SPACE_ARTICLES, unsigned, cookies=BUVID)[1]["code"] == -352
    tampered = signed(api, {**DM_IMG, "mid": mid}).replace(f"mid={mid}", "mid=2")
    assert get(api, SPACE_ARTICLES, tampered, cookies=BUVID)[1]["code"] == -403
    assert space(api, SPACE_ARTICLES, "", mid=mid)["code"] == -352, "buvid3 is needed"
    logged_in = get(api, SPACE_ARTICLES, signed(api, {"mid": mid}), cookies=LOGGED_IN)[1]
    assert logged_in["code"] == 0


def test_reserved_unknown_and_malformed_ids(api: FakeApi) -> None:
    for path in (VIEW, VIEWINFO):
        for cvid, (code, message) in ERROR_CVIDS.items():
            assert plain(api, path, id=cvid) == {"code": code, "message": message, "ttl": 1}
        for cvid in (1, article_cvids()[-1] + 1):
            assert plain(api, path, id=cvid) == {"code": -404, "message": "啥都木有", "ttl": 1}
        for value in ("", "abc", "0", "-1", "cv1483", "1.5", "9" * 20, "１２"):
            assert plain(api, path, id=value) == {"code": -400, "message": "请求错误", "ttl": 1}
    assert plain(api, LIST, id=1) == {"code": -404, "message": "啥都木有", "ttl": 1}
    assert plain(api, LIST, id="rl1")["code"] == -400


# --- cards ----------------------------------------------------------------------------------


def test_cards_have_the_real_shapes_and_facts(api: FakeApi) -> None:
    aid = graph.uploads(graph.MANY_UPLOADS)[0]
    bvid = video_view(aid)["bvid"]
    wanted = [f"av{aid}", bvid, f"cv{TYPE0_ARTICLE}", f"cv{TYPE3_ARTICLE}", f"cv{member()}",
              f"lv{live.LIVE_ROOM}"]  # fmt: skip
    nothing = ["av404", "av62002", f"{bvid}x", "BV1notanid00", "cv404", "cv1", "cvx",
               "lv999999999", "15111509", "av0", "xx"]  # fmt: skip
    body = card_batch(api, wanted[:3] + nothing + wanted[3:])
    assert (body["code"], body["message"]) == (0, "0")
    data = body["data"]
    assert list(data) == wanted
    assert data == articles.cards(wanted)
    for key in wanted[:2]:
        card = data[key]
        view = video_view(aid)
        assert key_tree(card) == parse_keys(VIDEO_CARD_KEYS)
        assert (card["aid"], card["bvid"], card["title"], card["duration"]) == (
            aid,
            view["bvid"],
            view["title"],
            view["duration"],
        )
        assert (card["owner"], card["stat"]["view"]) == (view["owner"], view["stat"]["view"])
    for key in wanted[2:5]:
        card, view = data[key], articles.view(int(key[2:]))
        keys = expected_keys(ARTICLE_CARD_KEYS, card)
        if view["type"] == 3:
            del keys["attributes"], keys["dynamic"]
        assert key_tree(card) == keys
        assert card["author"] == {**view["author"], "fans": 0, "level": 0}
        assert {k: v for k, v in card.items() if k != "author"} == {
            k: v for k, v in view.items() if k in card and k != "author"
        }
    room = data[f"lv{live.LIVE_ROOM}"]
    info = live.room(live.LIVE_ROOM)
    assert key_tree(room) == parse_keys(LIVE_CARD_KEYS)
    assert (room["room_id"], room["uid"], room["title"], room["live_status"]) == (
        live.LIVE_ROOM,
        info["uid"],
        info["title"],
        1,
    )
    assert room["uname"] == user_facts(info["uid"])["name"]
    assert get(api, CARDS, signed(api, {"ids": wanted[0]}), headers=REFERER)[1]["code"] == 0


def test_a_room_named_twice_has_one_card(api: FakeApi) -> None:
    short, long = live.SHORT_ROOM
    merged = card_batch(api, [f"lv{short}", "av2", f"lv{long}"])["data"]
    assert list(merged) == ["av2", f"lv{long}"]
    merged = card_batch(api, [f"lv{long}", f"lv{short}"])["data"]
    assert list(merged) == [f"lv{short}"]
    assert merged[f"lv{short}"]["room_id"] == long
    assert list(card_batch(api, ["av2", "av2", "lv1", "lv1"])["data"]) == ["av2", "lv1"]


def test_the_cards_batch_limit_and_empty_batches(api: FakeApi) -> None:
    bad = {"code": -400, "message": "请求错误", "ttl": 1}
    ids = [f"av{aid}" for aid in range(2, 32)]
    assert len(card_batch(api, ids)["data"]) == 30
    assert card_batch(api, [*ids, "av40"]) == bad
    for query in ("", "ids=", "ids=,,"):
        assert get(api, CARDS, query, headers=REFERER)[1] == bad, query
    api.configure(cards_max_ids=3)
    assert len(card_batch(api, ids[:3])["data"]) == 3
    assert card_batch(api, ids[:4]) == bad


def test_the_cards_batch_needs_a_bilibili_referer(api: FakeApi) -> None:
    for headers in ({}, {"Referer": "https://evil.com/?r=https://www.bilibili.com/"}):
        assert card_batch(api, ["av2"], headers)["code"] == -352
    assert card_batch(api, ["av2"], {"Referer": "https://t.bilibili.com/"})["code"] == 0
    assert plain(api, VIEW, id=TYPE0_ARTICLE)["code"] == 0
    assert get(api, VIEW, f"id={TYPE0_ARTICLE}")[1]["code"] == 0, "view needs no Referer"


# --- live -----------------------------------------------------------------------------------


def test_rooms_agree_with_acc_info() -> None:
    rooms = live.rooms()
    assert len(rooms) > 500
    assert min(rooms) >= 1000
    shorts = [live.short_id(room) for room in rooms if live.short_id(room)]
    assert len(set(shorts)) == len(shorts)
    assert max(shorts) < 1000
    assert 0.1 < len(shorts) / len(rooms) < 0.3
    statuses = set()
    for mid in graph.graph_mids():
        shown = users.acc_info(mid)["live_room"]
        assert live.room_of(mid) == (shown["roomid"] or None)
        if shown["roomid"]:
            info = live.room(shown["roomid"])
            assert (info["uid"], info["title"], info["user_cover"]) == (
                mid,
                shown["title"],
                shown["cover"],
            )
            assert (info["live_status"] == 1) == (shown["liveStatus"] == 1)
            statuses.add(info["live_status"])
    assert statuses == {0, 1, 2}
    short, long = live.SHORT_ROOM
    assert live.short_id(long) == short
    assert live.room(short) == live.room(long)
    statuses_of = {live.LIVE_ROOM: 1, live.OFFLINE_ROOM: 0, live.ROTATING_ROOM: 2}
    for room, status in statuses_of.items():
        assert live.room(room)["live_status"] == status
    assert live.room_of(live.ROOM_OWNER) == live.LIVE_ROOM
    assert live.NO_ROOM_MID in graph.graph_mids()
    assert live.room_of(live.NO_ROOM_MID) is None


def test_get_info_in_the_live_envelope(api: FakeApi) -> None:
    short, long = live.SHORT_ROOM
    for room_id in (live.LIVE_ROOM, long, short):
        status, body = get(api, GET_INFO, f"room_id={room_id}")
        assert status == 200
        assert (body["code"], body["msg"], body["message"]) == (0, "ok", "ok")
        assert list(body) == ["code", "msg", "message", "data"]
        data = body["data"]
        assert key_tree(data) == parse_keys(ROOM_KEYS)
        assert data == live.room(room_id)
    assert body["data"]["room_id"] == long
    assert body["data"]["short_id"] == short
    on_air = live.room(live.LIVE_ROOM)
    assert re.fullmatch(r"20\d\d-\d\d-\d\d \d\d:\d\d:\d\d", on_air["live_time"])
    assert on_air["live_time"] != "0000-00-00 00:00:00"
    for room in (live.OFFLINE_ROOM, live.ROTATING_ROOM):
        assert live.room(room)["live_time"] == "0000-00-00 00:00:00"
    tags = [live.room(room)["tags"] for room in live.rooms()[:100]]
    assert "" in tags
    assert all(tag for joined in tags if joined for tag in joined.split(","))
    assert get(api, GET_INFO, "room_id=999999999")[1] == {
        "code": 1,
        "msg": "未找到该房间",
        "message": "未找到该房间",
        "data": [],
    }
    for value in ("", "abc", "0", "-1", "lv5440", "9" * 20):
        body = get(api, GET_INFO, urllib.parse.urlencode({"room_id": value}))[1]
        assert (body["code"], body["data"]) == (1, []), value
    assert [entry["code"] for entry in api.log()][-7:] == [1] * 7


def test_room_info_old_by_mid(api: FakeApi) -> None:
    body = get(api, ROOM_INFO_OLD, f"mid={live.ROOM_OWNER}")[1]
    assert (body["code"], body["msg"], body["message"]) == (0, "ok", "ok")
    data = body["data"]
    assert key_tree(data) == parse_keys(ROOM_INFO_OLD_KEYS)
    shown = users.acc_info(live.ROOM_OWNER)["live_room"]
    assert {key: data[key] for key in ("roomStatus", "liveStatus", "url", "title", "roomid")} == {
        key: shown[key] for key in ("roomStatus", "liveStatus", "url", "title", "roomid")
    }
    assert data["online"] == live.room(live.LIVE_ROOM)["online"] > 0
    assert get(api, ROOM_INFO_OLD, f"mid={live.NO_ROOM_MID}")[1]["data"] == {
        "roomStatus": 0,
        "roundStatus": 0,
        "liveStatus": 0,
        "url": "",
        "title": "",
        "cover": "",
        "online": 0,
        "roomid": 0,
        "broadcast_type": 0,
        "online_hidden": 0,
    }
    assert get(api, ROOM_INFO_OLD, "mid=abc")[1]["code"] == 1
    blocked = fetch(f"{api.url}{ROOM_INFO_OLD}?mid=2", headers={"User-Agent": "curl/8.5.0"})
    assert blocked[0] == 412, "a browser User-Agent is needed"


# --- knobs ----------------------------------------------------------------------------------


def test_cards_max_ids_knob() -> None:
    assert Knobs().cards_max_ids == 30
    knobs = Knobs()
    with pytest.raises(ValueError, match="whole number"):
        knobs.update({"cards_max_ids": 2.5})
    knobs.update({"cards_max_ids": 5.0})
    assert knobs.cards_max_ids == 5
    assert isinstance(knobs.cards_max_ids, int)
    with FakeApi(cards_max_ids=2) as api:
        assert api.config()["cards_max_ids"] == 2
        assert card_batch(api, ["av2", "av3", "av5"])["code"] == -400
