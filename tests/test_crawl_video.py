"""End-to-end: the real ``video`` spider against the fake Bilibili API."""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from bilicrawl.ids import av2bv
from bilicrawl.spiders import video as video_spider_module
from bilicrawl.spiders.video import VideoSpider
from tests.fakeapi import videos
from tests.helpers.crawl import assert_stored_exactly, stored_videos
from tests.helpers.store import stored_documents
from tests.helpers.videos import sample_aids, write_ids_file
from tests.utils import run_crawl

ENDPOINTS = pytest.mark.parametrize("endpoint", ["detail", "view"])


def assert_one_snapshot_each(settings: dict[str, Any]) -> None:
    """Each stored video has one snapshot: its counters at its crawl time."""
    expected = [
        {"aid": video["aid"], "crawled_at": video["crawled_at"], "stat": video["stat"]}
        for video in stored_videos(settings)
    ]
    assert stored_documents(settings["SQLITE_PATH"], "video_stats") == expected


class LaterClock:
    """``time`` for the spider module, *offset* seconds ahead: a crawl at another time."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset


@deferred_f_from_coro_f
async def test_each_crawl_of_a_video_adds_a_snapshot_of_its_counters(
    fakeapi: Any, crawl_settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    aids = sample_aids(3, seed=5)
    settings = {**crawl_settings, "BILI_API_URL": fakeapi.url}
    await run_crawl(VideoSpider, settings, aids=",".join(map(str, aids)))
    first = {video["aid"]: video["crawled_at"] for video in stored_videos(settings)}
    monkeypatch.setattr(video_spider_module, "time", LaterClock(3600))
    await run_crawl(VideoSpider, settings, aids=",".join(map(str, aids)))

    videos_now = {video["aid"]: video for video in stored_videos(settings)}
    assert sorted(videos_now) == sorted(aids), "still one document per video"
    assert stored_documents(settings["SQLITE_PATH"], "video_stats") == [
        {"aid": aid, "crawled_at": crawled_at, "stat": videos_now[aid]["stat"]}
        for aid in sorted(aids)
        for crawled_at in (first[aid], videos_now[aid]["crawled_at"])
    ]
    assert all(videos_now[aid]["crawled_at"] >= first[aid] + 3600 for aid in aids)


@ENDPOINTS
@deferred_f_from_coro_f
async def test_crawl_stores_every_valid_video_once(
    fakeapi: Any,
    crawl_settings: dict[str, Any],
    tmp_path: Path,
    endpoint: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    aids = sample_aids(40, seed=1)
    in_args, in_file = aids[:10], aids[10:]
    bad_inputs = [
        "BV1notanid00",
        "av-3",
        "https://b23.tv/abc",
        "https://www.bilibili.com/read/cv1",
    ]
    unavailable = [404, 62002, 62004, 62012]
    ids_file = write_ids_file(tmp_path / "ids.txt", in_file)
    with ids_file.open("a", encoding="utf-8") as extra:
        extra.write("\n".join([*bad_inputs[2:], *map(str, unavailable)]) + "\n")
        extra.write(f"{av2bv(in_args[0])}\n")  # the same video again, as a BV id
    settings = {**crawl_settings, "BILI_API_URL": fakeapi.url, "BILI_VIDEO_ENDPOINT": endpoint}

    start = time.time()
    result = await run_crawl(
        VideoSpider,
        settings,
        aids=",".join(map(str, [*in_args[:5], *bad_inputs[:1]])),
        bvids=",".join([*map(av2bv, in_args[5:]), *bad_inputs[1:2]]),
        ids_file=str(ids_file),
    )

    assert_stored_exactly(stored_videos(settings), aids, start)
    assert_one_snapshot_each(settings)
    stats = result.stats
    assert stats["finish_reason"] == "finished"
    assert stats["item_scraped_count"] == 2 * len(aids), "each video and its snapshot"
    assert stats["bilicrawl/input/bad"] == len(bad_inputs)
    assert stats["bilicrawl/storage/upserted/videos"] == len(aids)
    for aid in unavailable:
        assert stats[f"bilicrawl/api_code/{videos.ERROR_AIDS[aid][0]}"] == 1
    assert stats["bilicrawl/input/duplicate"] == 1, "the same video as a BV id"
    assert "dupefilter/filtered" not in stats
    assert "bilicrawl/retry/count" not in stats
    assert stats.get("log_count/ERROR", 0) == 0
    scrapy_warnings = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("scrapy.") and record.levelno >= logging.WARNING
    ]
    assert scrapy_warnings == [], "Scrapy's own components warn of nothing (Referer handling)"


@deferred_f_from_coro_f
async def test_recrawl_updates_without_duplicating(
    fakeapi: Any, crawl_settings: dict[str, Any]
) -> None:
    aids = sample_aids(5, seed=2)
    settings = {**crawl_settings, "BILI_API_URL": fakeapi.url}
    for _ in range(2):
        start = time.time()
        await run_crawl(VideoSpider, settings, aids=",".join(map(str, aids)))
    assert_stored_exactly(stored_videos(settings), aids, start)


@pytest.mark.slow
@ENDPOINTS
@deferred_f_from_coro_f
async def test_faults_and_rate_limit_lose_nothing(
    fakeapi_factory: Any, crawl_settings: dict[str, Any], tmp_path: Path, endpoint: str
) -> None:
    """20 % of answers are faults and the server bans bursts: every video still lands once."""
    api = fakeapi_factory(fault_rate=0.2, fault_seed=7, rate_limit=40, ban_seconds=0.5)
    aids = sample_aids(100, seed=3)
    settings = {
        **crawl_settings,
        "BILI_API_URL": api.url,
        "BILI_VIDEO_ENDPOINT": endpoint,
        "BILI_THROTTLE_MAX_RPS": 150.0,
        "BILI_CIRCUIT_BREAKER_THRESHOLD": 0,
    }
    start = time.time()
    result = await run_crawl(
        VideoSpider, settings, ids_file=str(write_ids_file(tmp_path / "ids.txt", aids))
    )

    assert_stored_exactly(stored_videos(settings), aids, start)
    assert_one_snapshot_each(settings)
    stats = result.stats
    assert stats["finish_reason"] == "finished"
    assert stats["item_scraped_count"] == 2 * len(aids), "each video and its snapshot"
    assert "bilicrawl/retry/max_reached" not in stats
    assert "bilicrawl/video/tags_missing" not in stats
    log = api.log()
    faults = Counter(entry["fault"] for entry in log if entry["fault"])
    assert set(faults) >= {"http412", "code-799", "http5xx", "drop", "truncate", "truncate-json"}
    assert any(entry["event"] == "ban-start" for entry in log), "the rate limit was hit"
    # Network errors are retried by Scrapy's RetryMiddleware (retry/*), the rest by ours;
    # most drops are retried silently by Twisted's connection pool.
    retries = stats["bilicrawl/retry/count"] + stats.get("retry/count", 0)
    assert retries >= sum(faults.values()) - faults["drop"]
    assert stats["bilicrawl/throttle/backoff/http_412"] >= 1
    if endpoint == "detail":
        assert stats["bilicrawl/wbi/signed"] >= len(aids), "and again for each retry"


@pytest.mark.parametrize("bad_file", ["missing.txt", ""])
def test_a_missing_input_is_a_clear_error(bad_file: str, tmp_path: Path) -> None:
    arguments = {"ids_file": str(tmp_path / bad_file)} if bad_file else {}
    with pytest.raises(ValueError, match=r"ids_file|nothing to crawl"):
        VideoSpider(**arguments)
