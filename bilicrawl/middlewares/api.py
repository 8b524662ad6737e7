"""Bilibili's JSON envelope, read once for every response.

Bilibili answers most errors with HTTP 200 and a non-zero ``code`` in
``{"code", "message", "ttl", "data"}`` (the live API: ``{"code", "msg",
"message", "data"}``, code 1 for a room that does not exist), and risk control
with either HTTP 412 or a JSON code. This middleware makes one decision per response:

- pass: ``code == 0`` (or a code the request allows in ``meta["bili_allow_codes"]``);
- retry: risk-control and transient codes, retryable HTTP statuses, bodies
  that should be JSON but are not (truncated, HTML error pages), HTML pages
  where XML or protobuf was due, and the
  risk-control answer disguised as a success (code 0 with nothing in ``data``
  but a ``v_voucher``, reason ``api_voucher``). Retries go
  through Scrapy's ``get_retry_request``, so they share ``RETRY_TIMES`` and the
  ``max_retry_times`` meta key with network-error retries; a request that
  exhausts them is logged with its URL and counted in ``bilicrawl/retry/max_reached``
  and then raises ``BiliApiError``; once the crawl is closing early
  (``bilicrawl.signals.crawl_closing``: a circuit breaker, Ctrl-C) nothing is
  retried any more, so the closing crawl stops hitting the ban;
- drop: any other code (-404 deleted, 62002 invisible, ...) or HTTP status
  raises ``BiliApiError`` (an ``IgnoreRequest``), logged once at INFO with the
  request and reason; the request's errback, if any, receives it.

Requests that end here are counted in ``bilicrawl/unfetched/<why>`` for the
end-of-crawl summary: the drop reason, ``gave_up`` (out of retries) or
``cancelled`` (the crawl is closing).

Every non-zero code is counted in ``bilicrawl/api_code/<code>``, every
unexpected status in ``bilicrawl/http_status/<status>``. The outcome is sent as a
``bilicrawl.signals`` signal for throttling and the circuit breaker.

Requests whose body is not JSON (XML, protobuf) set ``meta["bili_body"]`` to
their format; their bodies are only checked for a JSON error envelope.

Settings: ``BILI_RETRY_API_CODES``, ``BILI_RISK_API_CODES``,
``BILI_RETRY_HTTP_CODES``, ``BILI_RISK_HTTP_CODES``, ``RETRY_TIMES``,
``RETRY_PRIORITY_ADJUST``.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import orjson
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import TextResponse

from bilicrawl import signals
from bilicrawl.stats import RETRY_BASE, stat_key

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)


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


_ENVELOPES: WeakKeyDictionary[Response, dict[str, Any] | None] = WeakKeyDictionary()


def decode_envelope(response: Response) -> dict[str, Any] | None:
    """Return the JSON envelope of *response*, or None if the body is not one.

    Each body is decoded once, with orjson (about three times as fast as the
    standard library on these bodies), and remembered for the response's
    lifetime: the API and WBI middlewares and the spider's callback all read it.
    """
    try:
        return _ENVELOPES[response]
    except KeyError:
        envelope = _ENVELOPES[response] = _decode(response)
        return envelope


def envelope_data(response: Response) -> Any:
    """Return ``data`` of an answer the API middleware passed (its code was 0)."""
    envelope = decode_envelope(response)
    if envelope is None:
        raise ValueError(f"{response} has no JSON envelope")
    return envelope.get("data")


def _decode(response: Response) -> dict[str, Any] | None:
    if not isinstance(response, TextResponse) or response.body.lstrip()[:1] != b"{":
        return None
    try:
        payload = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        try:  # not UTF-8, or numbers orjson refuses: the standard library takes them
            payload = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            return None
    if isinstance(payload, dict) and isinstance(payload.get("code"), int):
        return payload
    return None


def _is_html(body: bytes) -> bool:
    """Tell whether *body* is an HTML page: never a protobuf message (``<`` ends a group)."""
    head = body[:32].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _only_a_voucher(data: Any) -> bool:
    """Tell whether ``data`` is ``{"v_voucher": ...}``, risk control's answer with code 0."""
    return isinstance(data, dict) and len(data) == 1 and "v_voucher" in data


def _int_set(values: list[Any]) -> frozenset[int]:
    return frozenset(int(value) for value in values)


class BiliApiMiddleware:
    """Classifies every response as pass, retry or drop (see the module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.retry_codes = _int_set(settings.getlist("BILI_RETRY_API_CODES"))
        self.risk_codes = _int_set(settings.getlist("BILI_RISK_API_CODES"))
        self.retry_statuses = _int_set(settings.getlist("BILI_RETRY_HTTP_CODES"))
        self.risk_statuses = _int_set(settings.getlist("BILI_RISK_HTTP_CODES"))
        self.priority_adjust = settings.getint("RETRY_PRIORITY_ADJUST")
        self.closing = False
        crawler.signals.connect(self._on_closing, signal=signals.crawl_closing)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Request | Response:
        payload = decode_envelope(response)
        if payload is None:
            return self._without_envelope(request, response)
        code: int = payload["code"]
        if code == 0 and _only_a_voucher(payload.get("data")):
            self.crawler.stats.inc_value(stat_key("api_code", "voucher"))
            return self._retry(request, "api_voucher", "a voucher instead of data", risk=True)
        if code == 0 or code in request.meta.get("bili_allow_codes", ()):
            self._send(signals.clean_answer, request)
            return response
        self.crawler.stats.inc_value(stat_key("api_code", code))
        # The live API's envelope also has "msg" (code 1: no such room).
        message = str(payload.get("message") or payload.get("msg") or "")
        if code in self.retry_codes:
            risk = code in self.risk_codes
            return self._retry(request, f"api_code_{code}", message, risk=risk, payload=payload)
        self._send(signals.clean_answer, request)
        raise self._drop(request, f"api_code_{code}", message, payload)

    def process_exception(self, request: Request, exception: Exception) -> None:
        """Report network failures; Scrapy's RetryMiddleware retries them."""
        if not isinstance(exception, IgnoreRequest):
            reason = type(exception).__name__
            self._send(signals.transient_failure, request, reason=reason)
            self._send(signals.network_failure, request, reason=reason, exception=exception)

    def _without_envelope(self, request: Request, response: Response) -> Request | Response:
        status = response.status
        if status != 200:
            self.crawler.stats.inc_value(stat_key("http_status", status))
        if status in self.retry_statuses:
            risk = status in self.risk_statuses
            return self._retry(request, f"http_{status}", f"HTTP {status}", risk=risk)
        if status >= 300:
            self._send(signals.clean_answer, request)
            raise self._drop(request, f"http_{status}", f"HTTP {status}")
        if request.meta.get("bili_body", "json") == "json":
            return self._retry(request, "bad_body", "the body is not a JSON envelope", risk=False)
        if _is_html(response.body):  # a gateway's error page where XML or protobuf was due
            return self._retry(request, "bad_body", "an HTML page instead of the body", risk=False)
        self._send(signals.clean_answer, request)
        return response

    def _retry(
        self, request: Request, reason: str, message: str, *, risk: bool, payload: Any = None
    ) -> Request:
        signal = signals.risk_control if risk else signals.transient_failure
        self._send(signal, request, reason=reason)
        if self.closing:
            raise self._drop(
                request, reason, "not retried: the crawl is closing", unfetched="cancelled"
            )
        retry = get_retry_request(
            request,
            spider=self.crawler.spider,
            reason=reason,
            priority_adjust=self.priority_adjust,
            logger=logger,
            stats_base_key=RETRY_BASE,
        )
        if retry is None:
            self.crawler.stats.inc_value(stat_key("unfetched", "gave_up"))
            raise BiliApiError(
                reason, f"gave up after retries: {message}", payload, unfetched="gave_up"
            )
        return retry

    def _drop(
        self,
        request: Request,
        reason: str,
        message: str,
        payload: Any = None,
        *,
        unfetched: str | None = None,
    ) -> BiliApiError:
        """Log and count a request that ends here, in ``unfetched/<unfetched or reason>``."""
        self.crawler.stats.inc_value(stat_key("unfetched", unfetched or reason))
        logger.info(
            "Dropped %(request)s: %(reason)s %(message)s",
            {"request": request, "reason": reason, "message": message},
            extra={"spider": self.crawler.spider},
        )
        return BiliApiError(reason, message, payload, unfetched=unfetched)

    def _on_closing(self, reason: str) -> None:
        self.closing = True

    def _send(self, signal: object, request: Request, **kwargs: Any) -> None:
        self.crawler.signals.send_catch_log(signal, request=request, **kwargs)
