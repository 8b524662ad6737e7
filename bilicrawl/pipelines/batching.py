"""Buffered, ordered, retrying writes shared by the storage pipelines.

A store pipeline takes each item's document (``ItemAdapter(item).asdict()``) from
the crawler's :class:`~bilicrawl.pipelines.documents.DocumentHandoff`, where the
validation pipeline left it (and builds it only if it is not there), buffers it
per collection and writes a batch once ``batch_size`` documents are pending, at
least every ``flush_seconds`` (``BILI_STORE_FLUSH_SECONDS``, default 5), as soon
as the crawl starts closing (``bilicrawl.signals.crawl_closing``: a circuit
breaker, the first Ctrl-C) and at close. A full document replaces the stored
one; a partial one (of an item class with ``partial = True``) is merged into it
by :func:`merge_document`. A batch holds one upsert per natural key: a full
document replaces what is buffered for its key, a partial one is merged into
it, which stays full if it was. All store I/O runs on one worker thread, so the
reactor never blocks and a store client that is bound to its thread (sqlite3)
stays on it; a lock keeps batches, their retries and the final close in the
order they were started.

Rows of batch items (danmaku, a ``rows_field``) are buffered as a plain list
and written ``rows_batch_size`` at a time (``BILI_STORE_ROWS_BATCH_SIZE``,
default 50,000): keying hundreds of thousands of rows a second would cost more
than storing them, and larger batches are cheaper to write (docs/danmaku.md).
A store merges rows with the same key itself, in order. Every flush writes
the buffered rows before any document, so a record that describes rows (a
part's ``danmaku_parts`` record) is never stored before them, and ``resume``
never skips rows a kill lost.

A batch that still fails after ``retry_delays`` is logged at ERROR with its keys,
counted and appended as JSON lines to ``<dead-letter dir>/failed-<collection>.jsonl``,
or ``failed-<collection>.partial.jsonl`` for partial documents, which must be
replayed as merges, so no document is lost silently. A forced exit (a second
Ctrl-C stops the reactor without closing the spider) runs
:meth:`BatchingStorePipeline.before_exit`, which writes every document not yet
stored, or dead-letters it if the store fails or takes longer than
``exit_timeout``. Subclasses implement ``_connect``, ``_write``, ``_read_keys``
and ``_disconnect``, which run on the worker thread.

Stats: ``bilicrawl/storage/{upserted,batches,retries,failed,lost}/<collection>``,
and ``bilicrawl/storage/flushes/{timer,closing}``, the writes the timer and the
closing signal started.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import itertools
import json
import logging
import os
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar

import orjson
from scrapy.utils.defer import deferred_from_coro

from bilicrawl import signals
from bilicrawl.config import ConfigError
from bilicrawl.items import ITEM_CLASSES
from bilicrawl.pipelines.documents import Document, DocumentHandoff
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

class Route(NamedTuple):
    """Where an item class is stored: its collection, natural key fields, and whether partial."""

    collection: str
    natural_key: tuple[str, ...]
    partial: bool
    """Its documents are merged into the stored ones instead of replacing them."""
    rows_field: str | None
    """For a batch item (``DanmakuBatchItem``), the field whose rows are its documents."""
    batch_fields: tuple[str, ...]
    """A batch item's fields that describe the batch and are not copied into its rows."""


class Upsert(NamedTuple):
    """A document to store by natural key: replacing the stored one, or merged in if partial."""

    document: Document
    partial: bool


class Batch(NamedTuple):
    """Upserts taken from a collection's buffer to be written together, one per natural key."""

    collection: str
    upserts: list[Upsert]


ROUTES: dict[type, Route] = {
    cls: Route(
        cls.collection,  # type: ignore[attr-defined]
        cls.natural_key,  # type: ignore[attr-defined]
        getattr(cls, "partial", False),
        getattr(cls, "rows_field", None),
        getattr(cls, "batch_fields", ()),
    )
    for cls in ITEM_CLASSES
}
"""Route of every stored item class, from its ``collection``, ``natural_key`` and ``partial``."""


def merge_document(stored: Document, patch: Document) -> Document:
    """Return *stored* with the partial document *patch* deep-merged in, as both stores do.

    Where the stored and the new value of a field are both objects they are
    merged the same way; any other new value (a list, None) replaces the stored
    one, and fields *patch* lacks are kept. The inputs are not changed; values
    that needed no merge are shared with them.
    """
    merged = dict(stored)
    for field, value in patch.items():
        old = merged.get(field)
        merged[field] = (
            merge_document(old, value)
            if isinstance(old, dict) and isinstance(value, dict)
            else value
        )
    return merged


def combine(earlier: Upsert | None, later: Upsert) -> Upsert:
    """Return the one upsert for a key that stores what *earlier*, then *later*, would.

    A full document replaces anything before it; a partial one is merged into
    the earlier upsert, which keeps its kind.
    """
    if earlier is None or not later.partial:
        return later
    return Upsert(merge_document(earlier.document, later.document), earlier.partial)


def dump_document(document: Document) -> str:
    """Serialise a document as compact JSON that keeps CJK and emoji as-is.

    orjson writes what ``json.dumps(ensure_ascii=False, separators=(",", ":"))``
    writes, several times faster (a float may be spelled differently: ``1e-7``
    for ``1e-07``); what it refuses (integers beyond 64 bits) the standard
    library writes.
    """
    try:
        return orjson.dumps(document).decode()
    except TypeError:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def key_of(document: Document, natural_key: tuple[str, ...]) -> tuple[Any, ...]:
    """Return the natural key values of a document."""
    return tuple(document[field] for field in natural_key)


def combined(upserts: list[Upsert], natural_key: tuple[str, ...]) -> list[Upsert]:
    """Return one upsert per natural key that stores what *upserts*, in order, would."""
    pending: dict[Any, Upsert] = {}
    if len(natural_key) == 1:  # rows (dmid): a tuple per row would cost a third more
        (field,) = natural_key
        for upsert in upserts:
            key = upsert.document[field]
            pending[key] = combine(pending.get(key), upsert)
    else:
        for upsert in upserts:
            key = key_of(upsert.document, natural_key)
            pending[key] = combine(pending.get(key), upsert)
    return list(pending.values())


def location_error(setting: str, path: Path, error: OSError) -> ConfigError:
    """Return the one-line error for a store location the OS refused."""
    reason = error.strerror or str(error)
    if error.filename is not None and str(error.filename) != str(path):
        reason = f"{reason}: {str(error.filename)!r}"
    return ConfigError(f"{setting} {str(path)!r} cannot be used: {reason}")


def check_directory(setting: str, path: Path) -> None:
    """Raise ConfigError now if the directory *path* obviously cannot be created.

    That is, when it or one of its parents is a file. It is created only when a
    document needs it; other refusals (permissions) are logged then.
    """
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                error = OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(candidate))
                raise location_error(setting, path, error)
            return


class BatchingStorePipeline(ABC):
    """Base of the storage pipelines: buffering, ordered batches, retries, dead letters."""

    retry_delays: ClassVar[tuple[float, ...]] = (0.5, 2.0, 5.0)
    """Seconds to wait before each retry of a failed batch; one retry per entry."""

    exit_timeout: ClassVar[float] = 5.0
    """Seconds a forced exit waits for the store before dead-lettering what is unwritten."""

    def __init__(
        self,
        crawler: Crawler,
        *,
        batch_size: int,
        rows_batch_size: int,
        flush_seconds: float,
        dead_letter_dir: Path,
    ) -> None:
        self.crawler = crawler
        self.batch_size = batch_size
        self.rows_batch_size = rows_batch_size
        self.flush_seconds = flush_seconds
        self.dead_letter_dir = dead_letter_dir
        self.documents = DocumentHandoff.for_crawler(crawler)
        """Where the validation pipeline leaves the documents of valid items."""
        self.collections = {route.collection: route.natural_key for route in ROUTES.values()}
        self.row_collections = {
            route.collection for route in ROUTES.values() if route.rows_field is not None
        }
        """Collections of batch items' rows, which the stores write in bulk."""
        self._buffers: dict[str, dict[tuple[Any, ...], Upsert]] = {}
        """Documents waiting for a batch, one per natural key."""
        self._rows: dict[str, list[Upsert]] = {}
        """Rows of batch items waiting for a batch, in arrival order, duplicates included."""
        # Batches taken from the buffers and not yet written or dead-lettered, by
        # start order: what a forced exit still has to save.
        self._unsaved: dict[int, Batch] = {}
        self._batch_ids = itertools.count()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=type(self).__name__)
        self._lock = asyncio.Lock()
        self._connected = False
        self._exiting = False
        self._timer: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Future[None]] = set()
        self._exit_trigger: Any = None
        crawler.signals.connect(self._on_crawl_closing, signal=signals.crawl_closing)

    async def open_spider(self) -> None:
        """Connect to the store, then start the flush timer and the forced-exit trigger."""
        await self._run(self._connect)
        self._connected = True
        self._timer = asyncio.get_running_loop().create_task(self._flush_periodically())
        from twisted.internet import reactor  # noqa: PLC0415 (Scrapy installs the reactor)

        self._exit_trigger = reactor.addSystemEventTrigger("before", "shutdown", self.before_exit)

    async def process_item(self, item: Any) -> Any:
        """Buffer the item's document; write the batch once it is full."""
        try:
            route = ROUTES[type(item)]
        except KeyError:
            raise TypeError(
                f"Cannot store {type(item).__name__}: not in bilicrawl.items.ITEM_CLASSES"
            ) from None
        upserts = [Upsert(document, route.partial) for document in self._documents(item, route)]
        if self._exiting:
            # The reactor is stopping: a batch started now might never be written.
            for path in self._dead_letter_now(route.collection, upserts):
                logger.warning(
                    "Forced exit: appended documents scraped meanwhile to %(path)s",
                    {"path": path},
                    extra={"spider": self.crawler.spider},
                )
            return item
        if route.rows_field is not None:
            # Buffered before any await: a record the same callback yields next (the
            # part's danmaku_parts) is never buffered, so never stored, before these.
            rows = self._rows.setdefault(route.collection, [])
            rows += upserts
            if len(rows) >= self.rows_batch_size:
                await self._flush_rows(route.collection)
            return item
        buffer = self._buffers.setdefault(route.collection, {})
        for upsert in upserts:
            key = key_of(upsert.document, route.natural_key)
            buffer[key] = combine(buffer.get(key), upsert)
            if len(buffer) >= self.batch_size:
                await self._flush(*self._rows, route.collection)
                buffer = self._buffers.setdefault(route.collection, {})
        return item

    def _documents(self, item: Any, route: Route) -> list[Document]:
        """Return the documents an item stores: its own, or one per row of a batch item.

        A row becomes its document in place (the batch's other fields added to
        it): copying hundreds of thousands of rows a second would cost more than
        storing them.
        """
        document = self.documents.take(item)
        if route.rows_field is None:
            return [document]
        rows: list[Document] = document.pop(route.rows_field)
        # Rows are partial: a batch field the batch does not know (None: the aid of a
        # part crawled by cid) is left out, so it never erases what another batch stored.
        shared = {
            name: value
            for name, value in document.items()
            if value is not None and name not in route.batch_fields
        }
        for row in rows:
            row.update(shared)
        return rows

    async def close_spider(self) -> None:
        """Write every pending batch, then disconnect once all writes are done.

        After a failed (or no) ``open_spider`` there is nothing to write or close.
        """
        try:
            if self._connected:
                if self._timer is not None:
                    self._timer.cancel()
                    await asyncio.wait([self._timer])
                await asyncio.gather(*self._flushes)
                await self._flush(*self._rows, *self._buffers)
                async with self._lock:
                    await self._run(self._disconnect)
                self._connected = False
        finally:
            if self._exit_trigger is not None:
                from twisted.internet import reactor  # noqa: PLC0415

                reactor.removeSystemEventTrigger(self._exit_trigger)
                self._exit_trigger = None
            self._executor.shutdown()

    async def stored_keys(
        self, collection: str, having: str | None = None
    ) -> set[tuple[Any, ...]]:
        """Return the natural key of every document stored in a collection.

        With *having*, only of the documents where that field is present and not
        null: ``having="crawled_at"`` leaves out users known only from lists.
        """
        async with self._lock:
            return await self._run(self._read_keys, collection, having)

    def before_exit(self) -> Deferred[None]:
        """Save every document not yet stored: the reactor's "before shutdown" trigger.

        A second Ctrl-C stops the reactor without closing the spider; the reactor
        waits for the returned Deferred.
        """
        return deferred_from_coro(self._save_before_exit())

    @abstractmethod
    def _connect(self) -> None:
        """Open the store and prepare every collection (worker thread)."""

    @abstractmethod
    def _write(self, collection: str, upserts: list[Upsert]) -> None:
        """Apply a batch, one upsert per natural key, as one ordered step (worker thread)."""

    @abstractmethod
    def _read_keys(self, collection: str, having: str | None) -> set[tuple[Any, ...]]:
        """Return the natural keys stored in a collection, as stored_keys (worker thread)."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Close the store (worker thread)."""

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    async def _flush(self, *collections: str) -> int:
        """Write the buffered documents of these collections; return how many batches."""
        # Take the buffers before waiting for the lock: items arriving meanwhile
        # start the next batches, which are written after these.
        batch_ids = [batch_id for batch_id in map(self._take, collections) if batch_id is not None]
        if batch_ids:
            async with self._lock:
                for batch_id in batch_ids:
                    await self._write_with_retries(batch_id)
        return len(batch_ids)

    async def _flush_rows(self, collection: str) -> None:
        """Write a collection's buffered rows once the write under way is done.

        The buffer is taken only then, unlike in :meth:`_flush`: rows arriving
        during a write join one larger batch (cheaper per row) instead of piling
        up as many, and the items waiting here hold Scrapy back from downloading
        more, so a store slower than the parser bounds what is in memory.
        """
        async with self._lock:
            if len(self._rows.get(collection, ())) >= self.rows_batch_size:
                batch_id = self._take(collection)
                if batch_id is not None:
                    await self._write_with_retries(batch_id)

    def _take(self, collection: str) -> int | None:
        """Take a collection's buffered documents as an unsaved batch; return its id."""
        upserts = self._rows.pop(collection, None) or list(
            self._buffers.pop(collection, {}).values()
        )
        if not upserts:
            return None
        batch_id = next(self._batch_ids)
        self._unsaved[batch_id] = Batch(collection, upserts)
        return batch_id

    async def _flush_periodically(self) -> None:
        """Write whatever is buffered every flush_seconds, so a kill loses at most that."""
        while True:
            await asyncio.sleep(self.flush_seconds)
            # Shielded: close_spider cancels the timer, never a write under way.
            await asyncio.shield(self._flush_in_background("timer"))

    def _on_crawl_closing(self, reason: str) -> None:
        if self._connected and (self._buffers or self._rows) and not self._exiting:
            logger.info(
                "Crawl closing (%(reason)s): writing the buffered documents now",
                {"reason": reason},
                extra={"spider": self.crawler.spider},
            )
            self._flush_in_background("closing")

    def _flush_in_background(self, trigger: str) -> asyncio.Future[None]:
        """Start writing every buffered document; close_spider waits for it."""
        flush = asyncio.ensure_future(self._flush_all(trigger))
        self._flushes.add(flush)
        flush.add_done_callback(self._flushes.discard)
        return flush

    async def _flush_all(self, trigger: str) -> None:
        if not self._exiting and await self._flush(*self._rows, *self._buffers):
            self.crawler.stats.inc_value(stat_key("storage", "flushes", trigger))

    async def _write_with_retries(self, batch_id: int) -> None:
        stats = self.crawler.stats
        attempts = len(self.retry_delays) + 1
        for attempt in range(1, attempts + 1):
            batch = self._unsaved.get(batch_id)
            if batch is None:
                return  # a forced exit saved it with newer documents: don't write it over them
            collection, upserts = batch
            try:
                # Upserts by natural key are idempotent (a merge too: merging the
                # same fields again changes nothing), so retrying a batch that
                # was partly applied is safe.
                await self._run(self._write, collection, upserts)
            except Exception as error:
                if attempt == attempts:
                    await self._dead_letter(collection, upserts, error)
                    del self._unsaved[batch_id]
                    return
                delay = self.retry_delays[attempt - 1]
                logger.warning(
                    "Writing %(count)d documents to %(collection)s failed (attempt %(attempt)d"
                    " of %(attempts)d), retrying in %(delay).1fs: %(error)r",
                    {
                        "count": len(upserts),
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
                self._unsaved.pop(batch_id, None)
                self._count_written(collection, len(upserts))
                logger.debug(
                    "Upserted %(count)d documents into %(collection)s",
                    {"count": len(upserts), "collection": collection},
                    extra={"spider": self.crawler.spider},
                )
                return

    def _count_written(self, collection: str, count: int) -> None:
        self.crawler.stats.inc_value(stat_key("storage", "batches", collection))
        self.crawler.stats.inc_value(stat_key("storage", "upserted", collection), count)

    async def _save_before_exit(self) -> None:
        self._exiting = True
        batches = self._take_unsaved()
        if not batches:
            return
        # Not under the lock: its holder may be waiting to retry a batch taken over
        # here. The one worker thread runs a write already under way before these.
        written: list[str] = []
        try:
            # One call, so nothing else the worker runs comes between the batches.
            async with asyncio.timeout(self.exit_timeout):
                await self._run(self._write_all, batches, written)
        except Exception as error:
            reason = (
                f"not written within {self.exit_timeout:g}s"
                if isinstance(error, TimeoutError)
                else repr(error)
            )
        else:
            reason = ""
        written = list(written)  # the worker may still finish a write after a timeout
        for collection in written:
            self._count_written(collection, len(batches[collection]))
        if written:
            logger.warning(
                "Forced exit: wrote %(count)d buffered documents to the store",
                {"count": sum(len(batches[collection]) for collection in written)},
                extra={"spider": self.crawler.spider},
            )
        unwritten = {c: upserts for c, upserts in batches.items() if c not in written}
        if unwritten:
            paths = [
                path
                for collection, upserts in unwritten.items()
                for path in self._dead_letter_now(collection, upserts)
            ]
            logger.warning(
                "Forced exit: %(count)d buffered documents were not stored (%(reason)s);"
                " appended them to %(paths)s (some may have been stored as well)",
                {
                    "count": sum(map(len, unwritten.values())),
                    "reason": reason,
                    "paths": ", ".join(map(str, paths)),
                },
                extra={"spider": self.crawler.spider},
            )

    def _take_unsaved(self) -> dict[str, list[Upsert]]:
        """Take every unsaved upsert, per collection, combined into one per key in order."""
        buffered = itertools.chain(
            (Batch(name, [*buffer.values()]) for name, buffer in self._buffers.items()),
            (Batch(name, rows) for name, rows in self._rows.items()),
        )
        pending: dict[str, list[Upsert]] = {}
        for collection, upserts in itertools.chain(self._unsaved.values(), buffered):
            pending.setdefault(collection, []).extend(upserts)
        self._unsaved.clear()
        self._buffers.clear()
        self._rows.clear()
        rows_first = sorted(pending, key=lambda collection: collection not in self.row_collections)
        return {
            collection: combined(pending[collection], self.collections[collection])
            for collection in rows_first
        }

    def _write_all(self, batches: dict[str, list[Upsert]], written: list[str]) -> None:
        for collection, upserts in batches.items():
            self._write(collection, upserts)
            written.append(collection)

    def _dead_letter_files(
        self, collection: str, upserts: list[Upsert]
    ) -> dict[Path, list[Document]]:
        """Group documents by dead-letter file: partial ones apart, so none is replayed as full."""
        files: dict[Path, list[Document]] = {}
        for document, partial in upserts:
            name = f"failed-{collection}{'.partial' if partial else ''}.jsonl"
            files.setdefault(self.dead_letter_dir / name, []).append(document)
        return files

    async def _dead_letter(self, collection: str, upserts: list[Upsert], error: Exception) -> None:
        files = self._dead_letter_files(collection, upserts)
        keys = [key_of(document, self.collections[collection]) for document, _ in upserts]
        self.crawler.stats.inc_value(stat_key("storage", "failed", collection), len(upserts))
        logger.error(
            "Could not write %(count)d documents to %(collection)s: %(error)r;"
            " appending them to %(paths)s. Keys %(fields)s: %(keys)s",
            {
                "count": len(upserts),
                "collection": collection,
                "error": error,
                "paths": ", ".join(map(str, files)),
                "fields": self.collections[collection],
                "keys": keys,
            },
            extra={"spider": self.crawler.spider},
        )
        for path, documents in files.items():
            try:
                await self._run(_append_documents, path, documents)
            except Exception:
                self._lost(collection, documents, path)

    def _dead_letter_now(self, collection: str, upserts: list[Upsert]) -> list[Path]:
        """Append upserts to their dead-letter files on this thread: the worker may be stuck.

        Return the files written; a file that could not be written is left out.
        """
        self.crawler.stats.inc_value(stat_key("storage", "failed", collection), len(upserts))
        written = []
        for path, documents in self._dead_letter_files(collection, upserts).items():
            try:
                _append_documents(path, documents)
            except Exception:
                self._lost(collection, documents, path)
            else:
                written.append(path)
        return written

    def _lost(self, collection: str, documents: list[Document], path: Path) -> None:
        self.crawler.stats.inc_value(stat_key("storage", "lost", collection), len(documents))
        logger.critical(
            "Could not write the dead-letter file %(path)s either: %(count)d documents"
            " of %(collection)s are lost",
            {"path": path, "count": len(documents), "collection": collection},
            exc_info=True,
            extra={"spider": self.crawler.spider},
        )


def _append_documents(path: Path, documents: list[Document]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write("".join(dump_document(document) + "\n" for document in documents))
