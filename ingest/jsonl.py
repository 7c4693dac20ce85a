"""JSONL archives (``.jsonl``, ``.jsonl.gz``), streamed: one article a line, any file size.

Each line is read with a bound (the per-article size limit), so a line over it is skipped
without being held in memory; every failure of one line (malformed or deeply nested JSON,
wrong types, a too-long id, undecodable bytes beyond salvage) is that line's one-line
:class:`Skipped`, and the rest of the file goes on. Only an unreadable or corrupt file stops
the reading, after what was good before it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from ingest.decode import NotText, decode
from ingest.notes import Skipped

log = logging.getLogger(__name__)

MAX_ID_CHARS = 256
RAISE_LIMIT = "raise NEWSDESK_MAX_ARTICLE_MB"
_READ = 1 << 20  # bytes read at a time while skipping the rest of an over-long line
FIELDS = {
    "doc_id": ("id", "doc_id"),
    "title": ("title",),
    "source": ("source", "outlet", "origin_source"),
    "url": ("url",),
    "published_at": ("published_at", "publish_date", "date"),
    "author": ("author",),
    "language": ("language", "lang"),
}


class ArchiveError(OSError):
    """The archive cannot be read on from ``line``; ``str()`` says why."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def _lines(handle: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, the line or None when it is over ``max_bytes``, its length in bytes)."""
    lineno = 0
    while True:
        raw = handle.readline(max_bytes + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) <= max_bytes or raw.endswith(b"\n"):
            yield lineno, raw, len(raw)
            continue
        size = len(raw)
        while not raw.endswith(b"\n"):  # skip the rest of the line without keeping it
            raw = handle.readline(_READ)
            if not raw:
                break
            size += len(raw)
        yield lineno, None, size


def read_records(
    path: Path, max_bytes: int
) -> Iterator[tuple[int, dict[str, Any] | Skipped, str | None]]:
    """(line number, record, note) for every non-blank line: the JSON object (or why the line
    is skipped) and what was repaired in it, if anything.

    Raises :class:`ArchiveError` when the file cannot be read on (a truncated or corrupt gzip
    stream, a read error), after the lines before it."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    lineno = 0
    try:
        with opener(path, "rb") as handle:  # type: ignore[operator]
            for lineno, raw, size in _lines(handle, max_bytes):
                where = f"{os.fsdecode(path)}:{lineno}"
                if raw is None:
                    limit = f"{_size(size)} > {_size(max_bytes)} limit; {RAISE_LIMIT}"
                    yield lineno, Skipped(where, f"line too large ({limit})"), None
                elif raw.strip():
                    yield lineno, *_record(where, raw)
    except (OSError, EOFError, zlib.error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        after = f" on after line {lineno}" if lineno else ""
        raise ArchiveError(lineno + 1, f"cannot read{after} ({reason})") from None


def _record(where: str, raw: bytes) -> tuple[dict[str, Any] | Skipped, str | None]:
    try:
        text, note = decode(raw, "line")
    except NotText as exc:
        return Skipped(where, str(exc)), None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return Skipped(where, f"malformed JSON ({exc.msg}, column {exc.colno})"), None
    except RecursionError:
        return Skipped(where, "malformed JSON (nested too deeply)"), None
    if not isinstance(record, dict):
        kind = type(record).__name__.replace("NoneType", "null")
        return Skipped(where, f"line is not a JSON object (a JSON {kind})"), None
    return record, note


def article_fields(path: Path, lineno: int, record: dict[str, Any]) -> dict[str, Any] | str:
    """The article fields of one record (``doc_id``, ``text``, metadata), or why it is unusable."""
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        return "field 'text' is missing or empty"
    fields: dict[str, Any] = {"text": text}
    for key, names in FIELDS.items():
        found = next(((n, record[n]) for n in names if record.get(n) not in (None, "")), None)
        if found is not None:
            fields[key], fields[f"{key}_field"] = found[1], found[0]
    doc_id = fields.get("doc_id")
    if doc_id is not None:
        if isinstance(doc_id, bool) or not isinstance(doc_id, str | int):
            return f"field 'id' has unusable value {_short(doc_id)}"
        doc_id = str(doc_id)
        if len(doc_id) > MAX_ID_CHARS:
            return f"field 'id' is too long ({len(doc_id):,} characters > {MAX_ID_CHARS})"
        try:
            doc_id.encode("utf-8")
        except UnicodeEncodeError:
            return f"field 'id' is not valid text ({_short(doc_id)})"
    else:
        key = f"{os.fsdecode(path.resolve())}:{lineno}".encode("utf-8", "surrogateescape")
        doc_id = hashlib.sha1(key).hexdigest()[:16]
    fields["doc_id"] = doc_id
    if not fields.get("source") and isinstance(fields.get("url"), str):
        fields["source"], fields["source_field"] = _host(fields["url"]), "url"
    return fields


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, dict | list) else f"a JSON {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # e.g. an invalid IPv6 literal
        return ""
    return host.removeprefix("www.")


def _size(n: int) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
