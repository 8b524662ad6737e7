"""WBI request signing and the ``dm_img_*`` risk parameters, as pure functions.

Bilibili signs the query of its ``/wbi/`` endpoints with ``w_rid``, the md5 of
the sorted, percent-encoded parameters (``wts``, the Unix time, included)
followed by a "mixin key" derived from two site-wide keys published by
``/x/web-interface/nav`` in ``data.wbi_img``. The keys rotate about daily.
:func:`sign_for_sending` signs a request the WBI middleware marked in
``meta["bili_wbi"]``; the download handler calls it when the request is sent.
See docs/bilibili-api.md for the algorithm and its test vectors.
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping

    from scrapy import Request

WBI_META = "bili_wbi"
"""Meta key of a request to sign: ``{"mixin": <mixin key>}`` from the middleware, with
``"params"`` (more query parameters to sign, the ``dm_img_*`` ones) for some paths, plus
``"wts": <Unix seconds>`` once the handler has signed it."""

MIXIN_KEY_ENC_TAB = (
    46, 47, 18, 2, 53, 8, 23, 32, 15, 50, 10, 31, 58, 3, 45, 35,
    27, 43, 5, 49, 33, 9, 42, 19, 29, 28, 14, 39, 12, 38, 41, 13,
    37, 48, 7, 16, 24, 55, 40, 61, 26, 17, 0, 1, 60, 51, 30, 4,
    22, 25, 54, 21, 56, 59, 6, 63, 57, 62, 11, 36, 20, 34, 44, 52,
)  # fmt: skip
"""Permutation of the 64 characters of ``img_key + sub_key``; 32 are kept."""

SIGNATURE_PARAMS = frozenset({"w_rid", "wts"})
"""Query parameters that the signature adds and that change on every signing."""

_STRIPPED_CHARS = str.maketrans("", "", "!'()*")


def key_from_url(url: str) -> str:
    """Return the key hidden in a ``wbi_img`` URL: its file name, no extension."""
    return posixpath.splitext(posixpath.basename(urlsplit(url).path))[0]


def mixin_key(img_key: str, sub_key: str) -> str:
    """Return the 32-character key appended to the query before hashing."""
    raw = img_key + sub_key
    return "".join(raw[i] for i in MIXIN_KEY_ENC_TAB)[:32]


def signed_query(params: Mapping[str, object], mixin: str, wts: int) -> str:
    """Return the query string of *params* signed with *mixin* at time *wts*.

    Any ``w_rid``/``wts`` already in *params* is replaced, so re-signing a
    request gives a fresh signature. Characters ``!'()*`` are removed from the
    values and the query is encoded like JavaScript's ``encodeURIComponent``
    (``%20`` for a space, never ``+``), as the site's own script does.
    """
    items = {k: str(v).translate(_STRIPPED_CHARS) for k, v in params.items()}
    for name in SIGNATURE_PARAMS:
        items.pop(name, None)
    items["wts"] = str(wts)
    query = urlencode(sorted(items.items()), quote_via=quote)
    w_rid = hashlib.md5((query + mixin).encode()).hexdigest()  # noqa: S324 (Bilibili's choice)
    return f"{query}&w_rid={w_rid}"


def sign_url(url: str, mixin: str, wts: int, extra: Mapping[str, str] | None = None) -> str:
    """Return *url* with its query, plus the *extra* parameters, signed by *mixin* at *wts*.

    Repeated query parameters keep their last value: WBI endpoints take none.
    """
    parts = urlsplit(url)
    params = {**dict(parse_qsl(parts.query, keep_blank_values=True)), **(extra or {})}
    return urlunsplit(parts._replace(query=signed_query(params, mixin, wts)))


def sign_for_sending(request: Request, now: float) -> str | None:
    """Return the URL to send for *request*, signed at *now*; None if it is not to be signed.

    The request is to be signed when the WBI middleware put a mixin key in
    ``meta["bili_wbi"]``; the signing time is recorded there as ``wts``. A new dict
    is stored, not the old one updated: copies of a request (retries) share it.
    """
    signature = request.meta.get(WBI_META)
    if signature is None:
        return None
    wts = int(now)
    request.meta[WBI_META] = {**signature, "wts": wts}
    return sign_url(request.url, signature["mixin"], wts, signature.get("params"))


WEBGL_VERSIONS = ("WebGL 1.0 (OpenGL ES 2.0 Chromium)", "WebGL 1.0")
WEBGL_RENDERERS = (
    "ANGLE (Intel, Intel(R) UHD Graphics 620 Direct3D11 vs_5_0 ps_5_0, D3D11)Google Inc. (Intel)",
    "ANGLE (NVIDIA, NVIDIA GeForce GTX 1660 SUPER Direct3D11 vs_5_0 ps_5_0, D3D11)"
    "Google Inc. (NVIDIA)",
    "ANGLE (AMD, AMD Radeon RX 580 Series Direct3D11 vs_5_0 ps_5_0, D3D11)Google Inc. (AMD)",
)
"""Unmasked WebGL renderer + vendor strings of common Windows Chrome set-ups."""
SCREENS = ((1920, 1080), (2560, 1440), (1536, 864), (1366, 768))


def _webgl_string(text: str) -> str:
    """Base64 of *text* without its last two characters, as the site's script sends it."""
    return base64.b64encode(text.encode()).decode()[:-2]


def dm_img_params(rng: random.Random) -> dict[str, str]:
    """Return plausible ``dm_img_*`` risk parameters of one browser, drawn with *rng*.

    The space endpoints answer -352 to anonymous clients without them. No mouse
    events (``dm_img_list`` empty, which the site accepts), the WebGL version and
    renderer strings of a common set-up, and ``dm_img_inter`` derived from a
    screen size and an unscrolled page as the site's script derives them
    (docs/bilibili-api.md).
    """
    width, height = rng.choice(SCREENS)
    size_noise, offset_noise = rng.randrange(114), rng.randrange(514)
    inter = {
        "ds": [],
        "wh": [
            2 * width + 2 * height + 3 * size_noise,
            4 * width - height + size_noise,
            size_noise,
        ],
        "of": [offset_noise, 2 * offset_noise, offset_noise],
    }
    return {
        "dm_img_list": "[]",
        "dm_img_str": _webgl_string(rng.choice(WEBGL_VERSIONS)),
        "dm_cover_img_str": _webgl_string(rng.choice(WEBGL_RENDERERS)),
        "dm_img_inter": json.dumps(inter, separators=(",", ":")),
    }
