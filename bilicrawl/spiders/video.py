"""The ``video`` spider: metadata, parts, counters and tags of videos.

``aids``, ``bvids`` and the ids file name videos; ``BILI_VIDEO_ENDPOINT``
chooses one signed request (``detail``) or the unsigned view + tags pair
(``view``), whose video is stored without tags when they cannot be fetched.
Arguments and stored fields are in README ("``video`` spider arguments").

Settings: ``BILI_VIDEO_ENDPOINT``. Stats: ``bilicrawl/video/tags_missing``,
``bilicrawl/parse_error/video``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bilicrawl.config import get_choice
from bilicrawl.envelope import envelope_data
from bilicrawl.extensions.closing import CrawlClosing
from bilicrawl.extensions.inputs import OPTIONAL
from bilicrawl.ids import BadVideoId, parse_video_id
from bilicrawl.items import VideoItem
from bilicrawl.parsers.payload import PayloadError
from bilicrawl.parsers.video import (
    parse_tags,
    parse_view,
    parse_view_detail,
    video_stat_snapshot,
)
from bilicrawl.spiders.base import BadInput, BiliSpider, Key
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure


ENDPOINTS = ("detail", "view")


class VideoRequests(BiliSpider):
    """The requests that fetch a video and the callbacks that make it an item.

    The base of every spider that stores videos (``video``, ``user`` for uploads,
    ``danmaku`` for parts), so that they fetch and parse videos the same way.
    """

    video_endpoint = "detail"
    """``BILI_VIDEO_ENDPOINT``: one signed request, or the unsigned view + tags pair."""

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.video_endpoint = get_choice(
            crawler.settings, "BILI_VIDEO_ENDPOINT", ENDPOINTS, default=cls.video_endpoint
        )
        return spider

    def video_requests(self, aid: int) -> list[Request]:
        """Return the requests that fetch video *aid*; their callbacks yield its item."""
        if self.video_endpoint == "view":
            return [self.api_request("/x/web-interface/view", {"aid": aid}, self.parse_view)]
        return [
            self.api_request("/x/web-interface/wbi/view/detail", {"aid": aid}, self.parse_detail)
        ]

    def parse_detail(self, response: Response) -> Iterator[Any]:
        url = (response.request or response).url
        item = self.video_item(url, parse_view_detail, envelope_data(response))
        if item is not None:
            yield from self.stored_video(item)

    def stored_video(self, item: VideoItem) -> Iterator[Any]:
        """Yield a crawled video, the snapshot of its counters, and what follows it."""
        yield item
        yield video_stat_snapshot(item)
        yield from self.after_video(item)

    def after_video(self, item: VideoItem) -> Iterator[Request]:
        """Yield what a spider fetches next for a video it stored (the danmaku of its parts)."""
        return iter(())

    def parse_view(self, response: Response) -> Iterator[Request]:
        view = envelope_data(response)
        yield self.api_request(
            "/x/web-interface/view/detail/tag",
            {"aid": view["aid"]},
            self.parse_tags,
            errback=self.tags_failed,
            cb_kwargs={"view": view},
            meta={OPTIONAL: True},  # without its tags, the video is still stored
        )

    def parse_tags(self, response: Response, view: dict[str, Any]) -> Iterator[Any]:
        url = (response.request or response).url
        item = self.video_item(url, parse_view, view)
        if item is None:
            return
        try:
            item.tags = parse_tags(envelope_data(response))
        except PayloadError as exc:
            self.tags_missing(url, exc)
        yield from self.stored_video(item)

    def tags_failed(self, failure: Failure) -> Iterator[Any]:
        if failure.check(CrawlClosing):
            return  # the crawl is closing: a resumed rerun fetches the whole video
        request = failure.request  # type: ignore[attr-defined]  # Scrapy sets it for errbacks
        item = self.video_item(request.url, parse_view, request.cb_kwargs["view"])
        if item is not None:
            self.tags_missing(request.url, failure.value)
            yield from self.stored_video(item)

    def video_item(
        self, url: str, parser: Callable[..., VideoItem], data: Any
    ) -> VideoItem | None:
        """Return ``parser(data)``, or None (logged, counted) if the payload is malformed."""
        try:
            return parser(data, crawled_at=int(time.time()))
        except PayloadError as exc:
            self.crawler.stats.inc_value(stat_key("parse_error", "video"))
            self.logger.error(
                "Malformed video for %(url)s: %(reason)s",
                {
                    "url": url,
                    "reason": exc,
                },
            )
            return None

    def tags_missing(self, url: str, reason: object) -> None:
        self.crawler.stats.inc_value(stat_key("video", "tags_missing"))
        self.logger.warning(
            "Storing %(url)s without tags: %(reason)s",
            {
                "url": url,
                "reason": reason,
            },
        )


class VideoSpider(VideoRequests):
    name = "video"
    input_args = ("aids", "bvids")
    item_class = VideoItem

    def parse_input(self, text: str) -> Key:
        try:
            return (parse_video_id(text),)
        except BadVideoId as exc:
            raise BadInput(str(exc)) from exc

    def requests_for(self, key: Key) -> list[Request]:
        (aid,) = key
        return self.video_requests(aid)
