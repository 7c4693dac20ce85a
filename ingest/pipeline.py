"""Ingest: discover files, load articles, chunk, embed, store; skip what is unchanged.

Crash safety comes from deterministic ids and completeness checks rather than transactions:
chunk ids are ``{doc_id}:{index}``, each chunk records its document's content hash and chunk
count, and a document counts as stored only when all its chunks with that hash are present.
A run killed at any point leaves documents that are either complete (skipped next time) or
incomplete (deleted and redone next time): never duplicated, never silently missing.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import EmbedderMismatchError, InputError
from assistant.index.lexical import LexicalStore, SnapshotInvalid, index_text
from assistant.index.locks import writer_lock
from assistant.index.schema import ChunkMeta, chunk_id
from assistant.index.store import GENERATION, WRITING, DocState, Store
from assistant.models.embeddings import MAX_PIECES, MiniLMEmbeddings, embed_array
from assistant.settings import Settings
from ingest.chunking import Chunk, chunk_text, chunker_id, count_tokens
from ingest.loaders import SUFFIXES, Article, LoadError, Skipped, load_path

log = logging.getLogger(__name__)
Progress = Callable[[int], None]  # called with the number of chunks stored so far
_BATCH = 1024  # chunks per embedding batch: long enough to sort by length well


@dataclass
class IngestReport:
    files: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks: int = 0
    seconds: float = 0.0
    skipped: list[Skipped] = field(default_factory=list)
    generation: int = 0  # the index generation readers see after this ingest

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        return 2 if self.skipped else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "chunks_per_s": round(self.chunks_per_s, 1),
            "generation": self.generation,
            "skipped": [{"where": s.where, "reason": s.reason} for s in self.skipped],
        }


def discover(args: Iterable[str]) -> tuple[list[Path], list[Skipped]]:
    """Files named directly, found under folders (recursively) or matched by globs."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    for arg in args:
        path = Path(arg).expanduser()
        if path.is_dir():
            found = []
            for p in sorted(path.rglob("*")):
                if p.is_symlink() and not p.exists():
                    skipped.append(Skipped(str(p), "broken symbolic link"))
                elif p.is_file() and p.suffix.lower() in SUFFIXES:
                    found.append(p)
            if not found:
                skipped.append(Skipped(str(path), "folder has no .txt/.md/.html/.pdf/.jsonl files"))
            files.extend(found)
        elif path.exists():
            files.append(path)
        elif any(ch in arg for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            matches = [p for p in matches if p.is_file()]
            if not matches:
                skipped.append(Skipped(arg, "pattern matches no files"))
            files.extend(matches)
        else:
            skipped.append(Skipped(arg, "no such file or folder"))
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, skipped


def _metadata(article: Article, chunk: Chunk, n_chunks: int, chunker: str) -> dict[str, Any]:
    return ChunkMeta(
        doc_id=article.doc_id,
        chunk_index=chunk.index,
        n_chunks=n_chunks,
        start=chunk.start,
        end=chunk.end,
        content_hash=article.content_hash,
        chunker=chunker,
        path=article.path,
        title=article.title,
        source=article.source,
        url=article.url,
        author=article.author,
        published_at=article.published_at,
        published_ts=article.published_ts,
    ).to_chroma()


class _Writer:
    """Embeds and upserts chunks in batches; deletes a changed document's old chunks first."""

    def __init__(self, store: Store, progress: Progress | None) -> None:
        self.store = store
        self.progress = progress
        self.done = 0
        # Chroma writes of one batch overlap the embedding of the next; at most one in flight
        self._writes = ThreadPoolExecutor(1, thread_name_prefix="chroma-write")
        self._pending: Future[int] | None = None
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.embed_texts: list[str] = []
        self.metas: list[dict[str, Any]] = []
        self.to_delete: list[str] = []

    def add(self, article: Article, chunks: list[Chunk], chunker: str, replace: bool) -> None:
        if replace:
            self.to_delete.append(article.doc_id)
        for chunk in chunks:
            self.ids.append(chunk_id(article.doc_id, chunk.index))
            self.texts.append(chunk.text)
            self.embed_texts.append(embed_text(article.title, chunk.text, chunk.tokens))
            self.metas.append(_metadata(article, chunk, len(chunks), chunker))
            if len(self.ids) >= _BATCH:
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
        self.store.upsert(ids, texts, metas, m)
        return len(ids)


def embed_text(title: str, text: str, tokens: int | None = None) -> str:
    """What the embedder sees: the headline gives each chunk its topic, when headline and chunk
    fit the model's window together (else the chunk alone, never truncated)."""
    tokens = count_tokens(text) if tokens is None else tokens
    if title and tokens + count_tokens(title) + 3 <= MAX_PIECES:
        return index_text(title, text)
    return text


def _needs_work(state: DocState | None, article: Article, chunker: str) -> bool:
    return not (
        state is not None
        and state.complete
        and state.content_hash == article.content_hash
        and state.chunker == chunker
    )


def reembed(settings: Settings, store: Store) -> Store:
    """Copy every stored chunk into a fresh collection embedded by ``store.embedder``, then swap.

    The old collection stays intact until the new one is complete.
    """
    tmp = store.sibling(f"{store.name}-reembed")
    if tmp.exists():
        tmp.drop()
    batch: list[Any] = []

    def flush() -> None:
        texts = [embed_text(str(c.metadata.get("title", "")), c.text) for c in batch]
        tmp.upsert(
            [c.chunk_id for c in batch],
            [c.text for c in batch],
            [c.metadata for c in batch],
            embed_array(store.embedder, texts),
        )
        batch.clear()

    for chunk in store.iter_chunks():
        batch.append(chunk)
        if len(batch) >= _BATCH:
            flush()
    if batch:
        flush()
    old_meta = {k: v for k, v in store.manifest().items() if k not in ("hnsw:space", "embedder")}
    tmp.set_manifest(**old_meta, embedder=store.embedder_id)
    # rename, never drop first: a run killed in between leaves the data under a known name
    old = f"{store.name}-pre-reembed"
    store.rename(old)
    tmp.rename(store.name)
    store.sibling(old).drop()
    log.info("re-embedded collection %r with %s", store.name, store.embedder_id)
    return store.sibling(store.name)


def _load_and_write(
    files: list[Path],
    settings: Settings,
    states: dict[str, DocState],
    chunker: str,
    writer: _Writer,
    report: IngestReport,
) -> tuple[dict[str, str], set[str]]:
    """Read every file, hand changed articles to the writer; returns (ids seen, files read)."""
    seen: dict[str, str] = {}
    loaded: set[str] = set()  # files read without a file-level error
    for path in files:
        try:
            for item in load_path(path, int(settings.max_file_mb * 1e6)):
                if isinstance(item, Skipped):
                    report.skipped.append(item)
                    continue
                where = f"{path}:{item.extra['line']}" if "line" in item.extra else str(path)
                if item.doc_id in seen:
                    reason = f"duplicate id {item.doc_id!r} (first seen at {seen[item.doc_id]})"
                    report.skipped.append(Skipped(where, reason))
                    continue
                seen[item.doc_id] = where
                state = states.get(item.doc_id)
                if not _needs_work(state, item, chunker):
                    report.unchanged += 1
                    continue
                chunks = chunk_text(item.text, settings.chunk_tokens, settings.chunk_overlap_tokens)
                writer.add(item, chunks, chunker, replace=state is not None)
                if state is None:
                    report.added += 1
                else:
                    report.updated += 1
            loaded.add(str(path))
        except LoadError as exc:
            report.skipped.append(Skipped(exc.where, exc.reason))
        except InputError as exc:
            report.skipped.append(Skipped(str(path), str(exc)))
    return seen, loaded


def ingest_paths(
    paths: Iterable[str],
    settings: Settings,
    *,
    store: Store | None = None,
    prune: bool = False,
    reembed_all: bool = False,
    progress: Progress | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> IngestReport:
    """Ingest under the collection's writer lock (a second ingest waits, saying for whom)."""
    store = store or Store(settings)
    with writer_lock(settings, store.name, on_wait):
        return _ingest_locked(paths, settings, store, prune, reembed_all, progress)


def _ingest_locked(
    paths: Iterable[str],
    settings: Settings,
    store: Store,
    prune: bool,
    reembed_all: bool,
    progress: Progress | None,
) -> IngestReport:
    started = time.perf_counter()
    report = IngestReport()
    chunker = chunker_id(settings.chunk_tokens, settings.chunk_overlap_tokens)
    manifest = store.manifest()
    if reembed_all:
        built_with = manifest.get("embedder")
        if built_with and built_with != store.embedder_id:
            store = reembed(settings, store)
            manifest = {**store.manifest(), WRITING: "re-embedded"}
    else:
        store.check_embedder(manifest)
        if manifest.get("chunker") not in (None, chunker):
            raise EmbedderMismatchError(
                f"collection {store.name!r} was chunked with {manifest['chunker']}, settings ask "
                f"for {chunker}; re-ingest with `newsdesk ingest --reembed PATH...`"
            )
    # a run killed before it finished left this behind: its changes still need a snapshot
    interrupted = bool(manifest.get(WRITING))
    generation = int(manifest.get(GENERATION, 0))
    files, report.skipped = discover(paths)
    report.files = len(files)
    states = store.doc_states()
    store.set_manifest(**{WRITING: f"pid {os.getpid()}"})
    writer = _Writer(store, progress)
    try:
        seen, loaded = _load_and_write(files, settings, states, chunker, writer, report)
    except BaseException:
        writer.abort()  # keep what is stored consistent; the next run redoes the rest
        raise
    try:
        writer.close()
    finally:
        report.chunks = writer.done
    if isinstance(store.embedder, MiniLMEmbeddings):
        store.embedder.release()  # the BM25 build below needs the memory more

    if prune:
        # gone: the file no longer exists, or it was read in full and no longer holds the id
        removed = [
            doc_id
            for doc_id, state in states.items()
            if doc_id not in seen
            and state.path
            and (state.path in loaded or not Path(state.path).exists())
        ]
        store.delete_docs(removed)
        report.removed = len(removed)
    if manifest.get("chunker") != chunker or manifest.get("embedder") is None:
        store.set_manifest(chunker=chunker, embedder=store.embedder_id)
    snapshots = LexicalStore.beside(settings, store)
    changed = bool(report.chunks or report.removed or report.updated or interrupted)
    if changed or not _snapshot_ok(snapshots, generation):
        # readers switch to the new generation only once its snapshot is complete
        generation += 1
        snapshots.build(store, generation)
    store.set_manifest(**{GENERATION: generation, WRITING: None})
    report.generation = generation
    report.seconds = time.perf_counter() - started
    for item in report.skipped:
        log.info("skipped %s", item)
    return report


def _snapshot_ok(snapshots: LexicalStore, generation: int) -> bool:
    try:
        snapshots.load(generation)
    except SnapshotInvalid as exc:
        log.warning("%s; rebuilding the BM25 index", exc)
        return False
    return True
