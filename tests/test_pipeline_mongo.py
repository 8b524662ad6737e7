"""MongoPipeline: batched upserts by natural key, with dead letters on failure.

The tests run on mongomock, and also against a real server when
``BILICRAWL_TEST_MONGO_URI`` is set (each test in a throwaway database).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mongomock
import pymongo
import pytest
from itemadapter import ItemAdapter
from mongomock.collection import BulkOperationBuilder
from mongomock.store import ServerStore
from pymongo.errors import AutoReconnect
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler

from bilicrawl.items import ITEM_CLASSES
from bilicrawl.pipelines.mongo import MongoPipeline
from tests.test_pipeline_validate import build_crawler, make_video

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    from pymongo.database import Database
    from scrapy.crawler import Crawler

    from bilicrawl.pipelines.batching import Document

SERVER_URI = os.environ.get("BILICRAWL_TEST_MONGO_URI", "")


class SharedMongomockClient(mongomock.MongoClient):
    """A mongomock client whose instances share one server, as clients of a real one do."""

    store = ServerStore()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, _store=self.store, **kwargs)


def _let_mongomock_accept_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    """pymongo >= 4.11 passes ``sort`` to bulk replaces; mongomock 4.3 does not take it.

    https://github.com/mongomock/mongomock/issues/912
    """
    add_replace = BulkOperationBuilder.add_replace
    if "sort" in inspect.signature(add_replace).parameters:
        return

    def add_replace_with_sort(self: Any, *args: Any, sort: Any = None, **kwargs: Any) -> None:
        if sort is not None:
            raise NotImplementedError("mongomock cannot sort a bulk replace")
        add_replace(self, *args, **kwargs)

    monkeypatch.setattr(BulkOperationBuilder, "add_replace", add_replace_with_sort)


@dataclass
class MongoBackend:
    settings: dict[str, Any]
    database: Database[Document]
    """The test database, seen through a client of its own."""


@pytest.fixture(
    params=[
        "mongomock",
        pytest.param(
            "server",
            marks=pytest.mark.skipif(not SERVER_URI, reason="BILICRAWL_TEST_MONGO_URI is not set"),
        ),
    ]
)
def mongo(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MongoBackend]:
    if request.param == "server":
        client_class: type = pymongo.MongoClient
        uri = SERVER_URI
    else:
        _let_mongomock_accept_sort(monkeypatch)
        client_class = SharedMongomockClient
        uri = "mongodb://mongomock.invalid:27017"
    database_name = f"bilicrawl_test_{uuid.uuid4().hex[:12]}"
    client = client_class(uri)
    settings = {
        "MONGO_URI": uri,
        "MONGO_DATABASE": database_name,
        "MONGO_CLIENT_CLASS": client_class,
        "MONGO_BATCH_SIZE": 3,
        "MONGO_DEAD_LETTER_DIR": str(tmp_path / "data"),
    }
    try:
        yield MongoBackend(settings=settings, database=client[database_name])
    finally:
        client.drop_database(database_name)
        client.close()


def build_pipeline(mongo: MongoBackend, **settings: Any) -> tuple[MongoPipeline, Crawler]:
    crawler = build_crawler({**mongo.settings, **settings})
    return build_from_crawler(MongoPipeline, crawler), crawler


async def store(pipeline: MongoPipeline, items: Iterable[Any]) -> None:
    """Run a whole crawl's worth of pipeline calls."""
    await pipeline.open_spider()
    for item in items:
        assert await pipeline.process_item(item) is item
    await pipeline.close_spider()


def stored_titles(mongo: MongoBackend) -> dict[int, str]:
    return {doc["aid"]: doc["title"] for doc in mongo.database["videos"].find()}


def storage_stats(crawler: Crawler) -> dict[str, Any]:
    return {
        key: value
        for key, value in crawler.stats.get_stats().items()
        if key.startswith("bilicrawl/storage/")
    }


@deferred_f_from_coro_f
async def test_open_creates_a_unique_index_on_the_natural_key(mongo: MongoBackend) -> None:
    pipeline, _ = build_pipeline(mongo)
    await pipeline.open_spider()
    await pipeline.close_spider()

    for item_class in ITEM_CLASSES:
        indexes = mongo.database[item_class.collection].index_information()
        expected_key = [(field, 1) for field in item_class.natural_key]
        assert any(
            index["key"] == expected_key and index.get("unique") for index in indexes.values()
        ), indexes


@deferred_f_from_coro_f
async def test_batches_are_written_at_batch_size_and_at_close(mongo: MongoBackend) -> None:
    pipeline, crawler = build_pipeline(mongo, MONGO_BATCH_SIZE=3)
    videos = mongo.database["videos"]
    await pipeline.open_spider()

    for aid in (101, 102):
        await pipeline.process_item(make_video(aid=aid))
    assert videos.count_documents({}) == 0
    assert storage_stats(crawler) == {}

    await pipeline.process_item(make_video(aid=103))
    assert stored_titles(mongo).keys() == {101, 102, 103}
    assert storage_stats(crawler) == {
        "bilicrawl/storage/batches/videos": 1,
        "bilicrawl/storage/upserted/videos": 3,
    }

    await pipeline.process_item(make_video(aid=104))
    assert videos.count_documents({}) == 3

    await pipeline.close_spider()
    assert stored_titles(mongo).keys() == {101, 102, 103, 104}
    assert storage_stats(crawler) == {
        "bilicrawl/storage/batches/videos": 2,
        "bilicrawl/storage/upserted/videos": 4,
    }


@deferred_f_from_coro_f
async def test_document_is_the_item_dict_plus_id(mongo: MongoBackend) -> None:
    item = make_video(aid=2**51 - 1)
    item.stat.view = 2**63 - 1
    expected = ItemAdapter(item).asdict()
    pipeline, _ = build_pipeline(mongo)

    await store(pipeline, [item])

    [document] = mongo.database["videos"].find()
    assert "_id" in document
    del document["_id"]
    assert document == expected
    assert document["title"] == "【4K·HDR】原神「荣花与炎日之途」纳塔 PV 🎉🔥"
    assert ItemAdapter(item).asdict() == expected
    assert not hasattr(item, "_id")


@deferred_f_from_coro_f
async def test_recrawl_updates_the_one_document(mongo: MongoBackend) -> None:
    first, _ = build_pipeline(mongo)
    await store(first, [make_video(title="旧标题")])
    [before] = mongo.database["videos"].find()
    second, crawler = build_pipeline(mongo)
    await store(second, [make_video(title="新标题 ✨")])

    [after] = mongo.database["videos"].find()
    assert after["_id"] == before["_id"]
    assert after["title"] == "新标题 ✨"
    assert crawler.stats.get_value("bilicrawl/storage/upserted/videos") == 1


@deferred_f_from_coro_f
async def test_last_document_for_a_key_in_a_batch_wins(mongo: MongoBackend) -> None:
    pipeline, crawler = build_pipeline(mongo, MONGO_BATCH_SIZE=10)

    await store(
        pipeline,
        [
            make_video(aid=1, title="v1"),
            make_video(aid=2, title="b"),
            make_video(aid=1, title="v2"),
        ],
    )

    assert stored_titles(mongo) == {1: "v2", 2: "b"}
    assert crawler.stats.get_value("bilicrawl/storage/upserted/videos") == 2


def test_not_configured_without_mongo_uri() -> None:
    crawler = build_crawler({"MONGO_URI": "", "MONGO_DEAD_LETTER_DIR": "data"})

    with pytest.raises(NotConfigured):
        build_from_crawler(MongoPipeline, crawler)


@deferred_f_from_coro_f
async def test_failed_batch_goes_to_the_dead_letter_file(
    mongo: MongoBackend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write = MongoPipeline._write

    def flaky_write(self: MongoPipeline, collection: str, documents: list[Document]) -> None:
        if any(document["aid"] == 2 for document in documents):
            raise AutoReconnect("connection reset by peer")
        write(self, collection, documents)

    monkeypatch.setattr(MongoPipeline, "_write", flaky_write)
    monkeypatch.setattr(MongoPipeline, "retry_delays", (0.0, 0.01))
    items = [make_video(aid=aid, title=f"视频 {aid} 🎞") for aid in range(1, 6)]
    pipeline, crawler = build_pipeline(mongo, MONGO_BATCH_SIZE=2)

    with caplog.at_level(logging.ERROR, logger="bilicrawl"):
        await store(pipeline, items)

    dead_letter = tmp_path / "data" / "failed-videos.jsonl"
    dead = [json.loads(line) for line in dead_letter.read_text(encoding="utf-8").splitlines()]
    stored = list(mongo.database["videos"].find({}, {"_id": False}).sort("aid"))
    expected = [ItemAdapter(item).asdict() for item in items]
    assert dead == expected[:2]
    assert stored == expected[2:]
    assert storage_stats(crawler) == {
        "bilicrawl/storage/retries/videos": 2,
        "bilicrawl/storage/failed/videos": 2,
        "bilicrawl/storage/batches/videos": 2,
        "bilicrawl/storage/upserted/videos": 3,
    }
    [error] = [record for record in caplog.records if record.name.startswith("bilicrawl")]
    assert "videos" in error.getMessage()
    assert "[(1,), (2,)]" in error.getMessage()


@deferred_f_from_coro_f
async def test_stored_keys_lists_every_stored_document(mongo: MongoBackend) -> None:
    first, _ = build_pipeline(mongo)
    await store(first, [make_video(aid=aid) for aid in (1, 2**40, 7)])
    second, _ = build_pipeline(mongo)
    await second.open_spider()
    try:
        assert await second.stored_keys("videos") == {(1,), (2**40,), (7,)}
    finally:
        await second.close_spider()
