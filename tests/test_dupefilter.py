from __future__ import annotations

from typing import Any

import pytest
from scrapy import Request, Spider
from scrapy.dupefilters import RFPDupeFilter
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.request import RequestFingerprinter
from scrapy.utils.test import get_crawler

from bilicrawl.distributed import RedisDupeFilter
from bilicrawl.dupefilters import BiliRequestFingerprinter, strip_query_params

API = "https://api.bilibili.com/x/space/wbi/arc/search"
SETTINGS = {
    "REQUEST_FINGERPRINTER_CLASS": "bilicrawl.dupefilters.BiliRequestFingerprinter",
    "BILI_DUPEFILTER_IGNORE_PARAMS": ["w_rid", "wts"],
}


class FakeRedis:
    """The two set commands RFPDupeFilter uses."""

    def __init__(self) -> None:
        self.sets: dict[str, set[str]] = {}

    def sadd(self, key: str, value: str) -> int:
        members = self.sets.setdefault(key, set())
        added = value not in members
        members.add(value)
        return int(added)

    def delete(self, key: str) -> None:
        self.sets.pop(key, None)


class RedisSpider(Spider):
    name = "bili"


@pytest.fixture
def fingerprint() -> Any:
    return build_from_crawler(BiliRequestFingerprinter, get_crawler(Spider, SETTINGS)).fingerprint


@pytest.mark.parametrize(
    "url",
    [
        f"{API}?mid=2&pn=1&wts=1744823207&w_rid=a3cd246bd42c066932752b24694eaf0d",
        f"{API}?mid=2&pn=1&wts=1744829999&w_rid=00000000000000000000000000000000",
        f"{API}?w_rid=a3cd246bd42c066932752b24694eaf0d&pn=1&wts=1744823207&mid=2",
        f"{API}?mid=2&wts=1744823207&pn=1",
    ],
)
def test_signature_is_ignored(fingerprint: Any, url: str) -> None:
    assert fingerprint(Request(url)) == fingerprint(Request(f"{API}?mid=2&pn=1"))


@pytest.mark.parametrize(
    "url",
    [
        f"{API}?mid=2&pn=2&wts=1744823207&w_rid=a3cd246bd42c066932752b24694eaf0d",
        f"{API}?mid=3&pn=1",
        f"{API}?mid=2",
        f"{API}?mid=2&pn=1&wtsx=1",
    ],
)
def test_other_params_count(fingerprint: Any, url: str) -> None:
    assert fingerprint(Request(url)) != fingerprint(Request(f"{API}?mid=2&pn=1"))


def test_unsigned_urls_fingerprint_as_scrapy_does(fingerprint: Any) -> None:
    request = Request(f"{API}?mid=2&pn=1", method="POST", body=b"x")
    assert fingerprint(request) == RequestFingerprinter().fingerprint(request)


def test_configured_params_are_ignored_too() -> None:
    crawler = get_crawler(Spider, {**SETTINGS, "BILI_DUPEFILTER_IGNORE_PARAMS": ["web_location"]})
    fingerprint = crawler.request_fingerprinter.fingerprint
    assert fingerprint(Request(f"{API}?mid=2&web_location=1550101&wts=1")) == fingerprint(
        Request(f"{API}?mid=2")
    )


def test_strip_query_params_keeps_the_rest_verbatim() -> None:
    url = "https://x.test/p?b=%E4%B8%96+1&wts=5&a=&w%5Frid=1&a=2#frag"
    stripped = strip_query_params(url, {"wts", "w_rid"})
    assert stripped == "https://x.test/p?b=%E4%B8%96+1&a=&a=2#frag"
    assert strip_query_params("https://x.test/p", {"wts"}) == "https://x.test/p"
    assert strip_query_params("https://x.test/p?wts=1", {"wts"}) == "https://x.test/p"


def test_scrapy_dupefilter_drops_the_signed_duplicate() -> None:
    crawler = get_crawler(Spider, SETTINGS)
    assert isinstance(crawler.request_fingerprinter, BiliRequestFingerprinter)
    dupefilter = build_from_crawler(RFPDupeFilter, crawler)

    assert not dupefilter.request_seen(Request(f"{API}?mid=2"))
    assert dupefilter.request_seen(Request(f"{API}?mid=2&wts=1744823207&w_rid=ab"))
    assert not dupefilter.request_seen(Request(f"{API}?mid=3&wts=1744823207&w_rid=ab"))


def test_redis_dupefilter_uses_the_same_fingerprints(redis_url: str) -> None:
    crawler = get_crawler(RedisSpider, {**SETTINGS, "REDIS_URL": redis_url})
    dupefilter = RedisDupeFilter.from_spider(crawler._create_spider())
    dupefilter.clear()
    unsigned = Request(f"{API}?mid=2")
    signed = Request(f"{API}?mid=2&wts=1744823207&w_rid=ab")

    try:
        assert not dupefilter.request_seen(unsigned)
        assert dupefilter.request_seen(signed)
        assert not dupefilter.request_seen(Request(f"{API}?mid=3"))
        assert dupefilter.key == "bili:dupefilter"
        assert {member.decode() for member in dupefilter.server.smembers(dupefilter.key)} == {
            crawler.request_fingerprinter.fingerprint(unsigned).hex(),
            crawler.request_fingerprinter.fingerprint(Request(f"{API}?mid=3")).hex(),
        }
    finally:
        dupefilter.clear()


def test_redis_dupefilter_reads_the_ignore_list() -> None:
    settings = {**SETTINGS, "BILI_DUPEFILTER_IGNORE_PARAMS": ["web_location"]}
    crawler = get_crawler(RedisSpider, {**settings, "REDIS_URL": "redis://localhost:1/0"})
    from_spider = RedisDupeFilter.from_spider(crawler._create_spider())
    from_crawler = RedisDupeFilter.from_crawler(crawler)
    direct = RedisDupeFilter(FakeRedis(), "k")

    assert from_spider.fingerprinter.ignore_params == {"w_rid", "wts", "web_location"}
    assert from_crawler.fingerprinter.ignore_params == {"w_rid", "wts", "web_location"}
    assert direct.fingerprinter.ignore_params == {"w_rid", "wts"}
