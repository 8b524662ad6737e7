"""What a correct ``video`` crawl stores, and the check that the stored videos are exactly that."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from tests.fakeapi import videos
from tests.helpers.store import stored_documents

STAT_FIELDS = ("view", "danmaku", "reply", "favorite", "coin", "share", "like")
SCALAR_FIELDS = (
    "aid", "bvid", "title", "desc", "pic", "pubdate", "ctime", "duration", "tid", "tname",
    "copyright", "videos", "tid_v2", "tname_v2", "state", "dynamic",
)  # fmt: skip


def expected_document(aid: int) -> dict[str, Any]:
    """The document a correct crawl stores for *aid*, read off the fake API's data."""
    view = videos.video_view(aid)
    document = {field: view[field] for field in SCALAR_FIELDS}
    document["owner"] = {key: view["owner"][key] for key in ("mid", "name", "face")}
    document["stat"] = {key: view["stat"][key] for key in STAT_FIELDS}
    document["pages"] = [
        {key: page[key] for key in ("cid", "page", "part", "duration")} for page in view["pages"]
    ]
    staff = view.get("staff")
    document["staff"] = (
        [{key: member[key] for key in ("mid", "title", "name")} for member in staff]
        if staff is not None
        else None
    )
    document["tags"] = [
        {key: tag[key] for key in ("tag_id", "tag_name", "tag_type")}
        for tag in videos.video_tags(aid)
    ]
    return document


def stored_videos(settings: dict[str, Any]) -> list[dict[str, Any]]:
    return list(stored_documents(settings["SQLITE_PATH"], "videos"))


def assert_stored_exactly(documents: list[dict[str, Any]], aids: list[int], start: float) -> None:
    counts = Counter(document["aid"] for document in documents)
    assert sorted(counts) == sorted(aids), "every valid video, and nothing else"
    assert set(counts.values()) == {1}, "each video exactly once"
    for document in documents:
        crawled_at = document.pop("crawled_at")
        assert start - 1 <= crawled_at <= time.time() + 1
        assert document == expected_document(document["aid"])
