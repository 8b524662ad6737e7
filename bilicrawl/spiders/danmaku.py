"""The ``danmaku`` spider: every danmaku of video parts, and how complete they are.

Videos (``aids``, ``bvids``, the ids file) are read through the ``video``
spider's own requests (:class:`VideoRequests`), ``cids`` name parts directly,
``rooms`` live rooms; ``source`` and ``history`` choose what is fetched. Each
answer is one :class:`~bilicrawl.items.DanmakuBatchItem`, each part and history
day fetched gets a record. Arguments and stored fields are in README
("``danmaku`` spider arguments"), the design in docs/danmaku.md.

Settings: ``BILI_DANMAKU_SEG_ENDPOINT``, ``BILI_DANMAKU_XML_ENDPOINT``,
``BILI_SESSDATA`` (required by ``history``). Stats: ``bilicrawl/danmaku/{parts,
parts_already_stored,history_resumed_parts,history_days_already_stored,closed}``,
``bilicrawl/danmaku/rows/<source>``.
"""

from __future__ import annotations

import datetime
import time
from array import array
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar

from bilicrawl.config import ConfigError, get_choice
from bilicrawl.envelope import envelope_data
from bilicrawl.extensions.closing import CrawlClosing
from bilicrawl.ids import parse_room_id, parse_video_id
from bilicrawl.items import (
    DanmakuBatchItem,
    DanmakuHistoryDayItem,
    DanmakuPartItem,
    DanmakuStored,
    LiveDanmakuBatchItem,
    VideoItem,
)
from bilicrawl.parsers.danmaku import (
    parse_history_index,
    parse_live_history,
    parse_segment,
    parse_view,
    parse_xml,
    segment_count,
)
from bilicrawl.parsers.live import parse_room
from bilicrawl.parsers.payload import PayloadError
from bilicrawl.spiders.base import BadInput, BiliSpider, Input, Key
from bilicrawl.spiders.live import LIVE_HOST
from bilicrawl.spiders.video import VideoRequests
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Mapping
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

SOURCES = {"seg": ("seg",), "xml": ("xml",), "both": ("seg", "xml")}
DANMAKU_SOURCES = ("seg", "xml", "history")
SEG_PATHS = {"wbi": "/x/v2/dm/wbi/web/seg.so", "web": "/x/v2/dm/web/seg.so"}
XML_ENDPOINTS = ("list", "comment")
"""``BILI_DANMAKU_XML_ENDPOINT``: ``/x/v1/dm/list.so?oid=`` on the API host, or
``/<cid>.xml`` on the comment host (``BILI_COMMENT_URL``); the same pool."""


def parse_sources(name: str, value: Any) -> tuple[str, ...]:
    """Return the sources of ``-a source=seg|xml|both``."""
    try:
        return SOURCES[str(value).strip().lower()]
    except KeyError:
        raise ConfigError(f"{name} must be seg, xml or both, not {value!r}") from None


def parse_date_range(name: str, value: Any) -> tuple[datetime.date, datetime.date]:
    """Return the days of ``-a history=YYYY-MM-DD..YYYY-MM-DD`` (both included)."""
    first, separator, last = str(value).partition("..")
    try:
        start, end = datetime.date.fromisoformat(first), datetime.date.fromisoformat(last)
    except ValueError:
        separator = ""
    if not separator or start > end:
        raise ConfigError(f"{name} must be FROM..TO, two YYYY-MM-DD dates in order, not {value!r}")
    return start, end


def _months(start: datetime.date, end: datetime.date) -> list[str]:
    """The months (YYYY-MM) a date range touches."""
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


class Part:
    """One part being crawled: its facts, what each source gave, what is still awaited."""

    def __init__(
        self, cid: int, aid: int | None, duration: int | None, stat_danmaku: int | None
    ) -> None:
        self.cid, self.aid, self.duration, self.stat_danmaku = cid, aid, duration, stat_danmaku
        self.viewed = False
        """The view answered: without it the part is unknown (or resumed for its history
        only), and gets no record."""
        self.view_count: int | None = None
        self.maxlimit: int | None = None
        self.closed = False
        self.expected = 0
        self.fetched = 0
        self.dmids: dict[str, array[int]] = {source: array("q") for source in DANMAKU_SOURCES}
        """The dmids each source gave, as raw int64s: a set would keep the parser's int
        objects alive, scattered over memory the rows freed, which then stays taken."""
        self.pending = 0
        """Requests of this part not answered yet; the record is written at 0."""


class DanmakuSpider(VideoRequests):
    name = "danmaku"
    input_args = ("cids", "aids", "bvids", "rooms")
    option_args: ClassVar[Mapping[str, Callable[[str, Any], Any]]] = {
        **BiliSpider.option_args,
        "source": parse_sources,
        "history": parse_date_range,
    }
    item_class = DanmakuPartItem

    source: tuple[str, ...] = ("seg",)
    history: tuple[datetime.date, datetime.date] | None = None
    seg_path = SEG_PATHS["wbi"]
    xml_endpoint = "list"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parts: dict[int, Part] = {}
        self.stored_days: frozenset[Key] = frozenset()
        """With ``resume`` and ``history``, the ``(cid, date)`` already fetched."""

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.seg_path = SEG_PATHS[get_choice(settings, "BILI_DANMAKU_SEG_ENDPOINT", SEG_PATHS)]
        spider.xml_endpoint = get_choice(settings, "BILI_DANMAKU_XML_ENDPOINT", XML_ENDPOINTS)
        if spider.history is not None and not crawler.settings.get("BILI_SESSDATA"):
            raise ConfigError(
                "-a history needs a login: the site serves history danmaku only"
                " to logged-in clients; set BILI_SESSDATA"
            )
        return spider

    async def start(self) -> AsyncIterator[Request]:
        if self.resume and self.history is not None:
            self.stored_days = frozenset(await self.stored_keys(DanmakuHistoryDayItem))
        async for request in super().start():
            yield request

    def parse_input(self, text: str) -> Key:
        value = text.strip()
        if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 1 << 63:
            raise BadInput(f"{value[:40]!r} is not a part id (cid)")
        return (int(value),)

    def requests_for_input(self, source: Input) -> list[Request]:
        """Parts (``cids``) go through BiliSpider's checks; videos are read here."""
        if source.kind == "cids":
            return super().requests_for_input(source)
        if source.kind == "rooms":
            room = self.accept(source, parse_room_id)
            return (
                []
                if room is None
                else [
                    self.api_request(
                        "/room/v1/Room/get_info",
                        {"room_id": room},
                        self.parse_room,
                        host=LIVE_HOST,
                    )
                ]
            )
        aid = self.accept(source, parse_video_id)
        return [] if aid is None else self.video_requests(aid)

    def requests_for(self, key: Key) -> list[Request]:
        (cid,) = key
        return self.part_requests(Part(cid, aid=None, duration=None, stat_danmaku=None))

    def requests_for_stored(self, key: Key) -> list[Request]:
        (cid,) = key
        return self.resumed_part_requests(Part(cid, aid=None, duration=None, stat_danmaku=None))

    def after_video(self, item: VideoItem) -> Iterator[Request]:
        for page in item.pages:
            key = (page.cid,)
            part = Part(page.cid, item.aid, page.duration, item.stat.danmaku)
            if self.stored and self.stored_form(DanmakuPartItem, key) in self.stored:
                self.crawler.stats.inc_value(stat_key("danmaku", "parts_already_stored"))
                yield from self.resumed_part_requests(part)
            elif key not in self.accepted:
                self.accepted.add(key)
                yield from self.part_requests(part)

    # --- requests ---------------------------------------------------------------------------

    def part_requests(self, part: Part) -> list[Request]:
        """Start a part: its view first, which says whether it is closed and its segments."""
        self.parts[part.cid] = part
        self.crawler.stats.inc_value(stat_key("danmaku", "parts"))
        return [self.request(part, "/x/v2/dm/web/view", {"type": 1}, self.parse_danmaku_view)]

    def resumed_part_requests(self, part: Part) -> list[Request]:
        """Resume a part that has its record: only its history, if asked. Never viewed,
        the part gets no new record; the one of its full crawl stays."""
        key = (part.cid,)
        if self.history is None or key in self.accepted:
            return []
        self.accepted.add(key)
        self.parts[part.cid] = part
        self.crawler.stats.inc_value(stat_key("danmaku", "history_resumed_parts"))
        return list(self.history_requests(part, self.history))

    def request(
        self,
        part: Part,
        path: str,
        params: dict[str, Any] | None,
        callback: Callable[..., Any],
        *,
        body: str = "protobuf",
        host: str = "BILI_API_URL",
        **cb_kwargs: Any,
    ) -> Request:
        """A request of the part, counted in its ``pending``; ``params`` None: the path alone."""
        part.pending += 1
        if params is not None:
            params = {**params, "oid": part.cid, **({"pid": part.aid} if part.aid else {})}
        return self.api_request(
            path,
            params or {},
            callback,
            host=host,
            errback=self.request_failed,
            cb_kwargs={"cid": part.cid, **cb_kwargs},
            meta={"bili_body": body},
        )

    def parse_danmaku_view(self, response: Response, cid: int) -> Iterator[Any]:
        part = self.parts[cid]
        try:
            view = parse_view(response.body)
        except PayloadError as exc:
            self.malformed(response, "danmaku_view", exc)
            yield from self.answered(part)
            return
        part.viewed, part.view_count, part.closed = True, view.count, view.closed
        if not part.closed:
            part.expected = view.segments or segment_count(part.duration or 0)
            yield from self.source_requests(part)
        yield from self.answered(part)

    def source_requests(self, part: Part) -> Iterator[Request]:
        if "seg" in self.source:
            for index in range(1, part.expected + 1):
                yield self.request(
                    part, self.seg_path, {"type": 1, "segment_index": index}, self.parse_segment
                )
        if "xml" in self.source:
            yield self.xml_request(part)
        if self.history is not None:
            yield from self.history_requests(part, self.history)

    def xml_request(self, part: Part) -> Request:
        if self.xml_endpoint == "comment":
            return self.request(
                part, f"/{part.cid}.xml", None, self.parse_xml, body="xml", host="BILI_COMMENT_URL"
            )
        return self.request(part, "/x/v1/dm/list.so", {}, self.parse_xml, body="xml")

    def history_requests(
        self, part: Part, history: tuple[datetime.date, datetime.date]
    ) -> Iterator[Request]:
        """The month indexes of the range, asked even on resume: a month gains days until
        it ends, and its index is one small request."""
        first, last = history
        for month in _months(first, last):
            yield self.request(
                part,
                "/x/v2/dm/history/index",
                {"type": 1, "month": month},
                self.parse_history_index,
                body="json",
                first_day=first.isoformat(),
                last_day=last.isoformat(),
            )

    # --- answers ----------------------------------------------------------------------------

    def parse_segment(self, response: Response, cid: int) -> Iterator[Any]:
        part = self.parts[cid]
        try:
            segment = parse_segment(response.body)
        except PayloadError as exc:
            self.malformed(response, "danmaku_segment", exc)
        else:
            part.fetched += 1
            part.closed = part.closed or segment.closed
            yield from self.batch(part, "seg", segment.rows)
        yield from self.answered(part)

    def parse_xml(self, response: Response, cid: int) -> Iterator[Any]:
        part = self.parts[cid]
        try:
            pool = parse_xml(response.body)
        except PayloadError as exc:
            self.malformed(response, "danmaku_xml", exc)
        else:
            part.maxlimit = pool.maxlimit
            part.closed = part.closed or pool.closed
            yield from self.batch(part, "xml", pool.rows)
        yield from self.answered(part)

    def parse_history_index(
        self, response: Response, cid: int, first_day: str, last_day: str
    ) -> Iterator[Any]:
        part = self.parts[cid]
        try:
            days = parse_history_index(envelope_data(response))
        except PayloadError as exc:
            self.malformed(response, "danmaku_history_index", exc)
            days = []
        for day in days:
            if not first_day <= day <= last_day:
                continue
            if self.stored_form(DanmakuHistoryDayItem, (cid, day)) in self.stored_days:
                self.crawler.stats.inc_value(stat_key("danmaku", "history_days_already_stored"))
                continue
            yield self.request(
                part,
                "/x/v2/dm/web/history/seg.so",
                {"type": 1, "date": day},
                self.parse_history_day,
                date=day,
            )
        yield from self.answered(part)

    def parse_history_day(self, response: Response, cid: int, date: str) -> Iterator[Any]:
        part = self.parts[cid]
        try:
            day = parse_segment(response.body)
        except PayloadError as exc:
            self.malformed(response, "danmaku_history", exc)
        else:
            yield from self.batch(part, "history", day.rows)
            yield DanmakuHistoryDayItem(
                cid=cid, aid=part.aid, date=date, rows=len(day.rows), crawled_at=int(time.time())
            )
        yield from self.answered(part)

    def parse_room(self, response: Response) -> Iterator[Request]:
        """Resolve a room to its long id, the key of its danmaku, then ask for them."""
        try:
            room_id = parse_room(envelope_data(response), crawled_at=0).room_id
        except PayloadError as exc:
            self.malformed(response, "live", exc)
            return
        yield self.api_request(
            "/xlive/web-room/v1/dM/gethistory",
            {"roomid": room_id},
            self.parse_live_history,
            host=LIVE_HOST,
            cb_kwargs={"room_id": room_id},
        )

    def parse_live_history(self, response: Response, room_id: int) -> Iterator[Any]:
        try:
            rows = parse_live_history(envelope_data(response), room_id=room_id)
        except PayloadError as exc:
            self.malformed(response, "live_danmaku", exc)
            return
        self.crawler.stats.inc_value(stat_key("danmaku", "rows", "live"), len(rows))
        if rows:
            yield LiveDanmakuBatchItem(room_id=room_id, rows=rows, crawled_at=int(time.time()))

    def request_failed(self, failure: Failure) -> Iterator[Any]:
        if failure.check(CrawlClosing):
            return  # closing: the part is left without a record, so resume fetches it again
        request = failure.request  # type: ignore[attr-defined]  # Scrapy sets it for errbacks
        part = self.parts.get(request.cb_kwargs["cid"])
        if part is not None:
            yield from self.answered(part)

    def batch(self, part: Part, source: str, rows: list[dict[str, Any]]) -> Iterator[Any]:
        """Yield the rows of one answer as one item, and count their dmids for the record."""
        if not rows:
            return
        part.dmids[source].extend(map(itemgetter("dmid"), rows))
        self.crawler.stats.inc_value(stat_key("danmaku", "rows", source), len(rows))
        yield DanmakuBatchItem(
            cid=part.cid, aid=part.aid, source=source, rows=rows, crawled_at=int(time.time())
        )

    def answered(self, part: Part) -> Iterator[DanmakuPartItem]:
        """Count one answer of the part; after the last, yield its completeness record."""
        part.pending -= 1
        if part.pending:
            return
        del self.parts[part.cid]
        if not part.viewed:
            return  # unknown part, or its view failed: counted in unfetched, no record
        if part.closed:
            self.crawler.stats.inc_value(stat_key("danmaku", "closed"))
        seg, xml, history = (set(part.dmids.pop(source)) for source in DANMAKU_SOURCES)
        yield DanmakuPartItem(
            cid=part.cid,
            aid=part.aid,
            duration=part.duration,
            stat_danmaku=part.stat_danmaku,
            view_count=part.view_count,
            xml_maxlimit=part.maxlimit,
            closed=part.closed,
            segments_expected=part.expected,
            segments_fetched=part.fetched,
            stored=DanmakuStored(seg=len(seg), xml=len(xml), history=len(history)),
            distinct=len(seg | xml | history),
            crawled_at=int(time.time()),
        )

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
