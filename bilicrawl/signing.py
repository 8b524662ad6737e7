"""WBI request signing, as pure functions.

Bilibili signs the query of its ``/wbi/`` endpoints with ``w_rid``, the md5 of
the sorted, percent-encoded parameters (``wts``, the Unix time, included)
followed by a "mixin key" derived from two site-wide keys published by
``/x/web-interface/nav`` in ``data.wbi_img``. The keys rotate about daily.
See docs/bilibili-api.md for the algorithm and its test vectors.
"""

from __future__ import annotations

import hashlib
import posixpath
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit

if TYPE_CHECKING:
    from collections.abc import Mapping

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
