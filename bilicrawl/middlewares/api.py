"""Pass, retry or drop every response, on its HTTP status and its envelope's ``code``.

- pass: code 0, or a code in ``meta["bili_allow_codes"]``; a body that is not JSON
  where ``meta["bili_body"]`` (``xml``, ``protobuf``) says so, unless an HTML page;
- retry (Scrapy's ``get_retry_request``, ``RETRY_TIMES``): risk-control and transient
  codes and statuses, bodies that should be JSON and are not, HTML error pages, code 0
  with only a ``v_voucher``; out of retries or once closing, a ``BiliApiError``;
- drop: any other code or status, a ``BiliApiError`` logged once at INFO.
Each outcome is sent as a ``bilicrawl.signals`` signal, for the throttle and breakers.

Settings: ``BILI_RETRY_API_CODES``, ``BILI_RISK_API_CODES``, ``BILI_RETRY_HTTP_CODES``,
``BILI_RISK_HTTP_CODES``, ``RETRY_TIMES``, ``RETRY_PRIORITY_ADJUST``.
Stats: ``bilicrawl/api_code/<code>``, ``bilicrawl/http_status/<status>``, ``bilicrawl/retry/*``,
``bilicrawl/unfetched/<reason|gave_up|cancelled>``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest

from bilicrawl import signals
from bilicrawl.config import get_int, get_int_list
from bilicrawl.envelope import BiliApiError, decode_envelope
from bilicrawl.stats import RETRY_BASE, stat_key

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)


def _is_html(body: bytes) -> bool:
    """Tell whether *body* is an HTML page: never a protobuf message (``<`` ends a group)."""
    head = body[:32].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _only_a_voucher(data: Any) -> bool:
    """Tell whether ``data`` is ``{"v_voucher": ...}``, risk control's answer with code 0."""
    return isinstance(data, dict) and len(data) == 1 and "v_voucher" in data


class BiliApiMiddleware:
    """Classifies every response as pass, retry or drop (see the module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.retry_codes = get_int_list(settings, "BILI_RETRY_API_CODES")
        self.risk_codes = get_int_list(settings, "BILI_RISK_API_CODES")
        self.retry_statuses = get_int_list(settings, "BILI_RETRY_HTTP_CODES")
        self.risk_statuses = get_int_list(settings, "BILI_RISK_HTTP_CODES")
        self.priority_adjust = get_int(settings, "RETRY_PRIORITY_ADJUST")
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
        spider = self.crawler.spider
        if spider is None:  # never: responses come only once the spider is open
            raise RuntimeError("a response before the spider was opened")
        retry = get_retry_request(
            request,
            spider=spider,
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
