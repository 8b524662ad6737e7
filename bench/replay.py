"""A static replay of the fake API: its exact answers, recorded once, served from memory.

The request-path benchmark measures the clients, not the server: the fake API
builds every answer (and checks signatures, cookies and limits) on each
request, which costs CPU on the same 2 cores. :func:`record` fetches the fake
API's answers for a list of videos (video detail by ``aid``, plus ``nav`` and
``finger/spi``) once, with a browser's User-Agent and a ``buvid3`` cookie and
without compression, and :class:`ReplayServer` serves those bytes again:

- answers are looked up by path, and by ``aid`` for the video endpoint (a
  recording can key more paths by one or more query parameters, its ``keys``:
  ``{path: [parameter, ...]}``, the key being their values joined by commas);
  every other parameter (``w_rid``, ``wts``...) and every header is ignored, except
- ``Accept-Encoding``: a client that accepts gzip gets the body gzip-compressed
  (compressed once, when the server starts, at the fake API's level), unless
  the answer says ``"compress": false`` (protobuf, sent as it is);
- an answer's body is its ``body`` text, or the bytes of its ``body_file``;
- ``GET /_replay/stats`` returns how many requests were served (by path) and
  when the first and last came; ``POST /_replay/reset`` starts counting again.

Run as ``python -m bench.replay RECORDING.json``: prints its URL on one line and
serves on 127.0.0.1 until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import select
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from bench.common import BROWSER_UA, NAV_PATH, PYTHON, ROOT, SPI_PATH, VIDEO_PATH, stop

if TYPE_CHECKING:
    from types import TracebackType

    from aiohttp import web

KEYED_PATHS: dict[str, tuple[str, ...]] = {VIDEO_PATH: ("aid",)}
"""Paths whose answer depends on query parameters, and those parameters (a recording's
``keys`` adds more)."""
STATIC_PATHS = (NAV_PATH, SPI_PATH)
RECORD_CONCURRENCY = 16
GZIP_LEVEL = 6  # as tests.fakeapi.app._compress


# --- recording --------------------------------------------------------------------------------


async def _record(api_url: str, aids: list[int]) -> dict[str, Any]:
    import aiohttp  # noqa: PLC0415 (only the recording and the server need it)

    headers = {
        "User-Agent": BROWSER_UA,
        "Accept-Encoding": "identity",
        "Cookie": "buvid3=bench-replay-recording",
    }
    answers: dict[str, Any] = {"static": {}, "keyed": {path: {} for path in KEYED_PATHS}}
    semaphore = asyncio.Semaphore(RECORD_CONCURRENCY)

    async def fetch(session: aiohttp.ClientSession, path: str, query: str) -> dict[str, Any]:
        async with semaphore, session.get(f"{api_url}{path}{query}") as response:
            body = await response.read()
            return {
                "status": response.status,
                "content_type": response.headers.get("Content-Type", "application/json"),
                "body": body.decode("utf-8"),
            }

    async with aiohttp.ClientSession(headers=headers, auto_decompress=False) as session:
        for path in STATIC_PATHS:
            answers["static"][path] = await fetch(session, path, "")
        videos = await asyncio.gather(*(fetch(session, VIDEO_PATH, f"?aid={a}") for a in aids))
    for aid, answer in zip(aids, videos, strict=True):
        if answer["status"] != 200 or json.loads(answer["body"])["code"] != 0:
            raise RuntimeError(f"the fake API did not answer video {aid}: {answer}")
        answers["keyed"][VIDEO_PATH][str(aid)] = answer
    return answers


def record(api_url: str, aids: list[int], path: Path) -> dict[str, float]:
    """Record the fake API's answers for *aids* into *path*; return body sizes (bytes)."""
    answers = asyncio.run(_record(api_url, aids))
    path.write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    bodies = [answer["body"].encode() for answer in answers["keyed"][VIDEO_PATH].values()]
    return {
        "mean": sum(map(len, bodies)) / len(bodies),
        "mean_gzip": sum(len(gzip.compress(b, GZIP_LEVEL, mtime=0)) for b in bodies) / len(bodies),
    }


# --- serving ----------------------------------------------------------------------------------


class _Prepared:
    """One answer, ready to send: identity and gzip bodies built once (no gzip: None)."""

    __slots__ = ("content_type", "gzip", "identity", "status")

    def __init__(self, answer: dict[str, Any]) -> None:
        self.status: int = answer["status"]
        self.content_type: str = answer["content_type"]
        if "body_file" in answer:
            self.identity = Path(answer["body_file"]).read_bytes()
        else:
            self.identity = answer["body"].encode("utf-8")
        self.gzip = (
            gzip.compress(self.identity, GZIP_LEVEL, mtime=0)
            if answer.get("compress", True)
            else None
        )


def _accepts_gzip(header: str) -> bool:
    for item in header.lower().split(","):
        name, _, params = item.partition(";")
        if name.strip() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=")
            return not (quality and quality.replace(".", "", 1).isdigit() and float(quality) == 0)
    return False


def create_app(recording: dict[str, Any]) -> web.Application:
    from aiohttp import web  # noqa: PLC0415

    static = {path: _Prepared(answer) for path, answer in recording["static"].items()}
    keyed = {
        path: {key: _Prepared(answer) for key, answer in answers.items()}
        for path, answers in recording["keyed"].items()
    }
    not_found = _Prepared(
        {
            "status": 404,
            "content_type": "application/json; charset=utf-8",
            "body": '{"code":-404,"message":"啥都木有","ttl":1}',
        }
    )
    params = {
        **KEYED_PATHS,
        **{path: tuple(names) for path, names in recording.get("keys", {}).items()},
    }
    counts: Counter[str] = Counter()
    times: dict[str, float | None] = {"first": None, "last": None}

    async def serve(request: web.Request) -> web.Response:
        now = time.time()
        if times["first"] is None:
            times["first"] = now
        times["last"] = now
        path = request.path
        counts[path] += 1
        if path in keyed:
            key = ",".join(request.query.get(name, "") for name in params[path])
            answer = keyed[path].get(key, not_found)
        else:
            answer = static.get(path, not_found)
        headers = {"Content-Type": answer.content_type, "Vary": "Accept-Encoding"}
        if answer.gzip is not None and _accepts_gzip(request.headers.get("Accept-Encoding", "")):
            headers["Content-Encoding"] = "gzip"
            return web.Response(status=answer.status, body=answer.gzip, headers=headers)
        return web.Response(status=answer.status, body=answer.identity, headers=headers)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({"requests": sum(counts.values()), "by_path": counts, **times})

    async def reset(_request: web.Request) -> web.Response:
        counts.clear()
        times.update(first=None, last=None)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/_replay/stats", stats)
    app.router.add_post("/_replay/reset", reset)
    app.router.add_get("/{path:.*}", serve)
    return app


async def _serve(recording_path: Path) -> None:
    from tests.fakeapi.app import serve_until_signalled  # noqa: PLC0415 (aiohttp, child only)

    recording = json.loads(recording_path.read_text(encoding="utf-8"))
    await serve_until_signalled(create_app(recording), "127.0.0.1", 0)


class ReplayServer:
    """The replay server as a child process; a context manager that stops it."""

    def __init__(self, recording: Path, startup_timeout: float = 30.0) -> None:
        self.recording = recording
        self.startup_timeout = startup_timeout
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        command = [PYTHON, "-m", "bench.replay", str(self.recording)]
        self._process = process = subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        output = process.stdout
        if output is None:  # never: stdout is a pipe
            raise RuntimeError("no pipe")
        ready, _, _ = select.select([output], [], [], self.startup_timeout)
        line = output.readline() if ready else ""
        if not line.startswith("http"):
            self.__exit__(None, None, None)
            raise RuntimeError(f"{command} printed no URL in {self.startup_timeout} s")
        self.url = line.strip()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop(process)
            if process.stdout is not None:
                process.stdout.close()

    def _admin(self, method: str, name: str) -> Any:
        request = urllib.request.Request(  # noqa: S310 (our own http://127.0.0.1 URL)
            f"{self.url}/_replay/{name}", method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.load(response)

    def stats(self) -> dict[str, Any]:
        """``{"requests": n, "by_path": {...}, "first": t, "last": t}`` since the last reset."""
        return self._admin("GET", "stats")

    def reset(self) -> None:
        self._admin("POST", "reset")


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1])))
