"""BiliThrottle: the per-slot rate cap, the back-off and the rate that follows a limit."""

from __future__ import annotations

import itertools
from collections import Counter
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from unittest.mock import Mock

import pytest
from scrapy import Request, Spider
from scrapy import signals as scrapy_signals
from scrapy.core.downloader import Slot
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from bilicrawl import signals
from bilicrawl.config import ConfigError
from bilicrawl.extensions.throttle import BiliThrottle
from bilicrawl.spiders.video import VideoSpider
from tests.helpers.store import stored_documents
from tests.helpers.videos import sample_aids, write_ids_file
from tests.utils import Clock, project_settings, run_crawl

if TYPE_CHECKING:
    from pathlib import Path

SLOT = "api.bilibili.com"
SPACE_SLOT = "api.bilibili.com/x/space/"
CAP = 40.0


class Env:
    """A throttle on a fake clock, with the downloader's slots it adjusts."""

    def __init__(self, **overrides: Any) -> None:
        settings = {
            **project_settings(),
            "BILI_THROTTLE_MAX_RPS": CAP,
            "BILI_THROTTLE_BACKOFF_START": 10.0,
            "BILI_THROTTLE_BACKOFF_FACTOR": 2.0,
            "BILI_THROTTLE_BACKOFF_MAX": 100.0,
            "BILI_THROTTLE_TRANSIENT_START": 1.0,
            "BILI_THROTTLE_FAILURE_WINDOW": 10,
            "BILI_THROTTLE_FAILURE_RATIO": 0.5,
            "BILI_THROTTLE_DECREASE": 0.8,
            "BILI_THROTTLE_RECOVER_SECONDS": 60.0,
            "BILI_THROTTLE_RECOVER_STEP": 0.1,
            "BILI_THROTTLE_FORGET_SECONDS": 600.0,
            "BILI_THROTTLE_FAMILIES": {"/x/space/": 0.5},
            **overrides,
        }
        self.crawler = get_crawler(Spider, settings)
        self.crawler.spider = self.crawler._create_spider("test")
        self.slots: dict[str, Slot] = {
            SLOT: Slot(concurrency=4, delay=0.0, jitter=0.0),
            SPACE_SLOT: Slot(concurrency=4, delay=0.0, jitter=0.0),
        }
        self.woken: list[Slot] = []
        """Slots the throttle asked the downloader to process again."""
        downloader = SimpleNamespace(slots=self.slots, _process_queue=self.woken.append)
        self.crawler.engine = SimpleNamespace(downloader=downloader)
        throttle = self.crawler.get_extension(BiliThrottle)
        assert throttle is not None
        self.throttle = throttle
        self.clock = throttle.clock = Clock(1000.0)

    def send(self, signal: object, request: Request | None = None, **kwargs: Any) -> None:
        self.crawler.signals.send_catch_log(signal, request=request or api_request(), **kwargs)

    def answer(self, signal: object, **kwargs: Any) -> None:
        """A response arrives and the API middleware classifies it."""
        self.send(scrapy_signals.response_downloaded, response=None)
        self.send(signal, **kwargs)

    def crawl(self, seconds: float, rps: float) -> None:
        """Clean answers at *rps* for *seconds*."""
        for _ in range(round(seconds * rps)):
            self.clock.now += 1 / rps
            self.answer(signals.clean_answer)

    def risk(self, after: float = 0.05) -> None:
        self.clock.now += after
        self.answer(signals.risk_control, reason="api_code_-412")

    def fail(self, after: float = 0.05) -> None:
        self.clock.now += after
        self.answer(signals.transient_failure, reason="http_503")

    def slowdowns(self) -> dict[str, int]:
        prefix = "bilicrawl/throttle/slowdowns/"
        stats = self.crawler.stats.get_stats().items()
        return {key.removeprefix(prefix): value for key, value in stats if key.startswith(prefix)}

    def ban(self) -> None:
        """A ban that outlives the probe and the first back-off, then lifts."""
        self.risk()
        for _ in range(2):
            self.risk(after=self.backoff().delay)
        self.clock.now += self.backoff().delay
        self.answer(signals.clean_answer)
        assert self.backoff().delay == 0

    def backoff(self) -> Any:
        return self.throttle.backoffs[SLOT]

    @property
    def rate(self) -> float:
        return self.throttle.rates[SLOT].rate


def api_request(path: str = "/x/web-interface/view?aid=2") -> Request:
    """A request as the downloader sees it: its slot assigned."""
    request = Request(f"https://{SLOT}{path}")
    request.meta.setdefault("download_slot", SLOT)
    return request


def space_request(env: Env) -> Request:
    request = Request(f"https://{SLOT}/x/space/wbi/acc/info?mid=2")
    env.send(scrapy_signals.request_scheduled, request)
    return request


def test_the_cap_is_applied_before_the_first_request() -> None:
    env = Env()
    env.send(scrapy_signals.request_reached_downloader)
    assert env.slots[SLOT].delay == pytest.approx(1 / CAP)


def test_the_cap_allows_for_slot_jitter() -> None:
    env = Env(DOWNLOAD_DELAY_JITTER=0.5)
    env.send(scrapy_signals.request_reached_downloader)
    assert env.slots[SLOT].delay * (1 - 0.5) == pytest.approx(1 / CAP)


def test_a_lowered_delay_is_raised_back_to_the_cap() -> None:
    env = Env()
    env.slots[SLOT].delay = 0.001  # as AutoThrottle does for a fast server
    env.send(scrapy_signals.response_downloaded, response=None)
    assert env.slots[SLOT].delay == pytest.approx(1 / CAP)


def test_higher_delays_are_kept() -> None:
    env = Env()
    env.slots[SLOT].delay = 3.0
    env.send(scrapy_signals.request_reached_downloader)
    assert env.slots[SLOT].delay == 3.0


def test_one_risk_answer_only_probes(caplog: pytest.LogCaptureFixture) -> None:
    """A random 412 among successes costs one short pause, not the back-off or the rate."""
    env = Env()
    env.crawl(seconds=5, rps=20)
    with caplog.at_level("INFO"):
        env.risk()
    assert 1.0 <= env.slots[SLOT].delay <= 1.25
    assert env.crawler.stats.get_value("bilicrawl/throttle/backoff/api_code_-412") == 1
    assert env.slowdowns() == {"probe": 1}
    env.clock.now += env.backoff().delay
    env.answer(signals.clean_answer)
    assert env.slots[SLOT].delay == pytest.approx(1 / CAP)
    assert env.rate == CAP
    assert not caplog.records, "routine: logged at DEBUG"


def test_a_slot_waiting_out_a_pause_that_has_ended_is_woken() -> None:
    """Scrapy's downloader waits for a delay in a call it set up: the end of the pause
    cancels it, or the request after the probe would still wait the whole pause."""
    env = Env()
    env.risk()
    slot = env.slots[SLOT]
    pending = slot.latercall = Mock()
    env.clock.now += env.backoff().delay
    env.answer(signals.clean_answer)
    pending.cancel.assert_called_once_with()
    assert slot.latercall is None
    assert env.woken == [slot]
    assert slot.delay == pytest.approx(1 / CAP)


def test_answers_already_in_flight_count_once() -> None:
    env = Env()
    env.risk()
    first = env.slots[SLOT].delay
    env.clock.now += 0.5
    late = api_request()
    late.meta["download_latency"] = 0.6  # sent before the step
    env.send(signals.risk_control, late, reason="api_code_-412")
    env.send(signals.clean_answer, late)
    assert env.slots[SLOT].delay == first
    assert env.crawler.stats.get_value("bilicrawl/throttle/backoff/api_code_-412") == 1


def test_a_block_that_outlives_the_probe_backs_off_and_grows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = Env()
    env.risk()
    with caplog.at_level("INFO"):
        env.risk(after=env.backoff().delay)
    start = env.slots[SLOT].delay
    assert 10.0 <= start <= 12.5
    assert "Slowing down api.bilibili.com to one request every" in caplog.text
    env.risk(after=start)
    assert env.slots[SLOT].delay == pytest.approx(2 * start)


def test_back_off_is_capped() -> None:
    env = Env(BILI_THROTTLE_BACKOFF_MAX=15.0)
    env.risk()
    for _ in range(5):
        env.risk(after=env.backoff().delay)
    assert env.slots[SLOT].delay == 15.0


def test_a_block_that_outlives_the_back_off_lowers_the_rate_it_began_at(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The cap is 40/s but the slot really sent 20/s: the new rate is 0.8 x 20."""
    env = Env()
    env.crawl(seconds=5, rps=20)
    env.risk()
    env.risk(after=env.backoff().delay)
    assert env.rate == CAP, "a block that ends within the back-off may be anything"
    with caplog.at_level("INFO"):
        env.risk(after=env.backoff().delay)
    assert env.rate == pytest.approx(16.0)
    assert env.throttle.rates[SLOT].ceiling == pytest.approx(20.0)
    assert env.crawler.stats.get_value("bilicrawl/throttle/slowdowns/rate_limited") == 1
    assert "api.bilibili.com is rate-limited at 20.00 requests/s: lowering it to 16.00" in (
        caplog.text
    )
    env.risk(after=env.backoff().delay)
    assert env.rate == pytest.approx(16.0), "once per block"
    env.clock.now += env.backoff().delay
    with caplog.at_level("INFO"):
        env.answer(signals.clean_answer)
    assert env.slots[SLOT].delay == pytest.approx(1 / 16.0)
    assert "recovered from its back-off" in caplog.text


def test_the_rate_is_measured_since_the_last_pause() -> None:
    env = Env()
    env.crawl(seconds=5, rps=20)
    env.ban()  # 20/s blocked: now 16/s
    env.crawl(seconds=1, rps=16)
    env.ban()
    assert env.throttle.rates[SLOT].ceiling == pytest.approx(16.0), "not diluted by the ban"
    assert env.rate == pytest.approx(12.8)


def test_the_rate_recovers_under_the_ceiling_after_calm_periods(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = Env()
    env.crawl(seconds=5, rps=20)
    env.ban()
    env.clock.now += 0.5
    env.crawl(seconds=59, rps=1)
    assert env.rate == pytest.approx(16.0)
    with caplog.at_level("INFO"):
        env.crawl(seconds=2, rps=1)
    assert env.rate == pytest.approx(19.0), "0.95 x 20 caps the 16 + 0.1 x 40 step"
    assert "Raising api.bilibili.com to 19.00 requests/s" in caplog.text
    assert env.slots[SLOT].delay == pytest.approx(1 / 19.0)
    env.crawl(seconds=300, rps=1)
    assert env.rate == pytest.approx(19.0), "held under the ceiling"
    env.crawl(seconds=300, rps=1)
    assert env.throttle.rates[SLOT].ceiling is None, "forgotten after a long calm"
    assert env.rate == pytest.approx(27.0), "then it climbs on toward the cap"


def test_no_recovery_during_a_back_off() -> None:
    env = Env()
    env.crawl(seconds=5, rps=20)
    env.ban()
    env.risk(after=120)
    late = api_request()
    late.meta["download_latency"] = 0.1  # sent before the probe
    env.send(signals.clean_answer, late)
    assert env.rate == pytest.approx(16.0)
    env.clock.now += env.backoff().delay
    env.answer(signals.clean_answer)  # the probe: the back-off ends
    assert env.rate == pytest.approx(16.0)
    env.crawl(seconds=1, rps=1)
    assert env.rate == pytest.approx(19.0), "an isolated risk answer does not end the calm"


def test_random_risk_answers_never_lower_the_rate() -> None:
    """One risk answer in 15, as 20 % faults of which a third look like risk control."""
    env = Env()
    for _ in range(200):
        env.crawl(seconds=0.7, rps=20)
        env.risk(after=0.05)
        env.clock.now += env.backoff().delay
        env.answer(signals.clean_answer)
    assert env.rate == CAP
    assert env.crawler.stats.get_value("bilicrawl/throttle/slowdowns/rate_limited") is None


def test_a_later_isolated_risk_answer_probes_again() -> None:
    """-412, successes, -412 later: two probes, never a back-off step."""
    env = Env()
    for _ in range(3):
        env.crawl(seconds=2, rps=20)
        env.risk()
        assert 1.0 <= env.slots[SLOT].delay <= 1.25, "the probe pause, not BACKOFF_START"
        env.clock.now += env.backoff().delay
        env.answer(signals.transient_failure, reason="http_503")  # the probe tells nothing
        assert 1.0 <= env.slots[SLOT].delay <= 1.25
        env.clock.now += env.backoff().delay
        env.answer(signals.clean_answer)
        assert env.slots[SLOT].delay == pytest.approx(1 / CAP)
    assert env.slowdowns() == {"probe": 3}


def test_transient_failures_among_successes_are_only_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One answer in five fails, one time in four two in a row: the host is never slowed."""
    env = Env()
    with caplog.at_level("INFO"):
        for turn in range(100):
            env.crawl(seconds=0.2, rps=20)
            env.fail()
            if turn % 4 == 0:
                env.fail()
            assert env.slots[SLOT].delay == pytest.approx(1 / CAP)
    assert env.rate == CAP
    assert env.slowdowns() == {}
    assert not caplog.records


def test_failures_that_persist_pause_the_host_without_growing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """More than half of the last 10 answers failed: a pause, until a clean answer."""
    env = Env()
    env.crawl(seconds=1, rps=20)
    for _ in range(3):
        env.crawl(seconds=0.2, rps=20)  # 4 clean answers: the 6th failure in 10 pauses
        for _ in range(5):
            env.fail()
        assert env.slots[SLOT].delay == pytest.approx(1 / CAP)
        with caplog.at_level("INFO"):
            env.fail()
        assert 1.0 <= env.slots[SLOT].delay <= 1.25
        for _ in range(20):
            env.fail(after=env.backoff().delay)
        assert 1.0 <= env.slots[SLOT].delay <= 1.25, "held, not grown"
        env.clock.now += env.backoff().delay
        env.answer(signals.clean_answer)
        assert env.slots[SLOT].delay == pytest.approx(1 / CAP)
    assert env.slowdowns() == {"persistent_failures": 3}
    assert env.rate == CAP
    assert "after http_503 (6 of its last 10 answers failed)" in caplog.text


def test_failures_that_persist_count_only_answers_sent_after_the_pause() -> None:
    env = Env()
    for _ in range(6):
        env.fail()
    assert env.slowdowns() == {"persistent_failures": 1}
    env.clock.now += env.backoff().delay
    env.answer(signals.clean_answer)
    for _ in range(5):
        late = api_request()
        late.meta["download_latency"] = 10.0  # sent before the pause
        env.send(signals.transient_failure, late, reason="http_503")
        env.fail()
    assert env.slots[SLOT].delay == pytest.approx(1 / CAP), "5 of the last 6 answers"
    env.fail()
    assert env.slowdowns() == {"persistent_failures": 2}


def test_a_failure_ratio_of_zero_pauses_on_every_transient_failure() -> None:
    env = Env(BILI_THROTTLE_FAILURE_RATIO=0)
    env.crawl(seconds=5, rps=20)
    env.fail()
    assert 1.0 <= env.slots[SLOT].delay <= 1.25


def test_slowdowns_of_a_ban_are_counted_by_reason() -> None:
    env = Env()
    env.crawl(seconds=5, rps=20)
    env.ban()
    assert env.slowdowns() == {"probe": 1, "backoff": 2, "rate_limited": 1}


def test_state_outlives_scrapys_idle_slot_cleanup() -> None:
    env = Env()
    env.risk()
    backoff = env.slots[SLOT].delay
    env.slots[SLOT] = Slot(concurrency=4, delay=0.0, jitter=0.0)  # recreated after GC
    env.send(scrapy_signals.request_reached_downloader)
    assert env.slots[SLOT].delay == backoff


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BILI_THROTTLE_MAX_RPS", 0),
        ("DOWNLOAD_DELAY_JITTER", 1.0),
        ("BILI_THROTTLE_DECREASE", 1.0),
        ("BILI_THROTTLE_RECOVER_SECONDS", "soon"),
        ("BILI_THROTTLE_FAMILIES", {"/x/space/": "fast"}),
        ("BILI_THROTTLE_FAILURE_WINDOW", 0),
        ("BILI_THROTTLE_FAILURE_RATIO", 1.0),
    ],
)
def test_bad_settings_are_one_clear_error(name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"^{name}"):
        Env(**{name: value})


def test_endpoint_families_get_their_own_stricter_slot() -> None:
    env = Env()
    space = space_request(env)
    assert space.meta["download_slot"] == SPACE_SLOT
    env.send(scrapy_signals.request_reached_downloader, space)
    env.send(scrapy_signals.request_reached_downloader)
    assert env.slots[SPACE_SLOT].delay == pytest.approx(2.0)
    assert env.slots[SLOT].delay == pytest.approx(1 / CAP)


def test_risk_control_slows_every_slot_of_the_host_but_lowers_only_the_blocked_one() -> None:
    env = Env()
    space = space_request(env)
    env.send(scrapy_signals.request_reached_downloader, space)
    env.crawl(seconds=5, rps=20)
    env.risk()
    env.risk(after=env.backoff().delay)
    assert env.slots[SPACE_SLOT].delay == env.slots[SLOT].delay >= 10.0
    env.risk(after=env.backoff().delay)
    assert env.throttle.rates[SPACE_SLOT].rate == 0.5
    assert env.rate == pytest.approx(16.0)


# --- in a crawl against the fake API ---------------------------------------------------------

TRANSIENT_KINDS = ["http5xx", "html", "drop", "truncate", "truncate-json"]
SLOWDOWNS = "bilicrawl/throttle/slowdowns/"


@pytest.mark.slow
@deferred_f_from_coro_f
async def test_a_crawl_retries_random_transient_faults_without_slowing_down(
    fakeapi_factory: Any, crawl_settings: dict[str, Any], tmp_path: Path
) -> None:
    api = fakeapi_factory(fault_rate=0.2, fault_seed=5)
    api.configure(fault_kinds=TRANSIENT_KINDS)
    aids = sample_aids(120, seed=5)
    settings = {
        **crawl_settings,
        "BILI_API_URL": api.url,
        "BILI_THROTTLE_MAX_RPS": 100.0,
        "BILI_THROTTLE_TRANSIENT_START": 0.5,
    }
    ids_file = write_ids_file(tmp_path / "ids.txt", aids)
    result = await run_crawl(VideoSpider, settings, ids_file=str(ids_file))

    stored = [document["aid"] for document in stored_documents(settings["SQLITE_PATH"], "videos")]
    assert sorted(stored) == aids
    faults = Counter(entry["fault"] for entry in api.log() if entry["fault"])
    assert set(faults) == set(TRANSIENT_KINDS)
    assert sum(faults.values()) == 27  # seeded, one draw per request: the same in any order
    slowdowns = {key for key in result.stats if key.startswith(SLOWDOWNS)}
    assert slowdowns <= {SLOWDOWNS + "persistent_failures"}, "no probe, no back-off"
    assert result.stats.get(SLOWDOWNS + "persistent_failures", 0) <= 1
    steps = [value for key, value in result.stats.items() if "/throttle/backoff/" in key]
    assert sum(steps) <= 1, "a fault is not a pause"


@pytest.mark.slow
@deferred_f_from_coro_f
async def test_a_crawl_pauses_a_host_whose_answers_keep_failing(
    fakeapi_factory: Any,
    crawl_settings: dict[str, Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every answer a 5xx: six come back at the crawl's pace, then one every pause."""
    api = fakeapi_factory(fault_rate=1.0)
    api.configure(fault_kinds=["http5xx"])
    aids = sample_aids(5, seed=6)
    settings = {
        **crawl_settings,
        "BILI_API_URL": api.url,
        "BILI_VIDEO_ENDPOINT": "view",
        "BILI_COOKIES_ENABLED": False,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 2,
        "RETRY_TIMES": 2,
        "BILI_THROTTLE_TRANSIENT_START": 0.3,
    }
    ids_file = write_ids_file(tmp_path / "ids.txt", aids)
    with caplog.at_level("INFO"):
        result = await run_crawl(VideoSpider, settings, ids_file=str(ids_file))

    assert result.stats[SLOWDOWNS + "persistent_failures"] == 1, "held, not stepped again"
    assert "after http_5" in caplog.text
    assert "(6 of its last 6 answers failed)" in caplog.text
    times = [entry["t"] for entry in api.log()]
    assert len(times) == 3 * len(aids)
    concurrency = settings["CONCURRENT_REQUESTS_PER_DOMAIN"]
    # After the sixth answer and the requests already on their way, one every pause.
    paced = times[6 + concurrency :]
    assert paced, "the pause outlasted some of the crawl"
    # Seen at the server: a busy machine may bring two arrivals a little closer.
    assert all(later - earlier >= 0.2 for earlier, later in itertools.pairwise(paced))
