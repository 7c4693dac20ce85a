"""The one layout of a chunk's metadata, and the one compiler for filters.

Ingest writes :class:`ChunkMeta` to Chroma, the lexical index keeps the filterable fields of it
as arrays, and retrieval reads it back; :func:`compile_filters` turns :class:`Filters` into both
Chroma's ``where`` clause and a mask over the lexical arrays, so the two sides of hybrid
retrieval always select the same chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np

from assistant.types import Filters

NO_TIMESTAMP = -1  # ``published_ts`` of an undated article, in the lexical arrays

# optional article fields copied onto every chunk when set
ARTICLE_FIELDS = ("title", "source", "url", "author", "published_at")


@dataclass(frozen=True)
class ChunkMeta:
    doc_id: str
    chunk_index: int
    n_chunks: int
    start: int
    end: int
    content_hash: str
    chunker: str
    path: str = ""
    title: str = ""
    source: str = ""
    url: str = ""
    author: str = ""
    published_at: str = ""  # ISO date or datetime, "" when unknown
    published_ts: int | None = None  # UTC seconds, None when undated
    story_id: str = ""  # same-story group (index/stories.py); "" (older chunks): the doc id

    @property
    def story(self) -> str:
        return self.story_id or self.doc_id

    def chunk_id(self) -> str:
        return chunk_id(self.doc_id, self.chunk_index)

    def to_chroma(self) -> dict[str, Any]:
        """Chroma metadata: no ``None`` values, empty optional strings left out."""
        meta: dict[str, Any] = {
            "doc_id": self.doc_id,
            "chunk_index": self.chunk_index,
            "n_chunks": self.n_chunks,
            "start": self.start,
            "end": self.end,
            "content_hash": self.content_hash,
            "chunker": self.chunker,
            "path": self.path,
        }
        for key in ARTICLE_FIELDS:
            value = getattr(self, key)
            if value:
                meta[key] = value
        if self.published_ts is not None:
            meta["published_ts"] = self.published_ts
        if self.story_id and self.story_id != self.doc_id:
            meta["story_id"] = self.story_id
        return meta

    @classmethod
    def from_chroma(cls, meta: dict[str, Any] | None) -> ChunkMeta:
        m = meta or {}
        ts = m.get("published_ts")
        return cls(
            doc_id=str(m.get("doc_id", "")),
            chunk_index=int(m.get("chunk_index", 0)),
            n_chunks=int(m.get("n_chunks", 0)),
            start=int(m.get("start", 0)),
            end=int(m.get("end", 0)),
            content_hash=str(m.get("content_hash", "")),
            chunker=str(m.get("chunker", "")),
            path=str(m.get("path", "")),
            title=str(m.get("title", "")),
            source=str(m.get("source", "")),
            url=str(m.get("url", "")),
            author=str(m.get("author", "")),
            published_at=str(m.get("published_at", "")),
            published_ts=int(ts) if ts is not None else None,
            story_id=str(m.get("story_id", "")),
        )


def chunk_id(doc_id: str, index: int) -> str:
    """Deterministic: re-ingesting a document writes the same ids (no duplicates)."""
    return f"{doc_id}:{index}"


def _day_start(day: date) -> int:
    return int(datetime.combine(day, time.min, tzinfo=UTC).timestamp())


def _day_end(day: date) -> int:
    return int(datetime.combine(day, time.max, tzinfo=UTC).timestamp())


def day_end(day: date) -> int:
    """UTC seconds of the last second of ``day``."""
    return _day_end(day)


@dataclass(frozen=True)
class CompiledFilters:
    """One filter, in the two forms the two retrieval sides need."""

    since_ts: int | None
    until_ts: int | None
    source: str | None
    # nothing published after it; unlike ``until`` it keeps undated articles (Chroma cannot
    # select an absent field, so the retriever asks for those separately)
    as_of_ts: int | None = None

    @property
    def active(self) -> bool:
        return (
            self.since_ts is not None
            or self.until_ts is not None
            or self.source is not None
            or self.as_of_ts is not None
        )

    def chroma_where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.since_ts is not None:
            clauses.append({"published_ts": {"$gte": self.since_ts}})
        if self.until_ts is not None:
            clauses.append({"published_ts": {"$lte": self.until_ts}})
        if self.as_of_ts is not None and (self.until_ts is None or self.as_of_ts < self.until_ts):
            clauses.append({"published_ts": {"$lte": self.as_of_ts}})
        if self.source is not None:
            clauses.append({"source": {"$eq": self.source}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def mask(self, published_ts: np.ndarray, sources: np.ndarray) -> np.ndarray | None:
        """Boolean mask over the lexical index's arrays; ``None`` when nothing is filtered.
        Undated chunks never match a date bound (as in Chroma, where the field is absent)."""
        if not self.active:
            return None
        mask = np.ones(len(published_ts), dtype=bool)
        if self.since_ts is not None:
            mask &= published_ts >= self.since_ts
        if self.until_ts is not None:
            mask &= (published_ts != NO_TIMESTAMP) & (published_ts <= self.until_ts)
        if self.as_of_ts is not None:
            mask &= (published_ts == NO_TIMESTAMP) | (published_ts <= self.as_of_ts)
        if self.source is not None:
            mask &= sources == self.source
        return mask

    def admits(self, meta: ChunkMeta) -> bool:
        """The same test for one chunk (used for passages carried over from earlier turns)."""
        ts = meta.published_ts
        if self.since_ts is not None and (ts is None or ts < self.since_ts):
            return False
        if self.until_ts is not None and (ts is None or ts > self.until_ts):
            return False
        if self.as_of_ts is not None and ts is not None and ts > self.as_of_ts:
            return False
        return self.source is None or meta.source == self.source


def compile_filters(filters: Filters | None) -> CompiledFilters:
    f = filters or Filters()
    return CompiledFilters(
        since_ts=_day_start(f.since) if f.since is not None else None,
        until_ts=_day_end(f.until) if f.until is not None else None,
        source=f.source or None,
        as_of_ts=_day_end(f.as_of) if f.as_of is not None else None,
    )
