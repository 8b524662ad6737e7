"""Store items in MongoDB, upserted by natural key in ordered bulk writes.

Each item class goes to its ``collection``, with a unique index on its
``natural_key``; a batch is one ordered ``bulk_write`` of ``ReplaceOne`` (full
documents) and ``UpdateOne`` ``$set`` by dotted path (partial ones), both
upserts. ``MONGO_URI`` is checked at start and the server must answer a
``ping`` at open, else a one-line :class:`~bilicrawl.config.ConfigError`.
Buffering, retries, dead letters and stats are :mod:`bilicrawl.pipelines.batching`'s.

Settings: ``MONGO_URI`` (empty disables this pipeline), ``MONGO_DATABASE``,
``MONGO_CLIENT_CLASS``, ``MONGO_CONNECT_TIMEOUT``, ``MONGO_BATCH_SIZE``,
``BILI_DEAD_LETTER_DIR``, ``BILI_STORE_ROWS_BATCH_SIZE``,
``BILI_STORE_FLUSH_SECONDS``, ``BILI_STORE_RETRY_DELAYS``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured
from scrapy.utils.misc import load_object

from bilicrawl.config import ConfigError, get_float
from bilicrawl.pipelines.batching import (
    BatchingStorePipeline,
    Document,
    Upsert,
    batching_settings,
    combined,
    dead_letter_dir,
    key_of,
)

if TYPE_CHECKING:
    from typing import Self

    from pymongo import MongoClient
    from pymongo.database import Database
    from pymongo.errors import PyMongoError
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


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


class MongoPipeline(BatchingStorePipeline):
    """Upsert documents into MongoDB, one collection per item class."""

    def __init__(
        self,
        crawler: Crawler,
        *,
        uri: str,
        hosts: str,
        database_name: str,
        client_class: type,
        connect_timeout: float,
        **batching: Any,
    ) -> None:
        super().__init__(crawler, **batching)
        self.uri = uri
        self.hosts = hosts
        self.database_name = database_name
        self.client_class = client_class
        self.connect_timeout = connect_timeout
        # Set by _connect() in open_spider().
        self._client: MongoClient[Document]
        self._database: Database[Document]

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        uri = settings.get("MONGO_URI")
        if not uri:
            # The expected way to choose SQLite: no reason, so Scrapy logs no warning.
            raise NotConfigured
        # pymongo is imported only here and below, for crawls that use it: its import
        # costs about 0.1 s of every SQLite crawl's start-up otherwise.
        from pymongo.errors import ConfigurationError, InvalidURI  # noqa: PLC0415
        from pymongo.uri_parser import parse_uri  # noqa: PLC0415

        connect_timeout = get_float(settings, "MONGO_CONNECT_TIMEOUT", positive=True)
        try:
            # A mongodb+srv:// URI is resolved here, in DNS, as the client would.
            parsed = parse_uri(uri, connect_timeout=connect_timeout)
        except (InvalidURI, ValueError) as error:
            raise ConfigError(
                f"MONGO_URI {mask_uri(uri)!r} is not a MongoDB connection string: {error}"
            ) from None
        except ConfigurationError as error:
            raise ConfigError(f"MONGO_URI {mask_uri(uri)!r} cannot be used: {error}") from None
        batching = batching_settings(
            settings, batch_size_setting="MONGO_BATCH_SIZE",
            dead_letters=dead_letter_dir(settings, Path("data")),
        )  # fmt: skip
        return cls(
            crawler,
            uri=uri,
            hosts=_host_list(parsed["nodelist"]),
            database_name=settings.get("MONGO_DATABASE"),
            client_class=load_object(settings.get("MONGO_CLIENT_CLASS")),
            connect_timeout=connect_timeout,
            **batching,
        )

    @property
    def name(self) -> str:
        return f"MongoDB database {self.database_name} at {self.hosts}"

    def _connect(self) -> None:
        from pymongo import ASCENDING  # noqa: PLC0415 (see from_crawler)
        from pymongo.errors import PyMongoError  # noqa: PLC0415

        client = self.client_class(
            self.uri, serverSelectionTimeoutMS=round(self.connect_timeout * 1000)
        )
        try:
            # The client connects lazily: ping, so a wrong URI fails now, in seconds.
            client.admin.command("ping")
            database = client[self.database_name]
            for collection, natural_key in self.collections.items():
                database[collection].create_index(
                    [(field, ASCENDING) for field in natural_key], unique=True
                )
        except PyMongoError as error:
            message = self._open_error(client, error)
            client.close()
            raise ConfigError(message) from None
        except BaseException:
            client.close()
            raise
        self._client, self._database = client, database
        logger.info(
            "Storing items in MongoDB database %(database)s at %(hosts)s",
            {"database": self.database_name, "hosts": self.hosts},
            extra={"spider": self.crawler.spider},
        )

    def _open_error(self, client: MongoClient[Document], error: PyMongoError) -> str:
        """Describe why the server could not be used, in one line without the password."""
        from pymongo.errors import ServerSelectionTimeoutError  # noqa: PLC0415

        where = f"MONGO_URI {mask_uri(self.uri)!r}"
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

    def _write(self, collection: str, upserts: list[Upsert]) -> None:
        from pymongo import ReplaceOne, UpdateOne  # noqa: PLC0415 (see from_crawler)

        natural_key = self.collections[collection]
        # Rows of batch items (danmaku) come as they arrived, a key possibly more than
        # once: merged here, the batch has distinct keys, and unordered the server
        # applies them in parallel.
        ordered = collection not in self.row_collections
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
        self._database[collection].bulk_write(requests, ordered=ordered)

    def _read_keys(self, collection: str, having: str | None) -> set[tuple[Any, ...]]:
        natural_key = self.collections[collection]
        projection = {"_id": False, **dict.fromkeys(natural_key, True)}
        # A null in a query matches a missing field too: {"$ne": None} is present and not null.
        query = {} if having is None else {having: {"$ne": None}}
        return {
            key_of(document, natural_key)
            for document in self._database[collection].find(query, projection)
        }

    def _disconnect(self) -> None:
        self._client.close()
