"""BiliThrottle: the per-slot rate cap and the risk-control back-off."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from scrapy import Request, Spider
from scrapy import signals as scrapy_signals
from scrapy.core.downloader import Slot
from scrapy.utils.test import get_crawler

from bilicrawl import signals
from bilicrawl.extensions.throttle import BiliThrottle
from tests.utils import project_settings

SLOT = "api.bilibili.com"
SPACE_SLOT = "api.bilibili.com/x/space/"


def make_throttle(**overrides: Any) -> tuple[Any, BiliThrottle, dict[str, Slot]]:
    settings = {
        **project_settings(),
        "BILI_THROTTLE_MAX_RPS": 4.0,
        "BILI_THROTTLE_BACKOFF_START": 10.0,
        "BILI_THROTTLE_BACKOFF_FACTOR": 2.0,
        "BILI_THROTTLE_BACKOFF_MAX": 100.0,
        "BILI_THROTTLE_RECOVERY": 0.5,
        "BILI_THROTTLE_RATCHET": 1.25,
        "BILI_THROTTLE_TRANSIENT_START": 1.0,
        "BILI_THROTTLE_FAMILIES": {"/x/space/": 0.5},
        **overrides,
    }
    crawler = get_crawler(Spider, settings)
    crawler.spider = crawler._create_spider("test")
    slots: dict[str, Slot] = {
        SLOT: Slot(concurrency=4, delay=0.0, jitter=0.0),
        SPACE_SLOT: Slot(concurrency=4, delay=0.0, jitter=0.0),
    }
    crawler.engine = SimpleNamespace(downloader=SimpleNamespace(slots=slots))
    throttle = crawler.get_extension(BiliThrottle)
    assert throttle is not None
    return crawler, throttle, slots


def request(path: str = "/x/web-interface/view?aid=2") -> Request:
    """A request as the downloader sees it: its slot assigned."""
    request = Request(f"https://{SLOT}{path}")
    request.meta.setdefault("download_slot", SLOT)
    return request


def send(crawler: Any, signal: object, **kwargs: Any) -> None:
    crawler.signals.send_catch_log(signal, request=request(), **kwargs)


def space_request(crawler: Any) -> Request:
    request = Request(f"https://{SLOT}/x/space/wbi/acc/info?mid=2")
    crawler.signals.send_catch_log(scrapy_signals.request_scheduled, request=request)
    return request


def test_the_cap_is_applied_before_the_first_request() -> None:
    crawler, _, slots = make_throttle()
    send(crawler, scrapy_signals.request_reached_downloader)
    assert slots[SLOT].delay == pytest.approx(0.25)


def test_the_cap_allows_for_slot_jitter() -> None:
    crawler, _, slots = make_throttle(DOWNLOAD_DELAY_JITTER=0.5)
    send(crawler, scrapy_signals.request_reached_downloader)
    assert slots[SLOT].delay * (1 - 0.5) == pytest.approx(0.25)


def test_a_lowered_delay_is_raised_back_to_the_cap() -> None:
    crawler, _, slots = make_throttle()
    slots[SLOT].delay = 0.01  # as AutoThrottle does for a fast server
    send(crawler, scrapy_signals.response_downloaded, response=None)
    assert slots[SLOT].delay == pytest.approx(0.25)


def test_higher_delays_are_kept() -> None:
    crawler, _, slots = make_throttle()
    slots[SLOT].delay = 3.0
    send(crawler, scrapy_signals.request_reached_downloader)
    assert slots[SLOT].delay == 3.0


def test_risk_control_slows_the_slot_down_once_per_step() -> None:
    crawler, throttle, slots = make_throttle()
    send(crawler, signals.risk_control, reason="api_code_-412")
    first = slots[SLOT].delay
    assert 10.0 <= first <= 12.5
    assert throttle.floors[SLOT] == pytest.approx(0.25 * 1.25)
    # Answers to requests already in flight do not escalate further.
    send(crawler, signals.risk_control, reason="api_code_-412")
    assert slots[SLOT].delay == first
    assert crawler.stats.get_value("bilicrawl/throttle/backoff/api_code_-412") == 1


def test_a_block_after_the_back_off_period_escalates(monkeypatch: pytest.MonkeyPatch) -> None:
    crawler, throttle, slots = make_throttle()
    send(crawler, signals.risk_control, reason="http_412")
    first = throttle.backoffs[SLOT].delay
    throttle.backoffs[SLOT].escalated_at -= first  # the back-off period has passed
    send(crawler, signals.risk_control, reason="http_412")
    assert 2 * first <= slots[SLOT].delay <= min(2.5 * first, 100.0)
    assert throttle.floors[SLOT] == pytest.approx(0.25 * 1.25), "ratchets once per calm"


def test_back_off_is_capped() -> None:
    crawler, throttle, slots = make_throttle(BILI_THROTTLE_BACKOFF_MAX=15.0)
    for _ in range(5):
        send(crawler, signals.risk_control, reason="http_412")
        throttle.backoffs[SLOT].escalated_at = float("-inf")
    assert slots[SLOT].delay == 15.0


def test_clean_answers_recover_gradually(caplog: pytest.LogCaptureFixture) -> None:
    crawler, throttle, slots = make_throttle()
    send(crawler, signals.risk_control, reason="api_code_-352")
    delays = []
    with caplog.at_level("INFO"):
        for _ in range(8):
            send(crawler, signals.clean_answer)
            delays.append(slots[SLOT].delay)
    assert delays == sorted(delays, reverse=True)
    assert delays[0] > 5.0
    assert delays[-1] == pytest.approx(0.25 * 1.25), "back to the ratcheted floor"
    assert throttle.backoffs[SLOT].delay == 0.0
    assert any("recovered" in record.getMessage() for record in caplog.records)


def test_transient_failures_back_off_without_growing_or_moving_the_floor() -> None:
    crawler, throttle, slots = make_throttle()
    for _ in range(3):
        send(crawler, signals.transient_failure, reason="http_503")
        throttle.backoffs[SLOT].escalated_at = float("-inf")
        assert 1.0 <= slots[SLOT].delay <= 1.25
    assert throttle.floors[SLOT] == pytest.approx(0.25)


def test_state_outlives_scrapys_idle_slot_cleanup() -> None:
    crawler, _, slots = make_throttle()
    send(crawler, signals.risk_control, reason="http_412")
    backoff = slots[SLOT].delay
    slots[SLOT] = Slot(concurrency=4, delay=0.0, jitter=0.0)  # recreated after GC
    send(crawler, scrapy_signals.request_reached_downloader)
    assert slots[SLOT].delay == backoff


@pytest.mark.parametrize(
    ("name", "value"), [("BILI_THROTTLE_MAX_RPS", 0), ("DOWNLOAD_DELAY_JITTER", 1.0)]
)
def test_bad_settings_are_rejected(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        make_throttle(**{name: value})


def test_endpoint_families_get_their_own_stricter_slot() -> None:
    crawler, _, slots = make_throttle()
    space = space_request(crawler)
    assert space.meta["download_slot"] == SPACE_SLOT
    crawler.signals.send_catch_log(scrapy_signals.request_reached_downloader, request=space)
    send(crawler, scrapy_signals.request_reached_downloader)
    assert slots[SPACE_SLOT].delay == pytest.approx(2.0)
    assert slots[SLOT].delay == pytest.approx(0.25)


def test_risk_control_slows_every_slot_of_the_host() -> None:
    crawler, throttle, slots = make_throttle()
    space = space_request(crawler)
    crawler.signals.send_catch_log(scrapy_signals.request_reached_downloader, request=space)
    send(crawler, signals.risk_control, reason="api_code_-412")
    assert slots[SPACE_SLOT].delay == slots[SLOT].delay >= 10.0
    assert throttle.floors[SPACE_SLOT] == pytest.approx(2.0), "only the blocked slot ratchets"
