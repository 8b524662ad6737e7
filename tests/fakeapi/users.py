"""The users and relations area of the fake API, in the shapes of the real examples.

``/x/space/wbi/acc/info`` (acc_info.json), ``/x/web-interface/card``
(card.json), ``/x/relation/stat``, ``/x/space/upstat``, the uploads through
``/x/space/wbi/arc/search`` (arc_search.json) and
``/x/series/recArchivesByKeywords``, and the ``/x/relation/followers`` and
``/x/relation/followings`` lists (followers.json). Counts, lists and uploads
come from the social graph (``graph``); the uploads are videos of the video
area, which names their uploader as owner. Every endpoint answers the
reserved ``ERROR_MIDS`` with their error and a malformed mid with -400.
Screening (buvid3, WBI, dm_img, Referer, the login knob) happens in ``app``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bilicrawl.ids import MAX_MID
from tests.fakeapi import graph
from tests.fakeapi.answers import BAD_REQUEST, Answer, envelope, ok
from tests.fakeapi.data import (
    decorations,
    image_url,
    official,
    official_verify,
    seeded,
    text,
    user_card,
    user_facts,
    vip,
    vip_label,
)
from tests.fakeapi.session import logged_in
from tests.fakeapi.videos import video_view

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aiohttp import web

    from tests.fakeapi.graph import Direction

ERROR_MIDS: dict[int, tuple[int, str]] = {
    404: (-404, "啥都木有"),
    626: (-626, "用户不存在"),
}
"""Reserved mids and the (code, message) every users and relations endpoint answers them with."""

RELATION_LISTS = frozenset({"/x/relation/followers", "/x/relation/followings"})
"""The list paths: they need a bilibili.com Referer, and a login when the knob says so."""

ARC_SEARCH_PAGE = (30, 50)
"""``ps`` of ``arc/search``: (default, maximum); larger values are clamped."""
REC_ARCHIVES_PAGE = (20, 100)
"""``ps`` of ``recArchivesByKeywords``: (default, maximum); ``pn=0`` lists everything."""
RELATION_PAGE = (50, 50)
"""``ps`` of the relation lists: (default, maximum)."""

_HIDDEN_LIST_CODES: dict[Direction, int] = {"followers": 22118, "followings": 22115}
_ZONES = {
    28: (3, "音乐"), 31: (3, "音乐"), 30: (3, "音乐"), 17: (4, "游戏"), 171: (4, "游戏"),
    27: (1, "动画"), 47: (1, "动画"), 22: (119, "鬼畜"), 201: (36, "知识"), 95: (188, "科技"),
    76: (211, "美食"), 21: (160, "生活"), 138: (160, "生活"), 182: (181, "影视"),
    75: (217, "动物圈"),
}  # fmt: skip
"""Sub-zone tid of a video -> (main zone tid, name): ``tlist`` counts uploads by main zone."""
_MEDAL_NAMES = ("桜樱怪", "喵喵团", "ミク推", "番茄酱", "星月团", "小糖人")
_WATCHED_ICON = "https://i0.hdslb.com/bfs/live/a725a9e61242ef44d764ac911691a7ce07f36c1d.png"
_WATCHED_ICON_WEB = "https://i0.hdslb.com/bfs/live/8d9d0f33ef8bf6f308742752d13dd0df731df19c.png"
_NO_LIVE_ROOM = {
    "roomStatus": 0,
    "liveStatus": 0,
    "url": "",
    "title": "",
    "cover": "",
    "roomid": 0,
    "roundStatus": 0,
    "broadcast_type": 0,
}


# --- profiles -------------------------------------------------------------------------------


def acc_info(mid: int) -> dict[str, Any]:
    """``data`` of ``/x/space/wbi/acc/info``: the card's profile with the space's extras."""
    user = user_facts(mid)
    extras = decorations(mid)
    rng = seeded("space", mid)
    medal = _worn_medal(mid) if rng.random() < 0.2 else None
    has_elec = rng.random() < 0.3
    return {
        "mid": mid,
        "name": user["name"],
        "sex": user["sex"],
        "face": user["face"],
        "face_nft": 0,
        "face_nft_type": 0,
        "sign": user["sign"],
        "rank": 10000,
        "level": user["level"],
        "jointime": 0,
        "moral": 0,
        "silence": 1 if rng.random() < 0.02 else 0,
        "coins": 0,
        "fans_badge": len(graph.followers(mid)) >= 1000,
        "fans_medal": {"show": medal is not None, "wear": medal is not None, "medal": medal},
        "official": official(user),
        "vip": vip(user),
        "pendant": {**extras["pendant"], "n_pid": extras["pendant"]["pid"]},
        "nameplate": extras["nameplate"],
        "user_honour_info": {"mid": 0, "colour": None, "tags": [], "is_latest_100honour": 0},
        "is_followed": False,
        "top_photo": extras["space"]["l_img"],
        "theme": {},
        "sys_notice": {},
        "live_room": _live_room(mid),
        "birthday": (
            f"{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" if rng.random() < 0.6 else ""
        ),
        "school": {"name": ""},
        "profession": {"name": "", "department": "", "title": "", "is_show": 0},
        "tags": None,
        "series": {"user_upgrade_status": 3, "show_upgrade_window": False},
        "is_senior_member": 1 if rng.random() < 0.2 else 0,
        "mcn_info": None,
        "gaia_res_type": 0,
        "gaia_data": None,
        "is_risk": False,
        "elec": {
            "show_info": {
                "show": has_elec,
                "state": 1 if has_elec else -1,
                "title": "",
                "icon": "",
                "jump_url": f"?oid={mid}",
            }
        },
        "contract": {"is_display": False, "is_follow_display": False},
        "certificate_show": False,
        "name_render": None,
    }


def _worn_medal(mid: int) -> dict[str, Any]:
    """The fan medal *mid* wears: a streamer's badge, levelled up by gifts."""
    rng = seeded("medal", mid)
    level = rng.randint(1, 30)
    next_intimacy = level * 5000
    color = rng.choice((6067854, 398668, 12632256, 16752445))
    return {
        "uid": mid,
        "target_id": rng.randrange(1, 700_000_000),
        "medal_id": rng.randrange(1, 1_000_000),
        "level": level,
        "medal_name": rng.choice(_MEDAL_NAMES),
        "medal_color": color,
        "intimacy": rng.randrange(next_intimacy),
        "next_intimacy": next_intimacy,
        "day_limit": 250000,
        "today_feed": rng.randrange(0, 3000),
        "medal_color_start": color,
        "medal_color_end": rng.choice((6850801, 12632256)),
        "medal_color_border": rng.choice((6809855, 12632256)),
        "is_lighted": 1,
        "guard_level": rng.choice((0, 0, 0, 1, 2, 3)),
        "light_status": 1,
        "wearing_status": 1,
        "score": rng.randrange(0, 60_000_000),
    }


def _live_room(mid: int) -> dict[str, Any]:
    """``live_room``: about 30% of the users have one, a quarter of those are live now."""
    rng = seeded("live", mid)
    if rng.random() >= 0.3:
        return dict(_NO_LIVE_ROOM)
    roomid = rng.randrange(1000, 30_000_000)
    watched = int(10 ** rng.uniform(0, 6))
    watched_text = f"{watched / 10000:.1f}万" if watched >= 10000 else str(watched)
    return {
        "roomStatus": 1,
        "liveStatus": 1 if rng.random() < 0.25 else 0,
        "url": f"https://live.bilibili.com/{roomid}?broadcast_type=0&is_room_feed=0",
        "title": text(rng, 1, 4),
        "cover": image_url("live/new_room_cover", "live-cover", mid, rng),
        "roomid": roomid,
        "roundStatus": 0,
        "broadcast_type": 0,
        "watched_show": {
            "switch": True,
            "num": watched,
            "text_small": watched_text,
            "text_large": f"{watched_text}人看过",
            "icon": _WATCHED_ICON,
            "icon_location": "",
            "icon_web": _WATCHED_ICON_WEB,
        },
    }


def relation_stat(mid: int) -> dict[str, Any]:
    """``data`` of ``/x/relation/stat``: the true counts, even of hidden lists."""
    return {
        "mid": mid,
        "following": len(graph.followings(mid)),
        "whisper": 0,
        "black": 0,
        "follower": len(graph.followers(mid)),
    }


def upstat(mid: int) -> dict[str, Any]:
    """``data`` of ``/x/space/upstat`` for a logged-in caller: views of the uploads, likes."""
    card = user_card(mid)
    article_views = card["article_count"] * seeded("upstat", mid).randrange(50, 20000)
    return {
        "archive": {"view": sum(view["stat"]["view"] for view in uploaded_videos(mid))},
        "article": {"view": article_views},
        "likes": card["like_num"],
    }


# --- uploads --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def uploaded_videos(mid: int) -> tuple[dict[str, Any], ...]:
    """The ``view`` data of every upload of *mid*, newest first: the order of both lists."""
    views = (video_view(aid) for aid in graph.uploads(mid))
    return tuple(sorted(views, key=lambda view: (-view["pubdate"], -view["aid"])))


def arc_search(mid: int, pn: int, ps: int) -> dict[str, Any]:
    """``data`` of ``/x/space/wbi/arc/search``: page *pn* of *ps* uploads, as arc_search.json."""
    views = uploaded_videos(mid)
    season = _season(mid, views)
    zones: dict[int, dict[str, Any]] = {}
    for view in views:
        tid, name = _ZONES[view["tid"]]
        zones.setdefault(tid, {"tid": tid, "count": 0, "name": name})["count"] += 1
    shown = views[(pn - 1) * ps : pn * ps]
    return {
        "list": {
            "slist": [],
            "tlist": {str(tid): zones[tid] for tid in sorted(zones)},
            "vlist": [_arc_entry(view, season.get(view["aid"])) for view in shown],
        },
        "page": {"pn": pn, "ps": ps, "count": len(views)},
        "episodic_button": {
            "text": "播放全部",
            "uri": f"//www.bilibili.com/medialist/play/{mid}?from=space",
        },
        "is_risk": False,
        "gaia_res_type": 0,
        "gaia_data": None,
    }


def _season(mid: int, views: tuple[dict[str, Any], ...]) -> dict[int, dict[str, Any]]:
    """aid -> ``meta`` of the collection (合集) it is in; some users have one, most none."""
    rng = seeded("season", mid)
    if len(views) < 4 or rng.random() >= 0.4:
        return {}
    members = [view for view in views if seeded("season-member", view["aid"]).random() < 0.5]
    if not members:
        return {}
    season_id = rng.randrange(1_000_000, 6_000_000)
    stat = {
        key: sum(view["stat"][key] for view in members)
        for key in ("view", "danmaku", "reply", "favorite", "coin", "share", "like")
    }
    meta = {
        "id": season_id,
        "title": text(rng, 1, 3),
        "cover": members[-1]["pic"],
        "mid": mid,
        "intro": "",
        "sign_state": 0,
        "attribute": 140,
        "stat": {"season_id": season_id, **stat, "mtime": members[0]["pubdate"], "vt": 0, "vv": 0},
        "ep_count": len(members),
        "first_aid": members[-1]["aid"],
        "ptime": members[0]["pubdate"],
        "ep_num": len(members),
    }
    return {view["aid"]: meta for view in members}


def _arc_entry(view: dict[str, Any], meta: dict[str, Any] | None) -> dict[str, Any]:
    """A ``vlist`` entry of ``arc/search``, read off the video's ``view`` data."""
    stat = view["stat"]
    duration = view["duration"]
    return {
        "comment": stat["reply"],
        "typeid": view["tid"],
        "play": stat["view"],
        "pic": view["pic"],
        "subtitle": "",
        "description": view["desc"],
        "copyright": str(view["copyright"]),
        "title": view["title"],
        "review": 0,
        "author": view["owner"]["name"],
        "mid": view["owner"]["mid"],
        "created": view["pubdate"],
        "length": f"{duration // 60:02d}:{duration % 60:02d}",
        "video_review": stat["danmaku"],
        "aid": view["aid"],
        "bvid": view["bvid"],
        "hide_click": False,
        "is_pay": 0,
        "is_union_video": 1 if "staff" in view else 0,
        "is_steins_gate": 0,
        "is_live_playback": 0,
        "is_lesson_video": 0,
        "is_lesson_finished": 0,
        "lesson_update_info": "",
        "jump_url": "",
        "meta": meta,
        "is_avoided": 0,
        "season_id": meta["id"] if meta else 0,
        "attribute": 16793984 if meta else 16512,
        "is_charging_arc": False,
        "elec_arc_type": 0,
        "vt": 0,
        "enable_vt": 0,
        "vt_display": "",
        "playback_position": 0,
        "is_self_view": False,
    }


def rec_archives(mid: int, keywords: str, pn: int, ps: int) -> dict[str, Any]:
    """``data`` of ``/x/series/recArchivesByKeywords``: uploads whose title has *keywords*.

    Page *pn* of *ps*, newest first; ``pn=0`` is every matching upload at once.
    """
    views = [v for v in uploaded_videos(mid) if keywords.casefold() in v["title"].casefold()]
    shown = views if pn == 0 else views[(pn - 1) * ps : pn * ps]
    archives = [
        {
            "aid": view["aid"],
            "title": view["title"],
            "pubdate": view["pubdate"],
            "ctime": view["ctime"],
            "state": 0,
            "pic": view["pic"],
            "duration": view["duration"],
            "stat": {"view": view["stat"]["view"]},
            "bvid": view["bvid"],
            "ugc_pay": 0,
            "interactive_video": False,
            "enable_vt": 0,
            "vt_display": "",
            "playback_position": 0,
            "is_self_view": False,
        }
        for view in shown
    ]
    return {"archives": archives, "page": {"num": pn, "size": ps, "total": len(views)}}


# --- relations ------------------------------------------------------------------------------


def relation_entry(mid: int, mtime: int) -> dict[str, Any]:
    """An entry of a followers or followings list: user *mid*, related since *mtime*.

    ``attribute`` is the caller's own relation to *mid*, always 0 (none) here.
    """
    user = user_facts(mid)
    card_vip = vip(user, card=True)
    return {
        "mid": mid,
        "attribute": 0,
        "mtime": mtime,
        "tag": None,
        "special": 0,
        "contract_info": {},
        "uname": user["name"],
        "face": user["face"],
        "sign": user["sign"],
        "face_nft": 0,
        "official_verify": official_verify(user),
        "vip": {
            "vipType": card_vip["vipType"],
            "vipDueDate": card_vip["due_date"],
            "dueRemark": "",
            "accessStatus": 0,
            "vipStatus": card_vip["vipStatus"],
            "vipStatusWarn": "",
            "themeType": 0,
            "label": vip_label(user, images=False),
            "avatar_subscript": card_vip["avatar_subscript"],
            "nickname_color": card_vip["nickname_color"],
            "avatar_subscript_url": "",
        },
        "name_render": {},
        "nft_icon": "",
        "rec_reason": "",
        "track_id": "",
        "follow_time": "",
    }


# --- endpoints ------------------------------------------------------------------------------


def _mid(query: Mapping[str, str], name: str) -> int | Answer:
    """The mid in parameter *name*, or the answer for a malformed or reserved one."""
    value = query.get(name, "")
    digits = value.isascii() and value.isdigit() and len(value) <= len(str(MAX_MID))
    if not digits or not 0 < int(value) < MAX_MID:
        return envelope(*BAD_REQUEST)
    mid = int(value)
    if mid in ERROR_MIDS:
        # The real API sends no "data" key with these errors.
        return envelope(*ERROR_MIDS[mid])
    return mid


def _page(query: Mapping[str, str], sizes: tuple[int, int]) -> tuple[int, int] | None:
    """(pn, ps): pn defaults to 1, ps to ``sizes[0]`` and is clamped to ``sizes[1]``.

    None if either is not a decimal number. A ``pn`` of 0 is kept, as the
    endpoints differ on it; a ``ps`` of 0 is the default.
    """
    numbers = []
    for name, default in (("pn", 1), ("ps", sizes[0])):
        value = query.get(name, "")
        if not value:
            numbers.append(default)
        elif value.isascii() and value.isdigit() and len(value) <= 9:
            numbers.append(int(value))
        else:
            return None
    pn, ps = numbers
    return pn, min(ps or sizes[0], sizes[1])


def _acc_info_answer(mid: int, _request: web.Request) -> Answer:
    return ok(acc_info(mid))


def _card_answer(mid: int, _request: web.Request) -> Answer:
    return ok(user_card(mid))


def _stat_answer(mid: int, _request: web.Request) -> Answer:
    return ok(relation_stat(mid))


def _upstat_answer(mid: int, request: web.Request) -> Answer:
    """Anonymous callers get code 0 with an empty ``data``."""
    return ok(upstat(mid) if logged_in(request) else {})


def _arc_search_answer(mid: int, request: web.Request) -> Answer:
    page = _page(request.query, ARC_SEARCH_PAGE)
    if page is None:
        return envelope(*BAD_REQUEST)
    pn, ps = page
    return ok(arc_search(mid, max(pn, 1), ps))


def _rec_archives_answer(mid: int, request: web.Request) -> Answer:
    page = _page(request.query, REC_ARCHIVES_PAGE)
    if page is None:
        return envelope(*BAD_REQUEST)
    return ok(rec_archives(mid, request.query.get("keywords", ""), *page))


def _relation_list(direction: Direction) -> Callable[[int, web.Request], Answer]:
    """The answer of a followers or followings list: a page of what the site serves."""

    def answer(mid: int, request: web.Request) -> Answer:
        page = _page(request.query, RELATION_PAGE)
        if page is None:
            return envelope(*BAD_REQUEST)
        if graph.hides(mid, direction):
            return envelope(_HIDDEN_LIST_CODES[direction], "用户已设置隐私，无法查看")
        pn, ps = max(page[0], 1), page[1]
        served = graph.served_list(mid, direction, logged_in(request))
        whole = graph.followers(mid) if direction == "followers" else graph.followings(mid)
        entries = [
            relation_entry(other, mtime) for other, mtime in served[(pn - 1) * ps : pn * ps]
        ]
        return ok({"list": entries, "re_version": 0, "total": len(whole)})

    return answer


def _user_endpoint(
    param: str, answer: Callable[[int, web.Request], Answer]
) -> Callable[[web.Request], Answer]:
    """An endpoint giving *answer* for the mid in *param*, once the mid passed its checks."""

    def endpoint(request: web.Request) -> Answer:
        mid = _mid(request.query, param)
        return mid if isinstance(mid, Answer) else answer(mid, request)

    return endpoint


ENDPOINTS: dict[str, Callable[[web.Request], Answer]] = {
    "/x/space/wbi/acc/info": _user_endpoint("mid", _acc_info_answer),
    "/x/web-interface/card": _user_endpoint("mid", _card_answer),
    "/x/relation/stat": _user_endpoint("vmid", _stat_answer),
    "/x/space/upstat": _user_endpoint("mid", _upstat_answer),
    "/x/space/wbi/arc/search": _user_endpoint("mid", _arc_search_answer),
    "/x/series/recArchivesByKeywords": _user_endpoint("mid", _rec_archives_answer),
    "/x/relation/followers": _user_endpoint("vmid", _relation_list("followers")),
    "/x/relation/followings": _user_endpoint("vmid", _relation_list("followings")),
}
