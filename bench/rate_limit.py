"""Rate-limit settling: after the first bans, does the crawl hold ≥ 85 % of the limit, unbanned?

For each limit R in ``LIMITS``, starts the fake API with ``rate_limit=R`` (a
client making more than R requests in a trailing second is refused for
``BAN_SECONDS``) and runs the real ``scrapy crawl video`` for ``DURATION``
seconds (``CLOSESPIDER_TIMEOUT``) with its rate capped at 2R and the throttle's
timings shortened (``THROTTLE``) so that it settles within the run; it has more
videos than it can fetch. Then, from the fake API's log: the bans, the time of
the last one, and over the final ``STRETCH`` seconds the request rate ÷ R, the
busiest second and the bans. The target: a rate ≥ ``TARGET`` × R over the
final stretch, with no ban in it. The throttle's last rate change is read from
the crawl's log.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from bench.common import (
    PYTHON,
    ChildResult,
    Options,
    Section,
    Table,
    child_env,
    machine_facts,
    run_child,
    sample_aids,
    today,
    write_aids,
)
from tests.fakeapi.process import FakeApi

if TYPE_CHECKING:
    from pathlib import Path

LIMITS = (20, 50)
"""Requests per second the fake API allows one client."""
BAN_SECONDS = 2.0
DURATION = 75
"""Seconds each crawl runs (``CLOSESPIDER_TIMEOUT``)."""
STRETCH = 30
"""The final seconds the settled rate is measured over."""
QUICK = {"DURATION": 30, "STRETCH": 10}
TARGET = 0.85
THROTTLE = {
    "BILI_THROTTLE_TRANSIENT_START": "0.1",
    "BILI_THROTTLE_BACKOFF_START": "0.5",
    "BILI_THROTTLE_BACKOFF_MAX": "4",
    "BILI_THROTTLE_RECOVER_SECONDS": "3",
}
"""Shortened from the shipped 1 s, 10 s, 600 s and 60 s; every other setting is the project's.

A block is read as rate limiting when it outlives the probe (``TRANSIENT_START``)
and the first back-off step (``BACKOFF_START``): both must fit in ``BAN_SECONDS``."""
_RATE_LINE = re.compile(r"(?:lowering it to|Raising \S+ to) ([0-9.]+)")


@dataclasses.dataclass
class Settling:
    """One crawl against a rate-limited fake API, read off the server's log."""

    limit: int
    child: ChildResult
    requests: int
    span: float
    bans: list[float]
    """Ban start times, seconds after the first request."""
    refused: int
    stretch_rate: float
    stretch_bans: int
    stretch_refused: int
    busiest: int
    """The most requests in any 1-second window of the final stretch."""
    rates: list[float]
    """The throttle's rate changes, in order (from its log)."""
    error: str = ""

    @property
    def met(self) -> bool:
        settled = self.stretch_rate >= TARGET * self.limit
        return not self.error and settled and not self.stretch_bans


def busiest_second(times: list[float]) -> int:
    most, first = 0, 0
    for last, now in enumerate(times):
        while now - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def settle(limit: int, duration: int, stretch: int, workdir: Path) -> Settling:
    aids = sample_aids(int(2 * limit * duration * 1.3) + 100, seed=limit)
    ids_file = write_aids(workdir / f"ids-{limit}.txt", aids)
    database = workdir / f"rate-{limit}.db"
    settings = {
        "BILI_THROTTLE_MAX_RPS": str(2 * limit),
        **THROTTLE,
        "CLOSESPIDER_TIMEOUT": str(duration),
    }
    command = [PYTHON, "-m", "scrapy", "crawl", "video", "-a", f"ids_file={ids_file}"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    with FakeApi(rate_limit=limit, ban_seconds=BAN_SECONDS) as api:
        env = child_env(BILI_API_URL=api.url, SQLITE_PATH=str(database))
        child = run_child(
            command, env=env, timeout=duration + 90, log_path=workdir / f"rate-{limit}.log"
        )
        log = api.log()
    rates = [float(match) for match in _RATE_LINE.findall(child.log_path.read_text())]
    error = ""
    if child.timed_out:
        error = "timed out"
    elif len(log) < 2:
        error = f"{len(log)} requests (log: {child.log_path})"
    if error:
        return Settling(limit, child, len(log), 0, [], 0, 0, 0, 0, 0, rates, error)
    start, end = log[0]["t"], log[-1]["t"]
    final = [entry for entry in log if entry["t"] > end - stretch]
    return Settling(
        limit=limit,
        child=child,
        requests=len(log),
        span=end - start,
        bans=[entry["t"] - start for entry in log if entry["event"] == "ban-start"],
        refused=sum(entry["event"] is not None for entry in log),
        stretch_rate=len(final) / stretch,
        stretch_bans=sum(entry["event"] == "ban-start" for entry in final),
        stretch_refused=sum(entry["event"] is not None for entry in final),
        busiest=busiest_second([entry["t"] for entry in final]),
        rates=rates,
    )


def run(options: Options) -> Section:
    duration = QUICK["DURATION"] if options.quick else DURATION
    stretch = QUICK["STRETCH"] if options.quick else STRETCH
    workdir = options.workdir / "rate"
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for limit in LIMITS:
        print(
            f"rate limit: R = {limit} req/s, crawling for {duration} s at a cap of "
            f"{2 * limit} req/s",
            flush=True,
        )
        result = settle(limit, duration, stretch, workdir)
        print(
            f"  {result.stretch_rate / limit:.0%} of R over the last {stretch} s, "
            f"{len(result.bans)} bans, {result.stretch_bans} in the last {stretch} s"
            + (f"; FAILED: {result.error}" if result.error else ""),
            flush=True,
        )
        results.append(result)
    return report(options, results, duration=duration, stretch=stretch)


def _rate_history(rates: list[float]) -> str:
    return " → ".join(f"{rate:.1f}" for rate in rates) if rates else "none"


def report(options: Options, results: list[Settling], *, duration: int, stretch: int) -> Section:
    section = Section("rate", "Rate limit: settling under the server's limit")
    throttle = " ".join(f"-s {name}={value}" for name, value in THROTTLE.items())
    section.add(
        f"`{options.command}`, {today()}; {machine_facts()}.",
        f"For each limit R, the fake API refuses a client (HTTP 412, code -412) for "
        f"{BAN_SECONDS:g} s once it makes more than R requests in a trailing second. "
        f"`scrapy crawl video` runs against it for {duration} s (`-s CLOSESPIDER_TIMEOUT="
        f"{duration}`) with more videos than it can fetch, capped at 2R "
        f"(`-s BILI_THROTTLE_MAX_RPS=2R`) and with the throttle's timings shortened so that "
        f"it settles within the run: `{throttle}` (back-off from 0.5 s up to 4 s instead of "
        f"10 s up to 10 min; the rate grows back every 3 s instead of every 60 s, by 10 % "
        f"of the cap, up to 95 % of the last blocked rate). Every other setting is the "
        f"project's. Figures from the fake API's log; times are seconds after the first "
        f"request; *refused* counts the requests answered with a ban. The target: at least "
        f"{TARGET:.0%} of R over the final {stretch} s, with no ban in them.",
    )
    rows: list[list[Any]] = []
    for result in results:
        if result.error:
            rows.append([result.limit, 2 * result.limit, "failed: " + result.error, *[""] * 8])
            continue
        last_ban = f"{result.bans[-1]:.1f}" if result.bans else "none"
        rows.append(
            [
                result.limit,
                2 * result.limit,
                f"{result.requests:,} in {result.span:.1f} s",
                f"{len(result.bans)} ({result.refused} refused)",
                last_ban,
                _rate_history(result.rates),
                f"{result.stretch_rate:.1f}",
                f"{result.stretch_rate / result.limit:.0%}",
                result.busiest,
                f"{result.stretch_bans} ({result.stretch_refused} refused)",
                "**met**" if result.met else "**not met**",
            ]
        )
    section.add(
        Table(
            [
                "R (req/s)",
                "cap",
                "requests",
                "bans",
                "last ban at (s)",
                "throttle rate steps",
                f"req/s, last {stretch} s",
                "÷ R",
                "busiest second",
                f"bans, last {stretch} s",
                f"≥ {TARGET:.0%} of R, no ban",
            ],
            [[str(cell) for cell in row] for row in rows],
            "rrlrrlrrrrl",
        )
    )
    return section
