"""Deterministic Bilibili data for the fake API: videos, parts, tags, users.

Every value is derived from the id alone (a ``random.Random`` seeded with a
string naming the id, never Python's ``hash``), so two server processes, or a
test computing the expected item, get the same data. The shapes follow the real
responses saved in the project's API notes (``view``, ``pagelist``, ``card``,
``nav``, ``view/detail/tag``).
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from bilicrawl.ids import MAX_AID, av2bv

ERROR_AIDS: dict[int, tuple[int, str]] = {
    404: (-404, "啥都木有"),
    62002: (62002, "稿件不可见"),
    62004: (62004, "稿件审核中"),
    62012: (62012, "仅UP主自己可见"),
}
"""Reserved aids (also reachable by their BV ids) and the (code, message) they answer."""

BAD_REQUEST = (-400, "请求错误")
"""The (code, message) for a missing or malformed ``aid``/``bvid``."""

_FIRST_PUBDATE = 1245974400  # 2009-06-26, the site's first upload
_RANDOM_AIDS_FROM = 1585353600  # 2020-03-28: aids stopped being sequential
_LAST_PUBDATE = 1782777600  # 2026-06-30
_SEQUENTIAL_AIDS = 99999999

_CATEGORIES = (
    (28, "原创音乐", 1003, "原创音乐"),
    (31, "翻唱", 1004, "翻唱"),
    (30, "VOCALOID·UTAU", 2061, "人力VOCALOID"),
    (17, "单机游戏", 1008, "单机游戏"),
    (171, "电子竞技", 1009, "电子竞技"),
    (27, "综合", 2025, "综合"),
    (47, "短片·手书", 2037, "手书"),
    (22, "鬼畜调教", 1007, "鬼畜调教"),
    (201, "科学科普", 1010, "科学科普"),
    (95, "数码", 1012, "数码"),
    (76, "美食制作", 1020, "美食制作"),
    (21, "日常", 1021, "日常"),
    (138, "搞笑", 1022, "搞笑"),
    (182, "影视杂谈", 1001, "影视杂谈"),
    (75, "动物综合", 1024, "动物综合"),
)
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
_TAGS = (
    "音乐", "原创", "VOCALOID", "初音ミク", "游戏", "单机游戏", "我的世界", "搞笑", "鬼畜",
    "日常", "vlog", "美食", "猫", "科普", "数码", "手书", "翻唱", "电音", "Remix", "教程",
    "生活记录", "动画", "必剪创作", "打卡挑战",
)  # fmt: skip
_SONGS = ("夜に駆ける", "千本桜", "Lemon", "孤勇者", "晴天", "Bad Apple!!")
_NAME_PARTS = (
    "陈", "桶", "猫", "喵", "星", "月", "小", "大", "の", "さくら", "ミク", "Neko", "Crazy",
    "Bucket", "_", "-", "233", "Official", "番茄", "木灵君", "谢拉", "阿", "糖", "酱", "君",
)  # fmt: skip
_ROLES = ("曲绘", "混音", "后期", "剪辑", "出演", "策划", "编曲", "作词", "翻译")
_DIMENSIONS = (
    (1920, 1080), (1920, 1080), (1280, 720), (3840, 2160), (1080, 1920), (720, 1280),
    (1484, 1080), (992, 720), (640, 360),
)  # fmt: skip
_MID_POOL = 500
_VIP_LABELS = {
    0: ("", ""),
    1: ("大会员", "vip"),
    2: ("年度大会员", "annual_vip"),
}
_OFFICIAL_TITLES = ("bilibili 知名UP主", "bilibili 知名音乐UP主", "bilibili 2025百大UP主")


def _rng(kind: str, number: int) -> random.Random:
    return random.Random(f"{kind}-{number}")


def _hex(kind: str, number: int, length: int = 40) -> str:
    return hashlib.sha1(f"{kind}-{number}".encode(), usedforsecurity=False).hexdigest()[:length]


def _image(folder: str, kind: str, number: int, rng: random.Random) -> str:
    return f"http://i{rng.randrange(3)}.hdslb.com/bfs/{folder}/{_hex(kind, number)}.jpg"


def _text(rng: random.Random, low: int, high: int) -> str:
    pieces = [rng.choice(rng.choice(_FRAGMENTS)) for _ in range(rng.randint(low, high))]
    if rng.random() < 0.1:
        pieces.insert(rng.randrange(len(pieces) + 1), rng.choice(_AWKWARD))
    return rng.choice(("", " ")).join(pieces)


def _title(rng: random.Random) -> str:
    title = _text(rng, 2, 5)
    if rng.random() < 0.02:
        title += "\n" + _text(rng, 1, 2)
    return title


def _desc(rng: random.Random, copyright_: int) -> str:
    if rng.random() < 0.2:
        return "-"
    lines = [_text(rng, 1, 6) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.3:
        lines.append(f"原版：av{rng.randrange(1, _SEQUENTIAL_AIDS)}")
    if copyright_ == 2:
        lines.append(
            f"转载自 https://www.youtube.com/watch?v={_hex('yt', rng.getrandbits(32), 11)}"
        )
    return "\n".join(lines)


# --- users ----------------------------------------------------------------------------------


def _owner_mid(rng: random.Random) -> int:
    """A mid; about a third of the videos come from a pool of recurring uploaders."""
    if rng.random() < 0.35:
        return _rng("mid-pool", rng.randrange(_MID_POOL)).randrange(1, 700_000_000)
    if rng.random() < 0.6:
        return rng.randrange(1, 700_000_000)
    return rng.randrange(3_493_000_000_000_000, 3_547_000_000_000_000)


def _user(mid: int) -> dict[str, Any]:
    """The facts about user *mid* that every user-shaped object is built from."""
    rng = _rng("user", mid)
    if rng.random() < 0.25:
        name = f"bili_{rng.randrange(10**10, 10**11)}"
    else:
        name = "".join(rng.choice(_NAME_PARTS) for _ in range(rng.randint(2, 5)))
    fans = int(10 ** rng.uniform(0, 7.5)) if rng.random() < 0.95 else 0
    vip_type = rng.choice((0, 0, 1, 2))
    official_type = -1 if rng.random() < 0.9 else 0
    return {
        "mid": mid,
        "name": name,
        "face": (
            "https://i0.hdslb.com/bfs/face/member/noface.jpg"
            if rng.random() < 0.1
            else _image("face", "face", mid, rng).replace("http:", "https:")
        ),
        "sex": rng.choice(("男", "女", "保密", "保密")),
        "sign": _text(rng, 0, 4),
        "level": rng.randint(0, 6),
        "fans": fans,
        "attention": rng.randrange(0, 2000),
        "archive_count": rng.randrange(0, 1500),
        "article_count": rng.randrange(0, 30) if rng.random() < 0.2 else 0,
        "like_num": fans * rng.randrange(0, 40),
        "vip_type": vip_type,
        "vip_due": (_LAST_PUBDATE + rng.randrange(0, 400 * 86400)) * 1000 if vip_type else 0,
        "official_type": official_type,
        "official_role": 1 if official_type == 0 else 0,
        "official_title": rng.choice(_OFFICIAL_TITLES) if official_type == 0 else "",
    }


def _vip_label(user: dict[str, Any], *, images: bool) -> dict[str, Any]:
    text, theme = _VIP_LABELS[user["vip_type"]]
    label: dict[str, Any] = {
        "path": "",
        "text": text,
        "label_theme": theme,
        "text_color": "#FFFFFF" if text else "",
        "bg_style": 1 if text else 0,
        "bg_color": "#FB7299" if text else "",
        "border_color": "",
    }
    if images:
        label.update(
            use_img_label=True,
            img_label_uri_hans="",
            img_label_uri_hant="",
            img_label_uri_hans_static=(
                "https://i0.hdslb.com/bfs/vip/8d4f8bfc713826a5412a0a27eaaac4d6b9ede1d9.png"
                if text
                else ""
            ),
            img_label_uri_hant_static="",
        )
    return label


def _vip(user: dict[str, Any], *, card: bool = False, icon: bool = True) -> dict[str, Any]:
    """The ``vip`` object: the card flavour adds ``vipType``/``vipStatus``, others TV fields."""
    vip_type = user["vip_type"]
    vip: dict[str, Any] = {
        "type": vip_type,
        "status": 1 if vip_type else 0,
        "due_date": user["vip_due"],
        "vip_pay_type": 0,
        "theme_type": 0,
        "label": _vip_label(user, images=not card),
        "avatar_subscript": 1 if vip_type else 0,
        "nickname_color": "#FB7299" if vip_type else "",
        "role": {0: 0, 1: 1, 2: 3}[vip_type],
        "avatar_subscript_url": "",
    }
    if card:
        vip.update(vipType=vip_type, vipStatus=vip["status"])
    else:
        vip.update(tv_vip_status=0, tv_vip_pay_type=0, tv_due_date=0)
        if icon:
            vip["avatar_icon"] = {"icon_type": 1 if vip_type else 0, "icon_resource": {}}
    return vip


def _official(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "role": user["official_role"],
        "title": user["official_title"],
        "desc": "",
        "type": user["official_type"],
    }


def _staff_member(mid: int, role: str) -> dict[str, Any]:
    user = _user(mid)
    return {
        "mid": mid,
        "title": role,
        "name": user["name"],
        "face": user["face"],
        "vip": _vip(user),
        "official": _official(user),
        "follower": user["fans"],
        "label_style": 0,
    }


def user_card(mid: int) -> dict[str, Any]:
    """``data`` of ``/x/web-interface/card?mid=`` (anonymous caller), as in card.json."""
    user = _user(mid)
    rng = _rng("card", mid)
    has_pendant = rng.random() < 0.2
    has_nameplate = rng.random() < 0.3
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
            "fans": user["fans"],
            "friend": user["attention"],
            "attention": user["attention"],
            "sign": user["sign"],
            "level_info": {
                "current_level": user["level"],
                "current_min": 0,
                "current_exp": 0,
                "next_exp": 0,
            },
            "pendant": {
                "pid": rng.randrange(1, 5000) if has_pendant else 0,
                "name": "初音未来13周年" if has_pendant else "",
                "image": _image("garb/item", "pendant", mid, rng) if has_pendant else "",
                "expire": 0,
                "image_enhance": "",
                "image_enhance_frame": "",
            },
            "nameplate": {
                "nid": rng.randrange(1, 100) if has_nameplate else 0,
                "name": "见习偶像" if has_nameplate else "",
                "image": _image("face", "plate", mid, rng) if has_nameplate else "",
                "image_small": _image("face", "plate-s", mid, rng) if has_nameplate else "",
                "level": "普通勋章" if has_nameplate else "",
                "condition": "所有自制视频总播放数>=10万" if has_nameplate else "",
            },
            "Official": _official(user),
            "official_verify": {"type": user["official_type"], "desc": user["official_title"]},
            "vip": _vip(user, card=True),
        },
        "space": {
            "s_img": _image("space", "space-s", mid, rng),
            "l_img": _image("space", "space-l", mid, rng),
        },
        "following": False,
        "archive_count": user["archive_count"],
        "article_count": user["article_count"],
        "follower": user["fans"],
        "like_num": user["like_num"],
    }


def nav_logged_in(mid: int, img_url: str, sub_url: str) -> dict[str, Any]:
    """``data`` of ``/x/web-interface/nav`` for a logged-in user, as in nav_logged_in.json."""
    user = _user(mid)
    vip = _vip(user, icon=False)
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
        "official": _official(user),
        "officialVerify": {"type": user["official_type"], "desc": user["official_title"]},
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
        "vipDueDate": vip["due_date"],
        "vipStatus": vip["status"],
        "vipType": vip["type"],
        "vip_pay_type": 0,
        "vip_theme_type": 0,
        "vip_label": vip["label"],
        "vip_avatar_subscript": vip["avatar_subscript"],
        "vip_nickname_color": vip["nickname_color"],
        "vip": vip,
        "wallet": {"mid": mid, "bcoin_balance": 0, "coupon_balance": 0, "coupon_due_time": 0},
        "has_shop": False,
        "shop_url": "",
        "allowance_count": 0,
        "answer_status": 0,
        "is_senior_member": 0,
        "wbi_img": {"img_url": img_url, "sub_url": sub_url},
        "is_jury": False,
    }


# --- videos ---------------------------------------------------------------------------------


def _pubdate(aid: int, rng: random.Random) -> int:
    """Old aids were sequential, so they map to dates in order; later ones are random."""
    if aid <= _SEQUENTIAL_AIDS:
        span = _RANDOM_AIDS_FROM - _FIRST_PUBDATE
        guess = _FIRST_PUBDATE + span * aid // _SEQUENTIAL_AIDS + rng.randrange(-30, 30) * 86400
        return min(max(guess, _FIRST_PUBDATE), _RANDOM_AIDS_FROM)
    return rng.randrange(_RANDOM_AIDS_FROM, _LAST_PUBDATE)


def _part_count(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.5:
        return 1
    if roll < 0.97:
        return rng.randint(2, 6)
    return rng.randint(20, 40)


def _duration(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.05:
        return rng.randint(1, 10)
    if roll < 0.9:
        return rng.randint(15, 900)
    return rng.randint(900, 3 * 3600)


def _pages(aid: int) -> list[dict[str, Any]]:
    """The parts with every key of a ``view`` page (``ctime`` included)."""
    rng = _rng("pages", aid)
    count = _part_count(rng)
    ctime = _pubdate(aid, _rng("dates", aid)) - _rng("ctime", aid).randrange(0, 3 * 86400)
    cid = rng.randrange(1_000_000, 30_000_000_000)
    pages = []
    for page in range(1, count + 1):
        width, height = rng.choice(_DIMENSIONS)
        if count == 1:
            part = rng.choice((_title(rng), "P1", f"{_hex('file', aid, 8)}.mp4", ""))
        else:
            part = rng.choice((f"{page - 1:02d}. ", f"P{page} ", "")) + _text(rng, 1, 3)
        item = {
            "cid": cid,
            "page": page,
            "from": "vupload",
            "part": part,
            "duration": _duration(rng),
            "vid": "",
            "weblink": "",
            "dimension": {"width": width, "height": height, "rotate": 0},
        }
        if ctime >= _RANDOM_AIDS_FROM:
            item["first_frame"] = (
                f"http://i0.hdslb.com/bfs/storyff/{_hex('ff', cid, 32)}_firsti.jpg"
            )
        item["ctime"] = ctime
        pages.append(item)
        cid += rng.randint(1, 5000)
    return pages


def video_pages(aid: int) -> list[dict[str, Any]]:
    """``data`` of ``/x/player/pagelist``: the parts of *aid*, as in pagelist.json."""
    pages = _pages(aid)
    for page in pages:
        del page["ctime"]
    return pages


def _stat(aid: int, rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.05:
        view = 0
    elif roll < 0.08:
        view = rng.randrange(2**31, 2**33)
    else:
        view = int(10 ** rng.uniform(1, 7.7))
    like = int(view * rng.uniform(0, 0.12))
    favorite = int(like * rng.uniform(0, 0.9))
    share = 0 if rng.random() < 0.2 else int(favorite * rng.uniform(0, 0.5))
    return {
        "aid": aid,
        "view": view,
        "danmaku": int(view * rng.uniform(0, 0.01)),
        "reply": int(view * rng.uniform(0, 0.004)),
        "favorite": favorite,
        "coin": int(like * rng.uniform(0, 0.8)),
        "share": share,
        "now_rank": 0,
        "his_rank": rng.randint(1, 100) if view > 10**6 and rng.random() < 0.3 else 0,
        "like": like,
        "dislike": 0,
        "evaluation": "",
        "vt": 0,
    }


def _staff(owner: int, rng: random.Random) -> list[dict[str, Any]]:
    members = [_staff_member(owner, "UP主")]
    for role in rng.sample(_ROLES, rng.randint(1, 3)):
        members.append(_staff_member(_owner_mid(rng), role))
    return members


def _honors(aid: int, stat: dict[str, Any]) -> dict[str, Any]:
    if not stat["his_rank"]:
        return {}
    honors = [
        {"aid": aid, "type": 3, "desc": f"全站排行榜最高第{stat['his_rank']}名",
         "weekly_recommend_num": 0},
        {"aid": aid, "type": 4, "desc": "热门", "weekly_recommend_num": 0},
    ]  # fmt: skip
    return {"honor": honors}


def video_view(aid: int) -> dict[str, Any]:
    """``data`` of ``/x/web-interface/view`` for *aid*, with every key of view.json."""
    bvid = av2bv(aid)
    rng = _rng("view", aid)
    pages = _pages(aid)
    first = pages[0]
    pubdate = _pubdate(aid, _rng("dates", aid))
    tid, tname, tid_v2, tname_v2 = rng.choice(_CATEGORIES)
    copyright_ = 1 if rng.random() < 0.7 else 2
    desc = _desc(rng, copyright_)
    owner = _owner_mid(rng)
    user = _user(owner)
    stat = _stat(aid, rng)
    staff = _staff(owner, rng) if rng.random() < 0.1 else None
    dynamic = "" if rng.random() < 0.5 else "".join(f"#{tag}#" for tag in rng.sample(_TAGS, 3))
    view: dict[str, Any] = {
        "bvid": bvid,
        "aid": aid,
        "videos": len(pages),
        "tid": tid,
        "tid_v2": tid_v2,
        "tname": tname,
        "tname_v2": tname_v2,
        "copyright": copyright_,
        "pic": _image("archive", "pic", aid, rng),
        "title": _title(rng),
        "pubdate": pubdate,
        "ctime": first["ctime"],
        "desc": desc,
        "desc_v2": [{"raw_text": desc, "type": 1, "biz_id": 0}],
        "state": 0,
        "duration": sum(page["duration"] for page in pages),
        "mission_id": rng.randrange(10_000, 4_000_000) if rng.random() < 0.1 else 0,
        "rights": {
            "bp": 0,
            "elec": 0,
            "download": 1,
            "movie": 0,
            "pay": 0,
            "hd5": 1 if first["dimension"]["width"] >= 1920 else 0,
            "no_reprint": 1 if copyright_ == 1 else 0,
            "autoplay": 1,
            "ugc_pay": 0,
            "is_cooperation": 1 if staff else 0,
            "ugc_pay_preview": 0,
            "no_background": 0,
            "clean_mode": 0,
            "is_stein_gate": 0,
            "is_360": 0,
            "no_share": 0,
            "arc_pay": 0,
            "free_watch": 0,
        },
        "owner": {"mid": owner, "name": user["name"], "face": user["face"]},
        "stat": stat,
        "argue_info": {"argue_msg": "", "argue_type": 0, "argue_link": ""},
        "dynamic": dynamic,
        "cid": first["cid"],
        "dimension": dict(first["dimension"]),
        "premiere": None,
        "teenage_mode": 0,
        "is_chargeable_season": False,
        "is_story": first["dimension"]["height"] > first["dimension"]["width"],
        "is_upower_exclusive": False,
        "is_upower_play": False,
        "is_upower_preview": False,
        "enable_vt": 0,
        "vt_display": "",
        "is_upower_exclusive_with_qa": False,
        "no_cache": False,
        "pages": pages,
        "subtitle": {"allow_submit": False, "list": []},
    }
    if staff:
        view["staff"] = staff
    view.update(
        is_season_display=False,
        user_garb={"url_image_ani_cut": ""},
        honor_reply=_honors(aid, stat),
        like_icon="",
        need_jump_bv=False,
        disable_show_up_info=False,
        is_story_play=1,
        is_view_self=False,
    )
    return view


_RELATED_KEYS = (
    "aid", "videos", "tid", "tname", "copyright", "pic", "title", "pubdate", "ctime", "desc",
    "state", "duration", "rights", "owner", "stat", "dynamic", "cid", "dimension", "bvid",
)  # fmt: skip


def related(aid: int) -> list[dict[str, Any]]:
    """``data.Related`` of ``view/detail``: 0-10 view-like objects without ``pages``."""
    rng = _rng("related", aid)
    items = []
    for _ in range(rng.randint(0, 10)):
        other = rng.randrange(1, MAX_AID)
        while other in ERROR_AIDS or other == aid:
            other = rng.randrange(1, MAX_AID)
        view = video_view(other)
        item = {key: view[key] for key in _RELATED_KEYS}
        item.update(
            short_link_v2=f"https://b23.tv/{view['bvid']}",
            season_type=0,
            is_ogv=False,
            ogv_info=None,
            rcmd_reason="",
            enable_vt=0,
            ai_rcmd=None,
        )
        items.append(item)
    return items


def video_tags(aid: int) -> list[dict[str, Any]]:
    """``data`` of ``/x/web-interface/view/detail/tag``: 0-8 tags, some topics and a bgm."""
    rng = _rng("tags", aid)
    tags = []
    for name in rng.sample(_TAGS, rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 8, 3, 4, 5))):
        tag_id = rng.randrange(1, 30_000_000)
        topic = rng.random() < 0.15
        tags.append(
            {
                "tag_id": tag_id,
                "tag_name": name,
                "music_id": "",
                "tag_type": "topic" if topic else "old_channel",
                "jump_url": (
                    f"https://www.bilibili.com/v/topic/detail/?topic_id={tag_id}" if topic else ""
                ),
            }
        )
    if rng.random() < 0.15:
        music_id = f"MA{rng.randrange(10**17, 10**18)}"
        tags.append(
            {
                "tag_id": rng.randrange(1, 30_000_000),
                "tag_name": f"发现《{rng.choice(_SONGS)}》",
                "music_id": music_id,
                "tag_type": "bgm",
                "jump_url": f"https://music.bilibili.com/h5/music-detail?music_id={music_id}",
            }
        )
    return tags[:8]


def video_detail(aid: int) -> dict[str, Any]:
    """``data`` of ``/x/web-interface/wbi/view/detail``: View, Tags, owner Card, Related."""
    view = video_view(aid)
    return {
        "View": view,
        "Tags": video_tags(aid),
        "Card": user_card(view["owner"]["mid"]),
        "Related": related(aid),
    }


def wbi_keys(generation: int) -> tuple[str, str]:
    """The (img_key, sub_key) pair of key generation *generation*: 32 hex chars each."""
    return (
        hashlib.md5(f"img-{generation}".encode(), usedforsecurity=False).hexdigest(),
        hashlib.md5(f"sub-{generation}".encode(), usedforsecurity=False).hexdigest(),
    )
