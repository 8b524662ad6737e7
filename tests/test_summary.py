"""The end-of-crawl summary and exit status, the input ledger, unfetched requests counted."""

from __future__ import annotations

from typing import Any

import pytest
from scrapy import Request, Spider
from scrapy import signals as scrapy_signals
from scrapy.exceptions import DropItem, IgnoreRequest
from scrapy.http import TextResponse
from scrapy.utils.test import get_crawler
from twisted.internet.error import ConnectionRefusedError as TxConnectionRefused
from twisted.python.failure import Failure

from bilicrawl import signals
from bilicrawl.envelope import BiliApiError
from bilicrawl.extensions.closing import CrawlClosing
from bilicrawl.extensions.inputs import OPTIONAL, InputLedger
from bilicrawl.extensions.summary import (
    BLOCKED,
    FAILED,
    INTERRUPTED,
    OK,
    USAGE,
    CrawlSummary,
    exit_status,
    summary_lines,
)
from bilicrawl.middlewares.outcome import NetworkGaveUp, RequestOutcomeMiddleware
from tests.helpers.items import make_video
from tests.utils import project_settings

STORED = {
    "bilicrawl/input/accepted": 3, "bilicrawl/input/stored": 3,
    "bilicrawl/storage/written/videos": 3,
}  # fmt: skip
ABSENT = {
    "bilicrawl/input/accepted": 2, "bilicrawl/input/absent/api_code_-404": 1,
    "bilicrawl/input/absent/has_nothing": 1,
}  # fmt: skip
GAVE_UP = {**STORED, "bilicrawl/input/stored": 1, "bilicrawl/input/not_fetched/gave_up": 2}


@pytest.mark.parametrize(
    ("stats", "reason", "status"),
    [
        (STORED, "finished", OK),
        ({"bilicrawl/input/already_stored": 3}, "finished", OK),  # resumed: nothing left
        (ABSENT, "finished", OK),  # the site has none of them
        (GAVE_UP, "finished", FAILED),
        ({**STORED, "bilicrawl/input/not_stored/store_failed": 1}, "finished", FAILED),
        ({**STORED, "bilicrawl/storage/failed/videos": 1}, "finished", FAILED),
        ({**STORED, "bilicrawl/storage/lost/videos": 1}, "finished", FAILED),
        ({"bilicrawl/input/bad": 2}, "finished", USAGE),  # every input bad
        ({}, "finished", USAGE),  # no input at all
        (STORED, "start_error", FAILED),
        (STORED, "closespider_timeout", FAILED),
        (STORED, "bilicrawl_store_failed", FAILED),
        (STORED, "bilicrawl_risk_control", BLOCKED),
        ({"bilicrawl/input/accepted": 2}, "bilicrawl_dead_host", BLOCKED),
        (STORED, "shutdown", INTERRUPTED),
        (STORED, "forced_shutdown", INTERRUPTED),
        ({"bilicrawl/input/bad": 2}, "shutdown", INTERRUPTED),
    ],
)
def test_exit_status(stats: dict[str, Any], reason: str, status: int) -> None:
    assert exit_status(stats, reason).status == status


@pytest.mark.parametrize(
    ("first", "then", "status"),
    [
        ("bilicrawl_store_failed", "shutdown", FAILED),
        ("bilicrawl_risk_control", "bilicrawl_store_failed", BLOCKED),
        ("shutdown", "bilicrawl_risk_control", INTERRUPTED),
        ("bilicrawl_store_failed", "finished", FAILED),  # the last batch failed at close
    ],
)
def test_the_first_closing_reason_decides(first: str, then: str, status: int) -> None:
    crawler = get_crawler(Spider, project_settings())
    crawler.stats.open_spider()
    for name, value in STORED.items():
        crawler.stats.set_value(name, value)
    summary = crawler.get_extension(CrawlSummary)
    summary.engine_started()
    if first == "bilicrawl_store_failed":
        crawler.signals.send_catch_log(
            signals.store_failed, collection="videos", keys=[(2,)], error=OSError("full")
        )
    crawler.signals.send_catch_log(signals.crawl_closing, reason=first)
    crawler.signals.send_catch_log(signals.crawl_closing, reason=then)
    assert summary.report(then) == status
    assert crawler.stats.get_value("bilicrawl/closing/first_reason") == first


def test_summary_lines_add_up_and_say_what_was_stored_and_what_was_not() -> None:
    stats = {
        "bilicrawl/input/accepted": 9,
        "bilicrawl/input/bad": 2,
        "bilicrawl/input/duplicate": 1,
        "bilicrawl/input/stored": 3,
        "bilicrawl/input/absent/api_code_-404": 2,
        "bilicrawl/input/absent/has_nothing": 1,
        "bilicrawl/input/not_fetched/gave_up": 1,
        "bilicrawl/input/not_fetched/cancelled": 1,
        "bilicrawl/input/not_stored/store_failed": 1,
        "bilicrawl/input/unread": 40,
        "bilicrawl/storage/written/videos": 3,
        "bilicrawl/storage/upserted/videos": 7,  # upserts are not documents
        "bilicrawl/storage/failed/videos": 1,
        "bilicrawl/throttle/slowdowns/risk": 2,
        "bilicrawl/closing/first_reason": "bilicrawl_store_failed",
    }
    outcome = exit_status(stats, "shutdown")
    assert outcome.status == FAILED
    assert summary_lines(stats, "shutdown", outcome) == [
        "inputs: 9 accepted, 2 bad, 1 duplicate, 0 already stored",
        "accepted 9 = stored 3 + absent on the site 3 + not fetched 2 + not stored 1",
        "absent on the site: api_code_-404 2, has_nothing 1",
        "not fetched: cancelled 1, gave_up 1",
        "not stored: store_failed 1",
        "not read (the crawl closed first): 40 inputs",
        "written (distinct documents): videos 3",
        "dead-lettered (in failed-<collection>[.partial].jsonl): videos 1",
        "slowdowns: risk 2",
        "finish reason: shutdown (closing began: bilicrawl_store_failed)",
        "exit status: 1",
        f"next: {outcome.explanation}",
    ]


def test_inputs_that_gave_up_suggest_a_resumed_rerun() -> None:
    outcome = exit_status(GAVE_UP, "finished")
    assert outcome.status == FAILED
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


def ledger_crawler() -> Any:
    crawler = get_crawler(Spider, project_settings())
    crawler.stats.open_spider()
    return crawler


def input_stats(crawler: Any) -> dict[str, Any]:
    return {
        key: value
        for key, value in crawler.stats.get_stats().items()
        if key.startswith("bilicrawl/input/")
    }


def failure_of(error: Exception, **meta: Any) -> Failure:
    failure = Failure(error)
    failure.request = Request("https://api.bilibili.com/x", meta=meta)  # type: ignore[attr-defined]  # as Scrapy sets it
    return failure


def test_the_ledger_decides_each_input_once_its_requests_and_documents_are_done() -> None:
    crawler = ledger_crawler()
    ledger = crawler.get_extension(InputLedger)
    stored, absent, gave_up, store_failed, open_at_close = ((ledger.accept(),) for _ in range(5))
    for tag in (stored, absent, gave_up, store_failed, open_at_close):
        ledger.sent(tag)
    ledger.item(stored, make_video(aid=2))
    ledger.answered(stored)
    assert input_stats(crawler) == {}, "stored only once the store committed it"
    crawler.signals.send_catch_log(signals.store_committed, collection="videos", keys=[(2,)])
    ledger.failed(absent, failure_of(BiliApiError("api_code_-404", "啥都木有")))
    ledger.answered(absent)
    ledger.failed(gave_up, failure_of(BiliApiError("http_503", "x", unfetched="gave_up")))
    ledger.answered(gave_up)
    ledger.item(store_failed, make_video(aid=3))
    ledger.answered(store_failed)
    crawler.signals.send_catch_log(
        signals.store_failed, collection="videos", keys=[(3,)], error=OSError("full")
    )
    assert set(ledger.open) == set(open_at_close), "only open inputs are kept"
    ledger.finish()
    assert input_stats(crawler) == {
        "bilicrawl/input/stored": 1,
        "bilicrawl/input/absent/api_code_-404": 1,
        "bilicrawl/input/not_fetched/gave_up": 1,
        "bilicrawl/input/not_stored/store_failed": 1,
        "bilicrawl/input/not_fetched/cancelled": 1,
    }
    assert ledger.open == {} and ledger.awaited == {}


def test_an_input_that_gives_nothing_is_absent_and_an_optional_failure_is_forgiven() -> None:
    crawler = ledger_crawler()
    ledger = crawler.get_extension(InputLedger)
    empty, tags_failed = (ledger.accept(),), (ledger.accept(),)
    ledger.sent(empty)
    ledger.answered(empty)
    ledger.sent(tags_failed)
    ledger.failed(tags_failed, failure_of(TxConnectionRefused("refused"), **{OPTIONAL: True}))
    ledger.item(tags_failed, make_video(aid=5))
    ledger.answered(tags_failed)
    crawler.signals.send_catch_log(signals.store_committed, collection="videos", keys=[[5]])
    assert input_stats(crawler) == {
        "bilicrawl/input/absent/has_nothing": 1,
        "bilicrawl/input/stored": 1,
    }


def test_an_item_dropped_by_validation_is_not_stored_and_no_longer_awaited() -> None:
    crawler = ledger_crawler()
    ledger = crawler.get_extension(InputLedger)
    tag = (ledger.accept(),)
    ledger.sent(tag)
    ledger.item(tag, make_video(aid=7))
    ledger.answered(tag)
    response = TextResponse(
        "https://api.bilibili.com/x",
        request=Request("https://api.bilibili.com/x", meta={"bili_input": tag}),
    )
    crawler.signals.send_catch_log(
        scrapy_signals.item_dropped,
        item=make_video(aid=7),
        response=response,
        exception=DropItem("invalid"),
        spider=None,
    )
    assert input_stats(crawler) == {"bilicrawl/input/not_stored/invalid": 1}
    assert ledger.open == {} and ledger.awaited == {}
