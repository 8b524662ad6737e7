"""Article bodies -> one normalised HTML form and its plain text.

/x/article/view gives a body as the site's HTML (``type`` 0) or as a Quill
delta (``type`` 3); both are read, with lxml, into the same small vocabulary
(paragraphs, headings, lists, quotes, ``<hr>`` cut-offs, images and cards as
``<figure>``; ``<strong>``, ``<em>``, ``<a href>``, ``<br>`` inline), so stored
bodies look alike whichever editor wrote them. What cannot be shown is dropped;
a malformed delta raises ``PayloadError``. The forms are in README ("``article``
spider arguments"). Reads no settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import groupby
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit

from lxml import etree, html

from bilicrawl.ids import BadId, BadVideoId, bv2av, parse_aid, parse_cvid, parse_room_id
from bilicrawl.parsers.payload import PayloadError, check, optional, required


class Body(NamedTuple):
    """An article body in its two stored forms."""

    html: str
    """The normalised HTML: the blocks one after another, no wrapper."""
    text: str
    """One line per paragraph, heading, list item or quoted paragraph."""


class _Style(NamedTuple):
    bold: bool = False
    italic: bool = False
    link: str | None = None


class _Run(NamedTuple):
    """Text in one style; ``text`` None is a line break (``<br>``)."""

    text: str | None
    style: _Style


_Kind = tuple[str, ...]
"""The tags a line becomes, outermost first: ``("p",)``, ``("h2",)``, ``("ul", "li")``."""

_PARAGRAPH: _Kind = ("p",)
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_TEXT_BLOCKS = ("p", *sorted(_HEADINGS), "li")
_INLINE = (("link", "a"), ("bold", "strong"), ("italic", "em"))
"""How runs nest, outermost first; grouping in this order merges equal neighbours."""

# Elements that end the line before them and their own last line. Of these the site's
# editor writes p, headings, lists and blockquote; the rest read as paragraphs, such as
# the text of a figure without an image (a code box).
_HTML_BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "header",
        "li",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
        *_HEADINGS,
    }
)
_HTML_DROPPED = frozenset({"script", "style", "template"})


def _https(url: str) -> str:
    """``url`` with ``//host/…`` and ``http:`` made https (the image hosts serve both)."""
    url = url.strip()
    if url.startswith("//"):
        return f"https:{url}"
    if url[:5].lower() == "http:":
        return f"https:{url[5:]}"
    return url


def _link(href: str | None) -> str | None:
    """An absolute http(s) URL for ``href``, relative ones read on the site; else None."""
    if not href or not href.strip():
        return None
    url = urljoin("https://www.bilibili.com/", href.strip())
    return url if urlsplit(url).scheme in {"http", "https"} else None


def _video(value: str) -> tuple[str, str]:
    # The HTML editor wrote bare aids ("170001"), the delta "av170001" or a BV id.
    if value[:2].upper() == "BV":
        bv2av(value)  # raises BadVideoId unless it is one
        card_id = value
    else:
        card_id = f"av{parse_aid(value)}"
    return card_id, f"https://www.bilibili.com/video/{card_id}"


def _article(value: str) -> tuple[str, str]:
    cvid = parse_cvid(value)
    return f"cv{cvid}", f"https://www.bilibili.com/read/cv{cvid}"


def _live(value: str) -> tuple[str, str]:
    room = parse_room_id(value)
    return f"lv{room}", f"https://live.bilibili.com/{room}"


def _vote(value: str) -> tuple[str, str]:
    if not (value.isascii() and value.isdigit() and int(value)):
        raise BadId(f"{value!r} is not a vote id")
    vote_id = str(int(value))
    return vote_id, f"https://t.bilibili.com/vote/h5/index/#/result?vote_id={vote_id}"


_Target = Callable[[str], tuple[str, str]]
"""Turns a card's id into its shown id and URL; raises ``BadId``/``BadVideoId``."""

_HTML_CARDS: dict[str, _Target] = {
    "video-card": _video, "article-card": _article, "vote-display": _vote, "live-card": _live,
}  # fmt: skip
"""The ``<img>`` class of each card kind in type 0 HTML; the id is in ``aid``."""
_DELTA_CARDS: dict[str, _Target] = {
    "video-card": _video, "article-card": _article, "vote-card": _vote, "live-card": _live,
}  # fmt: skip
"""The embed name of each card kind in a type 3 delta; the id is in ``id``."""


def _cards(target: _Target, ids: str) -> list[etree._Element]:
    """Card figures for ``ids``; the HTML editor put two videos side by side as "1,2"."""
    figures = []
    for raw in ids.split(","):
        try:
            card_id, url = target(raw.strip())
        except (BadId, BadVideoId):
            continue
        figure = etree.Element("figure", {"class": "card"})
        etree.SubElement(figure, "a", href=url).text = card_id
        figures.append(figure)
    return figures


def _image(src: str, caption: str) -> list[etree._Element]:
    url = _https(src)
    if not url:
        return []
    figure = etree.Element("figure")
    etree.SubElement(figure, "img", src=url)
    if caption.strip():
        etree.SubElement(figure, "figcaption").text = caption.strip()
    return [figure]


def _cut_off() -> list[etree._Element]:
    return [etree.Element("hr")]


def _fill(parent: etree._Element, runs: list[_Run], depth: int = 0) -> None:
    """Append ``runs`` to ``parent``, wrapped in ``a``, ``strong`` and ``em`` as styled."""
    if depth == len(_INLINE):
        for run in runs:
            if run.text is None:
                etree.SubElement(parent, "br")
            elif len(parent):
                parent[-1].tail = (parent[-1].tail or "") + run.text
            else:
                parent.text = (parent.text or "") + run.text
        return
    field, tag = _INLINE[depth]
    for value, group in groupby(runs, key=lambda run: getattr(run.style, field)):
        target = parent
        if value:
            target = etree.SubElement(parent, tag)
            if tag == "a":
                target.set("href", value)
        _fill(target, list(group), depth + 1)


def _lines(block: etree._Element) -> list[str]:
    """The non-empty lines of ``block``'s text, ``<br>`` splitting them, spaces collapsed."""
    lines: list[str] = []
    parts: list[str] = []
    for event, node in etree.iterwalk(block, events=("start", "end")):
        if event == "start" and node.tag == "br":
            lines.append("".join(parts))
            parts = []
        elif event == "start":
            parts.append(node.text or "")
        elif node is not block:
            parts.append(node.tail or "")
    lines.append("".join(parts))
    return [" ".join(line.split()) for line in lines if line.split()]


class _Out:
    """The normalised blocks, collected under a ``<div>`` that is not serialised."""

    def __init__(self) -> None:
        self.root = etree.Element("div")

    def line(self, runs: list[_Run], kind: _Kind) -> None:
        """Add ``runs`` as a ``kind`` block; list items and quotes join the one before."""
        if not any(run.text and run.text.strip() for run in runs):
            return
        parent = self.root
        if len(kind) == 2:
            if len(self.root) and self.root[-1].tag == kind[0]:
                parent = self.root[-1]
            else:
                parent = etree.SubElement(self.root, kind[0])
        _fill(etree.SubElement(parent, kind[-1]), runs)

    def add(self, blocks: list[etree._Element]) -> None:
        self.root.extend(blocks)

    def body(self) -> Body:
        return Body(
            html="".join(
                etree.tostring(block, encoding="unicode", method="html") for block in self.root
            ),
            text="\n".join(
                line for block in self.root.iter(*_TEXT_BLOCKS) for line in _lines(block)
            ),
        )


class _HtmlReader:
    """Walks the site's HTML, collecting the runs of the current line."""

    def __init__(self) -> None:
        self.out = _Out()
        self.runs: list[_Run] = []

    def end_line(self, kind: _Kind) -> None:
        self.out.line(self.runs, kind)
        self.runs = []

    def children(self, element: etree._Element, style: _Style, kind: _Kind) -> None:
        if element.text:
            self.runs.append(_Run(element.text, style))
        for child in element:
            self.node(child, style, kind)
            if child.tail:
                self.runs.append(_Run(child.tail, style))

    def node(self, element: etree._Element, style: _Style, kind: _Kind) -> None:
        tag = element.tag
        if not isinstance(tag, str) or tag in _HTML_DROPPED:  # comments are not str-tagged
            return
        if tag == "br":
            self.runs.append(_Run(None, style))
        elif tag in {"img", "hr"} or (tag == "figure" and element.find(".//img") is not None):
            self.end_line(kind)
            self.embed(element)
        elif tag in _HTML_BLOCKS:
            self.end_line(kind)
            inner = _block_kind(element, kind)
            self.children(element, style, inner)
            self.end_line(inner)
        else:
            self.children(element, _inline_style(element, style), kind)

    def embed(self, element: etree._Element) -> None:
        if element.tag == "hr":
            self.out.add(_cut_off())
            return
        caption = ""
        if element.tag == "figure":
            figcaption = element.find(".//figcaption")
            caption = "" if figcaption is None else "".join(figcaption.itertext())
        for img in element.iter("img"):
            self.out.add(_html_image(img, caption))


def _html_image(img: etree._Element, caption: str) -> list[etree._Element]:
    """The blocks an ``<img>`` of the site's HTML stands for: a card, a cut-off, an image."""
    for name in (img.get("class") or "").split():
        if name in _HTML_CARDS:
            return _cards(_HTML_CARDS[name], img.get("aid") or "")
        if name.startswith("cut-off"):
            return _cut_off()
    # The site lazy-loads: data-src is the image, src (when present) may be a placeholder.
    return _image(img.get("data-src") or img.get("src") or "", caption)


def _block_kind(element: etree._Element, kind: _Kind) -> _Kind:
    """The kind of the lines inside ``element``: list items and quotes win over headings."""
    tag = element.tag
    if tag == "li":
        parent = element.getparent()
        return ("ol" if parent is not None and parent.tag == "ol" else "ul", "li")
    if tag == "blockquote":
        return ("blockquote", "p")
    if tag in _HEADINGS and kind == _PARAGRAPH:
        return (tag,)
    return kind


def _inline_style(element: etree._Element, style: _Style) -> _Style:
    tag = element.tag
    if tag in {"strong", "b"}:
        return style._replace(bold=True)
    if tag in {"em", "i"}:
        return style._replace(italic=True)
    if tag == "a" and (link := _link(element.get("href"))):
        return style._replace(link=link)
    return style


def from_html(content: str) -> Body:
    """Return the body of a type 0 article, whose ``content`` is the site's HTML."""
    reader = _HtmlReader()
    reader.children(html.fragment_fromstring(content, create_parent="div"), _Style(), _PARAGRAPH)
    reader.end_line(_PARAGRAPH)
    return reader.out.body()


def _delta_kind(attributes: dict[str, Any], path: str) -> _Kind:
    """The kind of the line a "\\n" insert with ``attributes`` ends."""
    listed = optional(attributes, "list", str, f"{path}.list")
    if listed in {"bullet", "ordered"}:
        return ("ol" if listed == "ordered" else "ul", "li")
    if attributes.get("blockquote"):
        return ("blockquote", "p")
    header = optional(attributes, "header", int, f"{path}.header")
    if header is not None and 1 <= header <= 6:
        return (f"h{header}",)
    return _PARAGRAPH


def _delta_embed(insert: dict[str, Any], path: str) -> list[etree._Element]:
    blocks = []
    for name, value in insert.items():
        where = f"{path}.{name}"
        if name == "native-image":
            url = required(check(value, dict, where), "url", str, f"{where}.url")
            blocks += _image(url, "")
        elif name == "cut-off":
            blocks += _cut_off()
        elif name in _DELTA_CARDS:
            card_id = required(check(value, dict, where), "id", str, f"{where}.id")
            blocks += _cards(_DELTA_CARDS[name], card_id)
    return blocks


def _end_line(
    out: _Out,
    split: list[tuple[list[_Run], list[etree._Element]]],
    runs: list[_Run],
    kind: _Kind,
) -> None:
    """Add a delta line: its pieces of text as ``kind`` blocks, the embeds between them."""
    for before, blocks in split:
        out.line(before, kind)
        out.add(blocks)
    out.line(runs, kind)


def from_delta(content: str) -> Body:
    """Return the body of a type 3 article, whose ``content`` is a JSON Quill delta.

    Text accumulates into the current line until a "\\n", whose insert's
    attributes say what the line is. An embed inside a line splits it: the
    text before and after become two lines of the kind the "\\n" gives.
    """
    try:
        delta = json.loads(content)
    except ValueError as exc:
        raise PayloadError(f"field 'content' is not JSON: {exc}") from None
    ops = required(check(delta, dict, "content"), "ops", list, "content.ops")
    out = _Out()
    runs: list[_Run] = []
    split: list[tuple[list[_Run], list[etree._Element]]] = []  # this line's text before embeds
    for i, entry in enumerate(ops):
        path = f"content.ops[{i}]"
        op = check(entry, dict, path)
        attributes = optional(op, "attributes", dict, f"{path}.attributes") or {}
        insert = op.get("insert")
        if isinstance(insert, dict):
            split.append((runs, _delta_embed(insert, f"{path}.insert")))
            runs = []
            continue
        text = required(op, "insert", str, f"{path}.insert")
        style = _Style(
            bold=bool(attributes.get("bold")),
            italic=bool(attributes.get("italic")),
            link=_link(optional(attributes, "link", str, f"{path}.attributes.link")),
        )
        *ended, rest = text.split("\n")
        for piece in ended:
            runs += [_Run(piece, style)] if piece else []
            _end_line(out, split, runs, _delta_kind(attributes, f"{path}.attributes"))
            runs, split = [], []
        runs += [_Run(rest, style)] if rest else []
    _end_line(out, split, runs, _PARAGRAPH)  # a delta ends with "\n"; tolerate one that does not
    return out.body()
