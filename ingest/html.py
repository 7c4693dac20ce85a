"""Article text and metadata from an HTML page, without what a reader of the page never sees.

The main text is found by trafilatura (navigation, related links, author boxes and footers are
dropped). Before that, content hidden from readers is removed, since it is a classic carrier of
prompt injection ("ignore your instructions…" in a ``display:none`` block): elements with the
``hidden`` attribute, ``aria-hidden="true"``, an inline style with ``display:none``,
``visibility:hidden``, ``font-size:0`` or ``opacity:0``, screen-reader-only or hiding classes
(``sr-only``, ``visually-hidden``, ``d-none``…), ``<template>`` contents and HTML comments.
Metadata (title, date…) is read from the cleaned page too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MIN_HTML_WORDS = 25
HIDING_CLASSES = frozenset(
    {
        "sr-only", "sr-only-focusable", "visually-hidden", "visuallyhidden", "screen-reader-only",
        "screen-reader-text", "screenreader", "sr-text", "a11y-hidden", "offscreen",
        "hidden", "is-hidden", "d-none", "hide", "invisible", "u-hidden", "element-invisible",
    }
)  # fmt: skip
_HIDING_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)"
    r"|font-size\s*:\s*0(?:\.0*)?(?:px|em|rem|pt|%)?\s*(?:!important\s*)?(?:;|$)"
    r"|opacity\s*:\s*0(?:\.0*)?\s*(?:!important\s*)?(?:;|$))",
    re.I,
)


class NoArticle(ValueError):
    """The page has no article text; ``str()`` says why."""


def hides(attrib: Mapping[str, str]) -> bool:
    """Whether an element with these attributes is hidden from readers."""
    if "hidden" in attrib or (attrib.get("aria-hidden") or "").strip().lower() == "true":
        return True
    style = attrib.get("style")
    if style and _HIDING_STYLE.search(style):
        return True
    classes = attrib.get("class")
    return bool(classes) and not HIDING_CLASSES.isdisjoint(classes.lower().split())


_TAG = re.compile(r"<([A-Za-z][\w-]{0,30})((?:\s[^<>]{0,2000})?)(/?)>")
_ATTR = re.compile(r"""([^\s=/"'<>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_VOID = {"br", "hr", "img", "input", "meta", "link", "source", "wbr", "area", "col", "embed"}


def strip_hidden_markup(text: str) -> str:
    """Raw HTML in Markdown: drop each hidden element with its content. Linear: the text is
    scanned once, and the content of each hidden element once more."""
    out: list[str] = []
    cursor = 0
    for match in _TAG.finditer(text):
        if match.start() < cursor:
            continue
        attrs = {
            m.group(1).lower(): m.group(2) or m.group(3) or m.group(4) or ""
            for m in _ATTR.finditer(match.group(2))
        }
        if not hides(attrs):
            continue
        name = match.group(1).lower()
        end = match.end()
        if not match.group(3) and name not in _VOID:
            end = _closing(text, name, match.end())
        out.append(text[cursor : match.start()])
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def _closing(text: str, name: str, start: int) -> int:
    """End of the tag closing the element ``name`` opened just before ``start`` (nesting of
    the same name counted); the end of the text when it is never closed, as in a browser."""
    pattern = re.compile(rf"<(/?){re.escape(name)}\b[^<>]{{0,2000}}>", re.I)
    depth = 1
    for match in pattern.finditer(text, start):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return match.end()
    return len(text)


def strip_hidden(tree: Any) -> None:
    """Remove hidden elements, templates and comments from ``tree`` in place; the text that
    follows each (its tail) stays."""
    from lxml import etree

    doomed = [
        el
        for el in tree.iter()
        if el.tag is etree.Comment
        or (isinstance(el.tag, str) and (el.tag == "template" or hides(el.attrib)))
    ]
    for el in doomed:  # one inside another is dropped from the removed subtree: harmless
        if el.getparent() is not None:
            el.drop_tree()


def page_language(tree: Any) -> str | None:
    """The declared language: ``<html lang>``, else ``<meta http-equiv=content-language>``."""
    lang = tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang")
    if not lang:
        found = tree.xpath(
            '//meta[translate(@http-equiv, "CONTELANGU", "contelangu")="content-language"]/@content'
        )
        lang = found[0] if found else None
    return str(lang).strip() or None if lang else None


def extract(html: str) -> tuple[str, dict[str, Any]]:
    """(text, metadata) of the article in ``html``; raises :class:`NoArticle`."""
    import trafilatura
    from trafilatura.utils import load_html

    tree = load_html(html)
    if tree is None:
        raise NoArticle("not an HTML page")
    before = len(tree.text_content().split())
    strip_hidden(tree)
    hidden = before - len(tree.text_content().split())
    language = page_language(tree)
    doc = trafilatura.bare_extraction(
        tree, with_metadata=True, include_comments=False, include_tables=False
    )
    text = (getattr(doc, "text", None) or "") if doc is not None else ""
    words = len(text.split())
    if words < MIN_HTML_WORDS:
        # trafilatura falls back to whatever text a page has (a cookie banner, a menu); a page
        # saved with a dialog open may have marked all of its article hidden (aria-hidden)
        dropped = f"; {hidden:,} words hidden from readers dropped" if hidden > 0 else ""
        raise NoArticle(f"no article text found in the HTML ({words} words{dropped})")
    meta = {
        "title": doc.title,
        "source": doc.sitename,
        "url": doc.url,
        "author": doc.author,
        "published_at": doc.date,
        "language": language or getattr(doc, "language", None),
    }
    return text, meta
