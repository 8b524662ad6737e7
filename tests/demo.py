"""``make demo``: crawl videos from the fake Bilibili API into SQLite and show them.

Starts the fake API, writes an ids file mixing av numbers, BV ids, video URLs
and a few bad or unavailable ids, runs ``scrapy crawl video`` on it exactly as a
user would (only the hosts point at the fake API), prints what was stored in
``data/demo.db`` and stops the server.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from pathlib import Path

from bilicrawl.ids import av2bv
from tests.fakeapi.process import FakeApi
from tests.helpers.store import stored_documents

ROOT = Path(__file__).resolve().parent.parent
DATABASE = ROOT / "data" / "demo.db"
VIDEOS = 60


def demo_ids() -> list[str]:
    """Valid videos in every input form, then inputs the crawl must skip or drop."""
    rng = random.Random(2026)
    aids = [rng.randrange(1, 2**30) for _ in range(VIDEOS // 2)]
    aids += [rng.randrange(2**30, 2**51) for _ in range(VIDEOS - len(aids))]
    lines = []
    for index, aid in enumerate(aids):
        form = index % 3
        if form == 0:
            lines.append(f"av{aid}")
        elif form == 1:
            lines.append(av2bv(aid))
        else:
            lines.append(f"https://www.bilibili.com/video/{av2bv(aid)}/?p=1")
    lines += [
        "# unavailable videos: the API answers with an error code",
        "404",
        "62002",
        "# not video ids at all: logged and counted",
        "BV1notanid00",
        "https://b23.tv/abc123",
    ]
    return lines


def main() -> None:
    DATABASE.unlink(missing_ok=True)
    with FakeApi() as api, tempfile.TemporaryDirectory() as tmp:
        ids_file = Path(tmp) / "ids.txt"
        ids_file.write_text("\n".join(demo_ids()) + "\n", encoding="utf-8")
        command = [
            sys.executable, "-m", "scrapy", "crawl", "video",
            "-a", f"ids_file={ids_file}",
            "-s", f"BILI_API_URL={api.url}",
            "-s", f"BILI_STORE_URI=sqlite:///{DATABASE.resolve()}",
            "-s", "BILI_THROTTLE_MAX_RPS=50",
            "-s", "LOG_LEVEL=INFO",
        ]  # fmt: skip
        print("$", " ".join(command), flush=True)
        subprocess.run(command, cwd=ROOT, check=True)  # noqa: S603 (our own command)
    videos = sorted(stored_documents(DATABASE, "videos"), key=lambda video: video["pubdate"])
    print(f"\n{len(videos)} videos stored in {DATABASE.relative_to(ROOT)}:\n")
    print(f"{'aid':>16}  {'bvid':12}  {'parts':>5}  {'views':>11}  {'tags':>4}  title")
    for video in videos:
        print(
            f"{video['aid']:>16}  {video['bvid']:12}  {len(video['pages']):>5}  "
            f"{video['stat']['view']:>11,}  {len(video['tags'] or ()):>4}  {video['title']}"
        )


if __name__ == "__main__":
    main()
