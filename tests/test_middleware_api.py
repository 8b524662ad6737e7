"""BiliApiMiddleware: one decision per response, from the JSON code or HTTP status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scrapy import Request, Spider
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, JsonResponse, Response
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from bilicrawl import signals
from bilicrawl.config import ConfigError
from bilicrawl.envelope import BiliApiError
from bilicrawl.middlewares.api import BiliApiMiddleware
from tests.utils import project_settings

FIXTURES = Path(__file__).parent / "fixtures"
ERRORS = json.loads((FIXTURES / "errors.json").read_text(encoding="utf-8"))
URL = "https://api.bilibili.com/x/web-interface/view?aid=2"


@pytest.fixture
def env() -> Any:
    crawler = get_crawler(Spider, {**project_settings(), "RETRY_TIMES": 2})
    crawler.spider = crawler._create_spider("test")
    middleware = build_from_crawler(BiliApiMiddleware, crawler)
    sent: list[tuple[object, dict[str, Any]]] = []
    for signal in (signals.risk_control, signals.transient_failure, signals.clean_answer):

        def record(signal: object = signal, **kwargs: Any) -> None:
            kwargs.pop("sender", None)
            sent.append((signal, kwargs))

        crawler.signals.connect(record, signal=signal, weak=False)
    return crawler, middleware, sent


def json_response(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return JsonResponse(URL, status=status, body=body, request=Request(URL))


def test_success_passes(env: Any) -> None:
    crawler, middleware, sent = env
    response = json_response({"code": 0, "message": "0", "ttl": 1, "data": {"aid": 2}})
    assert middleware.process_response(response.request, response) is response
    assert sent == [(signals.clean_answer, {"request": response.request})]
    assert crawler.stats.get_stats() == {}


@pytest.mark.parametrize(
    ("payload", "status", "reason", "signal"),
    [
        (ERRORS["blocked_412_json"], 412, "api_code_-412", signals.risk_control),
        (ERRORS["blocked_412_en"], 200, "api_code_-412", signals.risk_control),
        (ERRORS["risk_control_352_v_voucher"], 200, "api_code_-352", signals.risk_control),
        (ERRORS["dynamic_space_352_short"], 200, "api_code_-352", signals.risk_control),
        (
            {"code": -799, "message": "请求过于频繁，请稍后再试", "ttl": 1},
            200,
            "api_code_-799",
            signals.risk_control,
        ),
        (
            {"code": -509, "message": "请求过于频繁", "ttl": 1},
            200,
            "api_code_-509",
            signals.risk_control,
        ),
        (
            {"code": -503, "message": "服务调用超时", "ttl": 1},
            200,
            "api_code_-503",
            signals.transient_failure,
        ),
    ],
)
def test_retryable_codes_are_retried(
    env: Any, payload: dict[str, Any], status: int, reason: str, signal: object
) -> None:
    crawler, middleware, sent = env
    response = json_response(payload, status)
    retry = middleware.process_response(response.request, response)
    assert isinstance(retry, Request)
    assert retry.url == URL
    assert retry.meta["retry_times"] == 1
    assert retry.dont_filter
    assert sent == [(signal, {"request": response.request, "reason": reason})]
    stats = crawler.stats.get_stats()
    assert stats[f"bilicrawl/api_code/{payload['code']}"] == 1
    assert stats[f"bilicrawl/retry/reason_count/{reason}"] == 1


def test_a_voucher_with_code_0_is_a_risk_retry(env: Any) -> None:
    crawler, middleware, sent = env
    response = json_response(ERRORS["wbi_missing_voucher_code0"])
    retry = middleware.process_response(response.request, response)
    assert isinstance(retry, Request)
    assert sent == [(signals.risk_control, {"request": response.request, "reason": "api_voucher"})]
    assert crawler.stats.get_value("bilicrawl/api_code/voucher") == 1


@pytest.mark.parametrize(
    ("code", "message"),
    [(-404, "啥都木有"), (62002, "稿件不可见"), (62004, "稿件审核中"), (-400, "请求错误")],
)
def test_permanent_codes_drop_with_a_counted_reason(
    env: Any, code: int, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    crawler, middleware, sent = env
    response = json_response({"code": code, "message": message, "ttl": 1, "data": None})
    with caplog.at_level("INFO"), pytest.raises(BiliApiError) as raised:
        middleware.process_response(response.request, response)
    assert raised.value.reason == f"api_code_{code}"
    assert raised.value.message == message
    assert crawler.stats.get_stats() == {
        f"bilicrawl/api_code/{code}": 1,
        f"bilicrawl/unfetched/api_code_{code}": 1,
    }
    assert sent == [(signals.clean_answer, {"request": response.request})]
    [record] = [r for r in caplog.records if r.name == "bilicrawl.middlewares.api"]
    assert record.levelname == "INFO"
    assert "aid=2" in record.getMessage()
    assert message in record.getMessage()


def test_the_live_apis_no_such_room_is_dropped_with_its_msg(env: Any) -> None:
    crawler, middleware, _ = env
    response = json_response({"code": 1, "msg": "未找到该房间", "data": []})
    with pytest.raises(BiliApiError) as raised:
        middleware.process_response(response.request, response)
    assert (raised.value.reason, raised.value.message) == ("api_code_1", "未找到该房间")
    assert crawler.stats.get_value("bilicrawl/api_code/1") == 1


def test_allowed_code_passes(env: Any) -> None:
    _, middleware, _ = env
    nav = json.loads((FIXTURES / "nav" / "logged_out.json").read_text(encoding="utf-8"))
    request = Request(URL, meta={"bili_allow_codes": [-101]})
    response = JsonResponse(URL, body=json.dumps(nav).encode(), request=request)
    assert middleware.process_response(request, response) is response


def test_html_412_is_a_risk_retry(env: Any) -> None:
    crawler, middleware, sent = env
    body = "<html><head><title>出错啦! - bilibili.com</title></head></html>".encode()
    response = HtmlResponse(URL, status=412, body=body, request=Request(URL))
    retry = middleware.process_response(response.request, response)
    assert isinstance(retry, Request)
    assert sent[0][0] is signals.risk_control
    assert crawler.stats.get_value("bilicrawl/http_status/412") == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient_retries(env: Any, status: int) -> None:
    _, middleware, sent = env
    response = HtmlResponse(URL, status=status, body=b"<html>oops</html>", request=Request(URL))
    assert isinstance(middleware.process_response(response.request, response), Request)
    assert sent == [
        (signals.transient_failure, {"request": response.request, "reason": f"http_{status}"})
    ]


def test_truncated_json_is_retried(env: Any) -> None:
    crawler, middleware, _ = env
    body = b'{"code":0,"message":"0","ttl":1,"data":{"aid":2,"title":"\xe4\xbd'
    response = JsonResponse(URL, body=body, request=Request(URL))
    assert isinstance(middleware.process_response(response.request, response), Request)
    assert crawler.stats.get_value("bilicrawl/retry/reason_count/bad_body") == 1


def test_non_json_body_passes_when_expected(env: Any) -> None:
    _, middleware, _ = env
    request = Request("https://comment.bilibili.com/1.xml", meta={"bili_body": "xml"})
    response = Response(request.url, body=b"<i><d p='0'>hi</d></i>", request=request)
    assert middleware.process_response(request, response) is response


@pytest.mark.parametrize("body", ["xml", "protobuf"])
def test_an_html_page_instead_of_a_binary_or_xml_body_is_retried(env: Any, body: str) -> None:
    crawler, middleware, sent = env
    url = "https://api.bilibili.com/x/v2/dm/web/seg.so?oid=1"
    request = Request(url, meta={"bili_body": body})
    page = b"\n  <!DOCTYPE html><html><head><title>\xe5\x87\xba\xe9\x94\x99\xe5\x95\xa6!</title>"
    response = Response(request.url, body=page, request=request)
    assert isinstance(middleware.process_response(request, response), Request)
    assert sent == [(signals.transient_failure, {"request": request, "reason": "bad_body"})]
    assert crawler.stats.get_value("bilicrawl/retry/reason_count/bad_body") == 1


def test_other_http_errors_drop(env: Any) -> None:
    crawler, middleware, _ = env
    response = HtmlResponse(URL, status=404, body=b"<html>404</html>", request=Request(URL))
    with pytest.raises(BiliApiError, match="http_404"):
        middleware.process_response(response.request, response)
    assert crawler.stats.get_value("bilicrawl/http_status/404") == 1


def test_exhausted_retries_raise_and_are_counted(
    env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    crawler, middleware, _ = env
    request = Request(URL, meta={"retry_times": 2})
    response = json_response(ERRORS["blocked_412_json"], 412)
    with pytest.raises(BiliApiError, match="gave up"):
        middleware.process_response(request, response)
    assert crawler.stats.get_value("bilicrawl/retry/max_reached") == 1
    assert any(
        "Gave up retrying" in r.getMessage() and "aid=2" in r.getMessage()
        for r in caplog.records
        if r.levelname == "ERROR"
    )


def test_network_errors_are_reported_not_handled(env: Any) -> None:
    crawler, middleware, sent = env
    failures: list[dict[str, Any]] = []

    def record(request: Request, reason: str, exception: Exception) -> None:
        failures.append({"request": request, "reason": reason, "exception": exception})

    crawler.signals.connect(record, signal=signals.network_failure, weak=False)
    request, error = Request(URL), TimeoutError()
    assert middleware.process_exception(request, error) is None
    assert sent == [(signals.transient_failure, {"request": request, "reason": "TimeoutError"})]
    assert failures == [{"request": request, "reason": "TimeoutError", "exception": error}]
    middleware.process_exception(request, IgnoreRequest("not a network failure"))
    assert len(failures) == 1


def test_nothing_is_retried_once_the_crawl_is_closing(env: Any) -> None:
    crawler, middleware, _ = env
    crawler.signals.send_catch_log(signals.crawl_closing, reason="shutdown")
    response = json_response(ERRORS["blocked_412_json"], 412)
    with pytest.raises(BiliApiError, match="closing"):
        middleware.process_response(response.request, response)
    transient = HtmlResponse(URL, status=503, body=b"busy", request=Request(URL))
    with pytest.raises(BiliApiError, match="closing"):
        middleware.process_response(transient.request, transient)


@pytest.mark.parametrize(
    ("setting", "value", "rule"),
    [
        ("BILI_RETRY_API_CODES", "x", "must be a list of whole numbers, not ['x']"),
        ("BILI_RISK_HTTP_CODES", "412,x", "must be a list of whole numbers, not ['412', 'x']"),
        ("RETRY_PRIORITY_ADJUST", "soon", "must be a whole number, not 'soon'"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(setting: str, value: str, rule: str) -> None:
    crawler = get_crawler(Spider, {**project_settings(), setting: value})
    with pytest.raises(ConfigError) as raised:
        build_from_crawler(BiliApiMiddleware, crawler)
    assert str(raised.value) == f"{setting} {rule}"
