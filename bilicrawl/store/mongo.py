"""The MongoDB store: one collection per item collection, upserted in ordered bulk writes.

Each collection gets a unique index on its natural key; a batch is one ordered
``bulk_write`` of ``ReplaceOne`` (full documents) and ``UpdateOne`` ``$set`` by
dotted path (partial ones), both upserts. The URI is parsed when the store is
built and the server must answer a ``ping`` at open, else a one-line
:class:`~bilicrawl.config.ConfigError` that never shows the password.

Settings: ``MONGO_DATABASE``, ``MONGO_CLIENT_CLASS``, ``MONGO_CONNECT_TIMEOUT``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.utils.misc import load_object

from bilicrawl.config import ConfigError, get_float
from bilicrawl.store.base import Store, conditions
from bilicrawl.store.documents import COLLECTIONS, combined, key_of

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Self

    from pymongo import MongoClient
    from pymongo.database import Database
    from pymongo.errors import PyMongoError
    from scrapy.settings import BaseSettings

    from bilicrawl.store.base import Where
    from bilicrawl.store.documents import Document, Key, Upsert


def mask_uri(uri: str) -> str:
    """Return *uri* with the password in its user information replaced by ``***``.

    Works on strings pymongo rejects too, which are shown in error messages.
    """
    scheme, separator, rest = uri.partition("://")
    if not separator:
        scheme, rest = "", uri
    if "@" not in rest:
        return uri
    userinfo, _, hosts = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{separator}{user}{':***' if colon else ''}@{hosts}"


def _host_list(nodelist: list[tuple[str, int | None]]) -> str:
    return ", ".join(
        host if port is None else f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        for host, port in nodelist
    )


# pymongo appends its socket timeouts to every connection error; they are not the cause.
_TIMEOUTS_NOTE = re.compile(r" \(configured timeouts:[^)]*\)")


def set_paths(patch: Document, prefix: str = "") -> Document:
    """Flatten a partial document to the ``$set`` that merges it as ``merge_document`` does.

    Nested objects become dotted paths down to their other values, so the
    stored siblings of a nested field are kept. Two known limits, which no item
    schema reaches: an empty object sets nothing (``merge_document`` stores
    ``{}`` where the field was absent), and MongoDB refuses a path under a
    stored value that is not an object (``a.b`` where ``a`` is null), which
    ``merge_document`` replaces.
    """
    paths: Document = {}
    for field, value in patch.items():
        if isinstance(value, dict):
            paths.update(set_paths(value, f"{prefix}{field}."))
        else:
            paths[prefix + field if prefix else field] = value  # danmaku: millions of fields
    return paths


class MongoStore(Store):
    """Documents in a MongoDB database, one collection per item class's ``collection``."""

    def __init__(
        self,
        uri: str,
        *,
        hosts: str,
        database_name: str,
        client_class: type,
        connect_timeout: float,
        setting: str = "MONGO_URI",
    ) -> None:
        self.uri = uri
        self.hosts = hosts
        self.database_name = database_name
        self.client_class = client_class
        self.connect_timeout = connect_timeout
        self.setting = setting
        """The setting that named the server, in error messages."""
        self._client: MongoClient[Document] | None = None
        self._database: Database[Document] | None = None

    @classmethod
    def from_settings(cls, setting: str, location: str, settings: BaseSettings) -> Self:
        """Parse the URI now (a ``mongodb+srv://`` one is resolved in DNS, as the client
        would); the database is the URI's under ``BILI_STORE_URI``, else ``MONGO_DATABASE``."""
        # pymongo is imported only here and below, for crawls that use it: its import
        # costs about 0.1 s of every SQLite crawl's start-up otherwise.
        from pymongo.errors import ConfigurationError, InvalidURI  # noqa: PLC0415
        from pymongo.uri_parser import parse_uri  # noqa: PLC0415

        connect_timeout = get_float(settings, "MONGO_CONNECT_TIMEOUT", positive=True)
        where = f"{setting} {mask_uri(location)!r}"
        try:
            parsed = parse_uri(location, connect_timeout=connect_timeout)
        except (InvalidURI, ValueError) as error:
            raise ConfigError(f"{where} is not a MongoDB connection string: {error}") from None
        except ConfigurationError as error:
            raise ConfigError(f"{where} cannot be used: {error}") from None
        database = parsed["database"] if setting == "BILI_STORE_URI" else None
        return cls(
            location,
            hosts=_host_list(parsed["nodelist"]),
            database_name=database or settings.get("MONGO_DATABASE"),
            client_class=load_object(settings.get("MONGO_CLIENT_CLASS")),
            connect_timeout=connect_timeout,
            setting=setting,
        )

    @property
    def name(self) -> str:
        return f"MongoDB database {self.database_name} at {self.hosts}"

    @property
    def dead_letter_dir(self) -> Path:
        return Path("data")

    def open(self) -> None:
        from pymongo import ASCENDING  # noqa: PLC0415 (see from_settings)
        from pymongo.errors import PyMongoError  # noqa: PLC0415

        client = self.client_class(
            self.uri, serverSelectionTimeoutMS=round(self.connect_timeout * 1000)
        )
        try:
            # The client connects lazily: ping, so a wrong URI fails now, in seconds.
            client.admin.command("ping")
            database = client[self.database_name]
            for name, collection in COLLECTIONS.items():
                database[name].create_index(
                    [(field, ASCENDING) for field in collection.natural_key], unique=True
                )
        except PyMongoError as error:
            message = self._open_error(client, error)
            client.close()
            raise ConfigError(message) from None
        except BaseException:
            client.close()
            raise
        self._client, self._database = client, database

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = self._database = None

    @property
    def database(self) -> Database[Document]:
        if self._database is None:
            raise RuntimeError(f"{self.name} is not open")
        return self._database

    def _open_error(self, client: MongoClient[Document], error: PyMongoError) -> str:
        """Describe why the server could not be used, in one line without the password."""
        from pymongo.errors import ServerSelectionTimeoutError  # noqa: PLC0415

        where = f"{self.setting} {mask_uri(self.uri)!r}"
        if isinstance(error, ServerSelectionTimeoutError):
            causes = [
                _TIMEOUTS_NOTE.sub("", str(server.error))
                for server in client.topology_description.server_descriptions().values()
                if server.error is not None
            ]
            return (
                f"{where}: no MongoDB server at {self.hosts} answered within"
                f" {self.connect_timeout:g}s (MONGO_CONNECT_TIMEOUT)"
                + (f": {'; '.join(causes)}" if causes else "")
            )
        return f"{where}: MongoDB at {self.hosts} cannot be used: {error}"

    def write(self, collection: str, upserts: list[Upsert]) -> None:
        from pymongo import ReplaceOne, UpdateOne  # noqa: PLC0415 (see from_settings)

        natural_key = COLLECTIONS[collection].natural_key
        # Rows of batch items (danmaku) come as they arrived, a key possibly more than
        # once: merged here, the batch has distinct keys, and unordered the server
        # applies them in parallel.
        ordered = not COLLECTIONS[collection].rows
        if not ordered:
            upserts = combined(upserts, natural_key)
        requests: list[ReplaceOne[Document] | UpdateOne] = []
        for document, partial in upserts:
            key = {field: document[field] for field in natural_key}
            if not partial:
                requests.append(ReplaceOne(key, document, upsert=True))
                continue
            fields = set_paths(document)
            for field in natural_key:  # int or str values: set as they are, never as paths
                del fields[field]
            # MongoDB before 5.0 refuses an empty $set; $setOnInsert of the key is a no-op.
            update = {"$set": fields} if fields else {"$setOnInsert": key}
            requests.append(UpdateOne(key, update, upsert=True))
        self.database[collection].bulk_write(requests, ordered=ordered)

    def keys(self, collection: str, where: Where | None = None) -> set[Key]:
        natural_key = COLLECTIONS[collection].natural_key
        projection = {"_id": False, **dict.fromkeys(natural_key, True)}
        return {
            key_of(document, natural_key)
            for document in self.database[collection].find(_query(where), projection)
        }

    def documents(self, collection: str, where: Where | None = None) -> Iterator[Document]:
        from pymongo import ASCENDING  # noqa: PLC0415 (see from_settings)

        order = [(field, ASCENDING) for field in COLLECTIONS[collection].natural_key]
        found = self.database[collection].find(_query(where), {"_id": False}).sort(order)
        yield from found

    def count(self, collection: str, where: Where | None = None) -> int:
        return self.database[collection].count_documents(_query(where))


def _query(where: Where | None) -> Document:
    """The MongoDB query of a filter, after checking it is one every store supports."""
    conditions(where)
    return dict(where or {})
