"""The fake API as a browser calls it: plain GETs, WBI-signed queries, cookies, key trees."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from typing import Any

from bilicrawl.signing import mixin_key, signed_query
from tests.fakeapi.process import FakeApi

BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
BUVID = "buvid3=D9656DA8-9BEF-F464-5B72-C4849AFD336379044infoc"
LOGGED_IN = f"{BUVID}; SESSDATA=abc%2C123"
DM_IMG = {
    "dm_img_list": "[]",
    "dm_img_str": "V2ViR0wgMS4wIChPcGVuR0wgRVMgMi4wIENocm9taXVtKQ",
    "dm_cover_img_str": "QU5HTEUgKEludGVsLCBJbnRlbChSKSBIRCBHcmFwaGljcyBEaXJlY3QzRDExKQ",
    "dm_img_inter": '{"ds":[],"wh":[5231,6067,75],"of":[475,950,475]}',
}
"""The browser's risk parameters, as bilibili-api and yt-dlp send them."""


def fetch(
    url: str, headers: dict[str, str] | None = None, cookies: str = ""
) -> tuple[int, dict[str, str], bytes]:
    """GET *url* as a browser; return (status, headers, raw body) even for HTTP errors."""
    headers = {"User-Agent": BROWSER_UA, **(headers or {})}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (the fake API's URL)
    if cookies:
        request.add_header("Cookie", cookies)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def get(api: FakeApi, path: str, query: str = "", **options: Any) -> tuple[int, Any]:
    """GET an API path; return (HTTP status, decoded JSON body)."""
    status, _, body = fetch(f"{api.url}{path}?{query}" if query else api.url + path, **options)
    return status, json.loads(body)


def signed(api: FakeApi, params: dict[str, str], keys: tuple[str, str] | None = None) -> str:
    return signed_query(params, mixin_key(*(keys or api.keys())), int(time.time()))


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    for kind, name in ((int, "int"), (float, "float"), (str, "str"), (list, "array")):
        if isinstance(value, kind):
            return name
    return "object"


def flatten(
    value: object, path: str = "", into: dict[str, set[str]] | None = None
) -> dict[str, set[str]]:
    """``{path: {json types}}`` for every node of *value*, list items under ``path[]``."""
    into = {} if into is None else into
    into.setdefault(path, set()).add(json_type(value))
    if isinstance(value, dict):
        for key, child in value.items():
            flatten(child, f"{path}.{key}" if path else key, into)
    elif isinstance(value, list):
        for child in value:
            flatten(child, f"{path}[]", into)
    return into


def parse_keys(spec: str) -> dict[str, Any]:
    """``"a b{c}"`` -> ``{"a": None, "b": {"c": None}}``: the key tree a ``*_KEYS`` names."""
    root: dict[str, Any] = {}
    stack = [root]
    for word in re.findall(r"[^\s{}]+|[{}]", spec):
        if word == "{":
            last = next(reversed(stack[-1]))
            stack[-1][last] = {}
            stack.append(stack[-1][last])
        elif word == "}":
            stack.pop()
        else:
            stack[-1][word] = None
    return root


def key_tree(value: object) -> Any:
    """The keys of *value*, objects nested; lists and scalars are leaves (None)."""
    if isinstance(value, dict):
        return {key: key_tree(child) for key, child in value.items()}
    return None


def space(api: FakeApi, path: str, cookies: str = BUVID, **params: Any) -> dict[str, Any]:
    """GET a signed ``/x/space/wbi/`` path with the dm_img parameters; the JSON body."""
    return get(api, path, signed(api, {**DM_IMG, **params}), cookies=cookies)[1]
