"""Ingest: discover files, load articles, chunk, embed, store; skip what is unchanged.

Crash safety comes from deterministic ids and completeness checks rather than transactions:
chunk ids are ``{doc_id}:{index}``, each chunk records its document's content hash and chunk
count, and a document counts as stored only when all its chunks with that hash are present.
A run killed at any point leaves documents that are either complete (skipped next time) or
incomplete (deleted and redone next time): never duplicated, never silently missing. A
document's chunks go to Chroma in one write, so search never sees part of a document.

Nothing one input does stops the others: every failure of a file, a line or an article is
caught where it happens and reported in one line (:class:`Skipped`), and every repair in one
(:class:`Salvaged`: a date dropped, bytes replaced, an article cut at the chunk limit) as a
warning; only a failure of the store itself ends the run.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import EmbedderMismatchError
from assistant.index.lexical_store import LexicalStore
from assistant.index.locks import writer_lock
from assistant.index.store import GENERATION, WRITING, DocState, Store
from assistant.index.stories import StoryIndex, regroup
from assistant.models.embeddings import MiniLMEmbeddings, embed_array
from assistant.settings import Settings
from ingest.chunking import Chunk, chunker_id, iter_chunks
from ingest.discover import discover
from ingest.loaders import Article, LoadError, load_path
from ingest.notes import Salvaged, Skipped, path_exists, path_text
from ingest.writer import Progress, Writer, embed_text

__all__ = [
    "IngestReport",
    "Progress",
    "discover",
    "embed_text",
    "ingest_paths",
    "reembed",
]

log = logging.getLogger(__name__)
_BATCH = 1024  # chunks per embedding batch: long enough to sort by length well
# Up to this many stored chunks an ingest reads every document's state at once (seconds);
# above it each article's state is looked up as it arrives, so adding 30 articles to a
# 400k-chunk archive reads 30 documents' chunks, not 400k.
_READ_ALL_STATES = 50_000


class KnownDocs:
    """The stored documents' states, read whole or looked up one document at a time."""

    def __init__(self, store: Store, every: dict[str, DocState] | None) -> None:
        self.store = store
        self._states: dict[str, DocState | None] = dict(every or {})
        self._whole = every is not None

    def get(self, doc_id: str) -> DocState | None:
        if not self._whole and doc_id not in self._states:
            self._states[doc_id] = self.store.doc_states([doc_id]).get(doc_id)
        return self._states.get(doc_id)

    def every(self) -> dict[str, DocState]:
        if not self._whole:
            self._states, self._whole = dict(self.store.doc_states()), True
        return {k: v for k, v in self._states.items() if v is not None}


_RAISE_CAP = "raise NEWSDESK_MAX_CHUNKS_PER_ARTICLE to keep more"


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
    warnings: list[Salvaged] = field(default_factory=list)  # ingested, with a repair
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
            "warnings": [{"where": w.where, "reason": w.reason} for w in self.warnings],
        }

    def warn(self, where: str, reason: str) -> None:
        note = Salvaged(where, reason)
        self.warnings.append(note)
        log.warning("%s", note.line)


def _cut_chunker(chunker: str, cap: int) -> str:
    """The chunker id stored with an article cut at ``cap`` chunks (so a new cap redoes it)."""
    return f"{chunker}:cut{cap}"


def _needs_work(state: DocState | None, article: Article, chunker: str, cap: int) -> bool:
    return not (
        state is not None
        and state.complete
        and state.content_hash == article.content_hash
        and (
            (state.chunker == chunker and state.n_chunks <= cap)
            or state.chunker == _cut_chunker(chunker, cap)
        )
    )


def _same_sizes(built: str, chunker: str) -> bool:
    """Whether two chunker ids differ at most in the version (same tokenizer and sizes)."""
    return built.partition(":")[2] == chunker.partition(":")[2]


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


def _articles(
    path: Path, max_bytes: int, report: IngestReport, loaded: set[str]
) -> Iterator[Article]:
    """The articles of one file; every failure of the file or of a line becomes a skip, and a
    file read to its end without one joins ``loaded``."""
    try:
        for item in load_path(path, max_bytes):
            if isinstance(item, Skipped):
                report.skipped.append(item)
            else:
                yield item
    except LoadError as exc:
        report.skipped.append(Skipped(exc.where, exc.reason))
    except Exception as exc:  # a parser's own failure (deep nesting, memory…) on this input
        log.debug("reading %s failed", path_text(path), exc_info=True)
        report.skipped.append(Skipped(path_text(path), f"cannot be read ({_brief(exc)})"))
    else:
        loaded.add(path_text(path))


def _chunks(
    article: Article, where: str, settings: Settings, report: IngestReport
) -> tuple[list[Chunk], bool] | None:
    """The article's chunks (at most the cap) and whether it was cut; None if it cannot be."""
    cap = settings.max_chunks_per_article
    try:
        chunks = list(
            itertools.islice(
                iter_chunks(article.text, settings.chunk_tokens, settings.chunk_overlap_tokens),
                cap + 1,
            )
        )
    except Exception as exc:
        log.debug("chunking %s failed", where, exc_info=True)
        report.skipped.append(Skipped(where, f"cannot be chunked ({_brief(exc)})"))
        return None
    if len(chunks) <= cap:
        return chunks, False
    kept = chunks[cap - 1].end / len(article.text)
    report.warn(
        where,
        f"article cut at {cap:,} chunks (the first {kept:.1%} of its text kept); {_RAISE_CAP}",
    )
    return chunks[:cap], True


def _brief(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _load_and_write(
    files: list[Path],
    settings: Settings,
    states: KnownDocs,
    chunker: str,
    writer: Writer,
    report: IngestReport,
    stories: StoryIndex | None = None,
) -> tuple[dict[str, str], set[str]]:
    """Read every file, hand changed articles to the writer; returns (ids seen, files read)."""
    seen: dict[str, str] = {}
    loaded: set[str] = set()  # files read without a file-level error
    max_bytes = int(settings.max_article_mb * 1e6)
    cap = settings.max_chunks_per_article
    for path in files:
        for item in _articles(path, max_bytes, report, loaded):
            where = path_text(path) + (f":{item.extra['line']}" if "line" in item.extra else "")
            for note in item.notes:
                report.warn(where, note)
            if item.doc_id in seen:
                reason = f"duplicate id {item.doc_id!r} (first seen at {seen[item.doc_id]})"
                report.skipped.append(Skipped(where, reason))
                continue
            seen[item.doc_id] = where
            state = states.get(item.doc_id)
            if not _needs_work(state, item, chunker, cap):
                report.unchanged += 1
                if state is not None and state.chunker != chunker:  # stored cut: say so again
                    report.warn(where, f"article cut at {cap:,} chunks when stored; {_RAISE_CAP}")
                continue
            made = _chunks(item, where, settings, report)
            if made is None:
                continue
            chunks, cut = made
            story = stories.assign(item.doc_id, item.text) if stories is not None else ""
            writer.add(
                item,
                chunks,
                _cut_chunker(chunker, cap) if cut else chunker,
                state is not None,
                story,
            )
            if state is None:
                report.added += 1
            else:
                report.updated += 1
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
        built = manifest.get("chunker")
        if built not in (None, chunker):
            if not _same_sizes(str(built), chunker):
                raise EmbedderMismatchError(
                    f"collection {store.name!r} was chunked with {built}, settings ask for "
                    f"{chunker}; re-ingest with `newsdesk ingest --reembed PATH...`"
                )
            log.info("chunked by %s before: documents are redone as they are ingested", built)
    files, report.skipped = discover(paths)
    report.files = len(files)
    # a run killed before it finished left this behind: its changes still need a snapshot
    interrupted = bool(manifest.get(WRITING))
    generation = int(manifest.get(GENERATION, 0))
    lexical_home = LexicalStore.beside(settings, store)
    in_step = lexical_home.synced() == generation
    # every document's state when they are few or all are needed, else each on its own
    stored = store.count()
    whole = prune or interrupted or not in_step or stored <= _READ_ALL_STATES
    states = KnownDocs(store, store.doc_states() if whole or not stored else None)
    store.set_manifest(**{WRITING: f"pid {os.getpid()}"})
    stories = StoryIndex.beside(settings, store).load()
    regrouped = 0
    if stored and not stories.exists:  # stored before stories were grouped (or sketches lost)
        regrouped = regroup(stories, store)
    with lexical_home.writer() as lexical:
        if regrouped or manifest.get(WRITING) == "re-embedded":
            lexical.rebuild(store)  # every chunk's story id or vector changed
        elif interrupted or not in_step:
            lexical.reconcile(store, states.every())  # mirror what is stored, then change it
        writer = Writer(store, progress, _BATCH, lexical)
        try:
            seen, loaded = _load_and_write(
                files, settings, states, chunker, writer, report, stories
            )
        except BaseException:
            writer.abort()  # keep what is stored consistent; the next run redoes it
            raise
        try:
            writer.close()
        finally:
            report.chunks = writer.done
        if isinstance(store.embedder, MiniLMEmbeddings):
            store.embedder.release()

        if prune:
            # gone: the file no longer exists, or it was read in full and no longer holds it
            removed = [
                doc_id
                for doc_id, state in states.every().items()
                if doc_id not in seen
                and state.path
                and (state.path in loaded or not path_exists(state.path))
            ]
            store.delete_docs(removed)
            lexical.delete_docs(removed)
            stories.remove(removed)
            report.removed = len(removed)
        stories.save()
        if manifest.get("chunker") != chunker or manifest.get("embedder") is None:
            store.set_manifest(chunker=chunker, embedder=store.embedder_id)
        changed = bool(report.chunks or report.removed or report.updated or interrupted)
        if changed or lexical.changed or not in_step:
            # readers switch to the new generation only once the lexical index holds it
            generation += 1
            lexical.commit(generation)
    store.set_manifest(**{GENERATION: generation, WRITING: None})
    report.generation = generation
    report.seconds = time.perf_counter() - started
    for item in report.skipped:
        log.info("skipped %s", item.line)
    return report
