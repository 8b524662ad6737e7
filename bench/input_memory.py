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
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bilicrawl.ids import av2bv
from tests.fakeapi.process import FakeApi

ROOT = Path(__file__).resolve().parent.parent
SCRAPY = ROOT / ".venv" / "bin" / "scrapy"
VIDEO_PATH = "/x/web-interface/wbi/view/detail"
RUNS = {"baseline": 100, "large": 1_000_000}
CLOSESPIDER_TIMEOUT = 30
SAMPLE_EVERY = 0.5


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


def crawl(api: FakeApi, ids_file: Path, tmp: Path) -> tuple[int, float | None, int]:
    """Run the crawl; return peak RSS (KiB), seconds to the first video request, and
    the number of video requests served."""
    api.reset()
    database = tmp / "x.db"
    database.unlink(missing_ok=True)
    env = {**os.environ, "BILI_API_URL": api.url, "SQLITE_PATH": str(database), "MONGO_URI": ""}
    command = [
        str(SCRAPY), "crawl", "video", "-a", f"ids_file={ids_file}",
        "-s", f"CLOSESPIDER_TIMEOUT={CLOSESPIDER_TIMEOUT}",
    ]  # fmt: skip
    started = time.time()
    with (tmp / f"{ids_file.stem}.log").open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)  # noqa: S603
        peak = 0
        while process.poll() is None:
            peak = max(peak, rss_kib(process.pid) or 0)
            time.sleep(SAMPLE_EVERY)
    videos = [entry["t"] for entry in api.log() if entry["path"] == VIDEO_PATH]
    first = min(videos) - started if videos else None
    return peak, first, len(videos)


def main() -> None:
    if not SCRAPY.exists():
        sys.exit(f"{SCRAPY} not found: run `make test` first to create the environment")
    results = {}
    with FakeApi() as api, tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        for name, lines in RUNS.items():
            ids_file = write_ids_file(tmp / f"{name}.txt", lines)
            size = ids_file.stat().st_size / 2**20
            print(f"{name}: {lines:,} lines ({size:.1f} MiB), crawling for "
                  f"{CLOSESPIDER_TIMEOUT} s...", flush=True)
            results[name] = crawl(api, ids_file, tmp)
    print(f"\n{'ids file':>10} {'lines':>10} {'peak RSS':>10} {'first video':>12} {'videos':>7}")
    for name, (peak, first, videos) in results.items():
        shown = f"{first:.2f} s" if first is not None else "none"
        print(f"{name:>10} {RUNS[name]:>10,} {peak / 1024:>6.1f} MiB {shown:>12} {videos:>7}")
    ratio = results["large"][0] / results["baseline"][0]
    print(f"\npeak RSS, large / baseline: {ratio:.2f}")


if __name__ == "__main__":
    main()
