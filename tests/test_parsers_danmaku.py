"""Golden tests of the danmaku parsers.

dm_xml/144541892.xml is the real XML example saved with the API notes
(docs/bilibili-api.md, Saved examples), copied verbatim; dm_xml/104211449_weight.xml is hand-made
around a quoted real row, for the 9-field ``p``. No protobuf body was saved:
dm_seg/ and dm_view/ hold the decoded renderings the docs print, and the
bodies are encoded from them here with dm_pb2. Expected rows are written out
in full, so any change in what a parser keeps shows up as a diff.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from bilicrawl.items import DanmakuBatchItem, LiveDanmakuBatchItem
from bilicrawl.parsers.danmaku import (
    DanmakuView,
    Segment,
    XmlPool,
    parse_history_index,
    parse_live_history,
    parse_segment,
    parse_view,
    parse_xml,
    segment_count,
)
from bilicrawl.parsers.payload import PayloadError
from bilicrawl.proto import dm_pb2
from tests.utils import FIXTURES, payload

SEG_EXAMPLE = json.loads((FIXTURES / "dm_seg/example.json").read_text(encoding="utf-8"))
VIEW_EXAMPLE = json.loads((FIXTURES / "dm_view/example.json").read_text(encoding="utf-8"))
XML_8_FIELDS = (FIXTURES / "dm_xml/144541892.xml").read_bytes()
XML_9_FIELDS = (FIXTURES / "dm_xml/104211449_weight.xml").read_bytes()

# Field 99, which dm.proto does not declare: as a varint (tag 99 << 3 | 0, value 42)
# and length-delimited (tag 99 << 3 | 2, 3 bytes "new").
UNKNOWN_FIELDS = b"\x98\x06\x2a" + b"\x9a\x06\x03new"
XML_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?><i><chatserver>chat.bilibili.com</chatserver>'
    b"<chatid>1176840</chatid><mission>0</mission><maxlimit>1000</maxlimit>"
    b"<state>0</state><real_name>0</real_name><source>k-v</source>"
)


def elem(name: str) -> dm_pb2.DanmakuElem:
    return json_format.ParseDict(SEG_EXAMPLE[name], dm_pb2.DanmakuElem())


def view(case: str) -> dm_pb2.DmWebViewReply:
    return json_format.ParseDict(VIEW_EXAMPLE[case], dm_pb2.DmWebViewReply())


def seg_body(*elems: dm_pb2.DanmakuElem, state: int = 0) -> bytes:
    return dm_pb2.DmSegMobileReply(elems=elems, state=state).SerializeToString()


def xml(*rows: str) -> bytes:
    return XML_HEAD + "".join(rows).encode() + b"</i>"


SEG_BODY = seg_body(elem("seg_so_elems0"), elem("history_seg_so_elems0"))

EXPECTED_SEG_ROWS = [
    {
        "dmid": 711923911,
        "progress_ms": 47880,
        "mode": 1,
        "fontsize": 18,
        "color": 10092288,
        "ctime": 1418799826,
        "pool": 0,
        "mid_hash": "59417e95",
        "content": (
            "世界第一电击公主殿下,遇到你是我一生最美好的风景!"
            "吾炮赛高,永生不离!唯我超电磁炮永世长存! "
        ),
        "weight": 6,
        "attr": 1,
    },
    {
        "dmid": 27532611677585408,
        "progress_ms": 300507,
        "mode": 1,
        "fontsize": 25,
        "color": 16777215,
        "ctime": 1579621359,
        "pool": 0,
        "mid_hash": "2a28d4a6",
        "content": "章北海的老爹",
        "weight": 0,
        "attr": 0,
    },
]

EXPECTED_XML_8_FIELDS = XmlPool(
    cid=144541892,
    maxlimit=1500,
    closed=False,
    rows=[
        {
            "dmid": 29950852386521095,
            "progress_ms": 490191,
            "mode": 1,
            "fontsize": 25,
            "color": 16777215,
            "ctime": 1584268892,
            "pool": 0,
            "mid_hash": "a16fe0dd",
            "content": "从结尾回来看这里，更感动了！",
        },
        {
            "dmid": 29950867226492933,
            "progress_ms": 18773,
            "mode": 1,
            "fontsize": 25,
            "color": 16777215,
            "ctime": 1584268920,
            "pool": 0,
            "mid_hash": "4fe08d3",
            "content": "咦三体居然还有动画",
        },
        {
            "dmid": 29950885214289927,
            "progress_ms": 52884,
            "mode": 1,
            "fontsize": 25,
            "color": 16777215,
            "ctime": 1584268954,
            "pool": 0,
            "mid_hash": "4fe08d3",
            "content": "哈哈哈哈开心",
        },
        {
            "dmid": 29950886612566021,
            "progress_ms": 25516,
            "mode": 1,
            "fontsize": 25,
            "color": 16777215,
            "ctime": 1584268957,
            "pool": 0,
            "mid_hash": "e4b18b37",
            "content": "红岸么",
        },
        {
            "dmid": 29950948716576775,
            "progress_ms": 144452,
            "mode": 1,
            "fontsize": 25,
            "color": 16777215,
            "ctime": 1584269076,
            "pool": 0,
            "mid_hash": "e4b18b37",
            "content": "我就是想看我的世界里水滴长啥样",
        },
    ],
)

EXPECTED_XML_9_FIELDS = XmlPool(
    cid=104211449,
    maxlimit=3000,
    closed=False,
    rows=[
        {
            "dmid": 1163933565554070784,
            "progress_ms": 181379,
            "mode": 1,
            "fontsize": 25,
            "color": 16777215,
            "ctime": 1665842893,
            "pool": 0,
            "mid_hash": "78695de5",
            "content": "军用科技公司",
            "weight": 11,
        },
        {
            "dmid": 1171739307107660288,
            "progress_ms": 3437,
            "mode": 4,
            "fontsize": 18,
            "color": 16711680,
            "ctime": 1666773410,
            "pool": 1,
            "mid_hash": "2d034e11",
            "content": "字幕 & <b>",
            "weight": 0,
        },
        {
            "dmid": 1171747350759326976,
            "progress_ms": 0,
            "mode": 5,
            "fontsize": 36,
            "color": 65280,
            "ctime": 1666774369,
            "pool": 0,
            "mid_hash": "18a4dd3d",
            "content": "",
            "weight": 10,
        },
    ],
)


def test_parse_segment_golden() -> None:
    assert parse_segment(SEG_BODY) == Segment(closed=False, rows=EXPECTED_SEG_ROWS)


def test_unknown_fields_are_ignored() -> None:
    reply = dm_pb2.DmSegMobileReply()
    reply.elems.add().MergeFromString(elem("seg_so_elems0").SerializeToString() + UNKNOWN_FIELDS)
    body = reply.SerializeToString() + UNKNOWN_FIELDS
    assert body.count(UNKNOWN_FIELDS) == 2  # the element kept its unknown field
    assert parse_segment(body) == Segment(closed=False, rows=EXPECTED_SEG_ROWS[:1])


def test_empty_body_is_an_empty_open_segment() -> None:
    assert parse_segment(b"") == Segment(closed=False, rows=[])


def test_state_1_body_is_closed() -> None:
    assert parse_segment(b"\x10\x01") == Segment(closed=True, rows=[])
    assert seg_body(state=1) == b"\x10\x01"


def test_dmid_falls_back_to_id_str() -> None:
    danmaku = elem("history_seg_so_elems0")
    danmaku.id = 0
    assert parse_segment(seg_body(danmaku)).rows == EXPECTED_SEG_ROWS[1:]


def test_row_without_any_id_raises() -> None:
    danmaku = elem("history_seg_so_elems0")
    danmaku.id = 0
    danmaku.idStr = ""
    with pytest.raises(PayloadError, match=r"elems\[1\] has id 0 and idStr ''"):
        parse_segment(seg_body(elem("seg_so_elems0"), danmaku))


@pytest.mark.parametrize(
    "body",
    [b"\xff", b"\n\x05ab", b'{"code":-412,"message":"request was banned"}', b"<html></html>"],
)
def test_body_that_is_not_protobuf_raises(body: bytes) -> None:
    with pytest.raises(PayloadError, match="body is not a DmSegMobileReply"):
        parse_segment(body)
    with pytest.raises(PayloadError, match="body is not a DmWebViewReply"):
        parse_view(body)


@pytest.mark.parametrize("case", ["av797164471_cid236871317", "av2_cid62131"])
def test_parse_view_golden(case: str) -> None:
    # The docs print neither state, dm_sge nor count: the defaults.
    assert parse_view(view(case).SerializeToString()) == DanmakuView(
        closed=False, segments=None, count=0
    )


@pytest.mark.parametrize(
    ("state", "total", "expected"),
    [
        (0, 3, DanmakuView(closed=False, segments=3, count=4721)),
        (1, 0, DanmakuView(closed=True, segments=None, count=4721)),
    ],
)
def test_parse_view_counts(state: int, total: int, expected: DanmakuView) -> None:
    reply = view("av797164471_cid236871317")
    reply.state = state
    reply.dm_sge.page_size = 360000
    reply.dm_sge.total = total
    reply.count = 4721
    # The real reply also has fields 12-14, which dm.proto leaves out.
    assert parse_view(reply.SerializeToString() + UNKNOWN_FIELDS) == expected


def test_empty_view_body() -> None:
    assert parse_view(b"") == DanmakuView(closed=False, segments=None, count=0)


@pytest.mark.parametrize(
    ("body", "expected"),
    [(XML_8_FIELDS, EXPECTED_XML_8_FIELDS), (XML_9_FIELDS, EXPECTED_XML_9_FIELDS)],
    ids=["8_fields", "9_fields"],
)
def test_parse_xml_golden(body: bytes, expected: XmlPool) -> None:
    assert parse_xml(body) == expected


@pytest.mark.parametrize(
    ("seconds", "ms"),
    [
        ("0", 0),
        ("0.00000", 0),
        ("0.00049", 0),
        ("0.00050", 1),  # half rounds up, not to even
        ("0.00150", 2),
        ("0.00250", 3),  # round(2.5) would be 2
        ("1.2345", 1235),  # round(1.2345 * 1000) would be 1234
        ("1.23456", 1235),
        ("1.23449", 1234),
        ("18.77300", 18773),
        ("1", 1000),
        ("12.5", 12500),
        ("175.51600646973", 175516),  # the old player's float seconds
        ("86399.99950", 86400000),
        ("2147483.64750", 2147483648),  # past int32
        ("999999999.99999", 1000000000000),
    ],
)
def test_xml_progress_rounds_half_up(seconds: str, ms: int) -> None:
    row = f'<d p="{seconds},1,25,16777215,1584268892,0,a16fe0dd,29950852386521095">x</d>'
    assert parse_xml(xml(row)).rows[0]["progress_ms"] == ms


def test_xml_8_and_9_fields_rows() -> None:
    rows = parse_xml(
        xml(
            '<d p="1.00000,1,25,16777215,1584268892,0,a16fe0dd,1">old</d>',
            '<d p="2.00000,1,25,16777215,1584268892,0,a16fe0dd,2,7">new</d>',
        )
    ).rows
    assert "weight" not in rows[0]
    assert rows[1]["weight"] == 7
    assert all("attr" not in row for row in rows)


@pytest.mark.parametrize(
    "p",
    [
        "1.00000,1,25,16777215,1584268892,0,a16fe0dd",  # 7 fields
        "1.00000,1,25,16777215,1584268892,0,a16fe0dd,2,7,9",  # 10 fields
        "",
        "abc,1,25,16777215,1584268892,0,a16fe0dd,2",
        ",1,25,16777215,1584268892,0,a16fe0dd,2",
        "NaN,1,25,16777215,1584268892,0,a16fe0dd,2",
        "Infinity,1,25,16777215,1584268892,0,a16fe0dd,2",
        "1.0.0,1,25,16777215,1584268892,0,a16fe0dd,2",
        "1.00000,top,25,16777215,1584268892,0,a16fe0dd,2",
        "1.00000,1,25,#ffffff,1584268892,0,a16fe0dd,2",
        "1.00000,1,25,16777215,1584268892,0,a16fe0dd,a16fe0dd",
        "1.00000,1,25,16777215,1584268892,0,a16fe0dd,2,high",
    ],
)
def test_bad_p_attribute_names_the_row(p: str) -> None:
    good = '<d p="1.00000,1,25,16777215,1584268892,0,a16fe0dd,1">fine</d>'
    with pytest.raises(PayloadError, match=re.escape(f"<d> row 1 has a bad p attribute {p!r}")):
        parse_xml(xml(good, f'<d p="{p}">bad</d>'))


def test_row_without_p_raises() -> None:
    with pytest.raises(PayloadError, match=r"<d> row 0 has a bad p attribute None"):
        parse_xml(xml("<d>no p</d>"))


def test_xml_state_1_is_closed() -> None:
    body = XML_8_FIELDS.replace(b"<state>0</state>", b"<state>1</state>")
    assert parse_xml(body) == EXPECTED_XML_8_FIELDS._replace(closed=True)


def test_xml_without_state_is_open() -> None:
    body = XML_8_FIELDS.replace(b"<state>0</state>", b"")
    assert parse_xml(body) == EXPECTED_XML_8_FIELDS


def test_xml_empty_pool() -> None:
    assert parse_xml(xml()) == XmlPool(cid=1176840, maxlimit=1000, closed=False, rows=[])


def test_control_characters_are_dropped() -> None:
    # A real row the site served with a \x16 in it, which XML 1.0 forbids (pakku.js #24).
    row = '<d p="175.51600646973,5,25,16777215,1485244967,0,500d8218,2892823994">av1141873\x16</d>'
    assert parse_xml(xml(row)).rows == [
        {
            "dmid": 2892823994,
            "progress_ms": 175516,
            "mode": 5,
            "fontsize": 25,
            "color": 16777215,
            "ctime": 1485244967,
            "pool": 0,
            "mid_hash": "500d8218",
            "content": "av1141873",
        }
    ]


def test_entities_are_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret", encoding="utf-8")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE i [<!ENTITY x SYSTEM "{secret.as_uri()}">]>'
        "<i><chatid>1</chatid><maxlimit>1</maxlimit>"
        '<d p="1,1,25,16777215,1584268892,0,a16fe0dd,1">&x;</d></i>'
    ).encode()
    assert parse_xml(body).rows[0]["content"] == ""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "body is not XML"),
        (b"not xml", "body is not XML"),
        (b'{"code":-412,"message":"request was banned"}', "body is not XML"),
        (b"<i><chatid>1</chatid></i>", "XML has no <maxlimit>"),
        (b"<i><maxlimit>1500</maxlimit></i>", "XML has no <chatid>"),
        (
            b"<i><chatid>1</chatid><maxlimit>many</maxlimit></i>",
            "<maxlimit> should be an integer, got 'many'",
        ),
    ],
)
def test_bad_xml_body_raises(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_xml(body)


def test_parse_history_index() -> None:
    data = ["2020-01-21", "2020-01-22"]
    assert parse_history_index(data) == ["2020-01-21", "2020-01-22"]
    assert parse_history_index(None) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "field 'data' should be list"),
        (["2020-01-21", 20200122], r"field 'data\[1\]' should be str"),
        (["2020/01/21"], r"field 'data\[0\]' should be YYYY-MM-DD, got '2020/01/21'"),
    ],
)
def test_bad_history_index_raises(data: Any, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_history_index(data)


@pytest.mark.parametrize(
    ("duration_s", "count"), [(0, 1), (1, 1), (360, 1), (361, 2), (3600, 10), (3601, 11)]
)
def test_segment_count(duration_s: int, count: int) -> None:
    assert segment_count(duration_s) == count


def test_rows_hold_only_the_declared_row_fields() -> None:
    """The SQLite store keeps a row's declared fields (its columns), so none may be missing."""
    batch_fields = {"cid", "aid", "crawled_at"}
    declared = set(DanmakuBatchItem.row_fields)
    segment = parse_segment(SEG_BODY).rows
    assert segment and all(set(row) | batch_fields == declared for row in segment)
    pools = parse_xml(XML_8_FIELDS).rows + parse_xml(XML_9_FIELDS).rows
    assert all(set(row) | batch_fields | {"attr", "weight"} == declared for row in pools)
    live = parse_live_history(payload("live_danmaku/room1.json"), room_id=5440)
    assert live and all(
        set(row) | {"crawled_at"} == set(LiveDanmakuBatchItem.row_fields) for row in live
    )
