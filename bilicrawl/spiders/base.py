"""The base of bilicrawl's spiders: where inputs come from and become requests.

Inputs are read from spider arguments (``-a NAME=a,b,c``, one argument per
kind of id) and from an ids file (``-a ids_file=PATH``: one id or URL per line;
blank lines and ``#`` comments are skipped). ``inputs()`` is the only source and
``requests_for_input()`` the only conversion, so a distributed (Redis-fed)
spider replaces ``inputs()`` and keeps everything else. Bad inputs are logged
with the reason and counted in ``bilicrawl/input/bad``; the crawl goes on.

With ``-a resume=true`` inputs whose document is already stored are skipped
(counted in ``bilicrawl/input/already_stored``): rerunning an interrupted crawl
fetches only what it had not stored yet.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode

import scrapy

from bilicrawl.pipelines.batching import BatchingStorePipeline
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator


_LIST_SEPARATOR = re.compile(r"[\s,]+")
_TRUE = frozenset({"1", "true", "yes", "on"})

Key = tuple[Any, ...]
"""The natural key of a stored item, e.g. ``(aid,)`` for a video."""


class BadInput(ValueError):
    """An input that does not name anything this spider can crawl."""


class BiliSpider(scrapy.Spider):
    """Turns id arguments into API requests; subclasses say how."""

    input_args: ClassVar[tuple[str, ...]] = ()
    """Spider arguments that hold comma-separated ids."""
    item_class: ClassVar[Any]
    """The item the spider stores; its natural key is what an input names."""

    def __init__(
        self,
        *args: Any,
        ids_file: str | None = None,
        resume: str | bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.ids_file = Path(ids_file) if ids_file else None
        self.resume = resume is True or str(resume).lower() in _TRUE
        self.stored: frozenset[Key] = frozenset()
        if self.ids_file is not None and not self.ids_file.is_file():
            raise ValueError(f"ids_file {str(self.ids_file)!r} is not a readable file")
        if self.ids_file is None and not any(getattr(self, a, None) for a in self.input_args):
            names = ", ".join(f"-a {arg}=..." for arg in (*self.input_args, "ids_file"))
            raise ValueError(f"{self.name}: nothing to crawl; pass one of {names}")

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.resume:
            self.stored = frozenset(await self._stored_keys())
            self.logger.info("Resuming: %(count)d %(collection)s already stored", {
                "count": len(self.stored), "collection": self.item_class.collection,
            })
        for text in self.inputs():
            for request in self.requests_for_input(text):
                yield request

    def inputs(self) -> Iterator[str]:
        """Yield every raw input: the id arguments, then the ids file's lines."""
        for arg in self.input_args:
            value = getattr(self, arg, None) or ""
            yield from filter(None, _LIST_SEPARATOR.split(value))
        if self.ids_file is not None:
            with self.ids_file.open(encoding="utf-8") as lines:
                for line in lines:
                    text = line.split("#", 1)[0].strip()
                    if text:
                        yield text

    def requests_for_input(self, text: str) -> list[scrapy.Request]:
        """Return the requests for one raw input, or none if it is bad or already stored."""
        stats = self.crawler.stats
        try:
            key = self.parse_input(text)
        except BadInput as exc:
            self.logger.warning("Skipping bad input %(input)r: %(reason)s", {
                "input": text, "reason": exc,
            })
            stats.inc_value(stat_key("input", "bad"))
            return []
        if key in self.stored:
            stats.inc_value(stat_key("input", "already_stored"))
            return []
        stats.inc_value(stat_key("input", "accepted"))
        return self.requests_for(key)

    def parse_input(self, text: str) -> Key:
        """Return the natural key *text* names; raise ``BadInput`` if it names nothing."""
        raise NotImplementedError

    def requests_for(self, key: Key) -> list[scrapy.Request]:
        """Return the requests that fetch the item with natural key *key*."""
        raise NotImplementedError

    def api_request(
        self, path: str, params: dict[str, Any], callback: Callable[..., Any], **kwargs: Any
    ) -> scrapy.Request:
        """Return a request for an ``api.bilibili.com`` endpoint (at ``BILI_API_URL``)."""
        base = self.settings["BILI_API_URL"].rstrip("/")
        url = f"{base}{path}?{urlencode(params)}" if params else f"{base}{path}"
        return scrapy.Request(url, callback=callback, **kwargs)

    async def _stored_keys(self) -> set[Key]:
        store = self.crawler.get_item_pipeline(BatchingStorePipeline)
        if store is None:
            raise ValueError("resume needs a storage pipeline (MongoPipeline or SQLitePipeline)")
        return await store.stored_keys(self.item_class.collection)
