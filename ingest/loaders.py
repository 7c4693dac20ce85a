"""Read one file into :class:`Article` records, or fail with a one-line :class:`LoadError`.

Formats: ``.txt``/``.md`` (optional ``---`` front matter), ``.html``/``.htm`` (main text by
trafilatura, hidden content dropped: :mod:`ingest.html`), ``.pdf`` (pypdf) and ``.jsonl`` /
``.jsonl.gz`` (one article a line, streamed: :mod:`ingest.jsonl`).

Salvage over rejection: an unparseable date leaves the article undated, a few undecodable bytes
are replaced, a field of the wrong type or size is dropped or cut; each repair is a note on the
article (:attr:`Article.notes`) that ingest reports. The size limit applies to each article, and
to the file only for the formats read whole (everything but JSONL). A bad line of a JSONL file
is reported and skipped; the file's good lines still load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ingest.dates import iso_date, parse_date
from ingest.decode import NotText, clean, decode
from ingest.html import NoArticle, extract, strip_hidden_markup
from ingest.jsonl import RAISE_LIMIT, ArchiveError, article_fields, read_records
from ingest.notes import Salvaged, Skipped, path_text, safe_line

__all__ = [
    "SUFFIXES", "Article", "LoadError", "Salvaged", "Skipped", "iso_date", "load_path",
    "parse_date", "path_doc_id",
]  # fmt: skip

log = logging.getLogger(__name__)

SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl", ".gz"}
MAX_FIELD_CHARS = 2000  # title, source, url, author: longer values are cut
_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)
_META_KEYS = {
    "title": "title",
    "source": "source",
    "outlet": "source",
    "url": "url",
    "author": "author",
    "published_at": "published_at",
    "publish_date": "published_at",
    "date": "published_at",
    "language": "language",
    "lang": "language",
}
# Markdown links and images; bounded, so text full of unmatched brackets stays linear
_IMAGE = re.compile(r"!\[[^\]\n]{0,1000}\]\([^)\n]{0,2000}\)")
_LINK = re.compile(r"\[([^\]\n]{1,1000})\]\([^)\n]{0,2000}\)")
_STRONG = re.compile(r"(\*\*|__)(.+?)\1")


class LoadError(Exception):
    """A file or record that cannot be ingested; ``str()`` is one line naming it."""

    def __init__(self, where: Path | str, reason: str) -> None:
        self.where = safe_line(path_text(where) if isinstance(where, Path) else str(where))
        self.reason = safe_line(reason)
        super().__init__(f"{self.where}: {self.reason}")


@dataclass
class Article:
    doc_id: str
    text: str
    path: str
    title: str = ""
    source: str = ""
    url: str = ""
    author: str = ""
    published_at: str = ""  # ISO date or datetime, "" when unknown
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was repaired or dropped, one line each

    @property
    def content_hash(self) -> str:
        payload = json.dumps(
            [self.text, self.title, self.source, self.url, self.author, self.published_at]
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:20]

    @property
    def published_ts(self) -> int | None:
        parsed = parse_date(self.published_at)
        return int(parsed.timestamp()) if parsed else None


def path_doc_id(path: Path) -> str:
    return hashlib.sha1(os.fsencode(path.resolve())).hexdigest()[:16]


def _read_text(path: Path) -> tuple[str, str | None]:
    try:
        return decode(path.read_bytes())
    except NotText as exc:
        raise LoadError(path, str(exc)) from None


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    match = _FRONT.match(text)
    if not match:
        return {}, text
    meta: dict[str, str] = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key in _META_KEYS:
            meta[_META_KEYS[key]] = value.strip().strip("'\"")
            meta[f"{_META_KEYS[key]}_field"] = key
    return meta, text[match.end() :]


def _drop_comments(text: str) -> str:
    """Remove ``<!-- … -->`` comments; an unclosed one hides the rest, as when rendered."""
    if "<!--" not in text:
        return text
    out: list[str] = []
    cursor = 0
    while (start := text.find("<!--", cursor)) >= 0:
        out.append(text[cursor:start])
        end = text.find("-->", start + 4)
        if end < 0:
            return "".join(out)
        cursor = end + 3
    out.append(text[cursor:])
    return "".join(out)


def _strip_markdown(body: str) -> tuple[str, str]:
    """Drop Markdown syntax that would pollute passages, comments and hidden HTML; return
    (first heading, text)."""
    body = strip_hidden_markup(_drop_comments(body))
    heading = ""
    lines = []
    for line in body.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if not heading:
                heading = stripped.lstrip("#").strip()
                continue
            stripped = stripped.lstrip("#").strip()
        lines.append(stripped)
    text = "\n".join(lines)
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _STRONG.sub(r"\2", text)
    return heading, text


def _paragraphs(text: str, lines_are_paragraphs: bool) -> str:
    """Blank-line separated paragraphs; hard-wrapped lines inside a paragraph are re-joined."""
    text = re.sub(r"[ \t]+", " ", text.replace("\r\n", "\n"))
    if lines_are_paragraphs:
        text = text.replace("\n", "\n\n")
    else:
        text = re.sub(r"(?<=\S) ?\n(?=[^\n\s\-*•])(?!\d+[.)] )", " ", text)
    return re.sub(r"\n\s*\n\s*", "\n\n", text).strip()


def _field_text(meta: dict[str, Any], key: str, notes: list[str]) -> str:
    """A metadata field as clean text; a value of the wrong type is dropped, a long one cut."""
    value = meta.get(key)
    name = meta.get(f"{key}_field", key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        notes.append(f"field {name!r} is not text ({type(value).__name__}); ignored")
        return ""
    text = " ".join(clean(str(value)).split())
    if len(text) > MAX_FIELD_CHARS:
        notes.append(f"field {name!r} cut to {MAX_FIELD_CHARS:,} of {len(text):,} characters")
        text = text[:MAX_FIELD_CHARS]
    return text


def _article(
    path: Path,
    text: str,
    meta: dict[str, Any],
    doc_id: str | None = None,
    lines_are_paragraphs: bool = False,
    notes: list[str] | None = None,
) -> Article:
    notes = list(notes or [])
    text = _paragraphs(clean(text), lines_are_paragraphs)
    title = _field_text(meta, "title", notes)
    first, _, rest = text.partition("\n\n")
    if title and rest and first.strip().rstrip(".").lower() == title.rstrip(".").lower():
        text = rest  # the headline repeated as the first paragraph
    if not text:
        raise LoadError(path, "no text to ingest (empty)")
    published_at = ""
    raw_date = meta.get("published_at")
    if raw_date not in (None, ""):
        language = meta.get("language") if isinstance(meta.get("language"), str) else None
        published_at = iso_date(raw_date, language)
        name = meta.get("published_at_field", "published_at")
        if not isinstance(raw_date, str | int | float) or isinstance(raw_date, bool):
            notes.append(f"field {name!r} is not a date ({type(raw_date).__name__}); kept undated")
        elif not published_at:
            shown = repr(raw_date) if len(repr(raw_date)) <= 80 else repr(raw_date)[:79] + "…"
            notes.append(f"field {name!r} has unparseable date {shown}; kept undated")
    return Article(
        doc_id=doc_id or path_doc_id(path),
        text=text,
        path=path_text(path.resolve()),
        title=title,
        source=_field_text(meta, "source", notes),
        url=_field_text(meta, "url", notes),
        author=_field_text(meta, "author", notes),
        published_at=published_at,
        notes=notes,
    )


def load_text(path: Path) -> Article:
    text, note = _read_text(path)
    meta, body = _front_matter(text)
    if path.suffix.lower() in {".md", ".markdown"}:
        heading, body = _strip_markdown(body)
        if heading:
            meta.setdefault("title", heading)
    if not meta.get("title"):
        # a plain file: its first line is the title when it reads as a headline, else the
        # file name ("china-mediation-article.txt" → "China mediation article")
        headline, rest = _headline(body)
        if headline:
            meta["title"], body = headline, rest
        else:
            meta["title"] = _title_from_name(path)
    return _article(path, body, meta, notes=[note] if note else None)


_HEADLINE_END = re.compile(r"[.,;:]$")


def _headline(body: str) -> tuple[str, str]:
    """(first line, the rest) when the first line looks like a headline: one short line, no
    closing full stop, followed by more text; else ("", body)."""
    stripped = body.lstrip()
    first, newline, rest = stripped.partition("\n")
    first = first.strip()
    words = first.split()
    if (
        newline
        and rest.strip()
        and 1 <= len(words) <= 25
        and len(first) <= 200
        and not _HEADLINE_END.search(first)
        and (first[:1].isupper() or first[:1].isdigit() or not first[:1].isalpha())
    ):
        return first, rest
    return "", body


def _title_from_name(path: Path) -> str:
    name = path.name.split(".")[0].replace("_", " ").replace("-", " ").strip()
    name = " ".join(name.split())
    return name[:1].upper() + name[1:] if name else ""


def load_html(path: Path) -> Article:
    html, note = _read_text(path)
    try:
        text, meta = extract(html)
    except NoArticle as exc:
        raise LoadError(path, str(exc)) from None
    return _article(path, text, meta, lines_are_paragraphs=True, notes=[note] if note else None)


def load_pdf(path: Path) -> Article:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata or {}
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise LoadError(path, f"broken PDF ({type(exc).__name__}: {exc})") from None
    notes = []
    try:
        created: datetime | None = getattr(info, "creation_date", None) if info else None
    except ValueError:  # a malformed /CreationDate: keep the text, drop the date
        notes.append("unreadable PDF creation date; kept undated")
        created = None
    meta = {
        "title": (info.get("/Title") if info else None) or path.stem.replace("-", " "),
        "author": info.get("/Author") if info else None,
        "published_at": created.isoformat() if created else None,
    }
    return _article(path, "\n\n".join(pages), meta, notes=notes)


def iter_jsonl(path: Path, max_bytes: int) -> Iterator[Article | Skipped]:
    """One :class:`Article` per good line; one :class:`Skipped` per bad line, naming it."""
    try:
        for lineno, record, note in read_records(path, max_bytes):
            where = f"{path_text(path)}:{lineno}"
            if isinstance(record, Skipped):
                yield record
                continue
            try:
                yield _jsonl_article(path, lineno, record, note)
            except LoadError as exc:
                yield Skipped(where, exc.reason)
            except Exception as exc:  # one odd record must not stop the archive
                log.debug("%s", where, exc_info=True)
                yield Skipped(where, f"unusable record ({type(exc).__name__}: {exc})")
    except ArchiveError as exc:
        raise LoadError(path, exc.reason) from None


def _jsonl_article(path: Path, lineno: int, record: dict[str, Any], note: str | None) -> Article:
    fields = article_fields(path, lineno, record)
    if isinstance(fields, str):
        raise LoadError(path, fields)
    article = _article(
        path, fields.pop("text"), fields, doc_id=fields["doc_id"], notes=[note] if note else None
    )
    article.extra = {"line": lineno}
    return article


def load_path(path: Path, max_bytes: int) -> Iterator[Article | Skipped]:
    """Articles from one file; raises :class:`LoadError` when the whole file is unusable.

    ``max_bytes`` bounds each article, and the file itself for the formats read whole."""
    suffix = path.suffix.lower()
    if suffix == ".gz" and path.name.lower().endswith(".jsonl.gz"):
        suffix = ".jsonl"
    elif suffix == ".gz":
        raise LoadError(path, "only .jsonl.gz is read compressed")
    if suffix not in SUFFIXES:
        raise LoadError(path, f"unsupported file type {suffix or '(none)'}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(path, f"cannot read ({exc.strerror})") from None
    if size > max_bytes and suffix != ".jsonl":
        limit = f"{_size(size)} > {_size(max_bytes)} limit; {RAISE_LIMIT}"
        raise LoadError(path, f"too large ({limit})")
    if size == 0:
        raise LoadError(path, "empty file")
    try:
        if suffix == ".jsonl":
            yield from iter_jsonl(path, max_bytes)
        elif suffix in {".html", ".htm"}:
            yield load_html(path)
        elif suffix == ".pdf":
            yield load_pdf(path)
        else:
            yield load_text(path)
    except PermissionError:
        raise LoadError(path, "cannot read (permission denied)") from None
    except (OSError, EOFError) as exc:
        raise LoadError(path, f"cannot read ({getattr(exc, 'strerror', None) or exc})") from None


def _size(n: int) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
