from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from scrapy import Request, Spider
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from bilicrawl import signals
from bilicrawl.config import ConfigError
from bilicrawl.extensions.closing import CrawlClosing
from bilicrawl.middlewares.wbi import WbiSignMiddleware
from bilicrawl.signing import key_from_url, mixin_key, sign_for_sending, sign_url, signed_query
from tests.utils import Clock, FakeEngine

if TYPE_CHECKING:
    from collections.abc import Callable

API = "https://api.bilibili.com"
NAV_URL = f"{API}/x/web-interface/nav"
VIEW_URL = f"{API}/x/web-interface/wbi/view?aid=2"
NOW = 1744823207
NAV_LOGGED_OUT = json.loads(
    (Path(__file__).parent / "fixtures" / "nav" / "logged_out.json").read_text()
)
FIXTURE_MIXIN = mixin_key(
    key_from_url(NAV_LOGGED_OUT["data"]["wbi_img"]["img_url"]),
    key_from_url(NAV_LOGGED_OUT["data"]["wbi_img"]["sub_url"]),
)
# docs/bilibili-api.md, WBI signing: the test vector.
VECTOR_KEYS = ("7cd084941338484aae1ad9425b84077c", "4932caff0ff746eab6f01bf08b70ac45")
VECTOR_MIXIN = "ea1db124af3c7062474693fa704f4ff8"
HANDLER = "bilicrawl.handlers.BiliDownloadHandler"
SCRAPY_HANDLER = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
SETTINGS = {
    "BILI_API_URL": API,
    "BILI_WBI_KEY_TTL": 43200,
    "DOWNLOAD_HANDLERS": {"http": HANDLER, "https": HANDLER},
}


def nav_body(img_key: str | None = None, sub_key: str | None = None) -> bytes:
    """The saved logged-out nav answer, with other keys if given."""
    payload = json.loads(json.dumps(NAV_LOGGED_OUT))
    if img_key and sub_key:
        payload["data"]["wbi_img"] = {
            "img_url": f"https://i0.hdslb.com/bfs/wbi/{img_key}.png",
            "sub_url": f"https://i0.hdslb.com/bfs/wbi/{sub_key}.png",
        }
    return json.dumps(payload).encode()


def json_response(request: Request, body: bytes | dict[str, Any], status: int = 200) -> Response:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    return TextResponse(request.url, status=status, body=body, encoding="utf-8", request=request)


@pytest.fixture
def crawler_factory() -> Callable[..., Any]:
    def make(answer: Callable[[Request], Response] | None = None, **settings: Any) -> Any:
        crawler = get_crawler(Spider, {**SETTINGS, **settings})
        crawler.spider = crawler._create_spider("test")
        crawler.engine = FakeEngine(answer or (lambda r: json_response(r, nav_body(*VECTOR_KEYS))))
        return crawler

    return make


def build(crawler: Any, clock: Clock | None = None) -> WbiSignMiddleware:
    mw = build_from_crawler(WbiSignMiddleware, crawler)
    mw.clock = clock or Clock(NOW)
    return mw


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


async def sign(mw: WbiSignMiddleware, request: Request, now: float = NOW) -> str:
    """Run *request* through the middleware, then sign it as the handler does; the URL sent."""
    assert await mw.process_request(request) is None
    signed = sign_for_sending(request, now)
    assert signed is not None
    return signed


@deferred_f_from_coro_f
async def test_marks_the_request_with_the_nav_keys(crawler_factory: Callable[..., Any]) -> None:
    crawler = crawler_factory()
    mw = build(crawler)
    request = Request(VIEW_URL, priority=5)

    assert await mw.process_request(request) is None

    assert request.url == VIEW_URL, "signed when sent, by the download handler"
    assert request.meta["bili_wbi"] == {"mixin": VECTOR_MIXIN}
    assert (request.priority, request.dont_filter) == (5, False)
    assert crawler.stats.get_value("bilicrawl/wbi/keys_refreshed") == 1
    [nav] = crawler.engine.requests
    assert nav.url == NAV_URL
    assert nav.meta["bili_allow_codes"] == [-101]
    assert nav.dont_filter


@deferred_f_from_coro_f
async def test_signs_with_the_nav_keys_when_sent(crawler_factory: Callable[..., Any]) -> None:
    mw = build(crawler_factory())
    request = Request(VIEW_URL)

    signed = await sign(mw, request)

    assert urlsplit(signed).query == "aid=2&wts=1744823207&w_rid=a3cd246bd42c066932752b24694eaf0d"
    assert request.url == VIEW_URL
    assert request.meta["bili_wbi"] == {"wts": NOW, "mixin": VECTOR_MIXIN}
    assert json.loads(json.dumps(request.meta)) == request.meta  # survives a JSON queue


@deferred_f_from_coro_f
async def test_signature_verifies_with_the_fixture_keys(
    crawler_factory: Callable[..., Any],
) -> None:
    crawler = crawler_factory(lambda r: json_response(r, nav_body()))
    mw = build(crawler)
    url = f"{API}/x/space/wbi/arc/search?mid=2&ps=30&keyword=%E4%B8%96%20%E7%95%8C&order=pubdate"

    signed = await sign(mw, Request(url))

    params = query(signed)
    assert params["wts"] == str(NOW)
    assert params["keyword"] == "世 界"
    expected = signed_query(
        {"mid": "2", "ps": "30", "keyword": "世 界", "order": "pubdate"}, FIXTURE_MIXIN, NOW
    )
    assert urlsplit(signed).query == expected


@deferred_f_from_coro_f
async def test_old_signature_is_replaced(crawler_factory: Callable[..., Any]) -> None:
    crawler = crawler_factory()
    mw = build(crawler)
    an_hour_ago = NOW - 3600
    stale_url = sign_url(VIEW_URL, VECTOR_MIXIN, an_hour_ago)
    stale = Request(stale_url, meta={"bili_wbi": {"wts": an_hour_ago, "mixin": VECTOR_MIXIN}})

    signed = await sign(mw, stale)

    assert query(signed)["wts"] == str(NOW)
    assert urlsplit(signed).query.count("w_rid=") == 1
    assert stale.meta["bili_wbi"]["wts"] == NOW


@deferred_f_from_coro_f
async def test_every_send_is_signed_at_its_own_time(crawler_factory: Callable[..., Any]) -> None:
    """A retry, or a request that waited in its slot, carries a fresh wts."""
    mw = build(crawler_factory())
    request = Request(VIEW_URL)
    first = await sign(mw, request, NOW)
    retry = request.copy()  # shares the first meta["bili_wbi"] dict

    again = await sign(mw, retry, NOW + 600)

    assert query(first)["wts"] == str(NOW)
    assert query(again)["wts"] == str(NOW + 600)
    assert request.meta["bili_wbi"]["wts"] == NOW, "the first send's record is untouched"
    assert retry.meta["bili_wbi"]["wts"] == NOW + 600


@deferred_f_from_coro_f
async def test_redirect_off_a_wbi_path_is_not_signed(crawler_factory: Callable[..., Any]) -> None:
    mw = build(crawler_factory())
    request = Request(VIEW_URL)
    await sign(mw, request)
    redirected = request.replace(url=f"{API}/x/web-interface/view?aid=2")

    assert await mw.process_request(redirected) is None

    assert "bili_wbi" not in redirected.meta
    assert sign_for_sending(redirected, NOW) is None


@deferred_f_from_coro_f
async def test_unsigned_urls_are_untouched(crawler_factory: Callable[..., Any]) -> None:
    crawler = crawler_factory()
    mw = build(crawler)
    request = Request(f"{API}/x/web-interface/view?aid=2")

    assert await mw.process_request(request) is None

    assert request.url == f"{API}/x/web-interface/view?aid=2"
    assert crawler.engine.requests == []


@deferred_f_from_coro_f
async def test_concurrent_requests_share_one_nav_fetch(
    crawler_factory: Callable[..., Any],
) -> None:
    crawler = crawler_factory()
    mw = build(crawler)

    requests = [Request(f"{VIEW_URL}{i}") for i in range(20)]
    results = await asyncio.gather(*(mw.process_request(r) for r in requests))

    assert results == [None] * 20
    assert len(crawler.engine.requests) == 1
    assert all(r.meta["bili_wbi"]["mixin"] == VECTOR_MIXIN for r in requests)
    assert crawler.stats.get_value("bilicrawl/wbi/keys_refreshed") == 1


@deferred_f_from_coro_f
async def test_keys_are_refreshed_after_the_ttl(crawler_factory: Callable[..., Any]) -> None:
    keys = [VECTOR_KEYS, ("a" * 32, "b" * 32)]
    crawler = crawler_factory(lambda r: json_response(r, nav_body(*keys.pop(0))))
    clock = Clock(NOW)
    mw = build(crawler, clock)
    first = Request(VIEW_URL)
    await sign(mw, first)

    clock.now += 43199
    await sign(mw, Request(VIEW_URL))
    assert len(crawler.engine.requests) == 1

    clock.now += 2
    retry = first.copy()
    await sign(mw, retry, clock.now)
    assert len(crawler.engine.requests) == 2
    assert retry.meta["bili_wbi"]["mixin"] == mixin_key("a" * 32, "b" * 32)
    assert crawler.stats.get_value("bilicrawl/wbi/keys_refreshed") == 2


@pytest.mark.parametrize(
    ("code", "invalidates", "retried_here"),
    [(-403, True, True), (-352, True, False), (-412, False, False)],
)
@deferred_f_from_coro_f
async def test_stale_key_codes_invalidate_the_keys(
    crawler_factory: Callable[..., Any], code: int, invalidates: bool, retried_here: bool
) -> None:
    crawler = crawler_factory()  # the new nav fetch returns the same keys
    clock = Clock(NOW)
    mw = build(crawler, clock)
    signed = Request(VIEW_URL)
    await sign(mw, signed)
    clock.now += 2
    response = json_response(signed, {"code": code, "message": "x", "ttl": 1})

    for _ in range(2):  # a second answer signed with the dropped keys does not invalidate again
        result = mw.process_response(signed, response)
        if retried_here:  # -403 on a signed request: a stale signature, retried here
            assert isinstance(result, Request)
            assert result.meta["retry_times"] == 1
        else:  # the API middleware decides (-352 is retried there as risk control)
            assert result is response

    invalidated = crawler.stats.get_value("bilicrawl/wbi/keys_invalidated")
    assert invalidated == (1 if invalidates else None)
    stale_retries = crawler.stats.get_value("bilicrawl/retry/reason_count/wbi_stale_keys")
    assert stale_retries == (2 if retried_here else None)
    # The retry is re-signed, after one new nav fetch if the keys were dropped.
    retry = signed.replace(url=signed.url, dont_filter=True)
    again = await sign(mw, retry, clock.now)
    assert len(crawler.engine.requests) == (2 if invalidates else 1)
    assert query(again)["wts"] == str(NOW + 2)
    if invalidates:
        # A late answer to a request signed before the new fetch (same keys) is ignored.
        mw.process_response(signed, response)
        assert crawler.stats.get_value("bilicrawl/wbi/keys_invalidated") == 1


@deferred_f_from_coro_f
async def test_unsigned_error_answers_keep_the_keys(crawler_factory: Callable[..., Any]) -> None:
    crawler = crawler_factory()
    mw = build(crawler)
    await sign(mw, Request(VIEW_URL))
    request = Request(f"{API}/x/web-interface/view?aid=2")

    mw.process_response(request, json_response(request, {"code": -403}))

    assert crawler.stats.get_value("bilicrawl/wbi/keys_invalidated") is None


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda r: json_response(r, b"<html>busy</html>"), id="html"),
        pytest.param(lambda r: json_response(r, b"{}", status=500), id="http-500"),
        pytest.param(lambda r: json_response(r, {"code": -101, "data": {}}), id="no-keys"),
        pytest.param(lambda r: json_response(r, {"code": -412, "data": None}), id="code"),
    ],
)
@deferred_f_from_coro_f
async def test_bad_nav_answer_retries_the_request(
    crawler_factory: Callable[..., Any], answer: Callable[[Request], Response]
) -> None:
    crawler = crawler_factory(answer, RETRY_TIMES=1)
    mw = build(crawler)

    retry = await mw.process_request(Request(VIEW_URL))
    assert isinstance(retry, Request)
    assert retry.meta["retry_times"] == 1
    assert "w_rid" not in retry.url
    assert crawler.stats.get_value("bilicrawl/wbi/keys_failed") == 1
    assert crawler.stats.get_value("bilicrawl/retry/reason_count/wbi_keys_unavailable") == 1
    # Out of retries: dropped, with Scrapy's "Gave up retrying" error and a count.
    with pytest.raises(IgnoreRequest, match="WBI keys unavailable"):
        await mw.process_request(retry)
    assert crawler.stats.get_value("bilicrawl/retry/max_reached") == 1


@deferred_f_from_coro_f
async def test_failed_nav_fetch_is_retried_by_the_next_request(
    crawler_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    answers: list[Any] = [IgnoreRequest("api_code_-412: gave up after retries")]

    def answer(request: Request) -> Response:
        if answers:
            raise answers.pop()
        return json_response(request, nav_body(*VECTOR_KEYS))

    crawler = crawler_factory(answer)
    mw = build(crawler)

    with caplog.at_level(logging.WARNING):
        retries = await asyncio.gather(*(mw.process_request(Request(VIEW_URL)) for _ in range(3)))
    assert [retry.meta["retry_times"] for retry in retries] == [1, 1, 1]
    assert len(crawler.engine.requests) == 1
    assert "Could not get WBI keys" in caplog.text

    await sign(mw, Request(VIEW_URL))
    assert len(crawler.engine.requests) == 2


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(CrawlClosing("not sent: shutdown"), id="cancelled"),
        pytest.param(IgnoreRequest("api_code_-412: not retried: the crawl is closing"), id="drop"),
    ],
)
@deferred_f_from_coro_f
async def test_a_fetch_failing_while_closing_fails_the_waiting_requests(
    crawler_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    """No retry, no warning: the requests would never be sent anyway."""

    def answer(request: Request) -> Response:
        crawler.signals.send_catch_log(signals.crawl_closing, reason="shutdown")
        raise error

    crawler = crawler_factory(answer)
    mw = build(crawler)

    with caplog.at_level(logging.WARNING):
        results = await asyncio.gather(
            *(mw.process_request(Request(VIEW_URL)) for _ in range(3)), return_exceptions=True
        )
    assert [type(result) for result in results] == [CrawlClosing] * 3
    assert len(crawler.engine.requests) == 1
    assert caplog.text == ""
    assert crawler.stats.get_value("bilicrawl/wbi/keys_failed") is None
    assert crawler.stats.get_value("bilicrawl/retry/count") is None


@deferred_f_from_coro_f
async def test_an_answer_never_sent_keeps_the_keys(crawler_factory: Callable[..., Any]) -> None:
    """An answer to a request the handler did not sign (from a cache, say) says nothing."""
    crawler = crawler_factory()
    mw = build(crawler)
    request = Request(VIEW_URL)
    assert await mw.process_request(request) is None

    mw.process_response(request, json_response(request, {"code": -352}))

    assert crawler.stats.get_value("bilicrawl/wbi/keys_invalidated") is None


@pytest.mark.parametrize(
    ("setting", "value", "rule"),
    [
        ("BILI_WBI_KEY_TTL", 0, "must be greater than 0, not 0"),
        ("BILI_WBI_KEY_TTL", "soon", "must be a number, not 'soon'"),
        ("BILI_DM_IMG_PATHS", ["/x/", 7], "must be a list of non-empty strings, not ['/x/', 7]"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    crawler_factory: Callable[..., Any], setting: str, value: object, rule: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        build(crawler_factory(**{setting: value}))
    assert str(raised.value) == f"{setting} {rule}"


@pytest.mark.parametrize(
    "handlers",
    [
        pytest.param({}, id="scrapy-default"),
        pytest.param({"http": HANDLER, "https": None}, id="https-disabled"),
        pytest.param({"http": SCRAPY_HANDLER, "https": HANDLER}, id="http-replaced"),
    ],
)
def test_refuses_to_start_without_the_signing_handler(
    crawler_factory: Callable[..., Any], handlers: dict[str, Any]
) -> None:
    """Requests would go out unsigned."""
    with pytest.raises(ConfigError, match=r"DOWNLOAD_HANDLERS\[.*BILI_DOWNLOAD_HANDLER"):
        build(crawler_factory(DOWNLOAD_HANDLERS=handlers))


@deferred_f_from_coro_f
async def test_space_requests_carry_the_crawls_dm_img_params_signed(
    crawler_factory: Callable[..., Any],
) -> None:
    crawler = crawler_factory(BILI_DM_IMG_PATHS=["/x/space/wbi/"])
    mw = build(crawler)
    url = f"{API}/x/space/wbi/acc/info?mid=2"

    first, second = await sign(mw, Request(url)), await sign(mw, Request(url))

    params = query(first)
    dm_img = {name: value for name, value in params.items() if name.startswith("dm_")}
    assert set(dm_img) == {"dm_img_list", "dm_img_str", "dm_cover_img_str", "dm_img_inter"}
    assert query(second) == params, "drawn once per crawl"
    expected = signed_query({"mid": "2", **dm_img}, VECTOR_MIXIN, NOW)
    assert urlsplit(first).query == expected, "signed together with the other parameters"
    other = await sign(mw, Request(VIEW_URL))
    assert not any(name.startswith("dm_") for name in query(other)), "only the listed paths"
