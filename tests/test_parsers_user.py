"""Golden tests of the user, relation and upload-list parsers.

The payloads are the ``data`` objects of the real examples saved with the API
notes (bilibili-API-collect; docs/bilibili-api.md, Saved examples), copied verbatim into
tests/fixtures/<endpoint>/; only the recArchivesByKeywords page is hand-written.
Expected values are written out in full, so any change in what a parser keeps
shows up as a diff.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import jsonschema
import pytest
from itemadapter import ItemAdapter

from bilicrawl.items import LiveRoom, Official, OfficialVerify, UserItem, UserStubItem, Vip
from bilicrawl.parsers.payload import PayloadError
from bilicrawl.parsers.user import (
    ListedUser,
    RelationList,
    RelationStat,
    UploadsPage,
    parse_arc_search,
    parse_rec_archives,
    parse_relation_list,
    parse_relation_stat,
    parse_user,
)
from tests.helpers.payloads import (
    ACC_INFO,
    ARC_SEARCH,
    CARD,
    CRAWLED_AT,
    FANS,
    FOLLOWERS,
    FOLLOWINGS,
    REC_ARCHIVES,
    RELATION_STAT,
    UPSTAT,
)
from tests.utils import DELETE, FIXTURES, edit

ERRORS = FIXTURES / "errors.json"


EXPECTED_USER = UserItem(
    mid=2,
    name="碧诗",
    sex="男",
    face="https://i2.hdslb.com/bfs/face/ef0457addb24141e15dfac6fbf45293ccf1e32ab.jpg",
    sign="https://kami.im 直男过气网红 #  We Are Star Dust",
    level=6,
    birthday="09-19",
    silence=0,
    is_senior_member=0,
    official=Official(role=2, title="bilibili创始人（站长）", desc="", type=0),
    vip=Vip(type=2, status=1, label="十年大会员"),
    live_room=LiveRoom(
        room_id=1024,
        live_status=0,
        title="试图恰鸡",
        url="https://live.bilibili.com/1024?broadcast_type=0&is_room_feed=0",
        cover=(
            "http://i0.hdslb.com/bfs/live/new_room_cover/96ee5bfd0279a0f18b190340334f43f473038"
            "288.jpg"
        ),
    ),
    follower=969999,
    following=234,
    archive_count=37,
    article_count=0,
    likes=3547978,
    archive_view=213567370,
    article_view=3230808,
    crawled_at=CRAWLED_AT,
)

EXPECTED_FOLLOWERS = RelationList(
    total=3776,
    users=[
        ListedUser(
            stub=UserStubItem(
                mid=289796932,
                name="Astlinga_星灵",
                face="https://i1.hdslb.com/bfs/face/005264524d05c0b8c132acc3ee88bb839351025b.jpg",
                sign="",
                official=OfficialVerify(type=-1, desc=""),
                vip=Vip(type=1, status=0, label=""),
            ),
            mtime=1746199088,
        ),
        ListedUser(
            stub=UserStubItem(
                mid=3494375621396821,
                name="JSRCode",
                face="https://i1.hdslb.com/bfs/face/f6c74700c72d27ae224c5311634b4a3770e3cdcf.jpg",
                sign="一个喜欢码代码的高中牲",
                official=OfficialVerify(type=-1, desc=""),
                vip=Vip(type=0, status=0, label=""),
            ),
            mtime=1746098997,
        ),
    ],
)

EXPECTED_FOLLOWINGS = RelationList(
    total=1028,
    users=[
        ListedUser(
            stub=UserStubItem(
                mid=14082,
                name="山新",
                face="https://i0.hdslb.com/bfs/face/74c82caee6d9eb623e56161ea8ed6d68afabfeae.jpg",
                sign=(
                    "都说了是天依爹地，不是妈咪。\r私信有点多回复不过来～商业合作啥的请移步Wei"
                    "bo私信@山新 哦哦哦～"
                ),
                official=OfficialVerify(type=0, desc="配音演员、声优。洛天依声源提供者。"),
                vip=Vip(type=2, status=1, label=""),
            ),
            mtime=1584271945,
        ),
        ListedUser(
            stub=UserStubItem(
                mid=420831218,
                name="支付宝Alipay",
                face="https://i2.hdslb.com/bfs/face/aaf18aeb2d9822e28a590bd8d878572ca8c59e04.jpg",
                sign="阿支来了，关注点赞转发投币四连走起！",
                official=OfficialVerify(type=1, desc="支付宝官方账号"),
                vip=Vip(type=1, status=1, label=""),
            ),
            mtime=1584208169,
        ),
    ],
)


def user_payloads() -> dict[str, Any]:
    return copy.deepcopy({"acc_info": ACC_INFO, "card": CARD, "upstat": UPSTAT})


def parse(payloads: dict[str, Any]) -> UserItem:
    return parse_user(
        payloads["acc_info"], payloads["card"], payloads["upstat"], crawled_at=CRAWLED_AT
    )


def test_parse_user_golden() -> None:
    assert parse_user(ACC_INFO, CARD, UPSTAT, crawled_at=CRAWLED_AT) == EXPECTED_USER


def test_parse_user_without_upstat() -> None:
    item = parse_user(ACC_INFO, CARD, None, crawled_at=CRAWLED_AT)
    assert ItemAdapter(item).asdict() == {
        **ItemAdapter(EXPECTED_USER).asdict(),
        "archive_view": None,
        "article_view": None,
    }


def test_anonymous_upstat_leaves_views_unknown() -> None:
    item = parse_user(ACC_INFO, CARD, {}, crawled_at=CRAWLED_AT)
    assert (item.archive_view, item.article_view) == (None, None)


def test_parse_user_does_not_mutate_input() -> None:
    payloads = user_payloads()
    parse(payloads)
    assert payloads == user_payloads()


def test_code0_voucher_answer_is_rejected() -> None:
    voucher = json.loads(ERRORS.read_text(encoding="utf-8"))["wbi_missing_voucher_code0"]
    assert voucher["code"] == 0
    with pytest.raises(PayloadError, match=r"required field 'acc_info\.mid' is missing"):
        parse_user(voucher["data"], CARD, None, crawled_at=CRAWLED_AT)


def test_card_of_another_user_is_rejected() -> None:
    payloads = user_payloads()
    payloads["card"]["card"]["mid"] = "3"
    with pytest.raises(PayloadError, match=r"'card\.card\.mid' is '3', acc_info\.mid is 2"):
        parse(payloads)


@pytest.mark.parametrize("live_room", [None, DELETE])
def test_without_live_room(live_room: object) -> None:
    payloads = user_payloads()
    edit(payloads, "acc_info.live_room", live_room)
    assert parse(payloads).live_room is None


def test_live_room_with_roomid_0_is_none() -> None:
    payloads = user_payloads()
    payloads["acc_info"]["live_room"]["roomid"] = 0
    assert parse(payloads).live_room is None


@pytest.mark.parametrize(
    ("path", "value", "field", "expected"),
    [
        ("acc_info.birthday", "", "birthday", ""),
        ("acc_info.birthday", DELETE, "birthday", ""),
        ("acc_info.is_senior_member", DELETE, "is_senior_member", 0),
        ("acc_info.is_senior_member", 1, "is_senior_member", 1),
        ("acc_info.vip.label", DELETE, "vip", Vip(type=2, status=1, label="")),
        ("acc_info.vip.label.text", DELETE, "vip", Vip(type=2, status=1, label="")),
    ],
)
def test_optional_profile_fields(path: str, value: object, field: str, expected: object) -> None:
    payloads = user_payloads()
    edit(payloads, path, value)
    assert getattr(parse(payloads), field) == expected


@pytest.mark.parametrize(
    "path",
    ["acc_info.name", "acc_info.sex", "acc_info.face", "acc_info.sign", "acc_info.level",
     "acc_info.silence", "acc_info.official", "acc_info.official.type", "acc_info.vip",
     "acc_info.vip.status", "acc_info.live_room.roomid", "acc_info.live_room.liveStatus",
     "card.card", "card.card.mid", "card.card.attention", "card.follower",
     "card.archive_count", "card.like_num"],
)  # fmt: skip
def test_missing_user_field_raises(path: str) -> None:
    payloads = user_payloads()
    edit(payloads, path, DELETE)
    with pytest.raises(PayloadError, match=rf"required field '{re.escape(path)}' is missing"):
        parse(payloads)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("acc_info.mid", "2"),
        ("acc_info.level", True),  # a bool where an int belongs
        ("card.like_num", True),
        ("card.follower", 969999.0),
        ("card.card.mid", 2),  # the card's mid is a string
        ("acc_info.official", []),
        ("acc_info.vip.label", "十年大会员"),
        ("acc_info.live_room", "https://live.bilibili.com/1024"),
        ("upstat.archive.view", "213567370"),
        ("upstat.article", 3230808),
        ("upstat", []),
        ("card", None),
    ],
)
def test_wrong_user_field_type_raises(path: str, value: object) -> None:
    payloads = user_payloads()
    edit(payloads, path, value)
    with pytest.raises(PayloadError, match=rf"field '{re.escape(path)}' should be "):
        parse(payloads)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (FOLLOWERS, EXPECTED_FOLLOWERS),
        (FANS, EXPECTED_FOLLOWERS),
        (FOLLOWINGS, EXPECTED_FOLLOWINGS),
    ],
    ids=["followers", "fans", "followings"],
)
def test_parse_relation_list_golden(data: dict[str, Any], expected: RelationList) -> None:
    assert parse_relation_list(data) == expected


@pytest.mark.parametrize("entries", [None, []])
def test_relation_list_past_the_cap_is_empty(entries: list[Any] | None) -> None:
    # What followings past the first 100 of another user look like (code 0).
    data = {"list": entries, "re_version": 0, "total": 1028}
    assert parse_relation_list(data) == RelationList(total=1028, users=[])


def test_relation_list_without_total() -> None:
    data = copy.deepcopy(FOLLOWINGS)
    del data["total"]
    assert parse_relation_list(data) == EXPECTED_FOLLOWINGS._replace(total=None)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("list[1].uname", DELETE, "required field 'list[1].uname' is missing"),
        ("list[0].mtime", DELETE, "required field 'list[0].mtime' is missing"),
        ("list[0].official_verify", DELETE, "required field 'list[0].official_verify' is missing"),
        ("list[1].vip.vipType", None, "required field 'list[1].vip.vipType' is missing"),
        ("list[0].vip.vipStatus", True, "field 'list[0].vip.vipStatus' should be int, got True"),
        ("list[0].mid", "289796932", "field 'list[0].mid' should be int"),
        ("list[1]", "JSRCode", "field 'list[1]' should be dict"),
        ("list", {}, "field 'list' should be list"),
        ("total", "3776", "field 'total' should be int"),
    ],
)
def test_bad_relation_list_raises(path: str, value: object, message: str) -> None:
    data = copy.deepcopy(FOLLOWERS)
    edit(data, path, value)
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_relation_list(data)


def test_parse_relation_stat_golden() -> None:
    assert parse_relation_stat(RELATION_STAT) == RelationStat(follower=919515, following=32)


@pytest.mark.parametrize(("field", "value"), [("follower", DELETE), ("following", False)])
def test_bad_relation_stat_raises(field: str, value: object) -> None:
    data = copy.deepcopy(RELATION_STAT)
    edit(data, field, value)
    with pytest.raises(PayloadError, match=f"'{field}'"):
        parse_relation_stat(data)


def test_parse_arc_search_golden() -> None:
    assert parse_arc_search(ARC_SEARCH) == UploadsPage(
        aids=[114375683741573, 114351440726681], count=786
    )


@pytest.mark.parametrize("vlist", [None, []])
def test_arc_search_past_the_last_page(vlist: list[Any] | None) -> None:
    data = copy.deepcopy(ARC_SEARCH)
    data["list"]["vlist"] = vlist
    assert parse_arc_search(data) == UploadsPage(aids=[], count=786)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("list", None, "required field 'list' is missing"),
        ("page.count", DELETE, "required field 'page.count' is missing"),
        ("list.vlist[1].aid", "114351440726681", "field 'list.vlist[1].aid' should be int"),
        ("list.vlist[0]", 114375683741573, "field 'list.vlist[0]' should be dict"),
    ],
)
def test_bad_arc_search_raises(path: str, value: object, message: str) -> None:
    data = copy.deepcopy(ARC_SEARCH)
    edit(data, path, value)
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_arc_search(data)


def test_parse_rec_archives_golden() -> None:
    assert parse_rec_archives(REC_ARCHIVES) == UploadsPage(aids=[311606079, 400546145], count=5)


@pytest.mark.parametrize("archives", [None, []])
def test_rec_archives_past_the_last_page(archives: list[Any] | None) -> None:
    data = {"archives": archives, "page": {"num": 2, "size": 20, "total": 5}}
    assert parse_rec_archives(data) == UploadsPage(aids=[], count=5)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("page.total", DELETE, "required field 'page.total' is missing"),
        ("archives[1].aid", True, "field 'archives[1].aid' should be int, got True"),
    ],
)
def test_bad_rec_archives_raises(path: str, value: object, message: str) -> None:
    data = copy.deepcopy(REC_ARCHIVES)
    edit(data, path, value)
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_rec_archives(data)


@pytest.mark.parametrize("upstat", [UPSTAT, None], ids=["upstat", "no_upstat"])
def test_user_item_validates_against_schema(upstat: dict[str, Any] | None) -> None:
    item = parse_user(ACC_INFO, CARD, upstat, crawled_at=CRAWLED_AT)
    jsonschema.validate(ItemAdapter(item).asdict(), ItemAdapter.get_json_schema(UserItem))


@pytest.mark.parametrize("data", [FOLLOWERS, FOLLOWINGS], ids=["followers", "followings"])
def test_user_stubs_validate_against_schema(data: dict[str, Any]) -> None:
    schema = ItemAdapter.get_json_schema(UserStubItem)
    for user in parse_relation_list(data).users:
        jsonschema.validate(ItemAdapter(user.stub).asdict(), schema)
