"""How ``BiliSpider`` reads its inputs: the ids file, bad lines, duplicates, arguments, backlog."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from bilicrawl.config import ConfigError
from bilicrawl.ids import av2bv
from bilicrawl.spiders.base import (
    INPUTS_PER_TURN,
    LOGGED_BAD_INPUTS,
    MAX_LINE_CHARS,
    BiliSpider,
    Input,
    read_ids_file,
)
from bilicrawl.spiders.video import VideoSpider
from tests.utils import project_settings

NOT_TEXT = "not UTF-8 text (binary, or UTF-16?)"


def make_spider(settings: dict[str, Any] | None = None, **arguments: Any) -> VideoSpider:
    """A video spider whose scheduler is a list the test fills and drains."""
    crawler = get_crawler(VideoSpider, {**project_settings(), **(settings or {})})
    crawler.engine = SimpleNamespace(scheduler=[], paused=False)
    spider = VideoSpider.from_crawler(crawler, **arguments)
    crawler.spider = spider
    return spider


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def input_stats(spider: BiliSpider) -> dict[str, int]:
    stats = spider.crawler.stats.get_stats()
    prefix = "bilicrawl/input/"
    return {key.removeprefix(prefix): value for key, value in stats.items() if prefix in key}


# --- read_ids_file: decoding and line splitting.


def test_reads_one_input_per_line_skipping_blanks_and_comments(tmp_path: Path) -> None:
    path = write(tmp_path / "ids.txt", b"# header\n\n 170001 \nav2  # a comment\n\t\n")
    assert list(read_ids_file(path)) == [
        Input("170001", f"{path}:3"),
        Input("av2", f"{path}:4"),
    ]


def test_a_utf8_bom_and_any_line_ending_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "ids.txt", b"\xef\xbb\xbf170001\r\nav2\rBV17x411w7KC")
    assert [(line.text, line.origin, line.error) for line in read_ids_file(path)] == [
        ("170001", f"{path}:1", None),
        ("av2", f"{path}:2", None),
        ("BV17x411w7KC", f"{path}:3", None),
    ]


@pytest.mark.parametrize(
    "line",
    [
        b"\xff\xfe\x00\x01\x89PNG\x1a",  # binary junk
        "170001".encode("utf-16"),  # with its BOM: undecodable
        "170001".encode("utf-16-le"),  # decodes, but to digits between NULs
        "170001".encode("utf-16-be"),
        "café".encode("latin-1"),
    ],
)
def test_a_line_that_is_not_utf8_text_is_bad_and_reading_goes_on(
    tmp_path: Path, line: bytes
) -> None:
    path = write(tmp_path / "ids.txt", b"2\n" + line + b"\n170001\n")
    inputs = list(read_ids_file(path))
    assert [(item.origin, item.error) for item in inputs] == [
        (f"{path}:1", None),
        (f"{path}:2", NOT_TEXT),
        (f"{path}:3", None),
    ]
    assert inputs[2].text == "170001"


def test_a_comment_in_another_encoding_is_still_a_comment(tmp_path: Path) -> None:
    path = write(tmp_path / "ids.txt", "# 收藏的视频\n2 # 第二个\n".encode("gbk"))
    assert list(read_ids_file(path)) == [Input("2", f"{path}:2")]


def test_a_line_too_long_is_one_bad_input_and_is_not_read_whole(tmp_path: Path) -> None:
    long_line = "1" * (3 * MAX_LINE_CHARS + 5)
    path = write(tmp_path / "ids.txt", f"{long_line}\n170001\n{'2' * MAX_LINE_CHARS}\n".encode())
    first, second, third = read_ids_file(path)
    assert first.origin == f"{path}:1"
    assert first.error == f"the line is longer than {MAX_LINE_CHARS} characters"
    assert len(first.text) == MAX_LINE_CHARS + 1
    assert second == Input("170001", f"{path}:2")
    assert (third.origin, third.error) == (f"{path}:3", None), "exactly the limit is fine"


# --- requests_for_input: bad inputs, duplicates, counting.


def feed(spider: BiliSpider, inputs: list[Input]) -> list[Any]:
    return [request for item in inputs for request in spider.requests_for_input(item)]


def test_the_same_video_written_three_ways_is_fetched_once() -> None:
    spider = make_spider(aids="1")
    aid = 170001
    inputs = [
        Input(text, "test")
        for text in (
            str(aid),
            av2bv(aid),
            f"https://www.bilibili.com/video/av{aid}/",
            "av2",
            "2",
        )
    ]
    requests = feed(spider, inputs)
    assert [request.url.rsplit("aid=", 1)[1] for request in requests] == [str(aid), "2"]
    assert input_stats(spider) == {"accepted": 2, "duplicate": 3}


def test_stored_inputs_are_skipped_before_duplicates_are_counted() -> None:
    spider = make_spider(aids="1")
    spider.stored = frozenset({(2,)})
    assert feed(spider, [Input("2", "test"), Input("av2", "test"), Input("x", "test")]) == []
    assert input_stats(spider) == {"already_stored": 2, "bad": 1}


@pytest.mark.parametrize(
    ("text", "error", "reason"),
    [
        ("9" * 5000, None, "an aid of 5000 digits is out of range"),
        ("av" + "1" * 5000, None, "an aid of 5000 digits is out of range"),
        ("BV1notanid00", None, "'BV1notanid00' is not a BV id"),
        ("\udcff\udcfe", NOT_TEXT, NOT_TEXT),
    ],
)
def test_a_bad_input_is_logged_with_where_it_came_from_and_counted(
    caplog: pytest.LogCaptureFixture, text: str, error: str | None, reason: str
) -> None:
    spider = make_spider(aids="1")
    with caplog.at_level(logging.WARNING):
        assert feed(spider, [Input(text, "ids.txt:7", error)]) == []
    assert input_stats(spider) == {"bad": 1}
    [record] = caplog.records
    assert record.getMessage().startswith(f"Skipping bad input at ids.txt:7: {reason}")
    assert len(record.getMessage()) < 200, "a huge input is not copied into the log"


def test_only_the_first_bad_inputs_are_logged_but_all_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spider = make_spider(aids="1")
    with caplog.at_level(logging.WARNING):
        feed(spider, [Input(f"junk{number}", f"ids.txt:{number}") for number in range(1000)])
    assert input_stats(spider) == {"bad": 1000}
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == LOGGED_BAD_INPUTS + 1
    assert messages[LOGGED_BAD_INPUTS - 1].startswith(
        f"Skipping bad input at ids.txt:{LOGGED_BAD_INPUTS - 1}: "
    )
    assert messages[-1] == (
        f"{LOGGED_BAD_INPUTS} bad inputs: further ones are only counted, in bilicrawl/input/bad"
    )


# --- Arguments.


def test_an_unknown_argument_is_an_error_naming_it_and_the_known_ones() -> None:
    with pytest.raises(ConfigError) as error:
        make_spider(aids="1", resum="true")
    assert str(error.value) == (
        "unknown argument -a resum; the video spider takes aids, bvids, ids_file, resume"
    )


@pytest.mark.parametrize("value", ["maybe", "ture", "2"])
def test_resume_must_be_a_boolean(value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^-a resume must be true or false, not '{value}'$"):
        make_spider(aids="1", resume=value)


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("off", False), (True, True)])
def test_resume_reads_the_usual_boolean_words(value: Any, expected: bool) -> None:
    assert make_spider(aids="1", resume=value).resume is expected


def test_arguments_of_the_tools_that_run_spiders_are_let_through() -> None:
    spider = make_spider(aids="1", _job="6487ec79947edab326d6db28a2d86511e8247444")
    assert spider._job == "6487ec79947edab326d6db28a2d86511e8247444"


def test_a_subclass_declares_its_own_arguments() -> None:
    class DeepSpider(VideoSpider):
        option_args: ClassVar[dict[str, Any]] = {
            **VideoSpider.option_args,
            "depth": lambda name, value: int(value),
        }

    crawler = get_crawler(DeepSpider, project_settings())
    assert DeepSpider.from_crawler(crawler, aids="1", depth="3").depth == 3
    with pytest.raises(ConfigError, match=r"takes aids, bvids, ids_file, resume, depth$"):
        DeepSpider.from_crawler(crawler, aids="1", dpeth="3")


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing.txt", "No such file or directory"), ("", "Is a directory")],
)
def test_an_unreadable_ids_file_is_one_clear_line(tmp_path: Path, name: str, message: str) -> None:
    path = str(tmp_path / name)
    with pytest.raises(ConfigError) as error:
        make_spider(ids_file=path)
    assert str(error.value) == f"-a ids_file: cannot read {path!r}: {message}"


@pytest.mark.parametrize("arguments", [{}, {"aids": ""}, {"resume": "true"}])
def test_nothing_to_crawl_is_one_clear_line(arguments: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as error:
        make_spider(**arguments)
    assert str(error.value) == (
        "video: nothing to crawl; pass one of -a aids=..., -a bvids=..., -a ids_file=..."
    )


@pytest.mark.parametrize("value", [0, "lots"])
def test_the_backlog_setting_is_checked_before_the_crawl(value: Any) -> None:
    with pytest.raises(ConfigError, match="BILI_INPUT_BACKLOG must be"):
        make_spider({"BILI_INPUT_BACKLOG": value}, aids="1")


# --- start(): bounded, and never deaf to the event loop.


async def next_soon(start: Any, timeout: float = 2.0) -> Any:
    return await asyncio.wait_for(anext(start), timeout)


@deferred_f_from_coro_f
async def test_start_waits_while_the_backlog_is_full_and_resumes_when_it_drains(
    tmp_path: Path,
) -> None:
    ids_file = write(tmp_path / "ids.txt", "\n".join(map(str, range(1, 101))).encode())
    spider = make_spider({"BILI_INPUT_BACKLOG": 3}, ids_file=str(ids_file))
    scheduler = spider.crawler.engine.scheduler
    start = spider.start()
    for _ in range(3):
        scheduler.append(await next_soon(start))
    pending = asyncio.ensure_future(anext(start))
    await asyncio.sleep(0.3)
    assert not pending.done(), "three requests wait: no fourth one is read"

    scheduler.pop(0)  # the engine took a request: the wait ends at once
    spider.crawler.signals.send_catch_log(signal=signals.request_reached_downloader)
    request = await asyncio.wait_for(pending, 0.1)
    assert request.url.endswith("aid=4")
    assert input_stats(spider) == {"accepted": 4}


@deferred_f_from_coro_f
async def test_a_long_run_of_bad_lines_does_not_hold_up_the_event_loop(tmp_path: Path) -> None:
    lines = 50 * INPUTS_PER_TURN
    ids_file = write(tmp_path / "ids.txt", b"junk\n" * lines + b"170001\n")
    spider = make_spider(ids_file=str(ids_file))
    ticks = 0

    async def count_ticks() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.ensure_future(count_ticks())
    try:
        request = await next_soon(spider.start(), timeout=10)
    finally:
        ticker.cancel()
    assert request.url.endswith("aid=170001")
    assert input_stats(spider) == {"bad": lines, "accepted": 1}
    assert ticks >= lines // INPUTS_PER_TURN, "the loop ran between runs of skipped lines"


@deferred_f_from_coro_f
async def test_cancelling_start_stops_reading_at_once(tmp_path: Path) -> None:
    """What Ctrl-C does: Scrapy cancels the task reading ``start()``."""
    lines = 2000 * INPUTS_PER_TURN
    ids_file = write(tmp_path / "ids.txt", b"junk\n" * lines)
    spider = make_spider(ids_file=str(ids_file))
    reading = asyncio.ensure_future(anext(spider.start()))
    await asyncio.sleep(0.05)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    assert 0 < input_stats(spider)["bad"] < lines
