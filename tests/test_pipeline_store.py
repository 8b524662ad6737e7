"""Both storage pipelines: flushes on a timer and on closing, forced exits, failed opens.

Each test runs on SQLite and on mongomock. A forced exit is tested by calling the
"before shutdown" trigger (``before_exit``) directly: the test reactor keeps running.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from itemadapter import ItemAdapter
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future
from scrapy.utils.misc import build_from_crawler
from twisted.internet import reactor

from bilicrawl import signals
from bilicrawl.config import ConfigError
from bilicrawl.pipelines.batching import dump_document
from bilicrawl.pipelines.mongo import MongoPipeline
from bilicrawl.pipelines.sqlite import SQLitePipeline, iter_documents
from bilicrawl.pipelines.validate import ValidationPipeline
from tests.test_documents import golden_items, stored_bytes
from tests.test_pipeline_mongo import SharedMongomockClient, _let_mongomock_accept_sort
from tests.test_pipeline_validate import build_crawler, make_video
from tests.utils import project_settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from scrapy.crawler import Crawler

    from bilicrawl.pipelines.batching import BatchingStorePipeline, Document


@dataclass
class Backend:
    pipeline_class: type[BatchingStorePipeline]
    settings: dict[str, Any]
    dead_letter_dir: Path
    stored_titles: Callable[[], dict[int, str]]
    """The stored videos, aid to title."""
    stored_json: Callable[[int], str]
    """The stored video of an aid as compact JSON: SQLite's doc column, MongoDB's without _id."""


@pytest.fixture(params=["sqlite", "mongomock"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    settings = {**project_settings(), "SQLITE_BATCH_SIZE": 3, "MONGO_BATCH_SIZE": 3}
    if request.param == "sqlite":
        path = tmp_path / "store" / "bilicrawl.db"
        yield Backend(
            pipeline_class=SQLitePipeline,
            settings={**settings, "MONGO_URI": "", "SQLITE_PATH": str(path)},
            dead_letter_dir=path.parent,
            stored_titles=lambda: {d["aid"]: d["title"] for d in iter_documents(path, "videos")},
            stored_json=lambda aid: _sqlite_doc(path, aid),
        )
        return
    _let_mongomock_accept_sort(monkeypatch)
    uri = "mongodb://mongomock.invalid:27017"
    database_name = f"bilicrawl_test_{uuid.uuid4().hex[:12]}"
    client = SharedMongomockClient(uri)
    videos = client[database_name]["videos"]
    yield Backend(
        pipeline_class=MongoPipeline,
        settings={
            **settings,
            "MONGO_URI": uri,
            "MONGO_DATABASE": database_name,
            "MONGO_CLIENT_CLASS": SharedMongomockClient,
            "MONGO_DEAD_LETTER_DIR": str(tmp_path / "data"),
        },
        dead_letter_dir=tmp_path / "data",
        stored_titles=lambda: {d["aid"]: d["title"] for d in videos.find()},
        stored_json=lambda aid: dump_document(videos.find_one({"aid": aid}, {"_id": False})),
    )
    client.drop_database(database_name)
    client.close()


def _sqlite_doc(path: Path, aid: int) -> str:
    with closing(sqlite3.connect(path)) as connection:
        [(doc,)] = connection.execute("SELECT doc FROM videos WHERE aid = ?", (aid,)).fetchall()
    return str(doc)


def build_pipeline(backend: Backend, **settings: Any) -> tuple[BatchingStorePipeline, Crawler]:
    crawler = build_crawler({**backend.settings, **settings})
    return build_from_crawler(backend.pipeline_class, crawler), crawler


def storage_stats(crawler: Crawler) -> dict[str, Any]:
    return {
        key: value
        for key, value in crawler.stats.get_stats().items()
        if key.startswith("bilicrawl/storage/")
    }


def dead_letters(backend: Backend) -> list[Document]:
    path = backend.dead_letter_dir / "failed-videos.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def on_write(
    monkeypatch: pytest.MonkeyPatch, backend: Backend, hook: Callable[[list[int]], None]
) -> list[list[int]]:
    """Call ``hook(aids)`` (which may block or raise) before each write; return the aids."""
    attempts: list[list[int]] = []
    write = backend.pipeline_class._write

    def hooked_write(self: Any, collection: str, documents: list[Document]) -> None:
        aids = [document["aid"] for document in documents]
        attempts.append(aids)
        hook(aids)
        write(self, collection, documents)

    monkeypatch.setattr(backend.pipeline_class, "_write", hooked_write)
    return attempts


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
        pipeline, crawler = build_pipeline(backend)
        validation = build_from_crawler(ValidationPipeline, crawler)
        await pipeline.open_spider()
        await pipeline.process_item(validation.process_item(item))
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
    }


@deferred_f_from_coro_f
async def test_forced_exit_dead_letters_what_a_stuck_store_has_not_written(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    on_write(monkeypatch, backend, lambda aids: release.wait(10) if 1 in aids else None)
    monkeypatch.setattr(backend.pipeline_class, "exit_timeout", 0.2)
    items = [make_video(aid=aid, title=f"视频 {aid}") for aid in (1, 2, 3)]
    pipeline, crawler = build_pipeline(backend, SQLITE_BATCH_SIZE=2, MONGO_BATCH_SIZE=2)
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
    def refuse(aids: list[int]) -> None:
        raise OSError("store gone")

    pipeline, crawler = build_pipeline(backend, BILI_STORE_FLUSH_SECONDS=3600)
    await pipeline.open_spider()
    await pipeline.process_item(make_video(aid=7))
    attempts = on_write(monkeypatch, backend, refuse)

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
    failures = iter([True])

    def fail_once(aids: list[int]) -> None:
        if next(failures, False):
            raise OSError("database is locked")

    attempts = on_write(monkeypatch, backend, fail_once)
    monkeypatch.setattr(backend.pipeline_class, "retry_delays", (0.2,))
    pipeline, _ = build_pipeline(backend, SQLITE_BATCH_SIZE=1, MONGO_BATCH_SIZE=1)
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

    monkeypatch.setattr(backend.pipeline_class, "_connect", refuse)
    pipeline, _ = build_pipeline(backend)
    if opened == "failed":
        with pytest.raises(ConfigError, match="store refused"):
            await pipeline.open_spider()

    await pipeline.close_spider()

    with pytest.raises(RuntimeError, match="after shutdown"):
        pipeline._executor.submit(print)
