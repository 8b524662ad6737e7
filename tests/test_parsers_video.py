from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from itemadapter import ItemAdapter

from bilicrawl.items import (
    Owner,
    StaffMember,
    VideoItem,
    VideoPage,
    VideoStat,
    VideoStatItem,
    VideoTag,
)
from bilicrawl.parsers.payload import PayloadError
from bilicrawl.parsers.video import (
    parse_tags,
    parse_view,
    parse_view_detail,
    video_stat_snapshot,
)
from tests.helpers.payloads import CRAWLED_AT, DETAIL_CASE, FIXTURES, VIEW_CASES, load


def expected(path: Path) -> Any:
    return load(path.with_name(f"{path.stem}.expected.json"))


def view_data(case: str = "BV117411r7R1") -> dict[str, Any]:
    return load(FIXTURES / "view" / f"{case}.json")["data"]


def test_view_cases_found() -> None:
    assert len(VIEW_CASES) >= 3


@pytest.mark.parametrize("path", VIEW_CASES, ids=lambda path: path.stem)
def test_parse_view_golden(path: Path) -> None:
    item = parse_view(load(path)["data"], crawled_at=CRAWLED_AT)
    assert ItemAdapter(item).asdict() == expected(path)


def test_parse_view_builds_real_item_classes() -> None:
    item = parse_view(view_data(), crawled_at=CRAWLED_AT)
    assert isinstance(item, VideoItem)
    assert isinstance(item.owner, Owner)
    assert isinstance(item.stat, VideoStat)
    assert all(isinstance(page, VideoPage) for page in item.pages)
    assert item.staff is not None
    assert all(isinstance(member, StaffMember) for member in item.staff)
    assert item.tags is None


def test_parse_view_does_not_mutate_input() -> None:
    data = view_data()
    before = copy.deepcopy(data)
    parse_view(data, crawled_at=CRAWLED_AT)
    assert data == before


def test_old_empty_bvid_is_computed_from_aid() -> None:
    data = view_data("av19390801_2018")
    assert data["bvid"] == ""
    assert parse_view(data, crawled_at=CRAWLED_AT).bvid == "BV1bW411n7fY"


def test_missing_bvid_is_computed_from_aid() -> None:
    data = view_data()
    del data["bvid"]
    assert parse_view(data, crawled_at=CRAWLED_AT).bvid == "BV117411r7R1"


@pytest.mark.parametrize("pages", [None, []])
def test_without_pages_the_single_part_comes_from_top_level(pages: list[Any] | None) -> None:
    data = view_data()
    data["pages"] = pages
    item = parse_view(data, crawled_at=CRAWLED_AT)
    assert item.pages == [
        VideoPage(cid=146044693, page=1, part=data["title"], duration=486),
    ]


def test_multi_part_pages_keep_their_own_cid_and_duration() -> None:
    data = view_data()
    data["videos"] = 2
    # The first two parts of the real /x/player/pagelist example (BV1ex411J7GE).
    data["pages"] = [
        {"cid": 66445301, "page": 1, "part": "00. 宣传短片", "duration": 33},
        {"cid": 35039663, "page": 2, "part": "01. 火柴人与动画师", "duration": 133},
    ]
    item = parse_view(data, crawled_at=CRAWLED_AT)
    assert [(p.cid, p.page, p.duration) for p in item.pages] == [
        (66445301, 1, 33),
        (35039663, 2, 133),
    ]


def test_optional_fields_absent_are_none() -> None:
    data = view_data()
    optional = ("videos", "tid_v2", "tname_v2", "state", "dynamic", "staff")
    for key in optional:
        del data[key]
    item = parse_view(data, crawled_at=CRAWLED_AT)
    assert {key: getattr(item, key) for key in optional} == dict.fromkeys(optional)


def _delete(data: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    for key in parents:
        data = data[key]
    del data[last]


@pytest.mark.parametrize(
    "field",
    ["aid", "title", "desc", "pic", "owner", "owner.mid", "pubdate", "ctime", "tid", "tname",
     "copyright", "stat", "stat.view", "stat.like"],
)  # fmt: skip
def test_missing_required_field_raises(field: str) -> None:
    data = view_data()
    _delete(data, field)
    with pytest.raises(PayloadError, match=rf"required field '{field}' is missing"):
        parse_view(data, crawled_at=CRAWLED_AT)


def test_missing_page_field_names_the_page() -> None:
    data = view_data()
    del data["pages"][0]["cid"]
    with pytest.raises(PayloadError, match=r"'pages\[0\]\.cid'"):
        parse_view(data, crawled_at=CRAWLED_AT)


def test_missing_staff_field_names_the_member() -> None:
    data = view_data()
    del data["staff"][1]["title"]
    with pytest.raises(PayloadError, match=r"'staff\[1\]\.title'"):
        parse_view(data, crawled_at=CRAWLED_AT)


def test_real_archive_without_pages_or_cid_is_rejected() -> None:
    # /x/article/archives (2017) gives a view-like object with neither pages nor cid.
    data = load(FIXTURES / "article_archives" / "av8086541.json")["data"]["8086541"]
    with pytest.raises(PayloadError, match="'cid' is missing"):
        parse_view(data, crawled_at=CRAWLED_AT)


@pytest.mark.parametrize(
    ("field", "value"),
    [("view", "--"), ("like", None), ("coin", True), ("share", 1.5)],
)
def test_wrong_stat_type_raises(field: str, value: object) -> None:
    data = view_data()
    data["stat"][field] = value
    with pytest.raises(PayloadError, match=rf"'stat\.{field}'"):
        parse_view(data, crawled_at=CRAWLED_AT)


def test_payload_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'data'"):
        parse_view([], crawled_at=CRAWLED_AT)  # type: ignore[arg-type]  # a wrong shape


def test_parse_tags_golden() -> None:
    path = FIXTURES / "view_detail_tag" / "BV117411r7R1.json"
    tags = parse_tags(load(path)["data"])
    assert all(isinstance(tag, VideoTag) for tag in tags)
    assert [ItemAdapter(tag).asdict() for tag in tags] == expected(path)


@pytest.mark.parametrize("data", [None, []])
def test_parse_tags_empty(data: list[Any] | None) -> None:
    assert parse_tags(data) == []


def test_parse_tags_without_tag_type() -> None:
    assert parse_tags([{"tag_id": 1, "tag_name": "x"}]) == [
        VideoTag(tag_id=1, tag_name="x", tag_type=None)
    ]


def test_parse_tags_missing_name_raises() -> None:
    with pytest.raises(PayloadError, match=r"'tags\[0\]\.tag_name'"):
        parse_tags([{"tag_id": 1}])


def test_parse_view_detail_golden() -> None:
    item = parse_view_detail(load(DETAIL_CASE)["data"], crawled_at=CRAWLED_AT)
    assert ItemAdapter(item).asdict() == expected(DETAIL_CASE)


def test_parse_view_detail_is_view_plus_tags() -> None:
    detail = load(DETAIL_CASE)["data"]
    item = parse_view_detail(detail, crawled_at=CRAWLED_AT)
    view = parse_view(view_data(), crawled_at=CRAWLED_AT)
    assert item.tags == parse_tags(detail["Tags"])
    item.tags = None
    assert item == view


def test_parse_view_detail_tags_unknown_vs_empty() -> None:
    detail = {"View": view_data()}
    assert parse_view_detail(detail, crawled_at=CRAWLED_AT).tags is None
    detail["Tags"] = None
    assert parse_view_detail(detail, crawled_at=CRAWLED_AT).tags == []


def test_parse_view_detail_requires_view() -> None:
    with pytest.raises(PayloadError, match="'View'"):
        parse_view_detail({"Tags": []}, crawled_at=CRAWLED_AT)


@pytest.mark.parametrize(
    "path", [*VIEW_CASES, DETAIL_CASE], ids=lambda path: f"{path.parent.name}/{path.stem}"
)
def test_items_validate_against_schema(path: Path) -> None:
    parse = parse_view_detail if path == DETAIL_CASE else parse_view
    item = parse(load(path)["data"], crawled_at=CRAWLED_AT)
    jsonschema.validate(ItemAdapter(item).asdict(), ItemAdapter.get_json_schema(VideoItem))


def test_a_snapshot_holds_the_counters_and_crawl_time_of_its_video() -> None:
    video = parse_view_detail(load(DETAIL_CASE)["data"], crawled_at=CRAWLED_AT)
    snapshot = video_stat_snapshot(video)
    assert snapshot == VideoStatItem(aid=video.aid, crawled_at=CRAWLED_AT, stat=video.stat)
    assert snapshot.stat is not video.stat, "a copy: the video's item may still change"
