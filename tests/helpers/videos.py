"""Video ids for crawls: samples of valid aids and ids files in every accepted form."""

from __future__ import annotations

import random
from pathlib import Path

from bilicrawl.ids import av2bv
from tests.fakeapi import videos


def sample_aids(count: int, seed: int) -> list[int]:
    """Valid aids below and far above 2**32 (recent uploads), none of them reserved."""
    rng = random.Random(seed)
    aids: set[int] = set()
    while len(aids) < count:
        aid = rng.randrange(1, 2**32) if len(aids) % 2 else rng.randrange(2**32, 2**51)
        if aid not in videos.ERROR_AIDS:
            aids.add(aid)
    return sorted(aids)


def write_ids_file(path: Path, aids: list[int]) -> Path:
    """One id per line in every accepted form, with comments and blank lines."""
    forms = [
        str,
        lambda aid: f"av{aid}",
        av2bv,
        lambda aid: f"https://www.bilibili.com/video/{av2bv(aid)}/?p=1&vd_source=x",
        lambda aid: f"https://m.bilibili.com/video/av{aid}",
    ]
    lines = ["# mixed inputs", ""]
    lines += [forms[index % len(forms)](aid) for index, aid in enumerate(aids)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
