"""ItemValidator: valid documents pass and are counted; invalid ones are dropped with a reason."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs
import fastjsonschema
import pytest
from itemadapter import ItemAdapter
from jsonschema.validators import Draft202012Validator

from bilicrawl import validation as validation_module
from bilicrawl.items import (
    ITEM_CLASSES,
    Owner,
    VideoItem,
)
from bilicrawl.parsers.video import parse_view, parse_view_detail
from bilicrawl.store.documents import document
from bilicrawl.validation import (
    InvalidItem,
    ItemValidator,
    build_fast_validator,
    build_validator,
)
from tests.helpers.items import build_crawler, make_video
from tests.helpers.payloads import CRAWLED_AT, DETAIL_CASE, VIEW_CASES, load

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.crawler import Crawler


@pytest.fixture
def crawler() -> Crawler:
    return build_crawler()


@pytest.fixture
def validator(crawler: Crawler) -> ItemValidator:
    return ItemValidator(crawler.stats)


def check(validator: ItemValidator, item: Any) -> None:
    """Check an item's document, as the storage pipeline does."""
    validator.check(type(item), document(item))


def test_a_valid_document_passes_unchanged_and_is_counted(
    crawler: Crawler, validator: ItemValidator
) -> None:
    item = make_video()
    checked = document(item)

    validator.check(VideoItem, checked)
    check(validator, make_video(aid=2**51, staff=None, tags=None))

    assert checked == ItemAdapter(item).asdict()
    stats = crawler.stats.get_stats()
    assert stats["bilicrawl/items/VideoItem"] == 2
    assert not any(key.startswith("bilicrawl/validate/") for key in stats)


def _delete(path: str) -> Callable[[VideoItem], None]:
    """Return a function deleting the attribute at a dotted path, as if never set."""

    def delete(item: VideoItem) -> None:
        *parents, name = path.split(".")
        target: Any = item
        for parent in parents:
            target = getattr(target, parent)
        delattr(target, name)

    return delete


@pytest.mark.parametrize(
    ("break_item", "reason", "message"),
    [
        pytest.param(
            _delete("title"),
            "title:required",
            "at <root>: 'title' is a required property",
            id="missing-field",
        ),
        pytest.param(
            _delete("owner.mid"),
            "owner.mid:required",
            "at owner: 'mid' is a required property",
            id="missing-nested-field",
        ),
        pytest.param(
            lambda item: setattr(item, "title", None),
            "title:type",
            "at title: None is not of type 'string'",
            id="none-in-required-field",
        ),
        pytest.param(
            lambda item: setattr(item, "duration", "754"),
            "duration:type",
            "at duration: '754' is not of type 'integer'",
            id="str-for-int",
        ),
        pytest.param(
            lambda item: setattr(item.stat, "view", "429.5万"),
            "stat.view:type",
            "at stat.view: '429.5万' is not of type 'integer'",
            id="nested-str-for-int",
        ),
        pytest.param(
            lambda item: setattr(item.pages[1], "cid", "27123456790"),
            "pages.cid:type",
            "at pages.1.cid: '27123456790' is not of type 'integer'",
            id="str-in-list-of-objects",
        ),
        pytest.param(
            lambda item: setattr(item, "owner", {"mid": 1}),
            "owner.name:required",
            "at owner: 'name' is a required property",
            id="wrong-nested-object",
        ),
        pytest.param(
            lambda item: setattr(item.staff[0], "mid", None),
            "staff.mid:type",
            "at staff.0.mid: None is not of type 'integer'",
            id="optional-list-member",
        ),
    ],
)
def test_invalid_item_is_dropped_with_counted_reason(
    crawler: Crawler,
    validator: ItemValidator,
    break_item: Callable[[VideoItem], None],
    reason: str,
    message: str,
) -> None:
    item = make_video()
    break_item(item)

    with pytest.raises(InvalidItem) as caught:
        check(validator, item)

    assert caught.value.reason == reason
    assert str(caught.value) == f"Invalid VideoItem aid=113784589289472: {message}"
    assert crawler.stats.get_stats() == {
        "bilicrawl/validate/dropped/VideoItem": 1,
        f"bilicrawl/validate/dropped_reason/{reason}": 1,
    }


def test_reason_is_shared_by_every_list_position(
    crawler: Crawler, validator: ItemValidator
) -> None:
    for index in range(2):
        item = make_video()
        item.pages[index].duration = -1.5
        with pytest.raises(InvalidItem):
            check(validator, item)

    assert crawler.stats.get_value("bilicrawl/validate/dropped_reason/pages.duration:type") == 2


@pytest.mark.parametrize(
    "item",
    [
        pytest.param({"aid": 113_784_589_289_472, "title": "字典"}, id="dict"),
        pytest.param(Owner(mid=1, name="😀", face=""), id="nested-attrs-class"),
    ],
)
def test_unknown_item_type_is_dropped(
    crawler: Crawler, validator: ItemValidator, item: Any
) -> None:
    name = type(item).__name__

    with pytest.raises(InvalidItem, match=f"^{name} is not a bilicrawl item class$") as caught:
        check(validator, item)

    assert caught.value.reason == "unknown_item_class"
    assert crawler.stats.get_stats() == {
        f"bilicrawl/validate/dropped/{name}": 1,
        "bilicrawl/validate/dropped_reason/unknown_item_class": 1,
    }


def test_drop_is_logged_at_info_without_traceback(
    crawler: Crawler, validator: ItemValidator
) -> None:
    item = attrs.evolve(make_video(), copyright="1")
    with pytest.raises(InvalidItem) as caught:
        check(validator, item)

    # What Scrapy's scraper logs for a DropItem: one record at the exception's level.
    record = crawler.logformatter.dropped(item, caught.value, None, crawler.spider)

    assert record is not None
    assert record["level"] == logging.INFO
    assert "exc_info" not in record
    assert (record["msg"] % record["args"]).startswith(
        "Dropped: Invalid VideoItem aid=113784589289472: at copyright: '1' is not of type"
    )


def real_examples() -> list[VideoItem]:
    """The videos parsed from the saved view and view/detail responses."""
    return [
        *(parse_view(load(path)["data"], crawled_at=CRAWLED_AT) for path in VIEW_CASES),
        parse_view_detail(load(DETAIL_CASE)["data"], crawled_at=CRAWLED_AT),
    ]


# Ways to break a video, with the reason every drop of such a video gives.
BREAKS: list[tuple[str, Callable[[VideoItem], None], str]] = [
    ("missing-field", lambda item: delattr(item, "bvid"), "bvid:required"),
    ("missing-nested", lambda item: delattr(item.stat, "coin"), "stat.coin:required"),
    ("str-for-int", lambda item: setattr(item.stat, "view", "429.5万"), "stat.view:type"),
    ("float-for-int", lambda item: setattr(item, "pubdate", 1.5), "pubdate:type"),
    ("bool-for-int", lambda item: setattr(item, "copyright", True), "copyright:type"),
    ("none-in-list", lambda item: setattr(item.pages[-1], "part", None), "pages.part:type"),
    ("list-for-str", lambda item: setattr(item, "title", ["a"]), "title:type"),
    ("dict-for-list", lambda item: setattr(item, "pages", {}), "pages:type"),
    (
        "extra-nested-key",
        lambda item: setattr(item, "owner", {**attrs.asdict(item.owner), "sign": ""}),
        "owner:additionalProperties",
    ),
    ("str-for-optional", lambda item: setattr(item, "videos", "2"), "videos:type"),
    ("wrong-optional-list", lambda item: setattr(item, "tags", [1]), "tags:type"),
]


@pytest.mark.parametrize(("name", "break_item", "reason"), BREAKS, ids=[b[0] for b in BREAKS])
def test_broken_real_examples_are_still_dropped(
    crawler: Crawler,
    validator: ItemValidator,
    name: str,
    break_item: Callable[[VideoItem], None],
    reason: str,
) -> None:
    items = real_examples()
    for item in items:
        check(validator, item)
        break_item(item)
        with pytest.raises(InvalidItem) as caught:
            check(validator, item)
        assert caught.value.reason == reason
        assert str(caught.value).startswith(f"Invalid VideoItem aid={item.aid}: at ")

    assert crawler.stats.get_value("bilicrawl/items/VideoItem") == len(items)
    assert crawler.stats.get_value("bilicrawl/validate/dropped/VideoItem") == len(items)
    assert crawler.stats.get_value(f"bilicrawl/validate/dropped_reason/{reason}") == len(items)


def _is_valid_fast(checked: dict[str, Any]) -> bool:
    try:
        build_fast_validator(VideoItem)(checked)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


@pytest.mark.parametrize(
    "break_item",
    [
        pytest.param(lambda item: None, id="valid"),
        pytest.param(lambda item: setattr(item, "duration", 754.0), id="integral-float"),
        pytest.param(lambda item: setattr(item, "staff", None), id="none-for-optional"),
        pytest.param(lambda item: setattr(item, "pages", []), id="empty-list"),
        *(pytest.param(b[1], id=b[0]) for b in BREAKS),
    ],
)
def test_compiled_validator_decides_as_jsonschema(break_item: Callable[[VideoItem], None]) -> None:
    for item in [make_video(), *real_examples()]:
        break_item(item)
        checked = document(item)
        assert _is_valid_fast(checked) == build_validator(VideoItem).is_valid(checked)
        assert document(item) == checked, "validation changed the document"


def test_tuple_for_list_is_the_one_known_difference() -> None:
    """jsonschema's array is a list; fastjsonschema takes a tuple too (stored as an array)."""
    item = make_video()
    item.pages = tuple(item.pages)  # type: ignore[assignment]  # the difference tested
    checked = document(item)

    assert _is_valid_fast(checked)
    assert not build_validator(VideoItem).is_valid(checked)


def test_a_rejection_jsonschema_cannot_explain_is_explained_by_the_compiled_validator(
    crawler: Crawler, validator: ItemValidator, monkeypatch: pytest.MonkeyPatch
) -> None:
    accept_all = Draft202012Validator({})
    monkeypatch.setattr(validation_module, "build_validator", lambda item_class: accept_all)
    item = make_video()
    item.pages[1].cid = "27123456790"

    with pytest.raises(InvalidItem) as caught:
        check(validator, item)

    assert caught.value.reason == "pages.cid:type"
    assert str(caught.value) == (
        "Invalid VideoItem aid=113784589289472: at pages.1.cid: data.pages[1].cid must be integer"
    )
    assert crawler.stats.get_value("bilicrawl/validate/dropped_reason/pages.cid:type") == 1


@pytest.mark.parametrize("item_class", ITEM_CLASSES, ids=lambda cls: cls.__name__)
def test_every_item_schema_is_a_valid_json_schema(item_class: type) -> None:
    """Checked here rather than at every crawl's start."""
    validator = build_validator(item_class)  # raises SchemaError for an invalid schema
    assert validator.schema == ItemAdapter.get_json_schema(item_class)
