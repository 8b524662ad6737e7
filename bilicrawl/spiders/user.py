"""The ``user`` spider: profiles and counters of users, and optionally their uploads.

``mids`` and the ids file name users. A user takes ``/x/space/wbi/acc/info``
and ``/x/web-interface/card``, plus ``/x/space/upstat`` only when logged in;
``-a uploads=true`` also stores every upload with the ``video`` spider's own
requests (:class:`VideoRequests`), listed as ``BILI_UPLOADS_ENDPOINT`` chooses.
Arguments and stored fields are in README ("``user`` spider arguments").

Settings: ``BILI_SESSDATA``, ``BILI_UPLOADS_ENDPOINT``. Stats:
``bilicrawl/user/{uploads,uploads_already_stored,uploads_duplicate}``,
``bilicrawl/parse_error/{user,uploads}``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from bilicrawl.config import get_choice, parse_bool
from bilicrawl.envelope import envelope_data
from bilicrawl.ids import BadUserId, parse_mid
from bilicrawl.items import UserItem, UserStatItem, VideoItem
from bilicrawl.parsers.payload import PayloadError
from bilicrawl.parsers.user import (
    parse_arc_search,
    parse_rec_archives,
    parse_user,
    user_stat_snapshot,
)
from bilicrawl.spiders.base import BadInput, BiliSpider, Key
from bilicrawl.spiders.video import VideoRequests
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Mapping
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from bilicrawl.parsers.user import UploadsPage

UPLOADS_ENDPOINTS: dict[
    str, tuple[str, int, Callable[[dict[str, Any]], UploadsPage], dict[str, Any]]
] = {
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


class UserSpider(VideoRequests):
    name = "user"
    input_args = ("mids",)
    option_args: ClassVar[Mapping[str, Callable[[str, Any], Any]]] = {
        **BiliSpider.option_args,
        "uploads": parse_bool,
    }
    item_class = UserItem

    uploads: bool = False
    uploads_endpoint = "arc_search"
    logged_in = False

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.logged_in = bool(crawler.settings.get("BILI_SESSDATA"))
        spider.uploads_endpoint = get_choice(
            crawler.settings, "BILI_UPLOADS_ENDPOINT", UPLOADS_ENDPOINTS
        )
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
    ) -> Iterator[Request | UserItem | UserStatItem]:
        card = envelope_data(response)
        if not self.logged_in:
            yield from self.user_item((response.request or response).url, acc_info, card, None)
            return
        yield self.api_request(
            "/x/space/upstat",
            {"mid": mid},
            self.parse_upstat,
            cb_kwargs={"acc_info": acc_info, "card": card},
        )

    def parse_upstat(
        self, response: Response, acc_info: Any, card: Any
    ) -> Iterator[UserItem | UserStatItem]:
        url = (response.request or response).url
        yield from self.user_item(url, acc_info, card, envelope_data(response))

    def user_item(
        self, url: str, acc_info: Any, card: Any, upstat: Any
    ) -> Iterator[UserItem | UserStatItem]:
        """Yield the user and the snapshot of its counters, or nothing (logged, counted) if a
        payload is malformed."""
        try:
            user = parse_user(acc_info, card, upstat, crawled_at=int(time.time()))
        except PayloadError as exc:
            self.crawler.stats.inc_value(stat_key("parse_error", "user"))
            self.logger.error(
                "Malformed user for %(url)s: %(reason)s",
                {
                    "url": url,
                    "reason": exc,
                },
            )
        else:
            yield user
            yield user_stat_snapshot(user)

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
            self.logger.error(
                "Malformed upload list for %(url)s: %(reason)s",
                {
                    "url": (response.request or response).url,
                    "reason": exc,
                },
            )
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
