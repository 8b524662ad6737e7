"""Store items in MongoDB, upserted by natural key in ordered bulk writes.

Each item class goes to its ``collection``, which gets a unique index on the
class's ``natural_key`` at open; a document is ``ItemAdapter(item).asdict()``
(MongoDB adds ``_id``). Buffering, retries and dead letters are described in
:mod:`bilicrawl.pipelines.batching`.

Settings:

- ``MONGO_URI`` (``""``): the server; when empty this pipeline is disabled
  (``NotConfigured``) and the SQLite pipeline stores items instead.
- ``MONGO_DATABASE`` (``"bilicrawl"``): the database.
- ``MONGO_CLIENT_CLASS`` (``"pymongo.MongoClient"``): the client class, built
  with the URI; tests use ``"mongomock.MongoClient"``.
- ``MONGO_BATCH_SIZE`` (``500``): documents per collection per bulk write.
- ``MONGO_DEAD_LETTER_DIR`` (``"data"``): where batches that could not be written
  are appended, as ``failed-<collection>.jsonl``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, ReplaceOne
from scrapy.exceptions import NotConfigured
from scrapy.utils.misc import load_object

from bilicrawl.pipelines.batching import (
    BatchingStorePipeline,
    Document,
    key_of,
    positive_int_setting,
)

if TYPE_CHECKING:
    from typing import Self

    from pymongo import MongoClient
    from pymongo.database import Database
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class MongoPipeline(BatchingStorePipeline):
    """Upsert documents into MongoDB, one collection per item class."""

    def __init__(
        self,
        crawler: Crawler,
        *,
        uri: str,
        database_name: str,
        client_class: type,
        batch_size: int,
        dead_letter_dir: Path,
    ) -> None:
        super().__init__(crawler, batch_size=batch_size, dead_letter_dir=dead_letter_dir)
        self.uri = uri
        self.database_name = database_name
        self.client_class = client_class
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
        dead_letter_dir = settings.get("MONGO_DEAD_LETTER_DIR")
        if not dead_letter_dir:
            raise ValueError("MONGO_DEAD_LETTER_DIR is not set")
        return cls(
            crawler,
            uri=uri,
            database_name=settings.get("MONGO_DATABASE"),
            client_class=load_object(settings.get("MONGO_CLIENT_CLASS")),
            batch_size=positive_int_setting(crawler, "MONGO_BATCH_SIZE"),
            dead_letter_dir=Path(dead_letter_dir),
        )

    def _connect(self) -> None:
        client = self.client_class(self.uri)
        database = client[self.database_name]
        try:
            for collection, natural_key in self.collections.items():
                database[collection].create_index(
                    [(field, ASCENDING) for field in natural_key], unique=True
                )
        except BaseException:
            client.close()
            raise
        self._client, self._database = client, database
        logger.info(
            "Storing items in MongoDB database %(database)s",
            {"database": self.database_name},
            extra={"spider": self.crawler.spider},
        )

    def _write(self, collection: str, documents: list[Document]) -> None:
        natural_key = self.collections[collection]
        self._database[collection].bulk_write(
            [
                ReplaceOne(
                    {field: document[field] for field in natural_key}, document, upsert=True
                )
                for document in documents
            ],
            ordered=True,
        )

    def _read_keys(self, collection: str) -> set[tuple[Any, ...]]:
        natural_key = self.collections[collection]
        projection = {"_id": False, **dict.fromkeys(natural_key, True)}
        return {
            key_of(document, natural_key)
            for document in self._database[collection].find({}, projection)
        }

    def _disconnect(self) -> None:
        self._client.close()
