"""``scrapy crawl`` as a user runs it: a subprocess writing into its own SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakeapi.process import PROJECT_ROOT
from tests.helpers.store import stored_documents

VIDEO_PATH = "/x/web-interface/wbi/view/detail"


class Crawl:
    """A ``scrapy crawl SPIDER`` subprocess against *api_url*, its log in ``crawl.log``."""

    def __init__(
        self,
        tmp_path: Path,
        api_url: str,
        args: list[str],
        *,
        spider: str = "video",
        env: dict[str, str] | None = None,
        database: Path | None = None,
        prefix: list[str] | None = None,
        **settings: str,
    ) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.database = database or tmp_path / "store.db"
        command = [*(prefix or []), sys.executable, "-m", "scrapy", "crawl", spider, *args]
        for name, value in settings.items():
            command += ["-s", f"{name}={value}"]
        environment = {
            **os.environ, "BILI_API_URL": api_url, "SQLITE_PATH": str(self.database),
            **(env or {}),
        }  # fmt: skip
        environment.pop("MONGO_URI", None)
        self.log_path = tmp_path / "crawl.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            command,
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stored_aids(self) -> list[int]:
        return [document["aid"] for document in stored_documents(self.database, "videos")]


def fetched_aids(log: list[dict[str, Any]], before: float = float("inf")) -> set[int]:
    """The aids the fake API answered with a video (code 0) before *before*."""
    return {
        int(entry["query"]["aid"])
        for entry in log
        if entry["path"] == VIDEO_PATH and entry["code"] == 0 and entry["t"] < before
    }


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)
