"""Read one file into :class:`Article` records, or fail with a one-line :class:`LoadError`.

Formats: ``.txt``/``.md`` (optional ``---`` front matter), ``.html``/``.htm`` (main text by
trafilatura), ``.pdf`` (pypdf) and ``.jsonl`` (one article a line). A bad line of a JSONL file
is reported and skipped; the file's good lines still load.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

MIN_HTML_WORDS = 25
SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl", ".gz"}
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
    """A file or record that cannot be ingested; ``str()`` is one line naming it."""

    def __init__(self, where: Path | str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = str(where)
        self.reason = reason


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
        raise LoadError(path, "binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(path, f"not UTF-8 text (byte {exc.start})") from None


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
        raise LoadError(path, "no text to ingest (empty)")
    raw_date = meta.get("published_at")
    if raw_date and not iso_date(raw_date):
        raise LoadError(path, f"field 'published_at' has unparseable date {raw_date!r}")
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
    text = (doc or {}).get("text") or ""
    if len(text.split()) < MIN_HTML_WORDS:
        # trafilatura falls back to whatever text a page has (a cookie banner, a menu)
        raise LoadError(path, f"no article text found in the HTML ({len(text.split())} words)")
    meta = {
        "title": doc.get("title"),
        "source": doc.get("sitename"),
        "url": doc.get("url"),
        "author": doc.get("author"),
        "published_at": doc.get("date"),
    }
    return _article(path, text, meta, lines_are_paragraphs=True)


def load_pdf(path: Path) -> Article:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata or {}
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise LoadError(path, f"broken PDF ({type(exc).__name__}: {exc})") from None
    try:
        created = getattr(info, "creation_date", None) if info else None
    except ValueError:  # a malformed /CreationDate: keep the text, drop the date
        log.info("%s: unreadable PDF creation date ignored", path)
        created = None
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
        handle = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")  # noqa: SIM115
    except OSError as exc:
        raise LoadError(path, f"cannot read ({exc.strerror})") from None
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
            if not meta.get("source") and isinstance(meta.get("url"), str):
                meta["source"] = _host(meta["url"])
            if doc_id is not None and (
                isinstance(doc_id, bool) or not isinstance(doc_id, str | int)
            ):
                yield Skipped(where, f"field 'id' has unusable value {doc_id!r}")
                continue
            if doc_id is None:
                doc_id = hashlib.sha1(f"{path.resolve()}:{lineno}".encode()).hexdigest()[:16]
            try:
                article = _article(path, text, meta, doc_id=str(doc_id))
            except LoadError as exc:
                yield Skipped(where, exc.reason)
                continue
            article.extra = {"line": lineno}
            yield article


def _size(n: int) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _host(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


def load_path(path: Path, max_bytes: int) -> Iterator[Article | Skipped]:
    """Articles from one file; raises :class:`LoadError` when the whole file is unusable."""
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
    if size > max_bytes:
        raise LoadError(path, f"too large ({_size(size)} > {_size(max_bytes)} limit)")
    if size == 0:
        raise LoadError(path, "empty file")
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
        raise LoadError(path, "cannot read (permission denied)") from None
    except (OSError, EOFError) as exc:
        raise LoadError(path, f"cannot read ({getattr(exc, 'strerror', None) or exc})") from None
