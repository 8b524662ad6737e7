"""End-to-end: the download handler (signing at send time, impersonation) against the fake API."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from bilicrawl.spiders.video import VideoSpider
from tests.helpers.crawl import assert_stored_exactly, stored_videos
from tests.helpers.videos import sample_aids, write_ids_file
from tests.utils import run_crawl


def needs_impersonate() -> None:
    pytest.importorskip(
        "scrapy_impersonate", reason="scrapy-impersonate (requirements.txt) is not installed"
    )


@deferred_f_from_coro_f
async def test_signed_requests_pass_the_scheduler_once(
    fakeapi: Any, crawl_settings: dict[str, Any], tmp_path: Path
) -> None:
    aids = sample_aids(40, seed=21)
    settings = {**crawl_settings, "BILI_API_URL": fakeapi.url}
    start = time.time()
    result = await run_crawl(
        VideoSpider, settings, ids_file=str(write_ids_file(tmp_path / "ids.txt", aids))
    )

    assert_stored_exactly(stored_videos(settings), aids, start)
    stats = result.stats
    assert stats["bilicrawl/wbi/signed"] == len(aids)
    assert stats["scheduler/enqueued"] == len(aids), "no second pass for the signed copy"
    assert stats["downloader/request_count"] == len(aids) + 2, "and the nav and spi fetches"
    assert "bilicrawl/retry/count" not in stats


@deferred_f_from_coro_f
async def test_impersonated_crawl_stores_every_video(
    fakeapi: Any, crawl_settings: dict[str, Any], tmp_path: Path
) -> None:
    """curl_cffi's Chrome: its own User-Agent, our cookies and WBI signatures are accepted."""
    needs_impersonate()
    aids = sample_aids(40, seed=22)
    settings = {**crawl_settings, "BILI_API_URL": fakeapi.url, "BILI_IMPERSONATE": "chrome"}
    start = time.time()
    result = await run_crawl(
        VideoSpider, settings, ids_file=str(write_ids_file(tmp_path / "ids.txt", aids))
    )

    assert_stored_exactly(stored_videos(settings), aids, start)
    stats = result.stats
    assert stats["finish_reason"] == "finished"
    assert stats["impersonate/request_bytes"] > 0, "sent through curl_cffi"
    assert stats["bilicrawl/wbi/signed"] == len(aids)
    assert stats["bilicrawl/cookies/buvid_fetched"] == 1
    assert not any(key.startswith("bilicrawl/api_code/") for key in stats), "-352/-403: refused"
    assert "bilicrawl/retry/count" not in stats


@pytest.mark.slow
@deferred_f_from_coro_f
async def test_impersonated_crawl_survives_faults(
    fakeapi_factory: Any, crawl_settings: dict[str, Any], tmp_path: Path
) -> None:
    """Dropped connections and truncated bodies (curl_cffi's errors) are retried too."""
    needs_impersonate()
    api = fakeapi_factory(fault_rate=0.2, fault_seed=7)
    aids = sample_aids(100, seed=23)
    settings = {
        **crawl_settings,
        "BILI_API_URL": api.url,
        "BILI_IMPERSONATE": "chrome",
        "BILI_THROTTLE_MAX_RPS": 150.0,
        "BILI_CIRCUIT_BREAKER_THRESHOLD": 0,
    }
    start = time.time()
    result = await run_crawl(
        VideoSpider, settings, ids_file=str(write_ids_file(tmp_path / "ids.txt", aids))
    )

    assert_stored_exactly(stored_videos(settings), aids, start)
    stats = result.stats
    assert "bilicrawl/retry/max_reached" not in stats
    faults = Counter(entry["fault"] for entry in api.log() if entry["fault"])
    assert faults["drop"] and faults["truncate"]
    # curl_cffi does not retry a dropped connection itself, as Twisted does: each one is counted.
    assert stats["retry/count"] == faults["drop"] + faults["truncate"]
