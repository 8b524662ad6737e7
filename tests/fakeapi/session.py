"""The session area of the fake API: who is logged in, ``nav``, and ``finger/spi``.

A request is logged in when it carries a non-empty ``SESSDATA`` cookie; the
account is derived from the cookie's value. ``nav`` publishes the current WBI
keys, which the server state owns: the application stores a function giving
them under ``CURRENT_KEYS``.
"""

from __future__ import annotations

import base64
import hashlib
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakeapi.answers import Answer, dumps, envelope, ok
from tests.fakeapi.data import official, official_verify, user_facts, vip

CURRENT_KEYS: web.AppKey[Callable[[], tuple[str, str]]] = web.AppKey("current_keys")
"""The application's function giving the current (img_key, sub_key)."""

_WBI_IMAGE = "https://i0.hdslb.com/bfs/wbi/{}.png"


def logged_in(request: web.Request) -> bool:
    """Whether *request* comes from a logged-in browser: it has a ``SESSDATA`` cookie."""
    return bool(request.cookies.get("SESSDATA"))


def nav_logged_in(mid: int, img_url: str, sub_url: str) -> dict[str, Any]:
    """``data`` of ``/x/web-interface/nav`` for a logged-in user, as in nav_logged_in.json."""
    user = user_facts(mid)
    vip_ = vip(user, icon=False)
    return {
        "isLogin": True,
        "email_verified": 1,
        "face": user["face"],
        "face_nft": 0,
        "face_nft_type": 0,
        "level_info": {
            "current_level": user["level"],
            "current_min": 0,
            "current_exp": 0,
            "next_exp": "--" if user["level"] == 6 else 200,
        },
        "mid": mid,
        "mobile_verified": 1,
        "money": 0.0,
        "moral": 70,
        "official": official(user),
        "officialVerify": official_verify(user),
        "pendant": {
            "pid": 0,
            "name": "",
            "image": "",
            "expire": 0,
            "image_enhance": "",
            "image_enhance_frame": "",
        },
        "scores": 0,
        "uname": user["name"],
        "vipDueDate": vip_["due_date"],
        "vipStatus": vip_["status"],
        "vipType": vip_["type"],
        "vip_pay_type": 0,
        "vip_theme_type": 0,
        "vip_label": vip_["label"],
        "vip_avatar_subscript": vip_["avatar_subscript"],
        "vip_nickname_color": vip_["nickname_color"],
        "vip": vip_,
        "wallet": {"mid": mid, "bcoin_balance": 0, "coupon_balance": 0, "coupon_due_time": 0},
        "has_shop": False,
        "shop_url": "",
        "allowance_count": 0,
        "answer_status": 0,
        "is_senior_member": 0,
        "wbi_img": {"img_url": img_url, "sub_url": sub_url},
        "is_jury": False,
    }


def _nav(request: web.Request) -> Answer:
    img_key, sub_key = request.app[CURRENT_KEYS]()
    img_url, sub_url = _WBI_IMAGE.format(img_key), _WBI_IMAGE.format(sub_key)
    if not logged_in(request):
        wbi_img = {"img_url": img_url, "sub_url": sub_url}
        return envelope(-101, "账号未登录", data={"isLogin": False, "wbi_img": wbi_img})
    sessdata = request.cookies["SESSDATA"]
    mid = int.from_bytes(hashlib.sha256(sessdata.encode()).digest()[:4]) + 1
    return ok(nav_logged_in(mid, img_url, sub_url))


def _finger_spi(_request: web.Request) -> Answer:
    """Fresh ``buvid3``/``buvid4`` values in the real formats."""
    suffix = f"{random.randrange(100000):05d}"
    issued = time.strftime("%y%m%d%H", time.localtime())
    b_3 = f"{str(uuid.uuid4()).upper()}{suffix}infoc"
    token = base64.b64encode(random.randbytes(16)).decode()
    b_4 = f"{str(uuid.uuid4()).upper()}{suffix}-0{issued}-{token}"
    body = {"code": 0, "data": {"b_3": b_3, "b_4": b_4}, "message": "ok"}
    return Answer(200, dumps(body), 0)


ENDPOINTS: dict[str, Callable[[web.Request], Answer]] = {
    "/x/web-interface/nav": _nav,
    "/x/frontend/finger/spi": _finger_spi,
}
