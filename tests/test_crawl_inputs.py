"""End-to-end: ids files with junk in them, and ids files too big to queue."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from scrapy.utils.defer import deferred_f_from_coro_f

from bilicrawl.ids import av2bv
from bilicrawl.spiders.video import VideoSpider
from tests.helpers.crawl import stored_videos
from tests.helpers.videos import sample_aids
from tests.utils import run_crawl

VIDEO_PATH = "/x/web-interface/wbi/view/detail"
FORMS = [
    str,
    lambda aid: f"av{aid}",
    av2bv,
    lambda aid: f"https://www.bilibili.com/video/{av2bv(aid)}/?p=1&vd_source=x",
    lambda aid: f"https://m.bilibili.com/video/av{aid}",
    lambda aid: "0" * 5000 + str(aid),
]
BAD_LINES = [
    b"\xff\xfe\x00\x01\x89PNG\x1a\x00\x00\x00IHDR",  # binary
    "170001".encode("utf-16"),  # UTF-16 with its BOM
    "170001".encode("utf-16-le"),  # and without
    "café".encode("latin-1"),
    b"9" * 5000,  # a number of 5000 digits
    b"av" + b"1" * 5000,
    b"https://www.bilibili.com/video/av" + b"7" * 5000,
    b"BV1notanid00",
]


@deferred_f_from_coro_f
async def test_junk_lines_are_counted_and_every_valid_line_is_crawled(
    fakeapi: Any, crawl_settings: dict[str, Any], tmp_path: Path
) -> None:
    aids = sample_aids(30, seed=21)
    valid = [FORMS[index % len(FORMS)](aid).encode() for index, aid in enumerate(aids)]
    lines = [b"\xef\xbb\xbf" + valid[0], b"# \xca\xd3\xc6\xb5 (a comment in GBK)", b""]
    for index, line in enumerate(valid[1:]):
        lines += [line, BAD_LINES[index % len(BAD_LINES)]]
    lines.append(av2bv(aids[0]).encode())  # the first video again, as a BV id
    ids_file = tmp_path / "ids.txt"
    ids_file.write_bytes(b"\r\n".join(lines) + b"\r\n")
    settings = {**crawl_settings, "BILI_API_URL": fakeapi.url}

    result = await run_crawl(VideoSpider, settings, ids_file=str(ids_file))

    counts = Counter(document["aid"] for document in stored_videos(settings))
    assert set(counts) == set(aids), "every valid line, the first one too, and nothing else"
    assert set(counts.values()) == {1}
    stats = result.stats
    assert stats["finish_reason"] == "finished"
    assert stats["bilicrawl/input/accepted"] == len(aids)
    assert stats["bilicrawl/input/bad"] == len(valid) - 1
    assert stats["bilicrawl/input/duplicate"] == 1
    assert "spider_exceptions/count" not in stats
    assert stats.get("log_count/ERROR", 0) == 0


@deferred_f_from_coro_f
async def test_a_huge_ids_file_starts_at_once_and_queues_only_the_backlog(
    fakeapi_factory: Any, crawl_settings: dict[str, Any], tmp_path: Path
) -> None:
    api = fakeapi_factory()
    lines, backlog = 300_000, 200
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("".join(f"av{aid}\n" for aid in range(1, lines + 1)), encoding="utf-8")
    settings = {
        **crawl_settings,
        "BILI_API_URL": api.url,
        "BILI_INPUT_BACKLOG": backlog,
        "CLOSESPIDER_ITEMCOUNT": 30,
    }

    start = time.time()
    result = await run_crawl(VideoSpider, settings, ids_file=str(ids_file))

    first_video = min(entry["t"] for entry in api.log() if entry["path"] == VIDEO_PATH)
    assert first_video - start < 15, "the first video is fetched before the file is read"
    stats = result.stats
    assert stats["finish_reason"] == "closespider_itemcount"
    enqueued, dequeued = stats["scheduler/enqueued/memory"], stats["scheduler/dequeued/memory"]
    assert enqueued < 5 * backlog, "the file was read as the crawl needed it"
    # Beyond the backlog only requests that go back through the scheduler: WBI-signed
    # copies and retries, at most one per request the downloader holds.
    in_downloader = settings["CONCURRENT_REQUESTS"]
    assert enqueued - dequeued <= backlog + in_downloader, "about the backlog was left waiting"
