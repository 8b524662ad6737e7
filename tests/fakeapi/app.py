"""The fake Bilibili API as an aiohttp application, with its risk control and faults.

Every API request goes through the same screens (``_screen``), in the real
API's spirit and in this order: browser User-Agent, ``ban_all``, the
per-client rate limiter, what a browser sends (the ``buvid3`` cookie, the
``dm_img_*`` parameters of anonymous space requests, the ``Referer`` of the
relation lists and the article cards), the WBI signature, the relation lists'
login; then random fault injection; only then is the answer built by the
endpoint of its area (``videos``, ``danmaku``, ``users``, ``articles``,
``live``, ``session``). Every API request is recorded in a bounded in-memory
log, with whether it was logged in. The ``/_fake/`` admin endpoints read and change the
knobs at run time and are never screened or logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import hmac
import json
import random
import signal
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bilicrawl.signing import mixin_key, signed_query
from tests.fakeapi import articles, danmaku, live, session, users, videos
from tests.fakeapi.answers import (
    HTML,
    Answer,
    BinaryAnswer,
    blocked_html,
    blocked_json,
    denied,
    dumps,
    envelope,
    not_found,
    voucher,
)
from tests.fakeapi.data import wbi_keys

try:
    import brotli
except ImportError:  # br is offered only when the module is there, like the real client side
    brotli = None

FAULT_KINDS = ("http412", "code-799", "http5xx", "html", "drop", "truncate", "truncate-json")
"""Drawn uniformly from the ``fault_kinds`` knob: repeat a kind there to make it likelier."""
LOG_LIMIT = 200_000
RATE_WINDOW = 1.0
"""Seconds of the trailing window the rate limiter counts requests in."""

_BROWSER_UA_PREFIX = "mozilla/5.0"
_TOOL_UA_WORDS = ("python", "curl", "scrapy", "requests", "httpx", "wget", "go-http", "okhttp")
_SERVER_ERROR_HTML = (
    "<html><head><title>{status} {reason}</title></head><body>"
    "<center><h1>{status} {reason}</h1></center><hr><center>openresty</center></body></html>"
)
_SERVER_ERRORS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
_ERROR_PAGE_HTML = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>出错啦! - bilibili.com</title>'
    '</head><body><div class="error-container"><div class="error-panel">'
    "<h2>服务器开小差了</h2><p>请稍后再试</p></div></div></body></html>"
)
"""The error page a gateway sends with HTTP 200 when the API behind it fails."""
_DM_IMG_PARAMS = ("dm_img_list", "dm_img_str", "dm_cover_img_str", "dm_img_inter")
_DM_IMG_INTER_KEYS = frozenset({"ds", "wh", "of"})
ENDPOINTS: dict[str, Callable[[web.Request], Answer]] = {
    **danmaku.registering(videos.ENDPOINTS),
    **danmaku.ENDPOINTS,
    **users.ENDPOINTS,
    **articles.ENDPOINTS,
    **live.ENDPOINTS,
    **session.ENDPOINTS,
}
"""Every API path the fake serves, and the function answering it.

The video endpoints make known the parts of the videos they serve, whose danmaku
the danmaku area then answers; the comment host's ``/<cid>.xml`` is matched apart
(see ``_endpoint``).
"""


@dataclasses.dataclass
class Knobs:
    """The behaviour settings; all can be changed at run time through ``/_fake/config``."""

    rate_limit: float = 0.0
    ban_seconds: float = 5.0
    fault_rate: float = 0.0
    fault_kinds: list[str] = dataclasses.field(default_factory=lambda: list(FAULT_KINDS))
    ban_all: bool = False
    require_wbi: bool = True
    require_buvid: bool = True
    wbi_rotate_seconds: float = 0.0
    wbi_max_age: float = 600.0
    require_dm_img: bool = True
    """Anonymous ``/x/space/wbi/`` requests need the ``dm_img_*`` parameters (else -352)."""
    relation_login_required: bool = False
    """Anonymous relation-list requests get -101, as the API notes say they should."""
    delay: float = 0.0
    """Seconds every API answer waits before it is sent: a slow server, requests in flight."""
    cards_max_ids: int = 30
    """The most ids one ``/x/article/cards`` request may name; more get -400."""

    def update(self, changes: dict[str, Any]) -> None:
        """Apply *changes* after checking every name and value; raise ``ValueError``."""
        known = {field.name for field in dataclasses.fields(self)}
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown knob {name!r}; knobs are {sorted(known)}")
            if name == "fault_kinds":
                if not isinstance(value, list) or not value or set(value) - set(FAULT_KINDS):
                    raise ValueError(f"fault_kinds must be a non-empty list from {FAULT_KINDS}")
                checked[name] = list(value)
            elif isinstance(getattr(self, name), bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
                checked[name] = value
            else:
                checked[name] = self._number(name, value)
        for name, value in checked.items():
            setattr(self, name, value)

    def _number(self, name: str, value: object) -> int | float:
        """*value* checked for the number knob *name*: an int if the knob counts things."""
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name} must be a number >= 0")
        if name == "fault_rate" and value > 1:
            raise ValueError("fault_rate must be between 0 and 1")
        if not isinstance(getattr(self, name), int):
            return float(value)
        if value != int(value):
            raise ValueError(f"{name} must be a whole number >= 0")
        return int(value)


class FakeState:
    """The server's mutable state: knobs, WBI key generation, rate windows, bans, log."""

    def __init__(self, knobs: Knobs, fault_seed: int = 0) -> None:
        self.knobs = knobs
        self.fault_seed = fault_seed
        self.fault_rng = random.Random(fault_seed)
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self.windows: dict[str, deque[float]] = {}
        self.banned_until: dict[str, float] = {}
        self._key_generation = 0
        self._key_epoch = time.monotonic()

    def key_generation(self) -> int:
        """The current WBI key generation: bumped by rotations, advanced by the clock."""
        period = self.knobs.wbi_rotate_seconds
        if period <= 0:
            return self._key_generation
        return self._key_generation + int((time.monotonic() - self._key_epoch) / period)

    def keys(self) -> tuple[str, str]:
        """The current (img_key, sub_key)."""
        return wbi_keys(self.key_generation())

    def rotate_keys(self) -> None:
        """Move to the next key generation now."""
        self._restart_key_clock()
        self._key_generation += 1

    def configure(self, changes: dict[str, Any]) -> None:
        """Update the knobs; a new rotation period starts counting from now."""
        if "wbi_rotate_seconds" in changes:
            self._restart_key_clock()
        self.knobs.update(changes)

    def _restart_key_clock(self) -> None:
        self._key_generation = self.key_generation()
        self._key_epoch = time.monotonic()

    def reset(self) -> None:
        """Forget the log, the rate windows and the bans; replay the same faults."""
        self.log.clear()
        self.windows.clear()
        self.banned_until.clear()
        self.fault_rng = random.Random(self.fault_seed)

    def rate_event(self, client: str, now: float) -> str | None:
        """Count a request of *client* at *now*: "ban-start", "banned" or None if allowed.

        More than ``rate_limit`` requests in the trailing second start a ban. A
        limit below 1 req/s is counted over a longer window (1/rate seconds, one
        request allowed) so that it still lets some requests through.
        """
        if self.banned_until.get(client, 0.0) > now:
            return "banned"
        rate = self.knobs.rate_limit
        span = max(RATE_WINDOW, 1.0 / rate)
        window = self.windows.setdefault(client, deque())
        window.append(now)
        while window[0] <= now - span:
            window.popleft()
        if len(window) > rate * span:
            self.banned_until[client] = now + self.knobs.ban_seconds
            window.clear()
            return "ban-start"
        return None

    def draw_fault(self) -> str | None:
        """A fault kind with probability ``fault_rate``, else None."""
        rate = self.knobs.fault_rate
        if rate <= 0 or self.fault_rng.random() >= rate:
            return None
        return self.fault_rng.choice(self.knobs.fault_kinds)


STATE: web.AppKey[FakeState] = web.AppKey("state")


# --- the screens ----------------------------------------------------------------------------


def _is_browser(user_agent: str) -> bool:
    agent = user_agent.lower()
    return agent.startswith(_BROWSER_UA_PREFIX) and not any(w in agent for w in _TOOL_UA_WORDS)


def _needs_buvid(path: str) -> bool:
    return "/wbi/" in path or path.startswith(("/x/space/", "/x/relation/"))


def _wbi_failure(query: Mapping[str, str], state: FakeState) -> Answer | None:
    """The answer for a missing (-352) or wrong or stale (-403) signature, else None."""
    w_rid, wts_text = query.get("w_rid", ""), query.get("wts", "")
    if not w_rid or not wts_text:
        return voucher()
    if not (wts_text.isascii() and wts_text.isdigit()):
        return denied()
    wts = int(wts_text)
    if abs(time.time() - wts) > state.knobs.wbi_max_age:
        return denied()
    # Every parameter is signed, the dm_img_* ones included.
    params = {name: value for name, value in query.items() if name != "w_rid"}
    expected = signed_query(params, mixin_key(*state.keys()), wts).rpartition("&w_rid=")[2]
    return None if hmac.compare_digest(expected, w_rid) else denied()


def _has_dm_img(query: Mapping[str, str]) -> bool:
    """Whether *query* has the browser's ``dm_img_*`` risk parameters, all of them non-empty."""
    if not all(query.get(name) for name in _DM_IMG_PARAMS):
        return False
    try:
        inter = json.loads(query["dm_img_inter"])
    except ValueError:
        return False
    return isinstance(inter, dict) and inter.keys() >= _DM_IMG_INTER_KEYS


def _from_bilibili(referer: str) -> bool:
    """Whether *referer* is a page of bilibili.com or of one of its subdomains."""
    host = urlsplit(referer).hostname or ""
    return host == "bilibili.com" or host.endswith(".bilibili.com")


def _ban_event(state: FakeState, client: str) -> str | None:
    """Why *client* is blocked now ("ban-all", "ban-start" or "banned"), or None."""
    if state.knobs.ban_all:
        return "ban-all"
    if state.knobs.rate_limit > 0:
        return state.rate_event(client, time.monotonic())
    return None


def _lacks_credentials(request: web.Request, knobs: Knobs, logged_in: bool) -> bool:
    """Whether the request lacks something a browser sends, which the site answers with -352.

    The ``buvid3`` cookie on space, relation and WBI paths; the ``dm_img_*``
    parameters on anonymous ``/x/space/wbi/`` requests; a bilibili.com
    ``Referer`` on the relation lists and the article cards.
    """
    path = request.path
    if knobs.require_buvid and _needs_buvid(path) and not request.cookies.get("buvid3"):
        return True
    if knobs.require_dm_img and path.startswith("/x/space/wbi/") and not logged_in:
        return not _has_dm_img(request.query)
    needs_referer = path in users.RELATION_LISTS or path == articles.CARDS
    return needs_referer and not _from_bilibili(request.headers.get("Referer", ""))


def _screen(request: web.Request, state: FakeState, entry: dict[str, Any]) -> Answer | None:
    """The risk-control answer for this request, or None if it may go on."""
    knobs, path = state.knobs, request.path
    if not _is_browser(request.headers.get("User-Agent", "")):
        return blocked_html()
    entry["event"] = _ban_event(state, entry["client"])
    if entry["event"]:
        return blocked_json()
    if _lacks_credentials(request, knobs, entry["logged_in"]):
        return voucher()
    if knobs.require_wbi and "/wbi/" in path and (failure := _wbi_failure(request.query, state)):
        return failure
    if knobs.relation_login_required and path in users.RELATION_LISTS and not entry["logged_in"]:
        return envelope(-101, "账号未登录")
    return None


def _fault_answer(kind: str, state: FakeState) -> Answer:
    if kind == "http412":
        return blocked_html()
    if kind == "code-799":
        return envelope(-799, "请求过于频繁，请稍后再试")
    if kind == "html":
        return Answer(200, _ERROR_PAGE_HTML, None, HTML)
    status = state.fault_rng.choice(tuple(_SERVER_ERRORS))
    body = _SERVER_ERROR_HTML.format(status=status, reason=_SERVER_ERRORS[status])
    return Answer(status, body, None, HTML)


def _coding(request: web.Request) -> str | None:
    """The content coding to use: br, then gzip, then deflate, if the client accepts it."""
    accepted = set()
    for item in request.headers.get("Accept-Encoding", "").lower().split(","):
        name, _, params = item.partition(";")
        quality = params.strip().removeprefix("q=")
        if quality and quality.replace(".", "", 1).isdigit() and float(quality) == 0:
            continue
        accepted.add(name.strip())
    for coding in ("br", "gzip", "deflate"):
        if coding in accepted and (coding != "br" or brotli is not None):
            return coding
    return None


def _compress(body: bytes, coding: str) -> bytes:
    if coding == "br":
        return brotli.compress(body, quality=5)
    if coding == "gzip":
        return gzip.compress(body, compresslevel=6, mtime=0)
    return zlib.compress(body)


async def _respond(request: web.Request, answer: Answer, *, truncate: bool) -> web.StreamResponse:
    """Send *answer*, compressed if asked; *truncate* sends half of it and hangs up.

    A binary body is sent as it is; one marked ``raw_deflate`` is always sent as
    raw deflate, whatever the client accepts, as the site sends its XML danmaku.
    """
    body = answer.body if isinstance(answer.body, bytes) else answer.body.encode()
    headers = {"Content-Type": answer.content_type, "Vary": "Accept-Encoding"}
    if isinstance(answer, BinaryAnswer) and answer.raw_deflate:
        deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        body = deflate.compress(body) + deflate.flush()
        headers["Content-Encoding"] = "deflate"
    elif coding := _coding(request):
        body = _compress(body, coding)
        headers["Content-Encoding"] = coding
    if not truncate:
        return web.Response(status=answer.status, body=body, headers=headers)
    response = web.StreamResponse(status=answer.status, headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    _hang_up(request)
    return response


def _endpoint(path: str) -> Callable[[web.Request], Answer] | None:
    """The function answering *path*, if the fake serves it."""
    if endpoint := ENDPOINTS.get(path):
        return endpoint
    return danmaku.comment_xml if danmaku.COMMENT_XML.fullmatch(path) else None


def _hang_up(request: web.Request) -> None:
    """Close the connection; aiohttp then drops the response it can no longer write."""
    if request.transport is not None:
        request.transport.close()


async def _api(request: web.Request) -> web.StreamResponse:
    """Serve one API request through the screens, the fault injector and the endpoint."""
    if request.path.startswith("/_fake/"):
        raise web.HTTPNotFound()
    state = request.app[STATE]
    entry: dict[str, Any] = {
        "t": time.time(),
        "path": request.path,
        "query": dict(request.query),
        "client": request.remote or "",
        "logged_in": session.logged_in(request),
        "status": None,
        "code": None,
        "fault": None,
        "event": None,
    }
    state.log.append(entry)
    if state.knobs.delay:
        await asyncio.sleep(state.knobs.delay)
    answer = _screen(request, state, entry)
    fault = None
    if answer is None:
        fault = entry["fault"] = state.draw_fault()
        if fault == "drop":
            _hang_up(request)
            return web.Response()
        if fault in ("http412", "code-799", "http5xx", "html"):
            answer = _fault_answer(fault, state)
        else:
            endpoint = _endpoint(request.path)
            answer = endpoint(request) if endpoint else not_found()
            if fault == "truncate-json":
                cut = answer.body[: len(answer.body) // 2]
                answer = Answer(answer.status, cut, None, answer.content_type)
    entry["status"] = answer.status
    entry["code"] = None if fault == "truncate" else answer.code
    return await _respond(request, answer, truncate=fault == "truncate")


# --- admin ----------------------------------------------------------------------------------


def _admin_json(value: object, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=dumps)


async def _get_config(request: web.Request) -> web.Response:
    return _admin_json(dataclasses.asdict(request.app[STATE].knobs))


async def _post_config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        changes = await request.json()
        if not isinstance(changes, dict):
            raise ValueError("the body must be a JSON object of knobs")
        state.configure(changes)
    except ValueError as exc:
        return _admin_json({"error": str(exc)}, status=400)
    return _admin_json(dataclasses.asdict(state.knobs))


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return _admin_json({"ok": True})


async def _log(request: web.Request) -> web.Response:
    return _admin_json(list(request.app[STATE].log))


def _keys_json(state: FakeState) -> web.Response:
    img_key, sub_key = state.keys()
    return _admin_json({"img_key": img_key, "sub_key": sub_key})


async def _rotate_keys(request: web.Request) -> web.Response:
    request.app[STATE].rotate_keys()
    return _keys_json(request.app[STATE])


async def _get_keys(request: web.Request) -> web.Response:
    return _keys_json(request.app[STATE])


def create_app(knobs: Knobs | None = None, fault_seed: int = 0) -> web.Application:
    """The fake API application, with its admin routes and one catch-all API route."""
    app = web.Application()
    state = app[STATE] = FakeState(knobs or Knobs(), fault_seed)
    app[session.CURRENT_KEYS] = state.keys
    app[articles.CARDS_MAX_IDS] = lambda: state.knobs.cards_max_ids
    app.router.add_get("/_fake/config", _get_config)
    app.router.add_post("/_fake/config", _post_config)
    app.router.add_post("/_fake/reset", _reset)
    app.router.add_get("/_fake/log", _log)
    app.router.add_post("/_fake/rotate-keys", _rotate_keys)
    app.router.add_get("/_fake/keys", _get_keys)
    app.router.add_get("/{path:.*}", _api)
    return app


async def serve_until_signalled(app: web.Application, host: str, port: int) -> None:
    """Serve *app*, print its base URL on one line, and stop on SIGTERM or SIGINT.

    Port 0 picks a free port; the printed line is how a parent process learns it.
    """
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    bound_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sys.stdout.write(f"http://{bound_host}:{bound_port}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
