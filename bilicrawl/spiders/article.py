"""The ``article`` spider: articles (专栏) with their bodies, and the cards API.

``cvids``, the ids file, ``mids`` (every article of those users) and ``lists``
(every article of those collections) give articles, each fetched once through
``/x/article/view``. ``cards`` refreshes videos, articles and live rooms as
partial documents through ``/x/article/cards``; a rejected batch is split in two
and asked again. Arguments and stored fields are in README ("``article`` spider
arguments").

Settings: ``BILI_CARDS_BATCH``. Stats: ``bilicrawl/article/{listed,
listed_already_stored}``, ``bilicrawl/cards/{<item class>,split,left_out}``,
``bilicrawl/parse_error/<what>``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from bilicrawl.config import get_int
from bilicrawl.envelope import envelope_data
from bilicrawl.extensions.closing import CrawlClosing
from bilicrawl.extensions.inputs import OPTIONAL, TAG
from bilicrawl.ids import BadId, parse_card_id, parse_cvid, parse_mid
from bilicrawl.items import ArticleItem
from bilicrawl.parsers.article import (
    parse_article,
    parse_article_list,
    parse_cards,
    parse_space_articles,
)
from bilicrawl.parsers.payload import PayloadError
from bilicrawl.spiders.base import LOGGED_BAD_INPUTS, BadInput, BiliSpider, Input, Key
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

SPACE_PAGE_SIZE = 30
"""The most /x/space/wbi/article gives per page."""


class ArticleSpider(BiliSpider):
    name = "article"
    input_args: ClassVar[tuple[str, ...]] = ("cvids", "mids", "lists", "cards")
    item_class = ArticleItem

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cards_batch: list[str] = []
        self.cards_inputs: list[int] = []
        """The input number of each id in ``cards_batch``: a cards request serves them all."""
        self.cards_per_request = 20
        self.left_out_logged = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.cards_per_request = get_int(crawler.settings, "BILI_CARDS_BATCH", minimum=1)
        return spider

    def parse_input(self, text: str) -> Key:
        try:
            return (parse_cvid(text),)
        except BadId as exc:
            raise BadInput(str(exc)) from exc

    def requests_for_input(self, source: Input) -> list[Request]:
        """Articles go through BiliSpider's checks; users, lists and cards are read here."""
        if source.kind in ("cvids", "ids_file"):
            return super().requests_for_input(source)
        parse = {"mids": parse_mid, "lists": _list_id, "cards": parse_card_id}[source.kind]
        value = self.accept(source, parse)
        if value is None:
            return []
        if source.kind == "mids":
            return [self.space_request(int(value), 1)]
        if source.kind == "lists":
            return [
                self.api_request("/x/article/list/web/articles", {"id": value}, self.parse_list)
            ]
        self.cards_batch.append(str(value))
        self.cards_inputs.append(self.input_number or 0)
        if len(self.cards_batch) < self.cards_per_request:
            return []
        return self.requests_after_inputs()

    def requests_after_inputs(self) -> list[Request]:
        batch, self.cards_batch = self.cards_batch, []
        inputs, self.cards_inputs = tuple(self.cards_inputs), []
        return [self.cards_request(batch, inputs)] if batch else []

    def requests_for(self, key: Key) -> list[Request]:
        (cvid,) = key
        return [self.api_request("/x/article/view", {"id": cvid}, self.parse_article)]

    def listed_articles(self, cvids: list[int]) -> Iterator[Request]:
        """Yield the requests of the articles a user's or a collection's list names."""
        for cvid in cvids:
            key = (cvid,)
            if self.stored and self.stored_form(ArticleItem, key) in self.stored:
                self.crawler.stats.inc_value(stat_key("article", "listed_already_stored"))
            elif key not in self.accepted:
                self.accepted.add(key)
                self.crawler.stats.inc_value(stat_key("article", "listed"))
                yield from self.requests_for(key)

    def parse_article(self, response: Response) -> Iterator[ArticleItem]:
        try:
            yield parse_article(envelope_data(response), crawled_at=int(time.time()))
        except PayloadError as exc:
            self.malformed(response, "article", exc)

    def space_request(self, mid: int, page: int) -> Request:
        return self.api_request(
            "/x/space/wbi/article",
            {"mid": mid, "pn": page, "ps": SPACE_PAGE_SIZE, "sort": "publish_time"},
            self.parse_space,
            cb_kwargs={"mid": mid, "page": page},
        )

    def parse_space(self, response: Response, mid: int, page: int) -> Iterator[Request]:
        try:
            listed = parse_space_articles(envelope_data(response))
        except PayloadError as exc:
            self.malformed(response, "space_articles", exc)
            return
        yield from self.listed_articles(listed.cvids)
        if listed.cvids and page * SPACE_PAGE_SIZE < listed.count:
            yield self.space_request(mid, page + 1)

    def parse_list(self, response: Response) -> Iterator[Request]:
        try:
            listed = parse_article_list(envelope_data(response))
        except PayloadError as exc:
            self.malformed(response, "article_list", exc)
            return
        yield from self.listed_articles(listed.cvids)

    def cards_request(self, ids: list[str], inputs: tuple[int, ...]) -> Request:
        """The cards of *ids*, serving the input numbered alike in *inputs*; the failure of
        a batch of several is made up for by splitting it."""
        return self.api_request(
            "/x/article/cards",
            {"ids": ",".join(ids)},
            self.parse_cards,
            errback=self.cards_failed,
            cb_kwargs={"ids": ids},
            meta={TAG: inputs, OPTIONAL: len(ids) > 1},
        )

    def parse_cards(self, response: Response, ids: list[str]) -> Iterator[Any]:
        try:
            cards = parse_cards(envelope_data(response) or {}, refreshed_at=int(time.time()))
        except PayloadError as exc:
            self.malformed(response, "cards", exc)
            return
        for requested, number in zip(ids, response.meta[TAG], strict=True):
            item = cards.get(requested)
            if item is None:
                self.left_out(requested, "the cards API left it out")
                if self.input_ledger is not None:
                    self.input_ledger.nothing((number,), "left_out")
            else:
                self.crawler.stats.inc_value(stat_key("cards", type(item).__name__))
                yield item

    def cards_failed(self, failure: Failure) -> Iterator[Request]:
        """Split a rejected batch in two and ask again; a single id that fails is left out."""
        if failure.check(CrawlClosing):
            return
        request = failure.request  # type: ignore[attr-defined]  # Scrapy sets it for errbacks
        ids, inputs = request.cb_kwargs["ids"], request.meta[TAG]
        if len(ids) == 1:
            self.left_out(ids[0], f"its request failed: {failure.value}")
            return
        self.crawler.stats.inc_value(stat_key("cards", "split"))
        half = len(ids) // 2
        yield self.cards_request(ids[:half], inputs[:half])
        yield self.cards_request(ids[half:], inputs[half:])

    def left_out(self, card_id: str, why: str) -> None:
        self.crawler.stats.inc_value(stat_key("cards", "left_out"))
        self.left_out_logged += 1
        if self.left_out_logged <= LOGGED_BAD_INPUTS:
            self.logger.warning("No card for %(id)s: %(why)s", {"id": card_id, "why": why})

    def malformed(self, response: Response, what: str, reason: PayloadError) -> None:
        self.crawler.stats.inc_value(stat_key("parse_error", what))
        self.logger.error(
            "Malformed %(what)s for %(url)s: %(reason)s",
            {
                "what": what,
                "url": (response.request or response).url,
                "reason": reason,
            },
        )


def _list_id(text: str) -> int:
    """Return an article collection (文集) id: a number, or ``rl123`` as the site writes it."""
    value = text.strip()
    digits = value[2:] if value[:2].lower() == "rl" else value
    if not (digits.isascii() and digits.isdigit()) or int(digits) == 0:
        raise BadId(f"{value!r} is not an article collection id")
    return int(digits)
