"""The end-of-crawl summary, its exit status, and the counting of unfetched requests."""

from __future__ import annotations

from typing import Any

import pytest
from scrapy import Request, Spider
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.test import get_crawler
from twisted.internet.error import ConnectionRefusedError as TxConnectionRefused

from bilicrawl.extensions.closing import CrawlClosing
from bilicrawl.extensions.summary import (
    BLOCKED,
    FAILED,
    INTERRUPTED,
    OK,
    CrawlSummary,
    exit_status,
    summary_lines,
)
from bilicrawl.middlewares.outcome import NetworkGaveUp, RequestOutcomeMiddleware
from tests.utils import project_settings

STORED = {"bilicrawl/input/accepted": 3, "bilicrawl/storage/upserted/videos": 3}


@pytest.mark.parametrize(
    ("stats", "reason", "status"),
    [
        (STORED, "finished", OK),
        ({}, "finished", OK),  # nothing to do (everything already stored) is fine
        ({"bilicrawl/input/accepted": 2}, "finished", FAILED),
        ({**STORED, "bilicrawl/storage/failed/videos": 1}, "finished", FAILED),
        ({**STORED, "bilicrawl/storage/lost/videos": 1}, "finished", FAILED),
        (STORED, "start_error", FAILED),
        (STORED, "closespider_timeout", FAILED),
        (STORED, "bilicrawl_risk_control", BLOCKED),
        ({"bilicrawl/input/accepted": 2}, "bilicrawl_dead_host", BLOCKED),
        (STORED, "shutdown", INTERRUPTED),
        (STORED, "forced_shutdown", INTERRUPTED),
    ],
)
def test_exit_status(stats: dict[str, Any], reason: str, status: int) -> None:
    assert exit_status(stats, reason).status == status


def test_summary_lines_say_what_was_stored_and_what_was_not() -> None:
    stats = {
        **STORED,
        "bilicrawl/input/bad": 2,
        "bilicrawl/input/duplicate": 1,
        "bilicrawl/unfetched/api_code_-404": 4,
        "bilicrawl/unfetched/network": 1,
        "bilicrawl/storage/failed/videos": 5,
    }
    outcome = exit_status(stats, "finished")
    assert summary_lines(stats, "finished", outcome) == [
        "inputs: 3 accepted, 2 bad, 1 duplicate, 0 already stored",
        "stored: videos 3",
        "not fetched: 5 (api_code_-404 4, network 1)",
        "dead-lettered (in failed-<collection>[.partial].jsonl): videos 5",
        "finish reason: finished",
        "exit status: 1",
        f"next: {outcome.explanation}",
    ]


def test_failed_network_requests_suggest_a_resumed_rerun() -> None:
    outcome = exit_status({**STORED, "bilicrawl/unfetched/network": 2}, "finished")
    assert outcome.status == OK
    assert "-a resume=true" in outcome.explanation


def test_the_summary_is_logged_once_and_records_the_status(caplog: Any) -> None:
    crawler = get_crawler(Spider, project_settings())
    summary = crawler.get_extension(CrawlSummary)
    crawler.stats.open_spider()
    for name, value in STORED.items():
        crawler.stats.set_value(name, value)
    summary.engine_started()
    with caplog.at_level("INFO"):
        summary.spider_closed("finished")
        assert summary.report("finished") == OK
    assert caplog.text.count("Crawl summary") == 1
    assert crawler.stats.get_value("bilicrawl/exit_status") == OK


def test_a_crawl_that_never_started_has_no_summary(caplog: Any) -> None:
    crawler = get_crawler(Spider, project_settings())
    crawler.stats.open_spider()
    with caplog.at_level("INFO"):
        crawler.get_extension(CrawlSummary).spider_closed("finished")
    assert "Crawl summary" not in caplog.text


def test_final_download_errors_are_counted_by_why() -> None:
    crawler = get_crawler(Spider, project_settings())
    crawler.stats.open_spider()
    middleware = RequestOutcomeMiddleware.from_crawler(crawler)
    request = Request("https://api.bilibili.com/x")
    middleware.process_exception(request, CrawlClosing("not sent"))
    middleware.process_exception(request, IgnoreRequest("offsite"))
    refused = TxConnectionRefused("refused")
    with pytest.raises(NetworkGaveUp) as raised:
        middleware.process_exception(request, refused)
    assert raised.value.__cause__ is refused
    stats = crawler.stats.get_stats()
    assert {key: value for key, value in stats.items() if "unfetched" in key} == {
        "bilicrawl/unfetched/cancelled": 1,
        "bilicrawl/unfetched/ignored": 1,
        "bilicrawl/unfetched/network": 1,
    }
