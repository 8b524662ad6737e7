"""Store items in a SQLite file, upserted by natural key: the store used without MongoDB.

Each collection is a table of the same name, created at open for every class in
``ITEM_CLASSES``: one column per natural key field (``INTEGER`` or ``TEXT``, from
the field's type) forming the primary key, ``doc`` holding the document as
compact JSON (``ItemAdapter(item).asdict()``, exactly what MongoDB would hold
without ``_id``) and ``updated_at``, the Unix time of the last write. Integers in
``doc`` round-trip exactly, whatever their size. A batch is one ``BEGIN IMMEDIATE``
transaction: a partial document is merged (:func:`~bilicrawl.pipelines.batching.merge_document`)
into the ``doc`` read in it, so no other writer comes between the read and the
write. The database uses WAL mode, so :func:`iter_documents` and
:func:`count_documents` can read while a crawl writes. Buffering, retries and
dead letters are described in :mod:`bilicrawl.pipelines.batching`.

Settings:

- ``MONGO_URI`` (``""``): when set, MongoDB stores items and this pipeline is
  disabled (``NotConfigured``).
- ``SQLITE_PATH`` (``"data/bilicrawl.db"``): the database file, created with its
  missing parent directories when the crawl starts. A path that cannot be
  written is a one-line :class:`~bilicrawl.config.ConfigError` naming the path
  and the OS reason, raised then, before anything is fetched.
- ``SQLITE_BATCH_SIZE`` (``500``): documents per collection per transaction.
- ``SQLITE_DEAD_LETTER_DIR`` (``""``): where batches that could not be written are
  appended, as ``failed-<collection>.jsonl`` (``.partial.jsonl`` for partial
  documents); empty means next to ``SQLITE_PATH``.
- ``BILI_STORE_FLUSH_SECONDS`` (``5.0``): buffered documents are written at least
  this often.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
import time
import typing
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from scrapy.exceptions import NotConfigured

from bilicrawl.config import ConfigError, get_float, get_int
from bilicrawl.pipelines.batching import (
    ROUTES,
    BatchingStorePipeline,
    Document,
    Upsert,
    check_directory,
    dump_document,
    key_of,
    location_error,
    merge_document,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Self

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

_COLUMN_TYPES: dict[object, str] = {int: "INTEGER", str: "TEXT"}


class _Statements(NamedTuple):
    create: str
    upsert: str
    select: str
    """The ``doc`` stored for a natural key."""
    patch: str
    """The upsert of a row of a batch item, merged in SQL (``json_patch``)."""


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _statements(item_class: type) -> _Statements:
    """Build the CREATE TABLE, upsert and select statements of an item class's table."""
    collection, natural_key = ROUTES[item_class].collection, ROUTES[item_class].natural_key
    field_types = typing.get_type_hints(item_class)
    if ROUTES[item_class].rows_field is not None:
        field_types = item_class.row_key_types  # type: ignore[attr-defined] (keys of the rows)
    key_columns = []
    for field in natural_key:
        column_type = _COLUMN_TYPES.get(field_types[field])
        if column_type is None:
            raise TypeError(
                f"{item_class.__name__}.{field}: a natural key field must be int or str"
            )
        key_columns.append(f"{_quote(field)} {column_type} NOT NULL")
    keys = ", ".join(_quote(field) for field in natural_key)
    placeholders = ", ".join("?" for _ in natural_key)
    table = _quote(collection)
    # Identifiers come from the item classes, quoted; values are always bound.
    return _Statements(
        create=(
            f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(key_columns)},"
            f" doc TEXT NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY ({keys}))"
        ),
        upsert=(
            f"INSERT INTO {table} ({keys}, doc, updated_at) VALUES ({placeholders}, ?, ?)"  # noqa: S608
            f" ON CONFLICT ({keys}) DO UPDATE SET"
            " doc = excluded.doc, updated_at = excluded.updated_at"
        ),
        select=(
            f"SELECT doc FROM {table} WHERE "  # noqa: S608 (quoted names; values bound)
            + " AND ".join(f"{_quote(field)} = ?" for field in natural_key)
        ),
        patch=(
            f"INSERT INTO {table} ({keys}, doc, updated_at) VALUES ({placeholders}, ?, ?)"  # noqa: S608
            f" ON CONFLICT ({keys}) DO UPDATE SET"
            " doc = json_patch(doc, excluded.doc), updated_at = excluded.updated_at"
        ),
    )


class SQLitePipeline(BatchingStorePipeline):
    """Upsert documents into a SQLite file, one table per item class."""

    def __init__(
        self,
        crawler: Crawler,
        *,
        path: Path,
        batch_size: int,
        flush_seconds: float,
        dead_letter_dir: Path,
    ) -> None:
        super().__init__(
            crawler,
            batch_size=batch_size,
            flush_seconds=flush_seconds,
            dead_letter_dir=dead_letter_dir,
        )
        self.path = path
        self._statements = {
            route.collection: _statements(item_class) for item_class, route in ROUTES.items()
        }
        # Set by _connect() in open_spider(); used only on the worker thread.
        self._connection: sqlite3.Connection

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if settings.get("MONGO_URI"):
            # MongoDB stores the items: no reason, so Scrapy logs no warning.
            raise NotConfigured
        if not settings.get("SQLITE_PATH"):
            raise ConfigError("SQLITE_PATH is not set")
        path = Path(settings.get("SQLITE_PATH"))
        batch_size = get_int(settings, "SQLITE_BATCH_SIZE", minimum=1)
        flush_seconds = get_float(settings, "BILI_STORE_FLUSH_SECONDS", positive=True)
        dead_letter_dir = settings.get("SQLITE_DEAD_LETTER_DIR")
        if dead_letter_dir:
            check_directory("SQLITE_DEAD_LETTER_DIR", Path(dead_letter_dir))
        # Last, as it creates the file: the cheapest reliable check there is.
        _prepare_file(path)
        return cls(
            crawler,
            path=path,
            batch_size=batch_size,
            flush_seconds=flush_seconds,
            dead_letter_dir=Path(dead_letter_dir or path.parent),
        )

    def _connect(self) -> None:
        _prepare_file(self.path)  # again: the file system may have changed since the start
        connection = sqlite3.connect(self.path)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL loses no committed batch on a process crash.
            connection.execute("PRAGMA synchronous=NORMAL")
            with connection:
                for statements in self._statements.values():
                    connection.execute(statements.create)
        except sqlite3.Error as error:
            connection.close()
            raise ConfigError(f"SQLITE_PATH {str(self.path)!r} cannot be used: {error}") from None
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        logger.info(
            "Storing items in SQLite database %(path)s",
            {"path": self.path},
            extra={"spider": self.crawler.spider},
        )

    def _write(self, collection: str, upserts: list[Upsert]) -> None:
        natural_key = self.collections[collection]
        statements = self._statements[collection]
        updated_at = int(time.time())
        if collection in self.row_collections:
            # Partial rows of batch items (danmaku) are flat and leave out what their
            # source lacks (never null, which json_patch would take as "delete"), so
            # SQLite merges them itself: a read-merge-write in Python costs per row.
            rows = [
                (*key_of(upsert.document, natural_key), dump_document(upsert.document), updated_at)
                for upsert in upserts
            ]
            partial = any(upsert.partial for upsert in upserts)
            with self._connection:
                self._connection.executemany(
                    statements.patch if partial else statements.upsert, rows
                )
            return
        with self._connection:  # one transaction per batch: committed, or rolled back
            # IMMEDIATE takes the write lock now: no other writer can change a
            # document between reading it and writing a partial merged into it.
            self._connection.execute("BEGIN IMMEDIATE")
            rows = []
            for upsert in upserts:
                document = upsert.document
                key = key_of(document, natural_key)
                if upsert.partial:
                    document = merge_document(self._stored(statements, key), document)
                rows.append((*key, dump_document(document), updated_at))
            self._connection.executemany(statements.upsert, rows)

    def _stored(self, statements: _Statements, key: tuple[Any, ...]) -> Document:
        """Return the document stored for a key, or an empty one."""
        row = self._connection.execute(statements.select, key).fetchone()
        return json.loads(row[0]) if row else {}

    def _read_keys(self, collection: str, having: str | None) -> set[tuple[Any, ...]]:
        columns = ", ".join(map(_quote, self.collections[collection]))
        query = f"SELECT {columns} FROM {_quote(collection)}"  # noqa: S608 (our own names)
        if having is None:
            return set(self._connection.execute(query))
        # json_extract gives NULL both for a JSON null and for a missing field.
        query += " WHERE json_extract(doc, ?) IS NOT NULL"
        return set(self._connection.execute(query, (f"$.{having}",)))

    def _disconnect(self) -> None:
        self._connection.close()


def _prepare_file(path: Path) -> None:
    """Create the database file and its directories, or raise ConfigError with the OS reason.

    sqlite3 says only "unable to open database file"; opening the file first
    names the cause (not a directory, read-only file system, permission denied).
    An empty file is a valid empty database.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.open("ab").close()
    except FileExistsError as error:
        # mkdir's word for "a parent is a file"
        not_a_directory = OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), error.filename)
        raise location_error("SQLITE_PATH", path, not_a_directory) from None
    except OSError as error:
        raise location_error("SQLITE_PATH", path, error) from None


def _connect_read_only(path: str | Path) -> sqlite3.Connection:
    return sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)


def iter_documents(path: str | Path, collection: str) -> Iterator[Document]:
    """Yield the documents of a collection stored at ``path``, in rowid order.

    That is key order for a single integer key, first-insertion order otherwise.
    """
    with closing(_connect_read_only(path)) as connection:
        query = f"SELECT doc FROM {_quote(collection)} ORDER BY rowid"  # noqa: S608
        for (doc,) in connection.execute(query):
            yield json.loads(doc)


def count_documents(path: str | Path, collection: str) -> int:
    """Return how many documents a collection stored at ``path`` holds."""
    with closing(_connect_read_only(path)) as connection:
        query = f"SELECT count(*) FROM {_quote(collection)}"  # noqa: S608
        (count,) = connection.execute(query).fetchone()
        return int(count)
