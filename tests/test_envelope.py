from __future__ import annotations

import pytest
from scrapy.http import Response, TextResponse

from bilicrawl import envelope
from bilicrawl.envelope import decode_envelope, envelope_data

URL = "https://api.bilibili.com/x/web-interface/view?aid=2"


def text(body: bytes) -> TextResponse:
    return TextResponse(URL, body=body, encoding="utf-8")


def test_decoded_once_and_shared_with_response_json(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    loads = envelope.orjson.loads

    def counting(body: bytes) -> object:
        calls.append(body)
        return loads(body)

    monkeypatch.setattr(envelope.orjson, "loads", counting)
    response = text(b' {"code": 0, "message": "0", "data": {"aid": 2}}')
    first = decode_envelope(response)
    assert decode_envelope(response) is first
    assert envelope_data(response) == {"aid": 2}
    assert response.json() is first
    assert len(calls) == 1


def test_what_orjson_refuses_is_read_by_the_standard_library() -> None:
    big = 2**70  # beyond 64 bits: orjson refuses it
    response = text(b'{"code": 0, "data": {"n": %d}}' % big)
    assert envelope_data(response) == {"n": big}


@pytest.mark.parametrize(
    "body",
    [b'{"code": "0"}', b'{"code": 0, "data": ', b"<html></html>", b"[1, 2]", b""],
    ids=["code_not_int", "truncated", "html", "array", "empty"],
)
def test_not_an_envelope(body: bytes) -> None:
    response = text(body)
    assert decode_envelope(response) is None
    with pytest.raises(ValueError, match="no JSON envelope"):
        envelope_data(response)


def test_a_binary_response_has_no_envelope() -> None:
    assert decode_envelope(Response(URL, body=b'{"code": 0}')) is None
