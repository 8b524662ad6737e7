"""The ``live`` spider: live rooms.

``rooms`` and the ids file take room ids, long or short; ``mids`` the room of
each user (``/room/v1/Room/getRoomInfoOld``). A room is one request to the live
API, ``/room/v1/Room/get_info``, and is stored under its long id however it was
named. Arguments and stored fields are in README ("``live`` spider arguments").

Settings: ``BILI_LIVE_API_URL``. Stats: ``bilicrawl/live/{no_room,same_room}``,
``bilicrawl/parse_error/live``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from bilicrawl.envelope import envelope_data
from bilicrawl.ids import BadId, parse_mid, parse_room_id
from bilicrawl.items import LiveRoomItem
from bilicrawl.parsers.live import parse_room, parse_room_of_user
from bilicrawl.parsers.payload import PayloadError
from bilicrawl.spiders.base import BadInput, BiliSpider, Input, Key
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy import Request
    from scrapy.http import Response

LIVE_HOST = "BILI_LIVE_API_URL"


class LiveSpider(BiliSpider):
    name = "live"
    input_args: ClassVar[tuple[str, ...]] = ("rooms", "mids")
    item_class = LiveRoomItem

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rooms_stored: set[int] = set()
        """Long ids stored in this crawl: a short and a long id name the same room."""

    def parse_input(self, text: str) -> Key:
        try:
            return (parse_room_id(text),)
        except BadId as exc:
            raise BadInput(str(exc)) from exc

    def requests_for_input(self, source: Input) -> list[Request]:
        if source.kind != "mids":
            return super().requests_for_input(source)
        mid = self.accept(source, parse_mid)
        if mid is None:
            return []
        return [
            self.api_request(
                "/room/v1/Room/getRoomInfoOld",
                {"mid": mid},
                self.parse_room_of_user,
                host=LIVE_HOST,
                cb_kwargs={"mid": mid},
            )
        ]

    def requests_for(self, key: Key) -> list[Request]:
        (room_id,) = key
        return [
            self.api_request(
                "/room/v1/Room/get_info", {"room_id": room_id}, self.parse_room, host=LIVE_HOST
            )
        ]

    def parse_room_of_user(self, response: Response, mid: int) -> Iterator[Request]:
        try:
            room_id = parse_room_of_user(envelope_data(response))
        except PayloadError as exc:
            self.malformed(response, exc)
            return
        if room_id is None:
            self.crawler.stats.inc_value(stat_key("live", "no_room"))
            self.logger.info("User %(mid)d has no live room", {"mid": mid})
        elif (room_id,) not in self.accepted:
            self.accepted.add((room_id,))
            yield from self.requests_for((room_id,))

    def parse_room(self, response: Response) -> Iterator[LiveRoomItem]:
        try:
            room = parse_room(envelope_data(response), crawled_at=int(time.time()))
        except PayloadError as exc:
            self.malformed(response, exc)
            return
        if room.room_id in self.rooms_stored:
            self.crawler.stats.inc_value(stat_key("live", "same_room"))
            return
        self.rooms_stored.add(room.room_id)
        yield room

    def malformed(self, response: Response, reason: PayloadError) -> None:
        self.crawler.stats.inc_value(stat_key("parse_error", "live"))
        self.logger.error(
            "Malformed live answer for %(url)s: %(reason)s",
            {
                "url": (response.request or response).url,
                "reason": reason,
            },
        )
