"""Reading a SQLite store the way every reader does (through ``SQLiteStore``), and a
spider that feeds the storage pipeline alone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import scrapy

from bilicrawl.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from bilicrawl.pipelines.store import StorePipeline
    from bilicrawl.store.documents import Document


def stored_documents(path: str | Path, collection: str) -> list[Document]:
    """The documents of a collection in the SQLite store at *path*, by natural key."""
    with SQLiteStore(Path(path), busy_timeout=5.0) as store:
        return list(store.documents(collection))


def stored_count(path: str | Path, collection: str) -> int:
    """How many documents a collection of the SQLite store at *path* holds."""
    with SQLiteStore(Path(path), busy_timeout=5.0) as store:
        return store.count(collection)


async def run_pipeline(pipeline: StorePipeline, items: Iterable[Any]) -> None:
    """Run a whole crawl's worth of storage pipeline calls."""
    await pipeline.open_spider()
    for item in items:
        assert await pipeline.process_item(item) is item
    await pipeline.close_spider()


class ItemsSpider(scrapy.Spider):
    """Yields the items it is given, with no request: a crawl of the storage pipeline alone."""

    name = "items"

    def __init__(self, items: list[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.items = items

    async def start(self) -> AsyncIterator[Any]:
        for item in self.items:
            yield item
