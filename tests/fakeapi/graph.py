"""The fake site's population: who follows whom, who hides which list, who uploaded what.

About 3,000 users (``graph_mids()``), small mids and 16-digit ones mixed as on
the site, are built once per process from fixed seeds, the first time anything
asks. Popularity is skewed: a few celebrities have more than 1,000 followers
and most users a handful; most users follow a few dozen others, a few follow
hundreds. Users mostly follow people of their own community, so a small
user's neighbourhood stays small. About 5% of the users hide their followers
and 5% their followings (never a celebrity). Every follow has an ``mtime``:
the Unix second it happened, refreshed when the follow became mutual. Every
other mid is a user too, with no follows and no uploads.

The named users below are given their role when the graph is built; the
tests check that each one fits its description.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import random
from typing import Literal

from bilicrawl.ids import MAX_AID

Direction = Literal["followers", "followings"]

FOLLOWERS_CAP_LOGGED_IN = 1000
"""Followers a logged-in visitor can page through (20 pages of 50); the site serves no more."""
FOLLOWERS_CAP_ANONYMOUS = 100
"""Followers an anonymous visitor can page through."""
FOLLOWINGS_CAP = 100
"""Followings anyone but the user can page through (2 pages of 50)."""

CELEBRITY = 777536
"""A user with more than 1,000 followers: the followers list is cut at its caps."""
HEAVY_FOLLOWER = 3493118483376209
"""A user who follows more than 100 others: the followings list is cut at its cap."""
HIDES_FOLLOWERS = 20991554
"""A user with followers who hides the list (22118); the followings are public."""
HIDES_FOLLOWINGS = 3494352000112345
"""A user with followings who hides the list (22115); the followers are public."""
SMALL_SEED = 405210117
"""A user with 5-40 followers and 5-40 followings, nothing hidden, no celebrity among them."""
NO_UPLOADS = 3546612800005019
"""A user of the graph with no uploads."""
MANY_UPLOADS = 8047632
"""A user of the graph with 60-120 uploads (more than two pages of ``arc/search``)."""

_USERS = 3000
_NAMED = (CELEBRITY, HEAVY_FOLLOWER, HIDES_FOLLOWERS, HIDES_FOLLOWINGS, SMALL_SEED, NO_UPLOADS,
          MANY_UPLOADS)  # fmt: skip
_COMMUNITY_SIZE = 50
_STAR_RATES = (0.5, 0.42, 0.37, 0.2, 0.12, 0.08)
"""For each star (CELEBRITY, then the first mids after the named ones), the share of the
other users following them: the first three are celebrities."""
_OWN_COMMUNITY = 0.75
"""Share of an ordinary user's follows that stay within their community."""
_HIDING = 0.05
_FOLLOWS_FROM = 1420070400  # 2015-01-01
_FOLLOWS_UNTIL = 1782777600  # 2026-06-30, the site's "now" (data.LATEST)


@dataclasses.dataclass(frozen=True)
class _Population:
    mids: tuple[int, ...]
    members: frozenset[int]
    uploads: dict[int, tuple[int, ...]]


@dataclasses.dataclass(frozen=True)
class _Relations:
    lists: dict[Direction, dict[int, list[tuple[int, int]]]]
    hidden: dict[Direction, frozenset[int]]


def graph_mids() -> tuple[int, ...]:
    """Every mid of the graph, named users first."""
    return _population().mids


def followers(mid: int) -> list[tuple[int, int]]:
    """(follower mid, mtime) pairs of *mid*, newest first, ties by mid: the site's order."""
    return list(_relations().lists["followers"][mid]) if _in_graph(mid) else []


def followings(mid: int) -> list[tuple[int, int]]:
    """(followed mid, mtime) pairs of *mid*, newest first, ties by mid: the site's order."""
    return list(_relations().lists["followings"][mid]) if _in_graph(mid) else []


def hides(mid: int, direction: Direction) -> bool:
    """Whether *mid* hides its ``"followers"`` or ``"followings"`` list."""
    return _in_graph(mid) and mid in _relations().hidden[direction]


def served_list(mid: int, direction: Direction, logged_in: bool) -> list[tuple[int, int]]:
    """The part of a list the site serves across all its pages: cut at the cap, [] if hidden."""
    if hides(mid, direction):
        return []
    if direction == "followings":
        return followings(mid)[:FOLLOWINGS_CAP]
    cap = FOLLOWERS_CAP_LOGGED_IN if logged_in else FOLLOWERS_CAP_ANONYMOUS
    return followers(mid)[:cap]


def uploads(mid: int) -> tuple[int, ...]:
    """The aids *mid* uploaded, ascending; () for users outside the graph."""
    return _population().uploads.get(mid, ())


def _in_graph(mid: int) -> bool:
    """Whether *mid* has follows: answered without building them, which takes a while."""
    return mid in _population().members


@functools.cache
def _population() -> _Population:
    """The mids and their uploads: all the video area needs, cheaper than the follows."""
    rng = random.Random("graph-mids")
    mids = dict.fromkeys(_NAMED)
    while len(mids) < _USERS:
        if rng.random() < 0.6:
            mids[rng.randrange(1000, 700_000_000)] = None
        else:
            mids[rng.randrange(3_493_000_000_000_000, 3_547_000_000_000_000)] = None
    rng = random.Random("graph-uploads")
    fixed_counts = {NO_UPLOADS: 0, MANY_UPLOADS: 96, CELEBRITY: 75}
    taken: set[int] = set()
    uploads_of = {}
    for mid in mids:
        count = fixed_counts.get(mid)
        if count is None:
            roll = rng.random()
            if roll < 0.35:
                count = 0
            elif roll < 0.99:
                count = int(10 ** rng.uniform(0, 1.7))
            else:
                count = rng.randint(60, 120)
        aids: set[int] = set()
        while len(aids) < count:
            # Recent aids (above 2**32): far from the small aids the video tests pin.
            aid = rng.randrange(1 << 32, MAX_AID)
            if aid not in taken:
                aids.add(aid)
                taken.add(aid)
        uploads_of[mid] = tuple(sorted(aids))
    return _Population(tuple(mids), frozenset(mids), uploads_of)


def _out_degree(rng: random.Random) -> int:
    """How many others an ordinary user follows: mostly a few dozen, sometimes hundreds."""
    roll = rng.random()
    if roll < 0.08:
        return 0
    if roll < 0.98:
        return int(10 ** rng.uniform(0.3, 1.6))
    return rng.randint(FOLLOWINGS_CAP + 1, 400)


def _follow_time(rng: random.Random) -> int:
    return _FOLLOWS_FROM + int(rng.random() * (_FOLLOWS_UNTIL - _FOLLOWS_FROM))


@functools.cache
def _relations() -> _Relations:
    """The follows, their mtimes and the hidden lists."""
    rng = random.Random("graph-follows")
    stars = [CELEBRITY, *graph_mids()[len(_NAMED) : len(_NAMED) + len(_STAR_RATES) - 1]]
    others = [mid for mid in graph_mids() if mid not in stars]
    rng.shuffle(others)
    communities = [others[i : i + _COMMUNITY_SIZE] for i in range(0, len(others), _COMMUNITY_SIZE)]
    popularity = list(itertools.accumulate(1 / (rank + 30) for rank in range(len(others))))
    follows: dict[int, dict[int, int]] = {mid: {} for mid in graph_mids()}  # -> {mid: mtime}

    for community in communities:
        for mid in community:
            degree = {HEAVY_FOLLOWER: 180, SMALL_SEED: 12}.get(mid) or _out_degree(rng)
            local = degree <= FOLLOWINGS_CAP  # heavy followers follow across the site
            picks = [
                rng.choice(community)
                if mid == SMALL_SEED or (local and rng.random() < _OWN_COMMUNITY)
                else rng.choices(others, cum_weights=popularity)[0]
                for _ in range(degree)
            ]
            if mid != SMALL_SEED:
                picks += [
                    star
                    for star, rate in zip(stars, _STAR_RATES, strict=True)
                    if rng.random() < rate
                ]
            # One in seven users followed their first three picks in one click: equal mtimes.
            one_click = _follow_time(rng) if rng.random() < 0.15 else None
            own = follows[mid]
            for index, followed in enumerate(picks):
                if followed != mid and followed not in own:
                    own[followed] = (one_click if index < 3 else None) or _follow_time(rng)
    for star in stars:
        for followed in rng.sample(stars, 3) + rng.choices(others, cum_weights=popularity, k=10):
            if followed != star:
                follows[star].setdefault(followed, _follow_time(rng))

    by_time: dict[Direction, dict[int, list[tuple[int, int]]]] = {
        "followers": {mid: [] for mid in graph_mids()},
        "followings": {mid: [] for mid in graph_mids()},
    }
    for follower, own in follows.items():
        for followed, mtime in own.items():
            # A mutual follow refreshes both mtimes.
            latest = max(mtime, follows[followed].get(follower, 0))
            by_time["followers"][followed].append((-latest, follower))
            by_time["followings"][follower].append((-latest, followed))
    lists: dict[Direction, dict[int, list[tuple[int, int]]]] = {}
    for direction, pairs_by_mid in by_time.items():
        lists[direction] = {}
        for mid, pairs in pairs_by_mid.items():
            pairs.sort()
            lists[direction][mid] = [(other, -negative_mtime) for negative_mtime, other in pairs]

    # Celebrities, the other stars and the named users keep their lists public.
    candidates = [mid for mid in others if mid not in _NAMED]
    hiding = round(_HIDING * len(graph_mids()))
    hidden: dict[Direction, frozenset[int]] = {
        "followers": frozenset({HIDES_FOLLOWERS, *rng.sample(candidates, hiding)}),
        "followings": frozenset({HIDES_FOLLOWINGS, *rng.sample(candidates, hiding)}),
    }
    return _Relations(lists, hidden)
