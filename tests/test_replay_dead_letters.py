"""``scrapy replay-dead-letters``: dead letters the real pipeline wrote, applied to the store.

The files come from the storage pipeline with its store refusing some
collections (``tests.helpers.dead_letters``): full videos, user stubs to merge
into a stored profile, danmaku rows, and the record of a part whose rows were
stored. The command runs as a user runs it, a ``scrapy`` subprocess, except
for the cases that need a store failing on cue or mongomock in-process.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_f_from_coro_f

from bilicrawl.config import ConfigError
from bilicrawl.extensions.summary import FAILED, OK
from bilicrawl.store.documents import document
from bilicrawl.store.replay import replay_dead_letters
from bilicrawl.store.sqlite import SQLiteStore
from tests.helpers.dead_letters import make_danmaku, make_part, replay, store_items
from tests.helpers.items import (
    CRAWLED_AT,
    danmaku_row,
    make_stub,
    make_user,
    make_video,
    with_stub,
)
from tests.helpers.locks import held_lock
from tests.helpers.mongo import SharedMongomockClient, let_mongomock_accept_sort
from tests.helpers.process import Crawl, fetched_aids, wait_for
from tests.helpers.store import stored_documents
from tests.helpers.videos import sample_aids, write_ids_file
from tests.utils import project_settings

if TYPE_CHECKING:
    from bilicrawl.store.documents import Document

AIDS = range(1, 6)
FILES = {
    "failed-danmaku.partial.jsonl": 3,
    "failed-users.partial.jsonl": 1,
    "failed-videos.jsonl": 5,
    "failed-danmaku_parts.jsonl": 1,
}
"""The dead-letter files :func:`fail_a_crawl` leaves, in the order they are applied."""


async def fail_a_crawl(settings: dict[str, Any]) -> None:
    """Store a profile, then leave dead letters as two crawls whose store failed do.

    The first refuses videos, users (a stub of the stored profile) and the
    record of a part whose rows it stored; the second refuses a part's rows
    (whose record is then withheld, not dead-lettered).
    """
    await store_items(settings, [make_user(mid=2), make_video(aid=1, title="旧标题")])
    await store_items(
        settings,
        [
            *(make_video(aid=aid, title=f"视频 {aid} 🎞") for aid in AIDS),
            make_stub(mid=2),
            make_danmaku(8, [81, 82]),
            make_part(8, 2),
        ],
        refused={"videos", "users", "danmaku_parts"},
    )
    await store_items(
        settings, [make_danmaku(7, [71, 72, 73]), make_part(7, 3)], refused={"danmaku"}
    )


def expected_profile() -> Document:
    """The stored profile with the stub merged in: the stub's fields, the profile's others."""
    return with_stub(document(make_user(mid=2)), make_stub(mid=2))


def expected_danmaku() -> dict[int, Document]:
    shared = {"aid": 2, "crawled_at": CRAWLED_AT}
    return {
        dmid: {**danmaku_row(dmid), "cid": dmid // 10, **shared} for dmid in (71, 72, 73, 81, 82)
    }


def assert_all_replayed(stored: Any) -> None:
    """Check every replayed document; *stored(collection)* lists a collection's documents."""
    videos = {doc["aid"]: doc for doc in stored("videos")}
    assert videos == {aid: document(make_video(aid=aid, title=f"视频 {aid} 🎞")) for aid in AIDS}
    [profile] = stored("users")
    assert profile == expected_profile()
    assert profile["level"] == 6 and profile["follower"] == 969_999  # kept from the profile
    assert {doc["dmid"]: doc for doc in stored("danmaku")} == expected_danmaku()
    assert stored("danmaku_parts") == [document(make_part(8, 2))]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """The SQLite file; its dead letters are beside it, where a crawl puts them by default."""
    return tmp_path / "store" / "bilicrawl.db"


def sqlite_settings(store: Path) -> dict[str, Any]:
    return {
        **project_settings(),
        "MONGO_URI": "",
        "SQLITE_PATH": str(store),
        "BILI_STORE_BATCH_SIZE": 2,
        "BILI_STORE_ROWS_BATCH_SIZE": 2,
    }


def sqlite_documents(store: Path) -> Any:
    return lambda collection: stored_documents(store, collection)


def dead_letters(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name.startswith("failed-"))


@pytest.mark.slow
@deferred_f_from_coro_f
async def test_replay_applies_every_file_to_the_store_and_removes_them(store: Path) -> None:
    await fail_a_crawl(sqlite_settings(store))
    assert dead_letters(store.parent) == sorted(FILES)
    assert [doc["title"] for doc in stored_documents(store, "videos")] == ["旧标题"]
    assert stored_documents(store, "danmaku_parts") == []

    result = replay({"SQLITE_PATH": str(store)})

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        *(f"{name}: {count} applied, 0 kept" for name, count in FILES.items()),
        "Total: 10 applied, 0 kept (4 files)",
    ]
    assert_all_replayed(sqlite_documents(store))
    assert dead_letters(store.parent) == []
    assert [path.name for path in store.parent.iterdir() if path.suffix == ".tmp"] == []

    again = replay({"SQLITE_PATH": str(store)})

    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout == f"Nothing to apply: no dead-letter files in {store.parent}\n"


@pytest.mark.slow
@deferred_f_from_coro_f
async def test_bad_lines_are_kept_and_so_are_the_records_of_rows_not_all_applied(
    store: Path, tmp_path: Path
) -> None:
    settings = {**sqlite_settings(store), "BILI_DEAD_LETTER_DIR": str(tmp_path / "dead")}
    await fail_a_crawl(settings)
    directory = tmp_path / "dead"
    videos = directory / "failed-videos.jsonl"
    good = videos.read_bytes().splitlines(keepends=True)
    bad = [b'{"aid": 6, "title": "\xe8\xa7\x86\xe9\xa2\x91 6"\n',  # truncated by a crash
           b'{"title": "no aid"}\n', b"[1, 2]\n", b'{"aid": true}\n']  # fmt: skip
    videos.write_bytes(b"".join([good[0], bad[0], *good[1:3], b"\n", *bad[1:], *good[3:]]))
    rows = directory / "failed-danmaku.partial.jsonl"
    rows.write_bytes(rows.read_bytes() + b"not json\n")
    records = (directory / "failed-danmaku_parts.jsonl").read_bytes()

    result = replay({"SQLITE_PATH": str(store)}, str(directory))

    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout.splitlines() == [
        "failed-danmaku.partial.jsonl:4: kept: not JSON",
        "failed-danmaku.partial.jsonl: 3 applied, 1 kept",
        "failed-users.partial.jsonl: 1 applied, 0 kept",
        "failed-videos.jsonl:2: kept: not JSON",
        "failed-videos.jsonl:6: kept: no aid",
        "failed-videos.jsonl:7: kept: not a JSON object",
        "failed-videos.jsonl:8: kept: its aid is not an integer or a string",
        "failed-videos.jsonl: 5 applied, 4 kept",
        "failed-danmaku_parts.jsonl: 0 applied, 1 kept (not all danmaku were applied)",
        "Total: 9 applied, 6 kept (4 files)",
    ]
    assert videos.read_bytes() == b"".join(bad)
    assert rows.read_bytes() == b"not json\n"
    assert (directory / "failed-danmaku_parts.jsonl").read_bytes() == records
    assert dead_letters(directory) == sorted(
        ["failed-videos.jsonl", "failed-danmaku.partial.jsonl", "failed-danmaku_parts.jsonl"]
    )
    assert {doc["aid"] for doc in stored_documents(store, "videos")} == set(AIDS)
    assert len(stored_documents(store, "danmaku")) == 5
    assert stored_documents(store, "danmaku_parts") == []  # resume fetches the part again


@deferred_f_from_coro_f
async def test_a_store_failing_half_way_keeps_exactly_the_lines_not_applied(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = sqlite_settings(store)
    await fail_a_crawl(settings)
    lines = {name: (store.parent / name).read_bytes().splitlines(keepends=True) for name in FILES}
    write, calls = SQLiteStore.write, []

    def full_disk_on_the_third_batch(self: SQLiteStore, collection: str, upserts: Any) -> None:
        calls.append(collection)
        if len(calls) == 3:  # after the danmaku rows (2 + 1): the users
            raise OSError(28, "No space left on device")
        write(self, collection, upserts)

    monkeypatch.setattr(SQLiteStore, "write", full_disk_on_the_third_batch)
    out = io.StringIO()

    status = replay_dead_letters(Settings(settings), out=out)

    assert status == 1
    assert out.getvalue().splitlines() == [
        "failed-danmaku.partial.jsonl: 3 applied, 0 kept",
        "failed-users.partial.jsonl: 0 applied, 1 kept (the store refused a batch:"
        " [Errno 28] No space left on device)",
        "failed-videos.jsonl: 0 applied, 5 kept (not tried: the store failed)",
        "failed-danmaku_parts.jsonl: 0 applied, 1 kept (not tried: the store failed)",
        "Total: 3 applied, 7 kept (4 files)",
        f"Not all applied: the SQLite database {store} refused a batch of users: [Errno 28]"
        " No space left on device; run this again once the store works",
    ]
    assert dead_letters(store.parent) == sorted(set(FILES) - {"failed-danmaku.partial.jsonl"})
    for name in ("failed-users.partial.jsonl", "failed-videos.jsonl"):
        assert (store.parent / name).read_bytes() == b"".join(lines[name])

    monkeypatch.setattr(SQLiteStore, "write", write)
    assert replay_dead_letters(Settings(settings), out=io.StringIO()) == 0
    assert_all_replayed(sqlite_documents(store))
    assert dead_letters(store.parent) == []


@deferred_f_from_coro_f
async def test_a_batch_refused_after_others_were_applied_keeps_it_and_the_rest(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = sqlite_settings(store)
    await store_items(
        settings, [make_video(aid=aid, title=f"视频 {aid}") for aid in AIDS], refused={"videos"}
    )
    videos = store.parent / "failed-videos.jsonl"
    lines = videos.read_bytes().splitlines(keepends=True)
    write = SQLiteStore.write

    def refusing_aid_3(self: SQLiteStore, collection: str, upserts: Any) -> None:
        if any(upsert.document["aid"] == 3 for upsert in upserts):
            raise OSError(28, "No space left on device")
        write(self, collection, upserts)

    monkeypatch.setattr(SQLiteStore, "write", refusing_aid_3)
    out = io.StringIO()

    assert replay_dead_letters(Settings(settings), out=out) == 1

    assert out.getvalue().splitlines()[0] == (
        "failed-videos.jsonl: 2 applied, 3 kept (the store refused a batch:"
        " [Errno 28] No space left on device)"
    )
    assert videos.read_bytes() == b"".join(lines[2:])
    assert [doc["aid"] for doc in stored_documents(store, "videos")] == [1, 2]


@pytest.mark.slow
def test_an_unknown_collection_is_left_alone(store: Path, tmp_path: Path) -> None:
    directory = tmp_path / "dead"
    directory.mkdir()
    (directory / "failed-comments.jsonl").write_text('{"id": 1}\n', encoding="utf-8")

    result = replay({"SQLITE_PATH": str(store)}, str(directory))

    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout.splitlines() == [
        "failed-comments.jsonl: left alone: bilicrawl has no collection 'comments'",
        "Total: 0 applied, 0 kept (1 file)",
    ]
    assert (directory / "failed-comments.jsonl").read_text(encoding="utf-8") == '{"id": 1}\n'


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_bad_directory_is_one_line_and_exit_status_2(
    store: Path, tmp_path: Path, kind: str
) -> None:
    directory = tmp_path / "dead"
    if kind == "file":
        directory.write_text("", encoding="utf-8")

    result = replay({"SQLITE_PATH": str(store)}, str(directory))

    assert result.returncode == 2
    assert result.stderr == (
        f"scrapy replay-dead-letters: error: DIR {str(directory)!r} is not a directory\n"
    )
    assert result.stdout == ""
    assert not store.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "letters",
    [
        pytest.param(['{"aid": 1}'], id="dead-letters"),
        pytest.param([], id="nothing-to-apply"),
    ],
)  # fmt: skip
def test_a_store_that_cannot_be_opened_is_one_line_and_exit_status_2(
    tmp_path: Path, letters: list[str]
) -> None:
    store = tmp_path / "store.db"
    store.write_bytes(b"SQLite format 3\x00" + b"\x00" * 84 + b"garbage" * 1000)
    videos = tmp_path / "failed-videos.jsonl"
    if letters:
        videos.write_text("".join(f"{line}\n" for line in letters), encoding="utf-8")

    result = replay({"SQLITE_PATH": str(store)}, str(tmp_path))

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"scrapy replay-dead-letters: error: SQLITE_PATH {str(store)!r} ")
    if letters:
        assert videos.read_text(encoding="utf-8") == '{"aid": 1}\n'


@pytest.mark.slow
def test_two_directories_are_a_bad_invocation(store: Path, tmp_path: Path) -> None:
    result = replay({"SQLITE_PATH": str(store)}, str(tmp_path), str(tmp_path))

    assert result.returncode == 2
    assert result.stderr.startswith(
        "scrapy replay-dead-letters: error: give at most one directory"
    )


@deferred_f_from_coro_f
async def test_replay_into_mongodb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    let_mongomock_accept_sort(monkeypatch)
    database_name = f"bilicrawl_test_{uuid.uuid4().hex[:12]}"
    settings = {
        **project_settings(),
        "MONGO_URI": "mongodb://mongomock.invalid:27017",
        "MONGO_DATABASE": database_name,
        "MONGO_CLIENT_CLASS": SharedMongomockClient,
        "BILI_STORE_BATCH_SIZE": 2,
        "BILI_STORE_ROWS_BATCH_SIZE": 2,
        "BILI_DEAD_LETTER_DIR": str(tmp_path / "data"),
    }
    client = SharedMongomockClient(settings["MONGO_URI"])
    database = client[database_name]
    try:
        await fail_a_crawl(settings)
        out = io.StringIO()

        assert replay_dead_letters(Settings(settings), out=out) == 0

        assert out.getvalue().splitlines()[-1] == "Total: 10 applied, 0 kept (4 files)"
        assert_all_replayed(lambda name: list(database[name].find({}, {"_id": False})))
        assert dead_letters(tmp_path / "data") == []
    finally:
        client.drop_database(database_name)
        client.close()


def test_a_mongodb_server_that_does_not_answer_is_a_config_error(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "failed-videos.jsonl").write_text('{"aid": 1}\n', encoding="utf-8")
    settings = Settings(
        {
            **project_settings(),
            "MONGO_URI": "mongodb://127.0.0.1:9",
            "MONGO_CONNECT_TIMEOUT": 0.2,
            "BILI_DEAD_LETTER_DIR": str(directory),
        }
    )

    no_server = r"^MONGO_URI 'mongodb://127.0.0.1:9': no MongoDB server"
    with pytest.raises(ConfigError, match=no_server):
        replay_dead_letters(settings, out=io.StringIO())
    assert (directory / "failed-videos.jsonl").read_text(encoding="utf-8") == '{"aid": 1}\n'


@pytest.mark.slow
def test_after_a_crawl_closed_by_a_locked_store_replay_then_resume_fetches_only_the_rest(
    fakeapi: Any, tmp_path: Path
) -> None:
    fakeapi.reset()
    aids = sample_aids(120, seed=47)
    ids = write_ids_file(tmp_path / "ids.txt", aids)
    settings = {"BILI_THROTTLE_MAX_RPS": "20", "AUTOTHROTTLE_START_DELAY": "0",
                "BILI_STORE_RETRY_DELAYS": "0.2", "SQLITE_BUSY_TIMEOUT": "0.2",
                "BILI_STORE_FLUSH_SECONDS": "1", "BILI_STORE_BATCH_SIZE": "10"}  # fmt: skip
    crawl = Crawl(tmp_path, fakeapi.url, ["-a", f"ids_file={ids}"], **settings)
    wait_for(lambda: len(fetched_aids(fakeapi.log())) >= 30, 60, "30 videos")
    with held_lock(crawl.database):  # another process holds the store until the crawl closed
        assert crawl.wait(timeout=60) == FAILED, crawl.output()[-3000:]
    fetched = fetched_aids(fakeapi.log())
    stored = set(crawl.stored_aids())
    assert dead_letters(crawl.database.parent) == [
        "failed-video_stats.jsonl",
        "failed-videos.jsonl",
    ]
    assert stored < fetched < set(aids)

    result = replay({"SQLITE_PATH": str(crawl.database)})

    assert (result.returncode, result.stderr) == (0, ""), result.stdout
    assert set(crawl.stored_aids()) == fetched
    assert dead_letters(crawl.database.parent) == []

    fakeapi.reset()
    resumed = Crawl(
        tmp_path / "resumed",
        fakeapi.url,
        ["-a", f"ids_file={ids}", "-a", "resume=true"],
        database=crawl.database,
        **settings,
    )
    assert resumed.wait(timeout=60) == OK, resumed.output()[-3000:]
    assert fetched_aids(fakeapi.log()) == set(aids) - fetched
    assert sorted(resumed.stored_aids()) == aids
