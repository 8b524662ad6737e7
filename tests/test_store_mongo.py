"""The MongoDB store: its indexes, ``$set`` paths, and one-line errors that never show the
password (what every store does alike is in test_store and test_pipeline_store).

The tests run on mongomock, and also against a real server when
``BILICRAWL_TEST_MONGO_URI`` is set (each test in a throwaway database).
"""

from __future__ import annotations

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
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler

from bilicrawl.config import ConfigError
from bilicrawl.items import ITEM_CLASSES
from bilicrawl.pipelines.store import StorePipeline
from bilicrawl.store.documents import Upsert, merge_document
from bilicrawl.store.mongo import mask_uri, set_paths
from tests.helpers.items import build_crawler, make_video
from tests.helpers.mongo import SharedMongomockClient, let_mongomock_accept_sort
from tests.helpers.store import run_pipeline
from tests.utils import project_settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymongo.database import Database
    from scrapy.crawler import Crawler

    from bilicrawl.store.documents import Document

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
        "BILI_STORE_BATCH_SIZE": 3,
        "BILI_DEAD_LETTER_DIR": str(tmp_path / "data"),
    }
    try:
        yield MongoBackend(settings=settings, database=client[database_name])
    finally:
        client.drop_database(database_name)
        client.close()


def build_pipeline(mongo: MongoBackend, **settings: Any) -> tuple[StorePipeline, Crawler]:
    crawler = build_crawler({**mongo.settings, **settings})
    return build_from_crawler(StorePipeline, crawler), crawler


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
async def test_document_is_the_item_dict_plus_id(mongo: MongoBackend) -> None:
    item = make_video(aid=2**51 - 1)
    item.stat.view = 2**63 - 1
    expected = ItemAdapter(item).asdict()
    pipeline, _ = build_pipeline(mongo)

    await run_pipeline(pipeline, [item])

    [document] = mongo.database["videos"].find()
    assert "_id" in document
    del document["_id"]
    assert document == expected
    assert document["title"] == "【4K·HDR】原神「荣花与炎日之途」纳塔 PV 🎉🔥"
    assert ItemAdapter(item).asdict() == expected
    assert not hasattr(item, "_id")


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
        await pipeline._run(pipeline.store.write, "users", [Upsert(PROFILE, partial=False)])
        new_user = {**STUB, "mid": 3}
        await pipeline._run(
            pipeline.store.write, "users", [Upsert(STUB, partial=True), Upsert(new_user, True)]
        )
    finally:
        await pipeline.close_spider()

    stored = {d["mid"]: d for d in mongo.database["users"].find({}, {"_id": False})}
    assert stored == {2: merge_document(PROFILE, STUB), 3: new_user}
    assert stored[2]["official"] == {
        "role": 2,
        "title": "bilibili创始人（站长）",
        "desc": "bilibili 知名UP主",
        "type": 1,
    }
    assert stored[2]["crawled_at"] == 1_767_225_600


@deferred_f_from_coro_f
async def test_a_partial_document_with_nothing_to_set_only_creates_the_document(
    mongo: MongoBackend,
) -> None:
    pipeline, _ = build_pipeline(mongo)
    await pipeline.open_spider()
    try:
        await pipeline._run(pipeline.store.write, "users", [Upsert(PROFILE, partial=False)])
        await pipeline._run(
            pipeline.store.write,
            "users",
            [Upsert({"mid": 2, "official": {}}, True), Upsert({"mid": 5}, True)],
        )
    finally:
        await pipeline.close_spider()

    stored = {d["mid"]: d for d in mongo.database["users"].find({}, {"_id": False})}
    assert stored == {2: PROFILE, 5: {"mid": 5}}


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


def build_with(tmp_path: Path, **settings: Any) -> StorePipeline:
    crawler = build_crawler(
        {
            **project_settings(),
            "MONGO_URI": "mongodb://mongomock.invalid:27017",
            "MONGO_CLIENT_CLASS": SharedMongomockClient,
            "BILI_DEAD_LETTER_DIR": str(tmp_path / "data"),
            **settings,
        }
    )
    return build_from_crawler(StorePipeline, crawler)


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
