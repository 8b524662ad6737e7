"""Golden tests of the article parsers and of the body conversion.

The payloads are the ``data`` objects of the real examples saved with the API
notes (bilibili-API-collect; docs/bilibili-api.md, Saved examples), copied verbatim into
tests/fixtures/<endpoint>/. Expected values are written out in full; the two
real bodies' HTML is checked by its structure (block tags, image sources,
attributes) and the body conversion is pinned exactly on hand-written inputs.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from unittest.mock import ANY

import jsonschema
import lxml.html
import pytest
from itemadapter import ItemAdapter

from bilicrawl.items import (
    ArticleCardItem,
    ArticleCategory,
    ArticleItem,
    ArticleList,
    ArticleStats,
    LiveRoomCardItem,
    Owner,
    VideoCardItem,
    VideoStat,
)
from bilicrawl.parsers.article import (
    ArticleListPage,
    ArticlesPage,
    parse_article,
    parse_article_card,
    parse_article_list,
    parse_cards,
    parse_live_card,
    parse_space_articles,
    parse_video_card,
)
from bilicrawl.parsers.content import Body, from_delta, from_html
from bilicrawl.parsers.payload import PayloadError
from tests.utils import DELETE, edit, payload

CRAWLED_AT = 1700000000


CV1 = payload("article_view/cv1.json")
CV41358718 = payload("article_view/cv41358718_type3.json")
CARDS = payload("article_cards/example.json")
ARTICLE_LIST = payload("article_list_web_articles/rl207146.json")
SPACE_ARTICLES = payload("space_wbi_article/example.json")

CV1_SUMMARY = (
    "天空像是倾倒出的墨水，黑得静谧而深邃。黎明还远，光亮全无。夜不能寐。披衣，起床。"
    "茶香的弥漫，一盏灯的相伴。夜，你是我久别重逢的朋友，那一刹那的相见，带给了我久违的安思。"
    "如果不是梦魇的皮闹，我本不该投入"
)

CV1_TEXT = "\n".join([
    "天空像是倾倒出的墨水，黑得静谧而深邃。黎明还远，光亮全无。",
    (
        "夜不能寐。披衣，起床。茶香的弥漫，一盏灯的相伴。夜，你是我久别重逢的朋友，"
        "那一刹那的相见，带给了我久违的安思。如果不是梦魇的皮闹，我本不该投入你的怀抱，此时此刻，"
        "万念侵扰，思绪咆哮。"
    ),
    (
        "台灯在角落里静静注视着我，不稳定的电流偶尔会吱吱作响。一切都像打在海绵上的水，渐渐消失，"
        "慢慢隐身于黑夜，独独留下我自己。一盏灯就可以把夜撕出个伤口，"
        "我似乎听到夜逃离光亮的脚步声，窸窸窣窣。它在蔓延，吞噬的野心已越过了窗沿。"
    ),
    (
        "我捧着茶杯，仿佛是在捧着一整个空间，凝重而诡异。茶香绕过茶杯脱落的瓷层向四周扩散，"
        "空气闻到了茶香，于是身边的气息似乎活跃了起来。转念一想，人生如茶。"
        "器皿的束缚不是茶香的归宿，所以人生的低谷也不是生命的全部。黑暗是光明的束缚，"
        "但光明却是黑暗的归宿。"
    ),
    (
        "灯光下，书架上一本金色题字的书的书名熠熠发光，我起身取下书，"
        "发现是海伦写的《假如给我三天光明》，我内心一热，忽然间有些感动。一个身体残疾的孩子，"
        "孱弱的身躯却支撑起了刚劲的灵魂。她的眼前一片漆黑，但内心世界却是光彩艳丽的。"
        "她的心中永远都有一抹无形的光，指引着她踏遍人生的路途。"
    ),
    (
        "时钟告诉我现在是凌晨四点。我舒展下筋骨，刚要起身，一只飞虫不偏不斜恰好闯入我的视线。"
        "灯光是它唯一的追寻。我不敢有任何的动作，只好也只能静静看着这只可爱的生灵。"
        "它好像不知道我是它的伙伴，也许它真的以为光亮是它唯一的追寻。"
        "但是我却欣慰于这突如其来的伙伴。光明可以带来很多东西，"
        "有时候也包括一份黑暗中的灵魂的一份安慰。我不忍打扰它与光明的约会，"
        "于是悄悄起身慢慢摸索着到了阳台。"
    ),
    (
        "阳台和我沉入了外面黑暗的梦乡。隐约可以听到一些不知名的昆虫在开着它们的舞会，"
        "我猜它们都端着无形的酒杯。它们在黑暗中买醉，因为明天的天明将是它们的散会。我有些感怀，"
        "也有些悲哀。"
    ),
    (
        "夜风股股咆哮着，我昂首顶住风头，仰望着漆黑的四周。很远很远处，灯塔若隐若现。"
        "它向来就是一头巨大的野兽，而此时它却空荡的像杯将尽的酒。它散发出柔弱的灯光在风中摇曳，"
        "忽明忽暗，像是一场与黑暗的决斗，随时都可能葬身在这黎明的前奏。"
    ),
    (
        "不忍心这惨烈的一幕，我踱步来到窗前。窗子很旧了，旧到已经无法再承受住时间的践踏了。"
        "可无论它多么陈旧，此时的它是神奇的——窗外黑暗窗内光。人心不也是一扇窗户吗？"
        "一半明媚一半伤。窗户把光亮的一面给了光明，人心是不是也应该把明媚的一半朝向世界呢？"
    ),
    (
        "屋内的灯倏忽闪了闪，我晃过神来，发现天边已经有抹淡红色了。黎明的脚步已经迈出了一半。"
        "那只与台灯约会的虫子似乎很满意，兴高采烈的向着呼之欲出的朝阳的方向窜去了。"
        "我望着它的背影，轻轻挥了挥手，心中暗念：“亲爱的朋友，恭喜你找到了属于自己的方向和追求，"
        "希望你能在光和热中接受生命的升华。”"
    ),
    (
        "天空见亮了，有点空灵，光晕中泛着感动。第一缕曙光穿透了云层，是的，我看到了，那一抹光，"
        "越来越近，越来越亮……"
    ),
])  # fmt: skip

EXPECTED_CV1 = ArticleItem(
    cvid=1,
    title="未知的光",
    summary=CV1_SUMMARY,
    author=Owner(
        mid=91221505,
        name="健行见远渐忘",
        face="https://i1.hdslb.com/bfs/face/89fe260a17891fdadc3365a9698fee52796c7765.jpg",
    ),
    category=ArticleCategory(id=15, parent_id=3, name="日常"),
    tags=["静夜思"],
    keywords=CV1_SUMMARY,  # this article's keywords are its summary, character for character
    publish_time=1519913233,
    ctime=1497973729,
    mtime=1589209079,
    words=1190,
    banner_url="https://i0.hdslb.com/bfs/article/b1e1029c08d8ad1bb06460d736839a7741dd7925.jpg",
    image_urls=["https://i0.hdslb.com/bfs/article/d2eedf1fd338bceca10099e2f7b33fa9017c859b.jpg"],
    stats=ArticleStats(
        view=1631212,
        favorite=17520,
        like=32484,
        dislike=1,
        reply=14399,
        share=616,
        coin=2543,
        dynamic=0,
    ),
    type=0,
    original=0,
    reprint=0,
    list=ArticleList(id=253534, name="静夜思"),
    dyn_id_str="38554821905721204",
    content_html=ANY,  # checked by test_cv1_html_structure
    content_text=CV1_TEXT,
    crawled_at=CRAWLED_AT,
)

CV41358718_TEXT = "\n".join([
    "背景",
    "最近没什么事做, 又回 BAC 看看有什么接口可以抓, 于是看到了陈年的专栏正文内容的 Issue #859",
    (
        "由于泽生自己是写前端的, 对于浏览器 DevTools 的各项调试工具还算是比较了解, "
        "打算想办法把专栏正文的接口抓下来 :)"
    ),
    "思路",
    (
        "由于专栏正文完整的内容在页面加载的时候就已经通过 SSR (Server-Side Rendering, "
        "服务端渲染) 的方式通过 <script> 标签注入到 HTML 网页中, 直接通过看 DevTools "
        "的网络面板肯定是没用的"
    ),
    (
        "最直接的方法是找到专栏相关的 JavaScript 代码, 通过大脑在没有 SourceMap 的情况下沿着 "
        "bundle 逆向出接口, 这种方法对于泽生明显不可行, 其中一个原因是屏幕太小而源码太大 (-.-;)"
    ),
    (
        "另一个方法是通过伪造 SSR 不工作, 从而诱导页面脚本手动通过 API 去获取内容, "
        "不过伪造的方法也比较麻烦, 但可行度相对较高 😆"
    ),
    (
        "关于如何伪造 SSR 不工作的现象, 就需要分析 SSR 是如何被使用的, 某站的 SSR "
        "是通过向页面注入 JavaScript 代码实现的, 具体是在 window 全局对象上加了个属性 "
        "__INITIAL_STATE__, 具体结构需要具体页面分析"
    ),
    (
        "目标就是要在读取之前移除这个属性, 移除方法简单, 无非是直接 window.__INITIAL_STATE__ = "
        "undefined (或者任意无效值), 或者 delete window.__INITIAL_STATE__, 别的 ES6 "
        "的反射之类的方法就不说了, 这不是重点"
    ),
    (
        "但这个脚本注入的位置就很恶心, 不在 <head> 里面, 也不在 <body> 底部, 就刚好在读取 "
        "__INITIAL_STATE__ 的脚本前面, 这使得无法使用篡改猴一类的用户脚本插件进行修改, "
        "因为提供的用户脚本执行方式会出现还没写属性和已经读过属性的问题 (゜-゜)"
    ),
    (
        "接着就是传统的 DevTools 调试面板, 但正常手动暂停脚本执行往往已经脚本执行完成了, "
        "解决方法就是网络节流或者 <head> 处用户脚本 debugger 语句"
    ),
    (
        "正好篡改猴高级设置允许用户脚本执行前暂停开始调试, 原理就是 debugger 语句, "
        "只要把脚本执行位置放在 <body> 之前就有机会打断点把 __INITIAL_STATE__ 删掉 💥"
    ),
    "实践",
    (
        "使用 Chromium (理论上 Firefox 也可以, 但其 DevTools 泽生用起来不是很舒服) "
        "安装篡改猴扩展 🐒, 新建一个用户脚本, 里面是否写内容无所谓, 执行位置为 document-head, "
        "然后在篡改猴的设置里面把调试脚本打开"
    ),
    (
        "接着打开一个使用 SSR 的网页, 不过注意要保持 DevTools 打开, 否则调试就不会生效, "
        "页面脚本自动暂停后, 你将看到你的脚本和该页面已经加载的内容, 包含 HTML 网页, JavaScript "
        "代码, 和 CSS 文本"
    ),
    (
        "你所需要做的就是检查 SSR 的情况是否如你所想的那样, 放在 window.__INITIAL_STATE__ 那里, "
        "如果是直接渲染成页面元素的话, 抱歉上帝来了也救不了你, 某站 JavaScript 前端可不会管 HTML "
        "的事情 🫠"
    ),
    (
        "如果在 __INITIAL_STATE__ 里面, 恭喜, 你可以直接继续了. 如果不是, "
        "那就检查一下当前页面路径之类的, 看看有没有不同版本的相同内容, 毕竟专栏分新旧版, "
        "专栏网页也分新旧版, 往往旧版能带来惊喜 ✨"
    ),
    (
        "找到了合适的 __INITIAL_STATE__, 你只需要在原地打个断点, 然后继续执行脚本, "
        "页面就会在那里暂停, 接着执行下一步, 此时赋值完成, 可以开始改属性了"
    ),
    "切到控制台, 执行那句期待已久的语句: window.__INITIAL_STATE__ = undefined, 大功告成! 🎉",
    (
        "恢复页面脚本执行, 你会看到页面好像卡了一下, 然后文章还是加载了出来, "
        "这个时候就可以看看网络面板的情况了"
    ),
    (
        "可以观察到, 多了一个你从来没见到过的叫 view 的野生请求, 点开详细, 复制地址, 记下参数, "
        "保存响应, 发 Issue 去也~"
    ),
    (
        "如果这时回过头看控制台, 你会发现有这么一段错误十分显眼, 无法读取 undefined 的属性, "
        "正是由于这个错误, 加之某站程序员的细心, 你才得以看到文章和抓到接口"
    ),
    "后话",
    "Issue 已经发了, 估计写到文档里也是泽生的事情 🥴",
    (
        "这样的因 SSR 而省下的相关接口应该也有很多, 一个个慢慢打断点抓也不是个长久之计, "
        "毕竟一旦直接渲染成 HTML, 就没的办法了 😮\u200d💨"
    ),
    "学习正经的前端知识还是有利于不正经的逆向的 📚",
    "希望大家都能来一起帮忙, Make BAC Great Again! 🥂",
    "有改动, 原文地址: https://sess.xhustudio.eu.org/posts/2025/devtools-vs-ssr-bac/",
])  # fmt: skip

EXPECTED_CV41358718 = ArticleItem(
    cvid=41358718,
    title="通过 DevTools 绕过 SSR 抓包某站专栏正文接口",
    summary=(
        "背景\n最近没什么事做, 又回 BAC 看看有什么接口可以抓, 于是看到了陈年的专栏正文内容的 "
        "Issue\u00a0#859\n由于泽生自己是写前端的, 对于浏览器 DevTools "
        "的各项调试工具还算是比较了解, 打算想办法把专栏正文的接口抓下来 "
        ":)\n思路\n由于专栏正文完整的内容在页面加载的时候就已经通过 SSR (Server-Side Rendering, "
        "服务端渲染) 的方式通过\u00a0<script>\u00a0标签注入到 HTML 网页中, 直接通过看 DevTools "
        "的网络面板肯定是没用的\n[图片]\n最直接的方法是"
    ),
    author=Owner(
        mid=645769214,
        name="Session小胡",
        face="https://i2.hdslb.com/bfs/face/77906db03b1eefac02613de184afad03f7bc58d7.jpg",
    ),
    category=ArticleCategory(id=26, parent_id=17, name="数码"),
    tags=["HTML", "API", "BAC", "JavaScript", "Bilibili"],
    keywords=(
        "BULLET,HEADER,WINDOW,LIST,SSR,WIDTH,html,undefined,VIEW,FIREFOX,BAC,JAVASCRIPT,CLASS,"
        "脚本插件,SIZE,TRUE,es6,ALT,长久之计,HTTPS,CSS,控制台,一起帮,A_PI,解决方法,期待已久,"
        "大功告成,没什么,有什么,浏览器,很舒服,无所谓,有没有,程序员,有利于,不正经"
    ),
    publish_time=1744789930,
    ctime=1744789930,
    mtime=1744789930,
    words=2039,
    banner_url="",
    image_urls=["https://i0.hdslb.com/bfs/article/9071997152b6fec0ae465fe2a86b580e645769214.jpg"],
    stats=ArticleStats(
        view=51, favorite=2, like=3, dislike=0, reply=0, share=0, coin=2, dynamic=0
    ),
    type=3,
    original=1,
    reprint=1,
    list=ArticleList(id=326286, name="电脑"),
    dyn_id_str="1056353752004427792",
    content_html=ANY,  # checked by test_cv41358718_html_structure
    content_text=CV41358718_TEXT,
    crawled_at=CRAWLED_AT,
)

EXPECTED_CARDS = {
    "av2": VideoCardItem(
        aid=2,
        bvid="BV1xx411c7mD",
        title="字幕君交流场所",
        desc="www",
        pic="http://static.hdslb.com/images/transparent.gif",
        owner=Owner(
            mid=2,
            name="碧诗",
            face="https://i2.hdslb.com/bfs/face/ef0457addb24141e15dfac6fbf45293ccf1e32ab.jpg",
        ),
        pubdate=1252458549,
        ctime=1497344798,
        duration=2055,
        tid=130,
        tname="音乐综合",
        copyright=2,
        state=0,
        videos=1,
        dynamic="",
        stat=VideoStat(
            view=4983587,
            danmaku=121342,
            reply=86021,
            favorite=107375,
            coin=38042,
            share=20052,
            like=261036,
        ),
        refreshed_at=CRAWLED_AT,
    ),
    "cv1": ArticleCardItem(
        cvid=1,
        title="未知的光",
        summary=CV1_SUMMARY,
        author=Owner(
            mid=91221505,
            name="健行见远渐忘",
            face="https://i1.hdslb.com/bfs/face/89fe260a17891fdadc3365a9698fee52796c7765.jpg",
        ),
        category=ArticleCategory(id=15, parent_id=3, name="日常"),
        publish_time=1519913233,
        ctime=1497973729,
        mtime=1589209079,
        words=1190,
        banner_url=(
            "https://i0.hdslb.com/bfs/article/b1e1029c08d8ad1bb06460d736839a7741dd7925.jpg"
        ),
        image_urls=[
            "https://i0.hdslb.com/bfs/article/d2eedf1fd338bceca10099e2f7b33fa9017c859b.jpg"
        ],
        stats=ArticleStats(
            view=1631442,
            favorite=17524,
            like=32489,
            dislike=1,
            reply=14399,
            share=616,
            coin=2545,
            dynamic=0,
        ),
        type=0,
        original=0,
        reprint=0,
        list=ArticleList(id=253534, name="静夜思"),
        refreshed_at=CRAWLED_AT,
    ),
    "cv2": ArticleCardItem(
        cvid=2,
        title="专栏行为准则  ",
        summary=(
            "欢迎各位使用Bilibili专栏，为了保证Bilibili专栏的内容质量，维护专栏的内容生态，"
            "让创作者和读者都拥有良好的使用体验和阅读体验，请各位谨遵以下规范条例："
            "\n\n严令禁止条例\nbilibili严"
        ),
        author=Owner(
            mid=144900660,
            name="专栏小天使",
            face="http://i0.hdslb.com/bfs/face/ff6b51c3b339dae5f341d1693f52132ab11c86b6.jpg",
        ),
        category=ArticleCategory(id=15, parent_id=3, name="日常"),
        publish_time=1509517123,
        ctime=1497973871,
        mtime=1640696950,
        words=3711,
        banner_url=(
            "https://i0.hdslb.com/bfs/article/131b1d41b857d5308f5bff36591d117bddc48d96.jpg"
            "@90p.webp"
        ),
        image_urls=[
            "https://i0.hdslb.com/bfs/article/0a72422ce8e77d8512f010d93b1b7f9bc4e64e52.jpg"
        ],
        stats=ArticleStats(
            view=1184187,
            favorite=5614,
            like=16956,
            dislike=0,
            reply=1944,
            share=371,
            coin=3590,
            dynamic=0,
        ),
        type=0,
        original=0,
        reprint=1,
        list=None,
        refreshed_at=CRAWLED_AT,
    ),
    "lv5440": LiveRoomCardItem(
        room_id=5440,
        uid=9617619,
        title="一场穿越20年的直播｜梦回千禧文学",
        live_status=2,
        online=0,
        user_cover=("https://i0.hdslb.com/bfs/live/9fe50921ab9b49e80dcb398f65135191d1b8252c.jpg"),
        refreshed_at=CRAWLED_AT,
    ),
}


def outline(content_html: str) -> list[str]:
    """The blocks of normalised HTML, each with its children's tags: ``ul(li,li)``."""
    blocks = lxml.html.fragments_fromstring(content_html) if content_html else []
    return [
        f"{block.tag}({','.join(child.tag for child in block)})" if len(block) else block.tag
        for block in blocks
    ]


def attributes(content_html: str) -> set[tuple[str, str, str]]:
    """Every (tag, attribute, value) in the HTML, with URLs reduced to their scheme."""
    found = set()
    for block in lxml.html.fragments_fromstring(content_html):
        for element in block.iter():
            for name, value in element.attrib.items():
                found.add((element.tag, name, value.split("//")[0] if name != "class" else value))
    return found


def test_parse_article_type0_golden() -> None:
    assert parse_article(CV1, crawled_at=CRAWLED_AT) == EXPECTED_CV1


def test_cv1_html_structure() -> None:
    content_html = parse_article(CV1, crawled_at=CRAWLED_AT).content_html
    assert outline(content_html) == ["p"] * 11
    assert attributes(content_html) == set()
    assert content_html == "".join(f"<p>{line}</p>" for line in CV1_TEXT.split("\n"))


def test_parse_article_type3_golden() -> None:
    assert parse_article(CV41358718, crawled_at=CRAWLED_AT) == EXPECTED_CV41358718


def test_cv41358718_html_structure() -> None:
    content_html = parse_article(CV41358718, crawled_at=CRAWLED_AT).content_html
    assert outline(content_html) == [
        "h2", "ul(li,li)", "h2", "ul(li)", "figure(img)", "ul(li,li,li,li,li,li,li)",
        "figure(img)", "h2", "ul(li,li,li,li,li,li,li)", "figure(img)", "ul(li,li)", "h2",
        "ul(li,li,li,li)", "blockquote(p)",
    ]  # fmt: skip
    assert [img.get("src") for img in lxml.html.fromstring(f"<div>{content_html}</div>")
            .iter("img")] == [
        "https://i0.hdslb.com/bfs/new_dyn/7bb121008990850bbd333fe504eebc90645769214.png",
        "https://i0.hdslb.com/bfs/new_dyn/1a20d186e8c8cddc043b5295d481c719645769214.png",
        "https://i0.hdslb.com/bfs/new_dyn/87c88df1e15195996e34835456493d55645769214.png",
    ]  # fmt: skip
    assert attributes(content_html) == {("img", "src", "https:")}
    # Text is kept as characters: the emoji, the CJK and the delta's no-break spaces.
    assert "<li>Issue 已经发了, 估计写到文档里也是泽生的事情 🥴</li>" in content_html
    assert "Issue\u00a0#859</li>" in content_html
    assert "通过\u00a0&lt;script&gt;\u00a0标签" in content_html


def test_parse_article_does_not_mutate_input() -> None:
    data = copy.deepcopy(CV41358718)
    parse_article(data, crawled_at=CRAWLED_AT)
    assert data == CV41358718


@pytest.mark.parametrize(
    ("path", "value", "field", "expected"),
    [
        ("tags", None, "tags", []),
        ("tags", DELETE, "tags", []),
        ("keywords", DELETE, "keywords", ""),
        ("dyn_id_str", DELETE, "dyn_id_str", ""),
        ("list", None, "list", None),
    ],
)
def test_optional_article_fields(path: str, value: object, field: str, expected: object) -> None:
    data = copy.deepcopy(CV1)
    edit(data, path, value)
    assert getattr(parse_article(data, crawled_at=CRAWLED_AT), field) == expected


@pytest.mark.parametrize(
    "path",
    ["id", "title", "summary", "author", "author.mid", "author.face", "category",
     "category.parent_id", "publish_time", "ctime", "mtime", "words", "banner_url",
     "image_urls", "stats", "stats.dislike", "stats.dynamic", "type", "original", "reprint",
     "list.id", "list.name", "tags[0].name", "content"],
)  # fmt: skip
def test_missing_article_field_raises(path: str) -> None:
    data = copy.deepcopy(CV1)
    edit(data, path, DELETE)
    with pytest.raises(PayloadError, match=rf"required field '{re.escape(path)}' is missing"):
        parse_article(data, crawled_at=CRAWLED_AT)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("id", "1", "field 'id' should be int, got '1'"),
        ("original", False, "field 'original' should be int, got False"),
        ("image_urls[0]", None, "field 'image_urls[0]' should be str, got None"),
        ("tags", "静夜思", "field 'tags' should be list"),
        ("tags[0]", "静夜思", "field 'tags[0]' should be dict"),
        ("keywords", ["静夜思"], "field 'keywords' should be str"),
        ("list", 253534, "field 'list' should be dict"),
        ("content", {"ops": []}, "field 'content' should be str"),
    ],
)
def test_wrong_article_field_type_raises(path: str, value: object, message: str) -> None:
    data = copy.deepcopy(CV1)
    edit(data, path, value)
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_article(data, crawled_at=CRAWLED_AT)


@pytest.mark.parametrize("kind", [1, 2, 4])
def test_unknown_article_type_raises(kind: int) -> None:
    data = copy.deepcopy(CV1)
    data["type"] = kind
    with pytest.raises(PayloadError, match=rf"field 'type' is {kind}: only 0 \(HTML\) and 3"):
        parse_article(data, crawled_at=CRAWLED_AT)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("<p>an HTML body</p>", "field 'content' is not JSON: "),
        ("", "field 'content' is not JSON: "),
        ('[{"insert": "x\\n"}]', "field 'content' should be dict"),
        ("{}", "required field 'content.ops' is missing"),
        ('{"ops": {"insert": "x\\n"}}', "field 'content.ops' should be list"),
    ],
)
def test_type3_content_that_is_no_delta_raises(content: str, message: str) -> None:
    data = copy.deepcopy(CV41358718)
    data["content"] = content
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_article(data, crawled_at=CRAWLED_AT)


def test_parse_cards_golden() -> None:
    assert parse_cards(CARDS, refreshed_at=CRAWLED_AT) == EXPECTED_CARDS


@pytest.mark.parametrize(
    ("key", "parser"),
    [("av2", parse_video_card), ("cv1", parse_article_card), ("cv2", parse_article_card),
     ("lv5440", parse_live_card)],
)  # fmt: skip
def test_card_parsers_golden(key: str, parser: Any) -> None:
    assert parser(CARDS[key], refreshed_at=CRAWLED_AT) == EXPECTED_CARDS[key]


def test_card_keys_are_read_in_any_case() -> None:
    data = {"AV2": CARDS["av2"], "bv1xx411c7mD": CARDS["av2"], "Cv1": CARDS["cv1"],
            "LV5440": CARDS["lv5440"]}  # fmt: skip
    assert parse_cards(data, refreshed_at=CRAWLED_AT) == {
        "AV2": EXPECTED_CARDS["av2"],
        "bv1xx411c7mD": EXPECTED_CARDS["av2"],
        "Cv1": EXPECTED_CARDS["cv1"],
        "LV5440": EXPECTED_CARDS["lv5440"],
    }


def test_empty_card_map_has_no_items() -> None:
    assert parse_cards({}, refreshed_at=CRAWLED_AT) == {}


def test_video_card_without_bvid_gets_it_from_the_aid() -> None:
    data = copy.deepcopy(CARDS["av2"])
    data["bvid"] = ""
    assert parse_video_card(data, refreshed_at=CRAWLED_AT).bvid == "BV1xx411c7mD"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("cv1.stats.view", "1631442", "card 'cv1': field 'stats.view' should be int"),
        ("cv2.author", DELETE, "card 'cv2': required field 'author' is missing"),
        ("av2.stat.like", DELETE, "card 'av2': required field 'stat.like' is missing"),
        ("av2.owner.mid", "2", "card 'av2': field 'owner.mid' should be int"),
        ("av2.videos", DELETE, "card 'av2': required field 'videos' is missing"),
        ("lv5440.cover", DELETE, "card 'lv5440': required field 'cover' is missing"),
        ("lv5440", [], "card 'lv5440': field 'data' should be dict"),
    ],
)
def test_bad_card_names_its_key(path: str, value: object, message: str) -> None:
    data = copy.deepcopy(CARDS)
    edit(data, path, value)
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_cards(data, refreshed_at=CRAWLED_AT)


@pytest.mark.parametrize("key", ["15111509", "ss1", ""])
def test_card_of_another_kind_raises(key: str) -> None:
    # The cards API leaves out what it does not know (the bare 15111509 of the example).
    data = {**CARDS, key: CARDS["av2"]}
    with pytest.raises(PayloadError, match=re.escape(f"card {key!r} is not an av, BV, cv or lv")):
        parse_cards(data, refreshed_at=CRAWLED_AT)


def test_parse_article_list_golden() -> None:
    assert parse_article_list(ARTICLE_LIST) == ArticleListPage(
        id=207146, name="B站api研究笔记", cvids=[4815593, 4820548, 5263184]
    )


@pytest.mark.parametrize("articles", [None, [], DELETE])
def test_article_list_without_articles(articles: object) -> None:
    data = copy.deepcopy(ARTICLE_LIST)
    edit(data, "articles", articles)
    assert parse_article_list(data) == ArticleListPage(id=207146, name="B站api研究笔记", cvids=[])


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("list", DELETE, "required field 'list' is missing"),
        ("list.id", "207146", "field 'list.id' should be int"),
        ("list.name", DELETE, "required field 'list.name' is missing"),
        ("articles[2].id", DELETE, "required field 'articles[2].id' is missing"),
        ("articles[0]", 4815593, "field 'articles[0]' should be dict"),
    ],
)
def test_bad_article_list_raises(path: str, value: object, message: str) -> None:
    data = copy.deepcopy(ARTICLE_LIST)
    edit(data, path, value)
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_article_list(data)


def test_parse_space_articles_golden() -> None:
    assert parse_space_articles(SPACE_ARTICLES) == ArticlesPage(
        cvids=[18989884, 18972446], count=1563
    )


@pytest.mark.parametrize("articles", [None, [], DELETE])
def test_space_articles_past_the_last_page(articles: object) -> None:
    data = copy.deepcopy(SPACE_ARTICLES)
    edit(data, "articles", articles)
    assert parse_space_articles(data) == ArticlesPage(cvids=[], count=1563)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("count", DELETE, "required field 'count' is missing"),
        ("articles[1].id", "18972446", "field 'articles[1].id' should be int"),
        ("articles", {}, "field 'articles' should be list"),
    ],
)
def test_bad_space_articles_raises(path: str, value: object, message: str) -> None:
    data = copy.deepcopy(SPACE_ARTICLES)
    edit(data, path, value)
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_space_articles(data)


@pytest.mark.parametrize("data", [CV1, CV41358718], ids=["type0", "type3"])
def test_article_item_validates_against_schema(data: dict[str, Any]) -> None:
    item = parse_article(data, crawled_at=CRAWLED_AT)
    jsonschema.validate(ItemAdapter(item).asdict(), ItemAdapter.get_json_schema(ArticleItem))


def test_card_items_validate_against_schema() -> None:
    for item in parse_cards(CARDS, refreshed_at=CRAWLED_AT).values():
        jsonschema.validate(ItemAdapter(item).asdict(), ItemAdapter.get_json_schema(type(item)))


# The body conversion on hand-written inputs. Type 0 markup follows the site's
# editor: figures of class img-box around an <img data-src> that a class makes a
# card (its id in aid) or a cut-off.

IMG_BOX = '<figure class="img-box" contenteditable="false">{}</figure>'


def box(img: str, caption: str | None = None) -> str:
    """A figure as the site's HTML editor writes it."""
    figcaption = "" if caption is None else f'<figcaption class="caption">{caption}</figcaption>'
    return IMG_BOX.format(img + figcaption)


def card(href: str, card_id: str) -> str:
    return f'<figure class="card"><a href="{href}">{card_id}</a></figure>'


VIDEO_AV2 = card("https://www.bilibili.com/video/av2", "av2")
VIDEO_AV170001 = card("https://www.bilibili.com/video/av170001", "av170001")
VIDEO_BV = card("https://www.bilibili.com/video/BV17x411w7KC", "BV17x411w7KC")
ARTICLE_CV1 = card("https://www.bilibili.com/read/cv1", "cv1")
LIVE_5440 = card("https://live.bilibili.com/5440", "lv5440")
VOTE_123 = card("https://t.bilibili.com/vote/h5/index/#/result?vote_id=123", "123")


@pytest.mark.parametrize(
    ("content", "expected_html", "expected_text"),
    [
        pytest.param(
            "<h1>一</h1><h2>二</h2><h3>三</h3><h4>四</h4><h5>五</h5><h6>六</h6>",
            "<h1>一</h1><h2>二</h2><h3>三</h3><h4>四</h4><h5>五</h5><h6>六</h6>",
            "一\n二\n三\n四\n五\n六",
            id="headings",
        ),
        pytest.param(
            "<ul><li>a</li><li>b</li></ul><ol><li>c</li></ol><ul><li>d</li></ul>",
            "<ul><li>a</li><li>b</li></ul><ol><li>c</li></ol><ul><li>d</li></ul>",
            "a\nb\nc\nd",
            id="lists",
        ),
        pytest.param(
            "<ul><li>a</li></ul><ul><li>b</li></ul>",
            "<ul><li>a</li><li>b</li></ul>",
            "a\nb",
            id="adjacent_lists_of_one_kind_group",
        ),
        pytest.param(
            "<ol><li><p>x</p><p>y</p></li><li><h2>z</h2></li></ol>",
            "<ol><li>x</li><li>y</li><li>z</li></ol>",
            "x\ny\nz",
            id="blocks_in_list_items_are_items",
        ),
        pytest.param(
            "<blockquote><p>q1</p><p>q2</p></blockquote><blockquote>bare</blockquote>",
            "<blockquote><p>q1</p><p>q2</p><p>bare</p></blockquote>",
            "q1\nq2\nbare",
            id="blockquotes",
        ),
        pytest.param(
            "<p><b>B</b><strong>S</strong> <i>I</i><em>E</em> "
            '<a href="https://example.com/x?a=1&amp;b=2">L</a></p>',
            '<p><strong>BS</strong> <em>IE</em> <a href="https://example.com/x?a=1&amp;b=2">L</a>'
            "</p>",
            "BS IE L",
            id="bold_italic_link",
        ),
        pytest.param(
            '<p><a href="//www.bilibili.com/video/av2"><strong>x<em>y</em></strong></a>z'
            '<a href="/read/cv1">r</a><a href="javascript:alert(1)">j</a><a>n</a></p>',
            '<p><a href="https://www.bilibili.com/video/av2"><strong>x<em>y</em></strong></a>z'
            '<a href="https://www.bilibili.com/read/cv1">r</a>jn</p>',
            "xyzrjn",
            id="nested_inline_and_link_targets",
        ),
        pytest.param(
            '<p style="text-align: center;" class="x"><span class="color-pink-03">'
            '<span class="font-size-20">大</span></span> <font color="red">红</font> '
            "<u>下</u> <s>删</s> <code>c</code></p>",
            "<p>大 红 下 删 c</p>",
            "大 红 下 删 c",
            id="styling_is_unwrapped",
        ),
        pytest.param(
            "<p>a<script>alert(1)</script>b<!-- note -->c</p><style>p {}</style>",
            "<p>abc</p>",
            "abc",
            id="script_style_comments_removed",
        ),
        pytest.param(
            "<p>line 1<br>line   2<br/></p><p><strong>b<br>c</strong></p>",
            "<p>line 1<br>line   2<br></p><p><strong>b<br>c</strong></p>",
            "line 1\nline 2\nb\nc",
            id="br",
        ),
        pytest.param(
            "loose <b>bold</b><p>para</p>tail <i>it</i>",
            "<p>loose <strong>bold</strong></p><p>para</p><p>tail <em>it</em></p>",
            "loose bold\npara\ntail it",
            id="top_level_text",
        ),
        pytest.param(
            "<p><br></p><p> </p><p>&nbsp;</p><div>\n</div><h2> </h2>",
            "",
            "",
            id="empty_blocks_dropped",
        ),
        pytest.param(
            box(
                '<img data-src="//i0.hdslb.com/bfs/article/a.png" width="1320" height="188" '
                'data-size="37499">',
                "图 <b>一</b>",
            ),
            '<figure><img src="https://i0.hdslb.com/bfs/article/a.png">'
            "<figcaption>图 一</figcaption></figure>",
            "",
            id="image_with_caption",
        ),
        pytest.param(
            box('<img data-src="http://i0.hdslb.com/bfs/article/b.png">', " ")
            + box('<img src="https://i0.hdslb.com/c.png">'),
            '<figure><img src="https://i0.hdslb.com/bfs/article/b.png"></figure>'
            '<figure><img src="https://i0.hdslb.com/c.png"></figure>',
            "",
            id="images_without_caption",
        ),
        pytest.param(
            box('<img alt="琉绮RUKI立绘.png" width="280" height="522">'),
            "",
            "",
            id="image_without_source_dropped",
        ),
        pytest.param(
            '<p>before <img src="//i0.hdslb.com/d.png"> after</p>',
            '<p>before </p><figure><img src="https://i0.hdslb.com/d.png"></figure><p> after</p>',
            "before\nafter",
            id="image_in_a_paragraph_splits_it",
        ),
        pytest.param(
            '<figure class="code-box"><pre class="language-python" codecontent="print(1)">'
            "print(1)</pre></figure><table><tr><td>a</td><td>b</td></tr></table>",
            "<p>print(1)</p><p>a</p><p>b</p>",
            "print(1)\na\nb",
            id="other_blocks_read_as_paragraphs",
        ),
        pytest.param(
            box('<img data-src="//i0.hdslb.com/bfs/article/4adb9255.png" class="cut-off-5">')
            + "<hr>",
            "<hr><hr>",
            "",
            id="cut_offs",
        ),
        pytest.param(
            box(
                '<img data-src="//i0.hdslb.com/card.png" aid="2" class="video-card nomal" '
                'type="nomal">'
            )
            + box('<img aid="av170001" class="video-card nomal">')
            + box('<img aid="BV17x411w7KC" class="video-card nomal">')
            + box('<img aid="170001,2" class="video-card nomal">')
            + box('<img aid="1" class="article-card" type="normal">')
            + box('<img aid="cv1" class="article-card">')
            + box('<img aid="123" class="vote-display">')
            + box('<img aid="lv5440" class="live-card">')
            + box('<img aid="5440" class="live-card">'),
            VIDEO_AV2
            + VIDEO_AV170001
            + VIDEO_BV
            + VIDEO_AV170001
            + VIDEO_AV2
            + ARTICLE_CV1
            + ARTICLE_CV1
            + VOTE_123
            + LIVE_5440
            + LIVE_5440,
            "",
            id="cards",
        ),
        pytest.param(
            box('<img aid="" class="video-card">')
            + box('<img aid="BV1" class="video-card">')
            + box('<img aid="cvx" class="article-card">')
            + box('<img class="live-card">')
            + box('<img aid="-1" class="vote-display">'),
            "",
            "",
            id="cards_naming_nothing_dropped",
        ),
        pytest.param(
            "<p>简体中文 😮\u200d💨 &lt;tag&gt; &amp;</p>",
            "<p>简体中文 😮\u200d💨 &lt;tag&gt; &amp;</p>",
            "简体中文 😮\u200d💨 <tag> &",
            id="characters_kept",
        ),
    ],
)
def test_from_html(content: str, expected_html: str, expected_text: str) -> None:
    assert from_html(content) == Body(html=expected_html, text=expected_text)


def delta(*ops: dict[str, Any]) -> str:
    return json.dumps({"ops": list(ops)}, ensure_ascii=False)


def line(kind: dict[str, Any] | None = None) -> dict[str, Any]:
    """The "\\n" insert that ends a line, with the block attributes ``kind``."""
    return {"insert": "\n"} if kind is None else {"insert": "\n", "attributes": kind}


@pytest.mark.parametrize(
    ("ops", "expected_html", "expected_text"),
    [
        pytest.param(
            [
                {"insert": "一"},
                line({"header": 1}),
                {"insert": "三"},
                line({"header": 3}),
                {"insert": "六"},
                line({"header": 6}),
                {"insert": "七"},
                line({"header": 7}),
            ],
            "<h1>一</h1><h3>三</h3><h6>六</h6><p>七</p>",
            "一\n三\n六\n七",
            id="headers",
        ),
        pytest.param(
            [
                {"insert": "a"},
                line({"list": "bullet"}),
                {"insert": "b"},
                line({"list": "bullet"}),
                {"insert": "c"},
                line({"list": "ordered"}),
                {"insert": "d"},
                line({"list": "ordered"}),
                {"insert": "e"},
                line({"list": "bullet"}),
            ],
            "<ul><li>a</li><li>b</li></ul><ol><li>c</li><li>d</li></ol><ul><li>e</li></ul>",
            "a\nb\nc\nd\ne",
            id="lists_grouped",
        ),
        pytest.param(
            [
                {"insert": "q1"},
                line({"blockquote": True}),
                {"insert": "q2"},
                line({"blockquote": True}),
                {"insert": "p"},
                line(),
            ],
            "<blockquote><p>q1</p><p>q2</p></blockquote><p>p</p>",
            "q1\nq2\np",
            id="blockquote",
        ),
        pytest.param(
            [{"insert": "one\ntwo\n\n"}, {"insert": "三\n四"}, line({"list": "bullet"})],
            "<p>one</p><p>two</p><p>三</p><ul><li>四</li></ul>",
            "one\ntwo\n三\n四",
            id="newlines_inside_inserts",
        ),
        pytest.param(
            [
                {"insert": "b", "attributes": {"bold": True, "color": "#ff0000"}},
                {"insert": "i", "attributes": {"italic": True, "background": "#000"}},
                {"insert": " "},
                {"insert": "l", "attributes": {"link": "https://www.bilibili.com/read/cv1"}},
                {"insert": "bi", "attributes": {"bold": True, "italic": True}},
                {"insert": "c", "attributes": {"color": "#0176ba", "underline": True}},
                {"insert": "\n", "attributes": {"bold": True}},
            ],
            '<p><strong>b</strong><em>i</em> <a href="https://www.bilibili.com/read/cv1">l</a>'
            "<strong><em>bi</em></strong>c</p>",
            "bi lbic",
            id="inline_styles_color_ignored",
        ),
        pytest.param(
            [
                {"insert": "x", "attributes": {"bold": True, "link": "//b23.tv/x"}},
                {"insert": "y", "attributes": {"bold": True, "link": "//b23.tv/x"}},
                {"insert": "z", "attributes": {"link": "javascript:void(0)"}},
                line(),
            ],
            '<p><a href="https://b23.tv/x"><strong>xy</strong></a>z</p>',
            "xyz",
            id="equal_neighbours_merge",
        ),
        pytest.param(
            [
                {
                    "attributes": {"class": "normal-img"},
                    "insert": {
                        "native-image": {
                            "alt": "read-normal-img",
                            "url": "//i0.hdslb.com/a.png",
                            "width": 748,
                            "height": 494,
                            "size": 185239,
                        }
                    },
                },
                {"insert": {"native-image": {"url": "http://i0.hdslb.com/b.png"}}},
                {"insert": {"cut-off": {"type": "1", "url": ""}}},
            ],
            '<figure><img src="https://i0.hdslb.com/a.png"></figure>'
            '<figure><img src="https://i0.hdslb.com/b.png"></figure><hr>',
            "",
            id="images_and_cut_off",
        ),
        pytest.param(
            [
                {"insert": {"video-card": {"id": "av2", "url": "https://i0.hdslb.com/v.jpg"}}},
                {"insert": {"video-card": {"id": "BV17x411w7KC"}}},
                {"insert": {"video-card": {"id": "170001"}}},
                {"insert": {"article-card": {"id": "cv1"}}},
                {"insert": {"vote-card": {"id": "123"}}},
                {"insert": {"live-card": {"id": "lv5440"}}},
                {"insert": {"video-card": {"id": "not an id"}}},
            ],
            VIDEO_AV2 + VIDEO_BV + VIDEO_AV170001 + ARTICLE_CV1 + VOTE_123 + LIVE_5440,
            "",
            id="cards",
        ),
        pytest.param(
            [
                {"insert": "before "},
                {"insert": {"cut-off": {}}},
                {"insert": "after"},
                line({"header": 2}),
                {"insert": "x"},
                {"insert": {"live-card": {"id": "lv5440"}}},
                {"insert": "y"},
                {"insert": {"cut-off": {}}},
                line({"list": "bullet"}),
            ],
            "<h2>before </h2><hr><h2>after</h2><ul><li>x</li></ul>"
            + LIVE_5440
            + "<ul><li>y</li></ul><hr>",
            "before\nafter\nx\ny",
            id="embeds_split_lines",
        ),
        pytest.param(
            [
                {"insert": "a"},
                {"insert": {"formula": "e=mc^2"}},
                {"insert": {}},
                {"insert": "b"},
                line(),
            ],
            "<p>a</p><p>b</p>",
            "a\nb",
            id="unknown_embeds_skipped",
        ),
        pytest.param(
            [{"insert": "no final newline"}],
            "<p>no final newline</p>",
            "no final newline",
            id="last_line_unended",
        ),
        pytest.param(
            [{"insert": "\n\n \n"}, line({"list": "bullet"}), line({"header": 2})],
            "",
            "",
            id="empty_lines_dropped",
        ),
    ],
)
def test_from_delta(ops: list[dict[str, Any]], expected_html: str, expected_text: str) -> None:
    assert from_delta(delta(*ops)) == Body(html=expected_html, text=expected_text)


def test_text_splits_at_br_and_collapses_whitespace() -> None:
    body = from_html("<p> a \n\t b <br> <br>c\u00a0\u00a0d </p><ul><li>e<br>f</li></ul>")
    assert body.text == "a b\nc d\ne\nf"


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        (["x"], "field 'content.ops[0]' should be dict"),
        (
            [{"insert": "a"}, {"attributes": {"bold": True}}],
            "required field 'content.ops[1].insert' is missing",
        ),
        ([{"insert": 5}], "field 'content.ops[0].insert' should be str, got 5"),
        (
            [{"insert": "a", "attributes": ["bold"]}],
            "field 'content.ops[0].attributes' should be dict",
        ),
        (
            [{"insert": "a", "attributes": {"link": 1}}],
            "field 'content.ops[0].attributes.link' should be str",
        ),
        (
            [{"insert": "a"}, {"insert": "\n", "attributes": {"header": "2"}}],
            "field 'content.ops[1].attributes.header' should be int",
        ),
        (
            [{"insert": "a"}, {"insert": "\n", "attributes": {"list": True}}],
            "field 'content.ops[1].attributes.list' should be str",
        ),
        (
            [{"insert": {"native-image": {"width": 1}}}],
            "required field 'content.ops[0].insert.native-image.url' is missing",
        ),
        (
            [{"insert": {"native-image": "//i0.hdslb.com/a.png"}}],
            "field 'content.ops[0].insert.native-image' should be dict",
        ),
        (
            [{"insert": {"video-card": {"url": "https://i0.hdslb.com/v.jpg"}}}],
            "required field 'content.ops[0].insert.video-card.id' is missing",
        ),
        (
            [{"insert": {"vote-card": {"id": 123}}}],
            "field 'content.ops[0].insert.vote-card.id' should be str",
        ),
    ],
)
def test_malformed_delta_raises(ops: list[Any], message: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(message)):
        from_delta(json.dumps({"ops": ops}))
