"""Bilibili's JSON envelope: ``{"code", "message", "ttl", "data"}``, decoded once per response.

:func:`decode_envelope` decodes a body with orjson (the standard library takes what
orjson refuses) and keeps the result in the response's own JSON cache, the one
``response.json()`` fills, so the API and WBI middlewares and the spider share one
decode. :class:`BiliApiError` is the error a request ends with when Bilibili's
answer is one that retrying will not fix. Why the cache is Scrapy's:
docs/request-layer.md, "The envelope".
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import orjson
from scrapy.exceptions import IgnoreRequest
from scrapy.http import TextResponse

if TYPE_CHECKING:
    from scrapy.http import Response


class BiliApiError(IgnoreRequest):
    """A request Bilibili answered with an error that retrying will not fix."""

    def __init__(
        self, reason: str, message: str, payload: Any = None, *, unfetched: str | None = None
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.payload = payload
        self.unfetched = unfetched or reason
        """Why its request is not fetched: the reason, ``gave_up`` or ``cancelled``."""


def decode_envelope(response: Response) -> dict[str, Any] | None:
    """Return the JSON envelope of *response*, or None if the body is not one."""
    if not isinstance(response, TextResponse):
        return None
    payload = response._cached_decoded_json  # what response.json() caches
    if not isinstance(payload, dict):
        payload = _decode(response.body)
        if payload is None:
            return None
        response._cached_decoded_json = payload
    return payload if isinstance(payload.get("code"), int) else None


def envelope_data(response: Response) -> Any:
    """Return ``data`` of an answer the API middleware passed (its code was 0)."""
    envelope = decode_envelope(response)
    if envelope is None:
        raise ValueError(f"{response} has no JSON envelope")
    return envelope.get("data")


def _decode(body: bytes) -> dict[str, Any] | None:
    """Return the JSON object *body* holds, or None if it holds none."""
    if body.lstrip()[:1] != b"{":
        return None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:  # not UTF-8, or numbers orjson refuses: the standard library takes them
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
    return payload if isinstance(payload, dict) else None
