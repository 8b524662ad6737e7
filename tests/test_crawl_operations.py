"""End-to-end, as a user runs it: ``scrapy crawl`` in a subprocess, signals, exit statuses.

These run the real command line (bilicrawl's ``crawl`` command, the whole
settings module) against the fake API, and check what the store holds after
Ctrl-C, two Ctrl-Cs and SIGKILL, and what a bad invocation prints.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from scrapy.spiderloader import SpiderLoader
from scrapy.utils.project import get_project_settings

from bilicrawl.extensions.summary import BLOCKED, INTERRUPTED, OK, USAGE
from tests.fakeapi.process import PROJECT_ROOT
from tests.helpers.process import Crawl, fetched_aids, wait_for
from tests.helpers.videos import sample_aids, write_ids_file

pytestmark = pytest.mark.slow

FAST = {
    "BILI_THROTTLE_MAX_RPS": "25",
    "BILI_THROTTLE_BACKOFF_START": "600",  # one risk answer: a 10-minute pause
    "BILI_THROTTLE_BACKOFF_MAX": "600",
    "BILI_CIRCUIT_BREAKER_THRESHOLD": "0",
    "AUTOTHROTTLE_START_DELAY": "0",
}


def crawl_with_buffered_documents(api: Any, tmp_path: Path) -> Crawl:
    """A crawl of 300 videos that has fetched 30, all still buffered (no timed flush)."""
    ids = write_ids_file(tmp_path / "ids.txt", sample_aids(300, seed=11))
    crawl = Crawl(
        tmp_path, api.url, ["-a", f"ids_file={ids}"], BILI_STORE_FLUSH_SECONDS="600", **FAST
    )
    wait_for(lambda: len(fetched_aids(api.log())) >= 30, 30, "30 videos")
    return crawl


def assert_interrupted_cleanly(crawl: Crawl, fetched: set[int], interrupted_at: float) -> str:
    status = crawl.wait(timeout=30)
    elapsed = time.monotonic() - interrupted_at
    output = crawl.output()
    assert status == INTERRUPTED, output[-3000:]
    assert elapsed < 15, "exits in seconds"
    stored = crawl.stored_aids()
    assert set(stored) == fetched, "every fetched video is stored, nothing else"
    assert len(stored) == len(set(stored))
    assert "Crawl summary" in output
    assert "-a resume=true" in output
    assert "Traceback" not in output
    return output


def test_ctrl_c_during_a_long_backoff_exits_fast_and_stores_everything_fetched(
    fakeapi_factory: Any, tmp_path: Path
) -> None:
    api = fakeapi_factory()
    crawl = crawl_with_buffered_documents(api, tmp_path)
    api.configure(ban_all=True)
    wait_for(lambda: any(e["event"] == "ban-all" for e in api.log()), 10, "a banned request")
    time.sleep(0.5)  # the crawl is now in its 10-minute back-off
    fetched = fetched_aids(api.log())

    interrupted_at = time.monotonic()
    crawl.process.send_signal(signal.SIGINT)
    output = assert_interrupted_cleanly(crawl, fetched, interrupted_at)
    assert "finish reason: shutdown" in output


def test_a_second_ctrl_c_forces_the_exit_and_still_stores_everything_fetched(
    fakeapi_factory: Any, tmp_path: Path
) -> None:
    api = fakeapi_factory()
    crawl = crawl_with_buffered_documents(api, tmp_path)
    api.configure(delay=60.0)  # the requests now on the wire hang: closing would wait
    time.sleep(1.0)
    fetched = fetched_aids(api.log())

    interrupted_at = time.monotonic()
    crawl.process.send_signal(signal.SIGINT)
    time.sleep(1.0)
    crawl.process.send_signal(signal.SIGINT)
    output = assert_interrupted_cleanly(crawl, fetched, interrupted_at)
    assert "finish reason: forced_shutdown" in output


def test_sigkill_loses_at_most_the_last_flush_interval(
    fakeapi_factory: Any, tmp_path: Path
) -> None:
    api = fakeapi_factory()
    ids = write_ids_file(tmp_path / "ids.txt", sample_aids(400, seed=12))
    interval = 1.0
    crawl = Crawl(
        tmp_path,
        api.url,
        ["-a", f"ids_file={ids}"],
        BILI_STORE_FLUSH_SECONDS=str(interval),
        **FAST,
    )
    wait_for(lambda: len(fetched_aids(api.log())) >= 60, 30, "60 videos")
    time.sleep(2)
    killed_at = time.time()
    crawl.process.kill()
    crawl.wait(timeout=10)

    stored = set(crawl.stored_aids())
    log = api.log()
    # A document is written within one interval of its fetch (plus a batch's write time).
    assert fetched_aids(log, before=killed_at - interval - 0.5) <= stored
    assert stored <= fetched_aids(log)
    assert len(stored) >= 50


def test_a_ban_ends_with_the_blocked_status(fakeapi_factory: Any, tmp_path: Path) -> None:
    api = fakeapi_factory()
    api.configure(ban_all=True)
    crawl = Crawl(
        tmp_path,
        api.url,
        ["-a", "aids=2,3,5"],
        **{
            **FAST,
            "BILI_CIRCUIT_BREAKER_THRESHOLD": "3",
            "BILI_THROTTLE_BACKOFF_START": "0.05",
        },
    )
    assert crawl.wait(timeout=60) == BLOCKED
    output = crawl.output()
    assert "finish reason: bilicrawl_risk_control" in output
    assert "-a resume=true" in output


def test_exit_status_says_whether_anything_was_stored(fakeapi: Any, tmp_path: Path) -> None:
    absent = Crawl(tmp_path / "a", fakeapi.url, ["-a", "aids=404,62002"], **FAST)
    assert absent.wait(timeout=60) == OK, "videos the site does not have are not an error"
    assert "absent on the site: api_code_-404 1, api_code_62002 1" in absent.output()
    something = Crawl(tmp_path / "b", fakeapi.url, ["-a", "aids=2,404"], **FAST)
    assert something.wait(timeout=60) == OK
    assert "written (distinct documents): video_stats 1, videos 1" in something.output()


def test_a_sqlite_crawl_imports_nothing_it_does_not_use(fakeapi: Any, tmp_path: Path) -> None:
    """Start-up cost: pymongo, jsonschema (drops only) and aiohttp are not imported."""
    env = {**os.environ, "BILI_API_URL": fakeapi.url, "SQLITE_PATH": str(tmp_path / "s.db")}
    env.pop("MONGO_URI", None)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "scrapy", "crawl", "video", "-a", "aids=2"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == OK, result.stderr[-3000:]
    imported = {
        line.rpartition("|")[2].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert {"scrapy", "sqlite3"} <= imported
    assert {"pymongo", "jsonschema", "aiohttp"}.isdisjoint(imported)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


BAD_INVOCATIONS = {
    "misspelled argument": (["-a", "aids=2", "-a", "resum=true"], {}, "resum"),
    "non-boolean": (["-a", "aids=2", "-a", "resume=maybe"], {}, "resume"),
    "nothing to crawl": ([], {}, "ids_file"),
    "missing ids file": (["-a", "ids_file=/no/such/ids.txt"], {}, "/no/such/ids.txt"),
    "bad setting": (["-a", "aids=2"], {"BILI_THROTTLE_MAX_RPS": "fast"}, "BILI_THROTTLE_MAX_RPS"),
    "unwritable store": (
        ["-a", "aids=2"],
        {"SQLITE_PATH": "/etc/hostname/store.db"},
        "/etc/hostname/store.db",
    ),
    "malformed MONGO_URI": (["-a", "aids=2"], {"MONGO_URI": "not-a-uri"}, "MONGO_URI"),
    "store URI of no store": (
        ["-a", "aids=2"],
        {"BILI_STORE_URI": "postgres://h/db"},
        "BILI_STORE_URI 'postgres://h/db' must start with one of",
    ),
    "store URI of a file in the way": (
        ["-a", "aids=2"],
        {"BILI_STORE_URI": "sqlite:////etc/hostname/store.db"},
        "BILI_STORE_URI '/etc/hostname/store.db' cannot be used: Not a directory",
    ),
    "unreachable MongoDB": (
        ["-a", "aids=2"],
        {"MONGO_URI": f"mongodb://127.0.0.1:{_closed_port()}", "MONGO_CONNECT_TIMEOUT": "1"},
        "127.0.0.1",
    ),
}


@pytest.mark.parametrize("case", BAD_INVOCATIONS)
def test_a_bad_invocation_is_one_clear_line(fakeapi: Any, tmp_path: Path, case: str) -> None:
    args, settings, named = BAD_INVOCATIONS[case]
    started = time.monotonic()
    crawl = Crawl(tmp_path, fakeapi.url, args, **settings)
    status = crawl.wait(timeout=60)
    output = crawl.output()
    errors = [line for line in output.splitlines() if line.startswith("scrapy crawl: error:")]
    assert status == USAGE, output[-3000:]
    assert len(errors) == 1 and named in errors[0], output[-3000:]
    assert "Traceback" not in output
    assert " ERROR: " not in output, "no second error at close"
    assert time.monotonic() - started < 20


def test_an_unknown_spider_is_one_clear_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "videos"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == USAGE
    names = ", ".join(sorted(SpiderLoader.from_settings(get_project_settings()).list()))
    assert "video" in names
    assert result.stderr.splitlines()[-1] == (
        f"scrapy crawl: error: unknown spider 'videos'; the spiders are: {names}"
    )
