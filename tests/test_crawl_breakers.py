"""End-to-end: the breakers and the throttle against a fake API that dies, bans or misbehaves."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f
from twisted.internet import reactor

from bilicrawl.extensions.circuit_breaker import CLOSE_REASON, DEAD_HOST_REASON
from bilicrawl.extensions.summary import BLOCKED, OK
from bilicrawl.spiders.video import VideoSpider
from tests.helpers.crawl import assert_stored_exactly, stored_videos
from tests.helpers.videos import sample_aids, write_ids_file
from tests.utils import run_crawl

pytestmark = pytest.mark.slow

VIDEO_PATH = "/x/web-interface/wbi/view/detail"


@deferred_f_from_coro_f
async def test_a_dead_host_closes_the_crawl_and_a_resumed_rerun_completes_it(
    fakeapi_factory: Any, crawl_settings: dict[str, Any], tmp_path: Path, figures: Any
) -> None:
    api = fakeapi_factory()
    aids = sample_aids(60, seed=21)
    ids_file = str(write_ids_file(tmp_path / "ids.txt", aids))
    settings = {
        **crawl_settings,
        "BILI_API_URL": api.url,
        "BILI_THROTTLE_MAX_RPS": 20.0,
        # Refused connections come back at once: slow them so the time rule trips first.
        "BILI_THROTTLE_TRANSIENT_START": 0.2,
        "BILI_DEAD_HOST_SECONDS": 1.0,
    }
    start = time.time()
    stopped: list[float] = []

    def kill() -> None:
        api.stop()
        stopped.append(time.monotonic())

    reactor.callLater(1.0, kill)
    dead = await run_crawl(VideoSpider, settings, ids_file=ids_file)
    ended = time.monotonic()

    stats = dead.stats
    assert stats["finish_reason"] == DEAD_HOST_REASON
    assert stats["bilicrawl/dead_host/tripped"] == "DownloadConnectionRefusedError"
    assert stats["bilicrawl/exit_status"] == BLOCKED, "scrapy crawl exits non-zero"
    assert ended - stopped[0] < 5.0, "closed within the breaker's window, not per remaining id"
    stored = len(stored_videos(settings))
    assert 0 < stored < len(aids)
    errors = stats.get("log_count/ERROR", 0)
    figures(
        f"dead host: {stored}/{len(aids)} videos stored, closed {ended - stopped[0]:.1f} s after"
        f" the fake API died (BILI_DEAD_HOST_SECONDS=1), {errors} ERROR lines"
    )
    assert errors <= 3

    revived = fakeapi_factory()
    resumed = await run_crawl(
        VideoSpider, {**settings, "BILI_API_URL": revived.url}, ids_file=ids_file, resume="true"
    )
    assert resumed.stats["finish_reason"] == "finished"
    assert resumed.stats["bilicrawl/exit_status"] == OK
    assert resumed.stats["bilicrawl/input/already_stored"] == stored
    video_requests = [entry for entry in revived.log() if entry["path"] == VIDEO_PATH]
    assert len(video_requests) == len(aids) - stored
    assert_stored_exactly(stored_videos(settings), aids, start)


@deferred_f_from_coro_f
async def test_random_faults_keep_most_of_the_throughput(
    fakeapi_factory: Any, crawl_settings: dict[str, Any], tmp_path: Path, figures: Any
) -> None:
    """20 % faults, a third of them risk answers: no rate ratchet, a short pause each."""
    aids = sample_aids(300, seed=22)
    ids_file = str(write_ids_file(tmp_path / "ids.txt", aids))
    rates = {}
    for fault_rate in (0.0, 0.2):
        api = fakeapi_factory(fault_rate=fault_rate, fault_seed=23)
        settings = {
            **crawl_settings,
            "BILI_API_URL": api.url,
            "BILI_THROTTLE_MAX_RPS": 100.0,
            "SQLITE_PATH": str(tmp_path / f"faults-{fault_rate}.db"),
        }
        start = time.time()
        result = await run_crawl(VideoSpider, settings, ids_file=ids_file)
        rates[fault_rate] = len(aids) / (time.time() - start)
        assert_stored_exactly(stored_videos(settings), aids, start)
        assert result.stats["finish_reason"] == "finished"
    ratio = rates[0.2] / rates[0.0]
    figures(
        f"{len(aids)} videos at a 100 req/s cap: {rates[0.0]:.1f} videos/s without faults,"
        f" {rates[0.2]:.1f} with 20 % faults ({ratio:.0%})"
    )
    assert result.stats.get("bilicrawl/throttle/slowdowns/rate_limited", 0) <= 1
    assert ratio >= 0.4


@deferred_f_from_coro_f
async def test_a_spaced_out_ban_trips_the_breaker_by_time(
    fakeapi_factory: Any, crawl_settings: dict[str, Any], tmp_path: Path, figures: Any
) -> None:
    api = fakeapi_factory()
    api.configure(ban_all=True)
    aids = sample_aids(20, seed=24)
    settings = {
        **crawl_settings,
        "BILI_API_URL": api.url,
        "BILI_CIRCUIT_BREAKER_THRESHOLD": 50,  # out of reach: only the time rule can trip
        "BILI_CIRCUIT_BREAKER_SECONDS": 1.0,
    }
    start = time.monotonic()
    banned = await run_crawl(
        VideoSpider, settings, ids_file=str(write_ids_file(tmp_path / "ids.txt", aids))
    )
    elapsed = time.monotonic() - start
    figures(
        f"ban_all, BILI_CIRCUIT_BREAKER_SECONDS=1: closed after {elapsed:.1f} s and"
        f" {len(api.log())} requests"
    )

    assert banned.stats["finish_reason"] == CLOSE_REASON
    assert banned.stats["bilicrawl/circuit_breaker/tripped"] == "api_code_-412"
    assert 1.0 <= elapsed < 10.0
    assert len(api.log()) < 20, "the back-off spaced the requests out; nothing hammered the ban"
    assert stored_videos(settings) == []
