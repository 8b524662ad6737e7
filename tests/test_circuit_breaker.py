"""RiskCircuitBreaker: closes the crawl after a storm of consecutive risk answers."""

from __future__ import annotations

from typing import Any
from unittest.mock import Mock

import pytest
from scrapy import Request, Spider
from scrapy.core.downloader import Slot
from scrapy.utils.test import get_crawler
from twisted.internet.defer import Deferred, succeed

from bilicrawl import signals
from bilicrawl.extensions.circuit_breaker import CLOSE_REASON, RiskCircuitBreaker
from bilicrawl.extensions.closing import CrawlClosing
from tests.utils import project_settings


@pytest.fixture
def crawler() -> Any:
    crawler = get_crawler(Spider, {**project_settings(), "BILI_CIRCUIT_BREAKER_THRESHOLD": 3})
    crawler.spider = crawler._create_spider("test")
    crawler.engine = Mock()
    crawler.engine.close_spider_async.return_value = succeed(None)
    crawler.engine.downloader.slots = {}
    return crawler


def answer(crawler: Any, signal: object, **kwargs: Any) -> None:
    crawler.signals.send_catch_log(signal, request=Request("https://api.bilibili.com/x"), **kwargs)


def test_trips_once_at_the_threshold(crawler: Any, caplog: pytest.LogCaptureFixture) -> None:
    opened: list[bool] = []
    crawler.signals.connect(lambda reason: opened.append(reason), signal=signals.crawl_closing, weak=False)
    for _ in range(5):
        answer(crawler, signals.risk_control, reason="api_code_-412")
    crawler.engine.close_spider_async.assert_called_once_with(reason=CLOSE_REASON)
    assert opened == [CLOSE_REASON]
    assert crawler.stats.get_value("bilicrawl/circuit_breaker/tripped") == "api_code_-412"
    assert "3 consecutive risk-control answers" in caplog.text


def test_a_clean_answer_resets_the_count(crawler: Any) -> None:
    for _ in range(10):
        answer(crawler, signals.risk_control, reason="http_412")
        answer(crawler, signals.risk_control, reason="http_412")
        answer(crawler, signals.clean_answer)
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
