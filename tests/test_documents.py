"""``document(item)`` and the handoff of documents from validation to storage.

``document`` must build exactly ``ItemAdapter(item).asdict()``: the golden tests
below compare the two on every item class, the real examples and broken items,
and the stored bytes of the real examples are compared with the bytes stored
before ``document`` existed (``tests/fixtures/stored_documents/``).
"""

from __future__ import annotations

import gc
import json
import sqlite3
import typing
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from itemadapter import ItemAdapter
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler

from bilicrawl.items import (
    ITEM_CLASSES,
    ArticleItem,
    DanmakuBatchItem,
    DanmakuHistoryDayItem,
    DanmakuPartItem,
    DanmakuStored,
    LiveDanmakuBatchItem,
    LiveRoomItem,
    RelationItem,
    RelationListItem,
    UserItem,
    UserStubItem,
    VideoItem,
)
from bilicrawl.parsers.article import parse_article, parse_cards
from bilicrawl.parsers.danmaku import parse_live_history, parse_xml
from bilicrawl.parsers.live import parse_room
from bilicrawl.parsers.user import parse_relation_list, parse_user
from bilicrawl.pipelines import documents as documents_module
from bilicrawl.pipelines import validate as validate_module
from bilicrawl.pipelines.batching import dump_document
from bilicrawl.pipelines.documents import DocumentHandoff, document
from bilicrawl.pipelines.sqlite import SQLitePipeline
from bilicrawl.pipelines.validate import InvalidItem, ValidationPipeline
from tests.helpers.items import build_crawler, make_video
from tests.helpers.payloads import (
    ACC_INFO,
    CARD,
    CRAWLED_AT,
    FIXTURES,
    FOLLOWINGS,
    UPSTAT,
    golden_items,
    load,
    stored_bytes,
)
from tests.utils import project_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.crawler import Crawler

GOLDEN = golden_items()


def sqlite_settings(db_path: Path) -> dict[str, Any]:
    return {**project_settings(), "MONGO_URI": "", "SQLITE_PATH": str(db_path)}


def examples() -> dict[type, list[Any]]:
    """Instances of every item class and of every class nested in one."""
    video = make_video()
    user = parse_user(ACC_INFO, CARD, UPSTAT, crawled_at=CRAWLED_AT)
    anonymous = parse_user(ACC_INFO, CARD, None, crawled_at=CRAWLED_AT)
    listed = parse_relation_list(FOLLOWINGS).users
    found: dict[type, list[Any]] = {
        VideoItem: [video, make_video(aid=2**51, staff=None, tags=None), *GOLDEN.values()],
        UserItem: [user, anonymous],
        UserStubItem: [entry.stub for entry in listed],
        RelationItem: [RelationItem(src_mid=2, dst_mid=2**62, mtime=1, crawled_at=CRAWLED_AT)],
        RelationListItem: [
            RelationListItem(mid=2, direction="followers", total=None, seen=0, status="hidden",
                             crawled_at=CRAWLED_AT),
        ],
    }  # fmt: skip
    article = parse_article(load(FIXTURES / "article_view" / "cv1.json")["data"],
                            crawled_at=CRAWLED_AT)
    delta = parse_article(load(FIXTURES / "article_view" / "cv41358718_type3.json")["data"],
                          crawled_at=CRAWLED_AT)
    cards = parse_cards(load(FIXTURES / "article_cards" / "example.json")["data"],
                        refreshed_at=CRAWLED_AT)
    room = parse_room(load(FIXTURES / "room_get_info" / "5440.json")["data"],
                      crawled_at=CRAWLED_AT)
    xml = parse_xml((FIXTURES / "dm_xml" / "104211449_weight.xml").read_bytes())
    found[DanmakuBatchItem] = [
        DanmakuBatchItem(cid=xml.cid, aid=None, source="xml", rows=xml.rows,
                         crawled_at=CRAWLED_AT),
    ]
    stored = DanmakuStored(seg=3, xml=2, history=0)
    found[DanmakuPartItem] = [
        DanmakuPartItem(cid=xml.cid, aid=2, duration=361, stat_danmaku=9, view_count=4,
                        xml_maxlimit=xml.maxlimit, closed=False, segments_expected=2,
                        segments_fetched=2, stored=stored, distinct=4, crawled_at=CRAWLED_AT),
    ]
    found[DanmakuStored] = [stored]
    found[DanmakuHistoryDayItem] = [
        DanmakuHistoryDayItem(cid=xml.cid, aid=None, date="2024-02-29", rows=0,
                              crawled_at=CRAWLED_AT),
    ]  # fmt: skip
    live_rows = parse_live_history(
        json.loads((FIXTURES / "live_danmaku" / "room1.json").read_text(encoding="utf-8"))["data"],
        room_id=5440,
    )
    found[LiveDanmakuBatchItem] = [
        LiveDanmakuBatchItem(room_id=5440, rows=live_rows, crawled_at=CRAWLED_AT)
    ]
    found[ArticleItem] = [article, delta]
    found[LiveRoomItem] = [room]
    for card in cards.values():
        found.setdefault(type(card), []).append(card)
    nested = [video.owner, video.stat, *video.pages, *video.staff, *video.tags]
    nested += [article.category, article.stats, article.list, room.area]
    nested += [user.official, user.vip, user.live_room, *(entry.stub.official for entry in listed)]
    for value in nested:
        found.setdefault(type(value), []).append(value)
    return found


EXAMPLES = examples()


def _attrs_classes(annotation: Any) -> set[type]:
    """The attrs classes in a field's type, e.g. ``VideoPage`` in ``list[VideoPage] | None``."""
    found = {annotation} if isinstance(annotation, type) and attrs.has(annotation) else set()
    for argument in typing.get_args(annotation):
        found |= _attrs_classes(argument)
    return found


def test_every_item_class_has_examples() -> None:
    classes = set(ITEM_CLASSES)
    for item_class in ITEM_CLASSES:
        for annotation in typing.get_type_hints(item_class).values():
            classes |= _attrs_classes(annotation)
    assert len(classes) == 28
    assert classes <= set(EXAMPLES)


@pytest.mark.parametrize(
    "item",
    [pytest.param(item, id=f"{cls.__name__}-{i}") for cls, items in EXAMPLES.items()
     for i, item in enumerate(items)],
)  # fmt: skip
def test_document_is_the_itemadapter_dict(item: Any) -> None:
    built = document(item)
    assert built == ItemAdapter(item).asdict()
    assert type(built) is dict


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_document_of_a_real_example_is_the_itemadapter_dict(case: str) -> None:
    item = GOLDEN[case]
    assert document(item) == ItemAdapter(item).asdict()


def _delete_owner_mid(item: VideoItem) -> None:
    del item.owner.mid


@pytest.mark.parametrize(
    "break_item",
    [
        pytest.param(lambda item: delattr(item, "title"), id="deleted-field"),
        pytest.param(_delete_owner_mid, id="deleted-nested-field"),
        pytest.param(lambda item: setattr(item, "owner", {"mid": 1}), id="dict-for-object"),
        pytest.param(lambda item: setattr(item, "title", None), id="none"),
        pytest.param(lambda item: setattr(item, "pages", tuple(item.pages)), id="tuple"),
        pytest.param(lambda item: setattr(item.stat, "view", 1.5), id="float"),
    ],
)
def test_document_of_a_broken_item_is_the_itemadapter_dict(
    break_item: Callable[[VideoItem], None],
) -> None:
    item = make_video()
    break_item(item)
    assert document(item) == ItemAdapter(item).asdict()


def test_document_shares_nothing_with_the_item() -> None:
    item = make_video()
    built = document(item)
    item.pages[0].part = "changed"
    item.tags.append(item.tags[0])
    built["owner"]["name"] = "changed"
    assert built["pages"][0]["part"] == "正片 🎬"
    assert len(built["tags"]) == 1
    assert item.owner.name == "原神"


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_document_dumps_to_the_bytes_stored_before(case: str) -> None:
    assert dump_document(document(GOLDEN[case])) == stored_bytes(case)


# --- the handoff


@pytest.fixture
def crawler() -> Crawler:
    return build_crawler()


def test_one_handoff_per_crawler(crawler: Crawler) -> None:
    handoff = DocumentHandoff.for_crawler(crawler)
    assert DocumentHandoff.for_crawler(crawler) is handoff
    assert DocumentHandoff.for_crawler(build_crawler()) is not handoff


def test_take_returns_the_given_document_once() -> None:
    handoff = DocumentHandoff()
    item = make_video()
    given = document(item)
    handoff.give(item, given)

    assert len(handoff) == 1
    assert handoff.take(item) is given
    assert len(handoff) == 0
    again = handoff.take(item)
    assert again is not given
    assert again == given


def test_an_equal_item_is_another_item() -> None:
    handoff = DocumentHandoff()
    item, twin = make_video(), make_video()
    assert item == twin
    given = document(item)
    handoff.give(item, given)

    assert handoff.take(twin) is not given
    assert handoff.take(item) is given


def test_many_items_in_flight_each_get_their_own() -> None:
    handoff = DocumentHandoff()
    items = [make_video(aid=aid) for aid in range(1, 6)]
    given = {aid: document(item) for aid, item in enumerate(items, 1)}
    for aid, item in enumerate(items, 1):
        handoff.give(item, given[aid])

    for aid, item in reversed(list(enumerate(items, 1))):
        assert handoff.take(item) is given[aid]
    assert len(handoff) == 0


def test_a_freed_item_leaves_nothing_behind() -> None:
    handoff = DocumentHandoff()
    item = make_video()
    handoff.give(item, document(item))
    del item
    gc.collect()
    assert len(handoff) == 0


def test_an_item_that_cannot_be_weakly_referenced_is_built_by_take() -> None:
    handoff = DocumentHandoff()
    item = {"aid": 1}
    handoff.give(item, {"aid": 1})
    assert len(handoff) == 0
    assert handoff.take(item) == {"aid": 1}


def _count_builds(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Count every ``document(item)`` call of validation and storage."""
    built: list[Any] = []
    real = documents_module.document

    def counted(item: Any) -> Any:
        built.append(item)
        return real(item)

    monkeypatch.setattr(validate_module, "document", counted)
    monkeypatch.setattr(documents_module, "document", counted)
    return built


@deferred_f_from_coro_f
async def test_each_document_is_built_once_and_stored_as_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _count_builds(monkeypatch)
    db_path = tmp_path / "bilicrawl.db"
    crawler = build_crawler(sqlite_settings(db_path))
    validation = build_from_crawler(ValidationPipeline, crawler)
    store = build_from_crawler(SQLitePipeline, crawler)
    items = [make_video(aid=aid, title=f"视频 {aid}") for aid in (1, 2, 3)]
    await store.open_spider()
    passed = [validation.process_item(item) for item in items]  # all in flight at once
    # A pipeline between the two changes an item: the store writes what was validated.
    items[1].title = None
    for item in reversed(passed):
        await store.process_item(item)
    await store.close_spider()

    assert len(built) == len(items)
    assert all(built_item is item for built_item, item in zip(built, items, strict=True))
    assert len(DocumentHandoff.for_crawler(crawler)) == 0
    with closing(sqlite3.connect(db_path)) as connection:
        rows = connection.execute("SELECT aid, doc FROM videos ORDER BY aid").fetchall()
    assert rows == [
        (aid, dump_document(ItemAdapter(make_video(aid=aid, title=f"视频 {aid}")).asdict()))
        for aid in (1, 2, 3)
    ]


def test_an_invalid_item_leaves_no_document(crawler: Crawler) -> None:
    validation = build_from_crawler(ValidationPipeline, crawler)
    item = make_video(duration="754")

    with pytest.raises(InvalidItem):
        validation.process_item(item)

    assert len(DocumentHandoff.for_crawler(crawler)) == 0
