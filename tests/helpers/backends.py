"""Each store a test can run on: SQLite, mongomock, and a real MongoDB server when
``BILICRAWL_TEST_MONGO_URI`` is set (each test in a throwaway database)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pymongo
import pytest
from scrapy.settings import Settings

from bilicrawl.store import store_from_settings
from bilicrawl.store.documents import dump_document
from bilicrawl.store.mongo import MongoStore
from bilicrawl.store.sqlite import SQLiteStore
from tests.helpers.mongo import SharedMongomockClient, let_mongomock_accept_sort
from tests.utils import project_settings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from bilicrawl.store import Store, Where
    from bilicrawl.store.documents import Document

SERVER_URI = os.environ.get("BILICRAWL_TEST_MONGO_URI", "")

BACKENDS = [
    "sqlite",
    "mongomock",
    pytest.param(
        "server",
        marks=pytest.mark.skipif(not SERVER_URI, reason="BILICRAWL_TEST_MONGO_URI is not set"),
    ),
]
"""The ``params`` of a ``backend`` fixture."""


@dataclass
class Backend:
    """A store for one test, its settings, and ways to look at what it holds."""

    kind: str
    settings: dict[str, Any]
    """Project settings naming the store, with batches of 3 documents."""
    store_class: type[Store]
    dead_letter_dir: Path

    def store(self) -> Store:
        """A store the settings name, not open: as every reader gets it."""
        return store_from_settings(Settings(self.settings))

    def read(self, collection: str, where: Where | None = None) -> list[Document]:
        """The documents of a collection, by natural key, without MongoDB's ``_id``."""
        with self.store() as store:
            return list(store.documents(collection, where))

    def stored_titles(self) -> dict[int, str]:
        return {document["aid"]: document["title"] for document in self.read("videos")}

    def stored_users(self) -> dict[int, Document]:
        return {document["mid"]: document for document in self.read("users")}

    def stored_danmaku(self) -> dict[int, Document]:
        return {document["dmid"]: document for document in self.read("danmaku")}

    def stored_json(self, aid: int) -> str:
        """The stored video as compact JSON: SQLite's doc column, MongoDB's without _id."""
        if self.kind == "sqlite":
            path = self.settings["BILI_STORE_URI"].removeprefix("sqlite:///")
            with closing(sqlite3.connect(path)) as connection:
                query = "SELECT doc FROM videos WHERE aid = ?"
                [(doc,)] = connection.execute(query, (aid,)).fetchall()
            return str(doc)
        [document] = self.read("videos", {"aid": aid})
        return dump_document(document)


def open_backend(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """Yield a *kind* backend (a ``BACKENDS`` entry) for one test; drop its database after."""
    settings = {**project_settings(), "BILI_STORE_BATCH_SIZE": 3}
    if kind == "sqlite":
        path = tmp_path / "store" / "bilicrawl.db"
        settings["BILI_STORE_URI"] = f"sqlite:///{path}"  # absolute: four slashes
        yield Backend(kind, settings, SQLiteStore, path.parent)
        return
    database = f"bilicrawl_test_{uuid.uuid4().hex[:12]}"
    if kind == "server":
        client_class: type = pymongo.MongoClient
        client = client_class(SERVER_URI)
        # MONGO_URI with MONGO_DATABASE: the alias, as a URI's own database may be for auth.
        settings.update(MONGO_URI=SERVER_URI, MONGO_DATABASE=database)
    else:
        let_mongomock_accept_sort(monkeypatch)
        client_class = SharedMongomockClient
        client = client_class("mongodb://mongomock.invalid:27017")
        settings["BILI_STORE_URI"] = f"mongodb://mongomock.invalid:27017/{database}"
    settings.update(MONGO_CLIENT_CLASS=client_class, BILI_DEAD_LETTER_DIR=str(tmp_path / "data"))
    try:
        yield Backend(kind, settings, MongoStore, tmp_path / "data")
    finally:
        client.drop_database(database)
        client.close()
