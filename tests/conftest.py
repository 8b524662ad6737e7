"""Shared fixtures: the fake Bilibili API, a real Redis server, measured figures."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scrapy.core.engine import ExecutionEngine

# Tests name their own stores: one exported in the developer's environment must never
# receive a test crawl (the settings module reads these when first imported, below).
for _store_setting in ("BILI_STORE_URI", "MONGO_URI", "MONGO_DATABASE", "SQLITE_PATH"):
    os.environ.pop(_store_setting, None)

from tests.fakeapi.app import Knobs  # noqa: E402
from tests.fakeapi.process import FakeApi  # noqa: E402
from tests.helpers.backends import BACKENDS, Backend, open_backend  # noqa: E402
from tests.utils import project_settings  # noqa: E402


@pytest.fixture(autouse=True)
def _fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let finished crawls close in a fraction of a second instead of 5 s."""
    if hasattr(ExecutionEngine, "_SLOT_HEARTBEAT_INTERVAL"):
        monkeypatch.setattr(ExecutionEngine, "_SLOT_HEARTBEAT_INTERVAL", 0.05)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real, throwaway Redis server on a free port (``make test`` installs redis-server)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run the tests with `make test`")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path_factory.mktemp("redis")),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="session")
def fakeapi() -> Iterator[FakeApi]:
    """One fake API for the session; tests that change its knobs use ``fakeapi_factory``."""
    with FakeApi() as server:
        yield server


@pytest.fixture(scope="module")
def server() -> Iterator[FakeApi]:
    """A fake API for one test module whose tests change its knobs (see ``api``)."""
    with FakeApi() as api:
        yield api


@pytest.fixture
def api(server: FakeApi) -> FakeApi:
    """The module's fake API with default knobs and an empty log, bans and rate windows."""
    server.configure(**vars(Knobs()))
    server.reset()
    return server


@pytest.fixture
def fakeapi_factory() -> Iterator[Any]:
    """Start fake APIs with the given options; they are stopped after the test."""
    servers: list[FakeApi] = []

    def start(**options: Any) -> FakeApi:
        server = FakeApi(**options)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def crawl_settings(tmp_path: Any) -> dict[str, Any]:
    """Project settings for a fast crawl into a throwaway SQLite store.

    Tests add ``BILI_API_URL`` and whatever else they exercise.
    """
    return {
        **project_settings(),
        "MONGO_URI": "",
        "SQLITE_PATH": str(tmp_path / "bilicrawl.db"),
        "BILI_THROTTLE_MAX_RPS": 500.0,
        "BILI_THROTTLE_FAMILIES": {},  # the space and relation endpoints at the same pace
        "BILI_THROTTLE_BACKOFF_START": 0.05,
        "BILI_THROTTLE_BACKOFF_MAX": 1.0,
        "BILI_THROTTLE_TRANSIENT_START": 0.02,
        "AUTOTHROTTLE_START_DELAY": 0.0,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
        "LOG_LEVEL": "INFO",
    }


_FIGURES: list[str] = []


@pytest.fixture
def figures() -> Any:
    """Record a measured figure; all of them are printed at the end of the run."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES:
        terminalreporter.section("bilicrawl figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    """A store for one test: SQLite, mongomock, and a real MongoDB server when configured."""
    yield from open_backend(request.param, tmp_path, monkeypatch)
