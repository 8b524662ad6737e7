"""The base of bilicrawl's spiders: where inputs come from and become requests.

Inputs are read from spider arguments (``-a NAME=a,b,c``) and an ids file
(``-a ids_file=PATH``, :func:`read_ids_file`); ``inputs()`` is the only source
and ``requests_for_input()`` the only conversion. ``start()`` reads inputs as
the crawl has room for them, skips those already stored under ``-a
resume=true``, and tags each accepted input's requests with its number for the
:class:`~bilicrawl.extensions.inputs.InputLedger`. How is in docs/operations.md
("Inputs").

Settings: ``BILI_INPUT_BACKLOG``. Stats: ``bilicrawl/input/{accepted,bad,
duplicate,already_stored}``.
"""

from __future__ import annotations

import asyncio
import re
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, cast
from urllib.parse import urlencode

import scrapy
from scrapy import signals

from bilicrawl.config import ConfigError, get_int, parse_bool
from bilicrawl.extensions.inputs import TAG, InputLedger
from bilicrawl.pseudonyms import pseudonymizer_from_settings
from bilicrawl.spidermiddlewares.inputs import ERRBACK, follow_errback, track
from bilicrawl.stats import stat_key
from bilicrawl.store import store_from_settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sized
    from typing import Self

    from scrapy.crawler import Crawler
    from twisted.python.failure import Failure

    from bilicrawl.items import StoredItem
    from bilicrawl.pseudonyms import Pseudonymizer


_LIST_SEPARATOR = re.compile(r"[\s,]+")
_NOT_TEXT = re.compile("[\x00\udc80-\udcff]")
"""NUL (UTF-16 read as UTF-8) or an undecodable byte, kept by ``surrogateescape``."""

MAX_LINE_CHARS = 65536
"""An ids-file line longer than this is a bad input, skipped without being read whole."""
LOGGED_BAD_INPUTS = 20
"""Bad inputs logged one by one; the rest are only counted."""
INPUTS_PER_TURN = 100
"""Inputs read between two turns given to the event loop, even when none is crawled."""
BACKLOG_RECHECK = 0.5
"""Seconds after which a full backlog is looked at again even if no request left it."""

Key = tuple[Any, ...]
"""The natural key of a stored item, e.g. ``(aid,)`` for a video."""


class BadInput(ValueError):
    """An input that does not name anything this spider can crawl."""


class Input(NamedTuple):
    """One raw input and where it came from."""

    text: str
    """The id or URL as given, without its comment and surrounding blanks."""
    origin: str
    """Where it was read, for log lines: ``-a aids`` or ``ids.txt:12`` (file and line)."""
    error: str | None = None
    """Why it is bad whatever the spider: it is not text, or the line is too long."""
    kind: str = "ids_file"
    """The argument it came from (``aids``, ``mids``...), or ``ids_file``."""


def readable_file(name: str, value: Any) -> Path:
    """Return *value* as the path of a file that opens for reading; raise ConfigError if not."""
    path = Path(value)
    try:
        path.open("rb").close()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {str(value)!r}: {exc.strerror}") from None
    return path


def read_ids_file(path: Path) -> Iterator[Input]:
    """Yield the inputs of an ids file, one per line that is not blank or a ``#`` comment.

    The file is UTF-8, with or without a BOM, and any line ending. It is decoded
    with ``surrogateescape`` so that undecodable bytes (binary junk, UTF-16) make
    only their own line bad instead of ending the file, and it is read at most
    ``MAX_LINE_CHARS`` at a time, so a file without line breaks is not held whole.
    """
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as lines:
        number = 0
        while line := lines.readline(MAX_LINE_CHARS + 1):
            number += 1
            error = None
            if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
                error = f"the line is longer than {MAX_LINE_CHARS} characters"
                while (rest := lines.readline(MAX_LINE_CHARS)) and not rest.endswith("\n"):
                    pass
            text = line.split("#", 1)[0].strip()
            if text and _NOT_TEXT.search(text):
                error = "not UTF-8 text (binary, or UTF-16?)"
            if text:
                yield Input(text, f"{path}:{number}", error)


def lines_after(path: Path, origin: str) -> int:
    """Return how many lines of *path* follow the one at *origin* (``path:number``)."""
    number = int(origin.rpartition(":")[2])
    lines, last = 0, b"\n"
    with path.open("rb") as data:
        while chunk := data.read(1 << 20):
            lines, last = lines + chunk.count(b"\n"), chunk[-1:]
    return max(lines + (last != b"\n") - number, 0)


class BiliSpider(scrapy.Spider):
    """Turns id arguments into API requests; subclasses say how.

    Spider arguments are checked: an unknown name (a misspelled ``resum=true``)
    or a bad value is a ConfigError naming the argument, before anything is
    fetched. Names starting with ``_`` are let through for the tools that
    run spiders (scrapyd passes ``_job``).
    """

    input_args: ClassVar[tuple[str, ...]] = ()
    """Spider arguments that hold comma-separated ids."""
    option_args: ClassVar[Mapping[str, Callable[[str, Any], Any]]] = {
        "ids_file": readable_file,
        "resume": parse_bool,
    }
    """The other arguments, each with the function reading its value (``(name, value)``,
    raising ConfigError); a subclass adds its own: ``{**BiliSpider.option_args, ...}``."""
    item_class: ClassVar[type[StoredItem]]
    """The item the spider stores; its natural key is what an input names."""

    ids_file: Path | None = None
    resume: bool = False
    pseudonymizer: Pseudonymizer | None = None
    """The crawl's, with ``resume`` and ``BILI_PSEUDONYMIZE``: stored keys are hashed."""
    backlog: int = 1000
    """``BILI_INPUT_BACKLOG``: at most about this many requests wait in the scheduler."""
    input_ledger: InputLedger | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        arguments = {name: self._read_argument(name, value) for name, value in kwargs.items()}
        super().__init__(*args, **arguments)
        self.stored: frozenset[Key] = frozenset()
        self.accepted: set[Key] = set()
        self.bad_inputs = 0
        self.input_number: int | None = None
        """The ledger's number of the input being read, once accepted."""
        self._unread: Iterator[Input] | None = None
        self._request_left = asyncio.Event()
        if self.ids_file is None and not any(getattr(self, a, None) for a in self.input_args):
            names = ", ".join(f"-a {arg}=..." for arg in (*self.input_args, "ids_file"))
            raise ConfigError(f"{self.name}: nothing to crawl; pass one of {names}")

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.backlog = get_int(crawler.settings, "BILI_INPUT_BACKLOG", minimum=1)
        crawler.signals.connect(
            spider._request_left.set, signal=signals.request_reached_downloader
        )
        return spider

    def _read_argument(self, name: str, value: Any) -> Any:
        if name in self.option_args:
            return self.option_args[name](f"-a {name}", value)
        if name in self.input_args or name.startswith("_"):
            return value
        names = ", ".join((*self.input_args, *self.option_args))
        raise ConfigError(f"unknown argument -a {name}; the {self.name} spider takes {names}")

    async def start(self) -> AsyncIterator[scrapy.Request]:
        self.input_ledger = self.crawler.get_extension(InputLedger)
        if self.resume:
            self.pseudonymizer = pseudonymizer_from_settings(self.settings)
            self.stored = frozenset(await self.stored_keys(self.item_class))
            self.logger.info(
                "Resuming: %(count)d %(collection)s already stored",
                {
                    "count": len(self.stored),
                    "collection": self.item_class.collection,
                },
            )
        self._unread = self.inputs()
        for count, source in enumerate(self._unread, 1):
            if count % INPUTS_PER_TURN == 0:
                await asyncio.sleep(0)  # Ctrl-C cancels this task at its next await
            self.input_number = None
            requests = self.requests_for_input(source)
            if self.input_number is not None:
                self.tag_requests((self.input_number,), requests)
            for request in requests:
                await self._room_in_backlog()
                yield request
        self._unread = None
        requests = self.requests_after_inputs()
        self.tag_requests((), requests)  # those tagged by the spider (a last cards batch)
        for request in requests:
            yield request

    def unread_inputs(self) -> int:
        """Return how many raw inputs are left unread (the crawl closed first).

        The rest of an ids file is counted by its lines, bytes only: parsing
        millions of lines would hold the exit up for seconds.
        """
        unread, self._unread = self._unread, None
        count = 0
        for source in unread or ():
            if source.kind == "ids_file" and self.ids_file is not None:
                return count + 1 + lines_after(self.ids_file, source.origin)
            count += 1
        return count

    def tag_requests(self, tag: tuple[int, ...], requests: Iterable[scrapy.Request]) -> None:
        """Tag *requests* as serving the inputs numbered in *tag* (unless tagged already)."""
        if self.input_ledger is None:
            return
        for request in requests:
            own = request.meta.setdefault(TAG, tag)
            if own:
                track(self, request)
                self.input_ledger.sent(own)

    def input_failed(self, failure: Failure) -> Any:
        """The errback of every tagged request: tell the ledger, then call the request's own."""
        request = failure.request  # type: ignore[attr-defined]  # Scrapy sets it on the failure
        tag, ledger = request.meta[TAG], self.input_ledger
        name = request.meta.get(ERRBACK)
        if ledger is None:  # only tagged requests have this errback, and only with a ledger
            return failure if name is None else getattr(self, name)(failure)
        ledger.failed(tag, failure)
        if name is None:
            ledger.answered(tag)
            return failure  # handled as if there were no errback: Scrapy logs it
        return follow_errback(ledger, self, tag, getattr(self, name)(failure))

    async def _room_in_backlog(self) -> None:
        """Return once the scheduler holds fewer than ``backlog`` requests, and the crawl
        is not paused (the store is retrying a write: no new input is read meanwhile).

        Scrapy's engine keeps reading ``start()`` while its downloader is full,
        so without this wait the whole input lands in the scheduler. The wait
        ends as soon as a request reaches the downloader (a polling interval
        would cap the crawl at ``backlog`` requests per interval). ``len()`` is
        not in Scrapy's scheduler interface, but its scheduler and scrapy-redis's
        have it; no scheduler means the spider is closed (the engine discards
        what it is given).
        """
        engine = self.crawler.engine
        while (scheduler := engine.scheduler) is not None and (
            engine.paused or len(cast("Sized", scheduler)) >= self.backlog
        ):
            self._request_left.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._request_left.wait(), BACKLOG_RECHECK)

    def inputs(self) -> Iterator[Input]:
        """Yield every raw input: the id arguments, then the ids file's lines."""
        for arg in self.input_args:
            value = getattr(self, arg, None) or ""
            for text in filter(None, _LIST_SEPARATOR.split(value)):
                yield Input(text, f"-a {arg}", kind=arg)
        if self.ids_file is not None:
            yield from read_ids_file(self.ids_file)

    def requests_for_input(self, source: Input) -> list[scrapy.Request]:
        """Return the requests for one raw input; none if it is bad, a duplicate or stored."""
        stats = self.crawler.stats
        try:
            if source.error is not None:
                raise BadInput(source.error)
            key = self.parse_input(source.text)
        except BadInput as exc:
            self.bad_input(source, exc)
            return []
        if self.stored and self.stored_form(self.item_class, key) in self.stored:
            stats.inc_value(stat_key("input", "already_stored"))
            return self.requests_for_stored(key)
        if key in self.accepted:
            stats.inc_value(stat_key("input", "duplicate"))
            return []
        self.accepted.add(key)
        self.count_accepted()
        return self.requests_for(key)

    def count_accepted(self) -> None:
        """Count the input being read as accepted and open its ledger entry."""
        self.crawler.stats.inc_value(stat_key("input", "accepted"))
        if self.input_ledger is not None:
            self.input_number = self.input_ledger.accept()

    def accept(self, source: Input, parse: Callable[[str], Any]) -> Any | None:
        """Return what an input of another kind than the spider's items names (a user whose
        articles are wanted, a card id), or None if it is bad or a duplicate (counted)."""
        try:
            if source.error is not None:
                raise BadInput(source.error)
            value = parse(source.text)
        except ValueError as exc:  # BadInput, and the Bad*Id errors of bilicrawl.ids
            self.bad_input(source, BadInput(str(exc)))
            return None
        if (source.kind, value) in self.accepted:
            self.crawler.stats.inc_value(stat_key("input", "duplicate"))
            return None
        self.accepted.add((source.kind, value))
        self.count_accepted()
        return value

    def bad_input(self, source: Input, reason: BadInput) -> None:
        """Count a bad input; log it unless ``LOGGED_BAD_INPUTS`` were logged already."""
        self.crawler.stats.inc_value(stat_key("input", "bad"))
        self.bad_inputs += 1
        if self.bad_inputs <= LOGGED_BAD_INPUTS:
            self.logger.warning(
                "Skipping bad input at %(origin)s: %(reason)s",
                {
                    "origin": source.origin,
                    "reason": reason,
                },
            )
        if self.bad_inputs == LOGGED_BAD_INPUTS:
            self.logger.warning(
                "%(count)d bad inputs: further ones are only counted, in %(key)s",
                {"count": LOGGED_BAD_INPUTS, "key": stat_key("input", "bad")},
            )

    def parse_input(self, text: str) -> Key:
        """Return the natural key *text* names; raise ``BadInput`` if it names nothing.

        The error's message is logged as the reason: it quotes *text*, shortened.
        """
        raise NotImplementedError

    def requests_for(self, key: Key) -> list[scrapy.Request]:
        """Return the requests that fetch the item with natural key *key*."""
        raise NotImplementedError

    def requests_for_stored(self, key: Key) -> list[scrapy.Request]:
        """Return the requests still due, on ``resume``, for an input already stored."""
        return []

    def requests_after_inputs(self) -> list[scrapy.Request]:
        """Return the requests due once every input is read (a last partial batch...)."""
        return []

    def api_request(
        self,
        path: str,
        params: dict[str, Any],
        callback: Callable[..., Any],
        *,
        host: str = "BILI_API_URL",
        **kwargs: Any,
    ) -> scrapy.Request:
        """Return a request for an API endpoint at the *host* setting (``api.bilibili.com``)."""
        base = self.settings[host].rstrip("/")
        url = f"{base}{path}?{urlencode(params)}" if params else f"{base}{path}"
        return scrapy.Request(url, callback=callback, **kwargs)

    async def stored_keys(self, item_class: type[StoredItem]) -> set[Key]:
        """Return the natural keys of the documents a full crawl stored for *item_class*.

        Only documents with a ``crawled_at`` count: a collection also holds partial
        documents (users from relation lists, cards), which a full crawl must still fetch.
        Keys are as stored (see ``stored_form``).
        """

        def read() -> set[Key]:
            with store_from_settings(self.settings) as store:
                return store.keys(item_class.collection, {"crawled_at": {"$ne": None}})

        return await asyncio.to_thread(read)

    def stored_form(self, item_class: type[StoredItem], key: Key) -> Key:
        """Return *key* as the store holds it: with ``BILI_PSEUDONYMIZE``, user ids hashed."""
        return key if self.pseudonymizer is None else self.pseudonymizer.key(item_class, key)
