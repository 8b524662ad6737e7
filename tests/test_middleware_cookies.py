from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from scrapy import Request, Spider
from scrapy.downloadermiddlewares.cookies import CookiesMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response, TextResponse
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from bilicrawl import signals
from bilicrawl.config import ConfigError
from bilicrawl.extensions.closing import CrawlClosing
from bilicrawl.middlewares.cookies import BiliCookiesMiddleware, mask_secret
from tests.utils import Clock, FakeEngine

if TYPE_CHECKING:
    from collections.abc import Callable

API = "https://api.bilibili.com"
SPI_URL = f"{API}/x/frontend/finger/spi"
NOW = 1744823207
SPI_OK = (Path(__file__).parent / "fixtures" / "finger_spi" / "ok.json").read_bytes()
BUVID3 = json.loads(SPI_OK)["data"]["b_3"]
BUVID4 = json.loads(SPI_OK)["data"]["b_4"]
SESSDATA = "7a3f9c21%2C1760000000%2Cab12c%2A41CjBsecretsecretsecretsecret"
BILI_JCT = "0123456789abcdef0123456789abcdef"
SETTINGS = {
    "BILI_API_URL": API,
    "BILI_COMMENT_URL": "https://comment.bilibili.com",
    "BILI_WWW_URL": "https://www.bilibili.com",
    "BILI_LIVE_API_URL": "https://api.live.bilibili.com",
    "BILI_COOKIES_ENABLED": True,
    "BILI_COOKIES_RETRY_DELAY": 60,
}
LOGIN = {"BILI_SESSDATA": SESSDATA, "BILI_JCT": BILI_JCT, "BILI_DEDEUSERID": "293793435"}


def spi_response(request: Request) -> Response:
    return TextResponse(request.url, body=SPI_OK, encoding="utf-8", request=request)


def build(
    answer: Callable[[Request], Response] = spi_response,
    clock: Clock | None = None,
    **settings: Any,
) -> BiliCookiesMiddleware:
    crawler = get_crawler(Spider, {**SETTINGS, **settings})
    crawler.engine = FakeEngine(answer)
    mw = build_from_crawler(BiliCookiesMiddleware, crawler)
    mw.clock = clock or Clock(NOW)
    return mw


BUVID_COOKIES = {"buvid3": BUVID3, "buvid4": BUVID4, "b_nut": str(NOW)}


def sent(request: Request) -> dict[str, Any]:
    """The request's cookies as a name -> value dict."""
    cookies = request.cookies
    if isinstance(cookies, dict):
        return dict(cookies)
    return {cookie["name"]: cookie["value"] for cookie in cookies}


class Downloader:
    """Our middleware, then Scrapy's CookiesMiddleware, as the downloader runs them."""

    def __init__(self, mw: BiliCookiesMiddleware) -> None:
        self.mw = mw
        self.jar_mw = build_from_crawler(CookiesMiddleware, mw.crawler)

    async def send(self, request: Request) -> dict[str, str]:
        """Process *request*; return the ``Cookie`` header it would be sent with, as a dict."""
        await self.mw.process_request(request)
        self.jar_mw.process_request(request)
        return cookie_header(request)

    def answer(self, request: Request, set_cookie: str) -> None:
        response = Response(request.url, headers={"Set-Cookie": set_cookie}, request=request)
        self.jar_mw.process_response(request, response)


def cookie_header(request: Request) -> dict[str, str]:
    header = request.headers.get("Cookie", b"").decode()
    pairs = [pair.split("=", 1) for pair in header.split("; ") if pair]
    assert len({name for name, _ in pairs}) == len(pairs), f"a cookie sent twice: {header}"
    return dict(pairs)


@deferred_f_from_coro_f
async def test_one_spi_fetch_for_many_requests() -> None:
    mw = build()
    requests = [Request(f"{API}/x/web-interface/view?aid={i}") for i in range(20)]

    await asyncio.gather(*(mw.process_request(r) for r in requests))
    later = Request(f"{API}/x/web-interface/view?aid=99")
    await mw.process_request(later)

    assert [r.url for r in mw.crawler.engine.requests] == [SPI_URL]
    assert sent(requests[0]) == BUVID_COOKIES
    assert all(r.cookies == {} for r in [*requests[1:], later]), "the jar has them"
    assert mw.crawler.stats.get_value("bilicrawl/cookies/buvid_fetched") == 1


@deferred_f_from_coro_f
async def test_every_request_sends_them_from_the_jar() -> None:
    """Concurrent requests wait for one fetch; the first seeds the jar, all send them."""
    downloader = Downloader(build(**LOGIN))
    requests = [Request(f"{API}/x/web-interface/wbi/view?aid={i}") for i in range(20)]

    headers = await asyncio.gather(*(downloader.send(r) for r in requests))
    headers.append(await downloader.send(Request(f"{API}/x/web-interface/nav")))

    login = {"SESSDATA": SESSDATA, "bili_jct": BILI_JCT, "DedeUserID": "293793435"}
    assert all(header == {**BUVID_COOKIES, **login} for header in headers)
    assert sum(bool(r.cookies) for r in requests) == 1


@deferred_f_from_coro_f
async def test_each_cookie_jar_gets_them() -> None:
    downloader = Downloader(build())
    for jar in (None, 1, "account-2", 1, None):
        request = Request(f"{API}/x/a", meta={"cookiejar": jar} if jar else {})
        assert await downloader.send(request) == BUVID_COOKIES
    assert set(downloader.jar_mw.jars) == {None, 1, "account-2"}


@deferred_f_from_coro_f
async def test_the_site_can_set_and_replace_cookies() -> None:
    """As in a browser: Set-Cookie adds cookies and may replace ours."""
    downloader = Downloader(build())
    first = Request(f"{API}/x/web-interface/nav")
    await downloader.send(first)
    downloader.answer(first, "b_lsid=ABC_123; Path=/")

    second = Request(f"{API}/x/web-interface/wbi/view?aid=2")
    assert await downloader.send(second) == {**BUVID_COOKIES, "b_lsid": "ABC_123"}
    downloader.answer(second, "buvid3=FROM-SITE; Path=/; Domain=.bilibili.com")

    for host in ("api.bilibili.com", "www.bilibili.com"):
        third = Request(f"https://{host}/x/web-interface/view?aid=3")
        expected = {**BUVID_COOKIES, "buvid3": "FROM-SITE"}
        if host == "api.bilibili.com":
            expected["b_lsid"] = "ABC_123"  # host-only
        assert await downloader.send(third) == expected


@deferred_f_from_coro_f
async def test_dont_merge_cookies_sends_none_even_once_seeded() -> None:
    downloader = Downloader(build())
    await downloader.send(Request(f"{API}/x/a"))

    alone = Request(f"{API}/x/b", meta={"dont_merge_cookies": True})
    assert await downloader.send(alone) == {}
    assert alone.cookies == {}


@pytest.mark.parametrize(
    "url",
    [
        "https://www.bilibili.com/video/BV117411r7R1",
        "https://comment.bilibili.com/1176840.xml",
        "https://space.bilibili.com/2/dynamic",
        "https://api.live.bilibili.com/room/v1/Room/get_info?room_id=1",
    ],
)
@deferred_f_from_coro_f
async def test_all_bilibili_hosts_get_cookies(url: str) -> None:
    mw = build()
    request = Request(url)

    await mw.process_request(request)

    assert sent(request) == BUVID_COOKIES
    assert all(cookie["path"] == "/" for cookie in request.cookies)


@deferred_f_from_coro_f
async def test_configured_hosts_get_cookies() -> None:
    mw = build(BILI_API_URL="http://127.0.0.1:8123")
    request = Request("http://127.0.0.1:8123/x/web-interface/view?aid=2")

    await mw.process_request(request)

    assert sent(request)["buvid3"] == BUVID3
    assert mw.crawler.engine.requests[0].url == "http://127.0.0.1:8123/x/frontend/finger/spi"


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(Request("https://i0.hdslb.com/bfs/face/x.jpg"), id="other-host"),
        pytest.param(Request("https://www.bilibili.tv/en/video/1"), id="bilibili-tv"),
        pytest.param(Request(f"{API}/x/web", meta={"dont_merge_cookies": True}), id="dont-merge"),
    ],
)
@deferred_f_from_coro_f
async def test_requests_left_alone(request_: Request) -> None:
    mw = build()

    await mw.process_request(request_)

    assert request_.cookies == {}
    assert mw.crawler.engine.requests == []


@deferred_f_from_coro_f
async def test_cookies_of_the_request_win() -> None:
    mw = build()
    as_dict = Request(f"{API}/x/a", cookies={"buvid3": "mine", "other": "1"})
    as_list = Request(
        f"{API}/x/b", cookies=[{"name": "buvid3", "value": "mine"}], meta={"cookiejar": 2}
    )

    await mw.process_request(as_dict)
    await mw.process_request(as_list)

    assert sent(as_dict) == {**BUVID_COOKIES, "buvid3": "mine", "other": "1"}
    site = {"path": "/", "domain": ".bilibili.com"}
    assert as_list.cookies == [
        {"name": "buvid3", "value": "mine"},
        {"name": "buvid4", "value": BUVID4, **site},
        {"name": "b_nut", "value": str(NOW), **site},
    ]


@deferred_f_from_coro_f
async def test_copies_do_not_share_the_added_cookies() -> None:
    mw = build()
    original = Request(f"{API}/x/a", cookies={"x": "1"})
    copy = original.copy()

    await mw.process_request(copy)

    assert original.cookies == {"x": "1"}


@deferred_f_from_coro_f
async def test_buvid_seeds_the_jar_once_it_arrives() -> None:
    """While spi fails, the login goes with every request; buvid joins once fetched."""
    failures = 1

    def answer(request: Request) -> Response:
        nonlocal failures
        if failures:
            failures -= 1
            raise IgnoreRequest("api_code_-412: gave up after retries")
        return spi_response(request)

    clock = Clock(NOW)
    downloader = Downloader(build(answer, clock, BILI_SESSDATA=SESSDATA))
    early = [Request(f"{API}/x/{i}") for i in range(2)]
    assert [await downloader.send(r) for r in early] == [{"SESSDATA": SESSDATA}] * 2
    assert all(sent(r) == {"SESSDATA": SESSDATA} for r in early)

    clock.now += 60
    late = [Request(f"{API}/x/late{i}") for i in range(2)]
    headers = [await downloader.send(r) for r in late]
    assert headers == [{**BUVID_COOKIES, "b_nut": str(NOW + 60), "SESSDATA": SESSDATA}] * 2
    assert late[1].cookies == {}


@deferred_f_from_coro_f
async def test_cookies_reach_the_cookie_header() -> None:
    """Scrapy's CookiesMiddleware sends them, with what the site set on its own."""
    mw = build()
    jar_mw = build_from_crawler(CookiesMiddleware, mw.crawler)
    first = Request(f"{API}/x/web-interface/nav")
    await mw.process_request(first)
    jar_mw.process_request(first)
    answer = Response(first.url, headers={"Set-Cookie": "b_lsid=ABC_123; Path=/"}, request=first)
    jar_mw.process_response(first, answer)

    # A deeper path: each cookie must still be sent once.
    second = Request(f"{API}/x/web-interface/wbi/view?aid=2")
    await mw.process_request(second)
    jar_mw.process_request(second)

    header = second.headers["Cookie"].decode()
    assert sorted(header.split("; ")) == sorted(
        [f"buvid3={BUVID3}", f"buvid4={BUVID4}", f"b_nut={NOW}", "b_lsid=ABC_123"]
    )


@deferred_f_from_coro_f
async def test_login_cookies_are_sent_and_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        mw = build(**LOGIN, COOKIES_DEBUG=True)
        request = Request(f"{API}/x/space/wbi/acc/info?mid=2")
        await mw.process_request(request)

    assert sent(request) == {
        **BUVID_COOKIES,
        "SESSDATA": SESSDATA,
        "bili_jct": BILI_JCT,
        "DedeUserID": "293793435",
    }
    assert SESSDATA not in caplog.text
    assert BILI_JCT not in caplog.text
    assert BUVID3 not in caplog.text
    assert mask_secret(SESSDATA) in caplog.text
    assert "COOKIES_DEBUG is on" in caplog.text
    stats = json.dumps(mw.crawler.stats.get_stats(), default=str)
    assert SESSDATA not in stats
    assert BILI_JCT not in stats


@deferred_f_from_coro_f
async def test_login_without_dedeuserid() -> None:
    mw = build(BILI_SESSDATA=SESSDATA, BILI_JCT=BILI_JCT)
    request = Request(f"{API}/x/a")

    await mw.process_request(request)

    assert set(sent(request)) == {*BUVID_COOKIES, "SESSDATA", "bili_jct"}


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda r: TextResponse(r.url, body=b"<html/>", encoding="utf-8"), id="html"),
        pytest.param(
            lambda r: TextResponse(r.url, body=b'{"code":0,"data":{}}', encoding="utf-8"),
            id="no-buvid",
        ),
        pytest.param(lambda r: Response(r.url, status=412), id="http-412"),
    ],
)
@deferred_f_from_coro_f
async def test_bad_spi_answer_means_no_buvid(answer: Callable[[Request], Response]) -> None:
    mw = build(answer, **LOGIN)
    request = Request(f"{API}/x/a")

    await mw.process_request(request)

    assert set(sent(request)) == {"SESSDATA", "bili_jct", "DedeUserID"}
    assert mw.crawler.stats.get_value("bilicrawl/cookies/buvid_failed") == 1


@deferred_f_from_coro_f
async def test_failed_spi_fetch_warns_once_and_is_retried_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = 2

    def answer(request: Request) -> Response:
        nonlocal failures
        if failures:
            failures -= 1
            raise IgnoreRequest("api_code_-412: gave up after retries")
        return spi_response(request)

    clock = Clock(NOW)
    mw = build(answer, clock)
    engine = mw.crawler.engine

    with caplog.at_level(logging.DEBUG, logger="bilicrawl"):
        await asyncio.gather(*(mw.process_request(Request(f"{API}/x/{i}")) for i in range(5)))
        assert len(engine.requests) == 1
        clock.now += 59
        early = Request(f"{API}/x/early")
        await mw.process_request(early)
        assert sent(early) == {}
        assert len(engine.requests) == 1

        clock.now += 1
        await mw.process_request(Request(f"{API}/x/second-failure"))
        clock.now += 60
        late = Request(f"{API}/x/late")
        await mw.process_request(late)

    assert len(engine.requests) == 3
    assert sent(late) == {"buvid3": BUVID3, "buvid4": BUVID4, "b_nut": str(NOW + 120)}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Could not get buvid cookies" in warnings[0].getMessage()


@deferred_f_from_coro_f
async def test_a_fetch_failing_while_closing_fails_the_waiting_requests(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not "sending requests without them": nothing is sent any more."""

    def answer(request: Request) -> Response:
        mw.crawler.signals.send_catch_log(signals.crawl_closing, reason="bilicrawl_risk_control")
        raise IgnoreRequest("api_code_-412: not retried: the crawl is closing")

    mw = build(answer)

    with caplog.at_level(logging.WARNING):
        results = await asyncio.gather(
            *(mw.process_request(Request(f"{API}/x/{i}")) for i in range(3)),
            return_exceptions=True,
        )
    assert [type(result) for result in results] == [CrawlClosing] * 3
    assert str(results[0]) == "not sent: bilicrawl_risk_control"
    assert len(mw.crawler.engine.requests) == 1
    assert caplog.text == ""
    assert mw.crawler.stats.get_value("bilicrawl/cookies/buvid_failed") is None


@deferred_f_from_coro_f
async def test_spi_request_does_not_wait_for_itself() -> None:
    mw = build()

    await mw.process_request(Request(f"{API}/x/a"))

    spi = mw.crawler.engine.requests[0]
    assert spi.dont_filter
    await asyncio.wait_for(mw.process_request(spi), timeout=1)
    assert spi.cookies == {}


@pytest.mark.parametrize("setting", ["BILI_COOKIES_ENABLED", "COOKIES_ENABLED"])
def test_switches(setting: str) -> None:
    with pytest.raises(NotConfigured, match=setting):
        build(**{setting: False})


@pytest.mark.parametrize(
    ("setting", "value", "rule"),
    [
        ("BILI_COOKIES_ENABLED", "maybe", "must be true or false, not 'maybe'"),
        ("BILI_COOKIES_RETRY_DELAY", "soon", "must be a number, not 'soon'"),
        ("BILI_COOKIES_RETRY_DELAY", "-1", "must be at least 0, not '-1'"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(setting: str, value: str, rule: str) -> None:
    with pytest.raises(ConfigError) as raised:
        build(**{setting: value})
    assert str(raised.value) == f"{setting} {rule}"


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        (SESSDATA, f"7a3…({len(SESSDATA)} chars)"),
        (BILI_JCT, "012…(32 chars)"),
        ("293793435", "…(9 chars)"),
        ("", "…(0 chars)"),
    ],
)
def test_mask_secret(value: str, masked: str) -> None:
    assert mask_secret(value) == masked
