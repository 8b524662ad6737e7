"""Random faults: does a crawl with 20 % mixed faults keep half the fault-free throughput?

Runs the real ``scrapy crawl video`` on the same ids against the fake API at a
cap of ``CAP`` requests per second (``BILI_THROTTLE_MAX_RPS``), every other
setting the project's: once without faults, then once per mix of ``MIXES`` at
``FAULT_RATE``. The figure is the wall time of the crawl process; the target,
for the issue's mix, is a throughput of at least ``TARGET`` of the fault-free
one with every id stored. The throttle's slowdowns are read by reason from the
crawl's stats (``bilicrawl/throttle/slowdowns/<reason>``), the faults from the
fake API's log.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections import Counter
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

VIDEOS = 500
QUICK_VIDEOS = 150
CAP = 20
FAULT_RATE = 0.2
TARGET = 0.5
SEED = 15
TRANSIENT = ("http5xx", "html", "drop", "truncate", "truncate-json")
MIXES: dict[str, list[str]] = {
    # The mix: server errors, resets, truncated and HTML bodies, and a few
    # isolated risk answers (-412 and -799, one fault in eleven) among successes.
    "mixed": [*TRANSIENT * 4, "http412", "code-799"],
    # The fake API's default: every kind alike, a third of the faults risk answers.
    "every kind alike": [*TRANSIENT, "http412", "code-799"],
}
"""Fault kinds drawn from (a kind repeated is drawn more often); the first one is the target."""
_STATS = re.compile(r"Dumping Scrapy stats:\n(\{.*?\})\n", re.DOTALL)
_SLOWDOWN = "bilicrawl/throttle/slowdowns/"


@dataclasses.dataclass
class FaultRun:
    """One crawl of the ids, with or without faults."""

    name: str
    child: ChildResult
    stored: int
    requests: int
    faults: Counter[str]
    stats: dict[str, Any]
    error: str = ""

    @property
    def throughput(self) -> float:
        return self.stored / self.child.wall

    def slowdowns(self) -> str:
        found = {
            key.removeprefix(_SLOWDOWN): value
            for key, value in sorted(self.stats.items())
            if key.startswith(_SLOWDOWN)
        }
        return ", ".join(f"{reason} {count}" for reason, count in found.items()) or "none"


def crawl_stats(log: str) -> dict[str, Any]:
    """The stats dict the crawl dumped at its end (``STATS_DUMP``), {} if there is none."""
    match = _STATS.search(log)
    if match is None:
        return {}
    # The dump is a pprint of plain values, except datetimes, which are left out.
    text = re.sub(r"datetime\.datetime\([^)]*\)", "None", match.group(1))
    return ast.literal_eval(text)


def crawl(name: str, kinds: list[str] | None, aids: list[int], workdir: Path) -> FaultRun:
    from bilicrawl.store.sqlite import SQLiteStore  # noqa: PLC0415

    tag = name.replace(" ", "-")
    ids_file = write_aids(workdir / "ids.txt", aids)
    database = workdir / f"{tag}.db"
    command = [
        PYTHON, "-m", "scrapy", "crawl", "video", "-a", f"ids_file={ids_file}",
        "-s", f"BILI_THROTTLE_MAX_RPS={CAP}", "-s", "STATS_DUMP=True",
    ]  # fmt: skip
    fault_rate = FAULT_RATE if kinds else 0.0
    with FakeApi(fault_rate=fault_rate, fault_seed=SEED) as api:
        if kinds:
            api.configure(fault_kinds=kinds)
        env = child_env(BILI_API_URL=api.url, SQLITE_PATH=str(database))
        child = run_child(
            command,
            env=env,
            timeout=60 + 10 * len(aids) / CAP,
            log_path=workdir / f"{tag}.log",
        )
        log = api.log()
    with SQLiteStore(database, busy_timeout=5.0) as store:
        stored = {aid for (aid,) in store.keys("videos")}
    error = ""
    if child.timed_out:
        error = "timed out"
    elif child.returncode != 0:
        error = f"exit status {child.returncode}"
    elif stored != set(aids):
        error = f"{len(stored & set(aids))} of {len(aids)} ids stored"
    if error:
        error += f" (log: {child.log_path})"
    return FaultRun(
        name=name,
        child=child,
        stored=len(stored),
        requests=len(log),
        faults=Counter(entry["fault"] for entry in log if entry["fault"]),
        stats=crawl_stats(child.log_path.read_text(encoding="utf-8", errors="replace")),
        error=error,
    )


def run(options: Options) -> Section:
    count = QUICK_VIDEOS if options.quick else VIDEOS
    workdir = options.workdir / "faults"
    workdir.mkdir(parents=True, exist_ok=True)
    aids = sample_aids(count, seed=SEED)
    runs = []
    for name, kinds in {"fault-free": None, **MIXES}.items():
        print(f"faults: {count} videos at {CAP} req/s, {name}", flush=True)
        result = crawl(name, kinds, aids, workdir)
        print(
            f"  {result.child.wall:.1f} s, {result.throughput:.1f} videos/s, "
            f"{result.requests} requests; slowdowns: {result.slowdowns()}"
            + (f"; FAILED: {result.error}" if result.error else ""),
            flush=True,
        )
        runs.append(result)
    return report(options, runs, count)


def _mix(kinds: list[str]) -> str:
    counts = Counter(kinds)
    return ", ".join(f"{kind} {counts[kind] / len(kinds):.0%}" for kind in counts)


def report(options: Options, runs: list[FaultRun], count: int) -> Section:
    section = Section("faults", "Random faults: throughput against the fault-free crawl")
    mixes = "; ".join(f"*{name}*: {_mix(kinds)}" for name, kinds in MIXES.items())
    section.add(
        f"`{options.command}`, {today()}; {machine_facts()}.",
        f"`scrapy crawl video` on the same {count} ids against the fake API, capped at {CAP} "
        f"requests per second (`-s BILI_THROTTLE_MAX_RPS={CAP}`), every other setting the "
        f"project's: once without faults, then with {FAULT_RATE:.0%} of the answers faults "
        f"drawn from each mix (share of the faults by kind): {mixes}. The time is the wall "
        f"time of the crawl process, start-up included. The target, for the first mix: at "
        f"least {TARGET:.0%} of the fault-free throughput, every id stored. Slowdowns are "
        f"the throttle's, by reason (`bilicrawl/throttle/slowdowns/<reason>`).",
    )
    clean = runs[0]
    rows = []
    for index, result in enumerate(runs):
        ratio = result.throughput / clean.throughput if clean.throughput else 0.0
        if result is clean:
            verdict = ""
        elif index == 1:
            verdict = "**met**" if ratio >= TARGET and not result.error else "**not met**"
        else:
            verdict = "(for comparison)"
        retries = result.stats.get("bilicrawl/retry/count", 0) + result.stats.get("retry/count", 0)
        rows.append(
            [
                result.name,
                f"{result.child.wall:.1f}",
                f"{result.stored}/{count}" + (f" ({result.error})" if result.error else ""),
                f"{result.throughput:.1f}",
                f"{ratio:.0%}",
                str(result.requests),
                str(sum(result.faults.values())),
                str(retries),
                result.slowdowns(),
                f"{result.stats.get('bilicrawl/throttle/max_delay', 0):g}",
                verdict,
            ]
        )
    section.add(
        Table(
            [
                "faults",
                "wall (s)",
                "stored",
                "videos/s",
                "÷ fault-free",
                "requests",
                "faults",
                "retries",
                "slowdowns by reason",
                "longest pause (s)",
                f"≥ {TARGET:.0%}",
            ],
            rows,
            "lrlrrrrrlrl",
        )
    )
    return section
