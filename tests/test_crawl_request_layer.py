"""End-to-end: the request layer against a fake API that bans, rotates keys and checks cookies."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from bilicrawl.extensions.circuit_breaker import CLOSE_REASON
from bilicrawl.spiders.video import VideoSpider
from tests.helpers.crawl import assert_stored_exactly, stored_videos
from tests.helpers.videos import sample_aids, write_ids_file
from tests.utils import run_crawl


def rate_after(log: list[dict[str, Any]], start: float) -> tuple[float, int]:
    """Return the mean rate of requests after *start* and the most in any 1-second window."""
    times = [entry["t"] for entry in log if entry["t"] >= start]
    window_max, first = 0, 0
    for last, now in enumerate(times):
        while now - times[first] >= 1.0:
            first += 1
        window_max = max(window_max, last - first + 1)
    return len(times) / (times[-1] - start), window_max


@pytest.mark.slow
@deferred_f_from_coro_f
async def test_rate_settles_under_the_server_limit(
    fakeapi_factory: Any, crawl_settings: dict[str, Any], tmp_path: Path, figures: Any
) -> None:
    """A crawl capped at 2x the server's limit gets banned, then settles under the limit.

    Each ban that outlives the back-off lowers the rate under the one that was
    blocked; recovery (every 3 s here) climbs back only to 90 % of that rate.
    """
    limit, ban = 20, 1.0
    api = fakeapi_factory(rate_limit=limit, ban_seconds=ban)
    aids = sample_aids(300, seed=4)
    settings = {
        **crawl_settings,
        "BILI_API_URL": api.url,
        "BILI_THROTTLE_MAX_RPS": 2.0 * limit,
        "BILI_THROTTLE_BACKOFF_START": 0.5,
        "BILI_THROTTLE_BACKOFF_MAX": 4.0,
        "BILI_THROTTLE_RECOVER_SECONDS": 3.0,
    }
    start = time.time()
    result = await run_crawl(
        VideoSpider, settings, ids_file=str(write_ids_file(tmp_path / "ids.txt", aids))
    )

    assert_stored_exactly(stored_videos(settings), aids, start)
    assert result.stats["finish_reason"] == "finished"
    log = api.log()
    bans = [entry["t"] for entry in log if entry["event"] == "ban-start"]
    assert bans, "the crawl starts faster than the server allows"
    mean_rate, busiest_second = rate_after(log, bans[-1] + ban)
    figures(
        f"rate limit {limit} req/s, ban {ban} s, {len(aids)} videos: {len(log)} requests in "
        f"{log[-1]['t'] - log[0]['t']:.1f} s, {len(bans)} bans (first after "
        f"{bans[0] - log[0]['t']:.1f} s, last after {bans[-1] - log[0]['t']:.1f} s); after "
        f"the last ban {mean_rate:.1f} req/s on average, at most {busiest_second} in any second"
    )
    assert len(bans) <= 6, "each ban lowers the ceiling; the rate does not bounce"
    assert mean_rate < limit
    assert busiest_second <= limit


@pytest.mark.slow
@deferred_f_from_coro_f
async def test_signed_crawl_survives_key_rotation(
    fakeapi_factory: Any, crawl_settings: dict[str, Any], tmp_path: Path
) -> None:
    """Keys rotate every second mid-crawl: stale signatures are refreshed and retried."""
    api = fakeapi_factory(wbi_rotate_seconds=1)
    aids = sample_aids(80, seed=5)
    settings = {**crawl_settings, "BILI_API_URL": api.url, "BILI_THROTTLE_MAX_RPS": 30.0}
    start = time.time()
    result = await run_crawl(
        VideoSpider, settings, ids_file=str(write_ids_file(tmp_path / "ids.txt", aids))
    )

    assert_stored_exactly(stored_videos(settings), aids, start)
    stats = result.stats
    assert stats["bilicrawl/wbi/keys_refreshed"] >= 2
    assert stats["bilicrawl/retry/reason_count/wbi_stale_keys"] >= 1
    assert stats["bilicrawl/cookies/buvid_fetched"] == 1
    assert "bilicrawl/api_code/-352" not in stats, "buvid3 and the signature were accepted"
    assert "bilicrawl/retry/max_reached" not in stats


@pytest.mark.slow
@deferred_f_from_coro_f
async def test_circuit_breaker_closes_then_a_resumed_rerun_stores_the_rest(
    fakeapi_factory: Any, crawl_settings: dict[str, Any], tmp_path: Path
) -> None:
    api = fakeapi_factory()
    aids = sample_aids(30, seed=6)
    ids_file = str(write_ids_file(tmp_path / "ids.txt", aids))
    settings = {**crawl_settings, "BILI_API_URL": api.url, "BILI_CIRCUIT_BREAKER_THRESHOLD": 5}
    start = time.time()
    await run_crawl(VideoSpider, settings, aids=",".join(map(str, aids[:12])))

    api.configure(ban_all=True)
    api.reset()
    banned = await run_crawl(VideoSpider, settings, ids_file=ids_file)
    assert banned.stats["finish_reason"] == CLOSE_REASON
    assert banned.stats["bilicrawl/circuit_breaker/tripped"] == "api_code_-412"
    assert len(api.log()) < 20, "closed instead of hammering the ban"
    assert len(stored_videos(settings)) == 12, "what was stored stays"

    api.configure(ban_all=False)
    api.reset()
    resumed = await run_crawl(VideoSpider, settings, ids_file=ids_file, resume="true")
    assert resumed.stats["finish_reason"] == "finished"
    assert resumed.stats["bilicrawl/input/already_stored"] == 12
    video_requests = [e for e in api.log() if e["path"] == "/x/web-interface/wbi/view/detail"]
    assert len(video_requests) == len(aids) - 12, "only what was missing is fetched"
    assert_stored_exactly(stored_videos(settings), aids, start)


@deferred_f_from_coro_f
async def test_login_cookie_is_sent_but_never_logged_or_stored(
    fakeapi: Any, crawl_settings: dict[str, Any], caplog: Any
) -> None:
    secret = "0f1e2d3c%2C1790000000%2Cabcde*41"  # noqa: S105 (a made-up SESSDATA)
    settings = {
        **crawl_settings,
        "BILI_API_URL": fakeapi.url,
        "BILI_SESSDATA": secret,
        "LOG_LEVEL": "DEBUG",
    }
    with caplog.at_level("DEBUG"):
        result = await run_crawl(VideoSpider, settings, aids="170001")

    assert result.stats["item_scraped_count"] == 2  # the video and its snapshot
    assert secret not in caplog.text
    assert all(secret not in str(value) for value in result.stats.values())
    database = Path(settings["SQLITE_PATH"]).read_bytes()
    assert secret.encode() not in database
