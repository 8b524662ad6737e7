"""End-to-end: once a crawl closes (a breaker trip, Ctrl-C, SIGTERM), nothing more is sent.

Each test runs ``scrapy crawl video`` in a subprocess against a fake API that
bans every request from the first one, so the crawl is stuck before it ever got
its buvid cookies or WBI keys, with the next request held by a 10-minute slot
delay. The fake API's request log says what was sent and when.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bilicrawl.extensions.summary import BLOCKED, INTERRUPTED
from tests.helpers.process import Crawl, wait_for
from tests.helpers.videos import sample_aids, write_ids_file

pytestmark = pytest.mark.slow

BANNED = {
    "BILI_THROTTLE_BACKOFF_START": "600",  # a second risk answer: a 10-minute pause
    "BILI_THROTTLE_BACKOFF_MAX": "600",
    "AUTOTHROTTLE_START_DELAY": "0",
}
ARGS = ["-a", "aids=2,3,5,7"]
SPI_PATH = "/x/frontend/finger/spi"


def finish(crawl: Crawl) -> int:
    """The exit status of *crawl*, killed if it is still running after a minute."""
    try:
        return crawl.wait(timeout=60)
    except subprocess.TimeoutExpired:
        crawl.process.kill()
        crawl.process.wait()
        pytest.fail(f"still running a minute later:\n{crawl.output()[-3000:]}")


def banned(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in log if entry["event"] == "ban-all"]


def test_a_breaker_trip_sends_nothing_more_and_exits_at_once(api: Any, tmp_path: Path) -> None:
    api.configure(ban_all=True)
    # The second risk answer starts a 10-minute back-off and trips the breaker.
    crawl = Crawl(tmp_path, api.url, ARGS, BILI_CIRCUIT_BREAKER_THRESHOLD="2", **BANNED)
    status = finish(crawl)
    ended = time.time()
    output = crawl.output()

    assert status == BLOCKED, output[-3000:]
    assert "Closing the crawl: 2 consecutive risk-control answers" in output
    log = api.log()
    assert [entry["path"] for entry in log] == [SPI_PATH] * 2, "nothing sent after the trip"
    assert [entry["event"] for entry in log] == ["ban-all"] * 2
    assert ended - log[-1]["t"] < 5.0, "exits within 5 s of the trip"
    assert "Traceback" not in output
    assert "Could not get WBI keys" not in output, "a cancelled fetch is no warning"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_before_the_keys_sends_nothing_more_and_exits_at_once(
    api: Any, tmp_path: Path, signum: signal.Signals
) -> None:
    api.configure(ban_all=True)
    crawl = Crawl(tmp_path, api.url, ARGS, BILI_CIRCUIT_BREAKER_THRESHOLD="0", **BANNED)
    wait_for(lambda: len(banned(api.log())) >= 2, 30, "two banned requests")
    time.sleep(0.5)  # the crawl now waits out a 10-minute back-off, without WBI keys

    signalled = time.time()
    crawl.process.send_signal(signum)
    status = finish(crawl)
    ended = time.time()
    output = crawl.output()

    assert status == INTERRUPTED, output[-3000:]
    assert ended - signalled < 5.0, "exits within 5 s of the signal"
    late = [entry for entry in api.log() if entry["t"] >= signalled]
    assert late == [], "nothing sent after the signal"
    assert "finish reason: shutdown" in output
    assert "Traceback" not in output


def test_a_signal_with_requests_hung_on_the_wire_exits_at_once(api: Any, tmp_path: Path) -> None:
    """Requests on the wire get a short grace, then are abandoned: one Ctrl-C is enough."""
    ids = write_ids_file(tmp_path / "ids.txt", sample_aids(300, seed=31))
    crawl = Crawl(
        tmp_path,
        api.url,
        ["-a", f"ids_file={ids}"],
        BILI_THROTTLE_MAX_RPS="25",
        AUTOTHROTTLE_START_DELAY="0",
    )
    wait_for(lambda: len(api.log()) >= 20, 30, "20 requests")
    api.configure(delay=60.0)  # the requests sent from now on hang for a minute
    time.sleep(1.0)
    assert api.log()[-1]["t"] > time.time() - 1.0, "requests are hanging on the wire"

    signalled = time.time()
    crawl.process.send_signal(signal.SIGINT)
    status = finish(crawl)
    ended = time.time()
    output = crawl.output()

    assert status == INTERRUPTED, output[-3000:]
    assert ended - signalled < 5.0, "exits within 5 s of the signal"
    assert [entry for entry in api.log() if entry["t"] >= signalled] == []
    assert "finish reason: shutdown" in output
    assert "Traceback" not in output
