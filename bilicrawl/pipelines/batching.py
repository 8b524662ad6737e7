"""Buffered, ordered, retrying writes shared by the storage pipelines.

Documents are buffered per collection, one upsert per natural key, and written
on one worker thread when a batch is full, every ``flush_seconds``, when the
crawl starts closing and at close. A flush writes rows, then documents, then
records (classes with ``describes``), and a record is withheld once a batch of
what it describes failed: ``resume`` never trusts a record whose rows are not
stored. A failing batch is retried ``BILI_STORE_RETRY_DELAYS`` (``store_stalled``),
then dead-lettered to ``BILI_DEAD_LETTER_DIR`` (``store_failed``: the crawl
closes). docs/operations.md, "When the store fails during a crawl", says why.

Stats: ``bilicrawl/storage/<what>/<collection>`` for ``upserted``, ``batches``,
``retries``, ``failed`` (dead-lettered), ``lost``, ``withheld`` and ``written``
(distinct documents, at close); ``bilicrawl/storage/flushes/{timer,closing}``.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import itertools
import json
import logging
import os
import sys
from abc import ABC, abstractmethod
from array import array
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar

import orjson
from scrapy.utils.defer import deferred_from_coro

from bilicrawl import signals
from bilicrawl.config import ConfigError, get_float, get_float_list, get_int
from bilicrawl.items import ITEM_CLASSES
from bilicrawl.pipelines.documents import Document, DocumentHandoff
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

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
    describes: tuple[str, ...]
    """For a record (``DanmakuPartItem``), the collections whose stored rows it counts."""


class Upsert(NamedTuple):
    """A document to store by natural key: replacing the stored one, or merged in if partial."""

    document: Document
    partial: bool


class Batch(NamedTuple):
    """Upserts taken from a collection's buffer to be written together, one per natural key."""

    collection: str
    upserts: list[Upsert]


ROUTES: dict[type, Route] = {
    cls: Route(cls.collection, cls.natural_key, cls.partial, cls.rows_field, cls.batch_fields,
               cls.describes)
    for cls in ITEM_CLASSES
}  # fmt: skip
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


def dead_letter_dir(settings: Any, beside: Path) -> Path:
    """Return ``BILI_DEAD_LETTER_DIR``, or *beside* (the store's own directory) when empty.

    The per-backend settings it replaced are refused by name, so none is ignored silently.
    """
    for old in ("SQLITE_DEAD_LETTER_DIR", "MONGO_DEAD_LETTER_DIR"):
        if settings.get(old):
            raise ConfigError(f"{old} was replaced by BILI_DEAD_LETTER_DIR; set that instead")
    directory = settings.get("BILI_DEAD_LETTER_DIR")
    if directory:
        check_directory("BILI_DEAD_LETTER_DIR", Path(directory))
        return Path(directory)
    return beside


def batching_settings(
    settings: Any, *, batch_size_setting: str, dead_letters: Path
) -> dict[str, Any]:
    """Return the keyword arguments of :class:`BatchingStorePipeline` read from *settings*."""
    return {
        "batch_size": get_int(settings, batch_size_setting, minimum=1),
        "rows_batch_size": get_int(settings, "BILI_STORE_ROWS_BATCH_SIZE", minimum=1),
        "flush_seconds": get_float(settings, "BILI_STORE_FLUSH_SECONDS", positive=True),
        "retry_delays": get_float_list(settings, "BILI_STORE_RETRY_DELAYS"),
        "dead_letter_dir": dead_letters,
    }


class BatchingStorePipeline(ABC):
    """Base of the storage pipelines: buffering, ordered batches, retries, dead letters."""

    exit_timeout: ClassVar[float] = 5.0
    """Seconds a forced exit waits for the store before dead-lettering what is unwritten."""

    def __init__(
        self,
        crawler: Crawler,
        *,
        batch_size: int,
        rows_batch_size: int,
        flush_seconds: float,
        retry_delays: tuple[float, ...],
        dead_letter_dir: Path,
    ) -> None:
        self.crawler = crawler
        self.batch_size = batch_size
        self.rows_batch_size = rows_batch_size
        self.flush_seconds = flush_seconds
        self.retry_delays = retry_delays
        """Seconds to wait before each retry of a failed batch; one retry per entry."""
        self.dead_letter_dir = dead_letter_dir
        self.documents = DocumentHandoff.for_crawler(crawler)
        """Where the validation pipeline leaves the documents of valid items."""
        self.collections = {route.collection: route.natural_key for route in ROUTES.values()}
        self.row_collections = {
            route.collection for route in ROUTES.values() if route.rows_field is not None
        }
        """Collections of batch items' rows, which the stores write in bulk."""
        self.records = {route.collection: route.describes for route in ROUTES.values()
                        if route.describes}  # fmt: skip
        """Collections of records, each with the collections whose rows it counts."""
        self._buffers: dict[str, dict[tuple[Any, ...], Upsert]] = {}
        """Documents waiting for a batch, one per natural key."""
        self._rows: dict[str, list[Upsert]] = {}
        """Rows of batch items waiting for a batch, in arrival order, duplicates included."""
        # Batches taken from the buffers and not yet written or dead-lettered, by
        # start order: what a forced exit still has to save.
        self._unsaved: dict[int, Batch] = {}
        self._batch_ids = itertools.count()
        self._failed: set[str] = set()
        """Collections a batch of which could not be written: their records are withheld."""
        self._written: dict[str, set[Any] | array[int]] = {}
        """The natural keys committed in this crawl, per collection (distinct documents):
        a single integer key as 8 bytes in an array (a set entry costs ten times that,
        over millions of videos or danmaku), made distinct once, at close."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=type(self).__name__)
        self._lock = asyncio.Lock()
        self._connected = False
        self._closing = False
        self._exiting = False
        self._timer: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Future[None]] = set()
        self._exit_trigger: Any = None
        crawler.signals.connect(self._on_crawl_closing, signal=signals.crawl_closing)

    @property
    @abstractmethod
    def name(self) -> str:
        """The store in words, for log lines: ``SQLite database data/bilicrawl.db``."""

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
                await self._flush(route.collection)
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
            for collection, keys in self._written.items():
                distinct = len(keys) if isinstance(keys, set) else len(set(keys))
                self.crawler.stats.set_value(stat_key("storage", "written", collection), distinct)

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

    def write_order(self, collections: Iterable[str]) -> list[str]:
        """Return *collections* with what their records describe, in the order to write them.

        Rows first, then documents, then records: a record is never committed
        before the rows it counts. By name within each, so the order is always the same.
        """
        wanted = set(collections)
        for collection in list(wanted):
            wanted.update(self.records.get(collection, ()))
        return sorted(wanted, key=lambda c: (c not in self.row_collections, c in self.records, c))

    async def _flush(self, *collections: str) -> int:
        """Write the buffered documents of these collections; return how many batches."""
        # Take the buffers before waiting for the lock: items arriving meanwhile
        # start the next batches, which are written after these.
        taken = map(self._take, self.write_order((*self._rows, *collections)))
        batch_ids = [batch_id for batch_id in taken if batch_id is not None]
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
        self._closing = True
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

    def _withheld(self, collection: str) -> bool:
        """Whether records of *collection* describe rows a failed batch held."""
        return not self._failed.isdisjoint(self.records.get(collection, ()))

    async def _write_with_retries(self, batch_id: int) -> None:
        """Write a batch; while it fails, pause the crawl and retry; then dead-letter it."""
        stats = self.crawler.stats
        # Once the store has failed the crawl is closing: one try each, no waits.
        delays = () if self._failed else self.retry_delays
        paused = False
        try:
            for attempt in range(1, len(delays) + 2):
                batch = self._unsaved.get(batch_id)
                if batch is None:
                    return  # a forced exit saved it with newer documents: don't write it over them
                collection, upserts = batch
                if self._withheld(collection):
                    del self._unsaved[batch_id]
                    self._withhold(collection, upserts)
                    return
                try:
                    # Upserts by natural key are idempotent (a merge too: merging the
                    # same fields again changes nothing), so retrying a batch that
                    # was partly applied is safe.
                    await self._run(self._write, collection, upserts)
                except Exception as error:
                    if attempt > len(delays):
                        del self._unsaved[batch_id]
                        await self._give_up(collection, upserts, error, attempt)
                        return
                    if not paused:
                        # No new request should leave while the store may not keep its answer.
                        self.crawler.signals.send_catch_log(
                            signals.store_stalled, collection=collection, error=error
                        )
                        paused = True
                    delay = delays[attempt - 1]
                    logger.warning(
                        "Writing %(count)d documents to %(collection)s failed (attempt"
                        " %(attempt)d of %(attempts)d), retrying in %(delay).1fs with the"
                        " crawl paused: %(error)r",
                        {"count": len(upserts), "collection": collection, "attempt": attempt,
                         "attempts": len(delays) + 1, "delay": delay, "error": error},
                        extra={"spider": self.crawler.spider},
                    )  # fmt: skip
                    stats.inc_value(stat_key("storage", "retries", collection))
                    await asyncio.sleep(delay)
                else:
                    self._unsaved.pop(batch_id, None)
                    self._committed(collection, upserts)
                    return
        finally:
            if paused:
                self.crawler.signals.send_catch_log(signals.store_resumed)

    def _committed(self, collection: str, upserts: list[Upsert]) -> None:
        """Count a committed batch, remember its keys and tell the listeners."""
        natural_key = self.collections[collection]
        if len(natural_key) == 1:  # a tuple per row would cost a third more (danmaku)
            (field,) = natural_key
            values = [upsert.document[field] for upsert in upserts]
            keys = [(value,) for value in values]
        else:
            keys = [key_of(upsert.document, natural_key) for upsert in upserts]
        written = self._written.get(collection)
        if written is None:
            single_int = len(natural_key) == 1 and all(type(value) is int for value in values)
            written = self._written[collection] = array("q") if single_int else set()
        if isinstance(written, array):
            written.extend(values)
        else:
            written.update(keys)
        self.crawler.stats.inc_value(stat_key("storage", "batches", collection))
        self.crawler.stats.inc_value(stat_key("storage", "upserted", collection), len(upserts))
        self.crawler.signals.send_catch_log(
            signals.store_committed, collection=collection, keys=keys
        )
        logger.debug(
            "Upserted %(count)d documents into %(collection)s",
            {"count": len(upserts), "collection": collection},
            extra={"spider": self.crawler.spider},
        )

    def _withhold(self, collection: str, upserts: list[Upsert]) -> None:
        """Drop records whose rows were not all stored: resume fetches them again."""
        self.crawler.stats.inc_value(stat_key("storage", "withheld", collection), len(upserts))
        logger.warning(
            "Not storing %(count)d %(collection)s records: the %(rows)s they count were not"
            " all stored; -a resume=true fetches them again",
            {"count": len(upserts), "collection": collection,
             "rows": ", ".join(self.records[collection])},
            extra={"spider": self.crawler.spider},
        )  # fmt: skip

    async def _give_up(self, collection: str, upserts: list[Upsert], error: Exception,
                       attempts: int) -> None:  # fmt: skip
        """Dead-letter a batch the store refused; the first such batch closes the crawl."""
        first = not self._failed
        self._failed.add(collection)
        paths = await self._dead_letter(collection, upserts)
        where = f"appended to {', '.join(map(str, paths))}" if paths else "LOST"
        if first and not self._closing:
            message = (
                "Closing the crawl: %(store)s cannot be written: %(error)s (%(count)d documents"
                " of %(collection)s after %(attempts)d attempts, %(where)s). Fix the store,"
                " apply the dead letters with scrapy replay-dead-letters, then rerun with"
                " -a resume=true."
            )
        else:
            message = (
                "%(store)s: could not write %(count)d documents to %(collection)s: %(error)s;"
                " %(where)s"
            )
        logger.error(message, {
            "store": self.name, "error": _cause(error), "count": len(upserts),
            "collection": collection, "attempts": attempts, "where": where,
        }, extra={"spider": self.crawler.spider})  # fmt: skip
        natural_key = self.collections[collection]
        self.crawler.signals.send_catch_log(
            signals.store_failed, collection=collection, error=error,
            keys=[key_of(upsert.document, natural_key) for upsert in upserts],
        )  # fmt: skip

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
            self._committed(collection, batches[collection])
        if written:
            logger.warning(
                "Forced exit: wrote %(count)d buffered documents to the store",
                {"count": sum(len(batches[collection]) for collection in written)},
                extra={"spider": self.crawler.spider},
            )
        unwritten = {c: upserts for c, upserts in batches.items() if c not in written}
        self._failed.update(unwritten)
        for collection in [c for c in unwritten if self._withheld(c)]:
            self._withhold(collection, unwritten.pop(collection))
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
        """Take every unsaved upsert, per collection, combined into one per key, in write order."""
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
        return {
            collection: combined(pending[collection], self.collections[collection])
            for collection in self.write_order(pending)
            if collection in pending
        }

    def _write_all(self, batches: dict[str, list[Upsert]], written: list[str]) -> None:
        for collection, upserts in batches.items():
            if self._withheld(collection):
                return
            self._write(collection, upserts)
            written.append(collection)

    def _dead_letter_files(
        self, collection: str, upserts: list[Upsert]
    ) -> dict[Path, list[Document]]:
        """Group documents by dead-letter file: partial ones apart, so none is replayed as full."""
        files: dict[Path, list[Document]] = {}
        for document, partial in upserts:
            files.setdefault(self.dead_letter_dir / dead_letter_name(collection, partial),
                             []).append(document)  # fmt: skip
        return files

    async def _dead_letter(self, collection: str, upserts: list[Upsert]) -> list[Path]:
        """Append a batch to its dead-letter files; return the files written."""
        written = []
        for path, documents in self._dead_letter_files(collection, upserts).items():
            try:
                await self._run(_append_documents, path, documents)
            except Exception:
                self._lost(collection, documents, path)
            else:
                self._dead_lettered(collection, documents, path)
                written.append(path)
        return written

    def _dead_letter_now(self, collection: str, upserts: list[Upsert]) -> list[Path]:
        """Append upserts to their dead-letter files on this thread: the worker may be stuck.

        Return the files written; a file that could not be written is left out.
        """
        written = []
        for path, documents in self._dead_letter_files(collection, upserts).items():
            try:
                _append_documents(path, documents)
            except Exception:
                self._lost(collection, documents, path)
            else:
                self._dead_lettered(collection, documents, path)
                written.append(path)
        return written

    def _dead_lettered(self, collection: str, documents: list[Document], path: Path) -> None:
        self.crawler.stats.inc_value(stat_key("storage", "failed", collection), len(documents))
        natural_key = self.collections[collection]
        keys = [key_of(document, natural_key) for document in documents[:LOGGED_KEYS]]
        logger.info(
            "Dead-lettered %(count)d documents of %(collection)s to %(path)s (keys %(fields)s:"
            " %(keys)s%(more)s)",
            {"count": len(documents), "collection": collection, "path": path,
             "fields": natural_key, "keys": keys,
             "more": ", ..." if len(documents) > LOGGED_KEYS else ""},
            extra={"spider": self.crawler.spider},
        )  # fmt: skip

    def _lost(self, collection: str, documents: list[Document], path: Path) -> None:
        self.crawler.stats.inc_value(stat_key("storage", "lost", collection), len(documents))
        error = sys.exc_info()[1]
        logger.critical(
            "Could not write the dead-letter file %(path)s either (%(error)s): %(count)d"
            " documents of %(collection)s are lost",
            {"path": path, "error": _cause(error), "count": len(documents),
             "collection": collection},
            extra={"spider": self.crawler.spider},
        )  # fmt: skip


LOGGED_KEYS = 20
"""Keys of a dead-lettered batch named in its log line; the file holds them all."""


def dead_letter_name(collection: str, partial: bool) -> str:
    """The dead-letter file of a collection's full or partial documents."""
    return f"failed-{collection}{'.partial' if partial else ''}.jsonl"


def _cause(error: BaseException | None) -> str:
    """An exception in words, without its class when the message says enough."""
    if error is None:
        return "unknown error"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _append_documents(path: Path, documents: list[Document]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write("".join(dump_document(document) + "\n" for document in documents))
