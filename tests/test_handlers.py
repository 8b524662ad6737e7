"""The download handler: WBI signing at send time, delegation, the impersonation setting."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import Mock
from urllib.parse import urlsplit

import pytest
from scrapy import Request, Spider
from scrapy import signals as scrapy_signals
from scrapy.core.downloader import Slot
from scrapy.exceptions import DownloadTimeoutError
from scrapy.http import Response, TextResponse
from scrapy.utils.conf import build_component_list
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler
from twisted.internet.defer import Deferred

from bilicrawl import handlers, signals
from bilicrawl.config import ConfigError
from bilicrawl.extensions.closing import CrawlClosing
from bilicrawl.handlers import BiliDownloadHandler
from bilicrawl.middlewares.headers import BrowserHeadersMiddleware
from tests.utils import Clock, project_settings

API = "https://api.bilibili.com"
VIEW_URL = f"{API}/x/web-interface/wbi/view?aid=2"
NOW = 1744823207
VECTOR_MIXIN = "ea1db124af3c7062474693fa704f4ff8"  # docs/bilibili-api.md, WBI signing
RECORDING = "tests.test_handlers.RecordingHandler"


class RecordingHandler:
    """A delegate that records what it is given and answers with a JSON envelope.

    ``meta["tie"]`` ties the response to the request it got, as scrapy-impersonate
    does; ``meta["fail"]`` raises a timeout instead; ``meta["hang"]`` never answers.
    """

    lazy = False

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.closed = False

    @classmethod
    def from_crawler(cls, crawler: Any) -> RecordingHandler:
        return cls()

    async def download_request(self, request: Request) -> Response:
        self.requests.append(request)
        request.meta["download_latency"] = 0.25
        if request.meta.get("fail"):
            raise DownloadTimeoutError("too slow")
        if request.meta.get("hang"):
            await asyncio.get_running_loop().create_future()
        tied = request if request.meta.get("tie") else None
        return TextResponse(request.url, body=b'{"code":0}', encoding="utf-8", request=tied)

    async def close(self) -> None:
        self.closed = True


class OldStyleHandler:
    def download_request(self, request: Request, spider: Spider) -> None:
        """A Deferred-returning handler of Scrapy < 2.14."""


def build(**settings: Any) -> BiliDownloadHandler:
    crawler = get_crawler(Spider, {"BILI_DOWNLOAD_HANDLER": RECORDING, **settings})
    crawler.spider = crawler._create_spider("test")
    handler = build_from_crawler(BiliDownloadHandler, crawler)
    handler.clock = Clock(NOW)
    return handler


def to_sign(url: str = VIEW_URL, **meta: Any) -> Request:
    """A request as WbiSignMiddleware leaves it: the mixin key in its meta."""
    return Request(url, meta={"bili_wbi": {"mixin": VECTOR_MIXIN}, **meta})


@pytest.mark.parametrize("tie", [False, True])
@deferred_f_from_coro_f
async def test_signs_a_copy_when_sent(tie: bool) -> None:
    handler = build()
    request = to_sign(tie=tie)

    response = await handler.download_request(request)

    [sent] = handler.delegate.requests
    assert urlsplit(sent.url).query == (
        "aid=2&wts=1744823207&w_rid=a3cd246bd42c066932752b24694eaf0d"
    )
    assert request.url == VIEW_URL, "the request keeps the URL the spider built"
    assert response.url == sent.url, "the response says what was sent"
    # Scrapy's engine ties an untied response to the request it downloaded.
    assert response.request is (request if tie else None)
    assert request.meta["bili_wbi"] == {"mixin": VECTOR_MIXIN, "wts": NOW}
    assert request.meta["download_latency"] == 0.25, "the throttle reads it"
    assert handler.crawler.stats.get_value("bilicrawl/wbi/signed") == 1


@deferred_f_from_coro_f
async def test_meta_comes_back_when_the_download_fails() -> None:
    handler = build()
    request = to_sign(fail=True)

    with pytest.raises(DownloadTimeoutError):
        await handler.download_request(request)

    assert request.meta["download_latency"] == 0.25
    assert request.meta["bili_wbi"]["wts"] == NOW


@deferred_f_from_coro_f
async def test_other_requests_are_passed_as_they_are() -> None:
    handler = build()
    request = Request(f"{API}/x/web-interface/view?aid=2", cookies={"a": "1"})

    await handler.download_request(request)

    assert handler.delegate.requests == [request]
    assert handler.delegate.requests[0] is request
    assert handler.crawler.stats.get_value("bilicrawl/wbi/signed") is None


@deferred_f_from_coro_f
async def test_close_closes_the_delegate() -> None:
    handler = build()

    await handler.close()

    assert handler.delegate.closed


def close(handler: BiliDownloadHandler, reason: str = "bilicrawl_risk_control") -> None:
    handler.crawler.signals.send_catch_log(signals.crawl_closing, reason=reason)


@deferred_f_from_coro_f
async def test_nothing_is_sent_once_the_crawl_is_closing() -> None:
    handler = build()
    close(handler)

    for request in (to_sign(), Request(f"{API}/x/web-interface/nav")):
        with pytest.raises(CrawlClosing, match="not sent: bilicrawl_risk_control"):
            await handler.download_request(request)

    assert handler.delegate.requests == []
    assert handler.crawler.stats.get_value("bilicrawl/closing/refused") == 2


@deferred_f_from_coro_f
async def test_a_request_queued_after_closing_does_not_wait_for_its_slot() -> None:
    """The nav request a middleware was waiting on reaches a slot 10 minutes from sending."""
    handler = build()
    slot = Slot(concurrency=1, delay=600.0, jitter=0.0)
    failures: list[Any] = []
    handler.crawler.engine = Mock()
    handler.crawler.engine.downloader.slots = {"api.bilibili.com": slot}
    close(handler, "shutdown")
    request = Request(f"{API}/x/web-interface/nav")
    deferred: Deferred[Any] = Deferred()
    deferred.addErrback(failures.append)

    handler.crawler.signals.send_catch_log(
        scrapy_signals.request_reached_downloader, request=request, spider=handler.crawler.spider
    )
    slot.queue.append((request, deferred))  # what the downloader does right after the signal
    await asyncio.sleep(0.01)

    assert not slot.queue
    assert [failure.check(CrawlClosing) for failure in failures] == [CrawlClosing]
    assert handler.crawler.stats.get_value("bilicrawl/closing/cancelled") == 1


@deferred_f_from_coro_f
async def test_a_request_on_the_wire_is_abandoned_after_the_grace(monkeypatch: Any) -> None:
    monkeypatch.setattr(handlers, "IN_FLIGHT_GRACE", 0.05)
    handler = build()

    async def download(request: Request) -> Any:
        """As Scrapy's downloader does, in a task of its own that goes on afterwards."""
        try:
            return await handler.download_request(request)
        except CrawlClosing as error:
            await asyncio.sleep(0.01)  # the task is not left cancelled
            return error

    hung = asyncio.ensure_future(download(to_sign(hang=True)))
    answered = asyncio.ensure_future(download(to_sign()))
    await asyncio.sleep(0)
    close(handler, "shutdown")

    assert (await answered).status == 200, "an answer within the grace is kept"
    error = await hung
    assert isinstance(error, CrawlClosing)
    assert str(error) == "no answer 0.05 s into closing (shutdown)"
    assert handler.crawler.stats.get_value("bilicrawl/closing/abandoned") == 1


@deferred_f_from_coro_f
async def test_a_download_is_not_abandoned_before_closing() -> None:
    handler = build()
    download = asyncio.ensure_future(handler.download_request(to_sign(hang=True)))
    await asyncio.sleep(0)

    download.cancel()  # as the downloader cancels it, not the handler

    with pytest.raises(asyncio.CancelledError):
        await download
    assert handler.crawler.stats.get_value("bilicrawl/closing/abandoned") is None


def test_default_delegate_is_scrapys_handler() -> None:
    handler = build(BILI_DOWNLOAD_HANDLER=None)

    assert type(handler.delegate).__name__ == "HTTP11DownloadHandler"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"BILI_DOWNLOAD_HANDLER": "nowhere.Handler"}, "cannot load 'nowhere.Handler'"),
        ({"BILI_DOWNLOAD_HANDLER": "bilicrawl.handlers.BiliDownloadHandler"}, "a real handler"),
        ({"BILI_DOWNLOAD_HANDLER": "tests.test_handlers.OldStyleHandler"}, "coroutine"),
        ({"BILI_IMPERSONATE": "netscape4"}, "curl_cffi browser such as chrome"),
        ({"BILI_IMPERSONATE": "chrome"}, "unset BILI_DOWNLOAD_HANDLER"),
    ],
)
def test_bad_settings_are_config_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(**settings)


def impersonating(browser: str = "chrome") -> BiliDownloadHandler:
    """A handler with BILI_IMPERSONATE, its scrapy-impersonate delegate swapped for a recorder."""
    pytest.importorskip("scrapy_impersonate", reason="scrapy-impersonate is not installed")
    handler = build(BILI_DOWNLOAD_HANDLER=None, BILI_IMPERSONATE=browser)
    assert type(handler.delegate).__name__ == "ImpersonateDownloadHandler"
    handler.delegate = RecordingHandler()
    return handler


@deferred_f_from_coro_f
async def test_impersonation_meta_and_timeout() -> None:
    handler = impersonating("chrome")
    signed = to_sign(download_timeout=7.5)
    own_browser = Request(f"{API}/x/a", meta={"impersonate": "firefox", "download_timeout": 3})

    await handler.download_request(signed)
    await handler.download_request(own_browser)

    sent, sent_own = handler.delegate.requests
    assert "w_rid=" in sent.url
    assert sent.meta["impersonate"] == "chrome"
    assert sent.meta["impersonate_args"] == {"timeout": 7.5}, "DOWNLOAD_TIMEOUT holds"
    assert sent_own.meta["impersonate"] == "firefox"
    assert sent_own.meta["impersonate_args"] == {"timeout": 3}


@deferred_f_from_coro_f
async def test_impersonation_leaves_cookies_to_the_cookie_header() -> None:
    """scrapy-impersonate would send request.cookies again, a list of dicts mangled."""
    handler = impersonating()
    request = Request(
        f"{API}/x/a",
        cookies=[{"name": "buvid3", "value": "x", "path": "/"}],
        headers={"Cookie": "buvid3=x"},
    )

    await handler.download_request(request)

    [sent] = handler.delegate.requests
    assert sent.cookies == {}
    assert sent.headers["Cookie"] == b"buvid3=x"
    assert request.cookies == [{"name": "buvid3", "value": "x", "path": "/"}]


def headers_middleware(**settings: Any) -> BrowserHeadersMiddleware:
    crawler = get_crawler(Spider, {**project_settings(), **settings})
    return build_from_crawler(BrowserHeadersMiddleware, crawler)


def test_headers_middleware_leaves_the_user_agent_to_the_impersonated_browser() -> None:
    pytest.importorskip("scrapy_impersonate", reason="scrapy-impersonate is not installed")
    request, impersonated = Request(f"{API}/x/a"), Request(f"{API}/x/a")

    headers_middleware().process_request(request)
    headers_middleware(BILI_IMPERSONATE="chrome", BILI_USER_AGENTS=[]).process_request(
        impersonated
    )

    assert request.headers["User-Agent"].startswith(b"Mozilla/5.0")
    assert "User-Agent" not in impersonated.headers
    assert impersonated.headers["Referer"] == b"https://www.bilibili.com/"
    assert impersonated.headers["Accept"] == b"application/json, text/plain, */*"


def test_headers_middleware_rejects_an_unknown_browser() -> None:
    with pytest.raises(ConfigError, match="BILI_IMPERSONATE"):
        headers_middleware(BILI_IMPERSONATE="netscape4")


def test_browser_headers_replace_scrapys_default_headers() -> None:
    """Else DEFAULT_REQUEST_HEADERS' HTML Accept and ``Accept-Language: en`` could win."""
    settings = get_crawler(Spider, project_settings()).settings
    order = build_component_list(
        settings.get_component_priority_dict_with_base("DOWNLOADER_MIDDLEWARES")
    )
    names = [path.rsplit(".", 1)[-1] for path in map(str, order)]
    assert "BrowserHeadersMiddleware" in names
    assert "DefaultHeadersMiddleware" not in names
    assert names.index("BiliCookiesMiddleware") + 1 == names.index("CookiesMiddleware")
