"""Saved real responses under tests/fixtures, their parsed items, and the bytes stored of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bilicrawl.items import VideoItem
from bilicrawl.parsers.video import parse_tags, parse_view, parse_view_detail
from tests.utils import FIXTURES, payload

CRAWLED_AT = 1700000000
"""The crawl time the parsers are given."""
DETAIL_CASE = FIXTURES / "view_detail" / "BV117411r7R1.json"
VIEW_CASES = sorted(
    path for path in (FIXTURES / "view").glob("*.json") if not path.name.endswith(".expected.json")
)


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# The user area's real examples (only the recArchivesByKeywords page is hand-written).
ACC_INFO = payload("acc_info/2.json")
CARD = payload("card/2.json")
UPSTAT = payload("upstat/example.json")
RELATION_STAT = payload("relation_stat/332704117.json")
FOLLOWERS = payload("followers/example.json")
FOLLOWINGS = payload("followings/example.json")
FANS = payload("fans/example.json")
ARC_SEARCH = payload("arc_search/946974.json")
REC_ARCHIVES = payload("rec_archives/hand_written.json")

STORED = FIXTURES / "stored_documents"


def golden_items() -> dict[str, VideoItem]:
    """The items parsed from the saved responses, by the name of their stored-bytes file.

    ``view+view_detail_tag``, the two requests of ``BILI_VIDEO_ENDPOINT=view``,
    gives the same video as ``view_detail``, so the same bytes.
    """
    items = {
        f"view__{path.stem}": parse_view(load(path)["data"], crawled_at=CRAWLED_AT)
        for path in sorted((FIXTURES / "view").glob("*.json"))
        if not path.name.endswith(".expected.json")
    }
    detail = load(FIXTURES / "view_detail" / "BV117411r7R1.json")["data"]
    items["view_detail__BV117411r7R1"] = parse_view_detail(detail, crawled_at=CRAWLED_AT)
    view = parse_view(load(FIXTURES / "view" / "BV117411r7R1.json")["data"], crawled_at=CRAWLED_AT)
    view.tags = parse_tags(load(FIXTURES / "view_detail_tag" / "BV117411r7R1.json")["data"])
    items["view+view_detail_tag__BV117411r7R1"] = view
    return items


def stored_bytes(case: str) -> str:
    name = case.replace("view+view_detail_tag__", "view_detail__")
    return (STORED / f"{name}.json").read_bytes().decode("utf-8")
