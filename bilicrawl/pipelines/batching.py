"""Buffered, ordered, retrying writes shared by the storage pipelines.

A store pipeline turns each item into its document (``ItemAdapter(item).asdict()``),
buffers it per collection and writes a batch once ``batch_size`` documents are
pending, and again at close. Within a batch the last document for a natural key
wins. All store I/O runs on one worker thread, so the reactor never blocks and a
store client that is bound to its thread (sqlite3) stays on it; a lock keeps
batches, their retries and the final close in the order they were started.

A batch that still fails after ``retry_delays`` is logged at ERROR with its keys,
counted and appended as JSON lines to ``<dead-letter dir>/failed-<collection>.jsonl``,
so no document is lost silently. Subclasses implement ``_connect``, ``_write`` and
``_disconnect``, which run on the worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar

from itemadapter import ItemAdapter

from bilicrawl.items import ITEM_CLASSES
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

Document = dict[str, Any]
"""One stored document: exactly ``ItemAdapter(item).asdict()``."""


class Route(NamedTuple):
    """Where an item class is stored: its collection and natural key fields."""

    collection: str
    natural_key: tuple[str, ...]


ROUTES: dict[type, Route] = {
    cls: Route(cls.collection, cls.natural_key)  # type: ignore[attr-defined]
    for cls in ITEM_CLASSES
}
"""Route of every stored item class, from its ``collection`` and ``natural_key``."""


def dump_document(document: Document) -> str:
    """Serialise a document as compact JSON that keeps CJK and emoji as-is."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def key_of(document: Document, natural_key: tuple[str, ...]) -> tuple[Any, ...]:
    """Return the natural key values of a document."""
    return tuple(document[field] for field in natural_key)


def positive_int_setting(crawler: Crawler, name: str) -> int:
    """Read a batch-size-like setting, refusing values below 1."""
    value = crawler.settings.getint(name)
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value!r}")
    return value


class BatchingStorePipeline(ABC):
    """Base of the storage pipelines: buffering, ordered batches, retries, dead letters."""

    retry_delays: ClassVar[tuple[float, ...]] = (0.5, 2.0, 5.0)
    """Seconds to wait before each retry of a failed batch; one retry per entry."""

    def __init__(self, crawler: Crawler, *, batch_size: int, dead_letter_dir: Path) -> None:
        self.crawler = crawler
        self.batch_size = batch_size
        self.dead_letter_dir = dead_letter_dir
        self.collections = {route.collection: route.natural_key for route in ROUTES.values()}
        self._buffers: dict[str, dict[tuple[Any, ...], Document]] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=type(self).__name__)
        self._lock = asyncio.Lock()

    async def open_spider(self) -> None:
        """Connect to the store and create its collections or tables."""
        await self._run(self._connect)

    async def process_item(self, item: Any) -> Any:
        """Buffer the item's document; write the batch once it is full."""
        try:
            route = ROUTES[type(item)]
        except KeyError:
            raise TypeError(
                f"Cannot store {type(item).__name__}: not in bilicrawl.items.ITEM_CLASSES"
            ) from None
        document = ItemAdapter(item).asdict()
        buffer = self._buffers.setdefault(route.collection, {})
        buffer[key_of(document, route.natural_key)] = document
        if len(buffer) >= self.batch_size:
            await self._flush(route.collection)
        return item

    async def close_spider(self) -> None:
        """Write every pending batch, then disconnect once all writes are done."""
        try:
            for collection in list(self._buffers):
                await self._flush(collection)
        finally:
            async with self._lock:
                await self._run(self._disconnect)
            self._executor.shutdown()

    async def stored_keys(self, collection: str) -> set[tuple[Any, ...]]:
        """Return the natural key of every document stored in a collection."""
        async with self._lock:
            return await self._run(self._read_keys, collection)

    @abstractmethod
    def _connect(self) -> None:
        """Open the store and prepare every collection (worker thread)."""

    @abstractmethod
    def _write(self, collection: str, documents: list[Document]) -> None:
        """Upsert documents into a collection by natural key (worker thread)."""

    @abstractmethod
    def _read_keys(self, collection: str) -> set[tuple[Any, ...]]:
        """Return the natural keys stored in a collection (worker thread)."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Close the store (worker thread)."""

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    async def _flush(self, collection: str) -> None:
        # Take the buffer before waiting for the lock: items arriving meanwhile
        # start the next batch, which is written after this one.
        documents = list(self._buffers.pop(collection, {}).values())
        if not documents:
            return
        async with self._lock:
            await self._write_with_retries(collection, documents)

    async def _write_with_retries(self, collection: str, documents: list[Document]) -> None:
        stats = self.crawler.stats
        attempts = len(self.retry_delays) + 1
        for attempt in range(1, attempts + 1):
            try:
                # Upserts by natural key are idempotent, so retrying a batch that
                # was partly applied is safe.
                await self._run(self._write, collection, documents)
            except Exception as error:
                if attempt == attempts:
                    await self._dead_letter(collection, documents, error)
                    return
                delay = self.retry_delays[attempt - 1]
                logger.warning(
                    "Writing %(count)d documents to %(collection)s failed (attempt %(attempt)d"
                    " of %(attempts)d), retrying in %(delay).1fs: %(error)r",
                    {
                        "count": len(documents),
                        "collection": collection,
                        "attempt": attempt,
                        "attempts": attempts,
                        "delay": delay,
                        "error": error,
                    },
                    extra={"spider": self.crawler.spider},
                )
                stats.inc_value(stat_key("storage", "retries", collection))
                await asyncio.sleep(delay)
            else:
                stats.inc_value(stat_key("storage", "batches", collection))
                stats.inc_value(stat_key("storage", "upserted", collection), len(documents))
                logger.debug(
                    "Upserted %(count)d documents into %(collection)s",
                    {"count": len(documents), "collection": collection},
                    extra={"spider": self.crawler.spider},
                )
                return

    async def _dead_letter(
        self, collection: str, documents: list[Document], error: Exception
    ) -> None:
        path = self.dead_letter_dir / f"failed-{collection}.jsonl"
        keys = [key_of(document, self.collections[collection]) for document in documents]
        self.crawler.stats.inc_value(stat_key("storage", "failed", collection), len(documents))
        logger.error(
            "Could not write %(count)d documents to %(collection)s: %(error)r;"
            " appending them to %(path)s. Keys %(fields)s: %(keys)s",
            {
                "count": len(documents),
                "collection": collection,
                "error": error,
                "path": path,
                "fields": self.collections[collection],
                "keys": keys,
            },
            extra={"spider": self.crawler.spider},
        )
        lines = "".join(dump_document(document) + "\n" for document in documents)
        try:
            await self._run(_append_text, path, lines)
        except Exception:
            self.crawler.stats.inc_value(stat_key("storage", "lost", collection), len(documents))
            logger.critical(
                "Could not write the dead-letter file %(path)s either: %(count)d documents"
                " of %(collection)s are lost",
                {"path": path, "count": len(documents), "collection": collection},
                exc_info=True,
                extra={"spider": self.crawler.spider},
            )


def _append_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write(text)
