"""The ``user`` spider: profiles and counters of users, and optionally their uploads.

Usage::

    scrapy crawl user -a mids=2,208259 -a ids_file=users.txt -a uploads=true

``mids`` takes comma-separated user ids; the ids file holds one mid, ``UID:2``
or space URL (``https://space.bilibili.com/2/video``) per line. ``-a
resume=true`` skips users whose profile is stored (users known only from a
relation list are still fetched).

A user takes two requests: ``/x/space/wbi/acc/info`` (signed, with the
``dm_img`` parameters) and ``/x/web-interface/card`` (the counts), plus
``/x/space/upstat`` (views of all uploads) only when a login cookie is
configured (``BILI_SESSDATA``): anonymous calls answer nothing, so
``archive_view`` and ``article_view`` are then None. Unknown and deleted users
(-404, -626) are dropped by the API middleware, logged once and counted in
``bilicrawl/api_code/<code>``.

``-a uploads=true`` also stores every video the user uploaded, each fetched
with the ``video`` spider's own requests (:class:`VideoRequests`), once per
crawl however many users list it. ``BILI_UPLOADS_ENDPOINT`` chooses the list:
``"arc_search"`` (default, ``/x/space/wbi/arc/search``, signed, 50 a page) or
``"series"`` (``/x/series/recArchivesByKeywords``, unsigned, 100 a page), for
when the signed one is blocked.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from bilicrawl.config import ConfigError, parse_bool
from bilicrawl.envelope import envelope_data
from bilicrawl.ids import BadUserId, parse_mid
from bilicrawl.items import UserItem, VideoItem
from bilicrawl.parsers.payload import PayloadError
from bilicrawl.parsers.user import parse_arc_search, parse_rec_archives, parse_user
from bilicrawl.spiders.base import BadInput, BiliSpider, Key
from bilicrawl.spiders.video import VideoRequests
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Mapping
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

UPLOADS_ENDPOINTS = {
    # name: (path, page size, parser, extra parameters)
    "arc_search": (
        "/x/space/wbi/arc/search",
        50,
        parse_arc_search,
        {"order": "pubdate", "tid": 0, "platform": "web", "order_avoided": "true",
         "web_location": 1550101},
    ),
    "series": (
        "/x/series/recArchivesByKeywords",
        100,
        parse_rec_archives,
        {"keywords": "", "orderby": "pubdate"},
    ),
}  # fmt: skip


class UserSpider(VideoRequests, BiliSpider):
    name = "user"
    input_args = ("mids",)
    option_args: ClassVar[Mapping[str, Callable[[str, Any], Any]]] = {
        **BiliSpider.option_args, "uploads": parse_bool,
    }
    item_class = UserItem

    uploads: bool = False
    uploads_endpoint = "arc_search"
    logged_in = False

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.logged_in = bool(crawler.settings.get("BILI_SESSDATA"))
        spider.uploads_endpoint = crawler.settings.get("BILI_UPLOADS_ENDPOINT")
        if spider.uploads_endpoint not in UPLOADS_ENDPOINTS:
            raise ConfigError(f"BILI_UPLOADS_ENDPOINT must be one of {tuple(UPLOADS_ENDPOINTS)},"
                              f" not {spider.uploads_endpoint!r}")
        return spider

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.videos_requested: set[int] = set()
        """Uploads already requested in this crawl: a joint upload is listed by each author."""
        self.stored_videos: frozenset[Key] = frozenset()
        """With ``resume`` and ``uploads``, the videos already stored: not fetched again."""

    async def start(self) -> AsyncIterator[Request]:
        if self.resume and self.uploads:
            self.stored_videos = frozenset(await self.stored_keys(VideoItem))
        async for request in super().start():
            yield request

    def parse_input(self, text: str) -> Key:
        try:
            return (parse_mid(text),)
        except BadUserId as exc:
            raise BadInput(str(exc)) from exc

    def requests_for(self, key: Key) -> list[Request]:
        (mid,) = key
        profile = self.api_request(
            "/x/space/wbi/acc/info", {"mid": mid}, self.parse_acc_info, cb_kwargs={"mid": mid}
        )
        return [profile, *self.requests_for_stored(key)]

    def requests_for_stored(self, key: Key) -> list[Request]:
        (mid,) = key
        return [self.uploads_request(mid, 1)] if self.uploads else []

    def parse_acc_info(self, response: Response, mid: int) -> Iterator[Request]:
        yield self.api_request(
            "/x/web-interface/card",
            {"mid": mid},
            self.parse_card,
            cb_kwargs={"mid": mid, "acc_info": envelope_data(response)},
        )

    def parse_card(
        self, response: Response, mid: int, acc_info: Any
    ) -> Iterator[Request | UserItem]:
        card = envelope_data(response)
        if not self.logged_in:
            yield from self.user_item(response.request, acc_info, card, None)
            return
        yield self.api_request(
            "/x/space/upstat",
            {"mid": mid},
            self.parse_upstat,
            cb_kwargs={"acc_info": acc_info, "card": card},
        )

    def parse_upstat(self, response: Response, acc_info: Any, card: Any) -> Iterator[UserItem]:
        yield from self.user_item(response.request, acc_info, card, envelope_data(response))

    def user_item(
        self, request: Request, acc_info: Any, card: Any, upstat: Any
    ) -> Iterator[UserItem]:
        """Yield the user, or nothing (logged, counted) if a payload is malformed."""
        try:
            yield parse_user(acc_info, card, upstat, crawled_at=int(time.time()))
        except PayloadError as exc:
            self.crawler.stats.inc_value(stat_key("parse_error", "user"))
            self.logger.error("Malformed user for %(url)s: %(reason)s", {
                "url": request.url, "reason": exc,
            })

    def uploads_request(self, mid: int, page: int) -> Request:
        path, page_size, _, extra = UPLOADS_ENDPOINTS[self.uploads_endpoint]
        return self.api_request(
            path,
            {"mid": mid, "ps": page_size, "pn": page, **extra},
            self.parse_uploads,
            cb_kwargs={"mid": mid, "page": page},
        )

    def parse_uploads(self, response: Response, mid: int, page: int) -> Iterator[Request]:
        _, page_size, parser, _ = UPLOADS_ENDPOINTS[self.uploads_endpoint]
        try:
            uploads = parser(envelope_data(response))
        except PayloadError as exc:
            self.crawler.stats.inc_value(stat_key("parse_error", "uploads"))
            self.logger.error("Malformed upload list for %(url)s: %(reason)s", {
                "url": response.request.url, "reason": exc,
            })
            return
        for aid in uploads.aids:
            if self.stored_videos and self.stored_form(VideoItem, (aid,)) in self.stored_videos:
                self.crawler.stats.inc_value(stat_key("user", "uploads_already_stored"))
                continue
            if aid in self.videos_requested:
                self.crawler.stats.inc_value(stat_key("user", "uploads_duplicate"))
                continue
            self.videos_requested.add(aid)
            self.crawler.stats.inc_value(stat_key("user", "uploads"))
            yield from self.video_requests(aid)
        if uploads.aids and page * page_size < uploads.count:
            yield self.uploads_request(mid, page + 1)
