"""The storage pipeline: each item's document validated, pseudonymised, buffered, stored.

The document is built once and goes through the steps in order. Buffers are
written to the :mod:`bilicrawl.store` on one worker thread when full, on a timer,
when the crawl starts closing and at close: rows, then documents, then records,
and a record whose rows failed is withheld, so ``resume`` never trusts it. A
failing batch is retried (``store_stalled``), then dead-lettered
(``store_failed``: the crawl closes); each commit sends ``store_committed``.
docs/storage.md says why.

Settings: ``BILI_STORE_BATCH_SIZE``, ``BILI_STORE_ROWS_BATCH_SIZE``, ``BILI_STORE_FLUSH_SECONDS``,
``BILI_STORE_RETRY_DELAYS``, ``BILI_DEAD_LETTER_DIR``, ``BILI_PSEUDONYMIZE``. Stats:
``bilicrawl/storage/{upserted,batches,retries,failed,lost,withheld,written}/<collection>``,
``bilicrawl/storage/flushes/{timer,closing}``, and validation's.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import sys
from array import array
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar, cast

from scrapy.utils.defer import deferred_from_coro

from bilicrawl import signals
from bilicrawl.config import ConfigError, get_float, get_float_list, get_int
from bilicrawl.pseudonyms import pseudonymizer_from_settings
from bilicrawl.stats import stat_key
from bilicrawl.store import store_from_settings
from bilicrawl.store.dead_letters import append_documents, dead_letter_dir, dead_letter_name
from bilicrawl.store.documents import (
    COLLECTIONS,
    Upsert,
    combine,
    combined,
    document,
    key_of,
    write_order,
)
from bilicrawl.validation import ItemValidator

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Self

    from scrapy.crawler import Crawler
    from twisted.internet.base import ReactorBase
    from twisted.internet.defer import Deferred

    from bilicrawl.items import StoredItem
    from bilicrawl.pseudonyms import Pseudonymizer
    from bilicrawl.store import Store
    from bilicrawl.store.documents import Document

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class Batch(NamedTuple):
    """Upserts taken from a collection's buffer to be written together, one per natural key."""

    collection: str
    upserts: list[Upsert]


class StorePipeline:
    """Validate, pseudonymise and store every item, in batches, through the crawl's store."""

    exit_timeout: ClassVar[float] = 5.0
    """Seconds a forced exit waits for the store before dead-lettering what is unwritten."""

    def __init__(
        self,
        crawler: Crawler,
        store: Store,
        *,
        pseudonymizer: Pseudonymizer | None = None,
        batch_size: int,
        rows_batch_size: int,
        flush_seconds: float,
        retry_delays: tuple[float, ...],
        dead_letter_dir: Path,
    ) -> None:
        self.crawler = crawler
        self.store = store
        self.validator = ItemValidator(crawler.stats)
        self.pseudonymizer = pseudonymizer
        self.batch_size = batch_size
        self.rows_batch_size = rows_batch_size
        self.flush_seconds = flush_seconds
        self.retry_delays = retry_delays
        """Seconds to wait before each retry of a failed batch; one retry per entry."""
        self.dead_letter_dir = dead_letter_dir
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

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        for old in ("SQLITE_BATCH_SIZE", "MONGO_BATCH_SIZE"):
            if settings.get(old) is not None:
                raise ConfigError(f"{old} was replaced by BILI_STORE_BATCH_SIZE; set that instead")
        store = store_from_settings(settings)
        directory = dead_letter_dir(settings, store)
        pipeline = cls(
            crawler,
            store,
            pseudonymizer=pseudonymizer_from_settings(settings),
            batch_size=get_int(settings, "BILI_STORE_BATCH_SIZE", minimum=1),
            rows_batch_size=get_int(settings, "BILI_STORE_ROWS_BATCH_SIZE", minimum=1),
            flush_seconds=get_float(settings, "BILI_STORE_FLUSH_SECONDS", positive=True),
            retry_delays=get_float_list(settings, "BILI_STORE_RETRY_DELAYS"),
            dead_letter_dir=directory,
        )
        # Last, as it may create the SQLite file: the cheapest reliable check there is.
        store.check()
        return pipeline

    async def open_spider(self) -> None:
        """Connect to the store, then start the flush timer and the forced-exit trigger."""
        await self._run(self.store.open)
        logger.info(
            "Storing items in %(store)s",
            {"store": self.store.name},
            extra={"spider": self.crawler.spider},
        )
        self._connected = True
        self._timer = asyncio.get_running_loop().create_task(self._flush_periodically())
        self._exit_trigger = _reactor().addSystemEventTrigger(
            "before", "shutdown", self.before_exit
        )

    async def process_item(self, item: Any) -> Any:
        """Validate and pseudonymise the item's document, then buffer it; write a full batch."""
        item_class: type[StoredItem] = type(item)
        stored = document(item)
        self.validator.check(item_class, stored)
        if self.pseudonymizer is not None:
            self.pseudonymizer.apply(item_class, stored)
        collection = item_class.collection
        upserts = [Upsert(doc, item_class.partial) for doc in _documents(item_class, stored)]
        if self._exiting:
            # The reactor is stopping: a batch started now might never be written.
            for path in self._dead_letter_now(collection, upserts):
                logger.warning(
                    "Forced exit: appended documents scraped meanwhile to %(path)s",
                    {"path": path},
                    extra={"spider": self.crawler.spider},
                )
            return item
        if item_class.rows_field is not None:
            # Buffered before any await: a record the same callback yields next (the
            # part's danmaku_parts) is never buffered, so never stored, before these.
            rows = self._rows.setdefault(collection, [])
            rows += upserts
            if len(rows) >= self.rows_batch_size:
                await self._flush_rows(collection)
            return item
        buffer = self._buffers.setdefault(collection, {})
        for upsert in upserts:
            key = key_of(upsert.document, item_class.natural_key)
            buffer[key] = combine(buffer.get(key), upsert)
            if len(buffer) >= self.batch_size:
                await self._flush(collection)
                buffer = self._buffers.setdefault(collection, {})
        return item

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
                    await self._run(self.store.close)
                self._connected = False
        finally:
            if self._exit_trigger is not None:
                _reactor().removeSystemEventTrigger(self._exit_trigger)
                self._exit_trigger = None
            self._executor.shutdown()
            for collection, keys in self._written.items():
                distinct = len(keys) if isinstance(keys, set) else len(set(keys))
                self.crawler.stats.set_value(stat_key("storage", "written", collection), distinct)

    def before_exit(self) -> Deferred[None]:
        """Save every document not yet stored: the reactor's "before shutdown" trigger.

        A second Ctrl-C stops the reactor without closing the spider; the reactor
        waits for the returned Deferred.
        """
        return deferred_from_coro(self._save_before_exit())

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    async def _flush(self, *collections: str) -> int:
        """Write the buffered documents of these collections; return how many batches."""
        # Take the buffers before waiting for the lock: items arriving meanwhile
        # start the next batches, which are written after these.
        taken = map(self._take, write_order((*self._rows, *collections)))
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
        return not self._failed.isdisjoint(COLLECTIONS[collection].describes)

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
                    await self._run(self.store.write, collection, upserts)
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
                        {
                            "count": len(upserts),
                            "collection": collection,
                            "attempt": attempt,
                            "attempts": len(delays) + 1,
                            "delay": delay,
                            "error": error,
                        },
                        extra={"spider": self.crawler.spider},
                    )
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
        natural_key = COLLECTIONS[collection].natural_key
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
            {
                "count": len(upserts),
                "collection": collection,
                "rows": ", ".join(COLLECTIONS[collection].describes),
            },
            extra={"spider": self.crawler.spider},
        )

    async def _give_up(
        self, collection: str, upserts: list[Upsert], error: Exception, attempts: int
    ) -> None:
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
        logger.error(
            message,
            {
                "store": self.store.name,
                "error": _cause(error),
                "count": len(upserts),
                "collection": collection,
                "attempts": attempts,
                "where": where,
            },
            extra={"spider": self.crawler.spider},
        )
        natural_key = COLLECTIONS[collection].natural_key
        self.crawler.signals.send_catch_log(
            signals.store_failed,
            collection=collection,
            error=error,
            keys=[key_of(upsert.document, natural_key) for upsert in upserts],
        )

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
            collection: combined(pending[collection], COLLECTIONS[collection].natural_key)
            for collection in write_order(pending)
            if collection in pending
        }

    def _write_all(self, batches: dict[str, list[Upsert]], written: list[str]) -> None:
        for collection, upserts in batches.items():
            if self._withheld(collection):
                return
            self.store.write(collection, upserts)
            written.append(collection)

    def _dead_letter_files(
        self, collection: str, upserts: list[Upsert]
    ) -> dict[Path, list[Document]]:
        """Group documents by dead-letter file: partial ones apart, so none is replayed as full."""
        files: dict[Path, list[Document]] = {}
        for stored, partial in upserts:
            path = self.dead_letter_dir / dead_letter_name(collection, partial)
            files.setdefault(path, []).append(stored)
        return files

    async def _dead_letter(self, collection: str, upserts: list[Upsert]) -> list[Path]:
        """Append a batch to its dead-letter files; return the files written."""
        written = []
        for path, documents in self._dead_letter_files(collection, upserts).items():
            try:
                await self._run(append_documents, path, documents)
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
                append_documents(path, documents)
            except Exception:
                self._lost(collection, documents, path)
            else:
                self._dead_lettered(collection, documents, path)
                written.append(path)
        return written

    def _dead_lettered(self, collection: str, documents: list[Document], path: Path) -> None:
        self.crawler.stats.inc_value(stat_key("storage", "failed", collection), len(documents))
        natural_key = COLLECTIONS[collection].natural_key
        keys = [key_of(document, natural_key) for document in documents[:LOGGED_KEYS]]
        logger.info(
            "Dead-lettered %(count)d documents of %(collection)s to %(path)s (keys %(fields)s:"
            " %(keys)s%(more)s)",
            {
                "count": len(documents),
                "collection": collection,
                "path": path,
                "fields": natural_key,
                "keys": keys,
                "more": ", ..." if len(documents) > LOGGED_KEYS else "",
            },
            extra={"spider": self.crawler.spider},
        )

    def _lost(self, collection: str, documents: list[Document], path: Path) -> None:
        self.crawler.stats.inc_value(stat_key("storage", "lost", collection), len(documents))
        error = sys.exc_info()[1]
        logger.critical(
            "Could not write the dead-letter file %(path)s either (%(error)s): %(count)d"
            " documents of %(collection)s are lost",
            {
                "path": path,
                "error": _cause(error),
                "count": len(documents),
                "collection": collection,
            },
            extra={"spider": self.crawler.spider},
        )


LOGGED_KEYS = 20
"""Keys of a dead-lettered batch named in its log line; the file holds them all."""


def _cause(error: BaseException | None) -> str:
    """An exception in words, without its class when the message says enough."""
    if error is None:
        return "unknown error"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _reactor() -> ReactorBase:
    """The running reactor, typed as its base class: zope's interfaces declare methods
    without ``self``, which type checkers then misread."""
    from twisted.internet import reactor  # noqa: PLC0415 (Scrapy installs the reactor)

    return cast("ReactorBase", reactor)


def _documents(item_class: type[StoredItem], stored: Document) -> list[Document]:
    """Return the documents an item stores: its own, or one per row of a batch item.

    A row becomes its document in place (the batch's other fields added to it):
    copying hundreds of thousands of rows a second would cost more than storing them.
    """
    rows_field = item_class.rows_field
    if rows_field is None:
        return [stored]
    rows: list[Document] = stored.pop(rows_field)
    # Rows are partial: a batch field the batch does not know (None: the aid of a
    # part crawled by cid) is left out, so it never erases what another batch stored.
    shared = {
        name: value
        for name, value in stored.items()
        if value is not None and name not in item_class.batch_fields
    }
    for row in rows:
        row.update(shared)
    return rows
