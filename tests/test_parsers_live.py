"""Golden tests of the live room parsers.

``room_get_info/5440.json`` is the real example saved with the API notes
(docs/bilibili-api.md, Saved examples) and ``room_info_old/322892.json`` the one printed in
bilibili-API-collect; both are copied verbatim into tests/fixtures/<endpoint>/.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
import pytest
from itemadapter import ItemAdapter

from bilicrawl.items import LiveArea, LiveRoomItem
from bilicrawl.parsers.live import parse_room, parse_room_of_user
from bilicrawl.parsers.payload import PayloadError
from tests.utils import payload

CRAWLED_AT = 1700000000


ROOM = payload("room_get_info/5440.json")
ROOM_OF_USER = payload("room_info_old/322892.json")

EXPECTED_ROOM = LiveRoomItem(
    room_id=5440,
    short_id=1,
    uid=9617619,
    title="快乐运动研究社",
    description=(
        "欢迎加入bilibili《快乐运动研究社》，和B站UP主们一起探讨有关运动的经历感受，"
        "解决身体和情绪的“疑难杂症”，寻找适合自己的运动，一起跟练！"
        "本期我们一起探讨：运动健身能缓解社交恐惧吗？"
    ),
    tags=[],
    area=LiveArea(id=145, name="视频聊天", parent_id=1, parent_name="娱乐"),
    live_status=2,
    live_time=None,
    online=0,
    attention=11919499,
    user_cover=(
        "https://i0.hdslb.com/bfs/live/new_room_cover/96943b8d106a777a34cf796421bb4254163b30e1.jpg"
    ),
    keyframe=("https://i0.hdslb.com/bfs/live-key-frame/keyframe08121926000000005440np0q7a.jpg"),
    crawled_at=CRAWLED_AT,
)


def test_parse_room_golden() -> None:
    assert parse_room(ROOM, crawled_at=CRAWLED_AT) == EXPECTED_ROOM


def test_parse_room_does_not_mutate_input() -> None:
    data = copy.deepcopy(ROOM)
    parse_room(data, crawled_at=CRAWLED_AT)
    assert data == ROOM


@pytest.mark.parametrize(
    ("live_time", "expected"),
    [
        ("2024-01-02 03:04:05", 1704135845),  # 2024-01-01 19:04:05 UTC
        ("2020-10-08 18:19:46", 1602152386),
        ("0000-00-00 00:00:00", None),
        ("", None),
    ],
)
def test_live_time_is_beijing_time(live_time: str, expected: int | None) -> None:
    data = {**ROOM, "live_status": 1, "live_time": live_time}
    assert parse_room(data, crawled_at=CRAWLED_AT).live_time == expected


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ("", []),
        ("音乐", ["音乐"]),
        ("音乐,唱见, 翻唱 ,,", ["音乐", "唱见", "翻唱"]),
        (" , ", []),
    ],
)
def test_tags_are_split_on_commas(tags: str, expected: list[str]) -> None:
    assert parse_room({**ROOM, "tags": tags}, crawled_at=CRAWLED_AT).tags == expected


@pytest.mark.parametrize(
    "field",
    ["room_id", "short_id", "uid", "title", "description", "tags", "area_id", "area_name",
     "parent_area_id", "parent_area_name", "live_status", "live_time", "online", "attention",
     "user_cover", "keyframe"],
)  # fmt: skip
def test_missing_room_field_raises(field: str) -> None:
    data = copy.deepcopy(ROOM)
    del data[field]
    with pytest.raises(PayloadError, match=rf"required field '{field}' is missing"):
        parse_room(data, crawled_at=CRAWLED_AT)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("room_id", "5440", "field 'room_id' should be int, got '5440'"),
        ("online", True, "field 'online' should be int, got True"),
        ("tags", ["音乐"], "field 'tags' should be str"),
        ("live_time", 1602152386, "field 'live_time' should be str"),
        ("live_time", "2020/10/08 18:19:46", "field 'live_time' is '2020/10/08 18:19:46', not"),
        ("live_time", "2020-13-08 18:19:46", "field 'live_time' is '2020-13-08 18:19:46', not"),
    ],
)
def test_wrong_room_field_raises(field: str, value: object, message: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_room({**ROOM, field: value}, crawled_at=CRAWLED_AT)


def test_room_data_of_wrong_type_raises() -> None:
    with pytest.raises(PayloadError, match="field 'data' should be dict"):
        parse_room([], crawled_at=CRAWLED_AT)  # type: ignore[arg-type]  # a wrong shape


def test_room_item_validates_against_schema() -> None:
    item = parse_room(ROOM, crawled_at=CRAWLED_AT)
    jsonschema.validate(ItemAdapter(item).asdict(), ItemAdapter.get_json_schema(LiveRoomItem))


def test_parse_room_of_user_golden() -> None:
    assert parse_room_of_user(ROOM_OF_USER) == 5441


@pytest.mark.parametrize(
    "changes",
    [
        # What a user without a room gets (roomStatus 0); roomid may then be 0 or absent.
        {"roomStatus": 0, "live_status": 0, "url": "", "title": "", "cover": "", "online": 0,
         "roomid": 0},
        {"roomStatus": 0, "roomid": None},
        {"roomid": 0},
    ],
)  # fmt: skip
def test_user_without_room(changes: dict[str, Any]) -> None:
    assert parse_room_of_user({**ROOM_OF_USER, **changes}) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"roomStatus": None}, "required field 'roomStatus' is missing"),
        ({"roomStatus": "1"}, "field 'roomStatus' should be int"),
        ({"roomid": None}, "required field 'roomid' is missing"),
        ({"roomid": "5441"}, "field 'roomid' should be int"),
    ],
)
def test_bad_room_of_user_raises(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_room_of_user({**ROOM_OF_USER, **changes})
