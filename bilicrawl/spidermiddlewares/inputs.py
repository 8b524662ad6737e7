"""Pass each input's tag from a response to what its callback yields, as depth is passed on.

The base spider tags the requests of an accepted input with
``meta["bili_input"]``; this middleware gives the same tag to the requests a
callback yields (unless they carry one of their own), routes their failures to
the spider's ``input_failed`` errback (which calls theirs), and tells the
:class:`~bilicrawl.extensions.inputs.InputLedger` what each answer led to, so
the ledger knows when an input is done. Untagged responses pass untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy import Request

from bilicrawl.extensions.inputs import TAG, InputLedger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

ERRBACK = "bili_errback"
"""Request meta key: the name of the spider errback ``input_failed`` hands a failure to."""


def follow(ledger: InputLedger, spider: Spider, tag: tuple[int, ...], output: Any) -> Any:
    """Count one thing an answer of *tag* yielded: a request (tagged, sent) or an item."""
    if isinstance(output, Request):
        own = output.meta.setdefault(TAG, tag)
        if own:
            track(spider, output)
            ledger.sent(own)
    elif output is not None:
        ledger.item(tag, output)
    return output


def track(spider: Spider, request: Request) -> None:
    """Route the failure of a tagged request through ``spider.input_failed``."""
    handler = spider.input_failed  # type: ignore[attr-defined]  # BiliSpider's; only it tags
    if request.errback != handler:
        if request.errback is not None:
            request.meta[ERRBACK] = request.errback.__name__
        request.errback = handler


def follow_errback(
    ledger: InputLedger, spider: Spider, tag: tuple[int, ...], output: Iterable[Any] | None
) -> Iterable[Any]:
    """Count what an errback of *tag* yielded, then its failed request as answered."""
    try:
        for item in output or ():
            yield follow(ledger, spider, tag, item)
    except Exception:
        ledger.spider_failed(tag)
        raise
    finally:
        ledger.answered(tag)


class InputTags:
    """Passes input tags on and reports answers to the ledger (see the module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.ledger = crawler.get_extension(InputLedger)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        tag = response.meta.get(TAG) if response.request is not None else None
        ledger, spider = self.ledger, self.crawler.spider
        if not tag or ledger is None or spider is None:
            async for output in result:
                yield output
            return
        try:
            async for output in result:
                yield follow(ledger, spider, tag, output)
        except Exception:
            ledger.spider_failed(tag)
            raise
        finally:
            ledger.answered(tag)
