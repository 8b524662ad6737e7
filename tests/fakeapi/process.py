"""Run the fake API as a subprocess and drive its ``/_fake/`` admin endpoints.

Usage::

    with FakeApi(rate_limit=5) as api:
        crawl(settings={"BILI_API_BASE": api.url})
        assert api.log()[-1]["code"] == 0

The admin calls block (urllib): call them from test code, not from inside the
reactor's hot path.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

PROJECT_ROOT = Path(__file__).resolve().parents[2]

_FLAGS = {
    "rate_limit": "--rate-limit",
    "ban_seconds": "--ban-seconds",
    "fault_rate": "--fault-rate",
    "fault_seed": "--fault-seed",
    "wbi_rotate_seconds": "--wbi-rotate-seconds",
    "cards_max_ids": "--cards-max-ids",
}
_SWITCHES = {
    "require_wbi": ("--no-require-wbi", False),
    "require_buvid": ("--no-require-buvid", False),
    "require_dm_img": ("--no-require-dm-img", False),
    "relation_login_required": ("--relation-login-required", True),
}
"""Boolean options: the flag, and the value it sets (given when the option has that value)."""


class FakeApiError(RuntimeError):
    """The fake API did not start, or an admin call failed."""


class FakeApi:
    """One fake API server process; options are the CLI flags in snake case."""

    def __init__(self, startup_timeout: float = 20.0, **options: Any) -> None:
        unknown = set(options) - set(_FLAGS) - set(_SWITCHES)
        if unknown:
            raise TypeError(f"unknown FakeApi options: {sorted(unknown)}")
        self.startup_timeout = startup_timeout
        self.args: list[str] = []
        for name, value in options.items():
            if name in _SWITCHES:
                flag, sets = _SWITCHES[name]
                if bool(value) == sets:
                    self.args.append(flag)
            else:
                self.args += [_FLAGS[name], str(value)]
        self._process: subprocess.Popen[str] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:40123`` (no trailing slash)."""
        if self._url is None:
            raise FakeApiError("the fake API is not running; call start() first")
        return self._url

    def start(self) -> str:
        """Start the server, wait for its URL line and return the URL."""
        if self._url is not None:
            return self._url
        command = [sys.executable, "-m", "tests.fakeapi", *self.args]
        # stderr is inherited, so the server's tracebacks stay visible.
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)  # noqa: S603
        self._process = process
        assert process.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        line = ""
        while not line:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise FakeApiError(f"{command} printed no URL in {self.startup_timeout} s")
            if select.select([process.stdout], [], [], min(remaining, 0.1))[0]:
                line = process.stdout.readline()
                if not line:  # EOF: the process is gone
                    break
            elif process.poll() is not None:
                break
        if not line.startswith("http"):
            code = process.wait()
            self._process = None
            raise FakeApiError(
                f"{command} exited with code {code} before printing its URL (see its stderr)"
            )
        self._url = line.strip()
        return self._url

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after *timeout* seconds)."""
        process, self._process, self._url = self._process, None, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _admin(self, method: str, name: str, body: dict[str, Any] | None = None) -> Any:
        payload = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (always our own http:// URL)
            f"{self.url}/_fake/{name}",
            data=payload,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise FakeApiError(f"{method} /_fake/{name}: {exc.read().decode()}") from exc

    def config(self) -> dict[str, Any]:
        """The current knobs."""
        return self._admin("GET", "config")

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change some knobs (see ``tests.fakeapi.app.Knobs``); return all of them."""
        return self._admin("POST", "config", knobs)

    def reset(self) -> None:
        """Clear the request log, rate windows and bans; knobs and keys stay."""
        self._admin("POST", "reset", {})

    def log(self) -> list[dict[str, Any]]:
        """The served API requests, oldest first."""
        return self._admin("GET", "log")

    def rotate_keys(self) -> tuple[str, str]:
        """Move to new WBI keys now; return them as (img_key, sub_key)."""
        keys = self._admin("POST", "rotate-keys", {})
        return keys["img_key"], keys["sub_key"]

    def keys(self) -> tuple[str, str]:
        """The current WBI keys as (img_key, sub_key)."""
        keys = self._admin("GET", "keys")
        return keys["img_key"], keys["sub_key"]
