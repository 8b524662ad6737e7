"""The Store interface on every store: chosen by BILI_STORE_URI, written in batches, read
by key, filter and count alike (SQLite, mongomock and, with ``BILICRAWL_TEST_MONGO_URI``,
a real MongoDB server)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from itemadapter import ItemAdapter
from scrapy.settings import Settings

from bilicrawl.config import ConfigError
from bilicrawl.items import ITEM_CLASSES
from bilicrawl.store import store_from_settings, store_location
from bilicrawl.store.documents import COLLECTIONS, Upsert, document
from bilicrawl.store.mongo import MongoStore
from bilicrawl.store.sqlite import SQLiteStore
from tests.helpers.backends import Backend
from tests.helpers.items import CRAWLED_AT, danmaku_row, make_stub, make_user, make_video
from tests.utils import project_settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from bilicrawl.store import Store


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    with backend.store() as opened:
        yield opened


def full(*items: Any) -> list[Upsert]:
    return [Upsert(document(item), partial=False) for item in items]


def partial(*items: Any) -> list[Upsert]:
    return [Upsert(document(item), partial=True) for item in items]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"BILI_STORE_URI": "sqlite:///data/x.db"}, ("BILI_STORE_URI", "sqlite", "data/x.db")),
        ({"BILI_STORE_URI": "sqlite:////srv/x.db"}, ("BILI_STORE_URI", "sqlite", "/srv/x.db")),
        ({"BILI_STORE_URI": "mongodb://h/db"}, ("BILI_STORE_URI", "mongodb", "mongodb://h/db")),
        ({"BILI_STORE_URI": "mongodb+srv://h/db"},
         ("BILI_STORE_URI", "mongodb+srv", "mongodb+srv://h/db")),
        # The URI wins over the aliases; MONGO_URI over SQLITE_PATH.
        ({"BILI_STORE_URI": "sqlite:///a.db", "MONGO_URI": "mongodb://h"},
         ("BILI_STORE_URI", "sqlite", "a.db")),
        ({"MONGO_URI": "mongodb://h", "SQLITE_PATH": "a.db"},
         ("MONGO_URI", "mongodb", "mongodb://h")),
        ({"SQLITE_PATH": "a.db"}, ("SQLITE_PATH", "sqlite", "a.db")),
    ],
)  # fmt: skip
def test_the_store_is_named_by_its_uri_or_the_older_settings(
    settings: dict[str, str], expected: tuple[str, str, str]
) -> None:
    defaults = {"BILI_STORE_URI": "", "MONGO_URI": "", "SQLITE_PATH": ""}
    assert store_location(Settings({**defaults, **settings})) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("postgres://h/db",
         "BILI_STORE_URI 'postgres://h/db' must start with one of sqlite://, mongodb://,"
         " mongodb+srv://"),
        ("data/x.db", "BILI_STORE_URI 'data/x.db' must start with one of sqlite://,"),
        ("sqlite://x.db", "BILI_STORE_URI 'sqlite://x.db': write sqlite:///relative/path.db"),
        ("sqlite:///", "BILI_STORE_URI 'sqlite:///': write sqlite:///relative/path.db"),
    ],
)  # fmt: skip
def test_a_uri_of_no_store_is_one_config_error(uri: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        store_from_settings(Settings({**project_settings(), "BILI_STORE_URI": uri}))
    assert str(raised.value).startswith(message)


def test_no_store_at_all_is_one_config_error() -> None:
    settings = Settings({"BILI_STORE_URI": "", "MONGO_URI": "", "SQLITE_PATH": ""})
    with pytest.raises(ConfigError, match=r"^No store: set BILI_STORE_URI"):
        store_from_settings(settings)


def test_each_scheme_builds_its_store(tmp_path: Path) -> None:
    sqlite = store_from_settings(
        Settings({**project_settings(), "BILI_STORE_URI": f"sqlite:///{tmp_path}/s.db"})
    )
    assert isinstance(sqlite, SQLiteStore)
    assert sqlite.path == tmp_path / "s.db"
    mongo = store_from_settings(
        Settings({**project_settings(), "BILI_STORE_URI": "mongodb://h:27017/crawls"})
    )
    assert isinstance(mongo, MongoStore)
    assert (mongo.database_name, mongo.hosts) == ("crawls", "h:27017")
    # MONGO_URI keeps its documented meaning: the database is MONGO_DATABASE.
    alias = store_from_settings(
        Settings({**project_settings(), "MONGO_URI": "mongodb://h/admin", "MONGO_DATABASE": "b"})
    )
    assert isinstance(alias, MongoStore)
    assert alias.database_name == "b"


def test_open_creates_every_collection_empty(store: Store) -> None:
    assert {item_class.collection for item_class in ITEM_CLASSES} == set(COLLECTIONS)
    for collection in COLLECTIONS:
        assert store.count(collection) == 0
        assert store.keys(collection) == set()
        assert list(store.documents(collection)) == []


def test_documents_come_by_ascending_key_with_counts_and_keys(store: Store) -> None:
    videos = [make_video(aid=aid, title=f"t{aid}") for aid in (7, 2**40, 1)]
    store.write("videos", full(*videos))

    assert [doc["aid"] for doc in store.documents("videos")] == [1, 7, 2**40]
    assert store.documents("videos").__next__() == ItemAdapter(videos[2]).asdict()
    assert store.keys("videos") == {(1,), (7,), (2**40,)}
    assert store.count("videos") == 3


def test_filters_compare_values_nested_fields_and_presence(store: Store) -> None:
    store.write(
        "videos",
        full(
            make_video(aid=1, pubdate=100, title="a"),
            make_video(aid=2, pubdate=200, title="b"),
            make_video(aid=3, pubdate=300, title="b"),
        ),
    )
    store.write("users", full(make_user(mid=1), make_user(mid=2, crawled_at=None)))
    store.write("users", partial(make_stub(mid=3), make_stub(mid=1)))

    def aids(where: dict[str, Any]) -> list[int]:
        return [doc["aid"] for doc in store.documents("videos", where)]

    assert aids({"title": "b"}) == [2, 3]
    assert aids({"pubdate": {"$gte": 200}}) == [2, 3]
    assert aids({"pubdate": {"$gt": 100, "$lt": 300}}) == [2]
    assert aids({"pubdate": {"$lte": 200}, "title": "b"}) == [2]
    assert aids({"aid": {"$gte": 2}}) == [2, 3]  # a key field: a column in SQLite
    assert aids({"stat.view": 4_294_967_296_123}) == [1, 2, 3]
    assert aids({"owner.mid": -1}) == []
    assert store.count("videos", {"title": "b"}) == 2
    assert store.keys("users") == {(1,), (2,), (3,)}
    assert store.keys("users", {"crawled_at": {"$ne": None}}) == {(1,)}
    assert store.keys("users", {"live_room.room_id": {"$ne": None}}) == {(1,), (2,)}


def test_filters_on_rows_use_their_fields(store: Store) -> None:
    rows = [danmaku_row(4, attr=1), danmaku_row(5), danmaku_row(6, attr=0)]
    for row in rows:
        row.update(cid=7, crawled_at=CRAWLED_AT)
    store.write("danmaku", [Upsert(row, partial=True) for row in rows])

    assert store.keys("danmaku") == {(4,), (5,), (6,)}
    # A field a row lacks is not there (SQLite: a NULL column).
    assert store.keys("danmaku", {"attr": {"$ne": None}}) == {(4,), (6,)}
    assert [doc["dmid"] for doc in store.documents("danmaku", {"attr": 0})] == [6]
    assert store.count("danmaku", {"cid": 7, "dmid": {"$gt": 4}}) == 2


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"title": None}, "title: compare to a value; {'$ne': None} for present"),
        ({"title": {"$ne": "a"}}, "title: $ne 'a' is not supported ($ne: None, $gt, $gte,"),
        ({"pubdate": {"$in": [1]}}, "pubdate: $in [1] is not supported"),
    ],
)
def test_filters_beyond_what_every_store_supports_are_refused(
    store: Store, where: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        store.count("videos", where)
    assert str(raised.value).startswith(message)


def test_writing_a_batch_again_changes_nothing(store: Store) -> None:
    batch = full(make_video(aid=1))
    store.write("videos", batch)
    store.write("users", full(make_user(mid=1)))
    store.write("users", partial(make_stub(mid=1)))
    before = list(store.documents("users"))
    store.write("users", partial(make_stub(mid=1)))
    store.write("videos", batch)
    assert list(store.documents("users")) == before
    assert store.count("videos") == 1


def test_what_one_store_wrote_another_reads(backend: Backend) -> None:
    with backend.store() as writer:
        writer.write("videos", full(make_video(aid=5)))
    with backend.store() as reader:
        assert reader.keys("videos") == {(5,)}
