"""The answers the fake API sends, in the real API's envelope and error shapes.

Shared by the endpoint areas (``videos``, ``users``, ``session``) and by the
server machinery in ``app``.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"
BAD_REQUEST = (-400, "请求错误")
"""The (code, message) for a missing or malformed id or parameter."""

_BLOCKED_HTML = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>出错啦! - bilibili.com</title>'
    '</head><body><div class="error-container"><div class="error-panel">'
    "<h2>412 Precondition Failed</h2>"
    "<p>由于触发哔哩哔哩安全风控策略，该次访问请求被拒绝。</p>"
    "<p>The request was rejected because of the bilibili security control policy.</p>"
    "</div></div></body></html>"
)


@dataclasses.dataclass
class Answer:
    """A response to send: HTTP status, body text and the JSON ``code`` (None for HTML)."""

    status: int
    body: str
    code: int | None
    content_type: str = JSON


@dataclasses.dataclass
class BinaryAnswer(Answer):
    """An answer whose body is bytes (protobuf, encoded XML), sent as they are.

    ``raw_deflate``: the server sends it raw-deflated (zlib wbits -15) with
    ``Content-Encoding: deflate`` whatever the client accepts, as the site sends
    its XML danmaku.
    """

    body: bytes  # type: ignore[assignment]  # narrows Answer's str | bytes
    raw_deflate: bool = False


def dumps(value: object) -> str:
    """Compact JSON with the characters as they are, as the real API writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def envelope(code: int, message: str, **rest: Any) -> Answer:
    """``{"code", "message", "ttl": 1, ...rest}`` over HTTP 200; errors pass no ``data``."""
    return Answer(200, dumps({"code": code, "message": message, "ttl": 1, **rest}), code)


def ok(payload: object) -> Answer:
    """A success carrying *payload* as ``data``."""
    return envelope(0, "0", data=payload)


def blocked_html() -> Answer:
    """The HTML 412 page of an IP or client blocked by risk control."""
    return Answer(412, _BLOCKED_HTML, None, HTML)


def blocked_json() -> Answer:
    """The JSON -412 of a client that is rate limited or banned."""
    return Answer(
        412, dumps({"code": -412, "message": "请求被拦截", "ttl": 1, "data": None}), -412
    )


def voucher() -> Answer:
    """-352, the risk-control check failure, with a fresh captcha ``v_voucher``."""
    return envelope(-352, "风控校验失败", data={"v_voucher": f"voucher_{uuid.uuid4()}"})


def denied() -> Answer:
    """-403, a wrong or stale WBI signature."""
    return envelope(-403, "访问权限不足")


def not_found() -> Answer:
    """The HTTP 404 of a path the API does not have."""
    return Answer(404, dumps({"code": -404, "message": "啥都木有", "ttl": 1}), -404)
