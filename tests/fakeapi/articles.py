"""The articles area of the fake API: articles (专栏, cv ids), collections, the cards batch.

``/x/article/view`` (article_view.json, article_view_type3.json),
``/x/article/viewinfo``, ``/x/article/cards`` (article_cards.json),
``/x/article/list/web/articles`` and the space list ``/x/space/wbi/article``,
in the shapes of the real examples. The graph's users write as many articles
as their card's ``article_count`` says (``AUTHOR`` alone writes more), and
cvids grow in publishing order; some runs of an author's articles form a
collection (文集). Each body is one block model (``blocks``), rendered as the
site's HTML (type 0) or as a Quill delta with an ``opus`` twin (type 3), so
that the text a correct parser finds is known (``article_lines``). Screening
(the cards' Referer; WBI, buvid3 and dm_img on the space list) is in ``app``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import html
import random
import re
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from bilicrawl.ids import MAX_AID, MAX_MID, BadVideoId, av2bv, bv2av
from tests.fakeapi import graph, live
from tests.fakeapi.answers import BAD_REQUEST, Answer, dumps, envelope, ok
from tests.fakeapi.data import (
    LATEST,
    decorations,
    hex_id,
    official_verify,
    seeded,
    text,
    user_facts,
    vip,
    vip_label,
)
from tests.fakeapi.users import ERROR_MIDS
from tests.fakeapi.videos import ERROR_AIDS, video_view

ERROR_CVIDS: dict[int, tuple[int, str]] = {
    404: (-404, "啥都木有"),
    403: (-403, "访问权限不足"),
}
"""Reserved cvids (deleted, under review) and the (code, message) they answer."""
NOT_FOUND = (-404, "啥都木有")
"""The (code, message) of an unknown cvid or collection."""
CARDS = "/x/article/cards"
"""The cards batch path: it needs a bilibili.com Referer (screened in ``app``)."""
CARDS_MAX_IDS: web.AppKey[Callable[[], int]] = web.AppKey("cards_max_ids")
"""The application's function giving the most ids one cards request may name."""
SPACE_ARTICLE_PAGE = (30, 30)
"""``ps`` of ``/x/space/wbi/article``: (default, maximum); larger values are clamped."""

TYPE0_ARTICLE = 1483
"""An HTML (type 0) article with many kinds of blocks."""
TYPE3_ARTICLE = 86627
"""A Quill-delta (type 3) article with many kinds of blocks."""
LIST_ID = 792557
"""A collection (文集) of 3-8 articles, by ``AUTHOR``."""
AUTHOR = 385133384
"""A graph user with 31-70 articles: two or three pages of the space list."""
NO_ARTICLES = graph.NO_UPLOADS
"""A graph user with no articles."""

_AUTHOR_ARTICLES = 52
_FIRST_CVID = 1000
_FIRST_PUBLISHED = 1496275200  # 2017-06-01
_TYPE3_SHARE = 0.4
_COLLECTION_SHARE = 0.35
_FEATURES = (
    "h1", "h2", "h3", "bullet", "ordered", "blockquote", "image", "captioned", "cut-off",
    "av", "bv", "cv", "vote", "lv", "bold", "italic", "link", "color",
)  # fmt: skip
"""What a body may hold. The first ``2 * len(_FEATURES)`` articles each get one of them in
turn, alternately of type 0 and 3; every other article gets a random one."""
_RUN_STYLES = frozenset({"bold", "italic", "link", "color"})
_EXTRA_FEATURE = 0.12
"""Chance of each feature besides the article's own."""
_STYLE_WEIGHTS = {"plain": 70, "bold": 10, "italic": 6, "bold-italic": 3, "link": 6, "color": 5}
_COLOR_CLASSES = {
    "#fb7299": "color-pink-03", "#ff968d": "color-pink-02", "#0b84ed": "color-blue-03",
    "#7ea6f6": "color-blue-02", "#ffa726": "color-yellow-03",
}  # fmt: skip
_DIMENSIONS = ((1280, 720), (1920, 1080), (1080, 1440), (800, 600), (690, 388), (1200, 1600))
_HEADING_FONTS = {1: (24, "xxLarge"), 2: (22, "xLarge"), 3: (19, "large")}
_CARD_CLASSES = {
    "video": "video-card nomal", "article": "article-card", "vote": "vote-display",
    "live": "live-card",
}  # fmt: skip
_CARD_EMBEDS = {
    "video": "video-card",
    "article": "article-card",
    "vote": "vote-card",
    "live": "live-card",
}
_LIST_TAGS = {"bullet": "ul", "ordered": "ol"}
_HTML_TEXT = {
    "paragraph": "<p>{}</p>",
    "bullet": "<li>{}</li>",
    "ordered": "<li>{}</li>",
    "blockquote": "<blockquote><p>{}</p></blockquote>",
}
_CATEGORIES = (
    (3, "生活", 15, "日常"), (3, "生活", 13, "美食"), (17, "科技", 26, "数码"),
    (17, "科技", 27, "软件应用"), (1, "游戏", 8, "单机游戏"), (1, "游戏", 18, "手机游戏"),
    (2, "动画", 4, "动漫杂谈"), (28, "影视", 12, "电影"), (29, "兴趣", 24, "手工"),
    (16, "轻小说", 32, "原创连载"),
)  # fmt: skip
"""(parent id, parent name, id, name) of the article categories."""
_TAGS = (
    (1598, "粉丝"), (438, "排行榜"), (12005, "HTML"), (336733, "API"), (2573142, "JavaScript"),
    (239416, "静夜思"), (8399, "原创"), (530003, "学习"), (4429, "游戏"), (7007, "日常"),
    (15271, "美食"), (1833, "动漫"), (20215, "我的世界"), (2511282, "随笔"),
)  # fmt: skip
_KEYWORDS = ("生活", "随笔", "教程", "测评", "攻略", "原神", "Python", "HTML", "日常", "猫")
_SHARE_CHANNELS = (
    ("QQ", "114ccfb3a999df9c4d11f274c8c61a804c8f8803", "QQ"),
    ("QQ空间", "30e9608bbce725bca45b5910866f60ab4d5e18b3", "QZONE"),
    ("微信", "658af3c22431cd78bb7c50be3394f7c032eba12c", "WEIXIN"),
    ("朋友圈", "c1ebcec8c5302f29f792d15f04e0d6dcef53ec27", "WEIXIN_MONMENT"),
    ("微博", "3707fc23f7d3e24022712320284b0de9aa78c87d", "SINA"),
)
_MEDIA = {
    "score": 0, "media_id": 0, "title": "", "cover": "", "area": "", "type_id": 0,
    "type_name": "", "spoiler": 0, "season_id": 0,
}  # fmt: skip
_CARD_DROPS = frozenset(
    {"content", "keywords", "tags", "dyn_id_str", "total_art_num", "version_id", "opus"}
)
"""What an article's card leaves out of its ``view`` (article_cards.json, ``cv1``)."""
_SPACE_ENTRY_KEYS = (
    "id", "category", "categories", "title", "summary", "banner_url", "template_id", "state",
    "author", "reprint", "image_urls", "publish_time", "ctime", "stats", "tags", "words",
    "dynamic", "origin_image_urls", "list", "is_like", "media", "apply_time", "check_time",
    "original", "act_id", "dispute", "authenMark", "cover_avid", "top_video_info", "type",
)  # fmt: skip
"""The keys of a space list entry (space_wbi_article.json), in its order."""
_LIST_ENTRY_KEYS = (
    "id", "title", "state", "publish_time", "words", "image_urls", "category", "categories",
    "summary", "stats",
)  # fmt: skip
_VIDEO_RIGHTS = (
    "arc_pay", "autoplay", "bp", "download", "elec", "hd5", "is_cooperation", "movie",
    "no_background", "no_reprint", "pay", "ugc_pay", "ugc_pay_preview",
)  # fmt: skip
_VIDEO_STAT = (
    "aid", "coin", "danmaku", "dislike", "favorite", "his_rank", "like", "now_rank", "reply",
    "share", "view", "vt",
)  # fmt: skip
_CARD_ID = re.compile(r"(av|cv|lv)(\d{1,19})")


# --- the block model ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    """A stretch of text with one style; the runs of a block are joined without separators."""

    text: str
    """Never empty, no newline, no leading or trailing space."""
    bold: bool = False
    italic: bool = False
    link: str = ""
    """The URL the run links to, or ""."""
    color: str = ""
    """A text colour ("#fb7299"), or "": styling with no meaning."""


@dataclasses.dataclass(frozen=True)
class Block:
    """One block of a body: a text block (with ``runs``) or an image, cut-off or card."""

    kind: str
    """paragraph, heading, bullet, ordered, blockquote; image, cut-off; video, article,
    vote, live (cards)."""
    runs: tuple[Run, ...] = ()
    level: int = 0
    """A heading's level (1-3); a cut-off's style number (1-6)."""
    ref: str = ""
    """An image's or cut-off's URL; a card's id (``av170001``, ``BV…``, ``cv123``, ``1234``
    for a vote, ``lv5440``)."""
    width: int = 0
    height: int = 0
    size: int = 0
    """An image's size in bytes."""
    caption: str = ""
    """An image's caption (type 0 only shows it); not part of the text."""


# --- the catalogue --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Article:
    cvid: int
    mid: int
    published: int
    type: int
    featured: str
    list_id: int
    """0 when the article is in no collection."""


@dataclasses.dataclass(frozen=True)
class _Collection:
    id: int
    mid: int
    cvids: tuple[int, ...]
    """Reading order: oldest first."""


@dataclasses.dataclass(frozen=True)
class _Catalogue:
    articles: dict[int, _Article]
    by_author: dict[int, tuple[int, ...]]
    """Newest first."""
    lists: dict[int, _Collection]
    cvids: tuple[int, ...]


@functools.cache
def _catalogue() -> _Catalogue:
    """Every article: authors, publishing times, cvids, types and collections."""
    rng = random.Random("articles")
    drafts = []
    for mid in graph.graph_mids():
        count = _AUTHOR_ARTICLES if mid == AUTHOR else user_facts(mid)["article_count"]
        drafts += [(rng.randrange(_FIRST_PUBLISHED, LATEST), mid) for _ in range(count)]
    drafts.sort()
    placed: list[tuple[int, int, int, int, str]] = []
    cvid = _FIRST_CVID
    for index, (published, mid) in enumerate(drafts):
        cvid += rng.randint(1, 9000)
        if index < 2 * len(_FEATURES):
            featured, type_ = _FEATURES[index // 2], 3 * (index % 2)
        else:
            featured, type_ = rng.choice(_FEATURES), 3 if rng.random() < _TYPE3_SHARE else 0
        placed.append((cvid, mid, published, type_, featured))
    oldest_first: dict[int, list[int]] = {}
    for cvid, mid, *_ in placed:
        oldest_first.setdefault(mid, []).append(cvid)
    lists = _collections(oldest_first, rng)
    list_of = {cvid: collection.id for collection in lists.values() for cvid in collection.cvids}
    articles = {
        cvid: _Article(cvid, mid, published, type_, featured, list_of.get(cvid, 0))
        for cvid, mid, published, type_, featured in placed
    }
    return _Catalogue(
        articles=articles,
        by_author={mid: tuple(reversed(cvids)) for mid, cvids in oldest_first.items()},
        lists=lists,
        cvids=tuple(articles),
    )


def _collections(oldest_first: dict[int, list[int]], rng: random.Random) -> dict[int, _Collection]:
    """Up to two collections of 3-8 consecutive articles for about a third of the authors."""
    lists: dict[int, _Collection] = {}
    for mid, cvids in oldest_first.items():
        if len(cvids) < 3 or (mid != AUTHOR and rng.random() >= _COLLECTION_SHARE):
            continue
        start = rng.randrange(len(cvids) - 2)
        for _ in range(2):
            size = rng.randint(3, 8)
            members = cvids[start : start + size]
            if len(members) < 3:
                break
            list_id = rng.randrange(100_000, 1_000_000)
            while list_id in lists:
                list_id = rng.randrange(100_000, 1_000_000)
            lists[list_id] = _Collection(list_id, mid, tuple(members))
            start += size + rng.randint(0, 5)
    return lists


def article_cvids() -> tuple[int, ...]:
    """Every article's cvid, ascending (publishing order)."""
    return _catalogue().cvids


def articles_of(mid: int) -> tuple[int, ...]:
    """The cvids of *mid*'s articles, newest first; () for users without any."""
    return _catalogue().by_author.get(mid, ())


def list_ids() -> tuple[int, ...]:
    """Every collection's id."""
    return tuple(_catalogue().lists)


def list_articles(list_id: int) -> tuple[int, ...]:
    """The cvids of collection *list_id* in reading order (oldest first); KeyError if none."""
    return _catalogue().lists[list_id].cvids


def article_type(cvid: int) -> int:
    """0 (HTML body) or 3 (Quill delta body); KeyError for an unknown cvid."""
    return _catalogue().articles[cvid].type


# --- bodies ---------------------------------------------------------------------------------


def _words(rng: random.Random, low: int, high: int) -> str:
    """Text for a run or a title: single spaces, none at the ends."""
    return " ".join(text(rng, low, high).split())


def _link(rng: random.Random, article: _Article) -> str:
    aid = rng.choice(graph.uploads(article.mid) or graph.uploads(graph.MANY_UPLOADS))
    return rng.choice(
        (
            f"https://www.bilibili.com/video/{av2bv(aid)}",
            f"https://space.bilibili.com/{article.mid}",
            f"https://www.bilibili.com/read/cv{article.cvid}",
            f"https://b23.tv/{hex_id('b23', rng.getrandbits(32), 7)}",
        )
    )


def _run(rng: random.Random, article: _Article, style: str) -> Run:
    words = _words(rng, 1, 3)
    if style == "link":
        return Run(words, link=_link(rng, article))
    return Run(
        words,
        bold=style in ("bold", "bold-italic"),
        italic=style in ("italic", "bold-italic"),
        color=rng.choice(tuple(_COLOR_CLASSES)) if style == "color" else "",
    )


def _runs(rng: random.Random, article: _Article, low: int, high: int) -> list[Run]:
    styles = rng.choices(
        tuple(_STYLE_WEIGHTS), tuple(_STYLE_WEIGHTS.values()), k=rng.randint(low, high)
    )
    return [_run(rng, article, style) for style in styles]


def _image(rng: random.Random, article: _Article, caption: str) -> Block:
    width, height = rng.choice(_DIMENSIONS)
    bits = rng.getrandbits(48)
    extension = rng.choice(("png", "png", "jpg"))
    if article.type == 3:
        url = f"https://i0.hdslb.com/bfs/new_dyn/{hex_id('new-dyn', bits, 32)}{article.mid}"
    else:
        url = f"https://i0.hdslb.com/bfs/article/{hex_id('article-image', bits)}"
    size = int(width * height * rng.uniform(0.05, 0.4))
    return Block(
        "image", ref=f"{url}.{extension}", width=width, height=height, size=size, caption=caption
    )


def _card_ref(feature: str, rng: random.Random, article: _Article) -> str:
    """The id a card of *feature* ("av", "bv", "cv", "vote", "lv") names."""
    if feature in ("av", "bv"):
        aid = rng.choice(graph.uploads(article.mid) or graph.uploads(graph.MANY_UPLOADS))
        return f"av{aid}" if feature == "av" else av2bv(aid)
    if feature == "cv":
        return f"cv{rng.choice(article_cvids())}"
    if feature == "vote":
        return str(rng.randrange(100_000, 9_000_000))
    room = rng.choice(live.rooms())
    short = live.short_id(room)
    return f"lv{short}" if short and rng.random() < 0.5 else f"lv{room}"


def _feature_blocks(feature: str, rng: random.Random, article: _Article) -> list[Block]:
    """The blocks that bring *feature* (anything but a run style) into a body."""
    if feature in ("h1", "h2", "h3"):
        return [Block("heading", (Run(_words(rng, 1, 3)),), level=int(feature[1]))]
    if feature in ("bullet", "ordered"):
        return [Block(feature, tuple(_runs(rng, article, 1, 2))) for _ in range(rng.randint(2, 4))]
    if feature == "blockquote":
        return [Block("blockquote", tuple(_runs(rng, article, 1, 2)))]
    if feature in ("image", "captioned"):
        return [_image(rng, article, _words(rng, 1, 3) if feature == "captioned" else "")]
    if feature == "cut-off":
        style = rng.randint(1, 6)
        url = f"https://i0.hdslb.com/bfs/article/card/{hex_id('cut-off', style)}.png"
        return [Block("cut-off", level=style, ref=url)]
    kind = {"av": "video", "bv": "video", "cv": "article", "vote": "vote", "lv": "live"}[feature]
    return [Block(kind, ref=_card_ref(feature, rng, article))]


@functools.lru_cache(maxsize=4096)
def blocks(cvid: int) -> tuple[Block, ...]:
    """The body of article *cvid* as blocks; it always ends with a paragraph. KeyError if none."""
    article = _catalogue().articles[cvid]
    rng = seeded("article-body", cvid)
    features = [article.featured, *(f for f in _FEATURES if rng.random() < _EXTRA_FEATURE)]
    plan = ["paragraph"] * rng.randint(3, 7)
    for feature in features:
        if feature not in _RUN_STYLES:
            plan.insert(rng.randrange(len(plan)), feature)
    forced = [feature for feature in features if feature in _RUN_STYLES]
    body: list[Block] = []
    for step in plan:
        if step != "paragraph":
            body += _feature_blocks(step, rng, article)
            continue
        runs = _runs(rng, article, 1, 4)
        for style in forced:
            runs.insert(rng.randrange(len(runs) + 1), _run(rng, article, style))
        forced = []
        body.append(Block("paragraph", tuple(runs)))
    return tuple(body)


def article_lines(cvid: int) -> list[str]:
    """The text of article *cvid* a correct crawler finds: one entry per text block, in order.

    Paragraphs, headings, list items and blockquotes give their runs joined
    without separators; images (captions included), cut-offs and cards give nothing.
    """
    return ["".join(run.text for run in block.runs) for block in blocks(cvid) if block.runs]


def _html_run(run: Run) -> str:
    inner = html.escape(run.text, quote=False)
    if run.italic:
        inner = f"<em>{inner}</em>"
    if run.bold:
        inner = f"<strong>{inner}</strong>"
    if run.color:
        if len(run.text) % 2:
            inner = f'<span class="{_COLOR_CLASSES[run.color]}">{inner}</span>'
        else:
            inner = f'<span style="color: {run.color};">{inner}</span>'
    if run.link:
        inner = f'<a href="{html.escape(run.link)}">{inner}</a>'
    return inner


def _html_block(block: Block) -> str:
    inline = "".join(_html_run(run) for run in block.runs)
    if block.kind == "heading":
        return f"<h{block.level}>{inline}</h{block.level}>"
    if block.kind in _HTML_TEXT:
        return _HTML_TEXT[block.kind].format(inline)
    return f'<figure class="img-box" contenteditable="false">{_html_figure(block)}</figure>'


def _html_figure(block: Block) -> str:
    """The inside of the ``figure`` of an image, a cut-off or a card."""
    if block.kind == "image":
        caption = html.escape(block.caption, quote=False)
        return (
            f'<img data-src="{block.ref.removeprefix("https:")}" width="{block.width}" '
            f'height="{block.height}" data-size="{block.size}" />'
            f'<figcaption class="caption" contenteditable="">{caption}</figcaption>'
        )
    if block.kind == "cut-off":
        url = block.ref.removeprefix("https:")
        return f'<img data-src="{url}" class="cut-off-{block.level}" />'
    image = f"//i0.hdslb.com/bfs/article/card/{hex_id('card-' + block.ref, 0)}.png"
    return f'<img data-src="{image}" aid="{block.ref}" class="{_CARD_CLASSES[block.kind]}" />'


def html_content(body: tuple[Block, ...]) -> str:
    """*body* as the HTML ``content`` of a type-0 article: list items grouped in ``ul``/``ol``."""
    parts: list[str] = []
    open_list = ""
    for block in body:
        tag = _LIST_TAGS.get(block.kind, "")
        if tag != open_list:
            parts += [f"</{open_list}>"] if open_list else []
            parts += [f"<{tag}>"] if tag else []
            open_list = tag
        parts.append(_html_block(block))
    if open_list:
        parts.append(f"</{open_list}>")
    return "".join(parts)


def _op(insert: object, attributes: dict[str, Any] | None) -> dict[str, Any]:
    return {"attributes": attributes, "insert": insert} if attributes else {"insert": insert}


def _embed(block: Block) -> dict[str, Any]:
    if block.kind == "image":
        image = {
            "alt": "read-normal-img",
            "url": block.ref,
            "width": block.width,
            "height": block.height,
            "size": block.size,
            "status": "loaded",
        }
        return _op({"native-image": image}, {"class": "normal-img"})
    if block.kind == "cut-off":
        return _op({"cut-off": {"type": str(block.level), "url": block.ref}}, None)
    card: dict[str, Any] = {"id": block.ref}
    if block.kind == "video":
        card["tid"] = 0
    return _op({_CARD_EMBEDS[block.kind]: card}, None)


def _line_attributes(block: Block) -> dict[str, Any] | None:
    if block.kind == "heading":
        return {"header": block.level}
    if block.kind in _LIST_TAGS:
        return {"list": block.kind}
    return {"blockquote": True} if block.kind == "blockquote" else None


def delta_content(body: tuple[Block, ...]) -> str:
    """*body* as the ``content`` of a type-3 article: a JSON ``{"ops": [...]}`` Quill delta."""
    ops: list[dict[str, Any]] = []
    for block in body:
        if not block.runs:
            ops.append(_embed(block))
            continue
        for run in block.runs:
            attributes = {
                "bold": run.bold,
                "italic": run.italic,
                "link": run.link,
                "color": run.color,
            }
            ops.append(_op(run.text, {key: value for key, value in attributes.items() if value}))
        ops.append(_op("\n", _line_attributes(block)))
    return dumps({"ops": ops})


def _opus_node(run: Run, style: dict[str, bool], size: int, level: str) -> dict[str, Any]:
    if run.link:
        rich = {
            "jump_url": run.link,
            "orig_text": run.text,
            "text": run.text,
            "style": style,
            "type": "RICH_TEXT_NODE_TYPE_WEB",
        }
        return {"node_type": 2, "rich": rich}
    word = {"words": run.text, "font_size": size, "style": style, "font_level": level}
    return {"node_type": 1, "word": word}


def _opus_text(block: Block) -> dict[str, Any]:
    size, level = _HEADING_FONTS.get(block.level, (17, "regular"))
    nodes = []
    for run in block.runs:
        style = {"bold": True} if run.bold or block.kind == "heading" else {}
        if run.italic:
            style["italic"] = True
        nodes.append(_opus_node(run, style, size, level))
    return {"nodes": nodes}


def _opus_paragraphs(body: tuple[Block, ...]) -> list[dict[str, Any]]:
    """The ``opus.content.paragraphs`` of *body*: text blocks, images and cut-offs; no cards."""
    paragraphs: list[dict[str, Any]] = []
    order = 0
    for block in body:
        order = order + 1 if block.kind in _LIST_TAGS else 0
        if block.kind in ("paragraph", "heading"):
            paragraphs.append({"para_type": 1, "text": _opus_text(block)})
        elif block.kind in _LIST_TAGS:
            list_format = {"level": 1, "order": order}
            paragraphs.append(
                {"para_type": 6, "format": {"list_format": list_format}, "text": _opus_text(block)}
            )
        elif block.kind == "blockquote":
            paragraphs.append({"para_type": 4, "text": _opus_text(block)})
        elif block.kind == "image":
            pic = {
                "url": block.ref,
                "width": block.width,
                "height": block.height,
                "size": block.size / 1024,
            }
            paragraphs.append({"para_type": 2, "pic": {"pics": [pic], "style": 1}})
        elif block.kind == "cut-off":
            paragraphs.append({"para_type": 3, "line": {"pic": {"url": block.ref, "height": 24}}})
    return paragraphs


# --- article facts and shapes ---------------------------------------------------------------


def _author(mid: int) -> dict[str, Any]:
    """The ``author`` of an article in a space list; ``view`` adds ``fans`` and ``level``."""
    user = user_facts(mid)
    extras = decorations(mid)
    card_vip = vip(user, card=True)
    label = vip_label(user, images=False)
    return {
        "mid": mid,
        "name": user["name"],
        "face": user["face"],
        "pendant": {key: extras["pendant"][key] for key in ("pid", "name", "image", "expire")},
        "official_verify": official_verify(user),
        "nameplate": extras["nameplate"],
        "vip": {
            **{
                key: card_vip[key]
                for key in ("type", "status", "due_date", "vip_pay_type", "theme_type")
            },
            "label": {key: label[key] for key in ("path", "text", "label_theme")},
            "avatar_subscript": card_vip["avatar_subscript"],
            "nickname_color": card_vip["nickname_color"],
        },
    }


def _stats(rng: random.Random) -> dict[str, int]:
    view = int(10 ** rng.uniform(1, 6.3))
    like = int(view * rng.uniform(0, 0.08))
    favorite = int(like * rng.uniform(0, 0.8))
    return {
        "view": view,
        "favorite": favorite,
        "like": like,
        "dislike": rng.randrange(0, 3) if rng.random() < 0.1 else 0,
        "reply": int(view * rng.uniform(0, 0.01)),
        "share": int(favorite * rng.uniform(0, 0.3)),
        "coin": int(like * rng.uniform(0, 0.5)),
        "dynamic": rng.randrange(0, 50) if rng.random() < 0.2 else 0,
    }


@functools.lru_cache(maxsize=4096)
def _facts(cvid: int) -> dict[str, Any]:
    """What every shape of article *cvid* shows, but its collection: ``view`` keys and extras."""
    article = _catalogue().articles[cvid]
    rng = seeded("article", cvid)
    body = blocks(cvid)
    lines = article_lines(cvid)
    parent_id, parent_name, category_id, category_name = rng.choice(_CATEGORIES)
    category = {"id": category_id, "parent_id": parent_id, "name": category_name}
    tags = [{"tid": tid, "name": name} for tid, name in rng.sample(_TAGS, rng.randint(0, 5))]
    cover = f"https://i0.hdslb.com/bfs/article/{hex_id('article-cover', cvid)}.jpg"
    if article.type == 3:
        # A type-3 lead keeps the line breaks and shows images as "[图片]".
        shown = [
            "".join(run.text for run in block.runs) or "[图片]"
            for block in body
            if block.runs or block.kind == "image"
        ]
        summary = "\n".join(shown)[:100]
    else:
        summary = "".join(lines)[:100]
    keywords = [tag["name"] for tag in tags] + rng.sample(_KEYWORDS, rng.randint(1, 4))
    original = 1 if rng.random() < 0.7 else 0
    return {
        "title": _words(rng, 2, 5),
        "summary": summary,
        "banner_url": "" if article.type == 3 and rng.random() < 0.5 else cover,
        "cover": cover,
        "category": category,
        "categories": [{"id": parent_id, "parent_id": 0, "name": parent_name}, dict(category)],
        "tags": tags,
        "keywords": ",".join(dict.fromkeys(keywords)),
        "ctime": article.published - rng.randrange(0, 3 * 86400),
        "mtime": min(LATEST, article.published + rng.choice((0, 0, rng.randrange(200 * 86400)))),
        "stats": _stats(rng),
        "words": len("".join(lines)),
        "image_urls": [f"https://i0.hdslb.com/bfs/article/{hex_id('article-thumb', cvid)}.jpg"],
        "original": original,
        "reprint": rng.randint(0, 1),
        "dynamic": _words(rng, 1, 4) if article.type == 0 else "",
        "dyn_id_str": str(rng.randrange(10**17, 2 * 10**18)),
        "version_id": rng.randrange(10**17, 2 * 10**17),
        "content": html_content(body) if article.type == 0 else delta_content(body),
    }


def _collection(list_id: int) -> dict[str, Any] | None:
    """The ``list`` object of collection *list_id* (0: None)."""
    if not list_id:
        return None
    collection = _catalogue().lists[list_id]
    rng = seeded("collection", list_id)
    members = [_facts(cvid) for cvid in collection.cvids]
    last = _catalogue().articles[collection.cvids[-1]]
    return {
        "id": list_id,
        "mid": collection.mid,
        "name": _words(rng, 1, 3),
        "image_url": members[0]["cover"] if rng.random() < 0.5 else "",
        "update_time": max(member["mtime"] for member in members),
        "ctime": members[0]["ctime"] - rng.randrange(0, 30 * 86400),
        "publish_time": last.published,
        "summary": "",
        "words": sum(member["words"] for member in members),
        "read": sum(member["stats"]["view"] for member in members),
        "articles_count": len(members),
        "state": 1,
        "reason": "",
        "apply_time": "",
        "check_time": "",
    }


def _opus(cvid: int, facts: dict[str, Any]) -> dict[str, Any]:
    article = _catalogue().articles[cvid]
    rng = seeded("opus", cvid)
    tag_names = [tag["name"] for tag in facts["tags"]]
    return {
        "opus_id": int(facts["dyn_id_str"]),
        "opus_source": 2,
        "title": facts["title"],
        "content": {"paragraphs": _opus_paragraphs(blocks(cvid))},
        "tags": [{"tag": {"show_text": name, "link_type": 36}} for name in tag_names],
        "pub_info": {"uid": article.mid, "pub_time": article.published},
        "article": {
            "category_id": facts["category"]["id"],
            "list_id": article.list_id,
            "originality": facts["original"],
            "reproduced": facts["reprint"],
            "cover": [
                {
                    "url": facts["cover"].replace("https:", "http:"),
                    "width": 768,
                    "height": 430,
                    "size": rng.randrange(20_000, 200_000) / 1024,
                }
            ],
            "biz_tags": list(dict.fromkeys(tag_names + facts["keywords"].split(","))),
        },
        "version": {"cvid": cvid, "version_id": facts["version_id"]},
    }


@functools.lru_cache(maxsize=1024)
def _view(cvid: int) -> dict[str, Any]:
    article = _catalogue().articles[cvid]
    facts = _facts(cvid)
    user = user_facts(article.mid)
    data: dict[str, Any] = {
        "id": cvid,
        "category": facts["category"],
        "categories": facts["categories"],
        "title": facts["title"],
        "summary": facts["summary"],
        "banner_url": facts["banner_url"],
        "template_id": 4,
        "state": 0,
        "author": {
            **_author(article.mid),
            "fans": len(graph.followers(article.mid)),
            "level": user["level"],
        },
        "reprint": facts["reprint"],
        "image_urls": facts["image_urls"],
        "publish_time": article.published,
        "ctime": facts["ctime"],
        "mtime": facts["mtime"],
        "stats": facts["stats"],
        "tags": facts["tags"],
        "words": facts["words"],
        "origin_image_urls": [facts["cover"]],
        "list": _collection(article.list_id),
        "is_like": False,
        "media": dict(_MEDIA),
        "apply_time": "",
        "check_time": "",
        "original": facts["original"],
        "act_id": 0,
        "dispute": None,
        "authenMark": None,
        "cover_avid": 0,
        "top_video_info": None,
        "type": article.type,
        "check_state": 0,
        "origin_template_id": 4,
        "private_pub": 0,
        "content_pic_list": None,
        "keywords": facts["keywords"],
        "version_id": 0,
        "dyn_id_str": facts["dyn_id_str"],
        "total_art_num": len(articles_of(article.mid)),
        "content": facts["content"],
    }
    if article.type == 3:
        data["opus"] = _opus(cvid, facts)
    else:
        # Type-0 answers also carry these two (article_view.json); type-3 ones do not.
        data.update(attributes=24, dynamic=facts["dynamic"])
    return data


def view(cvid: int) -> dict[str, Any]:
    """``data`` of ``/x/article/view?id=`` for article *cvid*; KeyError for an unknown cvid."""
    return copy.deepcopy(_view(cvid))


def viewinfo(cvid: int) -> dict[str, Any]:
    """``data`` of ``/x/article/viewinfo?id=`` for an anonymous caller, as article_viewinfo.json.

    ``pre``/``next`` are the neighbours in the collection, or else among the
    author's articles (older, newer); 0 at the ends.
    """
    article = _catalogue().articles[cvid]
    data = _view(cvid)
    if article.list_id:
        neighbours = list(list_articles(article.list_id))
    else:
        neighbours = list(reversed(articles_of(article.mid)))
    at = neighbours.index(cvid)
    return {
        "like": 0,
        "attention": False,
        "favorite": False,
        "coin": 0,
        "stats": dict(data["stats"]),
        "title": data["title"],
        "banner_url": data["banner_url"],
        "mid": article.mid,
        "author_name": data["author"]["name"],
        "is_author": False,
        "image_urls": list(data["image_urls"]),
        "origin_image_urls": list(data["origin_image_urls"]),
        "shareable": True,
        "show_later_watch": True,
        "show_small_window": True,
        "in_list": bool(article.list_id),
        "pre": neighbours[at - 1] if at > 0 else 0,
        "next": neighbours[at + 1] if at + 1 < len(neighbours) else 0,
        "share_channels": [
            {
                "name": name,
                "picture": f"https://i0.hdslb.com/bfs/album/{picture}.png",
                "share_channel": channel,
            }
            for name, picture, channel in _SHARE_CHANNELS
        ],
        "type": article.type,
        "video_url": "",
        "location": "",
        "disable_share": False,
    }


def article_card(cvid: int) -> dict[str, Any]:
    """An article's entry in ``/x/article/cards``: its ``view`` without the body and extras.

    As in article_cards.json, the card's author has ``fans`` and ``level`` 0.
    """
    card = {key: value for key, value in view(cvid).items() if key not in _CARD_DROPS}
    card["author"].update(fans=0, level=0)
    return card


def space_entry(cvid: int) -> dict[str, Any]:
    """An entry of ``/x/space/wbi/article``'s ``articles``; ``tags`` only when there are some."""
    data = view(cvid)
    data.update(
        author=_author(data["author"]["mid"]),
        dynamic=data.get("dynamic", ""),
        media={key: value for key, value in data["media"].items() if key != "season_id"},
    )
    return {key: data[key] for key in _SPACE_ENTRY_KEYS if key != "tags" or data["tags"]}


def list_entry(cvid: int) -> dict[str, Any]:
    """An entry of ``/x/article/list/web/articles``'s ``articles``."""
    data = view(cvid)
    return {**{key: data[key] for key in _LIST_ENTRY_KEYS}, "like_state": 0}


def list_web_articles(list_id: int) -> dict[str, Any]:
    """``data`` of ``/x/article/list/web/articles?id=`` for an anonymous caller."""
    collection = _catalogue().lists[list_id]
    author = _author(collection.mid)
    author["vip"] = {**author["vip"], "label": None}
    del author["vip"]["avatar_subscript"], author["vip"]["nickname_color"]
    return {
        "list": _collection(list_id),
        "articles": [list_entry(cvid) for cvid in collection.cvids],
        "author": author,
        "last": {
            "id": 0,
            "title": "",
            "state": 0,
            "publish_time": 0,
            "words": 0,
            "image_urls": [],
            "category": {"id": 0, "parent_id": 0, "name": ""},
            "categories": [],
            "summary": "",
        },
        "attention": False,
    }


def space_articles(mid: int, pn: int, ps: int, sort: str = "publish_time") -> dict[str, Any]:
    """``data`` of ``/x/space/wbi/article``: page *pn* of *ps* of *mid*'s articles.

    *sort* is ``publish_time`` (newest first), ``view`` or ``fav`` (most first).
    """
    cvids = list(articles_of(mid))
    if sort != "publish_time":
        counter = "view" if sort == "view" else "favorite"
        cvids.sort(key=lambda cvid: (-_facts(cvid)["stats"][counter], -cvid))
    shown = cvids[(pn - 1) * ps : pn * ps]
    return {
        "articles": [space_entry(cvid) for cvid in shown],
        "pn": pn,
        "ps": ps,
        "count": len(cvids),
    }


# --- cards ----------------------------------------------------------------------------------


def video_card(aid: int) -> dict[str, Any]:
    """A video's entry in ``/x/article/cards`` (``av2`` of article_cards.json), from its view."""
    data = video_view(aid)
    rights = {key: data["rights"][key] for key in _VIDEO_RIGHTS}
    rights["pay_free_watch"] = data["rights"]["free_watch"]
    return {
        "aid": aid,
        "bvid": data["bvid"],
        "cid": data["cid"],
        "copyright": data["copyright"],
        "cover43": "",
        "ctime": data["ctime"],
        "desc": data["desc"],
        "dimension": data["dimension"],
        "duration": data["duration"],
        "dynamic": data["dynamic"],
        "owner": data["owner"],
        "pic": data["pic"],
        "pubdate": data["pubdate"],
        "rights": dict(sorted(rights.items())),
        "short_link_v2": f"https://b23.tv/{data['bvid']}",
        "stat": {**{key: data["stat"][key] for key in _VIDEO_STAT}, "vv": 0},
        "state": data["state"],
        "tid": data["tid"],
        "title": data["title"],
        "tname": data["tname"],
        "videos": data["videos"],
        "vt_switch": False,
    }


def live_card(room_id: int) -> dict[str, Any]:
    """A live room's entry in ``/x/article/cards`` (``lv5440`` of article_cards.json)."""
    info = live.room(room_id)
    user = user_facts(info["uid"])
    return {
        "area_v2_name": info["area_name"],
        "cover": info["user_cover"],
        "face": user["face"],
        "live_status": info["live_status"],
        "online": info["online"],
        "pendent_ru": "",
        "pendent_ru_color": "",
        "pendent_ru_pic": "",
        "role": 0,
        "room_id": info["room_id"],
        "title": info["title"],
        "uid": info["uid"],
        "uname": user["name"],
    }


def _card(requested: str) -> tuple[int, dict[str, Any]] | None:
    """(long room id or 0, card) for one requested id, or None if it names nothing."""
    if requested.startswith("BV"):
        try:
            aid = bv2av(requested)
        except BadVideoId:
            return None
        return None if aid in ERROR_AIDS else (0, video_card(aid))
    match = _CARD_ID.fullmatch(requested)
    if match is None:
        return None
    kind, number = match.group(1), int(match.group(2))
    if kind == "av":
        valid = 0 < number < MAX_AID and number not in ERROR_AIDS
        return (0, video_card(number)) if valid else None
    if kind == "cv":
        return (0, article_card(number)) if number in _catalogue().articles else None
    room = live.long_room_id(number)
    return (room, live_card(room)) if room else None


def cards(ids: list[str]) -> dict[str, Any]:
    """``data`` of ``/x/article/cards``: requested id -> card, for the ids that name something.

    A room named twice (by its long and short id) has one entry, under the id named last.
    """
    data: dict[str, Any] = {}
    room_keys: dict[int, str] = {}
    for requested in ids:
        found = _card(requested)
        if found is None:
            continue
        room, card = found
        if room:
            data.pop(room_keys.get(room, ""), None)
            room_keys[room] = requested
        data.pop(requested, None)
        data[requested] = card
    return data


# --- endpoints ------------------------------------------------------------------------------


def _number(value: str, limit: int) -> int | None:
    """*value* as a decimal id below *limit*, or None if it is not one."""
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(limit)):
        return None
    number = int(value)
    return number if 0 < number < limit else None


def _article_endpoint(build: Callable[[int], object]) -> Callable[[web.Request], Answer]:
    def endpoint(request: web.Request) -> Answer:
        cvid = _number(request.query.get("id", ""), 1 << 63)
        if cvid is None:
            return envelope(*BAD_REQUEST)
        if cvid in ERROR_CVIDS:
            return envelope(*ERROR_CVIDS[cvid])
        if cvid not in _catalogue().articles:
            return envelope(*NOT_FOUND)
        return ok(build(cvid))

    return endpoint


def _cards_answer(request: web.Request) -> Answer:
    ids = [piece.strip() for piece in request.query.get("ids", "").split(",") if piece.strip()]
    if not ids or len(ids) > request.app[CARDS_MAX_IDS]():
        return envelope(*BAD_REQUEST)
    return ok(cards(ids))


def _list_answer(request: web.Request) -> Answer:
    list_id = _number(request.query.get("id", ""), 1 << 63)
    if list_id is None:
        return envelope(*BAD_REQUEST)
    if list_id not in _catalogue().lists:
        return envelope(*NOT_FOUND)
    return ok(list_web_articles(list_id))


def _page(query: Mapping[str, str], name: str, default: int) -> int | None:
    """The number in parameter *name*, *default* if it is absent, None if it is not a number."""
    value = query.get(name, "")
    if not value:
        return default
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


def _space_answer(request: web.Request) -> Answer:
    query = request.query
    mid = _number(query.get("mid", ""), MAX_MID)
    pn, ps = _page(query, "pn", 1), _page(query, "ps", SPACE_ARTICLE_PAGE[0])
    sort = query.get("sort", "") or "publish_time"
    if mid is None or pn is None or ps is None or sort not in ("publish_time", "view", "fav"):
        return envelope(*BAD_REQUEST)
    if mid in ERROR_MIDS:
        return envelope(*ERROR_MIDS[mid])
    ps = min(ps or SPACE_ARTICLE_PAGE[0], SPACE_ARTICLE_PAGE[1])
    return ok(space_articles(mid, max(pn, 1), ps, sort))


ENDPOINTS: dict[str, Callable[[web.Request], Answer]] = {
    "/x/article/view": _article_endpoint(view),
    "/x/article/viewinfo": _article_endpoint(viewinfo),
    CARDS: _cards_answer,
    "/x/article/list/web/articles": _list_answer,
    "/x/space/wbi/article": _space_answer,
}
