"""Reading a SQLite store the way every reader does: through ``SQLiteStore``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bilicrawl.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from bilicrawl.store.documents import Document


def stored_documents(path: str | Path, collection: str) -> list[Document]:
    """The documents of a collection in the SQLite store at *path*, by natural key."""
    with SQLiteStore(Path(path), busy_timeout=5.0) as store:
        return list(store.documents(collection))


def stored_count(path: str | Path, collection: str) -> int:
    """How many documents a collection of the SQLite store at *path* holds."""
    with SQLiteStore(Path(path), busy_timeout=5.0) as store:
        return store.count(collection)
