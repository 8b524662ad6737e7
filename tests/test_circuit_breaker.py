"""The circuit breakers: risk-control storms and dead hosts close the crawl, on a fake clock."""

from __future__ import annotations

from typing import Any
from unittest.mock import Mock

import pytest
from scrapy import Request, Spider
from scrapy import signals as scrapy_signals
from scrapy.core.downloader import Slot
from scrapy.utils.test import get_crawler
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionRefusedError as RefusedError
from twisted.internet.error import DNSLookupError

from bilicrawl import signals
from bilicrawl.config import ConfigError
from bilicrawl.extensions.circuit_breaker import (
    CLOSE_REASON,
    DEAD_HOST_REASON,
    DeadHostBreaker,
    FailureRun,
    RiskCircuitBreaker,
)
from bilicrawl.extensions.closing import CrawlClosing
from tests.utils import Clock, project_settings

API = "https://api.bilibili.com/x/web-interface/view?aid=2"
COMMENT = "https://comment.bilibili.com/x/v2/dm/web/seg.so?oid=1"


def make_crawler(**overrides: Any) -> Any:
    crawler = get_crawler(Spider, {**project_settings(), **overrides})
    crawler.spider = crawler._create_spider("test")
    crawler.engine = Mock()
    crawler.engine.close_spider_async.return_value = succeed(None)
    crawler.engine.downloader.slots = {}
    return crawler


def breaker(crawler: Any, cls: type[Any]) -> Any:
    extension = crawler.get_extension(cls)
    extension.clock = Clock(1000.0)
    return extension


@pytest.fixture
def crawler() -> Any:
    return make_crawler(BILI_CIRCUIT_BREAKER_THRESHOLD=3)


def answer(crawler: Any, signal: object, url: str = API, **kwargs: Any) -> None:
    crawler.signals.send_catch_log(signal, request=Request(url), **kwargs)


def refused(crawler: Any, url: str = API) -> None:
    error = RefusedError("111: Connection refused")
    answer(crawler, signals.network_failure, url, reason="ConnectionRefusedError", exception=error)


def responded(crawler: Any, url: str = API) -> None:
    answer(crawler, scrapy_signals.response_downloaded, url, response=None)


class TestFailureRun:
    def test_trips_at_the_threshold(self) -> None:
        run = FailureRun(threshold=3, seconds=0)
        assert [run.fail(now) for now in (0, 1, 2)] == [False, False, True]

    def test_trips_when_a_run_of_three_has_lasted_the_time(self) -> None:
        run = FailureRun(threshold=100, seconds=60)
        assert not run.fail(0)
        assert not run.fail(61), "two failures are no run"
        assert run.fail(62)

    def test_a_reset_starts_a_new_run(self) -> None:
        run = FailureRun(threshold=3, seconds=60)
        run.fail(0)
        run.fail(1)
        run.reset()
        assert not run.fail(100)
        assert not run.fail(101)
        assert run.count == 2
        assert run.started == 100


def test_trips_once_at_the_threshold(crawler: Any, caplog: pytest.LogCaptureFixture) -> None:
    closing: list[str] = []

    def record(reason: str) -> None:
        closing.append(reason)

    crawler.signals.connect(record, signal=signals.crawl_closing, weak=False)
    for _ in range(5):
        answer(crawler, signals.risk_control, reason="api_code_-412")
    crawler.engine.close_spider_async.assert_called_once_with(reason=CLOSE_REASON)
    assert closing == [CLOSE_REASON]
    assert crawler.stats.get_value("bilicrawl/circuit_breaker/tripped") == "api_code_-412"
    assert "3 consecutive risk-control answers" in caplog.text
    assert "-a resume=true" in caplog.text


def test_a_clean_answer_resets_the_count(crawler: Any) -> None:
    for _ in range(10):
        answer(crawler, signals.risk_control, reason="http_412")
        answer(crawler, signals.risk_control, reason="http_412")
        answer(crawler, signals.clean_answer)
    crawler.engine.close_spider_async.assert_not_called()


def test_a_spaced_out_ban_trips_within_five_minutes(caplog: pytest.LogCaptureFixture) -> None:
    """With the default back-off, risk answers come 10, 20, 40, 80, 160 s apart."""
    crawler = make_crawler()
    risk = breaker(crawler, RiskCircuitBreaker)
    start = risk.clock.now
    for offset in (0, 10, 30, 70, 150):
        risk.clock.now = start + offset
        answer(crawler, signals.risk_control, reason="http_412")
    crawler.engine.close_spider_async.assert_not_called()
    risk.clock.now = start + 310
    answer(crawler, signals.risk_control, reason="http_412")
    crawler.engine.close_spider_async.assert_called_once_with(reason=CLOSE_REASON)
    assert "6 consecutive risk-control answers over 310 s" in caplog.text


def test_zero_seconds_leaves_only_the_count() -> None:
    crawler = make_crawler(BILI_CIRCUIT_BREAKER_SECONDS=0)
    risk = breaker(crawler, RiskCircuitBreaker)
    for _ in range(9):
        risk.clock.now += 3600
        answer(crawler, signals.risk_control, reason="http_412")
    crawler.engine.close_spider_async.assert_not_called()


def test_zero_disables_it() -> None:
    crawler = get_crawler(Spider, {**project_settings(), "BILI_CIRCUIT_BREAKER_THRESHOLD": 0})
    assert crawler.get_extension(RiskCircuitBreaker) is None


def test_queued_downloads_are_cancelled_not_sent(crawler: Any) -> None:
    slot = Slot(concurrency=1, delay=600.0, jitter=0.0)
    failures: list[Any] = []
    for aid in (1, 2):
        deferred: Deferred[Any] = Deferred()
        deferred.addErrback(failures.append)
        slot.queue.append((Request(f"https://api.bilibili.com/x?aid={aid}"), deferred))
    crawler.engine.downloader.slots = {"api.bilibili.com": slot}
    for _ in range(3):
        answer(crawler, signals.risk_control, reason="http_412")
    assert not slot.queue
    assert [failure.check(CrawlClosing) for failure in failures] == [CrawlClosing, CrawlClosing]
    assert crawler.stats.get_value("bilicrawl/closing/cancelled") == 2


def test_a_dead_host_closes_the_crawl_once(caplog: pytest.LogCaptureFixture) -> None:
    crawler = make_crawler(BILI_DEAD_HOST_THRESHOLD=20, BILI_DEAD_HOST_SECONDS=0)
    breaker(crawler, DeadHostBreaker)
    for _ in range(19):
        refused(crawler)
    crawler.engine.close_spider_async.assert_not_called()
    for _ in range(5):
        refused(crawler)
    crawler.engine.close_spider_async.assert_called_once_with(reason=DEAD_HOST_REASON)
    assert crawler.stats.get_value("bilicrawl/dead_host/tripped") == "ConnectionRefusedError"
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    message = record.getMessage()
    assert "api.bilibili.com is unreachable, 20 network failures in a row" in message
    assert "Connection refused" in message
    assert "-a resume=true" in message


def test_slow_failures_trip_by_time() -> None:
    """Timeouts come slowly: three in a row over a minute are enough."""
    crawler = make_crawler(BILI_DEAD_HOST_THRESHOLD=20, BILI_DEAD_HOST_SECONDS=60)
    dead = breaker(crawler, DeadHostBreaker)
    for _ in range(3):
        answer(
            crawler,
            signals.network_failure,
            reason="DNSLookupError",
            exception=DNSLookupError("api.bilibili.com"),
        )
        dead.clock.now += 30
    crawler.engine.close_spider_async.assert_called_once_with(reason=DEAD_HOST_REASON)


def test_any_response_resets_the_run_of_its_host() -> None:
    crawler = make_crawler(BILI_DEAD_HOST_THRESHOLD=3, BILI_DEAD_HOST_SECONDS=0)
    breaker(crawler, DeadHostBreaker)
    for _ in range(10):
        refused(crawler)
        refused(crawler)
        responded(crawler)  # a 503 or a -412 proves the host is alive all the same
    refused(crawler)
    refused(crawler)
    refused(crawler, COMMENT)
    refused(crawler, COMMENT)
    crawler.engine.close_spider_async.assert_not_called()
    refused(crawler)
    crawler.engine.close_spider_async.assert_called_once()


def test_a_closing_crawl_is_not_closed_again(caplog: pytest.LogCaptureFixture) -> None:
    crawler = make_crawler(BILI_DEAD_HOST_THRESHOLD=2)
    breaker(crawler, DeadHostBreaker)
    crawler.signals.send_catch_log(signals.crawl_closing, reason="shutdown")
    for _ in range(3):
        refused(crawler)
    crawler.engine.close_spider_async.assert_not_called()
    assert "ERROR" not in caplog.text


def test_dead_host_breaker_zero_disables_it() -> None:
    crawler = get_crawler(Spider, {**project_settings(), "BILI_DEAD_HOST_THRESHOLD": 0})
    assert crawler.get_extension(DeadHostBreaker) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BILI_DEAD_HOST_THRESHOLD", "many"),
        ("BILI_DEAD_HOST_SECONDS", -1),
        ("BILI_CIRCUIT_BREAKER_SECONDS", "soon"),
    ],
)
def test_bad_settings_are_one_clear_error(name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"^{name} must"):
        make_crawler(**{name: value}).get_extension(DeadHostBreaker)
