"""The SQLite store: its tables, transactions and JSON, and one-line errors for a file that
cannot be a store (what every store does alike is in test_store and test_pipeline_store)."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from itemadapter import ItemAdapter
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from bilicrawl.config import ConfigError
from bilicrawl.items import ITEM_CLASSES, DanmakuBatchItem
from bilicrawl.pipelines.store import StorePipeline
from tests.helpers.items import (
    build_crawler,
    danmaku_row,
    make_stub,
    make_user,
    make_video,
    with_stub,
)
from tests.helpers.store import ItemsSpider, run_pipeline, stored_count, stored_documents
from tests.utils import project_settings

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "bilicrawl.db"


def build_pipeline(db_path: Path, **settings: Any) -> tuple[StorePipeline, Crawler]:
    crawler = build_crawler(
        {
            **project_settings(),
            "MONGO_URI": "",
            "SQLITE_PATH": str(db_path),
            "BILI_STORE_BATCH_SIZE": 3,
            **settings,
        }
    )
    return build_from_crawler(StorePipeline, crawler), crawler


@deferred_f_from_coro_f
async def test_open_creates_a_table_per_item_class_in_wal_mode(db_path: Path) -> None:
    pipeline, _ = build_pipeline(db_path)
    await pipeline.open_spider()
    await pipeline.close_spider()

    with closing(sqlite3.connect(db_path)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        for item_class in ITEM_CLASSES:
            table = f'"{item_class.collection}"'
            columns = list(connection.execute(f"PRAGMA table_info({table})"))
            if item_class.rows_field is not None:
                # Rows: a column per row field, keyed by a unique index.
                assert [name for _, name, *_ in columns] == [*item_class.row_fields, "updated_at"]
                unique = [
                    name
                    for _, name, is_unique, *_ in connection.execute(f"PRAGMA index_list({table})")
                    if is_unique
                ]
                [(index_columns)] = [
                    tuple(
                        column
                        for _, _, column in connection.execute(f'PRAGMA index_info("{name}")')
                    )
                    for name in unique
                ]
                assert index_columns == item_class.natural_key
                continue
            primary_key = sorted((pk, name) for _, name, _, _, _, pk in columns if pk)
            assert tuple(name for _, name in primary_key) == item_class.natural_key
        assert stored_count(db_path, "videos") == 0


@deferred_f_from_coro_f
async def test_document_is_exactly_the_item_dict(db_path: Path) -> None:
    item = make_video(aid=2**51 - 1)
    item.stat.view = 2**63 - 1
    pipeline, _ = build_pipeline(db_path)

    await run_pipeline(pipeline, [item])

    expected = ItemAdapter(item).asdict()
    assert list(stored_documents(db_path, "videos")) == [expected]
    with closing(sqlite3.connect(db_path)) as connection:
        aid, aid_type, doc = connection.execute(
            "SELECT aid, typeof(aid), doc FROM videos"
        ).fetchone()
    assert (aid, aid_type) == (2**51 - 1, "integer")
    assert doc == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
    assert "原神「荣花与炎日之途」" in doc
    assert "🎉🔥" in doc
    assert '"view":9223372036854775807' in doc


@deferred_f_from_coro_f
async def test_a_partial_document_is_read_merged_and_written_in_one_immediate_transaction(
    db_path: Path,
) -> None:
    profile, stub = make_user(mid=2), make_stub(mid=2)
    first, _ = build_pipeline(db_path)
    await run_pipeline(first, [profile])
    statements: list[str] = []
    second, _ = build_pipeline(db_path)
    await second.open_spider()
    # The connection belongs to the worker thread.
    await second._run(second.store.connection.set_trace_callback, statements.append)
    await second.process_item(stub)
    await second.close_spider()

    assert [statement.split(" ", 1)[0] for statement in statements] == [
        "BEGIN",
        "SELECT",
        "INSERT",
        "COMMIT",
    ]
    assert statements[0] == "BEGIN IMMEDIATE"
    assert statements[1] == 'SELECT doc FROM "users" WHERE "mid" = 2'
    assert list(stored_documents(db_path, "users")) == [
        with_stub(ItemAdapter(profile).asdict(), stub)
    ]


@deferred_f_from_coro_f
async def test_merged_documents_keep_integers_of_any_size(db_path: Path) -> None:
    profile = make_user(mid=2**62, likes=2**64 + 3, follower=2**63 - 1)
    stub = make_stub(mid=2**62)
    first, _ = build_pipeline(db_path)
    await run_pipeline(first, [profile])

    second, _ = build_pipeline(db_path)
    await run_pipeline(second, [stub])

    [stored] = stored_documents(db_path, "users")
    assert stored == with_stub(ItemAdapter(profile).asdict(), stub)
    assert (stored["likes"], stored["follower"]) == (2**64 + 3, 2**63 - 1)
    with closing(sqlite3.connect(db_path)) as connection:
        [(doc,)] = connection.execute("SELECT doc FROM users")
    assert '"likes":18446744073709551619' in doc


def _file_in_the_way(tmp_path: Path) -> Path:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory\n")
    return blocker


UNWRITABLE_PATHS = {
    "parent is a file": (
        lambda tmp: _file_in_the_way(tmp) / "sub" / "x.db",
        lambda path: f"Not a directory: {str(path.parent)!r}",
    ),
    "parent exists as a file": (
        lambda tmp: _file_in_the_way(tmp) / "x.db",
        lambda path: f"Not a directory: {str(path.parent)!r}",
    ),
    "path is a directory": (lambda tmp: tmp, lambda path: "Is a directory"),
    # sysfs refuses new files even to root, as a read-only file system would.
    "refused by the file system": (
        lambda tmp: Path("/sys/bilicrawl-test.db"),
        lambda path: "Permission denied",
    ),
}


@pytest.mark.parametrize("case", UNWRITABLE_PATHS)
def test_unwritable_path_is_one_config_error_at_start(tmp_path: Path, case: str) -> None:
    make_path, reason = UNWRITABLE_PATHS[case]
    path = make_path(tmp_path)
    if not path.parent.is_dir() and case == "refused by the file system":
        pytest.skip("no sysfs here")

    with pytest.raises(ConfigError) as raised:
        build_pipeline(path)

    assert str(raised.value) == f"SQLITE_PATH {str(path)!r} cannot be used: {reason(path)}"


def test_dead_letter_dir_under_a_file_is_one_config_error_at_start(
    db_path: Path, tmp_path: Path
) -> None:
    blocker = _file_in_the_way(tmp_path)

    with pytest.raises(ConfigError) as raised:
        build_pipeline(db_path, BILI_DEAD_LETTER_DIR=str(blocker / "dead"))

    assert str(raised.value) == (
        f"BILI_DEAD_LETTER_DIR {str(blocker / 'dead')!r} cannot be used:"
        f" Not a directory: {str(blocker)!r}"
    )


@deferred_f_from_coro_f
async def test_path_refused_at_open_is_one_config_error(db_path: Path) -> None:
    pipeline, _ = build_pipeline(db_path)
    # The directory became a file after the start-up check.
    shutil.rmtree(db_path.parent)
    db_path.parent.write_text("in the way\n")

    with pytest.raises(ConfigError) as raised:
        await pipeline.open_spider()
    await pipeline.close_spider()

    assert str(raised.value) == (
        f"SQLITE_PATH {str(db_path)!r} cannot be used: Not a directory: {str(db_path.parent)!r}"
    )


def test_a_file_that_is_not_a_database_is_one_config_error_at_the_start(
    db_path: Path,
) -> None:
    db_path.parent.mkdir()
    db_path.write_text("id,title\n1,not a database\n" * 100)

    with pytest.raises(ConfigError) as raised:
        build_pipeline(db_path)

    assert str(raised.value) == (
        f"SQLITE_PATH {str(db_path)!r} is not a usable SQLite database: file is not a database"
    )


@deferred_f_from_coro_f
async def test_a_crawl_with_an_unusable_store_ends_with_the_config_error_alone(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db_path.parent.mkdir()
    db_path.write_text("id,title\n1,not a database\n" * 100)
    crawler = get_crawler(
        ItemsSpider,
        {**project_settings(), "MONGO_URI": "", "SQLITE_PATH": str(db_path)},
    )

    with caplog.at_level(logging.INFO), pytest.raises(ConfigError, match="not a database"):
        await crawler.crawl_async(items=[make_video()])

    # Scrapy's CoreStats asserts at close when the spider never finished opening;
    # that is Scrapy's to fix. No other error, and none from closing the store.
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert [error for error in errors if "CoreStats" not in error] == []


@deferred_f_from_coro_f
async def test_danmaku_rows_are_columns_and_a_field_a_source_lacks_is_null(db_path: Path) -> None:
    pipeline, _ = build_pipeline(db_path)
    await run_pipeline(
        pipeline,
        [
            DanmakuBatchItem(
                cid=7,
                aid=None,
                source="xml",
                crawled_at=1700000000,
                rows=[danmaku_row(2**62 + 1, weight=3)],
            ),
        ],
    )

    with closing(sqlite3.connect(db_path)) as connection:
        connection.row_factory = sqlite3.Row
        [row] = connection.execute("SELECT * FROM danmaku WHERE dmid = ?", (2**62 + 1,))
    assert {**row} == {
        **danmaku_row(2**62 + 1, weight=3),
        "cid": 7,
        "aid": None,
        "attr": None,
        "crawled_at": 1700000000,
        "updated_at": row["updated_at"],
    }
    assert abs(row["updated_at"] - time.time()) < 60
    [document] = stored_documents(db_path, "danmaku")
    assert document == {**danmaku_row(2**62 + 1, weight=3), "cid": 7, "crawled_at": 1700000000}


@deferred_f_from_coro_f
async def test_a_table_of_another_layout_is_refused_at_open(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(db_path)) as connection:
        connection.execute(
            "CREATE TABLE danmaku (dmid INTEGER PRIMARY KEY, doc TEXT, updated_at INTEGER)"
        )
    pipeline, _ = build_pipeline(db_path)

    with pytest.raises(
        ConfigError,
        match=r"the table 'danmaku' has the columns \('dmid', 'doc',"
        r" 'updated_at'\).*another version of bilicrawl",
    ):
        await pipeline.open_spider()
