"""Bilibili ids: AV <-> BV conversion, and parsing of the video and user ids users give.

The BV id is a reversible encoding of the av number (aid): the current scheme
(2024, for aids up to 2**51) XORs the aid, writes it in base 58 with a shuffled
alphabet and swaps two pairs of digits. See docs/bilibili-api.md.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable
    from urllib.parse import SplitResult

XOR_CODE = 23442827791579
MAX_AID = 1 << 51
MASK_CODE = MAX_AID - 1
ALPHABET = "FcwAPNKTMug3GV5Lj7EJnHpWsx4tb8haYeviqBz6rkCy12mUSDQX9RdoZf"
_BASE = len(ALPHABET)
_DIGIT = {char: value for value, char in enumerate(ALPHABET)}

_BVID = re.compile(rf"BV1[{ALPHABET}]{{9}}")
_AV_IN_TEXT = re.compile(r"(?:^|/)av(\d+)(?:$|[/?#])", re.IGNORECASE)
_BV_IN_TEXT = re.compile(rf"(?:^|/)(BV1[{ALPHABET}]{{9}})(?:$|[/?#])")


class BadVideoId(ValueError):
    """Raised for input that does not name a video; the message says why."""


class BadUserId(ValueError):
    """Raised for input that does not name a user; the message says why."""


class BadId(ValueError):
    """Raised for input that does not name an article, a live room or a card; says why."""


MAX_MID = 1 << 63
"""User ids are signed 64-bit integers on the site; recent ones have 16 digits."""
_UID_PREFIX = re.compile(r"uid\s*[:：]?\s*", re.IGNORECASE)
_SPACE_HOSTS = frozenset({"space.bilibili.com", "m.bilibili.com", "www.bilibili.com"})


def _shown(text: str, limit: int = 40) -> str:
    """*text* quoted for a message, cut after *limit* characters (ids files hold any junk)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _swap(chars: list[str]) -> None:
    chars[3], chars[9] = chars[9], chars[3]
    chars[4], chars[7] = chars[7], chars[4]


def av2bv(aid: int) -> str:
    """Return the BV id of *aid* (1 <= aid < 2**51)."""
    if not 0 < aid < MAX_AID:
        raise BadVideoId(f"aid {aid} is out of range (1 to 2**51 - 1)")
    chars = list("BV1000000000")
    value = (MAX_AID | aid) ^ XOR_CODE
    for index in range(11, 2, -1):
        value, digit = divmod(value, _BASE)
        chars[index] = ALPHABET[digit]
    _swap(chars)
    return "".join(chars)


def bv2av(bvid: str) -> int:
    """Return the aid of *bvid*; raise ``BadVideoId`` if it is not a valid BV id."""
    if not _BVID.fullmatch(bvid):
        raise BadVideoId(f"{_shown(bvid)} is not a BV id (BV1 followed by 9 base-58 characters)")
    chars = list(bvid)
    _swap(chars)
    value = 0
    for char in chars[3:]:
        value = value * _BASE + _DIGIT[char]
    aid = (value & MASK_CODE) ^ XOR_CODE
    if not 0 < aid < MAX_AID or av2bv(aid) != bvid:
        raise BadVideoId(f"{bvid!r} does not encode a valid aid")
    return aid


def parse_aid(text: str) -> int:
    """Return the aid of a decimal string, with or without an ``av`` prefix."""
    digits = text.strip()
    if digits[:2].lower() == "av":
        digits = digits[2:]
    if not digits.isascii() or not digits.isdigit():
        raise BadVideoId(f"{_shown(text)} is not an av number")
    return _bounded(digits, "aid", MAX_AID, "2**51", BadVideoId)


def _bounded(digits: str, name: str, limit: int, shown_limit: str, error: type[ValueError]) -> int:
    """Return the number a string of ASCII digits writes, if 0 < number < *limit*."""
    significant = digits.lstrip("0")
    # int() refuses more than 4300 digits (a ValueError of its own); no id has that many.
    if len(significant) > len(str(limit - 1)):
        raise error(
            f"{'an' if name[0] in 'aeiou' else 'a'} {name} of {len(significant)} digits"
            f" is out of range (1 to {shown_limit} - 1)"
        )
    number = int(significant or "0")
    if not 0 < number < limit:
        raise error(f"{name} {number} is out of range (1 to {shown_limit} - 1)")
    return number


def parse_video_id(text: str) -> int:
    """Return the aid named by *text*: an aid, ``av…``, a BV id, or a video URL.

    URLs are recognised by their path (``/video/BV…``, ``/video/av…``), so
    ``https://www.bilibili.com/video/BV17x411w7KC/?p=2`` and ``m.bilibili.com``
    links both work. Short links (b23.tv) need a redirect and are rejected.
    """
    value = text.strip()
    if not value:
        raise BadVideoId("empty video id")
    if "://" not in value and "/" not in value:
        return bv2av(value) if value[:2].upper() == "BV" else parse_aid(value)
    try:
        parts = urlsplit(value if "://" in value else f"https://{value}")
    except ValueError as exc:  # e.g. "Invalid IPv6 URL" for an unclosed "["
        raise BadVideoId(f"{_shown(text)} is not a URL: {exc}") from None
    if parts.hostname in {"b23.tv", "bili2233.cn"}:
        raise BadVideoId(f"{_shown(text)} is a short link; resolve it to a video URL first")
    if match := _BV_IN_TEXT.search(parts.path):
        return bv2av(match.group(1))
    if match := _AV_IN_TEXT.search(parts.path):
        return parse_aid(match.group(1))
    raise BadVideoId(f"{_shown(text)} is not a video URL")


def _mid_of_digits(digits: str, text: str) -> int:
    if not digits.isascii() or not digits.isdigit():
        raise BadUserId(f"{_shown(text)} is not a user id (mid)")
    return _bounded(digits, "mid", MAX_MID, "2**63", BadUserId)


def parse_mid(text: str) -> int:
    """Return the user id named by *text*: a mid, ``UID:2``, or a space URL.

    Space URLs are ``space.bilibili.com/<mid>`` with any sub-page
    (``https://space.bilibili.com/2/video``) and the mobile
    ``m.bilibili.com/space/<mid>``.
    """
    value = text.strip()
    if not value:
        raise BadUserId("empty user id")
    if "/" not in value:
        return _mid_of_digits(_UID_PREFIX.sub("", value, count=1), text)
    try:
        parts = urlsplit(value if "://" in value else f"https://{value}")
    except ValueError as exc:
        raise BadUserId(f"{_shown(text)} is not a URL: {exc}") from None
    segments = [segment for segment in parts.path.split("/") if segment]
    if parts.hostname == "space.bilibili.com" and segments:
        return _mid_of_digits(segments[0], text)
    if parts.hostname in _SPACE_HOSTS and segments[:1] == ["space"] and len(segments) > 1:
        return _mid_of_digits(segments[1], text)
    raise BadUserId(f"{_shown(text)} is not a user's space URL")


MAX_ID = 1 << 63
"""Article and room ids are signed 64-bit integers on the site, like mids."""
_CV_IN_PATH = re.compile(r"/read/(?:mobile/)?cv(\d+)(?:$|[/?#])", re.IGNORECASE)
_CARD_ID = re.compile(r"(av|cv|lv)(\d+)", re.IGNORECASE)


def _plain_id(digits: str, text: str, what: str) -> int:
    if not digits.isascii() or not digits.isdigit():
        raise BadId(f"{_shown(text)} is not {what}")
    return _bounded(digits, "id", MAX_ID, "2**63", BadId)


def _id_or_url(
    text: str, prefix: str, what: str, from_url: Callable[[SplitResult], str | None]
) -> int:
    """Return the id *text* names: digits with or without *prefix*, or a URL *from_url*
    finds the digits in (None: not such a URL)."""
    value = text.strip()
    if not value:
        raise BadId(f"empty {what}")
    if "/" not in value:
        digits = value[len(prefix) :] if value[: len(prefix)].lower() == prefix else value
        return _plain_id(digits, text, what)
    try:
        parts = urlsplit(value if "://" in value else f"https://{value}")
    except ValueError as exc:
        raise BadId(f"{_shown(text)} is not a URL: {exc}") from None
    found = from_url(parts)
    if found is None:
        raise BadId(f"{_shown(text)} is not a URL of {what}")
    return _plain_id(found, text, what)


def _cvid_in_url(parts: SplitResult) -> str | None:
    if match := _CV_IN_PATH.search(parts.path):
        return match.group(1)
    if parts.path.rstrip("/").endswith("/read/mobile"):
        ids = [pair[3:] for pair in parts.query.split("&") if pair.startswith("id=")]
        return ids[0] if ids else None
    return None


def _room_in_url(parts: SplitResult) -> str | None:
    segments = [segment for segment in parts.path.split("/") if segment]
    return segments[-1] if parts.hostname == "live.bilibili.com" and segments else None


def parse_cvid(text: str) -> int:
    """Return the article id named by *text*: a number, ``cv123``, or an article URL.

    Article URLs are ``https://www.bilibili.com/read/cv123`` (also ``/read/mobile/cv123``
    and ``/read/mobile?id=123``).
    """
    return _id_or_url(text, "cv", "an article id (cv)", _cvid_in_url)


def parse_room_id(text: str) -> int:
    """Return the live room id (long or short) named by *text*: a number, ``lv5440``,
    or a room URL (``https://live.bilibili.com/5440``, ``live.bilibili.com/h5/5440``)."""
    return _id_or_url(text, "lv", "a live room id", _room_in_url)


def parse_card_id(text: str) -> str:
    """Return the cards API's form of a video, article or live-room id: ``av2``, ``BV1…``,
    ``cv1`` or ``lv5440``; the kind must be written (a bare number names nothing)."""
    value = text.strip()
    if value[:2].upper() == "BV":
        try:
            bv2av(value)
        except BadVideoId as exc:
            raise BadId(str(exc)) from None
        return value
    match = _CARD_ID.fullmatch(value)
    if match is None:
        raise BadId(f"{_shown(text)} is not a card id (av…, BV…, cv… or lv…)")
    kind, digits = match.group(1).lower(), match.group(2)
    limit = (MAX_AID, "2**51") if kind == "av" else (MAX_ID, "2**63")
    return f"{kind}{_bounded(digits, kind, *limit, BadId)}"
