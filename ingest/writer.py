"""Embedding and storing chunks: batches of whole documents, Chroma writes overlapping the
next batch's embedding.

A document's chunks go to Chroma in one write (up to the client's write limit, which the
per-article chunk cap stays under), so search never sees part of a document; a changed
document's old chunks are deleted just before its new ones are written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from assistant.index.lexical import index_text
from assistant.index.lexical_store import LexicalWriter
from assistant.index.schema import ChunkMeta, chunk_id
from assistant.index.store import Store
from assistant.models.embeddings import MAX_PIECES, embed_array
from ingest.chunking import Chunk, count_tokens
from ingest.loaders import Article

log = logging.getLogger(__name__)
Progress = Callable[[int], None]  # called with the number of chunks stored so far
_MAX_WRITE = 5000  # chunks per Chroma write when the client does not say its limit


def _metadata(article: Article, n_chunks: int, chunker: str, story_id: str = "") -> ChunkMeta:
    """What every chunk of ``article`` records (computed once: the hash reads the whole text)."""
    return ChunkMeta(
        doc_id=article.doc_id,
        chunk_index=0,
        n_chunks=n_chunks,
        start=0,
        end=0,
        content_hash=article.content_hash,
        chunker=chunker,
        path=article.path,
        title=article.title,
        source=article.source,
        url=article.url,
        author=article.author,
        published_at=article.published_at,
        published_ts=article.published_ts,
        story_id=story_id,
    )


class Writer:
    """Embeds and upserts chunks in batches of whole documents; deletes a changed document's
    old chunks first. A document's chunks go to Chroma in one write (up to the client's write
    limit, which the chunk cap stays under), so search never sees part of one."""

    def __init__(
        self,
        store: Store,
        progress: Progress | None,
        batch: int = 1024,
        lexical: LexicalWriter | None = None,
    ) -> None:
        self.store = store
        self.lexical = lexical  # gets every chunk written and every document deleted
        self.progress = progress
        self.batch = batch  # chunks per embedding batch: long enough to sort by length well
        self.done = 0
        try:
            self.max_write = store.max_batch_size()
        except Exception:  # an older client or server: Chroma's usual limit
            self.max_write = _MAX_WRITE
        # Chroma writes of one batch overlap the embedding of the next; at most one in flight
        self._writes = ThreadPoolExecutor(1, thread_name_prefix="chroma-write")
        self._pending: Future[int] | None = None
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.embed_texts: list[str] = []
        self.metas: list[dict[str, Any]] = []
        self.to_delete: list[str] = []

    def add(
        self, article: Article, chunks: list[Chunk], chunker: str, replace: bool, story_id: str = ""
    ) -> None:
        if replace:
            self.to_delete.append(article.doc_id)
        meta = _metadata(article, len(chunks), chunker, story_id)
        title_tokens = count_tokens(article.title) if article.title else 0
        for chunk in chunks:
            self.ids.append(chunk_id(article.doc_id, chunk.index))
            self.texts.append(chunk.text)
            self.embed_texts.append(
                embed_text(article.title, chunk.text, chunk.tokens, title_tokens)
            )
            self.metas.append(
                dataclasses.replace(
                    meta, chunk_index=chunk.index, start=chunk.start, end=chunk.end
                ).to_chroma()
            )
        if len(self.ids) >= self.batch:  # only between documents
            self.flush()

    def _wait(self) -> None:
        if self._pending is not None:
            self.done += self._pending.result()  # re-raises a failed write
            self._pending = None
            if self.progress:
                self.progress(self.done)

    def abort(self) -> None:
        """After an error: let the write in flight finish, store nothing more."""
        try:
            self._wait()
        except Exception as exc:  # the error being handled already says what went wrong
            log.warning("a chunk write failed while stopping: %s", exc)
        finally:
            self._writes.shutdown(wait=True)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            try:
                self._wait()
            finally:
                self._writes.shutdown(wait=True)

    def flush(self) -> None:
        deletes, self.to_delete = self.to_delete, []
        matrix = self._embed() if self.ids else None
        self._wait()
        if deletes:  # a changed document's old chunks go before its new ones arrive
            self.store.delete_docs(deletes)
            if self.lexical is not None:
                self.lexical.delete_docs(deletes)
        if matrix is not None:
            batch = (self.ids, self.texts, self.metas, matrix)
            self._pending = self._writes.submit(self._write, *batch)
        self.ids, self.texts, self.embed_texts, self.metas = [], [], [], []

    def _embed(self) -> np.ndarray:
        """Vectors for the batch; identical texts (syndicated copies, boilerplate) embed once."""
        keys = [hashlib.sha1(t.encode()).digest() for t in self.embed_texts]
        first: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        uniq = list(first.values())
        vectors = embed_array(self.store.embedder, [self.embed_texts[i] for i in uniq])
        lookup = {keys[i]: vectors[j] for j, i in enumerate(uniq)}
        return np.stack([lookup[k] for k in keys])

    def _write(self, ids: list[str], texts: list[str], metas: list[dict[str, Any]], m: Any) -> int:
        for a, b in writes(metas, self.max_write):
            self.store.upsert(ids[a:b], texts[a:b], metas[a:b], m[a:b])
            if self.lexical is not None:
                self.lexical.add(ids[a:b], texts[a:b], metas[a:b], m[a:b])
        return len(ids)


def writes(metas: list[dict[str, Any]], limit: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each Chroma write: whole documents, at most ``limit`` chunks (a document
    over the limit alone, in pieces)."""
    start = 0
    while start < len(metas):
        end = start
        while end < len(metas):
            # a document's chunks are consecutive, in order: the rest of this one
            n = int(metas[end]["n_chunks"]) - int(metas[end]["chunk_index"])
            if end + n - start > limit and end > start:
                break
            end += n
        if end - start > limit:
            log.warning(
                "document %s written in pieces (over %d chunks)", metas[start]["doc_id"], limit
            )
            end = start + limit
        yield start, min(end, len(metas))
        start = min(end, len(metas))


def embed_text(
    title: str, text: str, tokens: int | None = None, title_tokens: int | None = None
) -> str:
    """What the embedder sees: the headline gives each chunk its topic, when headline and chunk
    fit the model's window together (else the chunk alone, never truncated)."""
    tokens = count_tokens(text) if tokens is None else tokens
    if not title:
        return text
    title_tokens = count_tokens(title) if title_tokens is None else title_tokens
    if tokens + title_tokens + 3 <= MAX_PIECES:
        return index_text(title, text)
    return text
