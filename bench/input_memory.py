"""Memory and start-up time of ``scrapy crawl video`` on a huge ids file, against a small one.

Run from the project root::

    .venv/bin/python -m bench.input_memory

Starts the fake API, then runs the real command twice, each for
``CLOSESPIDER_TIMEOUT`` seconds at the shipped politeness (1 request/s): on a
1,000,000-line ids file and on a 100-line one, the baseline. It samples the
crawl process's resident memory (``VmRSS`` in ``/proc/<pid>/status``) every
0.5 s and prints the peak of each run, their ratio, and how long after the
command started the fake API saw its first video request. The ids file is read
as the crawl has room for it (``BILI_INPUT_BACKLOG``), so both runs should look
alike; before that, the big file took 200 s and 1.9 GB before the first request.
``python -m bench`` runs it too, as its ``input`` benchmark (:func:`run`).
"""

from __future__ import annotations

import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import PYTHON, ROOT, VIDEO_PATH, Section, Table, child_env, machine_facts, today
from bilicrawl.ids import av2bv
from tests.fakeapi.process import FakeApi

if TYPE_CHECKING:
    from bench.common import Options

RUNS = {"baseline": 100, "large": 1_000_000}
CLOSESPIDER_TIMEOUT = 30
QUICK_TIMEOUT = 10
SAMPLE_EVERY = 0.5

Result = tuple[int, float | None, int]
"""Peak RSS (KiB), seconds to the first video request (None: none), video requests served."""


def write_ids_file(path: Path, lines: int) -> Path:
    """*lines* distinct videos, as av numbers, BV ids and URLs in turn."""
    rng = random.Random(lines)  # noqa: S311 (test data)
    forms = (
        lambda aid: f"av{aid}",
        av2bv,
        lambda aid: f"https://www.bilibili.com/video/{av2bv(aid)}/?p=1",
    )
    aids = rng.sample(range(1, 2**32), lines)
    with path.open("w", encoding="utf-8") as out:
        out.writelines(f"{forms[index % 3](aid)}\n" for index, aid in enumerate(aids))
    return path


def rss_kib(pid: int) -> int | None:
    """The resident set size of *pid* in KiB, or None once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def crawl(api: FakeApi, ids_file: Path, tmp: Path, timeout: int = CLOSESPIDER_TIMEOUT) -> Result:
    """Run the crawl for *timeout* seconds; return what :data:`Result` says."""
    api.reset()
    database = tmp / "x.db"
    database.unlink(missing_ok=True)
    env = child_env(BILI_API_URL=api.url, SQLITE_PATH=str(database))
    command = [
        PYTHON, "-m", "scrapy", "crawl", "video", "-a", f"ids_file={ids_file}",
        "-s", f"CLOSESPIDER_TIMEOUT={timeout}",
    ]  # fmt: skip
    started = time.time()
    with (tmp / f"{ids_file.stem}.log").open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)  # noqa: S603
        try:
            peak = 0
            while process.poll() is None:
                peak = max(peak, rss_kib(process.pid) or 0)
                time.sleep(SAMPLE_EVERY)
                if time.time() - started > timeout + 120:
                    raise TimeoutError(f"{command} still runs after {timeout + 120} s")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    videos = [entry["t"] for entry in api.log() if entry["path"] == VIDEO_PATH]
    first = min(videos) - started if videos else None
    return peak, first, len(videos)


def measure(timeout: int = CLOSESPIDER_TIMEOUT) -> dict[str, Result]:
    """Both runs, printing what is going on."""
    results = {}
    with FakeApi() as api, tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        for name, lines in RUNS.items():
            ids_file = write_ids_file(tmp / f"{name}.txt", lines)
            size = ids_file.stat().st_size / 2**20
            print(
                f"{name}: {lines:,} lines ({size:.1f} MiB), crawling for {timeout} s...",
                flush=True,
            )
            results[name] = crawl(api, ids_file, tmp, timeout)
    return results


def table(results: dict[str, Result]) -> Table:
    rows = []
    for name, (peak, first, videos) in results.items():
        shown = f"{first:.2f} s" if first is not None else "none"
        rows.append([name, f"{RUNS[name]:,}", f"{peak / 1024:.1f} MiB", shown, str(videos)])
    return Table(["ids file", "lines", "peak RSS", "first video request", "videos"], rows)


def ratio(results: dict[str, Result]) -> float:
    return results["large"][0] / results["baseline"][0]


def run(options: Options) -> Section:
    """The benchmark for ``python -m bench``: a section of the report."""
    timeout = QUICK_TIMEOUT if options.quick else CLOSESPIDER_TIMEOUT
    results = measure(timeout)
    section = Section("input", "Huge ids files: memory and start-up")
    section.add(
        f"`{options.command}` (alone: `.venv/bin/python -m bench.input_memory`), {today()}; "
        f"{machine_facts()}.",
        f"Runs the real `scrapy crawl video` for {timeout} s (`-s CLOSESPIDER_TIMEOUT="
        f"{timeout}`) at the shipped politeness (1 request/s) against the fake API, on a "
        f"{RUNS['large']:,}-line ids file and on a {RUNS['baseline']:,}-line one (the "
        f"baseline), sampling the crawl's resident memory every {SAMPLE_EVERY} s.",
        table(results),
        f"Peak RSS, large / baseline: **{ratio(results):.2f}**.",
    )
    return section


def main() -> None:
    results = measure()
    print()
    print(table(results).markdown())
    print(f"\npeak RSS, large / baseline: {ratio(results):.2f}")


if __name__ == "__main__":
    main()
