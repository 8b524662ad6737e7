"""``document(item)``, and the storage pipeline building each item's document once.

``document`` must build exactly ``ItemAdapter(item).asdict()``: the golden tests
below compare the two on every item class, the real examples and broken items,
and the stored bytes of the real examples are compared with the bytes stored
before ``document`` existed (``tests/fixtures/stored_documents/``). The
storage pipeline builds the document once and stores the very one it validated.
"""

from __future__ import annotations

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
    UserStatItem,
    UserStubItem,
    VideoItem,
    VideoStatItem,
)
from bilicrawl.parsers.article import parse_article, parse_cards
from bilicrawl.parsers.danmaku import parse_live_history, parse_xml
from bilicrawl.parsers.live import parse_room
from bilicrawl.parsers.user import parse_relation_list, parse_user, user_stat_snapshot
from bilicrawl.parsers.video import video_stat_snapshot
from bilicrawl.pipelines import store as store_pipeline_module
from bilicrawl.pipelines.store import StorePipeline
from bilicrawl.store.documents import document, dump_document
from bilicrawl.validation import InvalidItem
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
from tests.helpers.store import stored_count
from tests.utils import project_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from bilicrawl.store.documents import Upsert

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
        VideoStatItem: [video_stat_snapshot(video)],
        UserItem: [user, anonymous],
        UserStatItem: [user_stat_snapshot(user), user_stat_snapshot(anonymous)],
        UserStubItem: [entry.stub for entry in listed],
        RelationItem: [RelationItem(src_mid=2, dst_mid=2**62, mtime=1, crawled_at=CRAWLED_AT)],
        RelationListItem: [
            RelationListItem(mid=2, direction="followers", total=None, seen=0, status="hidden",
                             crawled_at=CRAWLED_AT),
        ],
    }  # fmt: skip
    article = parse_article(
        load(FIXTURES / "article_view" / "cv1.json")["data"], crawled_at=CRAWLED_AT
    )
    delta = parse_article(
        load(FIXTURES / "article_view" / "cv41358718_type3.json")["data"], crawled_at=CRAWLED_AT
    )
    cards = parse_cards(
        load(FIXTURES / "article_cards" / "example.json")["data"], refreshed_at=CRAWLED_AT
    )
    room = parse_room(
        load(FIXTURES / "room_get_info" / "5440.json")["data"], crawled_at=CRAWLED_AT
    )
    xml = parse_xml((FIXTURES / "dm_xml" / "104211449_weight.xml").read_bytes())
    found[DanmakuBatchItem] = [
        DanmakuBatchItem(
            cid=xml.cid, aid=None, source="xml", rows=xml.rows, crawled_at=CRAWLED_AT
        ),
    ]
    stored = DanmakuStored(seg=3, xml=2, history=0)
    found[DanmakuPartItem] = [
        DanmakuPartItem(
            cid=xml.cid,
            aid=2,
            duration=361,
            stat_danmaku=9,
            view_count=4,
            xml_maxlimit=xml.maxlimit,
            closed=False,
            segments_expected=2,
            segments_fetched=2,
            stored=stored,
            distinct=4,
            crawled_at=CRAWLED_AT,
        ),
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
    assert len(classes) == 30
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


# --- in the storage pipeline


def _count_builds(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Count every ``document(item)`` call of the storage pipeline."""
    built: list[Any] = []

    def counted(item: Any) -> Any:
        built.append(item)
        return document(item)

    monkeypatch.setattr(store_pipeline_module, "document", counted)
    return built


@deferred_f_from_coro_f
async def test_each_document_is_built_once_and_stored_as_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _count_builds(monkeypatch)
    db_path = tmp_path / "bilicrawl.db"
    pipeline = build_from_crawler(StorePipeline, build_crawler(sqlite_settings(db_path)))
    validated: list[Any] = []
    check, write = pipeline.validator.check, pipeline.store.write

    def recording_check(item_class: type, checked: Any) -> None:
        validated.append(checked)
        check(item_class, checked)

    written: list[Any] = []

    def recording_write(collection: str, upserts: list[Upsert]) -> None:
        written.extend(upsert.document for upsert in upserts)
        write(collection, upserts)

    monkeypatch.setattr(pipeline.validator, "check", recording_check)
    monkeypatch.setattr(pipeline.store, "write", recording_write)
    items = [make_video(aid=aid, title=f"视频 {aid}") for aid in (1, 2, 3)]
    await pipeline.open_spider()
    for item in items:
        assert await pipeline.process_item(item) is item
    # Changed once the pipeline has it, its document waiting in the buffer: not stored.
    items[1].title = None
    await pipeline.close_spider()

    assert len(built) == len(items)
    assert all(built_item is item for built_item, item in zip(built, items, strict=True))
    assert len(written) == len(validated)
    assert all(stored is checked for stored, checked in zip(written, validated, strict=True))
    with closing(sqlite3.connect(db_path)) as connection:
        rows = connection.execute("SELECT aid, doc FROM videos ORDER BY aid").fetchall()
    assert rows == [
        (aid, dump_document(ItemAdapter(make_video(aid=aid, title=f"视频 {aid}")).asdict()))
        for aid in (1, 2, 3)
    ]


@deferred_f_from_coro_f
async def test_an_invalid_item_is_dropped_and_not_stored(tmp_path: Path) -> None:
    db_path = tmp_path / "bilicrawl.db"
    pipeline = build_from_crawler(StorePipeline, build_crawler(sqlite_settings(db_path)))
    await pipeline.open_spider()

    with pytest.raises(InvalidItem):
        await pipeline.process_item(make_video(duration="754"))
    await pipeline.close_spider()

    assert stored_count(db_path, "videos") == 0
