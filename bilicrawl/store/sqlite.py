"""The SQLite store: one table per collection in a file, upserted by natural key.

Each collection is a table with its natural key columns, ``doc`` (the document
as compact JSON, what MongoDB would hold without ``_id``) and ``updated_at``;
rows of batch items are tables with a column per row field (:class:`_RowTable`).
A batch is one ``BEGIN IMMEDIATE`` transaction in which partial documents are
merged; WAL mode lets readers read during a crawl. :meth:`SQLiteStore.check`
refuses a corrupt file or another program's before a crawl starts.

Settings: ``SQLITE_BUSY_TIMEOUT`` (the location is ``bilicrawl.store``'s).
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import time
from contextlib import closing
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from bilicrawl.config import ConfigError, get_float
from bilicrawl.store.base import Store, conditions, location_error
from bilicrawl.store.documents import COLLECTIONS, dump_document, key_of, merge_document

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Self

    from scrapy.settings import BaseSettings

    from bilicrawl.store.base import Where
    from bilicrawl.store.documents import Collection, Document, Key, Upsert

_COLUMN_TYPES: dict[object, str] = {int: "INTEGER", str: "TEXT"}


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _key_columns(collection: Collection) -> list[str]:
    key_columns = []
    for field in collection.natural_key:
        column_type = _COLUMN_TYPES.get(collection.fields[field])
        if column_type is None:
            raise TypeError(f"{collection.name}.{field}: a natural key field must be int or str")
        key_columns.append(f"{_quote(field)} {column_type} NOT NULL")
    return key_columns


class _DocumentTable(NamedTuple):
    """A collection stored as key columns and ``doc``, the document as JSON."""

    columns: tuple[str, ...]
    """The table's columns, in order."""
    fields: tuple[str, ...]
    """The document fields that are columns: the natural key."""
    json_fields: frozenset[str]
    """Columns holding JSON: none."""
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
            return [
                every_field(row) if len(row) == count else tuple(map(row.get, fields))
                for row in rows
            ]
        return [
            tuple(
                _json_column(row.get(field)) if field in self.json_fields else row.get(field)
                for field in self.fields
            )
            for row in rows
        ]

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


def _document_table(collection: Collection) -> _DocumentTable:
    """Build the statements of a collection stored as ``doc``."""
    natural_key = collection.natural_key
    key_columns = _key_columns(collection)
    keys = ", ".join(_quote(field) for field in natural_key)
    placeholders = ", ".join("?" for _ in natural_key)
    table = _quote(collection.name)
    # Identifiers come from the item classes, quoted; values are always bound.
    return _DocumentTable(
        columns=(*natural_key, "doc", "updated_at"),
        fields=natural_key,
        json_fields=frozenset(),
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


def _row_table(collection: Collection) -> _RowTable:
    """Build the statements of a collection of batch items' rows."""
    natural_key, field_types = collection.natural_key, collection.fields
    key_columns = _key_columns(collection)
    columns = [
        key_columns[natural_key.index(field)]
        if field in natural_key
        else f"{_quote(field)} {_COLUMN_TYPES.get(field_type, 'TEXT')}"
        for field, field_type in field_types.items()
    ]
    fields = tuple(field_types)
    table, names = _quote(collection.name), ", ".join(map(_quote, fields))
    keys = ", ".join(_quote(field) for field in natural_key)
    if collection.partial_rows:
        updates = [f"{_quote(f)} = coalesce(excluded.{_quote(f)}, {_quote(f)})" for f in fields]
    else:
        updates = [f"{_quote(f)} = excluded.{_quote(f)}" for f in fields]
    return _RowTable(
        columns=(*fields, "updated_at"),
        create=(
            f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)},"
            " updated_at INTEGER NOT NULL)",
            f"CREATE UNIQUE INDEX IF NOT EXISTS {_quote(collection.name + '_key')} ON {table}"
            f" ({keys})",
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
        partial=collection.partial_rows,
    )


TABLES: dict[str, _DocumentTable | _RowTable] = {
    name: _row_table(collection) if collection.rows else _document_table(collection)
    for name, collection in COLLECTIONS.items()
}
"""How each collection is stored."""


class SQLiteStore(Store):
    """Documents in a SQLite file, one table per collection."""

    def __init__(self, path: Path, *, busy_timeout: float, setting: str = "SQLITE_PATH") -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.setting = setting
        """The setting that named the file, in error messages."""
        self._connection: sqlite3.Connection | None = None

    @classmethod
    def from_settings(cls, setting: str, location: str, settings: BaseSettings) -> Self:
        busy_timeout = get_float(settings, "SQLITE_BUSY_TIMEOUT", minimum=0)
        return cls(Path(location), busy_timeout=busy_timeout, setting=setting)

    @property
    def name(self) -> str:
        return f"the SQLite database {self.path}"

    @property
    def dead_letter_dir(self) -> Path:
        return self.path.parent

    def check(self) -> None:
        _prepare_file(self.path, self.setting)
        check_store(self.path, self.setting)

    def open(self) -> None:
        _prepare_file(self.path, self.setting)  # again: the file system may have changed
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
                    _create(connection, self._where(), collection, table)
                if connection.execute("PRAGMA application_id").fetchone() != (APPLICATION_ID,):
                    connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        except sqlite3.Error as error:
            connection.close()
            raise ConfigError(f"{self._where()} cannot be used: {error}") from None
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @property
    def connection(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError(f"{self.name} is not open")
        return self._connection

    def _where(self) -> str:
        return f"{self.setting} {str(self.path)!r}"

    def write(self, collection: str, upserts: list[Upsert]) -> None:
        table = TABLES[collection]
        connection = self.connection
        if isinstance(table, _RowTable):
            # Merged in SQL, in arrival order (the sort is stable); in key order, each
            # page of the key index is written once per batch, not once per row.
            values = table.values([upsert.document for upsert in upserts])
            values.sort(key=itemgetter(*table.key_positions))
            with connection:
                connection.executemany(table.upsert, values)
            return
        natural_key = COLLECTIONS[collection].natural_key
        updated_at = int(time.time())
        with connection:  # one transaction per batch: committed, or rolled back
            # IMMEDIATE takes the write lock now: no other writer can change a
            # document between reading it and writing a partial merged into it.
            connection.execute("BEGIN IMMEDIATE")
            rows = []
            for upsert in upserts:
                document = upsert.document
                key = key_of(document, natural_key)
                if upsert.partial:
                    document = merge_document(self._stored(table, key), document)
                rows.append((*key, dump_document(document), updated_at))
            connection.executemany(table.upsert, rows)

    def _stored(self, table: _DocumentTable, key: Key) -> Document:
        """Return the document stored for a key, or an empty one."""
        row = self.connection.execute(table.select, key).fetchone()
        return json.loads(row[0]) if row else {}

    def keys(self, collection: str, where: Where | None = None) -> set[Key]:
        columns = ", ".join(map(_quote, COLLECTIONS[collection].natural_key))
        clause, values = _sql_where(TABLES[collection], where)
        query = f"SELECT {columns} FROM {_quote(collection)}{clause}"  # noqa: S608 (our names)
        return set(self.connection.execute(query, values))

    def documents(self, collection: str, where: Where | None = None) -> Iterator[Document]:
        table = TABLES[collection]
        clause, values = _sql_where(table, where)
        order = ", ".join(map(_quote, COLLECTIONS[collection].natural_key))
        if isinstance(table, _RowTable):
            names = ", ".join(map(_quote, table.fields))
            query = f"SELECT {names} FROM {_quote(collection)}{clause} ORDER BY {order}"  # noqa: S608
            for row in self.connection.execute(query, values):
                yield table.document(row)
            return
        query = f"SELECT doc FROM {_quote(collection)}{clause} ORDER BY {order}"  # noqa: S608
        for (doc,) in self.connection.execute(query, values):
            yield json.loads(doc)

    def count(self, collection: str, where: Where | None = None) -> int:
        clause, values = _sql_where(TABLES[collection], where)
        query = f"SELECT count(*) FROM {_quote(collection)}{clause}"  # noqa: S608
        (count,) = self.connection.execute(query, values).fetchone()
        return int(count)


def _sql_where(table: _DocumentTable | _RowTable, where: Where | None) -> tuple[str, list[Any]]:
    """Return the ``WHERE`` clause of a filter on *table* (or ``""``) and its bound values.

    Key and row columns are compared as they are (key columns use the index);
    other fields through ``json_extract``, which gives NULL for a JSON null and a
    missing field alike.
    """
    tests, values = [], []
    for path, operator, value in conditions(where):
        if path[0] in table.fields and (len(path) == 1 or path[0] in table.json_fields):
            column, inner = _quote(path[0]), path[1:]
        else:
            column, inner = "doc", path
        if inner:
            tests.append(f"json_extract({column}, ?) {operator}")
            values.append("$" + "".join(f".{_quote(step)}" for step in inner))
        else:
            tests.append(f"{column} {operator}")
        if value is not None:
            tests[-1] += " ?"
            values.append(value)
    return (" WHERE " + " AND ".join(tests) if tests else ""), values


def _prepare_file(path: Path, setting: str) -> None:
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
        raise location_error(setting, path, not_a_directory) from None
    except OSError as error:
        raise location_error(setting, path, error) from None


APPLICATION_ID = 0x42494C49
"""``PRAGMA application_id`` of a bilicrawl store ("BILI"): another program's file is refused."""


def check_store(path: Path, setting: str) -> None:
    """Raise ConfigError unless *path* is an empty file or a sound bilicrawl store.

    ``quick_check`` reads every page (seconds for gigabytes): a corrupt file
    found at the first write would already have cost the crawl's requests.
    """
    where = f"{setting} {str(path)!r}"
    problems, application_id, tables = ["ok"], APPLICATION_ID, set()
    try:
        with closing(sqlite3.connect(path)) as connection:
            problems = [row[0] for row in connection.execute("PRAGMA quick_check(5)")]
            (application_id,) = connection.execute("PRAGMA application_id").fetchone()
            tables = {
                name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
    except sqlite3.DatabaseError as error:
        if getattr(error, "sqlite_errorname", "") == "SQLITE_CORRUPT":
            problems = [str(error)]
        else:
            raise ConfigError(f"{where} is not a usable SQLite database: {error}") from None
    if problems != ["ok"]:
        raise ConfigError(
            f"{where} is corrupt ({'; '.join(problems)}): restore it from a backup or use a"
            f" new {setting}"
        )
    if tables and application_id != APPLICATION_ID and tables.isdisjoint(TABLES):
        raise ConfigError(f"{where} is not a bilicrawl store: its tables are {sorted(tables)}")


def _create(
    connection: sqlite3.Connection, where: str, collection: str, table: _DocumentTable | _RowTable
) -> None:
    """Create a collection's table, or raise ConfigError if it exists with other columns."""
    query = "SELECT name FROM pragma_table_info(?) ORDER BY cid"
    found = tuple(name for (name,) in connection.execute(query, (collection,)))
    if found and found != table.columns:
        raise ConfigError(
            f"{where}: the table {collection!r} has the columns {found}, not {table.columns}:"
            " it was written by another version of bilicrawl; use a new store"
        )
    for statement in (table.create,) if isinstance(table, _DocumentTable) else table.create:
        connection.execute(statement)
