"""End-to-end, through ``scrapy crawl``: a store that fills up, is locked or is corrupt.

A completeness record must never outlive its rows, a store that cannot write
must stop the crawl, and a bad file must be refused before any request; each
interrupted crawl is then resumed to completion.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from bilicrawl.extensions.summary import FAILED, OK, USAGE
from tests.fakeapi import danmaku
from tests.helpers.disk import small_disk
from tests.helpers.locks import HeldLock
from tests.helpers.process import Crawl, fetched_aids, wait_for
from tests.helpers.store import stored_documents
from tests.helpers.videos import sample_aids, write_ids_file

CID = danmaku.CAPPED_CID
"""A part of two segments and 7,413 distinct danmaku: several row batches of 1,000."""
pytestmark = pytest.mark.slow

FAST = {
    "BILI_THROTTLE_MAX_RPS": "50",
    "AUTOTHROTTLE_START_DELAY": "0",
    "BILI_STORE_RETRY_DELAYS": "0.2,0.2",
    "SQLITE_BUSY_TIMEOUT": "0.5",
    "BILI_STORE_FLUSH_SECONDS": "1",
}
DANMAKU = {**FAST, "BILI_STORE_ROWS_BATCH_SIZE": "1000"}


def served_dmids(cid: int) -> set[int]:
    """Every danmaku the part's segments serve."""
    segments = danmaku.part(cid)["segments"]
    return {row["dmid"] for n in range(1, segments + 1) for row in danmaku.segment(cid, n)}


def stored_dmids(database: Path, cid: int) -> set[int]:
    return {row["dmid"] for row in stored_documents(database, "danmaku") if row["cid"] == cid}


def records(database: Path) -> dict[int, dict[str, Any]]:
    return {record["cid"]: record for record in stored_documents(database, "danmaku_parts")}


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if " ERROR: " in line]


def assert_closed_for_the_store(crawl: Crawl, status: int, cause: str) -> str:
    output = crawl.output()
    assert status == FAILED, output[-3000:]
    [first_error] = [line for line in error_lines(output) if "Closing the crawl" in line]
    assert f"the SQLite database {crawl.database} cannot be written: {cause}" in first_error
    assert "finish reason: bilicrawl_store_failed" in output
    assert "Traceback" not in output
    return output


def test_danmaku_onto_a_full_disk_leave_no_record_and_resume_completes(
    fakeapi: Any, tmp_path: Path
) -> None:
    fakeapi.reset()
    expected = served_dmids(CID)
    with small_disk(tmp_path / "disk", 1024 * 1024) as disk:
        database = disk.path / "store.db"
        full = Crawl(
            tmp_path / "full",
            fakeapi.url,
            ["-a", f"cids={CID}"],
            spider="danmaku",
            database=database,
            prefix=disk.prefix,
            **DANMAKU,
        )
        output = assert_closed_for_the_store(full, full.wait(timeout=120), "")
        stored = stored_dmids(database, CID)
        assert 0 < len(stored) < len(expected), "the disk filled up half-way"
        assert CID not in records(database), "no record claims rows that were never written"
        assert "are lost" in output, "the dead letters were on the same disk"

        disk.grow(64 * 1024 * 1024)
        resumed = Crawl(
            tmp_path / "resumed",
            fakeapi.url,
            ["-a", f"cids={CID}", "-a", "resume=true"],
            spider="danmaku",
            database=database,
            prefix=disk.prefix,
            **DANMAKU,
        )
        assert resumed.wait(timeout=120) == OK, resumed.output()[-3000:]
        assert stored_dmids(database, CID) == expected
        record = records(database)[CID]
        assert record["distinct"] == record["stored"]["seg"] == len(expected)


def test_danmaku_under_a_held_lock_leave_no_record_and_resume_completes(
    fakeapi: Any, tmp_path: Path
) -> None:
    fakeapi.reset()
    expected = served_dmids(CID)
    fakeapi.configure(delay=1.0)  # the lock is taken after the store opened, before any row
    crawl = Crawl(
        tmp_path / "locked", fakeapi.url, ["-a", f"cids={CID}"], spider="danmaku", **DANMAKU
    )
    try:
        wait_for(
            lambda: any(e["path"] == "/x/v2/dm/web/view" for e in fakeapi.log()),
            30,
            "the part's view",
        )
        lock = HeldLock(crawl.database)
        fakeapi.configure(delay=0.0)
        status = crawl.wait(timeout=120)
    finally:
        fakeapi.configure(delay=0.0)
    lock.release()
    assert_closed_for_the_store(crawl, status, "database is locked")
    assert stored_dmids(crawl.database, CID) == set()
    assert records(crawl.database) == {}
    dead = crawl.database.parent / "failed-danmaku.partial.jsonl"
    assert len(dead.read_text(encoding="utf-8").splitlines()) >= len(expected)
    assert not (crawl.database.parent / "failed-danmaku_parts.jsonl").exists()

    resumed = Crawl(
        tmp_path / "locked",
        fakeapi.url,
        ["-a", f"cids={CID}", "-a", "resume=true"],
        spider="danmaku",
        **DANMAKU,
    )
    assert resumed.wait(timeout=120) == OK, resumed.output()[-3000:]
    assert stored_dmids(crawl.database, CID) == expected
    assert records(crawl.database)[CID]["distinct"] == len(expected)


def test_videos_under_a_held_lock_stop_fetching_lose_nothing_and_resume_completes(
    fakeapi: Any, tmp_path: Path
) -> None:
    fakeapi.reset()
    aids = sample_aids(300, seed=31)
    ids = write_ids_file(tmp_path / "ids.txt", aids)
    settings = {**FAST, "BILI_THROTTLE_MAX_RPS": "20", "BILI_STORE_BATCH_SIZE": "20"}
    crawl = Crawl(tmp_path, fakeapi.url, ["-a", f"ids_file={ids}"], **settings)
    wait_for(lambda: len(fetched_aids(fakeapi.log())) >= 40, 60, "40 videos")
    lock = HeldLock(crawl.database)
    locked_at = time.time()
    status = crawl.wait(timeout=120)
    lock.release()
    output = assert_closed_for_the_store(crawl, status, "database is locked")

    log = fakeapi.log()
    fetched = fetched_aids(log)
    assert len(fetched) < len(aids), "the crawl stopped early"
    # The first write fails within a flush interval and its retries (about 3 s): nothing
    # is fetched more than 5 s after it (at 20 requests a second, at most ~100 allowed).
    assert len(fetched - fetched_aids(log, before=locked_at + 1 + 3 + 5)) <= 100
    stored = set(crawl.stored_aids())
    dead_letters = crawl.database.parent / "failed-videos.jsonl"
    dead = {
        int(line.split('"aid":', 1)[1].split(",", 1)[0])
        for line in dead_letters.read_text(encoding="utf-8").splitlines()
    }
    assert fetched == stored | dead, "every fetched video is stored or dead-lettered"
    assert "accepted" in output

    resumed = Crawl(
        tmp_path, fakeapi.url, ["-a", f"ids_file={ids}", "-a", "resume=true"], **settings
    )
    assert resumed.wait(timeout=120) == OK, resumed.output()[-3000:]
    assert sorted(resumed.stored_aids()) == aids


def test_videos_wait_for_a_brief_lock_and_lose_nothing(fakeapi: Any, tmp_path: Path) -> None:
    fakeapi.reset()
    aids = sample_aids(120, seed=32)
    ids = write_ids_file(tmp_path / "ids.txt", aids)
    crawl = Crawl(
        tmp_path,
        fakeapi.url,
        ["-a", f"ids_file={ids}"],
        **{
            **FAST,
            "BILI_THROTTLE_MAX_RPS": "30",
            "BILI_STORE_BATCH_SIZE": "20",
            "BILI_STORE_RETRY_DELAYS": "0.5,1,2",
        },
    )
    wait_for(lambda: len(fetched_aids(fakeapi.log())) >= 30, 60, "30 videos")
    lock = HeldLock(crawl.database)
    threading.Timer(2.0, lock.release).start()

    assert crawl.wait(timeout=120) == OK, crawl.output()[-3000:]
    assert sorted(crawl.stored_aids()) == aids
    assert not (crawl.database.parent / "failed-videos.jsonl").exists()
    assert "retrying in" in crawl.output()


def corrupt(database: Path) -> None:
    """Overwrite the last pages of a store (its tables) with garbage, as a bad disk would."""
    with database.open("r+b") as file:
        file.seek(-2 * 16384, 2)
        file.write(b"\xde\xad\xbe\xef" * 8192)


def corrupt_schema(database: Path) -> None:
    """Overwrite the pages after the first, where the schema continues."""
    with database.open("r+b") as file:
        file.seek(16384)
        file.write(b"\xde\xad\xbe\xef" * 4096 * 4)


def foreign(database: Path) -> None:
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")


def text(database: Path) -> None:
    database.write_text("aid,title\n2,not a database\n" * 200, encoding="utf-8")


@pytest.mark.parametrize(("damage", "says"), [
    (corrupt, "is corrupt"), (corrupt_schema, "is corrupt"), (foreign, "is not a bilicrawl store"),
    (text, "is not a usable SQLite database: file is not a database"),
])  # fmt: skip
@pytest.mark.parametrize("resume", [False, True])
def test_a_bad_store_file_is_refused_before_any_request(
    fakeapi_factory: Any, tmp_path: Path, damage: Any, says: str, resume: bool
) -> None:
    api = fakeapi_factory()
    if damage in (corrupt, corrupt_schema):
        first = Crawl(tmp_path / "first", api.url, ["-a", "aids=2,3,5,7"], **FAST)
        assert first.wait(timeout=60) == OK
        database = first.database
    else:
        database = tmp_path / "store.db"
    damage(database)
    api.reset()
    args = ["-a", "aids=2", *(["-a", "resume=true"] if resume else [])]

    crawl = Crawl(tmp_path / "again", api.url, args, database=database, **FAST)

    assert crawl.wait(timeout=60) == USAGE
    output = crawl.output()
    errors = [line for line in output.splitlines() if line.startswith("scrapy crawl: error:")]
    assert len(errors) == 1, output[-3000:]
    assert errors[0].startswith(f"scrapy crawl: error: SQLITE_PATH {str(database)!r} {says}")
    assert "Traceback" not in output and " ERROR: " not in output
    assert api.log() == [], "not even the cookies or the WBI keys were fetched"
