"""Read one file into :class:`Article` records, or fail with a one-line :class:`LoadError`.

Formats: ``.txt``/``.md`` (optional ``---`` front matter), ``.html``/``.htm`` (main text by
trafilatura), ``.pdf`` (pypdf) and ``.jsonl`` (one article a line). A bad line of a JSONL file
is reported and skipped; the file's good lines still load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl"}
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
}


class LoadError(Exception):
    """A file or record that cannot be ingested; the message is one line naming it."""


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


@dataclass
class Skipped:
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def parse_date(value: str | None) -> datetime | None:
    """Parse the dates news feeds use (ISO, ``YYYY/MM/DD``, with or without time)."""
    if not value:
        return None
    text = str(value).strip().replace("/", "-")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(text[:10]), datetime.min.time())
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso_date(value: str | None) -> str:
    parsed = parse_date(value)
    if parsed is None:
        return ""
    if parsed.hour == parsed.minute == parsed.second == 0:
        return parsed.date().isoformat()
    return parsed.isoformat()


def path_doc_id(path: Path) -> str:
    return hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise LoadError(f"{path}: binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(f"{path}: not UTF-8 text (byte {exc.start})") from None


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
    return meta, text[match.end() :]


def _strip_markdown(body: str) -> tuple[str, str]:
    """Drop Markdown syntax that would pollute passages; return (first heading, text)."""
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
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    return heading, text


def _paragraphs(text: str, lines_are_paragraphs: bool) -> str:
    """Blank-line separated paragraphs; hard-wrapped lines inside a paragraph are re-joined."""
    text = re.sub(r"[ \t]+", " ", text.replace("\r\n", "\n"))
    if lines_are_paragraphs:
        text = text.replace("\n", "\n\n")
    else:
        text = re.sub(r"(?<=\S) ?\n(?=[^\n\s\-*•])(?!\d+[.)] )", " ", text)
    return re.sub(r"\n\s*\n\s*", "\n\n", text).strip()


def _article(
    path: Path,
    text: str,
    meta: dict[str, Any],
    doc_id: str | None = None,
    lines_are_paragraphs: bool = False,
) -> Article:
    text = _paragraphs(text, lines_are_paragraphs)
    title = str(meta.get("title") or "").strip()
    first, _, rest = text.partition("\n\n")
    if title and rest and first.strip().rstrip(".").lower() == title.rstrip(".").lower():
        text = rest  # the headline repeated as the first paragraph
    if not text:
        raise LoadError(f"{path}: no text to ingest (empty)")
    return Article(
        doc_id=doc_id or path_doc_id(path),
        text=text,
        path=str(path.resolve()),
        title=title,
        source=str(meta.get("source") or "").strip(),
        url=str(meta.get("url") or "").strip(),
        author=str(meta.get("author") or "").strip(),
        published_at=iso_date(meta.get("published_at")),
    )


def load_text(path: Path) -> Article:
    meta, body = _front_matter(_read_text(path))
    if path.suffix.lower() in {".md", ".markdown"}:
        heading, body = _strip_markdown(body)
        meta.setdefault("title", heading)
    return _article(path, body, meta)


def load_html(path: Path) -> Article:
    import trafilatura

    html = _read_text(path)
    doc = trafilatura.bare_extraction(
        html, with_metadata=True, include_comments=False, include_tables=False, as_dict=True
    )
    if not doc or not (doc.get("text") or "").strip():
        raise LoadError(f"{path}: no article text found in the HTML")
    meta = {
        "title": doc.get("title"),
        "source": doc.get("sitename"),
        "url": doc.get("url"),
        "author": doc.get("author"),
        "published_at": doc.get("date"),
    }
    return _article(path, doc["text"], meta, lines_are_paragraphs=True)


def load_pdf(path: Path) -> Article:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata or {}
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise LoadError(f"{path}: broken PDF ({type(exc).__name__}: {exc})") from None
    created = getattr(info, "creation_date", None) if info else None
    meta = {
        "title": (info.get("/Title") if info else None) or path.stem.replace("-", " "),
        "author": info.get("/Author") if info else None,
        "published_at": created.isoformat() if created else None,
    }
    return _article(path, "\n\n".join(pages), meta)


_JSONL_FIELDS = {
    "doc_id": ("id", "doc_id"),
    "title": ("title",),
    "source": ("source", "outlet", "origin_source"),
    "url": ("url",),
    "published_at": ("published_at", "publish_date", "date"),
    "author": ("author",),
}


def iter_jsonl(path: Path) -> Iterator[Article | Skipped]:
    """One :class:`Article` per good line; one :class:`Skipped` per bad line, naming it."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise LoadError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        for lineno, raw in enumerate(handle, start=1):
            where = f"{path}:{lineno}"
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield Skipped(where, f"malformed JSON ({exc.__class__.__name__})")
                continue
            if not isinstance(record, dict):
                yield Skipped(where, "line is not a JSON object")
                continue
            text = record.get("text")
            if not isinstance(text, str) or not text.strip():
                yield Skipped(where, "field 'text' is missing or empty")
                continue
            meta = {
                key: next((record[n] for n in names if record.get(n) not in (None, "")), None)
                for key, names in _JSONL_FIELDS.items()
            }
            doc_id = meta.pop("doc_id")
            if doc_id is not None and not isinstance(doc_id, str | int):
                yield Skipped(where, f"field 'id' has unusable value {doc_id!r}")
                continue
            if doc_id is None:
                doc_id = hashlib.sha1(f"{path.resolve()}:{lineno}".encode()).hexdigest()[:16]
            try:
                article = _article(path, text, meta, doc_id=str(doc_id))
            except LoadError as exc:
                yield Skipped(where, str(exc).split(": ", 1)[-1])
                continue
            if meta.get("published_at") and not article.published_at:
                yield Skipped(
                    where, f"field 'published_at' has unparseable date {meta['published_at']!r}"
                )
                continue
            article.extra = {"line": lineno}
            yield article


def load_path(path: Path, max_bytes: int) -> Iterator[Article | Skipped]:
    """Articles from one file; raises :class:`LoadError` when the whole file is unusable."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise LoadError(f"{path}: unsupported file type {suffix or '(none)'}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(f"{path}: cannot read ({exc.strerror})") from None
    if size > max_bytes:
        raise LoadError(f"{path}: too large ({size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB limit)")
    if size == 0:
        raise LoadError(f"{path}: empty file")
    try:
        if suffix == ".jsonl":
            yield from iter_jsonl(path)
        elif suffix in {".html", ".htm"}:
            yield load_html(path)
        elif suffix == ".pdf":
            yield load_pdf(path)
        else:
            yield load_text(path)
    except PermissionError:
        raise LoadError(f"{path}: cannot read (permission denied)") from None
    except OSError as exc:
        raise LoadError(f"{path}: cannot read ({exc.strerror or exc})") from None
