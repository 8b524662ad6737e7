"""Deterministic data shared by the fake API's areas: random text, images, users, WBI keys.

Every value is derived from an id alone (a ``random.Random`` seeded with a
string naming the id, never Python's ``hash``), so two server processes, or a
test computing the expected item, get the same data. A user's profile comes
from their mid; their follower, following and upload counts come from the
social graph (``graph``), so that every endpoint agrees on them. The shapes
follow the real responses saved in the project's API notes (``card``).
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from tests.fakeapi import graph

LATEST = 1782777600
"""2026-06-30: the fake site's "now"; no upload is newer, no VIP expires before it."""

_CJK = (
    "【原创】", "【官方MV】", "翻唱", "鬼畜", "手书", "实况", "测评", "教程", "日常vlog",
    "第一期", "终于来了", "全网首发", "这也太好笑了吧", "挑战一百天", "我的世界", "高能预警",
    "合集", "完整版", "中文字幕", "年度总结", "拜年祭", "猫猫", "深夜食堂", "当我给快板加了电音…",
)  # fmt: skip
_KANA = (
    "ありがとう", "初音ミク", "ボカロ", "歌ってみた", "踊ってみた", "にゃんこ", "さくら",
    "アニメ", "ゲーム実況",
)  # fmt: skip
_ASCII = (
    "Minecraft", "4K 60fps", "vlog", "Vol.2", "MV", "feat. Hatsune Miku", "Part 3", "RTX 5090",
    "Python", "LOL", "TOP10", "Remix", "live", "ver.2.0", "100%", "#1",
)  # fmt: skip
_EMOJI = ("🎉", "😂", "✨", "❤️", "🐱", "🔥", "👀", "🎵", "🥺", "⭐", "🍜")
_AWKWARD = (
    '"引号"', "'单引号'", "\\反斜杠\\", "C:\\Users\\bili", "<b>粗体</b>", "a&b=c",
    "\u3000全角空格",
)  # fmt: skip
_FRAGMENTS = (_CJK, _CJK, _KANA, _ASCII, _EMOJI)
_NAME_PARTS = (
    "陈", "桶", "猫", "喵", "星", "月", "小", "大", "の", "さくら", "ミク", "Neko", "Crazy",
    "Bucket", "_", "-", "233", "Official", "番茄", "木灵君", "谢拉", "阿", "糖", "酱", "君",
)  # fmt: skip
_VIP_LABELS = {
    0: ("", ""),
    1: ("大会员", "vip"),
    2: ("年度大会员", "annual_vip"),
}
_OFFICIAL_TITLES = ("bilibili 知名UP主", "bilibili 知名音乐UP主", "bilibili 2025百大UP主")


def seeded(kind: str, number: int) -> random.Random:
    """The random source of the *kind* facts about id *number*."""
    return random.Random(f"{kind}-{number}")


def hex_id(kind: str, number: int, length: int = 40) -> str:
    """A hex digest naming a file: image names on the CDN look like this."""
    return hashlib.sha1(f"{kind}-{number}".encode(), usedforsecurity=False).hexdigest()[:length]


def image_url(folder: str, kind: str, number: int, rng: random.Random) -> str:
    """An ``http://i{0,1,2}.hdslb.com/bfs/<folder>/<hex>.jpg`` image URL."""
    return f"http://i{rng.randrange(3)}.hdslb.com/bfs/{folder}/{hex_id(kind, number)}.jpg"


def text(rng: random.Random, low: int, high: int) -> str:
    """*low* to *high* fragments of CJK, kana, ASCII and emoji, sometimes an awkward one."""
    pieces = [rng.choice(rng.choice(_FRAGMENTS)) for _ in range(rng.randint(low, high))]
    if rng.random() < 0.1:
        pieces.insert(rng.randrange(len(pieces) + 1), rng.choice(_AWKWARD))
    return rng.choice(("", " ")).join(pieces)


# --- users ----------------------------------------------------------------------------------


def user_facts(mid: int) -> dict[str, Any]:
    """The profile of user *mid* that every user-shaped object is built from (no counts)."""
    rng = seeded("user", mid)
    if rng.random() < 0.25:
        name = f"bili_{rng.randrange(10**10, 10**11)}"
    else:
        name = "".join(rng.choice(_NAME_PARTS) for _ in range(rng.randint(2, 5)))
    vip_type = rng.choice((0, 0, 1, 2))
    official_type = -1 if rng.random() < 0.9 else 0
    return {
        "mid": mid,
        "name": name,
        "face": (
            "https://i0.hdslb.com/bfs/face/member/noface.jpg"
            if rng.random() < 0.1
            else image_url("face", "face", mid, rng).replace("http:", "https:")
        ),
        "sex": rng.choice(("男", "女", "保密", "保密")),
        "sign": text(rng, 0, 4),
        "level": rng.randint(0, 6),
        "article_count": rng.randrange(0, 30) if rng.random() < 0.2 else 0,
        "vip_type": vip_type,
        "vip_due": (LATEST + rng.randrange(0, 400 * 86400)) * 1000 if vip_type else 0,
        "official_type": official_type,
        "official_role": 1 if official_type == 0 else 0,
        "official_title": rng.choice(_OFFICIAL_TITLES) if official_type == 0 else "",
    }


def vip_label(user: dict[str, Any], *, images: bool) -> dict[str, Any]:
    """The ``vip.label`` object; *images* adds the ``img_label_*`` keys of the full flavour."""
    text_, theme = _VIP_LABELS[user["vip_type"]]
    label: dict[str, Any] = {
        "path": "",
        "text": text_,
        "label_theme": theme,
        "text_color": "#FFFFFF" if text_ else "",
        "bg_style": 1 if text_ else 0,
        "bg_color": "#FB7299" if text_ else "",
        "border_color": "",
    }
    if images:
        label.update(
            use_img_label=True,
            img_label_uri_hans="",
            img_label_uri_hant="",
            img_label_uri_hans_static=(
                "https://i0.hdslb.com/bfs/vip/8d4f8bfc713826a5412a0a27eaaac4d6b9ede1d9.png"
                if text_
                else ""
            ),
            img_label_uri_hant_static="",
        )
    return label


def vip(user: dict[str, Any], *, card: bool = False, icon: bool = True) -> dict[str, Any]:
    """The ``vip`` object: the card flavour adds ``vipType``/``vipStatus``, others TV fields."""
    vip_type = user["vip_type"]
    shape: dict[str, Any] = {
        "type": vip_type,
        "status": 1 if vip_type else 0,
        "due_date": user["vip_due"],
        "vip_pay_type": 0,
        "theme_type": 0,
        "label": vip_label(user, images=not card),
        "avatar_subscript": 1 if vip_type else 0,
        "nickname_color": "#FB7299" if vip_type else "",
        "role": {0: 0, 1: 1, 2: 3}[vip_type],
        "avatar_subscript_url": "",
    }
    if card:
        shape.update(vipType=vip_type, vipStatus=shape["status"])
    else:
        shape.update(tv_vip_status=0, tv_vip_pay_type=0, tv_due_date=0)
        if icon:
            shape["avatar_icon"] = {"icon_type": 1 if vip_type else 0, "icon_resource": {}}
    return shape


def official(user: dict[str, Any]) -> dict[str, Any]:
    """The ``official``/``Official`` object: role, title, desc and type (-1 none, 0 person)."""
    return {
        "role": user["official_role"],
        "title": user["official_title"],
        "desc": "",
        "type": user["official_type"],
    }


def official_verify(user: dict[str, Any]) -> dict[str, Any]:
    """The older ``official_verify``/``officialVerify`` object: type and desc."""
    return {"type": user["official_type"], "desc": user["official_title"]}


def decorations(mid: int) -> dict[str, Any]:
    """The pendant, nameplate and space banners of *mid*: the same on card and space pages."""
    rng = seeded("card", mid)
    has_pendant = rng.random() < 0.2
    has_nameplate = rng.random() < 0.3
    return {
        "pendant": {
            "pid": rng.randrange(1, 5000) if has_pendant else 0,
            "name": "初音未来13周年" if has_pendant else "",
            "image": image_url("garb/item", "pendant", mid, rng) if has_pendant else "",
            "expire": 0,
            "image_enhance": "",
            "image_enhance_frame": "",
        },
        "nameplate": {
            "nid": rng.randrange(1, 100) if has_nameplate else 0,
            "name": "见习偶像" if has_nameplate else "",
            "image": image_url("face", "plate", mid, rng) if has_nameplate else "",
            "image_small": image_url("face", "plate-s", mid, rng) if has_nameplate else "",
            "level": "普通勋章" if has_nameplate else "",
            "condition": "所有自制视频总播放数>=10万" if has_nameplate else "",
        },
        "space": {
            "s_img": image_url("space", "space-s", mid, rng),
            "l_img": image_url("space", "space-l", mid, rng),
        },
    }


def user_card(mid: int) -> dict[str, Any]:
    """``data`` of ``/x/web-interface/card?mid=`` (anonymous caller), as in card.json."""
    user = user_facts(mid)
    extras = decorations(mid)
    follower_count = len(graph.followers(mid))
    following_count = len(graph.followings(mid))
    return {
        "card": {
            "mid": str(mid),
            "name": user["name"],
            "approve": False,
            "sex": user["sex"],
            "rank": "10000",
            "face": user["face"],
            "DisplayRank": "0",
            "regtime": 0,
            "spacesta": 0,
            "birthday": "",
            "place": "",
            "description": "",
            "article": 0,
            "attentions": [],
            "fans": follower_count,
            "friend": following_count,
            "attention": following_count,
            "sign": user["sign"],
            "level_info": {
                "current_level": user["level"],
                "current_min": 0,
                "current_exp": 0,
                "next_exp": 0,
            },
            "pendant": extras["pendant"],
            "nameplate": extras["nameplate"],
            "Official": official(user),
            "official_verify": official_verify(user),
            "vip": vip(user, card=True),
        },
        "space": extras["space"],
        "following": False,
        "archive_count": len(graph.uploads(mid)),
        "article_count": user["article_count"],
        "follower": follower_count,
        "like_num": follower_count * seeded("likes", mid).randrange(0, 40),
    }


def wbi_keys(generation: int) -> tuple[str, str]:
    """The (img_key, sub_key) pair of key generation *generation*: 32 hex chars each."""
    return (
        hashlib.md5(f"img-{generation}".encode(), usedforsecurity=False).hexdigest(),
        hashlib.md5(f"sub-{generation}".encode(), usedforsecurity=False).hexdigest(),
    )
