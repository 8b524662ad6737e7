"""Golden tests of ``parse_live_history`` (``/xlive/web-room/v1/dM/gethistory``).

live_danmaku/room1.json is the real 2024 example of bilibili-API-collect, asked
for room 1 (the short id of room 5440); see the README beside it. Expected rows
are written out in full, so any change in what the parser keeps shows up as a
diff.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from bilicrawl.parsers.danmaku import parse_live_history
from bilicrawl.parsers.payload import PayloadError
from tests.utils import DELETE, edit, payload

ROOM_ID = 5440
HISTORY = payload("live_danmaku/room1.json")

_AZI = {"name": "小孩梓", "level": 27, "room_id": 80397, "anchor_uid": 7706705}
_FU = {"name": "赴神明", "level": 21, "room_id": 27751673, "anchor_uid": 3493291261692485}
EXPECTED = [
    {"room_id": 5440, "id_str": "74368f428dfaec806cd205e62866bd1c45", "uid": 20276964,
     "nickname": "咸菜拉面", "text": "", "timeline": 1723669506, "dm_type": 0, "user_level": 59,
     "medal": _AZI},
    {"room_id": 5440, "id_str": "7f3bb90826ad642012a31368f266be6d2", "uid": 20276964,
     "nickname": "咸菜拉面", "text": "", "timeline": 1723755906, "dm_type": 0, "user_level": 59,
     "medal": _AZI},
    {"room_id": 5440, "id_str": "088336a59eb277942ee353dd6666bf6347", "uid": 3546708493469870,
     "nickname": "aodun1", "text": "好帅", "timeline": 1723818808, "dm_type": 0,
     "user_level": 0, "medal": None},
    {"room_id": 5440, "id_str": "6f421255746f5d8e4731fdadac66bf6356", "uid": 3546708493469870,
     "nickname": "aodun1", "text": "好帅", "timeline": 1723818916, "dm_type": 0,
     "user_level": 0, "medal": None},
    {"room_id": 5440, "id_str": "270f5a2ac69c5904617873cc4666bf640", "uid": 3546708493469870,
     "nickname": "aodun1", "text": "好帅", "timeline": 1723819011, "dm_type": 0,
     "user_level": 0, "medal": None},
    {"room_id": 5440, "id_str": "002ebbdc402b3d625052865f7b66bf6469", "uid": 3546708493469870,
     "nickname": "aodun1", "text": "好帅", "timeline": 1723819141, "dm_type": 0,
     "user_level": 0, "medal": None},
    {"room_id": 5440, "id_str": "03f3261e144366383c49c6b5d166bf8563", "uid": 243082910,
     "nickname": "可人的樱花", "text": "赚麻了 哈哈", "timeline": 1723827649, "dm_type": 0,
     "user_level": 0, "medal": None},
    {"room_id": 5440, "id_str": "1a928b968afaa7825ea506ffe566bfbf16", "uid": 20276964,
     "nickname": "咸菜拉面", "text": "", "timeline": 1723842307, "dm_type": 0, "user_level": 59,
     "medal": _AZI},
    {"room_id": 5440, "id_str": "2ee6101973eeb69931eb86ac7e66c0ca17", "uid": 3546614675278489,
     "nickname": "机器人管家_鱼", "text": "下播啦~ 感谢大家的陪伴~ 下次见哦~",
     "timeline": 1723910856, "dm_type": 0, "user_level": 11, "medal": _FU},
    {"room_id": 5440, "id_str": "41e8b55dea381d494cfe60ba3466c11064", "uid": 20276964,
     "nickname": "咸菜拉面", "text": "", "timeline": 1723928705, "dm_type": 0, "user_level": 59,
     "medal": _AZI},
]  # fmt: skip


def test_parse_live_history_golden() -> None:
    assert parse_live_history(HISTORY, room_id=ROOM_ID) == EXPECTED


def test_parse_live_history_does_not_mutate_input() -> None:
    data = copy.deepcopy(HISTORY)
    parse_live_history(data, room_id=ROOM_ID)
    assert data == HISTORY


def test_the_key_is_unique_where_everything_else_repeats() -> None:
    rows = parse_live_history(HISTORY, room_id=ROOM_ID)
    assert len({row["id_str"] for row in rows}) == len(rows) == 10
    # Four danmaku of one sender: same text and rnd, so only id_str tells them apart.
    same = [entry for entry in HISTORY["room"] if entry["text"] == "好帅"]
    assert len(same) == 4
    assert len({(entry["uid"], entry["rnd"]) for entry in same}) == 1
    assert len({entry["id_str"] for entry in same}) == 4


def test_timeline_equals_check_info_ts_in_the_real_example() -> None:
    rows = parse_live_history(HISTORY, room_id=ROOM_ID)
    assert [row["timeline"] for row in rows] == [
        entry["check_info"]["ts"] for entry in HISTORY["room"]
    ]


@pytest.mark.parametrize(
    ("timeline", "expected"),
    [
        ("2024-01-02 03:04:05", 1704135845),  # 2024-01-01 19:04:05 UTC
        ("2024-08-15 05:05:06", 1723669506),
        ("1970-01-01 08:00:00", 0),
    ],
)
def test_timeline_is_beijing_time(timeline: str, expected: int) -> None:
    data = copy.deepcopy(HISTORY)
    data["room"][0]["timeline"] = timeline
    assert parse_live_history(data, room_id=ROOM_ID)[0]["timeline"] == expected


def test_admin_danmaku_come_first_and_a_danmaku_listed_twice_is_one_row() -> None:
    data = copy.deepcopy(HISTORY)
    admin = {**copy.deepcopy(data["room"][8]), "isadmin": 1}
    other = {**copy.deepcopy(admin), "id_str": "0a1b2c3d4e5f60718293a4b5c666c0ca1701"}
    data["admin"] = [admin, other]
    rows = parse_live_history(data, room_id=ROOM_ID)
    assert [row["id_str"] for row in rows] == [
        EXPECTED[8]["id_str"],
        other["id_str"],
        *(row["id_str"] for row in EXPECTED[:8]),
        EXPECTED[9]["id_str"],
    ]
    assert rows[0] == EXPECTED[8]


@pytest.mark.parametrize("admin", [DELETE, None, []])
def test_no_admin_list_is_no_admin_danmaku(admin: object) -> None:
    data = copy.deepcopy(HISTORY)
    edit(data, "admin", admin)
    assert parse_live_history(data, room_id=ROOM_ID) == EXPECTED


def test_a_room_without_danmaku_gives_no_rows() -> None:
    assert parse_live_history({"admin": [], "room": []}, room_id=ROOM_ID) == []


def test_the_medal_array_of_2018_has_no_anchor_uid() -> None:
    data = copy.deepcopy(HISTORY)
    data["room"][0]["medal"] = [17, "言叶", "枫言w", 367, 16752445, "union"]
    medal = parse_live_history(data, room_id=ROOM_ID)[0]["medal"]
    assert medal == {"name": "言叶", "level": 17, "room_id": 367, "anchor_uid": None}


def test_dm_type_is_none_when_absent() -> None:
    data = copy.deepcopy(HISTORY)
    del data["room"][2]["dm_type"]
    assert parse_live_history(data, room_id=ROOM_ID)[2]["dm_type"] is None


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("room", DELETE, "required field 'room' is missing"),
        ("room", {}, "field 'room' should be list, got {}"),
        ("admin", {}, "field 'admin' should be list, got {}"),
        ("room[3]", "好帅", "field 'room[3]' should be dict, got '好帅'"),
        ("room[0].id_str", DELETE, "required field 'room[0].id_str' is missing"),
        ("room[0].id_str", "", "field 'room[0].id_str' is empty"),
        ("room[0].id_str", 74368, "field 'room[0].id_str' should be str, got 74368"),
        ("room[2].uid", "3546708493469870", "field 'room[2].uid' should be int"),
        ("room[2].uid", True, "field 'room[2].uid' should be int, got True"),
        ("room[1].nickname", DELETE, "required field 'room[1].nickname' is missing"),
        ("room[1].text", None, "required field 'room[1].text' is missing"),
        ("room[4].timeline", DELETE, "required field 'room[4].timeline' is missing"),
        ("room[4].timeline", 1723819011, "field 'room[4].timeline' should be str"),
        ("room[4].timeline", "2024/08/16 22:36:51",
         "field 'room[4].timeline' is '2024/08/16 22:36:51', not YYYY-MM-DD HH:MM:SS"),
        ("room[4].timeline", "2024-08-16",
         "field 'room[4].timeline' is '2024-08-16', not YYYY-MM-DD HH:MM:SS"),
        ("room[5].dm_type", "0", "field 'room[5].dm_type' should be int, got '0'"),
        ("room[6].user_level", DELETE, "required field 'room[6].user_level' is missing"),
        ("room[6].user_level", [], "field 'room[6].user_level' is empty"),
        ("room[6].user_level[0]", "0", "field 'room[6].user_level[0]' should be int"),
        ("room[7].medal", DELETE, "required field 'room[7].medal' is missing"),
        ("room[7].medal", {}, "field 'room[7].medal' should be list, got {}"),
        ("room[7].medal", [27, "小孩梓", "阿梓从小就很可爱"],
         "field 'room[7].medal' should have at least 4 items"),
        ("room[7].medal[0]", "27", "field 'room[7].medal[0]' should be int, got '27'"),
        ("room[7].medal[1]", 1, "field 'room[7].medal[1]' should be str, got 1"),
        ("room[7].medal[3]", "80397", "field 'room[7].medal[3]' should be int, got '80397'"),
        ("room[7].medal[12]", None, "field 'room[7].medal[12]' should be int, got None"),
    ],
)  # fmt: skip
def test_wrong_shape_raises_naming_the_path(path: str, value: object, message: str) -> None:
    data = copy.deepcopy(HISTORY)
    edit(data, path, value)
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_live_history(data, room_id=ROOM_ID)


def test_the_2022_shape_without_id_str_is_rejected() -> None:
    # champkeh/blive-ws printed a 2022 answer without id_str: no key, so no row is made up.
    data = copy.deepcopy(HISTORY)
    for entry in data["room"]:
        del entry["id_str"]
    with pytest.raises(PayloadError, match=re.escape("required field 'room[0].id_str'")):
        parse_live_history(data, room_id=ROOM_ID)


@pytest.mark.parametrize("data", [[], None, ""])
def test_data_of_wrong_type_raises(data: Any) -> None:
    with pytest.raises(PayloadError, match="field 'data' should be dict"):
        parse_live_history(data, room_id=ROOM_ID)


def test_a_null_room_list_raises() -> None:
    with pytest.raises(PayloadError, match="required field 'room' is missing"):
        parse_live_history({"admin": [], "room": None}, room_id=ROOM_ID)
