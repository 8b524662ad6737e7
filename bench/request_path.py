"""Request path: videos/s and CPU per response of bilicrawl, plain Scrapy and raw aiohttp.

Prepares N videos, records the fake API's answers for them and serves them from
a static replay (:mod:`bench.replay`), then runs every client as its own child
process on the same videos, K times, in a rotating order (repetition ``r``
starts with client ``r``), after a warm-up run of each on one video (not counted)
and a second one-video run, whose CPU time is reported as the client's start-up:

- ``bilicrawl-fake``: ``scrapy crawl video`` with every middleware, extension
  and pipeline on, politeness off (``POLITENESS_OFF``), against the fake API;
- ``bilicrawl``: the same against the static replay;
- one ``bilicrawl+NAME`` per variant (``VARIANTS``, ``--variant``): the same
  with extra arguments;
- ``plain-scrapy``: :mod:`bench.plain_spider`, Scrapy's defaults, dict items, no
  pipeline, against the static replay;
- ``raw-aiohttp``: :mod:`bench.raw_client`, 64 concurrent, against the static replay.

Each run's wall time gives videos/s; its CPU time (user + system, from
``os.wait4``, start-up included) divided by the responses the server served
(nav, spi and retries included) gives CPU ms per response; its ``VmHWM`` the
peak RSS. A run that did not get every video (bilicrawl: rows in its SQLite
store) is reported as failed, with no rate.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import statistics
from typing import TYPE_CHECKING, Any

from bench.common import (
    PYTHON,
    ChildResult,
    Options,
    Section,
    Table,
    child_env,
    machine_facts,
    min_med_max,
    run_child,
    sample_aids,
    spread,
    stored_count,
    today,
    write_aids,
)
from bench.replay import ReplayServer, record
from tests.fakeapi.process import FakeApi

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    Prepared = tuple[list[str], dict[str, str], Callable[[], tuple[int, str]]]
    """A client's command, environment, and the function reading (videos, error) after it."""

POLITENESS_OFF = {
    "BILI_THROTTLE_ENABLED": "False",
    "AUTOTHROTTLE_ENABLED": "False",
    "CONCURRENT_REQUESTS": "64",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "64",
    "BILI_CIRCUIT_BREAKER_THRESHOLD": "0",
    "BILI_DEAD_HOST_THRESHOLD": "0",
}
"""``-s`` settings of every bilicrawl run here: no throttle, 64 concurrent, no breakers."""

VARIANTS: dict[str, list[str]] = {
    # More runs of bilicrawl against the static replay, each with extra `scrapy crawl`
    # arguments on top of POLITENESS_OFF; each is reported as "bilicrawl+NAME", with its
    # ratios to the baselines. `--variant NAME='-s X=Y ...'` adds one for a single run.
    # bilicrawl's handler signs requests, then hands them to BILI_DOWNLOAD_HANDLER or, with
    # BILI_IMPERSONATE, to scrapy-impersonate's: the optional TLS fingerprint's cost.
    # Another handler, for example: "aiohttp-handler": ["-s", "BILI_DOWNLOAD_HANDLER="
    #     "scrapy.core.downloader.handlers._aiohttp.AiohttpDownloadHandler"],
    "impersonate": ["-s", "BILI_IMPERSONATE=chrome"],
}

TARGETS = {"plain-scrapy": 1.5, "raw-aiohttp": 0.25}
"""bilicrawl (static replay) videos/s over the baseline's, per repetition: the issue's targets."""


@dataclasses.dataclass
class Run:
    """One measured run of one client."""

    client: str
    repetition: int
    child: ChildResult
    videos: int
    responses: int
    first_request: float | None
    """Seconds from the start of the process to the server's first request."""
    exit_after: float | None
    """Seconds from the server's last request to the exit of the process."""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def rate(self) -> float:
        return self.videos / self.child.wall

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.child.cpu / max(self.responses, 1)


@dataclasses.dataclass
class Bench:
    """What every run needs: the servers and where to put things."""

    api: FakeApi
    replay: ReplayServer
    workdir: Path
    timeout: float

    def server_url(self, server: str) -> str:
        return self.api.url if server == "fake" else self.replay.url

    def reset(self, server: str) -> None:
        if server == "fake":
            self.api.reset()
        else:
            self.replay.reset()

    def served(self, server: str) -> tuple[int, float | None, float | None]:
        """Requests *server* answered since its reset, and when the first and last came."""
        if server == "fake":
            times = [entry["t"] for entry in self.api.log()]
            if not times:
                return 0, None, None
            return len(times), min(times), max(times)
        stats = self.replay.stats()
        return stats["requests"], stats["first"], stats["last"]


@dataclasses.dataclass(frozen=True)
class Client:
    """One client: ``scrapy crawl video`` (*module* empty) or ``python -m MODULE``."""

    name: str
    server: str
    """"static" (the replay) or "fake" (the fake API)."""
    module: str = ""
    args: tuple[str, ...] = ()
    """Extra arguments: after ``scrapy crawl video ...``, or after the module's own."""

    def prepare(self, bench: Bench, ids_file: Path, tag: str) -> Prepared:
        """The command, its environment, and the function reading (videos, error) after it."""
        if self.module:
            return self._prepare_module(bench, ids_file, tag)
        return self._prepare_crawl(bench, ids_file, tag)

    def _prepare_crawl(self, bench: Bench, ids_file: Path, tag: str) -> Prepared:
        database = bench.workdir / f"{tag}.db"
        command = [PYTHON, "-m", "scrapy", "crawl", "video", "-a", f"ids_file={ids_file}"]
        for name, value in POLITENESS_OFF.items():
            command += ["-s", f"{name}={value}"]
        command += self.args
        env = child_env(BILI_API_URL=bench.server_url(self.server), SQLITE_PATH=str(database))

        def result() -> tuple[int, str]:
            try:
                return stored_count(database, "videos"), ""
            except Exception as exc:
                return 0, f"no store: {exc}"
            finally:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    database.with_name(database.name + suffix).unlink(missing_ok=True)

        return command, env, result

    def _prepare_module(self, bench: Bench, ids_file: Path, tag: str) -> Prepared:
        result_path = bench.workdir / f"{tag}.json"
        result_path.unlink(missing_ok=True)
        url = bench.server_url(self.server)
        command = [PYTHON, "-m", self.module, url, str(ids_file), str(result_path), *self.args]

        def result() -> tuple[int, str]:
            try:
                counts: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                return 0, f"no result: {exc}"
            return int(counts.get("videos", counts.get("item_scraped_count")) or 0), ""

        return command, child_env(), result


def clients(options: Options) -> list[Client]:
    """Every client, in the order of the first repetition."""
    found = [
        Client("bilicrawl", "static"),
        Client("plain-scrapy", "static", "bench.plain_spider"),
        Client("raw-aiohttp", "static", "bench.raw_client", ("--concurrency", "64")),
        Client("bilicrawl-fake", "fake"),
    ]
    for name, extra in {**VARIANTS, **options.variants}.items():
        found.append(Client(f"bilicrawl+{name}", "static", args=tuple(extra)))
    return found


def measure(bench: Bench, client: Client, ids_file: Path, count: int, rep: int) -> Run:
    """Run *client* once on the *count* videos of *ids_file*, as repetition *rep* (counted
    from 0; -2: the warm-up, -1: the start-up run)."""
    tag = f"{client.name}-{rep + 1 if rep >= 0 else ('warmup', 'startup')[rep + 2]}"
    command, env, result = client.prepare(bench, ids_file, tag)
    bench.reset(client.server)
    log_path = bench.workdir / f"{tag}.log"
    child = run_child(command, env=env, timeout=bench.timeout, log_path=log_path)
    responses, first, last = bench.served(client.server)
    exited = child.started_at + child.wall
    videos, error = result()
    if child.timed_out:
        error = f"timed out after {bench.timeout:.0f} s"
    elif child.returncode != 0:
        error = f"exit status {child.returncode}"
    elif videos != count:
        error = error or f"{videos} of {count} videos"
    if error:
        error += f" (log: {log_path})"
    return Run(
        client.name,
        rep,
        child,
        videos,
        responses,
        first_request=None if first is None else first - child.started_at,
        exit_after=None if last is None else exited - last,
        error=error,
    )


def run(options: Options) -> Section:
    count, repeats = options.videos, options.repeats
    workdir = options.workdir / "request"
    workdir.mkdir(parents=True, exist_ok=True)
    aids = sample_aids(count, seed=2026)
    ids_file = write_aids(workdir / "ids.txt", aids)
    one_file = write_aids(workdir / "one.txt", aids[:1])
    recording = workdir / "recording.json"
    found = clients(options)
    runs: list[Run] = []

    print(f"request path: recording the fake API's answers for {count:,} videos", flush=True)
    with FakeApi(require_wbi=False) as recorder:
        sizes = record(recorder.url, aids, recording)
    with FakeApi() as api, ReplayServer(recording) as replay:
        bench = Bench(api, replay, workdir, timeout=60 + count / 20)
        print(
            f"request path: {len(found)} clients, a warm-up run and a start-up run of each "
            "on one video",
            flush=True,
        )
        for rep in (-2, -1):
            for client in found:
                single = measure(bench, client, one_file, 1, rep)
                if rep == -1:
                    runs.append(single)
                if not single.ok:
                    print(f"  {client.name} on one video failed: {single.error}", flush=True)
        for rep in range(repeats):
            shift = rep % len(found)
            for client in found[shift:] + found[:shift]:
                result = measure(bench, client, ids_file, count, rep)
                runs.append(result)
                shown = (
                    f"{result.rate:7.1f} videos/s, {result.cpu_ms:5.2f} ms CPU/response"
                    if result.ok
                    else f"FAILED: {result.error}"
                )
                print(f"  repetition {rep + 1}/{repeats} {client.name:<24} {shown}", flush=True)
                if not result.ok:
                    print("    " + result.child.log_tail(8).replace("\n", "\n    "), flush=True)
    names = [client.name for client in found]
    return report(options, names, runs, count=count, repeats=repeats, sizes=sizes)


def _ratios(
    runs: list[Run], numerator: str, denominator: str, speed: Callable[[Run], float]
) -> list[float]:
    """*speed* of *numerator* over *denominator*, per repetition where both succeeded."""
    by_rep: dict[int, dict[str, Run]] = {}
    for result in runs:
        by_rep.setdefault(result.repetition, {})[result.client] = result
    ratios = []
    for pair in by_rep.values():
        top, bottom = pair.get(numerator), pair.get(denominator)
        if top and bottom and top.ok and bottom.ok:
            ratios.append(speed(top) / speed(bottom))
    return ratios


def report(
    options: Options,
    names: list[str],
    runs: list[Run],
    *,
    count: int,
    repeats: int,
    sizes: dict[str, float],
) -> Section:
    section = Section("request", "Request path: bilicrawl against plain Scrapy and raw aiohttp")
    politeness = " ".join(f"-s {name}={value}" for name, value in POLITENESS_OFF.items())
    variants = {**VARIANTS, **options.variants}
    shown = "".join(
        f" bilicrawl+{name} adds `{shlex.join(extra)}`." for name, extra in variants.items()
    )
    section.add(
        f"`{options.command}`, {today()}; {machine_facts()}.",
        f"{count:,} videos, {repeats} repetitions in rotating order, after a warm-up run "
        f"(not counted) and a start-up run of each client on one video; each client is its "
        f"own process "
        f"(`python -m ...`), on the same URLs "
        f"(`/x/web-interface/wbi/view/detail?aid=...`). The static replay serves the fake "
        f"API's recorded bytes (video answers {sizes['mean'] / 1024:.1f} KiB on average, "
        f"{sizes['mean_gzip'] / 1024:.1f} KiB gzipped) and ignores `w_rid`/`wts`. "
        f"bilicrawl runs `scrapy crawl video -a ids_file=...` with the project's settings "
        f"and `{politeness}`; plain-scrapy is `python -m bench.plain_spider` (Scrapy's "
        f"defaults plus 64 concurrent and no delay, dict items, no pipeline); raw-aiohttp "
        f"is `python -m bench.raw_client` (64 concurrent, `json.loads` of each body).{shown}",
        "Videos/s is the videos over the process's wall time, start-up and shutdown included "
        "(the last two columns: from the start to the server's first request, from its last "
        "request to the exit); CPU per response is the process's user + system CPU time "
        "(start-up included) over the requests the server answered (bilicrawl's include nav, "
        "spi and any retries); start-up CPU is the CPU time of the whole one-video run; peak "
        "RSS is the process's high-water mark (`VmHWM`). "
        "Median (min–max) over the repetitions:",
    )
    rows = []
    startup = {result.client: result for result in runs if result.repetition == -1}
    runs = [result for result in runs if result.repetition >= 0]
    for name in names:
        mine = [result for result in runs if result.client == name]
        good = [result for result in mine if result.ok]
        single = startup.get(name)
        startup_cpu = f"{single.child.cpu:.2f}" if single and single.ok else "failed"
        failed = len(mine) - len(good)
        server = "fake API" if name == "bilicrawl-fake" else "static replay"
        if not good:
            rows.append(
                [name, server, "failed", "", "", "", "", "", startup_cpu, f"{failed}/{len(mine)}"]
            )
            continue
        rows.append(
            [
                name,
                server,
                spread([r.rate for r in good]),
                spread([r.cpu_ms for r in good], "{:.2f}"),
                spread([r.responses for r in good]),
                spread([r.child.peak_rss_kib / 1024 for r in good if r.child.peak_rss_kib]),
                spread([r.first_request for r in good if r.first_request is not None], "{:.2f}"),
                spread([r.exit_after for r in good if r.exit_after is not None], "{:.2f}"),
                startup_cpu,
                f"{failed}/{len(mine)}" if failed else "0",
            ]
        )
    section.add(
        Table(
            [
                "client",
                "server",
                "videos/s",
                "CPU ms/response",
                "responses",
                "peak RSS MiB",
                "first request (s)",
                "exit after last (s)",
                "start-up CPU (s)",
                "failed runs",
            ],
            rows,
            "llrrrrrrrr",
        )
    )

    section.add(
        "Ratios per repetition (both runs of the pair succeeded), min / median / max; a target "
        "is met when the median ratio reaches it. The CPU ratio is the baseline's CPU per "
        "response over bilicrawl's (above 1: bilicrawl spends less per response)."
    )
    ratio_rows = []
    for name in names:
        if not name.startswith("bilicrawl") or name == "bilicrawl-fake":
            continue
        for baseline, target in TARGETS.items():
            ratios = _ratios(runs, name, baseline, lambda run: run.rate)
            # Higher is cheaper: the baseline's CPU per response over this client's.
            cpu = _ratios(runs, name, baseline, lambda run: 1 / run.cpu_ms)
            if ratios:
                median = statistics.median(ratios)
                everywhere = sum(ratio >= target for ratio in ratios)
                verdict = (
                    f"{'**met**' if median >= target else '**not met**'} "
                    f"({everywhere}/{len(ratios)} repetitions)"
                )
            else:
                verdict = "no successful pair"
            ratio_rows.append(
                [
                    f"{name} ÷ {baseline}",
                    min_med_max(ratios),
                    min_med_max(cpu),
                    f"≥ {target}",
                    verdict,
                ]
            )
    section.add(
        Table(
            ["ratio", "videos/s", "CPU per response", "target (videos/s)", "target"],
            ratio_rows,
            "lrrrl",
        )
    )
    return section
