"""Where the lexical index lives, and how writers change it in place.

The index of a collection is a tantivy directory under ``<home>/lexical/<collection>``, with a
``state.json`` naming the collection generation it mirrors. Writers (an ingest, or a reader
repairing under the writer lock) hold a :class:`LexicalWriter`: they add and delete chunks as
they write Chroma, commit, and only then record the generation. Readers open a
:class:`~assistant.index.lexical.LexicalIndex` for the generation the collection's manifest
names; if the index is missing, of another format or behind (another machine ingested into the
same Chroma server), :class:`SnapshotInvalid` says so and :meth:`LexicalWriter.reconcile`
brings it level by comparing document states: only documents that differ are read from Chroma.

Memory stays bounded whatever the archive's size: tantivy's writer heap is fixed
(``_HEAP``), documents are read from Chroma a page at a time, and nothing holds every chunk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from assistant.index.lexical import (
    FORMAT,
    LexicalIndex,
    SnapshotInvalid,
    index_text,
    outlet,
    schema,
    tantivy_module,
    tokenize,
)
from assistant.index.schema import NO_TIMESTAMP, ChunkMeta
from assistant.index.store import Store, StoredChunk
from assistant.settings import Settings

log = logging.getLogger(__name__)
_HEAP = 64_000_000  # tantivy's writer heap (bytes): a segment is flushed when it fills
_DOC_PAGE = 100  # documents per Chroma read when reconciling


class LexicalStore:
    """The lexical index of one collection. One tantivy ``Index`` per directory per process,
    shared by every thread."""

    _open: ClassVar[dict[Path, Any]] = {}
    _open_lock = threading.Lock()

    def __init__(self, path: Path, collection: str = "") -> None:
        self.path = path
        self.collection = collection or path.name
        self._reload = threading.Lock()

    @classmethod
    def beside(cls, settings: Settings, store: Store) -> LexicalStore:
        """``<home>/lexical/<collection>``; for a Chroma server the folder also names the
        server, tenant and database (two archives with one collection name never share it)."""
        folder = store.name
        if settings.uses_chroma_server:
            where = hashlib.sha1(settings.describe_store().encode()).hexdigest()[:10]
            folder = f"{store.name}@{where}"
        return cls(settings.home / "lexical" / folder, store.name)

    @property
    def state_path(self) -> Path:
        return self.path / "state.json"

    def state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.state_path.read_text()))
        except (OSError, ValueError):
            return {}

    def synced(self) -> int | None:
        """The generation the index mirrors (None: no valid index here)."""
        state = self.state()
        if state.get("format") != FORMAT or not (self.path / "meta.json").is_file():
            return None
        return int(state.get("generation", -1))

    def _index(self, create: bool = False) -> Any:
        with self._open_lock:
            index = self._open.get(self.path)
            if index is None:
                if not create and not (self.path / "meta.json").is_file():
                    raise SnapshotInvalid(f"no lexical index at {self.path}")
                self.path.mkdir(parents=True, exist_ok=True)
                try:
                    index = self._open[self.path] = tantivy_module().Index(
                        schema(), path=str(self.path), reuse=True
                    )
                except (OSError, ValueError) as exc:
                    raise SnapshotInvalid(f"the lexical index at {self.path}: {exc}") from None
                index.config_reader("Manual")
            return index

    def forget(self) -> None:
        """Drop this process's handle (before the directory is replaced)."""
        with self._open_lock:
            self._open.pop(self.path, None)

    # -- readers -----------------------------------------------------------------------------
    def load(self, generation: int) -> LexicalIndex:
        """The view of ``generation``; :class:`SnapshotInvalid` if the index does not mirror
        it. An empty collection (generation 0) needs no index."""
        synced = self.synced()
        if synced is None and generation == 0:
            return LexicalIndex(0, _EmptySearcher())
        if synced is None:
            raise SnapshotInvalid(f"no lexical index of format {FORMAT} at {self.path}")
        if synced != generation:
            raise SnapshotInvalid(
                f"the lexical index mirrors generation {synced}, the collection is at {generation}"
            )
        try:
            index = self._index()
            with self._reload:
                index.reload()
                return LexicalIndex(generation, index.searcher())
        except (OSError, ValueError) as exc:
            raise SnapshotInvalid(f"the lexical index at {self.path}: {exc}") from None

    # -- writers -----------------------------------------------------------------------------
    @contextmanager
    def writer(self) -> Iterator[LexicalWriter]:
        """The index's one writer (call under the collection's writer lock). Uncommitted
        changes are dropped on error."""
        if self.path.exists() and self.synced() is None:  # another format, or damaged
            log.info("replacing the lexical index at %s", self.path)
            self.forget()
            shutil.rmtree(self.path, ignore_errors=True)
            self.state_path.unlink(missing_ok=True)
        try:
            index = self._index(create=True)
            raw = index.writer(heap_size=_HEAP, num_threads=1)
        except (OSError, ValueError) as exc:  # e.g. a lock left by a writer on another host
            raise SnapshotInvalid(f"cannot write the lexical index at {self.path}: {exc}") from None
        writer = LexicalWriter(self, index, raw)
        try:
            yield writer
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.close()


class LexicalWriter:
    def __init__(self, where: LexicalStore, index: Any, raw: Any) -> None:
        self.where = where
        self.index = index
        self._raw: Any = raw
        self.changed = False

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
        vectors: np.ndarray,
    ) -> None:
        """Chunks exactly as written to Chroma."""
        tv = tantivy_module()
        metas = [ChunkMeta.from_chroma(m) for m in metadatas]
        tokens = tokenize([index_text(m.title, t) for m, t in zip(metas, texts, strict=True)])
        half = np.asarray(vectors, dtype=np.float16)
        for i, (cid, meta) in enumerate(zip(ids, metas, strict=True)):
            ts = meta.published_ts
            self._raw.add_document(
                tv.Document(
                    chunk_id=cid,
                    doc_id=meta.doc_id,
                    content_hash=meta.content_hash,
                    source=meta.source,
                    story_id=meta.story,
                    outlet=outlet(meta.source, meta.url),
                    terms=" ".join(tokens[i]),
                    ts=NO_TIMESTAMP if ts is None else ts,
                    lead=int(meta.chunk_index == 0),
                    vector=half[i].tobytes(),
                )
            )
        self.changed = self.changed or bool(ids)

    def add_stored(self, chunks: list[tuple[StoredChunk, np.ndarray]]) -> None:
        if chunks:
            self.add(
                [c.chunk_id for c, _ in chunks],
                [c.text for c, _ in chunks],
                [c.metadata for c, _ in chunks],
                np.stack([v for _, v in chunks]),
            )

    def delete_docs(self, doc_ids: Sequence[str]) -> None:
        for doc_id in doc_ids:
            self._raw.delete_documents_by_term("doc_id", doc_id)
        self.changed = self.changed or bool(doc_ids)

    def delete_all(self) -> None:
        self._raw.delete_all_documents()
        self.changed = True

    def commit(self, generation: int) -> None:
        """Make the changes visible, then record that the index mirrors ``generation``."""
        self._raw.commit()
        tmp = self.where.state_path.with_suffix(f".{os.getpid()}.tmp")
        state = {"format": FORMAT, "generation": generation, "collection": self.where.collection}
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.where.state_path)
        legacy = self.where.path.parent.parent / "bm25" / self.where.collection
        shutil.rmtree(legacy, ignore_errors=True)  # bm25s snapshots of newsdesk before 0.14

    def rollback(self) -> None:
        if self._raw is not None:
            try:
                self._raw.rollback()
            except Exception as exc:  # the error being handled already says what went wrong
                log.debug("lexical rollback failed: %s", exc)

    def close(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            try:
                raw.wait_merging_threads()  # also releases the directory's writer lock
            except Exception as exc:
                log.debug("lexical writer close failed: %s", exc)

    def view(self) -> LexicalIndex:
        """What the last commit holds (for reconciling)."""
        self.index.reload()
        return LexicalIndex(-1, self.index.searcher())

    # -- bringing it level with Chroma -------------------------------------------------------
    def reconcile(self, store: Store, states: dict[str, Any] | None = None) -> int:
        """Mirror the collection: documents whose stored chunks differ from the index (by
        content hash and chunk count) are deleted and read again from Chroma, documents that
        are gone are deleted. ``states``: the collection's document states if the caller has
        just read them. Returns the number of documents changed."""
        started = time.perf_counter()
        states = store.doc_states() if states is None else states
        held = self.view().all_docs()
        stale = [
            doc
            for doc, (content, count) in held.items()
            if doc not in states
            or states[doc].stored != count
            or states[doc].content_hash != content
        ]
        missing = [doc for doc, st in states.items() if doc not in held and st.stored != 0]
        self.delete_docs(stale)
        again = [doc for doc in stale if doc in states] + missing
        for start in range(0, len(again), _DOC_PAGE):
            self.add_stored(store.doc_chunks(again[start : start + _DOC_PAGE]))
        changed = len(set(stale) | set(missing))
        log.info(
            "lexical index reconciled with the collection: %d documents changed in %.1fs",
            changed,
            time.perf_counter() - started,
        )
        return changed

    def rebuild(self, store: Store) -> int:
        """Everything again from the collection, a page at a time."""
        self.delete_all()
        page: list[tuple[StoredChunk, np.ndarray]] = []
        n = 0
        for item in store.iter_chunks(include_vectors=True):
            page.append(item)  # type: ignore[arg-type]
            if len(page) >= 1000:
                self.add_stored(page)
                n, page = n + len(page), []
        self.add_stored(page)
        return n + len(page)


class _EmptySearcher:
    """The searcher of a collection nothing was ever ingested into."""

    num_docs = 0
