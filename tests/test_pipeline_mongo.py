"""MongoPipeline: batched upserts by natural key, with dead letters on failure.

The tests run on mongomock, and also against a real server when
``BILICRAWL_TEST_MONGO_URI`` is set (each test in a throwaway database).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mongomock
import pymongo
import pytest
from itemadapter import ItemAdapter
from pymongo.errors import AutoReconnect
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler

from bilicrawl.config import ConfigError
from bilicrawl.items import ITEM_CLASSES
from bilicrawl.pipelines.batching import Upsert, merge_document
from bilicrawl.pipelines.mongo import MongoPipeline, mask_uri, set_paths
from tests.helpers.items import build_crawler, make_video
from tests.helpers.mongo import SharedMongomockClient, let_mongomock_accept_sort
from tests.utils import project_settings

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from pymongo.database import Database
    from scrapy.crawler import Crawler

    from bilicrawl.pipelines.batching import Document

SERVER_URI = os.environ.get("BILICRAWL_TEST_MONGO_URI", "")


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
        let_mongomock_accept_sort(monkeypatch)
        client_class = SharedMongomockClient
        uri = "mongodb://mongomock.invalid:27017"
    database_name = f"bilicrawl_test_{uuid.uuid4().hex[:12]}"
    client = client_class(uri)
    settings = {
        **project_settings(),
        "MONGO_URI": uri,
        "MONGO_DATABASE": database_name,
        "MONGO_CLIENT_CLASS": client_class,
        "MONGO_BATCH_SIZE": 3,
        "BILI_DEAD_LETTER_DIR": str(tmp_path / "data"),
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
        "bilicrawl/storage/written/videos": 4,
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
    crawler = build_crawler({"MONGO_URI": "", "BILI_DEAD_LETTER_DIR": "data"})

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

    def flaky_write(self: MongoPipeline, collection: str, upserts: list[Upsert]) -> None:
        if any(upsert.document["aid"] == 2 for upsert in upserts):
            raise AutoReconnect("connection reset by peer")
        write(self, collection, upserts)

    monkeypatch.setattr(MongoPipeline, "_write", flaky_write)
    items = [make_video(aid=aid, title=f"视频 {aid} 🎞") for aid in range(1, 6)]
    pipeline, crawler = build_pipeline(mongo, MONGO_BATCH_SIZE=2,
                                       BILI_STORE_RETRY_DELAYS=[0.0, 0.01])  # fmt: skip

    with caplog.at_level(logging.INFO, logger="bilicrawl"):
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
        "bilicrawl/storage/written/videos": 3,
    }
    [error] = [record for record in caplog.records
               if record.levelno == logging.ERROR and record.name.startswith("bilicrawl")]
    assert error.getMessage().startswith("Closing the crawl: MongoDB database ")
    assert "connection reset by peer (2 documents of videos after 3 attempts" in error.getMessage()
    assert any("Dead-lettered 2 documents of videos" in record.getMessage()
               and "[(1,), (2,)]" in record.getMessage() for record in caplog.records)


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


def test_set_paths_flattens_objects_to_dotted_paths() -> None:
    patch = {
        "name": "碧诗",
        "official": {"type": 1, "desc": "认证", "extra": {"level": 2, "none": {}}},
        "tags": [{"tag_id": 1}],
        "live_room": None,
        "empty": {},
    }

    assert set_paths(patch) == {
        "name": "碧诗",
        "official.type": 1,
        "official.desc": "认证",
        "official.extra.level": 2,
        "tags": [{"tag_id": 1}],
        "live_room": None,
    }


PROFILE = {
    "mid": 2,
    "name": "碧诗",
    "official": {"role": 2, "title": "bilibili创始人（站长）", "desc": "", "type": 0},
    "vip": {"type": 2, "status": 1, "label": "十年大会员"},
    "tags": [1, 2],
    "crawled_at": 1_767_225_600,
}
STUB = {
    "mid": 2,
    "name": "碧诗 🎉",
    "official": {"type": 1, "desc": "bilibili 知名UP主"},
    "vip": {"type": 1, "status": 0, "label": ""},
    "tags": [3],
}


@deferred_f_from_coro_f
async def test_partial_documents_merge_as_merge_document_does(mongo: MongoBackend) -> None:
    pipeline, _ = build_pipeline(mongo)
    await pipeline.open_spider()
    try:
        await pipeline._run(pipeline._write, "users", [Upsert(PROFILE, partial=False)])
        new_user = {**STUB, "mid": 3}
        await pipeline._run(
            pipeline._write, "users", [Upsert(STUB, partial=True), Upsert(new_user, True)]
        )
    finally:
        await pipeline.close_spider()

    stored = {d["mid"]: d for d in mongo.database["users"].find({}, {"_id": False})}
    assert stored == {2: merge_document(PROFILE, STUB), 3: new_user}
    assert stored[2]["official"] == {
        "role": 2, "title": "bilibili创始人（站长）", "desc": "bilibili 知名UP主", "type": 1,
    }
    assert stored[2]["crawled_at"] == 1_767_225_600


@deferred_f_from_coro_f
async def test_a_partial_document_with_nothing_to_set_only_creates_the_document(
    mongo: MongoBackend,
) -> None:
    pipeline, _ = build_pipeline(mongo)
    await pipeline.open_spider()
    try:
        await pipeline._run(pipeline._write, "users", [Upsert(PROFILE, partial=False)])
        await pipeline._run(
            pipeline._write,
            "users",
            [Upsert({"mid": 2, "official": {}}, True), Upsert({"mid": 5}, True)],
        )
    finally:
        await pipeline.close_spider()

    stored = {d["mid"]: d for d in mongo.database["users"].find({}, {"_id": False})}
    assert stored == {2: PROFILE, 5: {"mid": 5}}


@deferred_f_from_coro_f
async def test_stored_keys_having_a_field_leaves_out_null_and_missing_values(
    mongo: MongoBackend,
) -> None:
    mongo.database["users"].insert_many(
        [
            {"mid": 1, "crawled_at": 1_767_225_600},
            {"mid": 2, "crawled_at": None},
            {"mid": 3},
            {"mid": 4, "crawled_at": 0},
            {"mid": 5, "crawled_at": {"nested": None}},
        ]
    )
    pipeline, _ = build_pipeline(mongo)
    await pipeline.open_spider()
    try:
        assert await pipeline.stored_keys("users", having="crawled_at") == {(1,), (4,), (5,)}
        assert len(await pipeline.stored_keys("users")) == 5
    finally:
        await pipeline.close_spider()


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (
            "mongodb://bob:hunter2@db.example:27017/?authSource=admin",
            "mongodb://bob:***@db.example:27017/?authSource=admin",
        ),
        ("mongodb+srv://bob:p%40ss@cluster.example/", "mongodb+srv://bob:***@cluster.example/"),
        ("mongodb://bob@db.example", "mongodb://bob@db.example"),
        ("bob:hunter2@db.example", "bob:***@db.example"),
        ("mongodb://db.example:27017", "mongodb://db.example:27017"),
    ],
)
def test_mask_uri_hides_the_password(uri: str, shown: str) -> None:
    assert mask_uri(uri) == shown


def build_with(tmp_path: Path, **settings: Any) -> MongoPipeline:
    crawler = build_crawler(
        {
            **project_settings(),
            "MONGO_URI": "mongodb://mongomock.invalid:27017",
            "MONGO_CLIENT_CLASS": SharedMongomockClient,
            "BILI_DEAD_LETTER_DIR": str(tmp_path / "data"),
            **settings,
        }
    )
    return build_from_crawler(MongoPipeline, crawler)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "not-a-uri",
            "MONGO_URI 'not-a-uri' is not a MongoDB connection string: Invalid URI scheme: ",
        ),
        (
            "mongodb://bob:hunter2@db.example:99999",
            "MONGO_URI 'mongodb://bob:***@db.example:99999' is not a MongoDB connection"
            " string: Port must be an integer",
        ),
        (
            "mongodb://bob:hunter2@db.example/?authSorce=admin",
            "MONGO_URI 'mongodb://bob:***@db.example/?authSorce=admin' cannot be used:"
            " Unknown option: authsorce",
        ),
    ],
)
def test_malformed_uri_is_one_config_error_at_start(
    tmp_path: Path, uri: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        build_with(tmp_path, MONGO_URI=uri)

    assert str(raised.value).startswith(message)
    assert "hunter2" not in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("value", [0, "soon"])
def test_connect_timeout_must_be_a_positive_number(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^MONGO_CONNECT_TIMEOUT must be"):
        build_with(tmp_path, MONGO_CONNECT_TIMEOUT=value)


def test_dead_letter_dir_under_a_file_is_one_config_error_at_start(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("not a directory\n")

    with pytest.raises(ConfigError, match=r"^BILI_DEAD_LETTER_DIR .*: Not a directory: "):
        build_with(tmp_path, BILI_DEAD_LETTER_DIR=str(tmp_path / "blocker" / "dead"))


@deferred_f_from_coro_f
async def test_open_pings_the_server_within_the_connect_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    ping = mongomock.database.Database.command

    class RecordingClient(SharedMongomockClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            calls.append(("client", kwargs))
            super().__init__(*args, **kwargs)

    def recorded_command(self: Any, command: Any, **kwargs: Any) -> Any:
        calls.append((command, kwargs))
        return ping(self, command, **kwargs)

    monkeypatch.setattr(mongomock.database.Database, "command", recorded_command)
    pipeline = build_with(tmp_path, MONGO_CLIENT_CLASS=RecordingClient, MONGO_CONNECT_TIMEOUT=0.5)

    await pipeline.open_spider()
    await pipeline.close_spider()

    assert calls == [("client", {"serverSelectionTimeoutMS": 500}), ("ping", {})]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@deferred_f_from_coro_f
async def test_unreachable_server_is_one_config_error_within_seconds(tmp_path: Path) -> None:
    port = _closed_port()
    uri = f"mongodb://bob:hunter2@127.0.0.1:{port}/?authSource=admin"
    pipeline = build_with(
        tmp_path, MONGO_URI=uri, MONGO_CLIENT_CLASS=pymongo.MongoClient, MONGO_CONNECT_TIMEOUT=0.5
    )

    started = time.monotonic()
    with pytest.raises(ConfigError) as raised:
        await pipeline.open_spider()
    assert time.monotonic() - started < 3
    await pipeline.close_spider()

    message = str(raised.value)
    assert message.startswith(
        f"MONGO_URI 'mongodb://bob:***@127.0.0.1:{port}/?authSource=admin': no MongoDB server"
        f" at 127.0.0.1:{port} answered within 0.5s (MONGO_CONNECT_TIMEOUT): 127.0.0.1:{port}: "
    )
    assert "Connection refused" in message
    assert "hunter2" not in message
    assert "\n" not in message
    assert raised.value.__suppress_context__
