"""The ``relation`` spider: the follower graph, breadth-first from seed users.

Seeds come from ``mids`` and the ids file; ``direction``, ``depth`` and
``max_users`` bound the crawl, which goes level by level, admitting users in the
order they were found. Each list is paged through up to its end or a cap, gives
edges and partial ``users`` documents, and is recorded in ``relation_lists``
with its status. There is no ``resume``. Arguments and stored fields are in
README ("``relation`` spider arguments").

Settings: ``BILI_FOLLOWERS_CAP``, ``BILI_FOLLOWINGS_CAP``. Stats:
``bilicrawl/relation/{users,users_over_max}``, ``bilicrawl/relation/lists/<status>``,
``bilicrawl/parse_error/relation``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from bilicrawl.config import ConfigError, get_int
from bilicrawl.envelope import decode_envelope
from bilicrawl.extensions.closing import CrawlClosing
from bilicrawl.ids import BadUserId, parse_mid
from bilicrawl.items import RelationItem, RelationListItem, UserStubItem
from bilicrawl.parsers.payload import PayloadError
from bilicrawl.parsers.user import parse_relation_list, parse_relation_stat
from bilicrawl.spiders.base import BadInput, BiliSpider, Key, readable_file
from bilicrawl.stats import stat_key

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

DIRECTIONS = ("followers", "followings")
PAGE_SIZE = 50
"""The most the list endpoints give per page."""
HIDDEN_CODES = {22118: "followers", 22115: "followings"}
LOGIN_REQUIRED = -101


def parse_directions(name: str, value: Any) -> tuple[str, ...]:
    """Return the directions of ``-a direction=followers|followings|both``."""
    text = str(value).strip().lower()
    if text == "both":
        return DIRECTIONS
    if text in DIRECTIONS:
        return (text,)
    raise ConfigError(f"{name} must be followers, followings or both, not {value!r}")


def parse_count(name: str, value: Any) -> int:
    """Return a whole number of at least 1 (``depth``, ``max_users``)."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, not {value!r}")
    return int(text)


class Found(NamedTuple):
    """Where a user not yet admitted was first listed: the BFS order of the next level."""

    parent: int
    """Admission number of the user whose list named it."""
    direction: int
    page: int
    position: int


class ListState:
    """One list being paged through."""

    def __init__(self, mid: int, direction: str, cap: int) -> None:
        self.mid = mid
        self.direction = direction
        self.cap = cap
        self.seen: set[int] = set()
        self.total: int | None = None


class RelationSpider(BiliSpider):
    name = "relation"
    input_args = ("mids",)
    option_args: ClassVar[Mapping[str, Callable[[str, Any], Any]]] = {
        "ids_file": readable_file,
        "direction": parse_directions,
        "depth": parse_count,
        "max_users": parse_count,
    }
    item_class = RelationListItem

    direction: tuple[str, ...] = DIRECTIONS
    depth: int = 1
    max_users: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.level = 1
        self.admitted: dict[int, int] = {}
        """Users whose lists are fetched: mid -> admission number."""
        self.open_lists = 0
        """Lists of the current level not finished yet."""
        self.seeds_read = False
        self.next_level: dict[int, Found] = {}
        self.lists: dict[tuple[int, str], ListState] = {}
        self.listed: set[int] = set()
        """Users already stored as partial documents in this crawl."""
        self.caps: dict[str, int] = {}
        """``BILI_FOLLOWERS_CAP`` and ``BILI_FOLLOWINGS_CAP``, by direction."""
        self.login_warned = False

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.caps = {
            "followers": get_int(crawler.settings, "BILI_FOLLOWERS_CAP", minimum=1),
            "followings": get_int(crawler.settings, "BILI_FOLLOWINGS_CAP", minimum=1),
        }
        return spider

    def parse_input(self, text: str) -> Key:
        try:
            return (parse_mid(text),)
        except BadUserId as exc:
            raise BadInput(str(exc)) from exc

    def requests_after_inputs(self) -> list[Request]:
        self.seeds_read = True
        if self.open_lists == 0:  # every seed was bad, or its lists are done already
            return list(self.next_level_requests())
        return []

    def requests_for(self, key: Key) -> list[Request]:
        (mid,) = key
        return self.admit(mid)

    def admit(self, mid: int) -> list[Request]:
        """Return the first pages of *mid*'s lists, unless ``max_users`` is reached."""
        if self.max_users is not None and len(self.admitted) >= self.max_users:
            self.crawler.stats.inc_value(stat_key("relation", "users_over_max"))
            return []
        self.admitted[mid] = len(self.admitted)
        self.crawler.stats.inc_value(stat_key("relation", "users"))
        requests = []
        for direction in self.direction:
            self.lists[mid, direction] = ListState(mid, direction, self.caps[direction])
            self.open_lists += 1
            requests.append(self.page_request(mid, direction, 1))
        return requests

    def page_request(self, mid: int, direction: str, page: int) -> Request:
        return self.api_request(
            f"/x/relation/{direction}",
            {"vmid": mid, "pn": page, "ps": PAGE_SIZE},
            self.parse_page,
            errback=self.page_failed,
            cb_kwargs={"mid": mid, "direction": direction, "page": page},
            meta={"bili_allow_codes": [*HIDDEN_CODES, LOGIN_REQUIRED]},
        )

    def parse_page(self, response: Response, mid: int, direction: str, page: int) -> Iterator[Any]:
        state = self.lists[mid, direction]
        envelope = decode_envelope(response) or {}
        code = envelope.get("code")
        if code in HIDDEN_CODES or code == LOGIN_REQUIRED:
            yield self.stat_request(state, "hidden" if code in HIDDEN_CODES else "login_required")
            return
        try:
            listed = parse_relation_list(envelope.get("data"))
        except PayloadError as exc:
            self.crawler.stats.inc_value(stat_key("parse_error", "relation"))
            self.logger.error(
                "Malformed list page %(url)s: %(reason)s",
                {
                    "url": (response.request or response).url,
                    "reason": exc,
                },
            )
            yield from self.list_done(state, "failed")
            return
        if listed.total is not None:
            state.total = listed.total
        room = state.cap - (page - 1) * PAGE_SIZE
        now = int(time.time())
        for position, entry in enumerate(listed.users[:room]):
            other = entry.stub.mid
            yield from self.listed_user(entry.stub)
            if direction == "followers":
                yield RelationItem(src_mid=other, dst_mid=mid, mtime=entry.mtime, crawled_at=now)
            else:
                yield RelationItem(src_mid=mid, dst_mid=other, mtime=entry.mtime, crawled_at=now)
            state.seen.add(other)
            self.found(
                other, Found(self.admitted[mid], DIRECTIONS.index(direction), page, position)
            )
        fetched = page * PAGE_SIZE
        if not listed.users or (state.total is not None and len(state.seen) >= state.total):
            yield from self.list_done(state, self.end_status(state))
        elif fetched >= state.cap:
            yield from self.list_done(state, "capped")
        else:
            yield self.page_request(mid, direction, page + 1)

    @staticmethod
    def end_status(state: ListState) -> str:
        """complete, or capped when the site stopped giving users before ``total``."""
        if state.total is None or len(state.seen) >= state.total:
            return "complete"
        return "capped"

    def listed_user(self, stub: UserStubItem) -> Iterator[UserStubItem]:
        """Yield a listed user's partial document, once per crawl."""
        if stub.mid not in self.listed:
            self.listed.add(stub.mid)
            yield stub

    def found(self, mid: int, where: Found) -> None:
        """Remember a user for the next level, at the first place it was found."""
        if self.level < self.depth and mid not in self.admitted:
            known = self.next_level.get(mid)
            if known is None or where < known:
                self.next_level[mid] = where

    def page_failed(self, failure: Failure) -> Iterator[Any]:
        if failure.check(CrawlClosing):
            return  # closing now: the list is neither done nor failed
        kwargs = failure.request.cb_kwargs  # type: ignore[attr-defined]  # Scrapy sets it for errbacks
        yield from self.list_done(self.lists[kwargs["mid"], kwargs["direction"]], "failed")

    def stat_request(self, state: ListState, status: str) -> Request:
        """Return the request for a list's total when the list itself gave none."""
        if status == "login_required" and not self.login_warned:
            self.login_warned = True
            self.logger.warning(
                "The site asks for a login to read relation lists: set BILI_SESSDATA; "
                "these lists are recorded as login_required"
            )
        elif status == "hidden":
            self.logger.info(
                "%(direction)s of %(mid)d are hidden by the user",
                {
                    "direction": state.direction.capitalize(),
                    "mid": state.mid,
                },
            )
        return self.api_request(
            "/x/relation/stat",
            {"vmid": state.mid},
            self.parse_stat,
            errback=self.stat_failed,
            cb_kwargs={"mid": state.mid, "direction": state.direction, "status": status},
            dont_filter=True,  # both lists of a user may need it
        )

    def parse_stat(
        self, response: Response, mid: int, direction: str, status: str
    ) -> Iterator[Any]:
        state = self.lists[mid, direction]
        try:
            counts = parse_relation_stat((decode_envelope(response) or {}).get("data"))
        except PayloadError as exc:
            self.logger.error(
                "Malformed relation stat %(url)s: %(reason)s",
                {
                    "url": (response.request or response).url,
                    "reason": exc,
                },
            )
        else:
            state.total = counts.follower if direction == "followers" else counts.following
        yield from self.list_done(state, status)

    def stat_failed(self, failure: Failure) -> Iterator[Any]:
        if failure.check(CrawlClosing):
            return
        kwargs = failure.request.cb_kwargs  # type: ignore[attr-defined]  # Scrapy sets it for errbacks
        yield from self.list_done(self.lists[kwargs["mid"], kwargs["direction"]], kwargs["status"])

    def list_done(self, state: ListState, status: str) -> Iterator[Any]:
        """Record a finished list; when it was the level's last, start the next level."""
        self.crawler.stats.inc_value(stat_key("relation", "lists", status))
        yield RelationListItem(
            mid=state.mid,
            direction=state.direction,
            total=state.total,
            seen=len(state.seen),
            status=status,
            crawled_at=int(time.time()),
        )
        del self.lists[state.mid, state.direction]
        self.open_lists -= 1
        if self.open_lists == 0 and self.seeds_read:
            yield from self.next_level_requests()

    def next_level_requests(self) -> Iterator[Request]:
        """Admit the users found by the level just finished, in BFS order."""
        while self.open_lists == 0 and self.next_level:
            found, self.next_level = self.next_level, {}
            self.level += 1
            for mid in sorted(found, key=found.__getitem__):
                if mid not in self.admitted:  # a seed read after a list named it
                    yield from self.admit(mid)
