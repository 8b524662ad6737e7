"""Every exit status of ``scrapy crawl``, end to end, and a summary that adds up.

Each test runs the real command line against the fake API and checks the exit
status, the summary block (accepted = stored + absent + not fetched + not
stored) and, for a bad invocation, the one line on stderr.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import pytest

from bilicrawl.extensions.summary import BLOCKED, FAILED, OK, USAGE
from tests.helpers.locks import held_lock
from tests.helpers.process import Crawl, fetched_aids, wait_for
from tests.helpers.videos import sample_aids, write_ids_file

pytestmark = pytest.mark.slow

FAST = {
    "BILI_THROTTLE_MAX_RPS": "50",
    "BILI_THROTTLE_FAMILIES": "{}",
    "AUTOTHROTTLE_START_DELAY": "0",
}
EQUATION = re.compile(
    r"accepted (\d+) = stored (\d+) \+ absent on the site (\d+) \+ not fetched (\d+)"
    r" \+ not stored (\d+)"
)


def run(
    tmp_path: Path, url: str, args: list[str], spider: str = "video", **settings: str
) -> tuple[int, str]:
    crawl = Crawl(
        tmp_path, url, args, spider=spider, env={"BILI_LIVE_API_URL": url}, **{**FAST, **settings}
    )
    status = crawl.wait(timeout=90)
    return status, crawl.output()


def outcome(output: str) -> tuple[int, ...]:
    """The summary's (accepted, stored, absent, not fetched, not stored), checked to add up."""
    found = EQUATION.search(output)
    assert found is not None, output[-3000:]
    accepted, *parts = map(int, found.groups())
    assert accepted == sum(parts)
    return (accepted, *parts)


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("scrapy crawl: error:")]


def test_stored_and_absent_inputs_exit_0(fakeapi: Any, tmp_path: Path) -> None:
    status, output = run(tmp_path, fakeapi.url, ["-a", "aids=2,404,62002"])
    assert status == OK, output[-3000:]
    assert outcome(output) == (3, 1, 2, 0, 0)
    assert "absent on the site: api_code_-404 1, api_code_62002 1" in output
    assert "written (distinct documents): video_stats 1, videos 1" in output
    assert "next: Done (2 absent on the site)." in output


@pytest.mark.parametrize(
    ("spider", "args", "absent"),
    [
        # The README's own example: the site answers -404 for both.
        ("article", ["-a", "cvids=1,cv2"], "api_code_-404 2"),
        ("article", ["-a", "mids=2"], "has_nothing 1"),  # a user who wrote no article
        ("live", ["-a", "mids=2"], "has_nothing 1"),  # a user without a live room
    ],
)
def test_a_site_with_nothing_is_not_an_error(
    fakeapi: Any, tmp_path: Path, spider: str, args: list[str], absent: str
) -> None:
    status, output = run(tmp_path, fakeapi.url, args, spider=spider)
    assert status == OK, output[-3000:]
    accepted, stored, absent_count, *_ = outcome(output)
    assert stored == 0
    assert absent_count == accepted
    assert f"absent on the site: {absent}" in output
    assert "nothing was stored" not in output
    assert " ERROR: " not in output


def test_inputs_that_gave_up_exit_1_and_say_resume(api: Any, tmp_path: Path) -> None:
    api.configure(fault_rate=1.0, fault_kinds=["http5xx"])
    aids = ",".join(map(str, sample_aids(5, seed=31)))
    # The unsigned endpoint: no WBI keys to fetch first (their fetch would fail too).
    status, output = run(
        tmp_path,
        api.url,
        ["-a", f"aids={aids}"],
        RETRY_TIMES="1",
        BILI_VIDEO_ENDPOINT="view",
        BILI_THROTTLE_TRANSIENT_START="0.01",
        BILI_COOKIES_RETRY_DELAY="0.1",
    )
    assert status == FAILED, output[-3000:]
    assert outcome(output) == (5, 0, 0, 5, 0)
    assert "not fetched: gave_up 5" in output
    assert re.search(r"next: .*-a resume=true", output)


@pytest.mark.parametrize(
    ("spider", "lines"),
    [
        ("user", None),  # -a mids=abc
        ("video", ["abc", "av0", "https://example.com/video/x"]),  # only bad lines
        ("video", ["# a comment", ""]),  # no line at all
    ],
)
def test_inputs_that_name_nothing_are_a_bad_invocation(
    api: Any, tmp_path: Path, spider: str, lines: list[str] | None
) -> None:
    if lines is None:
        args = ["-a", "mids=abc"]
    else:
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join(lines) + "\n", encoding="utf-8")
        args = ["-a", f"ids_file={ids}"]
    status, output = run(tmp_path, api.url, args, spider=spider)
    assert status == USAGE, output[-3000:]
    assert len(errors(output)) == 1, output[-3000:]
    assert outcome(output) == (0, 0, 0, 0, 0)
    assert "Traceback" not in output
    assert api.log() == [], "nothing was sent, not even for cookies or keys"


def test_mixed_good_and_bad_inputs_crawl_the_good_ones(fakeapi: Any, tmp_path: Path) -> None:
    status, output = run(tmp_path, fakeapi.url, ["-a", "aids=2,abc"])
    assert status == OK, output[-3000:]
    assert "inputs: 1 accepted, 1 bad" in output
    assert outcome(output) == (1, 1, 0, 0, 0)


def test_a_bad_scrapy_setting_is_one_line(fakeapi: Any, tmp_path: Path) -> None:
    status, output = run(tmp_path, fakeapi.url, ["-a", "aids=2"], CONCURRENT_REQUESTS="abc")
    assert status == USAGE, output[-3000:]
    assert errors(output) == [
        "scrapy crawl: error: CONCURRENT_REQUESTS must be a number, not 'abc'"
    ]
    assert "Traceback" not in output


def test_inputs_left_unread_by_a_ban_are_reported_apart(api: Any, tmp_path: Path) -> None:
    api.configure(ban_all=True)
    ids = write_ids_file(tmp_path / "ids.txt", sample_aids(40, seed=32))
    status, output = run(
        tmp_path,
        api.url,
        ["-a", f"ids_file={ids}"],
        BILI_INPUT_BACKLOG="1",
        BILI_CIRCUIT_BREAKER_THRESHOLD="3",
        BILI_THROTTLE_BACKOFF_START="0.05",
    )
    assert status == BLOCKED, output[-3000:]
    accepted, stored, absent, not_fetched, not_stored = outcome(output)
    assert stored == absent == not_stored == 0
    assert not_fetched == accepted
    unread = re.search(r"not read \(the crawl closed first\): (\d+) inputs", output)
    assert unread is not None, output[-3000:]
    assert accepted + int(unread.group(1)) == 40


def test_a_store_failure_then_a_ctrl_c_is_a_store_failure(api: Any, tmp_path: Path) -> None:
    """The first reason the crawl began closing for decides, not the last."""
    ids = write_ids_file(tmp_path / "ids.txt", sample_aids(300, seed=33))
    crawl = Crawl(
        tmp_path,
        api.url,
        ["-a", f"ids_file={ids}"],
        **{
            **FAST,
            "BILI_THROTTLE_MAX_RPS": "20",
            "BILI_STORE_BATCH_SIZE": "10",
            "SQLITE_BUSY_TIMEOUT": "0.1",
            "BILI_STORE_RETRY_DELAYS": "0.1",
            "BILI_STORE_FLUSH_SECONDS": "0.5",
        },
    )
    wait_for(lambda: len(fetched_aids(api.log())) >= 20, 60, "20 videos")
    api.configure(delay=5.0)  # the requests on the wire hang: closing waits for them
    with held_lock(crawl.database):  # another process holds the store
        wait_for(lambda: "Closing the crawl" in crawl.output(), 30, "the store failure")
        crawl.process.send_signal(signal.SIGINT)
        status = crawl.wait(timeout=60)
    output = crawl.output()
    assert "Received SIGINT" in output, "the Ctrl-C came while the crawl was closing"
    assert status == FAILED, output[-3000:]
    assert "closing began: bilicrawl_store_failed" in output or (
        "finish reason: bilicrawl_store_failed" in output
    )
    assert re.search(r"next: The store could not write", output)
    outcome(output)
