"""Tests of the fake Bilibili API server itself: shapes, data, risk control, faults.

The ``*_SHAPE`` strings are the real example responses saved with the API notes
(``examples/*.json``), flattened to ``path:type`` pairs (``[]`` marks list items;
``next_exp`` is ``"--"`` at level 6 and a number below, hence ``int|str``).
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import zlib
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from bilicrawl.ids import MAX_AID, av2bv
from bilicrawl.signing import key_from_url, mixin_key, signed_query
from tests.fakeapi import videos
from tests.fakeapi.answers import BAD_REQUEST
from tests.fakeapi.app import FAULT_KINDS, Knobs
from tests.fakeapi.data import user_card
from tests.fakeapi.process import FakeApi, FakeApiError
from tests.helpers.fakeapi_client import fetch, flatten, get, signed

if TYPE_CHECKING:
    pass

VIEW_SHAPE = """
code:int message:str ttl:int data:object data.bvid:str data.aid:int data.videos:int
data.tid:int data.tid_v2:int data.tname:str data.tname_v2:str data.copyright:int data.pic:str
data.title:str data.pubdate:int data.ctime:int data.desc:str data.desc_v2:array
data.desc_v2[]:object data.desc_v2[].raw_text:str data.desc_v2[].type:int
data.desc_v2[].biz_id:int data.state:int data.duration:int data.mission_id:int
data.rights:object data.rights.bp:int data.rights.elec:int data.rights.download:int
data.rights.movie:int data.rights.pay:int data.rights.hd5:int data.rights.no_reprint:int
data.rights.autoplay:int data.rights.ugc_pay:int data.rights.is_cooperation:int
data.rights.ugc_pay_preview:int data.rights.no_background:int data.rights.clean_mode:int
data.rights.is_stein_gate:int data.rights.is_360:int data.rights.no_share:int
data.rights.arc_pay:int data.rights.free_watch:int data.owner:object data.owner.mid:int
data.owner.name:str data.owner.face:str data.stat:object data.stat.aid:int data.stat.view:int
data.stat.danmaku:int data.stat.reply:int data.stat.favorite:int data.stat.coin:int
data.stat.share:int data.stat.now_rank:int data.stat.his_rank:int data.stat.like:int
data.stat.dislike:int data.stat.evaluation:str data.stat.vt:int data.argue_info:object
data.argue_info.argue_msg:str data.argue_info.argue_type:int data.argue_info.argue_link:str
data.dynamic:str data.cid:int data.dimension:object data.dimension.width:int
data.dimension.height:int data.dimension.rotate:int data.premiere:null data.teenage_mode:int
data.is_chargeable_season:bool data.is_story:bool data.is_upower_exclusive:bool
data.is_upower_play:bool data.is_upower_preview:bool data.enable_vt:int data.vt_display:str
data.is_upower_exclusive_with_qa:bool data.no_cache:bool data.pages:array data.pages[]:object
data.pages[].cid:int data.pages[].page:int data.pages[].from:str data.pages[].part:str
data.pages[].duration:int data.pages[].vid:str data.pages[].weblink:str
data.pages[].dimension:object data.pages[].dimension.width:int
data.pages[].dimension.height:int data.pages[].dimension.rotate:int data.pages[].ctime:int
data.subtitle:object data.subtitle.allow_submit:bool data.subtitle.list:array
data.subtitle.list[]:object data.subtitle.list[].id:int data.subtitle.list[].lan:str
data.subtitle.list[].lan_doc:str data.subtitle.list[].is_lock:bool
data.subtitle.list[].subtitle_url:str data.subtitle.list[].type:int
data.subtitle.list[].id_str:str data.subtitle.list[].ai_type:int
data.subtitle.list[].ai_status:int data.subtitle.list[].author:object
data.subtitle.list[].author.mid:int data.subtitle.list[].author.name:str
data.subtitle.list[].author.sex:str data.subtitle.list[].author.face:str
data.subtitle.list[].author.sign:str data.subtitle.list[].author.rank:int
data.subtitle.list[].author.birthday:int data.subtitle.list[].author.is_fake_account:int
data.subtitle.list[].author.is_deleted:int data.subtitle.list[].author.in_reg_audit:int
data.subtitle.list[].author.is_senior_member:int data.subtitle.list[].author.name_render:null
data.staff:array data.staff[]:object data.staff[].mid:int data.staff[].title:str
data.staff[].name:str data.staff[].face:str data.staff[].vip:object data.staff[].vip.type:int
data.staff[].vip.status:int data.staff[].vip.due_date:int data.staff[].vip.vip_pay_type:int
data.staff[].vip.theme_type:int data.staff[].vip.label:object data.staff[].vip.label.path:str
data.staff[].vip.label.text:str data.staff[].vip.label.label_theme:str
data.staff[].vip.label.text_color:str data.staff[].vip.label.bg_style:int
data.staff[].vip.label.bg_color:str data.staff[].vip.label.border_color:str
data.staff[].vip.label.use_img_label:bool data.staff[].vip.label.img_label_uri_hans:str
data.staff[].vip.label.img_label_uri_hant:str
data.staff[].vip.label.img_label_uri_hans_static:str
data.staff[].vip.label.img_label_uri_hant_static:str data.staff[].vip.avatar_subscript:int
data.staff[].vip.nickname_color:str data.staff[].vip.role:int
data.staff[].vip.avatar_subscript_url:str data.staff[].vip.tv_vip_status:int
data.staff[].vip.tv_vip_pay_type:int data.staff[].vip.tv_due_date:int
data.staff[].vip.avatar_icon:object data.staff[].vip.avatar_icon.icon_type:int
data.staff[].vip.avatar_icon.icon_resource:object data.staff[].official:object
data.staff[].official.role:int data.staff[].official.title:str data.staff[].official.desc:str
data.staff[].official.type:int data.staff[].follower:int data.staff[].label_style:int
data.is_season_display:bool data.user_garb:object data.user_garb.url_image_ani_cut:str
data.honor_reply:object data.honor_reply.honor:array data.honor_reply.honor[]:object
data.honor_reply.honor[].aid:int data.honor_reply.honor[].type:int
data.honor_reply.honor[].desc:str data.honor_reply.honor[].weekly_recommend_num:int
data.like_icon:str data.need_jump_bv:bool data.disable_show_up_info:bool data.is_story_play:int
data.is_view_self:bool
"""
PAGELIST_SHAPE = """
code:int message:str ttl:int data:array data[]:object data[].cid:int data[].page:int
data[].from:str data[].part:str data[].duration:int data[].vid:str data[].weblink:str
data[].dimension:object data[].dimension.width:int data[].dimension.height:int
data[].dimension.rotate:int
"""
CARD_SHAPE = """
code:int message:str ttl:int data:object data.card:object data.card.mid:str data.card.name:str
data.card.approve:bool data.card.sex:str data.card.rank:str data.card.face:str
data.card.DisplayRank:str data.card.regtime:int data.card.spacesta:int data.card.birthday:str
data.card.place:str data.card.description:str data.card.article:int data.card.attentions:array
data.card.fans:int data.card.friend:int data.card.attention:int data.card.sign:str
data.card.level_info:object data.card.level_info.current_level:int
data.card.level_info.current_min:int data.card.level_info.current_exp:int
data.card.level_info.next_exp:int data.card.pendant:object data.card.pendant.pid:int
data.card.pendant.name:str data.card.pendant.image:str data.card.pendant.expire:int
data.card.pendant.image_enhance:str data.card.pendant.image_enhance_frame:str
data.card.nameplate:object data.card.nameplate.nid:int data.card.nameplate.name:str
data.card.nameplate.image:str data.card.nameplate.image_small:str data.card.nameplate.level:str
data.card.nameplate.condition:str data.card.Official:object data.card.Official.role:int
data.card.Official.title:str data.card.Official.desc:str data.card.Official.type:int
data.card.official_verify:object data.card.official_verify.type:int
data.card.official_verify.desc:str data.card.vip:object data.card.vip.type:int
data.card.vip.status:int data.card.vip.due_date:int data.card.vip.vip_pay_type:int
data.card.vip.theme_type:int data.card.vip.label:object data.card.vip.label.path:str
data.card.vip.label.text:str data.card.vip.label.label_theme:str
data.card.vip.label.text_color:str data.card.vip.label.bg_style:int
data.card.vip.label.bg_color:str data.card.vip.label.border_color:str
data.card.vip.avatar_subscript:int data.card.vip.nickname_color:str data.card.vip.role:int
data.card.vip.avatar_subscript_url:str data.card.vip.vipType:int data.card.vip.vipStatus:int
data.space:object data.space.s_img:str data.space.l_img:str data.following:bool
data.archive_count:int data.article_count:int data.follower:int data.like_num:int
"""
NAV_SHAPE = """
code:int message:str ttl:int data:object data.isLogin:bool data.wbi_img:object
data.wbi_img.img_url:str data.wbi_img.sub_url:str
"""
NAV_LOGGED_IN_SHAPE = """
code:int message:str ttl:int data:object data.isLogin:bool data.email_verified:int
data.face:str data.face_nft:int data.face_nft_type:int data.level_info:object
data.level_info.current_level:int data.level_info.current_min:int
data.level_info.current_exp:int data.level_info.next_exp:int|str data.mid:int
data.mobile_verified:int data.money:float data.moral:int data.official:object
data.official.role:int data.official.title:str data.official.desc:str data.official.type:int
data.officialVerify:object data.officialVerify.type:int data.officialVerify.desc:str
data.pendant:object data.pendant.pid:int data.pendant.name:str data.pendant.image:str
data.pendant.expire:int data.pendant.image_enhance:str data.pendant.image_enhance_frame:str
data.scores:int data.uname:str data.vipDueDate:int data.vipStatus:int data.vipType:int
data.vip_pay_type:int data.vip_theme_type:int data.vip_label:object data.vip_label.path:str
data.vip_label.text:str data.vip_label.label_theme:str data.vip_label.text_color:str
data.vip_label.bg_style:int data.vip_label.bg_color:str data.vip_label.border_color:str
data.vip_label.use_img_label:bool data.vip_label.img_label_uri_hans:str
data.vip_label.img_label_uri_hant:str data.vip_label.img_label_uri_hans_static:str
data.vip_label.img_label_uri_hant_static:str data.vip_avatar_subscript:int
data.vip_nickname_color:str data.vip:object data.vip.type:int data.vip.status:int
data.vip.due_date:int data.vip.vip_pay_type:int data.vip.theme_type:int data.vip.label:object
data.vip.label.path:str data.vip.label.text:str data.vip.label.label_theme:str
data.vip.label.text_color:str data.vip.label.bg_style:int data.vip.label.bg_color:str
data.vip.label.border_color:str data.vip.label.use_img_label:bool
data.vip.label.img_label_uri_hans:str data.vip.label.img_label_uri_hant:str
data.vip.label.img_label_uri_hans_static:str data.vip.label.img_label_uri_hant_static:str
data.vip.avatar_subscript:int data.vip.nickname_color:str data.vip.role:int
data.vip.avatar_subscript_url:str data.vip.tv_vip_status:int data.vip.tv_vip_pay_type:int
data.vip.tv_due_date:int data.wallet:object data.wallet.mid:int data.wallet.bcoin_balance:int
data.wallet.coupon_balance:int data.wallet.coupon_due_time:int data.has_shop:bool
data.shop_url:str data.allowance_count:int data.answer_status:int data.is_senior_member:int
data.wbi_img:object data.wbi_img.img_url:str data.wbi_img.sub_url:str data.is_jury:bool
"""
SPI_SHAPE = """
code:int data:object data.b_3:str data.b_4:str message:str
"""

VIEW = "/x/web-interface/view"
DETAIL = "/x/web-interface/wbi/view/detail"
NAV = "/x/web-interface/nav"
SAMPLE_AIDS = (1, 2, 170001, 85440373, 114375683741573, MAX_AID - 1)
BLOCKED_412 = {"code": -412, "message": "请求被拦截", "ttl": 1, "data": None}


# --- helpers --------------------------------------------------------------------------------


def shape_problems(response: object, shape: str, optional: tuple[str, ...] = ()) -> list[str]:
    """What in *response* differs from *shape*: missing paths and wrong JSON types.

    A path may be missing if it starts with one of *optional* or lies inside a
    list that is empty here; extra keys are allowed.
    """
    actual = flatten(response)
    problems = []
    for token in shape.split():
        path, _, types = token.rpartition(":")
        if path not in actual:
            inside_empty_list = any(
                path[:i] in actual and f"{path[:i]}[]" not in actual
                for i in (m.start() for m in re.finditer(r"\[\]", path))
            )
            if not inside_empty_list and not path.startswith(optional):
                problems.append(f"{path} missing")
        elif not actual[path] <= set(types.split("|")):
            problems.append(f"{path} is {sorted(actual[path])}, want {types}")
    return problems


# --- shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("aid", SAMPLE_AIDS)
def test_view_has_every_key_of_the_real_example(api: FakeApi, aid: int) -> None:
    status, body = get(api, VIEW, f"aid={aid}")
    assert status == 200
    assert shape_problems(body, VIEW_SHAPE, ("data.staff", "data.honor_reply.honor")) == []
    assert body["data"] == videos.video_view(aid)


def test_staff_and_honors_have_the_real_shape(api: FakeApi) -> None:
    staffed = next(aid for aid in range(1, 500) if "staff" in videos.video_view(aid))
    honored = next(aid for aid in range(1, 500) if videos.video_view(aid)["honor_reply"])
    for aid, optional in ((staffed, "data.honor_reply.honor"), (honored, "data.staff")):
        assert shape_problems(get(api, VIEW, f"aid={aid}")[1], VIEW_SHAPE, (optional,)) == []


def test_pagelist_tags_and_detail_shapes(api: FakeApi) -> None:
    aid = 170001
    _, pages = get(api, "/x/player/pagelist", f"aid={aid}")
    assert shape_problems(pages, PAGELIST_SHAPE) == []
    assert [{**p, "ctime": videos.video_view(aid)["ctime"]} for p in pages["data"]] == (
        videos.video_view(aid)["pages"]
    )
    _, tags = get(api, "/x/web-interface/view/detail/tag", f"bvid={av2bv(aid)}")
    assert tags["code"] == 0
    assert tags["data"] == videos.video_tags(aid)
    tag_types = {tag["tag_type"] for a in range(1, 200) for tag in videos.video_tags(a)}
    assert tag_types == {"old_channel", "topic", "bgm"}
    for tag in (tag for a in range(1, 200) for tag in videos.video_tags(a)):
        assert set(tag) == {"tag_id", "tag_name", "music_id", "tag_type", "jump_url"}
        assert tag["music_id"].startswith("MA") == (tag["tag_type"] == "bgm")

    status, detail = get(api, DETAIL, signed(api, {"aid": str(aid)}), cookies="buvid3=x")
    assert (status, detail["code"]) == (200, 0)
    assert set(detail["data"]) == {"View", "Tags", "Card", "Related"}
    assert detail["data"]["View"] == videos.video_view(aid)
    card = {**detail, "data": detail["data"]["Card"]}
    assert shape_problems(card, CARD_SHAPE) == []
    assert card["data"]["card"]["mid"] == str(videos.video_view(aid)["owner"]["mid"])
    related_lengths = {len(videos.related(a)) for a in range(1, 100)}
    assert min(related_lengths) == 0
    assert max(related_lengths) == 10
    for item in videos.related(aid):
        assert "pages" not in item
        assert item["bvid"] == av2bv(item["aid"])


def test_nav_logged_out_and_in(api: FakeApi) -> None:
    img_key, sub_key = api.keys()
    _, nav = get(api, NAV)
    assert shape_problems(nav, NAV_SHAPE) == []
    assert (nav["code"], nav["message"], nav["data"]["isLogin"]) == (-101, "账号未登录", False)
    urls = nav["data"]["wbi_img"]
    assert (key_from_url(urls["img_url"]), key_from_url(urls["sub_url"])) == (img_key, sub_key)
    assert urls["img_url"] == f"https://i0.hdslb.com/bfs/wbi/{img_key}.png"

    _, nav = get(api, NAV, cookies="SESSDATA=abc%2C123")
    assert shape_problems(nav, NAV_LOGGED_IN_SHAPE) == []
    assert (nav["code"], nav["data"]["isLogin"]) == (0, True)
    assert nav["data"]["wbi_img"] == urls


def test_finger_spi_gives_fresh_buvids(api: FakeApi) -> None:
    first, second = (get(api, "/x/frontend/finger/spi")[1] for _ in range(2))
    assert shape_problems(first, SPI_SHAPE) == []
    assert (first["code"], first["message"]) == (0, "ok")
    uuid = r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"
    assert re.fullmatch(rf"{uuid}\d{{5}}infoc", first["data"]["b_3"])
    assert re.fullmatch(rf"{uuid}\d{{5}}-\d{{9}}-[A-Za-z0-9+/]{{22}}==", first["data"]["b_4"])
    assert first["data"] != second["data"]


# --- data -----------------------------------------------------------------------------------


def test_generated_videos_are_consistent_and_varied() -> None:
    views = [videos.video_view(aid) for aid in range(1, 400)]
    for view in views:
        pages = view["pages"]
        assert [page["page"] for page in pages] == list(range(1, len(pages) + 1))
        assert len({page["cid"] for page in pages}) == len(pages) == view["videos"]
        assert view["cid"] == pages[0]["cid"]
        assert view["duration"] == sum(page["duration"] for page in pages)
        stat = view["stat"]
        assert stat["view"] >= stat["like"] >= stat["coin"] >= 0
        assert stat["like"] >= stat["favorite"] >= 0
        assert 1245974400 <= view["pubdate"] < 1798761600  # 2009-06-26 .. 2027
        assert view["ctime"] <= view["pubdate"]
        assert view["copyright"] in (1, 2)
        assert view["bvid"] == av2bv(view["aid"])
        assert view["owner"]["name"] == user_card(view["owner"]["mid"])["card"]["name"]
        if "staff" in view:
            assert 2 <= len(view["staff"]) <= 4
            assert view["staff"][0]["title"] == "UP主"
            assert view["staff"][0]["mid"] == view["owner"]["mid"]
    assert 0.3 < sum(view["videos"] == 1 for view in views) / len(views) < 0.7
    assert any(view["videos"] >= 20 for view in views)
    assert 0.03 < sum("staff" in view for view in views) / len(views) < 0.2
    assert any(view["stat"]["view"] > 2**31 for view in views)
    assert any(view["stat"]["view"] == 0 for view in views)
    assert any(0 in view["stat"].values() and view["stat"]["view"] for view in views)
    texts = "".join(view["title"] + view["desc"] for view in views)
    for needle in ("🎉", "😂", "\n", '"', "\\", "ボ"):
        assert needle in texts
    assert any("\n" in view["title"] for view in views)
    assert len({view["owner"]["mid"] for view in views}) < len(views)


def test_same_video_by_aid_bvid_and_in_another_process(api: FakeApi) -> None:
    aids = (170001, 114375683741573)
    paths = (VIEW, "/x/player/pagelist", "/x/web-interface/view/detail/tag")
    here = {(p, a): fetch(f"{api.url}{p}?aid={a}")[2] for p in paths for a in aids}
    for (path, aid), body in here.items():
        assert fetch(f"{api.url}{path}?bvid={av2bv(aid)}")[2] == body
    with FakeApi() as other:
        for (path, aid), body in here.items():
            assert fetch(f"{other.url}{path}?aid={aid}")[2] == body


ERROR_CASES = [
    *((f"aid={aid}", code, message) for aid, (code, message) in videos.ERROR_AIDS.items()),
    *((f"bvid={av2bv(aid)}", code, message) for aid, (code, message) in videos.ERROR_AIDS.items()),
    *(
        (query, *BAD_REQUEST)
        for query in ("", "aid=", "aid=abc", "aid=0", "aid=-5", f"aid={MAX_AID}", "aid=1.5",
                      "bvid=BV1xx411c7m", "bvid=BV1xx411c7mO", "bvid=av170001")
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    "path", [VIEW, "/x/player/pagelist", "/x/web-interface/view/detail/tag", DETAIL]
)
def test_reserved_and_malformed_ids(api: FakeApi, path: str) -> None:
    for raw_query, code, message in ERROR_CASES:
        query = raw_query
        if path == DETAIL:
            query = signed(api, dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True)))
        status, body = get(api, path, query, cookies="buvid3=x")
        assert (status, body) == (200, {"code": code, "message": message, "ttl": 1}), query


def test_unknown_path_is_a_logged_404(api: FakeApi) -> None:
    status, body = get(api, "/x/no/such/thing")
    assert (status, body["code"]) == (404, -404)
    assert api.log()[-1]["path"] == "/x/no/such/thing"


# --- risk control ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "agent",
    [
        None,
        "Python-urllib/3.11",
        "curl/8.5.0",
        "Scrapy/2.19.0 (+https://scrapy.org)",
        "Mozilla/5.0 (compatible; python-requests/2.32)",
        "Mozilla/5.0 okhttp/4.12",
        "Opera/9.80 (Windows NT 6.1)",
    ],
)
def test_non_browser_user_agents_get_the_html_412(api: FakeApi, agent: str | None) -> None:
    host = urllib.parse.urlsplit(api.url).netloc
    connection = http.client.HTTPConnection(host, timeout=10)
    connection.putrequest("GET", f"{VIEW}?aid=2", skip_accept_encoding=True)
    if agent is not None:
        connection.putheader("User-Agent", agent)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    assert response.status == 412
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<title>出错啦! - bilibili.com</title>" in body
    assert api.log()[-1]["status"] == 412


def test_rate_limit_bans_then_recovers(api: FakeApi) -> None:
    api.configure(rate_limit=5, ban_seconds=0.8)
    answers = [get(api, VIEW, "aid=2") for _ in range(8)]
    assert [status for status, _ in answers] == [200] * 5 + [412] * 3
    assert answers[-1][1] == BLOCKED_412
    assert get(api, NAV)[0] == 412  # the ban covers every API path
    assert fetch(f"{api.url}/_fake/keys")[0] == 200  # but never the admin ones
    time.sleep(0.9)
    assert get(api, VIEW, "aid=2")[0] == 200
    events = [entry["event"] for entry in api.log()]
    assert events.count("ban-start") == 1
    assert events.count("banned") == 3


def test_ban_all(api: FakeApi) -> None:
    api.configure(ban_all=True)
    status, headers, body = fetch(f"{api.url}/x/frontend/finger/spi")
    assert (status, json.loads(body)) == (412, BLOCKED_412)
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    api.configure(ban_all=False)
    assert get(api, "/x/frontend/finger/spi")[0] == 200


def test_wbi_signatures(api: FakeApi) -> None:
    buvid = "buvid3=D9656DA8-9BEF-F464-5B72-C4849AFD336379044infoc"
    params = {"bvid": av2bv(2), "keyword": "世 界!()*'", "web_location": "1550101"}
    good = signed(api, params)
    assert get(api, DETAIL, good, cookies=buvid)[1]["code"] == 0
    _, missing = get(api, DETAIL, f"bvid={av2bv(2)}", cookies=buvid)
    assert missing["code"] == -352
    assert missing["message"] == "风控校验失败"
    assert re.fullmatch(r"voucher_[0-9a-f-]{36}", missing["data"]["v_voucher"])
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    denied = {"code": -403, "message": "访问权限不足", "ttl": 1}
    assert get(api, DETAIL, wrong, cookies=buvid)[1] == denied
    stale = signed_query(params, mixin_key(*api.keys()), int(time.time()) - 601)
    assert get(api, DETAIL, stale, cookies=buvid)[1] == denied
    assert get(api, "/x/web-interface/wbi/view", signed(api, {"aid": "2"}), cookies=buvid)[1][
        "data"
    ] == videos.video_view(2)

    old_keys = api.keys()
    new_keys = api.rotate_keys()
    assert new_keys != old_keys
    assert api.keys() == new_keys
    assert get(api, DETAIL, good, cookies=buvid)[1] == denied
    urls = get(api, NAV)[1]["data"]["wbi_img"]
    assert (key_from_url(urls["img_url"]), key_from_url(urls["sub_url"])) == new_keys
    assert get(api, DETAIL, signed(api, params, new_keys), cookies=buvid)[1]["code"] == 0

    api.configure(require_wbi=False)
    assert get(api, DETAIL, "aid=2", cookies=buvid)[1]["code"] == 0


def test_keys_rotate_on_a_timer(api: FakeApi) -> None:
    first = api.keys()
    api.configure(wbi_rotate_seconds=0.3)
    assert api.keys() == first
    time.sleep(0.35)
    second = api.keys()
    assert second != first
    api.configure(wbi_rotate_seconds=0)
    assert api.keys() == second


def test_wbi_paths_need_buvid3(api: FakeApi) -> None:
    query = signed(api, {"aid": "2"})
    _, body = get(api, DETAIL, query)
    assert body["code"] == -352
    assert body["data"]["v_voucher"].startswith("voucher_")
    assert get(api, DETAIL, query, cookies="buvid3=x")[1]["code"] == 0
    assert get(api, VIEW, "aid=2")[1]["code"] == 0  # not a /wbi/ path
    api.configure(require_buvid=False)
    assert get(api, DETAIL, query)[1]["code"] == 0


# --- faults ---------------------------------------------------------------------------------


def observe(url: str) -> str:
    """What a client sees: "ok", or the kind of failure it got."""
    try:
        status, _, body = fetch(url)
    except http.client.IncompleteRead:
        return "truncate"
    except (ConnectionError, urllib.error.URLError):
        return "drop"
    if status == 412 or status >= 500:
        return "http412" if status == 412 else "http5xx"
    if body.lstrip().startswith(b"<"):
        return "html"
    try:
        code = json.loads(body)["code"]
    except ValueError:
        return "truncate-json"
    return "ok" if code == 0 else f"code{code}"


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_is_visible_to_the_client(api: FakeApi, kind: str) -> None:
    api.configure(fault_rate=1, fault_kinds=[kind])
    for path in (f"{VIEW}?aid=2", NAV):
        assert observe(api.url + path) == kind
    assert [entry["fault"] for entry in api.log()] == [kind, kind]


def test_fault_rate_is_roughly_respected(api: FakeApi) -> None:
    api.configure(fault_rate=0.25)
    seen = [observe(f"{api.url}{VIEW}?aid={aid}") for aid in range(1, 201)]
    log = api.log()
    assert len(log) == 200
    faults = [entry["fault"] for entry in log]
    assert 0.15 < sum(f is not None for f in faults) / 200 < 0.35
    assert {f for f in faults if f} == set(FAULT_KINDS)
    for fault, outcome in zip(faults, seen, strict=True):
        assert outcome == ("ok" if fault is None else fault)


def test_an_html_fault_is_an_error_page_on_http_200(api: FakeApi) -> None:
    api.configure(fault_rate=1, fault_kinds=["html"])
    status, headers, body = fetch(f"{api.url}{VIEW}?aid=2")
    assert (status, headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert body.startswith(b"<!DOCTYPE html>")
    assert "出错啦" in body.decode()
    assert api.log()[0]["code"] is None


def test_a_kind_repeated_in_fault_kinds_is_drawn_more_often(api: FakeApi) -> None:
    api.configure(fault_rate=1, fault_kinds=["http5xx"] * 9 + ["code-799"])
    seen = Counter(observe(f"{api.url}{VIEW}?aid={aid}") for aid in range(1, 101))
    assert set(seen) == {"http5xx", "code-799"}
    assert seen["code-799"] < 25 < seen["http5xx"]


def test_compression(api: FakeApi) -> None:
    plain = fetch(f"{api.url}{VIEW}?aid=2")
    assert "Content-Encoding" not in plain[1]
    decoders = {"gzip": gzip.decompress, "deflate": zlib.decompress}
    for accept, coding in (
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("gzip;q=0, deflate", "deflate"),
    ):
        _, headers, body = fetch(f"{api.url}{VIEW}?aid=2", headers={"Accept-Encoding": accept})
        assert headers["Content-Encoding"] == coding
        assert decoders[coding](body) == plain[2]
    brotli = pytest.importorskip("brotli")
    _, headers, body = fetch(f"{api.url}{VIEW}?aid=2", {"Accept-Encoding": "gzip, deflate, br"})
    assert headers["Content-Encoding"] == "br"
    assert brotli.decompress(body) == plain[2]


# --- admin ----------------------------------------------------------------------------------


def test_log_and_admin(api: FakeApi) -> None:
    before = time.time()
    get(api, VIEW, "aid=404&x=%E4%B8%96")
    api.config()
    api.keys()
    (entry,) = api.log()
    assert before <= entry["t"] <= time.time()
    assert entry == {
        **entry,
        "path": VIEW,
        "query": {"aid": "404", "x": "世"},
        "client": "127.0.0.1",
        "status": 200,
        "code": -404,
        "fault": None,
    }
    api.reset()
    assert api.log() == []
    with pytest.raises(FakeApiError, match="unknown knob"):
        api.configure(nope=1)
    with pytest.raises(FakeApiError, match="fault_rate"):
        api.configure(fault_rate=2)
    with pytest.raises(FakeApiError, match="fault_kinds"):
        api.configure(fault_kinds=["explode"])
    assert api.config() == vars(Knobs())


def test_process_fails_clearly() -> None:
    with pytest.raises(FakeApiError, match="exited with code 2"):
        FakeApi(fault_rate=7).start()
    with pytest.raises(TypeError, match="unknown FakeApi options"):
        FakeApi(colour="red")
