"""BILI_PSEUDONYMIZE: keyed user-id hashes and no personal fields in stored documents."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from scrapy.exceptions import NotConfigured

from bilicrawl.config import ConfigError
from bilicrawl.items import (
    Official,
    RelationItem,
    StaffMember,
    UserItem,
    UserStubItem,
    Vip,
)
from bilicrawl.pipelines.documents import DocumentHandoff, document
from bilicrawl.pipelines.pseudonymize import PseudonymizePipeline, Pseudonymizer
from tests.helpers.items import build_crawler, make_video
from tests.utils import project_settings

KEY = "a-test-key-of-some-length"


def make_user(mid: int = 2) -> UserItem:
    return UserItem(
        mid=mid, name="碧诗", sex="男", face="https://i2.hdslb.com/bfs/face/ef.jpg",
        sign="签名", level=6, birthday="09-19", silence=0, is_senior_member=0,
        official=Official(role=2, title="bilibili创始人（站长）", desc="", type=0),
        vip=Vip(type=2, status=1, label="十年大会员"), live_room=None, follower=969999,
        following=234, archive_count=37, article_count=0, likes=3547978, archive_view=None,
        article_view=None, crawled_at=1700000000,
    )  # fmt: skip


def test_the_pseudonym_is_a_keyed_63_bit_hash() -> None:
    pseudonymizer = Pseudonymizer(KEY)
    digest = hmac.new(KEY.encode(), b"2", hashlib.sha256).digest()
    assert pseudonymizer.pseudonym(2) == int.from_bytes(digest[:8], "big") >> 1
    assert pseudonymizer.pseudonym(2) == Pseudonymizer(KEY).pseudonym(2), "stable"
    assert pseudonymizer.pseudonym(2) != Pseudonymizer(KEY + "x").pseudonym(2)
    values = {pseudonymizer.pseudonym(mid) for mid in range(1, 2001)}
    assert len(values) == 2000
    assert all(0 <= value < 2**63 for value in values)


def test_a_video_keeps_its_shape_without_uploader_names() -> None:
    item = make_video(staff=[StaffMember(mid=7, title="UP主", name="某人")])
    stored = document(item)
    Pseudonymizer(KEY).apply(type(item), stored)
    pseudonym = Pseudonymizer(KEY).pseudonym
    assert stored["owner"] == {"mid": pseudonym(item.owner.mid)}
    assert stored["staff"] == [{"mid": pseudonym(7), "title": "UP主"}]
    assert stored["title"] == item.title
    solo = document(make_video(staff=None))
    Pseudonymizer(KEY).apply(type(item), solo)
    assert solo["staff"] is None


def test_users_and_edges_are_hashed_and_stripped() -> None:
    pseudonym = Pseudonymizer(KEY).pseudonym
    user = document(make_user())
    Pseudonymizer(KEY).apply(UserItem, user)
    assert user["mid"] == pseudonym(2)
    assert not {"name", "face", "sign", "birthday"} & set(user)
    assert user["official"]["title"] == "bilibili创始人（站长）"
    edge = document(RelationItem(src_mid=2, dst_mid=3, mtime=1, crawled_at=2))
    Pseudonymizer(KEY).apply(RelationItem, edge)
    assert (edge["src_mid"], edge["dst_mid"]) == (pseudonym(2), pseudonym(3))
    assert Pseudonymizer(KEY).key(RelationItem, (2, 3)) == (pseudonym(2), pseudonym(3))


def test_the_pipeline_hands_the_stripped_document_to_the_store() -> None:
    crawler = build_crawler({"BILI_PSEUDONYMIZE": True, "BILI_PSEUDONYM_KEY": KEY})
    pipeline = PseudonymizePipeline.from_crawler(crawler)
    handoff = DocumentHandoff.for_crawler(crawler)
    item = UserStubItem(
        mid=2, name="碧诗", face="f", sign="s",
        official=make_user().official, vip=make_user().vip,  # type: ignore[arg-type]
    )  # fmt: skip
    handoff.give(item, document(item))
    assert pipeline.process_item(item) is item
    stored = handoff.take(item)
    assert stored["mid"] == Pseudonymizer(KEY).pseudonym(2)
    assert {"name", "face", "sign"}.isdisjoint(stored)


def test_off_by_default() -> None:
    with pytest.raises(NotConfigured):
        PseudonymizePipeline.from_crawler(build_crawler(project_settings()))


@pytest.mark.parametrize(("key", "says"), [("", "not set"), ("short", "too short")])
def test_refuses_to_start_without_a_real_key(key: str, says: Any) -> None:
    crawler = build_crawler({"BILI_PSEUDONYMIZE": "true", "BILI_PSEUDONYM_KEY": key})
    with pytest.raises(ConfigError, match=f"BILI_PSEUDONYM_KEY.*{says}"):
        PseudonymizePipeline.from_crawler(crawler)
