"""BILI_PSEUDONYMIZE: keyed user-id hashes and no personal fields in stored documents."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

import pytest
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler

from bilicrawl.config import ConfigError
from bilicrawl.items import (
    Official,
    RelationItem,
    StaffMember,
    UserItem,
    UserStatItem,
    Vip,
)
from bilicrawl.parsers.user import user_stat_snapshot
from bilicrawl.pipelines.store import StorePipeline
from bilicrawl.pseudonyms import Pseudonymizer, pseudonymizer_from_settings
from bilicrawl.store.documents import document
from tests.helpers.items import build_crawler, make_stub, make_video
from tests.helpers.store import stored_documents
from tests.utils import project_settings

if TYPE_CHECKING:
    from pathlib import Path

KEY = "a-test-key-of-some-length"


def make_user(mid: int = 2) -> UserItem:
    return UserItem(
        mid=mid,
        name="碧诗",
        sex="男",
        face="https://i2.hdslb.com/bfs/face/ef.jpg",
        sign="签名",
        level=6,
        birthday="09-19",
        silence=0,
        is_senior_member=0,
        official=Official(role=2, title="bilibili创始人（站长）", desc="", type=0),
        vip=Vip(type=2, status=1, label="十年大会员"),
        live_room=None,
        follower=969999,
        following=234,
        archive_count=37,
        article_count=0,
        likes=3547978,
        archive_view=None,
        article_view=None,
        crawled_at=1700000000,
    )


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
    snapshot = document(user_stat_snapshot(make_user()))
    Pseudonymizer(KEY).apply(UserStatItem, snapshot)
    assert snapshot["mid"] == pseudonym(2), "a user's series joins its pseudonymised profile"


@deferred_f_from_coro_f
async def test_the_pipeline_validates_the_item_as_crawled_and_stores_it_stripped(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "bilicrawl.db"
    crawler = build_crawler(
        {
            **project_settings(),
            "MONGO_URI": "",
            "SQLITE_PATH": str(db_path),
            "BILI_PSEUDONYMIZE": True,
            "BILI_PSEUDONYM_KEY": KEY,
        }
    )
    pipeline = build_from_crawler(StorePipeline, crawler)
    item = make_stub(2)
    await pipeline.open_spider()
    assert await pipeline.process_item(item) is item
    await pipeline.close_spider()

    [stored] = stored_documents(db_path, "users")
    assert stored["mid"] == Pseudonymizer(KEY).pseudonym(2)
    assert {"name", "face", "sign"}.isdisjoint(stored)
    assert (item.mid, item.name) == (2, "碧诗 🎉"), "the item itself is left as crawled"
    assert crawler.stats.get_value("bilicrawl/items/UserStubItem") == 1


def test_off_by_default() -> None:
    assert pseudonymizer_from_settings(Settings(project_settings())) is None


@pytest.mark.parametrize(("key", "says"), [("", "not set"), ("short", "too short")])
def test_refuses_to_start_without_a_real_key(key: str, says: Any) -> None:
    settings = Settings({"BILI_PSEUDONYMIZE": "true", "BILI_PSEUDONYM_KEY": key})
    with pytest.raises(ConfigError, match=f"BILI_PSEUDONYM_KEY.*{says}"):
        pseudonymizer_from_settings(settings)
