"""The ceiling: a raw aiohttp client, as little work per video as Python allows.

Run as::

    python -m bench.raw_client BASE_URL IDS_FILE RESULT_JSON [--concurrency 64]

Fetches ``BASE_URL/x/web-interface/wbi/view/detail?aid=AID`` for each line of
the ids file, *concurrency* at a time over one session (aiohttp's defaults:
keep-alive, gzip accepted and decoded), and ``json.loads`` each body; counts the
answers that are HTTP 200 with ``code`` 0, and writes the counts to RESULT_JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import aiohttp

VIDEO_PATH = "/x/web-interface/wbi/view/detail"


async def crawl(base_url: str, aids: list[str], concurrency: int) -> dict[str, int]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for aid in aids:
        queue.put_nowait(f"{base_url.rstrip('/')}{VIDEO_PATH}?aid={aid}")
    counts = {"responses": 0, "videos": 0, "errors": 0}

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            url = queue.get_nowait()
            try:
                async with session.get(url) as response:
                    body = await response.read()
                counts["responses"] += 1
                if response.status == 200 and json.loads(body)["code"] == 0:
                    counts["videos"] += 1
            except (aiohttp.ClientError, ValueError, KeyError):
                counts["errors"] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_client", description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("ids_file")
    parser.add_argument("result")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with Path(args.ids_file).open(encoding="utf-8") as lines:
        aids = [line.strip() for line in lines if line.strip()]
    counts = asyncio.run(crawl(args.base_url, aids, args.concurrency))
    Path(args.result).write_text(json.dumps(counts), encoding="utf-8")


if __name__ == "__main__":
    main()
