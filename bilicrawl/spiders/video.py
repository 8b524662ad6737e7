"""The ``video`` spider: metadata, parts, counters and tags of videos.

Usage::

    scrapy crawl video -a aids=170001,2 -a bvids=BV17x411w7KC -a ids_file=ids.txt

``aids`` and ``bvids`` take comma-separated ids; the ids file holds one av
number, BV id or video URL per line, mixed. Each video costs two requests:
``/x/web-interface/view`` (metadata, parts, counters) and
``/x/web-interface/view/detail/tag`` (tags). If the tags cannot be fetched the
video is still stored, with ``tags`` None, and counted in
``bilicrawl/video/tags_missing``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bilicrawl.ids import BadVideoId, parse_video_id
from bilicrawl.parsers.video import PayloadError, parse_tags, parse_view
from bilicrawl.spiders.base import BadInput, BiliSpider
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy import Request
    from scrapy.http import Response
    from twisted.python.failure import Failure

    from bilicrawl.items import VideoItem


class VideoSpider(BiliSpider):
    name = "video"
    input_args = ("aids", "bvids")

    def parse_input(self, text: str) -> list[Request]:
        try:
            aid = parse_video_id(text)
        except BadVideoId as exc:
            raise BadInput(str(exc)) from exc
        return [self.view_request(aid)]

    def view_request(self, aid: int) -> Request:
        return self.api_request("/x/web-interface/view", {"aid": aid}, self.parse_view)

    def parse_view(self, response: Response) -> Iterator[Request]:
        view = response.json()["data"]
        yield self.api_request(
            "/x/web-interface/view/detail/tag",
            {"aid": view["aid"]},
            self.parse_tags,
            errback=self.tags_failed,
            cb_kwargs={"view": view},
        )

    def parse_tags(self, response: Response, view: dict[str, Any]) -> Iterator[VideoItem]:
        item = self.video_item(response.request, view)
        if item is None:
            return
        try:
            item.tags = parse_tags(response.json()["data"])
        except PayloadError as exc:
            self.tags_missing(response.request, exc)
        yield item

    def tags_failed(self, failure: Failure) -> Iterator[VideoItem]:
        request = failure.request  # type: ignore[attr-defined]
        item = self.video_item(request, request.cb_kwargs["view"])
        if item is not None:
            self.tags_missing(request, failure.value)
            yield item

    def video_item(self, request: Request, view: dict[str, Any]) -> VideoItem | None:
        """Return the video in *view*, or None (logged, counted) if it is malformed."""
        try:
            return parse_view(view, crawled_at=int(time.time()))
        except PayloadError as exc:
            self.crawler.stats.inc_value(stat_key("parse_error", "view"))
            self.logger.error("Malformed video for %(url)s: %(reason)s", {
                "url": request.url, "reason": exc,
            })
            return None

    def tags_missing(self, request: Request, reason: object) -> None:
        self.crawler.stats.inc_value(stat_key("video", "tags_missing"))
        self.logger.warning("Storing %(url)s without tags: %(reason)s", {
            "url": request.url, "reason": reason,
        })
