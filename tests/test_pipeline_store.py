"""StorePipeline on every store: batches, retries, dead letters, flushes on a timer and on
closing, forced exits, failed opens, partial documents merged into stored ones.

Each test runs on SQLite, on mongomock and, with ``BILICRAWL_TEST_MONGO_URI``, on a real
MongoDB server. A forced exit is tested by calling the "before shutdown" trigger
(``before_exit``) directly: the test reactor keeps running.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from itemadapter import ItemAdapter
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler
from twisted.internet import reactor

from bilicrawl import signals
from bilicrawl.config import ConfigError
from bilicrawl.items import (
    DanmakuBatchItem,
    DanmakuPartItem,
    DanmakuStored,
    LiveDanmakuBatchItem,
    Official,
    OfficialVerify,
    RelationItem,
    RelationListItem,
    Vip,
)
from bilicrawl.pipelines.store import StorePipeline
from bilicrawl.store.documents import COLLECTIONS, Upsert, combine, dump_document, merge_document
from tests.helpers.backends import Backend
from tests.helpers.items import (
    CRAWLED_AT,
    build_crawler,
    danmaku_row,
    make_stub,
    make_user,
    make_video,
    with_stub,
)
from tests.helpers.payloads import golden_items, stored_bytes
from tests.helpers.store import ItemsSpider

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from scrapy.crawler import Crawler

    from bilicrawl.store.documents import Document


def build_pipeline(backend: Backend, **settings: Any) -> tuple[StorePipeline, Crawler]:
    crawler = build_crawler({**backend.settings, **settings})
    return build_from_crawler(StorePipeline, crawler), crawler


def storage_stats(crawler: Crawler) -> dict[str, Any]:
    return {
        key: value
        for key, value in crawler.stats.get_stats().items()
        if key.startswith("bilicrawl/storage/")
    }


def dead_letters(backend: Backend, name: str = "failed-videos.jsonl") -> list[Document]:
    path = backend.dead_letter_dir / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def on_write(
    monkeypatch: pytest.MonkeyPatch, backend: Backend, hook: Callable[[list[int]], None]
) -> list[list[int]]:
    """Call ``hook(ids)`` (which may block or raise) before each write; return the ids.

    An id is a document's first natural key field: a video's aid, a user's mid.
    """
    attempts: list[list[int]] = []
    write = backend.store_class.write

    def hooked_write(self: Any, collection: str, upserts: list[Upsert]) -> None:
        id_field = COLLECTIONS[collection].natural_key[0]
        ids = [upsert.document[id_field] for upsert in upserts]
        attempts.append(ids)
        hook(ids)
        write(self, collection, upserts)

    monkeypatch.setattr(backend.store_class, "write", hooked_write)
    return attempts


def fail_first(count: int) -> Callable[[list[int]], None]:
    """A write hook for ``on_write``: raises "database is locked" on its first *count* calls."""
    failures = iter(range(count))

    def hook(ids: list[int]) -> None:
        if next(failures, None) is not None:
            raise OSError("database is locked")

    return hook


def refuse_all(ids: list[int]) -> None:
    """A write hook for ``on_write``: the store is gone."""
    raise OSError("store gone")


def log_writes(pipeline: StorePipeline) -> list[str]:
    """Record the collection of every batch the pipeline writes, in order; return the list."""
    written: list[str] = []
    write = pipeline.store.write

    def logged(collection: str, upserts: list[Upsert]) -> None:
        write(collection, upserts)
        written.append(collection)

    pipeline.store.write = logged  # type: ignore[method-assign]  # on this one store only
    return written


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == level and record.name.startswith("bilicrawl")
    ]


@deferred_f_from_coro_f
async def test_validated_real_examples_are_stored_as_the_same_bytes_as_before(
    backend: Backend,
) -> None:
    # One crawl per example: several are the same video.
    for case, item in golden_items().items():
        pipeline, _ = build_pipeline(backend)
        await pipeline.open_spider()
        await pipeline.process_item(item)
        await pipeline.close_spider()

        assert backend.stored_json(item.aid) == stored_bytes(case), case


@deferred_f_from_coro_f
async def test_buffered_documents_are_written_every_flush_interval(backend: Backend) -> None:
    pipeline, crawler = build_pipeline(backend, BILI_STORE_FLUSH_SECONDS=0.05)
    await pipeline.open_spider()
    try:
        for aid in (1, 2):
            await pipeline.process_item(make_video(aid=aid))
        assert backend.stored_titles() == {}

        await eventually(lambda: len(backend.stored_titles()) == 2)
        assert storage_stats(crawler) == {
            "bilicrawl/storage/flushes/timer": 1,
            "bilicrawl/storage/batches/videos": 1,
            "bilicrawl/storage/upserted/videos": 2,
        }
    finally:
        await pipeline.close_spider()
    assert crawler.stats.get_value("bilicrawl/storage/upserted/videos") == 2


@pytest.mark.parametrize("value", [0, -1, "soon"])
def test_flush_interval_must_be_a_positive_number(backend: Backend, value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^BILI_STORE_FLUSH_SECONDS must be"):
        build_pipeline(backend, BILI_STORE_FLUSH_SECONDS=value)


@deferred_f_from_coro_f
async def test_crawl_closing_writes_the_buffers_at_once(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline, crawler = build_pipeline(backend, BILI_STORE_FLUSH_SECONDS=3600)
    await pipeline.open_spider()
    try:
        for aid in (1, 2):
            await pipeline.process_item(make_video(aid=aid))

        with caplog.at_level(logging.INFO, logger="bilicrawl"):
            crawler.signals.send_catch_log(signals.crawl_closing, reason="risk_control")
            await eventually(lambda: len(backend.stored_titles()) == 2)
    finally:
        await pipeline.close_spider()
    assert storage_stats(crawler) == {
        "bilicrawl/storage/flushes/closing": 1,
        "bilicrawl/storage/batches/videos": 1,
        "bilicrawl/storage/upserted/videos": 2,
        "bilicrawl/storage/written/videos": 2,
    }
    assert any("risk_control" in message for message in messages(caplog, logging.INFO))


@deferred_f_from_coro_f
async def test_open_registers_the_exit_trigger_and_close_removes_it(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    added: list[tuple[Any, ...]] = []
    removed: list[Any] = []
    add, remove = reactor.addSystemEventTrigger, reactor.removeSystemEventTrigger

    def spy_add(*args: Any) -> Any:
        added.append((*args, trigger_id := add(*args)))
        return trigger_id

    def spy_remove(trigger_id: Any) -> None:
        removed.append(trigger_id)
        remove(trigger_id)

    monkeypatch.setattr(reactor, "addSystemEventTrigger", spy_add)
    monkeypatch.setattr(reactor, "removeSystemEventTrigger", spy_remove)
    pipeline, _ = build_pipeline(backend)

    await pipeline.open_spider()
    [(phase, event, trigger, trigger_id)] = added
    assert (phase, event, trigger) == ("before", "shutdown", pipeline.before_exit)
    assert removed == []
    await pipeline.close_spider()
    assert removed == [trigger_id]


@deferred_f_from_coro_f
async def test_forced_exit_writes_every_buffered_document(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline, crawler = build_pipeline(backend, BILI_STORE_FLUSH_SECONDS=3600)
    await pipeline.open_spider()
    for aid in (1, 2):
        await pipeline.process_item(make_video(aid=aid, title=f"t{aid}"))

    with caplog.at_level(logging.WARNING, logger="bilicrawl"):
        await maybe_deferred_to_future(pipeline.before_exit())

    assert backend.stored_titles() == {1: "t1", 2: "t2"}
    assert messages(caplog, logging.WARNING) == [
        "Forced exit: wrote 2 buffered documents to the store"
    ]
    assert dead_letters(backend) == []
    await pipeline.close_spider()
    assert storage_stats(crawler) == {
        "bilicrawl/storage/batches/videos": 1,
        "bilicrawl/storage/upserted/videos": 2,
        "bilicrawl/storage/written/videos": 2,
    }


@deferred_f_from_coro_f
async def test_forced_exit_dead_letters_what_a_stuck_store_has_not_written(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    on_write(monkeypatch, backend, lambda aids: release.wait(10) if 1 in aids else None)
    monkeypatch.setattr(StorePipeline, "exit_timeout", 0.2)
    items = [make_video(aid=aid, title=f"视频 {aid}") for aid in (1, 2, 3)]
    pipeline, crawler = build_pipeline(backend, BILI_STORE_BATCH_SIZE=2)
    await pipeline.open_spider()
    # The first batch (1, 2) hangs in the worker thread; 3 waits in the buffer.
    stuck = asyncio.gather(*(pipeline.process_item(item) for item in items))
    await asyncio.sleep(0.05)

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bilicrawl"):
        await maybe_deferred_to_future(pipeline.before_exit())
    assert time.monotonic() - started < 2

    assert dead_letters(backend) == [ItemAdapter(item).asdict() for item in items]
    [warning] = messages(caplog, logging.WARNING)
    assert warning.startswith("Forced exit: 3 buffered documents were not stored")
    assert "not written within 0.2s" in warning
    assert str(backend.dead_letter_dir / "failed-videos.jsonl") in warning
    assert crawler.stats.get_value("bilicrawl/storage/failed/videos") == 3
    release.set()
    await stuck
    await pipeline.close_spider()


@deferred_f_from_coro_f
async def test_forced_exit_dead_letters_at_once_when_the_store_fails(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline, crawler = build_pipeline(backend, BILI_STORE_FLUSH_SECONDS=3600)
    await pipeline.open_spider()
    await pipeline.process_item(make_video(aid=7))
    attempts = on_write(monkeypatch, backend, refuse_all)

    with caplog.at_level(logging.WARNING, logger="bilicrawl"):
        await maybe_deferred_to_future(pipeline.before_exit())

    assert attempts == [[7]]
    assert dead_letters(backend) == [ItemAdapter(make_video(aid=7)).asdict()]
    [warning] = messages(caplog, logging.WARNING)
    assert "1 buffered documents were not stored (OSError('store gone'))" in warning
    await pipeline.close_spider()
    assert storage_stats(crawler) == {"bilicrawl/storage/failed/videos": 1}


@deferred_f_from_coro_f
async def test_forced_exit_takes_over_a_batch_waiting_for_a_retry(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_once = fail_first(1)
    attempts = on_write(monkeypatch, backend, fail_once)
    pipeline, _ = build_pipeline(backend, BILI_STORE_BATCH_SIZE=1, BILI_STORE_RETRY_DELAYS=[0.2])
    await pipeline.open_spider()
    # "first" failed and waits to be retried; "second" waits for it.
    pending = asyncio.gather(
        pipeline.process_item(make_video(aid=1, title="first")),
        pipeline.process_item(make_video(aid=1, title="second")),
    )
    await eventually(lambda: len(attempts) == 1)

    await maybe_deferred_to_future(pipeline.before_exit())
    await pending
    await pipeline.close_spider()

    # The retry of "first" did not write it over the newer document.
    assert attempts == [[1], [1]]
    assert backend.stored_titles() == {1: "second"}


@deferred_f_from_coro_f
async def test_items_after_a_forced_exit_go_to_the_dead_letter_file(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline, crawler = build_pipeline(backend)
    await pipeline.open_spider()
    await maybe_deferred_to_future(pipeline.before_exit())

    with caplog.at_level(logging.WARNING, logger="bilicrawl"):
        await pipeline.process_item(make_video(aid=5))
    await pipeline.close_spider()

    assert dead_letters(backend) == [ItemAdapter(make_video(aid=5)).asdict()]
    assert backend.stored_titles() == {}
    assert crawler.stats.get_value("bilicrawl/storage/failed/videos") == 1
    [warning] = messages(caplog, logging.WARNING)
    assert "failed-videos.jsonl" in warning


@pytest.mark.parametrize("opened", ["failed", "never"])
@deferred_f_from_coro_f
async def test_close_after_a_failed_or_no_open_only_stops_the_worker(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, opened: str
) -> None:
    def refuse(self: Any) -> None:
        raise ConfigError("store refused")

    monkeypatch.setattr(backend.store_class, "open", refuse)
    pipeline, _ = build_pipeline(backend)
    if opened == "failed":
        with pytest.raises(ConfigError, match="store refused"):
            await pipeline.open_spider()

    await pipeline.close_spider()

    with pytest.raises(RuntimeError, match="after shutdown"):
        pipeline._executor.submit(print)


async def store(backend: Backend, items: list[Any], **settings: Any) -> Crawler:
    """Run a whole crawl's worth of pipeline calls; return the crawler."""
    pipeline, crawler = build_pipeline(backend, **settings)
    await pipeline.open_spider()
    for item in items:
        await pipeline.process_item(item)
    await pipeline.close_spider()
    return crawler


def batches_of(size: int) -> dict[str, int]:
    return {"BILI_STORE_BATCH_SIZE": size, "BILI_STORE_ROWS_BATCH_SIZE": size}


BATCHINGS = pytest.mark.parametrize(
    "batching", [batches_of(1), batches_of(10)], ids=["separate batches", "one batch"]
)


def test_merge_document_merges_objects_at_every_depth() -> None:
    stored = {"mid": 2, "official": {"role": 2, "title": "站长", "inner": {"a": 1, "b": 2}}}
    patch = {"official": {"title": "新", "inner": {"b": 3, "c": 4}}, "name": "碧诗"}

    assert merge_document(stored, patch) == {
        "mid": 2,
        "official": {"role": 2, "title": "新", "inner": {"a": 1, "b": 3, "c": 4}},
        "name": "碧诗",
    }


def test_merge_document_replaces_whatever_is_not_two_objects() -> None:
    stored = {"tags": [1, 2, 3], "live_room": {"room_id": 1}, "level": {"now": 5}, "vip": None}
    patch = {"tags": [4], "live_room": None, "level": 6, "vip": {"type": 1}}

    assert merge_document(stored, patch) == {
        "tags": [4],
        "live_room": None,
        "level": 6,
        "vip": {"type": 1},
    }


def test_merge_document_changes_neither_input() -> None:
    stored = {"mid": 2, "official": {"role": 2, "desc": ""}, "pages": [{"cid": 1}]}
    patch = {"official": {"desc": "新"}, "pages": [{"cid": 2}]}
    stored_before, patch_before = copy.deepcopy(stored), copy.deepcopy(patch)

    merged = merge_document(stored, patch)

    assert (stored, patch) == (stored_before, patch_before)
    assert merged is not stored
    assert merged["official"] is not stored["official"]


def test_combine_keeps_one_upsert_per_key_with_the_kind_of_the_first_full_one() -> None:
    full = Upsert({"mid": 2, "name": "a", "level": 6}, partial=False)
    newer_full = Upsert({"mid": 2, "name": "z"}, partial=False)
    stub = Upsert({"mid": 2, "name": "b"}, partial=True)
    newer_stub = Upsert({"mid": 2, "name": "c", "sign": "s"}, partial=True)

    assert combine(None, stub) == stub
    assert combine(stub, full) == full
    assert combine(full, newer_full) == newer_full
    assert combine(full, stub) == Upsert({"mid": 2, "name": "b", "level": 6}, partial=False)
    assert combine(stub, newer_stub) == Upsert({"mid": 2, "name": "c", "sign": "s"}, True)


@BATCHINGS
@deferred_f_from_coro_f
async def test_a_stub_after_a_full_profile_updates_only_its_own_fields(
    backend: Backend, batching: dict[str, int]
) -> None:
    profile, stub = make_user(), make_stub()

    crawler = await store(backend, [profile, stub], **batching)

    [stored] = backend.stored_users().values()
    expected = with_stub(ItemAdapter(profile).asdict(), stub)
    assert stored == expected
    assert stored["official"] == {
        "role": 2,
        "title": "bilibili创始人（站长）",
        "desc": "bilibili 知名UP主",
        "type": 1,
    }
    assert (stored["crawled_at"], stored["follower"]) == (CRAWLED_AT, 969_999)
    assert stored["live_room"]["room_id"] == 1024
    upserted = 2 if batching["BILI_STORE_BATCH_SIZE"] == 1 else 1
    assert crawler.stats.get_value("bilicrawl/storage/upserted/users") == upserted


@BATCHINGS
@deferred_f_from_coro_f
async def test_a_stub_in_a_later_crawl_updates_only_its_own_fields(
    backend: Backend, batching: dict[str, int]
) -> None:
    profile, stub = make_user(), make_stub()
    await store(backend, [profile])

    crawler = await store(backend, [stub], **batching)

    assert backend.stored_users() == {2: with_stub(ItemAdapter(profile).asdict(), stub)}
    assert crawler.stats.get_value("bilicrawl/storage/upserted/users") == 1


@BATCHINGS
@deferred_f_from_coro_f
async def test_a_full_profile_after_a_stub_replaces_it(
    backend: Backend, batching: dict[str, int]
) -> None:
    profile = make_user(live_room=None)

    await store(backend, [make_stub(), profile], **batching)

    assert backend.stored_users() == {2: ItemAdapter(profile).asdict()}


@BATCHINGS
@deferred_f_from_coro_f
async def test_stubs_for_the_same_user_merge_into_the_stored_profile(
    backend: Backend, batching: dict[str, int]
) -> None:
    profile = make_user()
    first = make_stub(official=OfficialVerify(type=0, desc="旧认证"), sign="旧签名")
    second = make_stub(vip=Vip(type=2, status=1, label="年度大会员"))
    await store(backend, [profile])

    crawler = await store(backend, [first, second], **batching)

    [stored] = backend.stored_users().values()
    assert stored == with_stub(ItemAdapter(profile).asdict(), second)
    assert stored["sign"] == "新签名 ✨"
    assert stored["official"]["title"] == "bilibili创始人（站长）"
    assert stored["vip"]["label"] == "年度大会员"
    assert stored["crawled_at"] == CRAWLED_AT
    upserted = 2 if batching["BILI_STORE_BATCH_SIZE"] == 1 else 1
    assert crawler.stats.get_value("bilicrawl/storage/upserted/users") == upserted


@BATCHINGS
@deferred_f_from_coro_f
async def test_stubs_for_a_user_never_stored_create_the_document(
    backend: Backend, batching: dict[str, int]
) -> None:
    stub = make_stub(mid=3_493_118_494_116_797)

    await store(backend, [make_stub(mid=stub.mid, name="旧名", sign="旧签名"), stub], **batching)

    assert backend.stored_users() == {stub.mid: ItemAdapter(stub).asdict()}


@deferred_f_from_coro_f
async def test_a_full_profile_replaces_everything_stubs_merged_into_an_older_one(
    backend: Backend,
) -> None:
    await store(backend, [make_user(), make_stub()])
    newer = make_user(
        official=Official(role=0, title="", desc="", type=-1),
        live_room=None,
        article_view=3_230_808,
        crawled_at=CRAWLED_AT + 86_400,
    )

    await store(backend, [newer])

    assert backend.stored_users() == {2: ItemAdapter(newer).asdict()}


@deferred_f_from_coro_f
async def test_partial_documents_that_could_not_be_written_have_their_own_dead_letter_file(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    on_write(monkeypatch, backend, refuse_all)
    profile, stub, other_stub = make_user(mid=1), make_stub(mid=1), make_stub(mid=2)

    with caplog.at_level(logging.ERROR, logger="bilicrawl"):
        crawler = await store(
            backend, [profile, stub, other_stub], **batches_of(10), BILI_STORE_RETRY_DELAYS=[]
        )

    # The stub merged into the buffered profile is still a full document.
    assert dead_letters(backend, "failed-users.jsonl") == [
        with_stub(ItemAdapter(profile).asdict(), stub)
    ]
    assert dead_letters(backend, "failed-users.partial.jsonl") == [
        ItemAdapter(other_stub).asdict()
    ]
    assert crawler.stats.get_value("bilicrawl/storage/failed/users") == 2
    [error] = messages(caplog, logging.ERROR)
    assert str(backend.dead_letter_dir / "failed-users.jsonl") in error
    assert str(backend.dead_letter_dir / "failed-users.partial.jsonl") in error


@deferred_f_from_coro_f
async def test_forced_exit_writes_a_buffered_stub_as_a_merge(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    profile, stub = make_user(), make_stub()
    await store(backend, [profile])
    pipeline, crawler = build_pipeline(backend, BILI_STORE_FLUSH_SECONDS=3600)
    await pipeline.open_spider()
    await pipeline.process_item(stub)

    with caplog.at_level(logging.WARNING, logger="bilicrawl"):
        await maybe_deferred_to_future(pipeline.before_exit())

    assert backend.stored_users() == {2: with_stub(ItemAdapter(profile).asdict(), stub)}
    assert messages(caplog, logging.WARNING) == [
        "Forced exit: wrote 1 buffered documents to the store"
    ]
    await pipeline.close_spider()
    assert crawler.stats.get_value("bilicrawl/storage/upserted/users") == 1


@deferred_f_from_coro_f
async def test_forced_exit_merges_a_stub_into_a_profile_waiting_for_a_retry(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_once = fail_first(1)
    attempts = on_write(monkeypatch, backend, fail_once)
    pipeline, _ = build_pipeline(backend, **batches_of(1), BILI_STORE_RETRY_DELAYS=[0.2])
    await pipeline.open_spider()
    profile, stub = make_user(), make_stub()
    # The profile failed and waits to be retried; the stub waits for it.
    pending = asyncio.gather(pipeline.process_item(profile), pipeline.process_item(stub))
    await eventually(lambda: len(attempts) == 1)

    await maybe_deferred_to_future(pipeline.before_exit())
    await pending
    await pipeline.close_spider()

    # One write of the profile with the stub merged in; the retry did not undo it.
    assert attempts == [[2], [2]]
    assert backend.stored_users() == {2: with_stub(ItemAdapter(profile).asdict(), stub)}


@deferred_f_from_coro_f
async def test_forced_exit_dead_letters_stubs_as_partial_documents(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline, crawler = build_pipeline(backend, BILI_STORE_FLUSH_SECONDS=3600)
    await pipeline.open_spider()
    first, second, late = make_stub(name="旧名"), make_stub(), make_stub(mid=5)
    for item in (make_user(mid=1), first, second):
        await pipeline.process_item(item)
    on_write(monkeypatch, backend, refuse_all)

    with caplog.at_level(logging.WARNING, logger="bilicrawl"):
        await maybe_deferred_to_future(pipeline.before_exit())
        await pipeline.process_item(late)
    await pipeline.close_spider()

    full = dead_letters(backend, "failed-users.jsonl")
    assert full == [ItemAdapter(make_user(mid=1)).asdict()]
    # The two stubs of mid 2 were combined into one, newest values winning.
    assert dead_letters(backend, "failed-users.partial.jsonl") == [
        ItemAdapter(second).asdict(),
        ItemAdapter(late).asdict(),
    ]
    [not_stored, appended] = messages(caplog, logging.WARNING)
    assert "2 buffered documents were not stored" in not_stored
    assert str(backend.dead_letter_dir / "failed-users.jsonl") in not_stored
    assert str(backend.dead_letter_dir / "failed-users.partial.jsonl") in not_stored
    assert appended.endswith("failed-users.partial.jsonl")
    assert crawler.stats.get_value("bilicrawl/storage/failed/users") == 3


@BATCHINGS
@deferred_f_from_coro_f
async def test_danmaku_rows_are_documents_and_overlapping_sources_merge(
    backend: Backend, batching: dict[str, int]
) -> None:
    segment = DanmakuBatchItem(
        cid=7,
        aid=2,
        source="seg",
        crawled_at=CRAWLED_AT,
        rows=[danmaku_row(1, weight=3, attr=4), danmaku_row(2, weight=3, attr=1)],
    )
    pool = DanmakuBatchItem(
        cid=7,
        aid=None,
        source="xml",
        crawled_at=CRAWLED_AT + 1,
        rows=[danmaku_row(2, weight=9), danmaku_row(3, weight=0)],
    )

    crawler = await store(backend, [segment, pool], **batching)

    shared = {"cid": 7, "aid": 2, "crawled_at": CRAWLED_AT}
    later = {"cid": 7, "crawled_at": CRAWLED_AT + 1}  # this batch does not know the aid
    assert backend.stored_danmaku() == {
        1: {**danmaku_row(1, weight=3, attr=4), **shared},
        2: {**danmaku_row(2, weight=9, attr=1), **later, "aid": 2},  # attr, aid: kept
        3: {**danmaku_row(3, weight=0), **later},
    }
    assert crawler.stats.get_value("bilicrawl/storage/upserted/danmaku") >= 3


@deferred_f_from_coro_f
async def test_rows_of_one_batch_merge_in_arrival_order(backend: Backend) -> None:
    """Rows are buffered as they come, duplicates included: the store merges them in order."""
    first = DanmakuBatchItem(
        cid=7,
        aid=2,
        source="seg",
        crawled_at=CRAWLED_AT,
        rows=[danmaku_row(1, weight=3, attr=4), danmaku_row(2, attr=0)],
    )
    second = DanmakuBatchItem(
        cid=7, aid=None, source="xml", crawled_at=CRAWLED_AT + 1, rows=[danmaku_row(1, weight=5)]
    )
    third = DanmakuBatchItem(
        cid=7,
        aid=None,
        source="history",
        crawled_at=CRAWLED_AT + 2,
        rows=[danmaku_row(1, weight=6)],
    )

    crawler = await store(backend, [first, second, third], BILI_STORE_ROWS_BATCH_SIZE=100)

    assert backend.stored_danmaku() == {
        1: {**danmaku_row(1, weight=6, attr=4), "cid": 7, "aid": 2, "crawled_at": CRAWLED_AT + 2},
        2: {**danmaku_row(2, attr=0), "cid": 7, "aid": 2, "crawled_at": CRAWLED_AT},
    }
    assert crawler.stats.get_value("bilicrawl/storage/batches/danmaku") == 1


@deferred_f_from_coro_f
async def test_rows_are_written_rows_batch_size_at_a_time(backend: Backend) -> None:
    items = [
        DanmakuBatchItem(
            cid=7,
            aid=2,
            source="seg",
            crawled_at=CRAWLED_AT,
            rows=[danmaku_row(dmid) for dmid in range(first, first + 3)],
        )
        for first in (1, 4, 7)
    ]
    pipeline, crawler = build_pipeline(backend, BILI_STORE_ROWS_BATCH_SIZE=5)
    await pipeline.open_spider()
    for item in items[:2]:
        await pipeline.process_item(item)
    # The second item filled the buffer (6 rows): written before process_item returned.
    assert crawler.stats.get_value("bilicrawl/storage/upserted/danmaku") == 6
    await pipeline.process_item(items[2])
    assert crawler.stats.get_value("bilicrawl/storage/upserted/danmaku") == 6
    await pipeline.close_spider()
    assert sorted(backend.stored_danmaku()) == list(range(1, 10))
    assert crawler.stats.get_value("bilicrawl/storage/batches/danmaku") == 2


@deferred_f_from_coro_f
async def test_rows_are_written_before_the_record_that_describes_them(backend: Backend) -> None:
    """A kill between two writes must never leave a danmaku_parts record without its rows."""
    rows = DanmakuBatchItem(
        cid=7, aid=2, source="seg", crawled_at=CRAWLED_AT, rows=[danmaku_row(1), danmaku_row(2)]
    )
    record = part_record(7, rows=2)
    pipeline, _ = build_pipeline(backend, BILI_STORE_BATCH_SIZE=1, BILI_STORE_ROWS_BATCH_SIZE=1000)
    written = log_writes(pipeline)
    await pipeline.open_spider()
    await pipeline.process_item(rows)
    await pipeline.process_item(record)  # its batch is full at once: rows go first
    assert written == ["danmaku", "danmaku_parts"]
    await pipeline.close_spider()


@deferred_f_from_coro_f
async def test_a_row_waits_for_the_write_under_way(backend: Backend) -> None:
    """Items whose rows fill the buffer during a write wait for it, then join one batch."""
    pipeline, crawler = build_pipeline(backend, BILI_STORE_ROWS_BATCH_SIZE=2)
    release, started = threading.Event(), threading.Event()
    write = pipeline.store.write
    sizes: list[int] = []

    def slow(collection: str, upserts: list[Upsert]) -> None:
        started.set()
        release.wait(5)
        sizes.append(len(upserts))
        write(collection, upserts)

    pipeline.store.write = slow  # type: ignore[method-assign]  # on this one store only
    await pipeline.open_spider()
    items = [
        DanmakuBatchItem(
            cid=7,
            aid=2,
            source="seg",
            crawled_at=CRAWLED_AT,
            rows=[danmaku_row(2 * n), danmaku_row(2 * n + 1)],
        )
        for n in range(4)
    ]
    writing = asyncio.ensure_future(pipeline.process_item(items[0]))
    await asyncio.to_thread(started.wait, 5)
    waiting = [asyncio.ensure_future(pipeline.process_item(item)) for item in items[1:]]
    await asyncio.sleep(0.05)
    assert not writing.done() and not any(future.done() for future in waiting)
    release.set()
    await asyncio.gather(writing, *waiting)
    await pipeline.close_spider()
    assert sizes == [2, 6], "the rows that came during the first write made one batch"
    assert sorted(backend.stored_danmaku()) == list(range(8))
    assert crawler.stats.get_value("bilicrawl/storage/upserted/danmaku") == 8


@deferred_f_from_coro_f
async def test_full_rows_replace_and_keep_their_nulls(backend: Backend) -> None:
    """live_danmaku rows are full: a re-crawl replaces them, and a null is stored as null."""
    row = {
        "room_id": 5440,
        "id_str": "abc",
        "uid": 9,
        "nickname": "名",
        "text": "好",
        "timeline": 1700000000,
        "dm_type": None,
        "user_level": 3,
        "medal": None,
    }
    medal = {"name": "牌", "level": 21, "room_id": 5440, "anchor_uid": 1}
    items = [
        LiveDanmakuBatchItem(room_id=5440, rows=[dict(row)], crawled_at=CRAWLED_AT),
        LiveDanmakuBatchItem(room_id=5440, rows=[{**row, "medal": medal, "text": "改"}],
                             crawled_at=CRAWLED_AT + 1),
        LiveDanmakuBatchItem(room_id=5440, rows=[{**row, "id_str": "def"}],
                             crawled_at=CRAWLED_AT + 2),
    ]  # fmt: skip

    await store(backend, items)

    stored = backend.read("live_danmaku")
    assert sorted(stored, key=lambda document: document["id_str"]) == [
        {**row, "medal": medal, "text": "改", "crawled_at": CRAWLED_AT + 1},
        {**row, "id_str": "def", "crawled_at": CRAWLED_AT + 2},
    ]


def part_record(cid: int, rows: int) -> DanmakuPartItem:
    return DanmakuPartItem(
        cid=cid,
        aid=2,
        duration=60,
        stat_danmaku=rows,
        view_count=rows,
        xml_maxlimit=None,
        closed=False,
        segments_expected=1,
        segments_fetched=1,
        stored=DanmakuStored(seg=rows, xml=0, history=0),
        distinct=rows,
        crawled_at=CRAWLED_AT,
    )


@deferred_f_from_coro_f
async def test_a_record_is_withheld_when_its_rows_could_not_be_stored(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows dead-lettered: their record is not stored, so resume fetches the part again."""

    def refuse_danmaku(ids: list[int]) -> None:
        if 1 in ids:  # the danmaku batch (dmids 1, 2)
            raise OSError("database or disk is full")

    attempts = on_write(monkeypatch, backend, refuse_danmaku)
    rows = DanmakuBatchItem(
        cid=7, aid=2, source="seg", crawled_at=CRAWLED_AT, rows=[danmaku_row(1), danmaku_row(2)]
    )
    video = make_video(aid=5)

    with caplog.at_level(logging.WARNING, logger="bilicrawl"):
        crawler = await store(
            backend, [rows, part_record(7, rows=2), video], BILI_STORE_RETRY_DELAYS=[0.01]
        )

    assert backend.stored_danmaku() == {}
    assert backend.read("danmaku_parts") == [], "no record claims the lost rows"
    assert backend.stored_titles() == {5: video.title}, "other documents are still stored"
    assert [1, 2] in attempts and [7] not in attempts, "the record was never written"
    assert [row["dmid"] for row in dead_letters(backend, "failed-danmaku.partial.jsonl")] == [1, 2]
    assert dead_letters(backend, "failed-danmaku_parts.jsonl") == [], "never replayed either"
    stats = storage_stats(crawler)
    assert stats["bilicrawl/storage/failed/danmaku"] == 2
    assert stats["bilicrawl/storage/withheld/danmaku_parts"] == 1
    assert "bilicrawl/storage/upserted/danmaku_parts" not in stats
    assert any(
        "Not storing 1 danmaku_parts records" in message
        for message in messages(caplog, logging.WARNING)
    )


@deferred_f_from_coro_f
async def test_a_record_buffered_apart_from_its_rows_waits_for_them(
    backend: Backend,
) -> None:
    """relation_lists counts relations: flushing a record flushes the edges first."""
    pipeline, _ = build_pipeline(backend, BILI_STORE_BATCH_SIZE=1, BILI_STORE_FLUSH_SECONDS=600)
    pipeline.batch_size = 100  # the edges' buffer would wait for 100
    written = log_writes(pipeline)
    await pipeline.open_spider()
    await pipeline.process_item(RelationItem(src_mid=1, dst_mid=2, mtime=1, crawled_at=1))
    pipeline.batch_size = 1
    await pipeline.process_item(
        RelationListItem(
            mid=2,
            direction="followers",
            total=1,
            seen=1,
            status="complete",
            crawled_at=1,
        )
    )
    assert written == ["relations", "relation_lists"]
    await pipeline.close_spider()


@deferred_f_from_coro_f
async def test_a_forced_exit_withholds_records_whose_rows_failed(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse_danmaku(ids: list[int]) -> None:
        if 1 in ids:
            raise OSError("disk I/O error")

    on_write(monkeypatch, backend, refuse_danmaku)
    pipeline, crawler = build_pipeline(backend, BILI_STORE_FLUSH_SECONDS=600)
    await pipeline.open_spider()
    await pipeline.process_item(
        DanmakuBatchItem(
            cid=7,
            aid=2,
            source="seg",
            crawled_at=CRAWLED_AT,
            rows=[danmaku_row(1)],
        )
    )
    await pipeline.process_item(part_record(7, rows=1))

    await maybe_deferred_to_future(pipeline.before_exit())

    assert backend.read("danmaku_parts") == []
    assert [row["dmid"] for row in dead_letters(backend, "failed-danmaku.partial.jsonl")] == [1]
    assert dead_letters(backend, "failed-danmaku_parts.jsonl") == []
    assert storage_stats(crawler)["bilicrawl/storage/withheld/danmaku_parts"] == 1
    await pipeline.close_spider()


@deferred_f_from_coro_f
async def test_written_counts_distinct_documents_not_upserts(backend: Backend) -> None:
    items = [
        make_video(aid=1), make_video(aid=2),
        DanmakuBatchItem(cid=7, aid=2, source="seg", crawled_at=CRAWLED_AT,
                         rows=[danmaku_row(1), danmaku_row(2)]),
        make_video(aid=1, title="again"),
        DanmakuBatchItem(cid=7, aid=2, source="xml", crawled_at=CRAWLED_AT,
                         rows=[danmaku_row(2), danmaku_row(3)]),
    ]  # fmt: skip

    crawler = await store(backend, items, **batches_of(1))

    stats = storage_stats(crawler)
    assert stats["bilicrawl/storage/upserted/videos"] == 3
    assert stats["bilicrawl/storage/written/videos"] == 2
    assert stats["bilicrawl/storage/upserted/danmaku"] == 4
    assert stats["bilicrawl/storage/written/danmaku"] == 3


@deferred_f_from_coro_f
async def test_a_failing_batch_stalls_the_crawl_until_it_is_written(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_twice = fail_first(2)
    on_write(monkeypatch, backend, fail_twice)
    pipeline, crawler = build_pipeline(
        backend, **batches_of(1), BILI_STORE_RETRY_DELAYS=[0.01, 0.01]
    )
    events: list[str] = []
    crawler.signals.connect(
        lambda collection, error: events.append(f"stalled {error}"),
        signal=signals.store_stalled,
        weak=False,
    )
    crawler.signals.connect(
        lambda: events.append("resumed"), signal=signals.store_resumed, weak=False
    )
    crawler.signals.connect(
        lambda collection, keys: events.append(f"committed {keys}"),
        signal=signals.store_committed,
        weak=False,
    )

    await pipeline.open_spider()
    await pipeline.process_item(make_video(aid=1))
    await pipeline.close_spider()

    assert events == ["stalled database is locked", "committed [(1,)]", "resumed"]
    assert backend.stored_titles().keys() == {1}


@deferred_f_from_coro_f
async def test_batches_are_written_at_batch_size_and_at_close(backend: Backend) -> None:
    pipeline, crawler = build_pipeline(backend)
    await pipeline.open_spider()

    for aid in (101, 102):
        await pipeline.process_item(make_video(aid=aid))
    assert backend.stored_titles() == {}
    assert storage_stats(crawler) == {}

    await pipeline.process_item(make_video(aid=103))
    assert backend.stored_titles().keys() == {101, 102, 103}
    assert storage_stats(crawler) == {
        "bilicrawl/storage/batches/videos": 1,
        "bilicrawl/storage/upserted/videos": 3,
    }

    await pipeline.process_item(make_video(aid=104))
    assert backend.stored_titles().keys() == {101, 102, 103}

    await pipeline.close_spider()
    assert backend.stored_titles().keys() == {101, 102, 103, 104}
    assert storage_stats(crawler) == {
        "bilicrawl/storage/batches/videos": 2,
        "bilicrawl/storage/upserted/videos": 4,
        "bilicrawl/storage/written/videos": 4,
    }


@deferred_f_from_coro_f
async def test_the_stored_document_is_exactly_the_item_dict(backend: Backend) -> None:
    item = make_video(aid=2**51 - 1)
    item.stat.view = 2**63 - 1

    await store(backend, [item])

    expected = ItemAdapter(item).asdict()
    assert backend.read("videos") == [expected]
    assert backend.stored_json(item.aid) == dump_document(expected)


@deferred_f_from_coro_f
async def test_a_recrawl_updates_the_one_document(backend: Backend) -> None:
    await store(backend, [make_video(title="旧标题")])
    pipeline, crawler = build_pipeline(backend)
    await pipeline.open_spider()
    await pipeline.process_item(make_video(title="新标题 ✨"))
    await pipeline.close_spider()

    assert backend.stored_titles() == {113_784_589_289_472: "新标题 ✨"}
    assert crawler.stats.get_value("bilicrawl/storage/upserted/videos") == 1


@deferred_f_from_coro_f
async def test_the_last_document_for_a_key_in_a_batch_wins(backend: Backend) -> None:
    pipeline, crawler = build_pipeline(backend, BILI_STORE_BATCH_SIZE=10)
    await pipeline.open_spider()
    for aid, title in ((1, "v1"), (2, "b"), (1, "v2")):
        await pipeline.process_item(make_video(aid=aid, title=title))
    await pipeline.close_spider()

    assert backend.stored_titles() == {1: "v2", 2: "b"}
    assert crawler.stats.get_value("bilicrawl/storage/upserted/videos") == 2


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("BILI_STORE_BATCH_SIZE", 0, "BILI_STORE_BATCH_SIZE must be at least 1, not 0"),
        ("SQLITE_BATCH_SIZE", 10, "SQLITE_BATCH_SIZE was replaced by BILI_STORE_BATCH_SIZE"),
        ("MONGO_BATCH_SIZE", 10, "MONGO_BATCH_SIZE was replaced by BILI_STORE_BATCH_SIZE"),
    ],
)
def test_batch_size_settings_are_checked(
    backend: Backend, setting: str, value: int, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        build_pipeline(backend, **{setting: value})
    assert str(raised.value).startswith(message)


@deferred_f_from_coro_f
async def test_a_failed_batch_goes_to_the_dead_letter_file(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse_the_first_batch(aids: list[int]) -> None:
        if 2 in aids:
            raise OSError(28, "No space left on device")

    attempts = on_write(monkeypatch, backend, refuse_the_first_batch)
    items = [make_video(aid=aid, title=f"视频 {aid} 🎞") for aid in range(1, 6)]
    pipeline, crawler = build_pipeline(
        backend, BILI_STORE_BATCH_SIZE=2, BILI_STORE_RETRY_DELAYS=[0.0, 0.01]
    )

    with caplog.at_level(logging.INFO, logger="bilicrawl"):
        await pipeline.open_spider()
        for item in items:
            await pipeline.process_item(item)
        await pipeline.close_spider()

    assert attempts == [[1, 2], [1, 2], [1, 2], [3, 4], [5]]
    expected = [ItemAdapter(item).asdict() for item in items]
    assert dead_letters(backend) == expected[:2]
    assert backend.read("videos") == expected[2:]
    assert storage_stats(crawler) == {
        "bilicrawl/storage/retries/videos": 2,
        "bilicrawl/storage/failed/videos": 2,
        "bilicrawl/storage/batches/videos": 2,
        "bilicrawl/storage/upserted/videos": 3,
        "bilicrawl/storage/written/videos": 3,
    }
    [error] = messages(caplog, logging.ERROR)
    assert error.startswith(
        f"Closing the crawl: {pipeline.store.name} cannot be written: No space left on device"
        " (2 documents of videos after 3 attempts, appended to"
    )
    assert any(
        "Dead-lettered 2 documents of videos" in message and "[(1,), (2,)]" in message
        for message in messages(caplog, logging.INFO)
    )


@deferred_f_from_coro_f
async def test_the_dead_letter_dir_is_a_setting(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_write(monkeypatch, backend, refuse_all)
    pipeline, _ = build_pipeline(
        backend, BILI_DEAD_LETTER_DIR=str(tmp_path / "dead"), BILI_STORE_RETRY_DELAYS=[]
    )
    await pipeline.open_spider()
    await pipeline.process_item(make_video())
    await pipeline.close_spider()

    lines = (tmp_path / "dead" / "failed-videos.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [ItemAdapter(make_video()).asdict()]


@deferred_f_from_coro_f
async def test_a_transient_failure_is_retried(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_once = fail_first(1)
    on_write(monkeypatch, backend, fail_once)
    pipeline, crawler = build_pipeline(backend, BILI_STORE_RETRY_DELAYS=[0.0])
    await pipeline.open_spider()
    await pipeline.process_item(make_video())
    await pipeline.close_spider()

    assert backend.stored_titles().keys() == {113_784_589_289_472}
    assert dead_letters(backend) == []
    assert storage_stats(crawler) == {
        "bilicrawl/storage/retries/videos": 1,
        "bilicrawl/storage/batches/videos": 1,
        "bilicrawl/storage/upserted/videos": 1,
        "bilicrawl/storage/written/videos": 1,
    }


@deferred_f_from_coro_f
async def test_batches_apply_in_order_while_one_is_retried(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_once = fail_first(1)
    attempts = on_write(monkeypatch, backend, fail_once)
    pipeline, _ = build_pipeline(backend, BILI_STORE_BATCH_SIZE=1, BILI_STORE_RETRY_DELAYS=[0.01])
    await pipeline.open_spider()
    # The first batch fails once and waits to be retried while the second is ready.
    await asyncio.gather(
        pipeline.process_item(make_video(title="first")),
        pipeline.process_item(make_video(title="second")),
    )
    await pipeline.close_spider()

    assert len(attempts) == 3
    assert backend.stored_titles() == {113_784_589_289_472: "second"}


@deferred_f_from_coro_f
async def test_the_shipped_pipeline_validates_then_stores_in_a_crawl(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    crawler = get_crawler(ItemsSpider, {**backend.settings, "BILI_STORE_BATCH_SIZE": 2})
    invalid = make_video(aid=3)
    invalid.stat.view = "1.2亿"  # type: ignore[assignment]  # what a careless parser would do
    items = [make_video(aid=1), make_video(aid=2), invalid, make_video(aid=1, title="改")]

    with caplog.at_level(logging.INFO):
        await crawler.crawl_async(items=items)

    assert backend.stored_titles() == {1: "改", 2: items[1].title}
    stats = crawler.stats.get_stats()
    assert stats["item_scraped_count"] == 3
    assert stats["item_dropped_count"] == 1
    assert stats["bilicrawl/items/VideoItem"] == 3
    assert stats["bilicrawl/validate/dropped_reason/stat.view:type"] == 1
    assert stats["bilicrawl/storage/upserted/videos"] == 3
    [drop] = [record for record in caplog.records if "Dropped:" in record.getMessage()]
    assert drop.levelno == logging.INFO
    assert drop.exc_info is None
    assert "Invalid VideoItem aid=3: at stat.view" in drop.getMessage()
