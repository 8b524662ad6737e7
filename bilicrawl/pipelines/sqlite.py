"""Store items in a SQLite file, upserted by natural key: the store used without MongoDB.

Each collection is a table with its natural key columns, ``doc`` (the document
as compact JSON, what MongoDB would hold without ``_id``) and ``updated_at``;
rows of batch items are tables with a column per row field (:class:`_RowTable`).
A batch is one ``BEGIN IMMEDIATE`` transaction in which partial documents are
merged; WAL mode lets :func:`iter_documents` and :func:`count_documents` read
during a crawl. The file is checked at start (:func:`check_store`). Buffering,
retries, dead letters and stats are :mod:`bilicrawl.pipelines.batching`'s.

Settings: ``MONGO_URI`` (set, it disables this pipeline), ``SQLITE_PATH``,
``SQLITE_BATCH_SIZE``, ``SQLITE_BUSY_TIMEOUT``, ``BILI_DEAD_LETTER_DIR``,
``BILI_STORE_ROWS_BATCH_SIZE``, ``BILI_STORE_FLUSH_SECONDS``,
``BILI_STORE_RETRY_DELAYS``.
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
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from scrapy.exceptions import NotConfigured

from bilicrawl.config import ConfigError, get_float
from bilicrawl.pipelines.batching import (
    ROUTES,
    BatchingStorePipeline,
    Document,
    Route,
    Upsert,
    batching_settings,
    dead_letter_dir,
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


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _key_columns(item_class: type, natural_key: tuple[str, ...],
                 field_types: dict[str, Any]) -> list[str]:  # fmt: skip
    key_columns = []
    for field in natural_key:
        column_type = _COLUMN_TYPES.get(field_types[field])
        if column_type is None:
            raise TypeError(
                f"{item_class.__name__}.{field}: a natural key field must be int or str"
            )
        key_columns.append(f"{_quote(field)} {column_type} NOT NULL")
    return key_columns


class _DocumentTable(NamedTuple):
    """A collection stored as key columns and ``doc``, the document as JSON."""

    columns: tuple[str, ...]
    """The table's columns, in order."""
    create: str
    upsert: str
    select: str
    """The ``doc`` stored for a natural key."""


class _RowTable(NamedTuple):
    """A collection of batch items' rows, stored as one column per row field.

    Columns, not JSON: a row's values are bound as they are, and the table is
    read and queried like any other (docs/danmaku.md). Rows are keyed by a unique
    index rather than by the table's own order, so that rows in random key order
    append to the table and only the small index is written out of order.
    """

    columns: tuple[str, ...]
    create: tuple[str, ...]
    """The table and its unique index."""
    upsert: str
    """Store a row: a full row replaces the stored one; a partial row's NULL keeps
    the stored value (``coalesce``), as a field its source lacks must."""
    fields: tuple[str, ...]
    """The row fields, as the first columns."""
    json_fields: frozenset[str]
    """Fields that are neither int nor str (objects), stored as JSON."""
    key_positions: tuple[int, ...]
    partial: bool

    def values(self, rows: list[Document]) -> list[tuple[Any, ...]]:
        """Return the rows' field values, in column order (None for a field a row lacks)."""
        if not self.json_fields:
            fields, every_field, count = self.fields, itemgetter(*self.fields), len(self.fields)
            # Rows hold only row fields, so a row of full length has each: itemgetter
            # is several times faster than a get per field.
            return [every_field(row) if len(row) == count else tuple(map(row.get, fields))
                    for row in rows]  # fmt: skip
        return [
            tuple(_json_column(row.get(field)) if field in self.json_fields else row.get(field)
                  for field in self.fields)
            for row in rows
        ]  # fmt: skip

    def document(self, values: tuple[Any, ...]) -> Document:
        """Return the document of a stored row: a partial row's NULL is a field it lacks."""
        document = dict(zip(self.fields, values, strict=False))
        for field in self.json_fields:
            if document[field] is not None:
                document[field] = json.loads(document[field])
        if self.partial:
            return {field: value for field, value in document.items() if value is not None}
        return document


def _json_column(value: Any) -> str | None:
    return None if value is None else dump_document(value)


def _document_table(item_class: type, route: Route) -> _DocumentTable:
    """Build the statements of a collection stored as ``doc``."""
    collection, natural_key = route.collection, route.natural_key
    key_columns = _key_columns(item_class, natural_key, typing.get_type_hints(item_class))
    keys = ", ".join(_quote(field) for field in natural_key)
    placeholders = ", ".join("?" for _ in natural_key)
    table = _quote(collection)
    # Identifiers come from the item classes, quoted; values are always bound.
    return _DocumentTable(
        columns=(*natural_key, "doc", "updated_at"),
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
    )


def _row_table(item_class: type, route: Route) -> _RowTable:
    """Build the statements of a collection of batch items' rows."""
    collection, natural_key = route.collection, route.natural_key
    field_types: dict[str, Any] = item_class.row_fields  # type: ignore[attr-defined]
    key_columns = _key_columns(item_class, natural_key, field_types)
    columns = [
        key_columns[natural_key.index(field)] if field in natural_key
        else f"{_quote(field)} {_COLUMN_TYPES.get(field_type, 'TEXT')}"
        for field, field_type in field_types.items()
    ]  # fmt: skip
    fields = tuple(field_types)
    table, names = _quote(collection), ", ".join(map(_quote, fields))
    keys = ", ".join(_quote(field) for field in natural_key)
    if route.partial:
        updates = [f"{_quote(f)} = coalesce(excluded.{_quote(f)}, {_quote(f)})" for f in fields]
    else:
        updates = [f"{_quote(f)} = excluded.{_quote(f)}" for f in fields]
    return _RowTable(
        columns=(*fields, "updated_at"),
        create=(
            f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)},"
            " updated_at INTEGER NOT NULL)",
            f"CREATE UNIQUE INDEX IF NOT EXISTS {_quote(collection + '_key')} ON {table} ({keys})",
        ),
        upsert=(
            f"INSERT INTO {table} ({names}, updated_at)"  # noqa: S608 (quoted names; values bound)
            f" VALUES ({', '.join('?' for _ in fields)}, CAST(strftime('%s', 'now') AS INTEGER))"
            f" ON CONFLICT ({keys}) DO UPDATE SET"
            f" {', '.join(updates)}, updated_at = excluded.updated_at"
        ),
        fields=fields,
        json_fields=frozenset(f for f, t in field_types.items() if t not in _COLUMN_TYPES),
        key_positions=tuple(fields.index(field) for field in natural_key),
        partial=route.partial,
    )


TABLES: dict[str, _DocumentTable | _RowTable] = {
    route.collection: (
        _document_table(item_class, route) if route.rows_field is None
        else _row_table(item_class, route)
    )
    for item_class, route in ROUTES.items()
}  # fmt: skip
"""How each collection is stored."""


class SQLitePipeline(BatchingStorePipeline):
    """Upsert documents into a SQLite file, one table per item class."""

    def __init__(
        self,
        crawler: Crawler,
        *,
        path: Path,
        busy_timeout: float,
        **batching: Any,
    ) -> None:
        super().__init__(crawler, **batching)
        self.path = path
        self.busy_timeout = busy_timeout
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
        batching = batching_settings(
            settings, batch_size_setting="SQLITE_BATCH_SIZE",
            dead_letters=dead_letter_dir(settings, path.parent),
        )  # fmt: skip
        busy_timeout = get_float(settings, "SQLITE_BUSY_TIMEOUT", minimum=0)
        # Last, as it creates the file: the cheapest reliable check there is.
        _prepare_file(path)
        check_store(path)
        return cls(crawler, path=path, busy_timeout=busy_timeout, **batching)

    @property
    def name(self) -> str:
        return f"the SQLite database {self.path}"

    def _connect(self) -> None:
        _prepare_file(self.path)  # again: the file system may have changed since the start
        connection = sqlite3.connect(self.path, timeout=self.busy_timeout)
        try:
            # 16 KiB pages (only a new file takes them): a sixth cheaper to write rows.
            connection.execute("PRAGMA page_size=16384")
            connection.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL loses no committed batch on a process crash.
            connection.execute("PRAGMA synchronous=NORMAL")
            # Up to 64 MiB of pages: the unique index of a large row table stays in memory.
            connection.execute("PRAGMA cache_size=-65536")
            with connection:
                for collection, table in TABLES.items():
                    _create(connection, self.path, collection, table)
                if connection.execute("PRAGMA application_id").fetchone() != (APPLICATION_ID,):
                    connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
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
        table = TABLES[collection]
        if isinstance(table, _RowTable):
            # Merged in SQL, in arrival order (the sort is stable); in key order, each
            # page of the key index is written once per batch, not once per row.
            values = table.values([upsert.document for upsert in upserts])
            values.sort(key=itemgetter(*table.key_positions))
            with self._connection:
                self._connection.executemany(table.upsert, values)
            return
        natural_key = self.collections[collection]
        updated_at = int(time.time())
        with self._connection:  # one transaction per batch: committed, or rolled back
            # IMMEDIATE takes the write lock now: no other writer can change a
            # document between reading it and writing a partial merged into it.
            self._connection.execute("BEGIN IMMEDIATE")
            rows = []
            for upsert in upserts:
                document = upsert.document
                key = key_of(document, natural_key)
                if upsert.partial:
                    document = merge_document(self._stored(table, key), document)
                rows.append((*key, dump_document(document), updated_at))
            self._connection.executemany(table.upsert, rows)

    def _stored(self, table: _DocumentTable, key: tuple[Any, ...]) -> Document:
        """Return the document stored for a key, or an empty one."""
        row = self._connection.execute(table.select, key).fetchone()
        return json.loads(row[0]) if row else {}

    def _read_keys(self, collection: str, having: str | None) -> set[tuple[Any, ...]]:
        columns = ", ".join(map(_quote, self.collections[collection]))
        query = f"SELECT {columns} FROM {_quote(collection)}"  # noqa: S608 (our own names)
        if having is None:
            return set(self._connection.execute(query))
        if isinstance(TABLES[collection], _RowTable):
            return set(self._connection.execute(f"{query} WHERE {_quote(having)} IS NOT NULL"))
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


APPLICATION_ID = 0x42494C49
"""``PRAGMA application_id`` of a bilicrawl store ("BILI"): another program's file is refused."""


def check_store(path: Path) -> None:
    """Raise ConfigError unless *path* is an empty file or a sound bilicrawl store.

    ``quick_check`` reads every page (seconds for gigabytes): a corrupt file
    found at the first write would already have cost the crawl's requests.
    """
    where = f"SQLITE_PATH {str(path)!r}"
    problems, application_id, tables = ["ok"], APPLICATION_ID, set()
    try:
        with closing(sqlite3.connect(path)) as connection:
            problems = [row[0] for row in connection.execute("PRAGMA quick_check(5)")]
            (application_id,) = connection.execute("PRAGMA application_id").fetchone()
            tables = {name for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}  # fmt: skip
    except sqlite3.DatabaseError as error:
        if getattr(error, "sqlite_errorname", "") == "SQLITE_CORRUPT":
            problems = [str(error)]
        else:
            raise ConfigError(f"{where} is not a usable SQLite database: {error}") from None
    if problems != ["ok"]:
        raise ConfigError(
            f"{where} is corrupt ({'; '.join(problems)}): restore it from a backup or use a"
            " new SQLITE_PATH"
        )
    if tables and application_id != APPLICATION_ID and tables.isdisjoint(TABLES):
        raise ConfigError(f"{where} is not a bilicrawl store: its tables are {sorted(tables)}")


def _create(connection: sqlite3.Connection, path: Path, collection: str,
            table: _DocumentTable | _RowTable) -> None:  # fmt: skip
    """Create a collection's table, or raise ConfigError if it exists with other columns."""
    query = "SELECT name FROM pragma_table_info(?) ORDER BY cid"
    found = tuple(name for (name,) in connection.execute(query, (collection,)))
    if found and found != table.columns:
        raise ConfigError(
            f"SQLITE_PATH {str(path)!r}: the table {collection!r} has the"
            f" columns {found}, not {table.columns}: it was written by another version of"
            " bilicrawl; use a new SQLITE_PATH"
        )
    for statement in (table.create,) if isinstance(table, _DocumentTable) else table.create:
        connection.execute(statement)


def _connect_read_only(path: str | Path) -> sqlite3.Connection:
    return sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)


def iter_documents(path: str | Path, collection: str) -> Iterator[Document]:
    """Yield the documents of a collection stored at ``path``, in rowid order.

    That is key order for a single integer key, first-insertion order otherwise.
    """
    table = TABLES[collection]
    with closing(_connect_read_only(path)) as connection:
        if isinstance(table, _RowTable):
            names = ", ".join(map(_quote, table.fields))
            query = f"SELECT {names} FROM {_quote(collection)} ORDER BY rowid"  # noqa: S608
            for values in connection.execute(query):
                yield table.document(values)
            return
        query = f"SELECT doc FROM {_quote(collection)} ORDER BY rowid"  # noqa: S608
        for (doc,) in connection.execute(query):
            yield json.loads(doc)


def count_documents(path: str | Path, collection: str) -> int:
    """Return how many documents a collection stored at ``path`` holds."""
    with closing(_connect_read_only(path)) as connection:
        query = f"SELECT count(*) FROM {_quote(collection)}"  # noqa: S608
        (count,) = connection.execute(query).fetchone()
        return int(count)
