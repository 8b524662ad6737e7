"""The video area of the fake API: ``view``, ``view/detail``, its tags, ``pagelist``.

Each video is derived from its aid alone (see ``data``), as in view.json,
pagelist.json and view/detail/tag. The uploads of the graph's users (see
``graph.uploads``) name that user as their owner; every other aid keeps the
owner its own random draw gives it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bilicrawl.ids import MAX_AID, BadVideoId, av2bv, bv2av
from tests.fakeapi import graph
from tests.fakeapi.answers import BAD_REQUEST, Answer, envelope, ok
from tests.fakeapi.data import (
    LATEST,
    hex_id,
    image_url,
    official,
    seeded,
    text,
    user_card,
    user_facts,
    vip,
)

if TYPE_CHECKING:
    import random

    from aiohttp import web

ERROR_AIDS: dict[int, tuple[int, str]] = {
    404: (-404, "啥都木有"),
    62002: (62002, "稿件不可见"),
    62004: (62004, "稿件审核中"),
    62012: (62012, "仅UP主自己可见"),
}
"""Reserved aids (also reachable by their BV ids) and the (code, message) they answer."""

_FIRST_PUBDATE = 1245974400  # 2009-06-26, the site's first upload
_RANDOM_AIDS_FROM = 1585353600  # 2020-03-28: aids stopped being sequential
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
_TAGS = (
    "音乐", "原创", "VOCALOID", "初音ミク", "游戏", "单机游戏", "我的世界", "搞笑", "鬼畜",
    "日常", "vlog", "美食", "猫", "科普", "数码", "手书", "翻唱", "电音", "Remix", "教程",
    "生活记录", "动画", "必剪创作", "打卡挑战",
)  # fmt: skip
_SONGS = ("夜に駆ける", "千本桜", "Lemon", "孤勇者", "晴天", "Bad Apple!!")
_ROLES = ("曲绘", "混音", "后期", "剪辑", "出演", "策划", "编曲", "作词", "翻译")
_DIMENSIONS = (
    (1920, 1080), (1920, 1080), (1280, 720), (3840, 2160), (1080, 1920), (720, 1280),
    (1484, 1080), (992, 720), (640, 360),
)  # fmt: skip
_MID_POOL = 500


def _title(rng: random.Random) -> str:
    title = text(rng, 2, 5)
    if rng.random() < 0.02:
        title += "\n" + text(rng, 1, 2)
    return title


def _desc(rng: random.Random, copyright_: int) -> str:
    if rng.random() < 0.2:
        return "-"
    lines = [text(rng, 1, 6) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.3:
        lines.append(f"原版：av{rng.randrange(1, _SEQUENTIAL_AIDS)}")
    if copyright_ == 2:
        lines.append(
            f"转载自 https://www.youtube.com/watch?v={hex_id('yt', rng.getrandbits(32), 11)}"
        )
    return "\n".join(lines)


def _owner_mid(rng: random.Random) -> int:
    """A mid; about a third of the videos come from a pool of recurring uploaders."""
    if rng.random() < 0.35:
        return seeded("mid-pool", rng.randrange(_MID_POOL)).randrange(1, 700_000_000)
    if rng.random() < 0.6:
        return rng.randrange(1, 700_000_000)
    return rng.randrange(3_493_000_000_000_000, 3_547_000_000_000_000)


def _staff_member(mid: int, role: str) -> dict[str, Any]:
    user = user_facts(mid)
    return {
        "mid": mid,
        "title": role,
        "name": user["name"],
        "face": user["face"],
        "vip": vip(user),
        "official": official(user),
        "follower": len(graph.followers(mid)),
        "label_style": 0,
    }


@functools.cache
def _uploaders() -> dict[int, int]:
    """aid -> mid of every upload of the graph's users: those videos name them as owner."""
    return {aid: mid for mid in graph.graph_mids() for aid in graph.uploads(mid)}


def _pubdate(aid: int, rng: random.Random) -> int:
    """Old aids were sequential, so they map to dates in order; later ones are random."""
    if aid <= _SEQUENTIAL_AIDS:
        span = _RANDOM_AIDS_FROM - _FIRST_PUBDATE
        guess = _FIRST_PUBDATE + span * aid // _SEQUENTIAL_AIDS + rng.randrange(-30, 30) * 86400
        return min(max(guess, _FIRST_PUBDATE), _RANDOM_AIDS_FROM)
    return rng.randrange(_RANDOM_AIDS_FROM, LATEST)


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
    rng = seeded("pages", aid)
    count = _part_count(rng)
    ctime = _pubdate(aid, seeded("dates", aid)) - seeded("ctime", aid).randrange(0, 3 * 86400)
    cid = rng.randrange(1_000_000, 30_000_000_000)
    pages = []
    for page in range(1, count + 1):
        width, height = rng.choice(_DIMENSIONS)
        if count == 1:
            part = rng.choice((_title(rng), "P1", f"{hex_id('file', aid, 8)}.mp4", ""))
        else:
            part = rng.choice((f"{page - 1:02d}. ", f"P{page} ", "")) + text(rng, 1, 3)
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
                f"http://i0.hdslb.com/bfs/storyff/{hex_id('ff', cid, 32)}_firsti.jpg"
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
    rng = seeded("view", aid)
    pages = _pages(aid)
    first = pages[0]
    pubdate = _pubdate(aid, seeded("dates", aid))
    tid, tname, tid_v2, tname_v2 = rng.choice(_CATEGORIES)
    copyright_ = 1 if rng.random() < 0.7 else 2
    desc = _desc(rng, copyright_)
    drawn_owner = _owner_mid(rng)  # drawn for every aid, so the draws after it stay the same
    owner = _uploaders().get(aid, drawn_owner)
    user = user_facts(owner)
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
        "pic": image_url("archive", "pic", aid, rng),
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
    rng = seeded("related", aid)
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
    rng = seeded("tags", aid)
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


# --- endpoints ------------------------------------------------------------------------------


def _video_aid(request: web.Request) -> int | Answer:
    """The aid named by ``aid=`` or ``bvid=``, or the error answer for a bad or reserved id."""
    aid_text = request.query.get("aid", "")
    bvid = request.query.get("bvid", "")
    if aid_text:
        if not (aid_text.isascii() and aid_text.isdigit()) or not 0 < int(aid_text) < MAX_AID:
            return envelope(*BAD_REQUEST)
        aid = int(aid_text)
    elif bvid:
        try:
            aid = bv2av(bvid)
        except BadVideoId:
            return envelope(*BAD_REQUEST)
    else:
        return envelope(*BAD_REQUEST)
    if aid in ERROR_AIDS:
        # The real API sends no "data" key with these errors.
        return envelope(*ERROR_AIDS[aid])
    return aid


def _video_endpoint(build: Callable[[int], object]) -> Callable[[web.Request], Answer]:
    def endpoint(request: web.Request) -> Answer:
        aid = _video_aid(request)
        return aid if isinstance(aid, Answer) else ok(build(aid))

    return endpoint


ENDPOINTS: dict[str, Callable[[web.Request], Answer]] = {
    "/x/web-interface/view": _video_endpoint(video_view),
    "/x/web-interface/wbi/view": _video_endpoint(video_view),
    "/x/web-interface/view/detail/tag": _video_endpoint(video_tags),
    "/x/web-interface/wbi/view/detail": _video_endpoint(video_detail),
    "/x/player/pagelist": _video_endpoint(video_pages),
}
