"""End-to-end: every spider stores the same documents through ``BILI_STORE_URI`` in SQLite
and in MongoDB (mongomock, in-process), and ``-a resume=true`` reads them back from either."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_f_from_coro_f

from bilicrawl.items import VideoItem
from bilicrawl.spiders.article import ArticleSpider
from bilicrawl.spiders.danmaku import DanmakuSpider
from bilicrawl.spiders.live import LiveSpider
from bilicrawl.spiders.relation import RelationSpider
from bilicrawl.spiders.user import UserSpider
from bilicrawl.spiders.video import VideoSpider
from bilicrawl.store import store_from_settings
from bilicrawl.store.documents import COLLECTIONS
from tests.fakeapi import articles, danmaku, graph, live
from tests.helpers.mongo import SharedMongomockClient, let_mongomock_accept_sort
from tests.helpers.videos import sample_aids
from tests.utils import run_crawl

if TYPE_CHECKING:
    from bilicrawl.store.documents import Document

pytestmark = pytest.mark.slow

CRAWLS: dict[str, tuple[type, dict[str, str], set[str]]] = {
    "video": (VideoSpider, {"aids": ",".join(map(str, sample_aids(3, seed=16)))},
              {"videos", "video_stats"}),
    "user": (UserSpider, {"mids": str(graph.SMALL_SEED)}, {"users", "user_stats"}),
    "relation": (RelationSpider, {"mids": str(graph.SMALL_SEED), "depth": "1"},
                 {"relations", "relation_lists", "users"}),
    "article": (ArticleSpider, {"cvids": str(articles.article_cvids()[0])}, {"articles"}),
    "live": (LiveSpider, {"rooms": str(live.LIVE_ROOM)}, {"live_rooms"}),
    "danmaku": (DanmakuSpider, {"cids": str(danmaku.SMALL_CID)},
                {"danmaku", "danmaku_parts"}),
}  # fmt: skip
"""Each spider, small arguments, and the collections its crawl must fill."""

CRAWL_TIMES = frozenset({"crawled_at", "refreshed_at"})


def without_crawl_times(value: Any) -> Any:
    """A document with its crawl times left out: two crawls of the same data differ only there."""
    if isinstance(value, dict):
        return {k: without_crawl_times(v) for k, v in value.items() if k not in CRAWL_TIMES}
    if isinstance(value, list):
        return [without_crawl_times(element) for element in value]
    return value


def everything(settings: dict[str, Any]) -> dict[str, list[Document]]:
    with store_from_settings(Settings(settings)) as store:
        return {name: list(store.documents(name)) for name in COLLECTIONS}


@pytest.fixture
def mongo_uri(monkeypatch: pytest.MonkeyPatch) -> Any:
    let_mongomock_accept_sort(monkeypatch)
    database = f"bilicrawl_test_{uuid.uuid4().hex[:12]}"
    yield f"mongodb://mongomock.invalid:27017/{database}"
    SharedMongomockClient("mongodb://mongomock.invalid:27017").drop_database(database)


@pytest.mark.parametrize("spider", list(CRAWLS))
@deferred_f_from_coro_f
async def test_every_spider_stores_the_same_documents_in_sqlite_and_mongodb(
    spider: str, crawl_settings: dict[str, Any], fakeapi: Any, tmp_path: Path, mongo_uri: str
) -> None:
    spider_class, arguments, filled = CRAWLS[spider]
    base = {**crawl_settings, "BILI_API_URL": fakeapi.url, "BILI_LIVE_API_URL": fakeapi.url,
            "SQLITE_PATH": "", "MONGO_CLIENT_CLASS": SharedMongomockClient}  # fmt: skip
    stored = {}
    for name, uri in (("sqlite", f"sqlite:///{tmp_path}/uri.db"), ("mongodb", mongo_uri)):
        fakeapi.reset()
        settings = {**base, "BILI_STORE_URI": uri}
        result = await run_crawl(spider_class, settings, **arguments)
        assert result.stats["finish_reason"] == "finished", name
        stored[name] = everything(settings)

    sqlite, mongodb = stored["sqlite"], stored["mongodb"]
    assert {name for name, documents in sqlite.items() if documents} == filled
    for name in filled:
        natural_key = COLLECTIONS[name].natural_key
        keys = [tuple(document[field] for field in natural_key) for document in sqlite[name]]
        assert keys == sorted(set(keys)), f"{name}: one document per key, by key"
    assert without_crawl_times(mongodb) == without_crawl_times(sqlite)


@deferred_f_from_coro_f
async def test_resume_reads_what_a_mongodb_store_holds(
    crawl_settings: dict[str, Any], fakeapi: Any, mongo_uri: str
) -> None:
    aids = sample_aids(4, seed=17)
    settings = {**crawl_settings, "BILI_API_URL": fakeapi.url, "BILI_STORE_URI": mongo_uri,
                "MONGO_CLIENT_CLASS": SharedMongomockClient}  # fmt: skip
    await run_crawl(VideoSpider, settings, aids=",".join(map(str, aids[:2])))

    result = await run_crawl(VideoSpider, settings, aids=",".join(map(str, aids)), resume="true")

    assert result.stats["bilicrawl/input/already_stored"] == 2
    fetched = [item.aid for item in result.items if isinstance(item, VideoItem)]
    assert sorted(fetched) == sorted(aids[2:])
    assert [document["aid"] for document in everything(settings)["videos"]] == sorted(aids)
