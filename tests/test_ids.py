from __future__ import annotations

import pytest

from bilicrawl.ids import (
    MAX_AID,
    MAX_MID,
    BadId,
    BadUserId,
    BadVideoId,
    av2bv,
    bv2av,
    parse_card_id,
    parse_cvid,
    parse_mid,
    parse_room_id,
    parse_video_id,
)

# docs/bilibili-api.md, AV and BV ids: every vector checked both ways.
VECTORS = [
    (2, "BV1xx411c7mD"),
    (7, "BV1xx411c7m9"),
    (170001, "BV17x411w7KC"),
    (85440373, "BV117411r7R1"),
    (99999999, "BV1y7411Q7Eq"),
    (305988942, "BV1aP411K7it"),
    (643755790, "BV1bY4y1j7RA"),
    (969628065, "BV1rp4y1e745"),
    (1004871019, "BV16x4y1H7M1"),
    (1054803170, "BV1mH4y1u7UA"),
    (114375683741573, "BV1ac5yzhE94"),
    (115871406101538, "BV1pR6UB3ENW"),
    (111298867365120, "BV1L9Uoa9EUx"),
]


@pytest.mark.parametrize(("aid", "bvid"), VECTORS)
def test_av2bv(aid: int, bvid: str) -> None:
    assert av2bv(aid) == bvid


@pytest.mark.parametrize(("aid", "bvid"), VECTORS)
def test_bv2av(aid: int, bvid: str) -> None:
    assert bv2av(bvid) == aid


@pytest.mark.parametrize("aid", [1, MAX_AID - 1])
def test_round_trip_at_the_range_ends(aid: int) -> None:
    assert bv2av(av2bv(aid)) == aid


@pytest.mark.parametrize("aid", [0, -1, MAX_AID])
def test_av2bv_rejects_out_of_range(aid: int) -> None:
    with pytest.raises(BadVideoId, match="out of range"):
        av2bv(aid)


@pytest.mark.parametrize(
    ("text", "aid"),
    [
        ("170001", 170001),
        (" 170001\n", 170001),
        ("av170001", 170001),
        ("AV170001", 170001),
        (str(MAX_AID - 1), MAX_AID - 1),
        ("BV17x411w7KC", 170001),
        ("BV1ac5yzhE94", 114375683741573),
        ("https://www.bilibili.com/video/BV17x411w7KC", 170001),
        ("https://www.bilibili.com/video/BV17x411w7KC/", 170001),
        ("https://www.bilibili.com/video/BV17x411w7KC/?p=2&spm_id_from=333.1007", 170001),
        ("https://www.bilibili.com/video/BV17x411w7KC?p=2", 170001),
        ("https://www.bilibili.com/video/BV17x411w7KC#reply123", 170001),
        ("https://m.bilibili.com/video/BV117411r7R1?share_source=copy_web", 85440373),
        ("https://www.bilibili.com/video/av170001/", 170001),
        ("http://m.bilibili.com/video/av85440373?p=1", 85440373),
        ("www.bilibili.com/video/BV117411r7R1/", 85440373),
        ("m.bilibili.com/video/av2", 2),
        ("0" * 5000 + "170001", 170001),
    ],
)
def test_parse_video_id(text: str, aid: int) -> None:
    assert parse_video_id(text) == aid


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("-5", "not an av number"),
        ("av-5", "not an av number"),
        ("12.5", "not an av number"),
        ("av", "not an av number"),
        ("0", "out of range"),
        ("av0", "out of range"),
        (str(MAX_AID), "out of range"),
        (str(2**63), "out of range"),
        # 0, I, O and l are not in the base-58 alphabet.
        ("BV17x411w7K0", "not a BV id"),
        ("BV17x411w7KI", "not a BV id"),
        ("BV17x411w7KO", "not a BV id"),
        ("BV17x411w7Kl", "not a BV id"),
        ("BV17x411w7K", "not a BV id"),
        ("BV17x411w7KCC", "not a BV id"),
        ("BV27x411w7KC", "not a BV id"),
        ("bv17x411w7KC", "not a BV id"),
        # Well-formed, but the digits do not come from any aid.
        ("BV1111111111", "does not encode a valid aid"),
        ("BV1zzzzzzzzz", "does not encode a valid aid"),
        ("https://www.bilibili.com/video/BV1FFFFFFFFF/", "does not encode a valid aid"),
        ("https://b23.tv/BV17x411w7KC", "short link"),
        ("https://b23.tv/xYz12Ab", "short link"),
        ("b23.tv/xYz12Ab", "short link"),
        ("https://bili2233.cn/xYz12Ab", "short link"),
        ("https://www.bilibili.com/", "not a video URL"),
        ("https://www.bilibili.com/read/cv1", "not a video URL"),
        ("https://space.bilibili.com/2/video", "not a video URL"),
        ("https://www.bilibili.com/bangumi/play/ep1231", "not a video URL"),
        ("https://live.bilibili.com/5440", "not a video URL"),
        ("https://[::1/video/av2", "not a URL: Invalid IPv6 URL"),
        ("[av2/", "not a URL: Invalid IPv6 URL"),
        ("https://b\uff03ili.com/video/av2", "not a URL"),
        # int() raises its own ValueError past 4300 digits: these must stay bad ids.
        ("9" * 5000, "an aid of 5000 digits is out of range"),
        ("av" + "1" * 5000, "an aid of 5000 digits is out of range"),
        ("https://www.bilibili.com/video/av" + "1" * 5000, "an aid of 5000 digits"),
    ],
)
def test_parse_video_id_rejects(text: str, message: str) -> None:
    with pytest.raises(BadVideoId, match=message):
        parse_video_id(text)


def test_bad_video_id_is_a_value_error() -> None:
    assert issubclass(BadVideoId, ValueError)


@pytest.mark.parametrize("text", ["x" * 5000, "BV1" + "x" * 5000, "https://b23.tv/" + "x" * 5000])
def test_a_huge_bad_id_gives_a_short_message(text: str) -> None:
    with pytest.raises(BadVideoId) as error:
        parse_video_id(text)
    assert len(str(error.value)) < 150
    assert f"({len(text)} characters)" in str(error.value)


@pytest.mark.parametrize(
    ("text", "mid"),
    [
        ("2", 2),
        (" 208259 ", 208259),
        ("UID:2", 2),
        ("uid：2", 2),
        ("UID 3493000000000001", 3493000000000001),
        ("https://space.bilibili.com/2", 2),
        ("https://space.bilibili.com/2/video?tid=0", 2),
        ("space.bilibili.com/208259/dynamic", 208259),
        ("https://m.bilibili.com/space/2", 2),
        (str(MAX_MID - 1), MAX_MID - 1),
    ],
)
def test_parse_mid_accepts_every_form(text: str, mid: int) -> None:
    assert parse_mid(text) == mid


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("0", "out of range"),
        (str(MAX_MID), "out of range"),
        ("9" * 5000, "digits is out of range"),
        ("UID:abc", "not a user id"),
        ("２", "not a user id"),  # full-width digit
        ("https://www.bilibili.com/video/BV1xx411c7mD", "not a user's space URL"),
        ("https://space.bilibili.com/", "not a user's space URL"),
        ("https://space.bilibili.com/x2/video", "not a user id"),
    ],
)
def test_parse_mid_rejects_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(BadUserId, match=says):
        parse_mid(text)


@pytest.mark.parametrize(
    ("text", "cvid"),
    [
        ("1", 1),
        ("cv41358718", 41358718),
        ("CV2", 2),
        ("https://www.bilibili.com/read/cv1", 1),
        ("https://www.bilibili.com/read/cv41358718/?from=search", 41358718),
        ("www.bilibili.com/read/mobile/cv7", 7),
        ("https://www.bilibili.com/read/mobile?id=8&x=1", 8),
    ],
)
def test_parse_cvid_accepts_every_form(text: str, cvid: int) -> None:
    assert parse_cvid(text) == cvid


@pytest.mark.parametrize(
    "text", ["", "cv", "cvx1", "0", "https://www.bilibili.com/video/av2", "9" * 30]
)
def test_parse_cvid_rejects(text: str) -> None:
    with pytest.raises(BadId):
        parse_cvid(text)


@pytest.mark.parametrize(
    ("text", "room"),
    [
        ("5440", 5440),
        ("lv1", 1),
        ("https://live.bilibili.com/21452505?spm=x", 21452505),
        ("live.bilibili.com/h5/5440", 5440),
    ],
)
def test_parse_room_id_accepts_every_form(text: str, room: int) -> None:
    assert parse_room_id(text) == room


@pytest.mark.parametrize("text", ["", "lvx", "https://www.bilibili.com/5440", "-1"])
def test_parse_room_id_rejects(text: str) -> None:
    with pytest.raises(BadId):
        parse_room_id(text)


@pytest.mark.parametrize(
    ("text", "card"),
    [
        ("av2", "av2"),
        ("AV02", "av2"),
        ("BV1xx411c7mD", "BV1xx411c7mD"),
        ("cv1", "cv1"),
        ("LV5440", "lv5440"),
    ],
)
def test_parse_card_id_normalises(text: str, card: str) -> None:
    assert parse_card_id(text) == card


@pytest.mark.parametrize("text", ["2", "BV1notanid00", "ss123", "av0", "cv", f"av{MAX_AID}"])
def test_parse_card_id_rejects(text: str) -> None:
    with pytest.raises(BadId):
        parse_card_id(text)
