"""What the benchmarks share: paths, test data, child processes measured to the end, the report.

Every client a benchmark measures runs as its own child process, started the
same way (``python -m ...`` from the project root, in a session of its own so
that a Ctrl-C reaches only the bench, which then stops it). :func:`run_child`
waits for it with ``os.wait4`` and returns its wall time, the CPU time it used
(user + system, start-up included) and its peak resident memory.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
VIDEO_PATH = "/x/web-interface/wbi/view/detail"
NAV_PATH = "/x/web-interface/nav"
SPI_PATH = "/x/frontend/finger/spi"
BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)
STOP_GRACE = 15.0
"""Seconds a child has to exit after SIGTERM before it is killed."""
RSS_SAMPLE = 0.05
"""Seconds between two reads of a child's peak RSS."""

# Aids the fake API answers with an error instead of a video (tests.fakeapi.videos.ERROR_AIDS);
# copied so that the clients' modules need not import the fake API.
_ERROR_AIDS = frozenset({404, 62002, 62004, 62012})


@dataclasses.dataclass(frozen=True)
class Options:
    """The command line, as every benchmark sees it."""

    videos: int = 3000
    repeats: int = 5
    quick: bool = False
    variants: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """Extra runs of the request-path crawl: name -> extra ``scrapy crawl`` arguments."""
    workdir: Path = Path()
    """A temporary directory for ids files, stores and logs, removed at the end."""
    command: str = "make bench"


# --- test data --------------------------------------------------------------------------------


def sample_aids(count: int, seed: int) -> list[int]:
    """*count* distinct valid aids, half below 2**32 and half above (recent uploads)."""
    rng = random.Random(seed)  # noqa: S311 (test data)
    aids: set[int] = set()
    while len(aids) < count:
        aid = rng.randrange(1, 2**32) if len(aids) % 2 else rng.randrange(2**32, 2**51)
        if aid not in _ERROR_AIDS:
            aids.add(aid)
    return sorted(aids)


def write_aids(path: Path, aids: Iterable[int]) -> Path:
    """An ids file of one plain aid per line: what every client reads."""
    path.write_text("".join(f"{aid}\n" for aid in aids), encoding="utf-8")
    return path


def read_aids(path: str | Path) -> list[str]:
    with Path(path).open(encoding="utf-8") as lines:
        return [line.strip() for line in lines if line.strip()]


# --- child processes --------------------------------------------------------------------------


@dataclasses.dataclass
class ChildResult:
    """How one child process went."""

    returncode: int
    wall: float
    """Seconds from just before the start to the exit."""
    cpu: float
    """User + system CPU seconds of the process (``os.wait4`` rusage), start-up included."""
    peak_rss_kib: int | None
    """The process's peak resident memory (``VmHWM``), None if it exited before a sample."""
    started_at: float
    """``time.time()`` just before the start, to compare with server logs."""
    timed_out: bool
    log_path: Path

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def child_env(**extra: str) -> dict[str, str]:
    """The environment every child gets: the bench's own, no store of its own, plus *extra*."""
    env = {**os.environ, "BILI_STORE_URI": "", "MONGO_URI": "", **extra}
    env.pop("SCRAPY_SETTINGS_MODULE", None)
    return env


def status_kib(pid: int, field: str) -> int | None:
    """A memory figure of */proc/PID/status* (``VmRSS``, ``VmHWM``) in KiB, None once gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def run_child(
    command: Sequence[str], *, env: dict[str, str], timeout: float, log_path: Path
) -> ChildResult:
    """Run *command* from the project root to its end (SIGTERM after *timeout* seconds).

    The peak RSS is the process's own high-water mark (``VmHWM``), read every
    ``RSS_SAMPLE`` seconds until it exits: ``ru_maxrss`` would not do, since Linux
    carries the parent's peak over into a forked child, across ``exec``. Whatever
    happens here, Ctrl-C included, the child is stopped and reaped before this
    returns or raises.
    """
    lock = threading.Lock()
    state = {"done": False, "timed_out": False}
    exited = threading.Event()
    peak: list[int] = []

    with log_path.open("wb") as log:
        started_at = time.time()
        started = time.monotonic()
        process = subprocess.Popen(  # noqa: S603 (our own commands)
            list(command),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def send(signum: int) -> None:
        with lock:
            if not state["done"]:
                os.kill(process.pid, signum)

    def expire() -> None:
        state["timed_out"] = True
        send(signal.SIGTERM)
        killer.start()

    def sample() -> None:
        while not exited.wait(RSS_SAMPLE):
            value = status_kib(process.pid, "VmHWM")
            if value is not None:
                peak[:] = [max([value, *peak])]

    killer = threading.Timer(STOP_GRACE, send, (signal.SIGKILL,))
    timer = threading.Timer(timeout, expire)
    sampler = threading.Thread(target=sample)
    killer.daemon = timer.daemon = sampler.daemon = True
    timer.start()
    sampler.start()
    try:
        # Wait for the exit without reaping, so that no signal or /proc read can reach
        # another process that reuses the pid.
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        wall = time.monotonic() - started
    except BaseException:
        exited.set()
        with lock:
            state["done"] = True  # the timers must not signal; stop() takes over
        timer.cancel()
        killer.cancel()
        stop(process)
        raise
    exited.set()
    with lock:
        state["done"] = True
    timer.cancel()
    killer.cancel()
    sampler.join()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return ChildResult(
        returncode=process.returncode,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss_kib=peak[0] if peak else None,
        started_at=started_at,
        timed_out=bool(state["timed_out"]),
        log_path=log_path,
    )


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """SIGTERM *process*, SIGKILL it after ``STOP_GRACE`` seconds, and reap it."""
    if process.returncode is not None:
        return
    try:
        process.terminate()
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    except ChildProcessError:  # already reaped by os.wait4
        pass


# --- figures ----------------------------------------------------------------------------------


def spread(values: Sequence[float], fmt: str = "{:.0f}") -> str:
    """``median (min–max)`` of *values*; just the value for one."""
    if not values:
        return "n/a"
    if len(values) == 1:
        return fmt.format(values[0])
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{fmt.format(mid)} ({fmt.format(low)}–{fmt.format(high)})"


def min_med_max(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """``min / median / max`` of *values*."""
    if not values:
        return "n/a"
    low, mid, high = min(values), statistics.median(values), max(values)
    return " / ".join(fmt.format(value) for value in (low, mid, high))


def machine_facts() -> str:
    """One line: cores, CPU, memory, OS, Python and the versions that matter here."""
    model = ""
    memory = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = " ".join(line.split(":", 1)[1].split())
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 2**20:.0f} GiB"
                break
    except OSError:
        pass
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("Scrapy", "Twisted", "aiohttp")
    )
    cpu = f" ({model})" if model else ""
    return (
        f"{os.cpu_count()} cores{cpu}{memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {versions}"
    )


def today() -> str:
    return time.strftime("%Y-%m-%d %H:%M %Z")


# --- the report -------------------------------------------------------------------------------


@dataclasses.dataclass
class Table:
    """A table of the report; *align* has one ``l`` or ``r`` per column."""

    headers: list[str]
    rows: list[list[str]]
    align: str = ""

    def markdown(self) -> str:
        align = (self.align or "l" + "r" * (len(self.headers) - 1)).ljust(len(self.headers), "r")
        widths = [
            max(3, *(len(str(cell)) for cell in column))
            for column in zip(self.headers, *self.rows, strict=True)
        ]

        def line(cells: Sequence[str]) -> str:
            padded = [
                str(cell).ljust(width) if side == "l" else str(cell).rjust(width)
                for cell, width, side in zip(cells, widths, align, strict=True)
            ]
            return "| " + " | ".join(padded) + " |"

        rule = [
            "-" * width if side == "l" else "-" * (width - 1) + ":"
            for width, side in zip(widths, align, strict=True)
        ]
        return "\n".join([line(self.headers), line(rule), *(line(row) for row in self.rows)])


@dataclasses.dataclass
class Section:
    """What one benchmark reports: a titled section of ``docs/benchmarks.md``.

    *parts* are Markdown paragraphs and :class:`Table` objects, in order.
    """

    key: str
    title: str
    parts: list[str | Table] = dataclasses.field(default_factory=list)

    def add(self, *parts: str | Table) -> None:
        self.parts.extend(parts)

    def markdown(self) -> str:
        body = [part.markdown() if isinstance(part, Table) else part for part in self.parts]
        return "\n\n".join([f"## {self.title}", *body])


def stored_count(database: Path, collection: str) -> int:
    """How many documents a collection of the SQLite store *database* holds (it must exist)."""
    from bilicrawl.store.sqlite import SQLiteStore  # noqa: PLC0415 (import cost out of timings)

    if not database.exists():
        raise FileNotFoundError(f"{database} does not exist")
    with SQLiteStore(database, busy_timeout=5.0) as store:
        return store.count(collection)
