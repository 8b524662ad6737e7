from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from bilicrawl.signing import (
    MIXIN_KEY_ENC_TAB,
    WEBGL_RENDERERS,
    WEBGL_VERSIONS,
    dm_img_params,
    key_from_url,
    mixin_key,
    signed_query,
)

FIXTURES = Path(__file__).parent / "fixtures"

# docs/bilibili-api.md, WBI signing: the test vectors.
IMG_KEY = "7cd084941338484aae1ad9425b84077c"
SUB_KEY = "4932caff0ff746eab6f01bf08b70ac45"
MIXIN = "ea1db124af3c7062474693fa704f4ff8"


def test_table_is_a_permutation() -> None:
    assert sorted(MIXIN_KEY_ENC_TAB) == list(range(64))


def test_mixin_key() -> None:
    assert mixin_key(IMG_KEY, SUB_KEY) == MIXIN


@pytest.mark.parametrize(
    ("params", "wts", "expected"),
    [
        (
            {"foo": "114", "bar": "514", "zab": 1919810},
            1702204169,
            "bar=514&foo=114&wts=1702204169&zab=1919810&w_rid=8f6f2b5b3d485fe1886cec6a0be8c5d4",
        ),
        (
            {"aid": "2"},
            1744823207,
            "aid=2&wts=1744823207&w_rid=a3cd246bd42c066932752b24694eaf0d",
        ),
        (
            {"foo": "114", "bar": "514", "hello": "世 界"},
            1744823207,
            "bar=514&foo=114&hello=%E4%B8%96%20%E7%95%8C&wts=1744823207"
            "&w_rid=93acf59d85f74453e40cea00056c3daf",
        ),
    ],
)
def test_signed_query_vectors(params: dict[str, object], wts: int, expected: str) -> None:
    assert signed_query(params, MIXIN, wts) == expected


def test_resigning_replaces_signature() -> None:
    fresh = signed_query({"aid": "2"}, MIXIN, 1744823207)
    stale = {"aid": "2", "wts": "1600000000", "w_rid": "0" * 32}
    assert signed_query(stale, MIXIN, 1744823207) == fresh
    assert fresh.count("wts=") == 1
    assert fresh.count("w_rid=") == 1


def test_resigning_a_signed_query_is_idempotent() -> None:
    first = signed_query({"foo": "114", "bar": "514"}, MIXIN, 1702204169)
    again = signed_query(dict(parse_qsl(first)), MIXIN, 1702204169)
    assert again == first


def test_signing_does_not_mutate_params() -> None:
    params = {"aid": "2", "w_rid": "x"}
    signed_query(params, MIXIN, 1744823207)
    assert params == {"aid": "2", "w_rid": "x"}


def test_strips_forbidden_characters_from_values() -> None:
    assert signed_query({"q": "a!b'c(d)e*f"}, MIXIN, 1) == signed_query({"q": "abcdef"}, MIXIN, 1)
    assert signed_query({"q": "(*)!'"}, MIXIN, 1).startswith("q=&wts=1&w_rid=")


def test_encodes_like_encode_uri_component() -> None:
    query = signed_query({"q": "a/b c~d+e&f"}, MIXIN, 1)
    assert query.startswith("q=a%2Fb%20c~d%2Be%26f&wts=1&w_rid=")


def test_key_from_url_on_nav_payload() -> None:
    nav = json.loads((FIXTURES / "nav" / "logged_out.json").read_text(encoding="utf-8"))
    wbi_img = nav["data"]["wbi_img"]
    assert key_from_url(wbi_img["img_url"]) == "653657f524a547ac981ded72ea172057"
    assert key_from_url(wbi_img["sub_url"]) == "6e4909c702f846728e64f6007736a338"


def test_key_from_url_ignores_query() -> None:
    url = f"https://i0.hdslb.com/bfs/wbi/{IMG_KEY}.png?v=1"
    assert key_from_url(url) == IMG_KEY


def test_dm_img_params_look_like_a_browsers() -> None:
    params = dm_img_params(random.Random(7))

    assert params == dm_img_params(random.Random(7))
    assert params["dm_img_list"] == "[]"
    for name, strings in (("dm_img_str", WEBGL_VERSIONS), ("dm_cover_img_str", WEBGL_RENDERERS)):
        value = params[name]
        assert any(base64.b64encode(text.encode()).decode()[:-2] == value for text in strings)
    inter = json.loads(params["dm_img_inter"])
    assert params["dm_img_inter"] == json.dumps(inter, separators=(",", ":")), "compact"
    assert inter["ds"] == []
    width_height, offsets = inter["wh"], inter["of"]
    assert len(width_height) == 3 and 0 <= width_height[2] < 114
    assert offsets == [offsets[0], 2 * offsets[0], offsets[0]] and 0 <= offsets[0] < 514
