"""The danmaku area of the fake API: segments, the player view, the XML pool and the history.

Every part (cid) of every video has danmaku, derived lazily from the cid's
video (see ``videos``): ``stat.danmaku`` is split over the parts by duration
and bounded (``_total``), then over the part's 6-minute segments; about 0.5%
of the parts have their danmaku closed. A danmaku is named by its *rank*, its
place in the part's send order (ctime), so any one of them is built from
(cid, rank) alone by integer hashing, and the answers build only the rows
they send:

- a segment holds a contiguous run of *positions*, and an affine permutation
  of [0, total) maps positions to ranks, so each segment spreads over the
  part's whole life;
- ``ctime`` grows with the rank (most danmaku come soon after the upload),
  so the XML pool (the ``maxlimit`` most recent) is the last ranks, and the
  pool as of a date is found by bisection;
- ``dmid`` is ``cid << 28 | (rank * stride + noise)``: unique across cids and
  increasing with ctime within a part (not across parts, unlike the site's).

A segment answers at most ``SEGMENT_CAP`` danmaku: the heaviest, then the
newest. The XML pool and the history pools hold ``maxlimit`` danmaku (500 to
8000 by duration) and are never cut to the segment cap; the view's ``count``
is the part's true total.

The cids are not invertible (a video's cids are random draws), so a cid is
known when a video endpoint has served its video (``registering``), when the
request names its video (``pid=<aid>``, as the web player sends), or when it
is one of the named examples below; any other cid answers as the site does
for an unknown oid: ``{"code":-404,"message":"啥都木有","ttl":1}`` (JSON, never
deflated, on every endpoint). The endpoints follow docs/bilibili-api.md, Danmaku endpoints used.
"""

from __future__ import annotations

import bisect
import calendar
import dataclasses
import functools
import heapq
import json
import math
import random
import re
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from aiohttp import web

from bilicrawl.ids import MAX_AID, BadVideoId, bv2av
from bilicrawl.proto import dm_pb2
from tests.fakeapi.answers import BAD_REQUEST, Answer, BinaryAnswer, envelope, ok
from tests.fakeapi.data import LATEST, hex_id, seeded, text, user_facts
from tests.fakeapi.session import logged_in
from tests.fakeapi.videos import ERROR_AIDS, video_view

Endpoint = Callable[[web.Request], Answer]

PROTOBUF = "application/octet-stream"
XML = "text/xml"
SEGMENT_MS = 360_000
"""Milliseconds of video per segment of ``seg.so``."""
SEGMENT_CAP = 6000
"""The most danmaku one segment answers; the site keeps the heaviest, then the newest."""
CLOSED_BODY = b"\x10\x01"
"""The protobuf body of a part whose danmaku is closed: ``DmSegMobileReply(state=1)``."""

SMALL_AID, SMALL_CID = 344, 8012513374
"""A 3-segment part with a few hundred danmaku, fewer than its ``maxlimit``: no history."""
POOL_AID, POOL_CID = 1765, 13140267077
"""A 2-segment part with a few thousand danmaku, more than its ``maxlimit`` (1500)."""
CLOSED_AID, CLOSED_CID = 36, 25342966354
"""A part whose danmaku is closed: ``seg.so`` answers ``CLOSED_BODY``, the XML ``state`` 1."""
EIGHT_FIELD_AID, EIGHT_FIELD_CID = 869, 22876367807
"""A part whose XML rows have the older 8-field ``p`` (no weight), like dm_xml.xml."""
CAPPED_AID, CAPPED_CID = 281, 19347291919
"""A 2-segment part of about 12,600 danmaku whose first segment has more than ``SEGMENT_CAP``."""
MILLION_AID, MILLION_CID = 114375683741573, 21160654118
"""A 17-hour part with more than 1,000,000 danmaku, at most 6000 per segment (all served).

Only the danmaku area knows it is 17 hours long: the video area's ``pages``
say otherwise (their durations stop at 3 hours). Its answers are built
segment by segment; never iterate ``danmaku(MILLION_CID)`` in a test.
"""

_TOTAL_CAP = 50_000
_DAMPED_FROM = 2000
_RANK_BITS = 28
_BEIJING = 8 * 3600
_NOT_FOUND = (-404, "啥都木有")
_MAXLIMITS = ((60, 500), (180, 1000), (600, 1500), (1800, 3000), (3600, 6000))
"""(duration below, maxlimit); 8000 for an hour and more."""
_CLOSED_SHARE = 0.005
_MASK = (1 << 64) - 1


@dataclasses.dataclass(frozen=True)
class _Override:
    """How a named example differs from what its video gives."""

    closed: bool = False
    eight_fields: bool = False
    duration: int | None = None
    total: int | None = None
    even: bool = False
    """Spread the danmaku evenly over the segments (no hot first segment)."""


_OVERRIDES = {
    CLOSED_CID: _Override(closed=True),
    EIGHT_FIELD_CID: _Override(eight_fields=True),
    MILLION_CID: _Override(duration=17 * 3600, total=1_015_000, even=True),
}

_SLANG = (
    "哈哈哈哈哈", "233333", "前方高能", "awsl", "？？？", "泪目", "来了来了", "第一", "kksk",
    "好耶", "名场面", "下次一定", "爷青回", "妙啊", "草", "破防了", "2333", "hhhhhh", "打卡",
    "空降成功", "完结撒花", "合影", "前排", "经典", "yyds", "这谁顶得住", "欢迎回来",
)  # fmt: skip
_SPECIAL = (
    "<(￣︶￣)>", "a&b", '"真香"', "'引号'", "1 < 2 > 0", "&amp; 不是实体", "<d p=\"1\">x</d>",
    "Tom & Jerry", "->_->", "<<<>>>", "'\"&<>",
)  # fmt: skip
_EMOJI = ("🎉", "😂", "✨", "❤️", "🐱", "🔥", "👀", "🎵", "🥺", "⭐", "🍜", "👍")
_CODE = ("Player.seek(0);", "Player.pause();", 'Player.jump("av2",1,false);', "trace(1 < 2);")
_PALETTE = (16777215, 16777215, 16711680, 16776960, 65280, 54000, 16738408, 10092288,
            4546550, 15138834, 16646914, 52479)  # fmt: skip


def _texts() -> tuple[str, ...]:
    """A table of danmaku texts: slang, site-like text, emoji, and XML special characters."""
    rng = random.Random("danmaku-texts")
    texts: list[str] = []
    for index in range(4096):
        roll = rng.random()
        if index % 64 == 0:
            texts.append(rng.choice(_SPECIAL))
        elif roll < 0.4:
            texts.append(
                rng.choice(_SLANG) + rng.choice(("", "", "!", "！！", rng.choice(_EMOJI)))
            )
        elif roll < 0.85:
            texts.append(text(rng, 1, 3))
        elif roll < 0.95:
            texts.append("".join(rng.choice(_EMOJI) for _ in range(rng.randint(1, 4))))
        else:
            texts.append(rng.choice(("LOL", "nice", "GG", "OK", "Hello world", "666", "QAQ")))
    return tuple(texts)


_TEXTS = _texts()
_REGISTRY: dict[int, tuple[int, int]] = {}
"""cid -> (aid, page) of every part the fake knows."""


def _mix(value: int) -> int:
    """splitmix64: a well-spread 64-bit hash of *value*."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


@dataclasses.dataclass(frozen=True)
class _Part:
    """What every answer about one part is derived from."""

    cid: int
    aid: int
    page: int
    owner: int
    duration: int
    pubdate: int
    total: int
    maxlimit: int
    closed: bool
    eight_fields: bool
    ends: tuple[int, ...]
    """The end position (exclusive) of each segment's run; the last one is ``total``."""
    seed: int
    """The 63-bit seed of the part's hashes."""
    offset: int
    shape: float
    """ctime = pubdate + (LATEST - pubdate) * u ** shape, u growing with the rank."""
    step: int
    """The permutation: rank = (step * position + offset) % total."""
    inverse: int

    @property
    def segments(self) -> int:
        return len(self.ends)

    def rank(self, position: int) -> int:
        return (self.step * position + self.offset) % self.total

    def position(self, rank: int) -> int:
        return (self.inverse * (rank - self.offset)) % self.total

    def ctime(self, rank: int) -> int:
        noise = (self.hash(rank, 1) >> 11) / (1 << 53)
        spread = ((rank + noise) / self.total) ** self.shape
        return self.pubdate + int((LATEST - self.pubdate) * spread)

    def hash(self, number: int, salt: int) -> int:
        """A 64-bit hash of *number* for the use *salt* (0-3), proper to this part."""
        return _mix(self.seed ^ (number << 2 | salt))

    def first_at(self, moment: int) -> int:
        """The first rank sent at or after *moment* (``total`` if none)."""
        return bisect.bisect_left(range(self.total), moment, key=self.ctime)


def _maxlimit(duration: int) -> int:
    for below, limit in _MAXLIMITS:
        if duration < below:
            return limit
    return 8000


def _segment_weights(duration: int, rng: random.Random, even: bool) -> list[float]:
    count = max(1, math.ceil(duration / 360))
    weights = []
    for index in range(count):
        length = min(360, duration - index * 360)
        jitter = 1.0 if even else rng.uniform(0.5, 1.5) * (1.6 if index == 0 else 1.0)
        weights.append(max(length, 1) * jitter)
    return weights


def _split(total: int, weights: list[float]) -> tuple[int, ...]:
    """*total* split in proportion to *weights* (largest remainders), as cumulative ends."""
    scale = sum(weights)
    exact = [total * weight / scale for weight in weights]
    counts = [int(share) for share in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for index in by_remainder[: total - sum(counts)]:
        counts[index] += 1
    ends, end = [], 0
    for count in counts:
        end += count
        ends.append(end)
    return tuple(ends)


def _total(view: dict[str, Any], page: int, rng: random.Random) -> int:
    """The danmaku count of a part: the video's ``stat.danmaku`` split by duration, bounded.

    A part of a video with danmaku has at least tens; a share above
    ``_DAMPED_FROM`` grows as its square root, up to ``_TOTAL_CAP``.
    """
    if not view["stat"]["danmaku"]:
        return 0
    share = view["stat"]["danmaku"] * view["pages"][page - 1]["duration"] / view["duration"]
    floor = rng.randint(10, 80)
    if share > _DAMPED_FROM:
        share = _DAMPED_FROM * math.sqrt(share / _DAMPED_FROM)
    return min(max(round(share), floor), _TOTAL_CAP)


@functools.lru_cache(maxsize=4096)
def _build(cid: int, aid: int, page: int) -> _Part:
    view = video_view(aid)
    pages = view["pages"]
    override = _OVERRIDES.get(cid, _Override())
    duration = override.duration or pages[page - 1]["duration"]
    rng = seeded("danmaku-part", cid)
    closed = override.closed or rng.random() < _CLOSED_SHARE
    total = 0 if closed else override.total or _total(view, page, rng)
    step = max(1, int(total * 0.6180339887))
    while math.gcd(step, max(total, 1)) != 1:
        step += 1
    seed = rng.getrandbits(63)
    return _Part(
        cid=cid,
        aid=aid,
        page=page,
        owner=view["owner"]["mid"],
        duration=duration,
        pubdate=view["pubdate"],
        total=total,
        maxlimit=_maxlimit(duration),
        closed=closed,
        eight_fields=override.eight_fields,
        ends=_split(total, _segment_weights(duration, rng, override.even)),
        seed=seed,
        offset=seed % max(total, 1),
        shape=rng.uniform(2.0, 4.0),
        step=step,
        inverse=pow(step, -1, total) if total > 1 else 0,
    )


def register(aid: int) -> list[int]:
    """Make the parts of video *aid* known (as serving its video does); return their cids."""
    if aid in ERROR_AIDS or not 0 < aid < MAX_AID:
        return []
    cids = [page["cid"] for page in video_view(aid)["pages"]]
    for page, cid in enumerate(cids, 1):
        _REGISTRY[cid] = (aid, page)
    return cids


for _aid in (SMALL_AID, POOL_AID, CLOSED_AID, EIGHT_FIELD_AID, CAPPED_AID, MILLION_AID):
    register(_aid)


def _part(cid: int, aid_hint: int | None = None) -> _Part | None:
    """The part *cid*, if known (or a part of video *aid_hint*), else None."""
    if cid not in _REGISTRY and aid_hint is not None:
        register(aid_hint)
    known = _REGISTRY.get(cid)
    return _build(cid, *known) if known else None


def _known(cid: int) -> _Part:
    found = _part(cid)
    if found is None:
        raise KeyError(f"unknown cid {cid}: register(aid) its video first")
    return found


# --- rows -----------------------------------------------------------------------------------


def _row(part: _Part, rank: int, segment: int) -> dict[str, Any]:
    """Danmaku *rank* of *part*, which lies in *segment* (0-based), as stored-document fields."""
    first = part.hash(rank, 0)
    second = _mix(first)
    third = part.hash(rank, 3)
    start = segment * SEGMENT_MS
    length = min(SEGMENT_MS, part.duration * 1000 - start)
    mode_roll = (first >> 24) % 1000
    mode = (
        1
        if mode_roll < 900
        else 4
        if mode_roll < 940
        else 5
        if mode_roll < 975
        else 6
        if mode_roll < 985
        else 7
        if mode_roll < 995
        else 8
    )
    size_roll = (first >> 34) % 100
    content = _TEXTS[second % len(_TEXTS)]
    if mode == 7:
        content = json.dumps(
            [0.1, 0.5, "1-1", 4.5, content, 0, 0, 0.9, 0.5, 500, 0, 1, "SimHei", 1],
            ensure_ascii=False,
        )
    elif mode == 8:
        content = _CODE[second % len(_CODE)]
    viewer = (second >> 16) % (part.total // 4 + 1)
    mid_draw = part.hash(viewer, 2)
    mid = (
        3_493_000_000_000_000 + (mid_draw >> 8) % (54 * 10**12)
        if mid_draw % 10 == 0
        else (mid_draw >> 8) % 700_000_000 + 1
    )
    stride = (1 << _RANK_BITS) // part.total
    attr_roll = (third >> 8) % 100
    return {
        "dmid": part.cid << _RANK_BITS | (rank * stride + (third >> 24) % stride),
        "progress_ms": start + first % length,
        "mode": mode,
        "fontsize": 25 if size_roll < 90 else 18 if size_roll < 96 else 36,
        "color": 16777215 if (first >> 41) % 100 < 85 else _PALETTE[(first >> 48) % 12],
        "ctime": part.ctime(rank),
        "pool": 2 if mode == 8 else 1 if (third >> 16) % 100 < 3 else 0,
        "mid_hash": f"{zlib.crc32(str(mid).encode()):x}",
        "content": content,
        "weight": third % 11,
        "attr": 0 if attr_roll < 85 else (attr_roll % 7) + 1,
    }


def _segment_rows(part: _Part, segment: int) -> list[dict[str, Any]]:
    """Every danmaku of *segment* (0-based), before the cap, by progress then dmid."""
    start = part.ends[segment - 1] if segment else 0
    rows = [
        _row(part, part.rank(position), segment) for position in range(start, part.ends[segment])
    ]
    rows.sort(key=lambda row: (row["progress_ms"], row["dmid"]))
    return rows


def _by_rank(part: _Part, ranks: range) -> list[dict[str, Any]]:
    """The danmaku of *ranks*, oldest first."""
    rows = []
    for rank in ranks:
        segment = bisect.bisect_right(part.ends, part.position(rank))
        rows.append(_row(part, rank, segment))
    return rows


def _pool_before(part: _Part, moment: int) -> list[dict[str, Any]]:
    end = part.first_at(moment)
    return _by_rank(part, range(max(0, end - part.maxlimit), end))


def _date(moment: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(moment + _BEIJING))


def _day_start(date: str) -> int:
    return calendar.timegm(time.strptime(date, "%Y-%m-%d")) - _BEIJING


def _dates(part: _Part, since: int, until: int) -> list[str]:
    """The Beijing dates of the danmaku sent in [since, until)."""
    dates = []
    rank = part.first_at(since)
    while rank < part.total and (sent := part.ctime(rank)) < until:
        dates.append(_date(sent))
        rank = part.first_at(_day_start(dates[-1]) + 86400)
    return dates


# --- exports for tests ----------------------------------------------------------------------


def part(cid: int) -> dict[str, Any]:
    """The facts of part *cid*; KeyError if the cid is not known (see ``register``).

    ``aid``, ``page``, ``duration`` (s; the danmaku area's), ``pubdate`` (the
    video's), ``total`` (its danmaku, the view's ``count``; 0 when closed),
    ``segments`` (6-minute segments), ``maxlimit`` (the XML pool's size),
    ``closed``, ``eight_fields`` (its XML rows have the older 8-field ``p``).
    """
    found = _known(cid)
    return {
        "cid": cid,
        "aid": found.aid,
        "page": found.page,
        "duration": found.duration,
        "pubdate": found.pubdate,
        "total": found.total,
        "segments": found.segments,
        "maxlimit": found.maxlimit,
        "closed": found.closed,
        "eight_fields": found.eight_fields,
    }


def danmaku(cid: int) -> Iterator[dict[str, Any]]:
    """Every danmaku of part *cid*, segment by segment, none left out by the segment cap.

    Each is a dict of the stored-document fields: ``dmid``, ``progress_ms``,
    ``mode``, ``fontsize``, ``color``, ``ctime`` (Unix s), ``pool``, ``mid_hash``,
    ``content``, ``weight`` (0-10), ``attr`` (bits 0-2).
    """
    found = _known(cid)
    for segment in range(found.segments if found.total else 0):
        yield from _segment_rows(found, segment)


def segment(cid: int, n: int) -> list[dict[str, Any]]:
    """The danmaku ``seg.so`` answers for segment *n* (1-based) of *cid*, in its order.

    More than ``SEGMENT_CAP`` rows are cut to the heaviest, then the most recent.
    """
    found = _known(cid)
    if not found.total or not 1 <= n <= found.segments:
        return []
    rows = _segment_rows(found, n - 1)
    if len(rows) > SEGMENT_CAP:
        kept = {
            row["dmid"]
            for row in heapq.nlargest(
                SEGMENT_CAP, rows, key=lambda row: (row["weight"], row["dmid"])
            )
        }
        rows = [row for row in rows if row["dmid"] in kept]
    return rows


def xml_pool(cid: int) -> list[dict[str, Any]]:
    """The XML's rows: the ``maxlimit`` most recent danmaku of *cid*, oldest first."""
    found = _known(cid)
    return _by_rank(found, range(max(0, found.total - found.maxlimit), found.total))


def history_dates(cid: int, month: str | None = None) -> list[str]:
    """The Beijing dates (YYYY-MM-DD) on which *cid* got danmaku, of one YYYY-MM if given."""
    found = _known(cid)
    if month is None:
        return _dates(found, found.pubdate, LATEST)
    start = _day_start(f"{month}-01")
    year, number = map(int, month.split("-"))
    days = calendar.monthrange(year, number)[1]
    return _dates(found, start, start + days * 86400)


def history_pool(cid: int, date: str) -> list[dict[str, Any]]:
    """The pool as of the end of *date* (Beijing): the ``maxlimit`` most recent sent by then."""
    found = _known(cid)
    return _pool_before(found, _day_start(date) + 86400)


# --- answers --------------------------------------------------------------------------------


def _protobuf(message: Any) -> BinaryAnswer:
    return BinaryAnswer(200, message.SerializeToString(), None, PROTOBUF)


def _reply(part: _Part, rows: list[dict[str, Any]]) -> BinaryAnswer:
    """A ``DmSegMobileReply`` of *rows*: empty if there are none, ``CLOSED_BODY`` if closed."""
    reply = dm_pb2.DmSegMobileReply(state=1 if part.closed else 0)
    for row in rows:
        reply.elems.add(
            id=row["dmid"],
            progress=row["progress_ms"],
            mode=row["mode"],
            fontsize=row["fontsize"],
            color=row["color"],
            midHash=row["mid_hash"],
            content=row["content"],
            ctime=row["ctime"],
            weight=row["weight"],
            pool=row["pool"],
            idStr=str(row["dmid"]),
            attr=row["attr"],
        )
    return _protobuf(reply)


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() else None


def _lookup(request: web.Request, *, typed: bool = True) -> _Part | Answer:
    """The part named by ``oid`` (with the ``pid`` hint), or the -400/-404 answer."""
    query = request.query
    cid = _number(query.get("oid"))
    if cid is None or (typed and query.get("type") != "1"):
        return envelope(*BAD_REQUEST)
    pid = _number(query.get("pid"))
    found = _part(cid, pid)
    return found if found else envelope(*_NOT_FOUND)


def _seg(request: web.Request) -> Answer:
    found = _lookup(request)
    if isinstance(found, Answer):
        return found
    index = _number(request.query.get("segment_index"))
    if not index:
        return envelope(*BAD_REQUEST)
    return _reply(found, segment(found.cid, index))


def _player_config() -> dm_pb2.DanmuWebPlayerConfig:
    return dm_pb2.DanmuWebPlayerConfig(
        dm_switch=True,
        ai_switch=True,
        ai_level=3,
        blockscroll=False,
        preventshade=False,
        dmask=True,
        opacity=0.8,
        dmarea=50,
        speedplus=1.0,
        fontsize=1.0,
        screensync=True,
        speedsync=False,
        fontfamily="SimHei, 'Microsoft JhengHei'",
        bold=False,
        fontborder=0,
        draw_type="canvas",
        senior_mode_switch=0,
        ai_level_v2=3,
    )


def _view(request: web.Request) -> Answer:
    found = _lookup(request)
    if isinstance(found, Answer):
        return found
    rng = seeded("danmaku-view", found.cid)
    reply = dm_pb2.DmWebViewReply(
        state=1 if found.closed else 0,
        dm_sge=dm_pb2.DmSegConfig(page_size=SEGMENT_MS, total=found.segments),
        flag=dm_pb2.DanmakuFlagConfig(
            rec_flag=1, rec_text="开启后，全站视频将按等级等优化弹幕", rec_switch=1
        ),
        check_box=True,
        count=found.total,
    )
    if rng.random() < 0.05:
        reply.special_dms.append(f"https://i0.hdslb.com/bfs/dm/{hex_id('bas', found.cid)}.bin")
    if rng.random() < 0.1 and found.total:
        owner = user_facts(found.owner)
        moment = rng.randrange(found.pubdate, LATEST)
        command_id = rng.randrange(10**16, 10**17)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment + _BEIJING))
        reply.commandDms.add(
            id=command_id,
            oid=found.cid,
            mid=found.owner,
            command="#UP#",
            content=text(rng, 1, 3),
            progress=rng.randrange(found.duration * 1000),
            ctime=stamp,
            mtime=stamp,
            extra=json.dumps({"icon": owner["face"]}),
            idStr=str(command_id),
        )
    if logged_in(request):
        reply.player_config.CopyFrom(_player_config())
    return _protobuf(reply)


def _escape(value: str) -> str:
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )


def xml_document(cid: int) -> str:
    """The XML of ``list.so``/``<cid>.xml`` for the known part *cid*, before deflating."""
    found = _known(cid)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?><i><chatserver>chat.bilibili.com</chatserver>'
        f"<chatid>{cid}</chatid><mission>0</mission><maxlimit>{found.maxlimit}</maxlimit>"
        f"<state>{int(found.closed)}</state><real_name>0</real_name><source>k-v</source>"
    ]
    for row in xml_pool(cid):
        fields = [f"{row['progress_ms'] / 1000:.5f}", row["mode"], row["fontsize"], row["color"],
                  row["ctime"], row["pool"], row["mid_hash"], row["dmid"]]  # fmt: skip
        if not found.eight_fields:
            fields.append(row["weight"])
        lines.append(f'<d p="{",".join(map(str, fields))}">{_escape(row["content"])}</d>')
    lines.append("</i>")
    return "".join(lines)


def _xml_answer(found: _Part | Answer) -> Answer:
    if isinstance(found, Answer):
        return found
    return BinaryAnswer(200, xml_document(found.cid).encode(), None, XML, raw_deflate=True)


def _list_so(request: web.Request) -> Answer:
    return _xml_answer(_lookup(request, typed=False))


COMMENT_XML = re.compile(r"/(\d+)\.xml")
"""The path of a part's XML on the comment host (``BILI_COMMENT_URL``): ``/<cid>.xml``."""


def comment_xml(request: web.Request) -> Answer:
    """Answer ``/<cid>.xml``: the same as ``list.so?oid=<cid>``."""
    match = COMMENT_XML.fullmatch(request.path)
    found = _part(int(match[1])) if match else None
    return _xml_answer(found or envelope(*_NOT_FOUND))


def _valid(value: str, pattern: str) -> bool:
    try:
        time.strptime(value, pattern)
    except ValueError:
        return False
    return True


def _history_index(request: web.Request) -> Answer:
    if not logged_in(request):
        return envelope(-101, "账号未登录")
    month = request.query.get("month", "")
    if not (re.fullmatch(r"\d{4}-\d{2}", month) and _valid(month, "%Y-%m")):
        return envelope(*BAD_REQUEST)
    found = _lookup(request)
    if isinstance(found, Answer):
        return found
    return ok(history_dates(found.cid, month) or None)


def _history_seg(request: web.Request) -> Answer:
    if not logged_in(request):
        return envelope(-101, "账号未登录")
    date = request.query.get("date", "")
    if not (re.fullmatch(r"\d{4}-\d{2}-\d{2}", date) and _valid(date, "%Y-%m-%d")):
        return envelope(*BAD_REQUEST)
    found = _lookup(request)
    if isinstance(found, Answer):
        return found
    return _reply(found, history_pool(found.cid, date))


def _requested_aid(request: web.Request) -> int | None:
    if aid := _number(request.query.get("aid")):
        return aid
    try:
        return bv2av(request.query.get("bvid", ""))
    except BadVideoId:
        return None


def registering(endpoints: Mapping[str, Endpoint]) -> dict[str, Endpoint]:
    """The video endpoints *endpoints*, each making the parts of the video it serves known."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        def registered(request: web.Request) -> Answer:
            answer = endpoint(request)
            if answer.code == 0 and (aid := _requested_aid(request)):
                register(aid)
            return answer

        return registered

    return {path: wrap(endpoint) for path, endpoint in endpoints.items()}


ENDPOINTS: dict[str, Endpoint] = {
    "/x/v2/dm/web/seg.so": _seg,
    "/x/v2/dm/wbi/web/seg.so": _seg,
    "/x/v2/dm/web/view": _view,
    "/x/v1/dm/list.so": _list_so,
    "/x/v2/dm/history/index": _history_index,
    "/x/v2/dm/web/history/seg.so": _history_seg,
}
