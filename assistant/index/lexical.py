"""BM25 over the chunks Chroma holds: one immutable snapshot per index generation.

Only writers build: an ingest that changed the collection builds the snapshot of the next
generation from Chroma itself (the single source of truth), writes it beside the store, and
only then advances the generation in the collection's manifest. A reader that sees the new
generation loads that snapshot and swaps it in whole; nothing is rebuilt on a question's path.

A snapshot also keeps each chunk's dense vector (float16), so chunks that only BM25 found get
their similarity to the question without asking Chroma for vectors (which a long-lived reader
cannot do for chunks another process added). Each snapshot has a manifest with its counts and
the sha256 of every file; a snapshot that fails those checks is invalid and is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from assistant.index.schema import NO_TIMESTAMP, CompiledFilters
from assistant.index.store import Store, StoredChunk
from assistant.settings import Settings
from assistant.text import STOPWORDS, canonical_months

log = logging.getLogger(__name__)
_STOP = sorted(STOPWORDS - {"new"})
_KEEP = 2  # snapshots kept: the newest and the one before (a reader may be loading it)
FORMAT = 2


class SnapshotInvalid(Exception):
    """A snapshot that is missing, truncated or inconsistent (``str()`` says how)."""


def index_text(title: str, text: str) -> str:
    """What BM25 and the embedder see for a chunk: the headline gives every chunk its topic."""
    return f"{title}\n{text}" if title else text


@cache
def _bm25s() -> Any:
    """bm25s, imported once. On import it sets its own logger to DEBUG; hand that back to
    the application's logging configuration."""
    level = logging.getLogger("bm25s").level
    import bm25s

    logging.getLogger("bm25s").setLevel(level)
    return bm25s


def _tokenize(texts: list[str], return_ids: bool = True) -> Any:
    bm25s = _bm25s()

    from assistant.text import stemmer

    return bm25s.tokenize(
        texts,
        stopwords=_STOP,
        stemmer=stemmer().stemWords,
        show_progress=False,
        return_ids=return_ids,
    )


def terms(text: str) -> list[str]:
    """The stemmed terms BM25 indexes for ``text``."""
    return list(_tokenize([text], return_ids=False)[0])


@dataclass
class LexicalIndex:
    """One loaded snapshot. Read-only after loading, so threads share it freely."""

    generation: int
    retriever: Any
    ids: list[str]
    doc_ids: np.ndarray
    published_ts: np.ndarray  # NO_TIMESTAMP when unknown
    sources: np.ndarray
    vectors: np.ndarray  # float16, one row per id
    story_ids: np.ndarray | None = None  # same-story group per chunk (None: its doc id)
    outlets: np.ndarray | None = None  # source, else the URL's host ("" when neither)
    position: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.position = {cid: i for i, cid in enumerate(self.ids)}
        if self.story_ids is None or len(self.story_ids) != len(self.ids):
            self.story_ids = self.doc_ids
        if self.outlets is None or len(self.outlets) != len(self.ids):
            self.outlets = self.sources

    @cached_property
    def latest_ts(self) -> int:
        """The newest publication time held (NO_TIMESTAMP when nothing is dated)."""
        return int(self.published_ts.max()) if len(self.published_ts) else NO_TIMESTAMP

    @cached_property
    def undated(self) -> int:
        return int((self.published_ts == NO_TIMESTAMP).sum())

    @cached_property
    def stories(self) -> dict[str, dict[str, str]]:
        """``story id -> {doc id: outlet}`` for the stories told by more than one article."""
        members: dict[str, dict[str, str]] = {}
        assert self.story_ids is not None and self.outlets is not None
        for story, doc, outlet in zip(self.story_ids, self.doc_ids, self.outlets, strict=True):
            members.setdefault(str(story), {})[str(doc)] = str(outlet)
        return {k: v for k, v in members.items() if len(v) > 1}

    def story_count(self) -> int:
        return len(set(self.story_ids.tolist())) if self.story_ids is not None else 0

    @property
    def size(self) -> int:
        return len(self.ids)

    def vector(self, chunk_id: str) -> np.ndarray | None:
        i = self.position.get(chunk_id)
        return None if i is None else self.vectors[i].astype(np.float32)

    def doc_freq(self, term: str) -> int:
        if self.retriever is None:
            return 0
        tid = self.retriever.vocab_dict.get(term)
        if tid is None:
            return 0
        indptr = self.retriever.scores["indptr"]
        return int(indptr[tid + 1] - indptr[tid])

    def coverage(self, query: str, texts: list[str]) -> float:
        """IDF-weighted share of the query's terms that occur in ``texts``. Rare terms (names,
        places) weigh most; a term the corpus has never seen weighs most of all."""
        wanted = set(terms(canonical_months(query)))
        if not wanted:
            return 0.0
        present = set(terms(canonical_months("\n".join(texts))))
        weight = {t: math.log(1 + self.size / (1 + self.doc_freq(t))) for t in wanted}
        total = sum(weight.values())
        return sum(weight[t] for t in wanted & present) / total if total else 0.0

    def search(
        self, query: str, n: int, filters: CompiledFilters | None = None
    ) -> list[tuple[str, float]]:
        if not self.ids or self.retriever is None:
            return []
        mask = filters.mask(self.published_ts, self.sources) if filters else None
        tokens = _tokenize([query])
        if not tokens.ids or not tokens.ids[0]:
            return []
        k = min(n, len(self.ids))
        weight = None if mask is None else mask.astype(np.float32)
        docs, scores = self.retriever.retrieve(
            tokens, k=k, show_progress=False, weight_mask=weight, n_threads=1
        )
        return [
            (self.ids[int(i)], float(s))
            for i, s in zip(docs[0], scores[0], strict=True)
            if s > 0 and (mask is None or mask[int(i)])
        ]


def outlet(source: str, url: str) -> str:
    """Who published an article: its source, else its URL's host without ``www.``."""
    if source:
        return source
    host = urlsplit(url).hostname or "" if url else ""
    return host.removeprefix("www.")


def _digest(folder: Path) -> dict[str, str]:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "manifest.json":
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


class LexicalStore:
    """The snapshots of one collection, under ``<home>/bm25/<collection>/gen-<N>``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def beside(cls, settings: Settings, store: Store) -> LexicalStore:
        return cls(settings.home / "bm25" / store.name)

    def folder(self, generation: int) -> Path:
        return self.path / f"gen-{generation}"

    def generations(self) -> list[int]:
        found = []
        for child in self.path.glob("gen-*") if self.path.is_dir() else []:
            suffix = child.name[4:]
            if suffix.isdigit() and (child / "manifest.json").is_file():
                found.append(int(suffix))
        return sorted(found)

    # -- writers ---------------------------------------------------------------------------
    def build(self, store: Store, generation: int) -> LexicalIndex:
        """Build the snapshot of ``generation`` from the collection (writers only)."""
        bm25s = _bm25s()
        started = time.perf_counter()
        ids: list[str] = []
        texts: list[str] = []
        doc_ids: list[str] = []
        stamps: list[int] = []
        sources: list[str] = []
        stories: list[str] = []
        outlets: list[str] = []
        vectors: list[np.ndarray] = []
        for item in store.iter_chunks(include_vectors=True):
            chunk, vector = item  # type: ignore[misc]
            assert isinstance(chunk, StoredChunk)
            meta = chunk.meta
            ids.append(chunk.chunk_id)
            texts.append(index_text(meta.title, chunk.text))
            doc_ids.append(meta.doc_id)
            stamps.append(NO_TIMESTAMP if meta.published_ts is None else meta.published_ts)
            sources.append(meta.source)
            stories.append(meta.story)
            outlets.append(outlet(meta.source, meta.url))
            vectors.append(vector.astype(np.float16))
        tmp = self.path / f".build-{uuid.uuid4().hex[:8]}"  # never shared by two builders
        tmp.mkdir(parents=True)
        try:
            if ids:
                retriever = bm25s.BM25(k1=1.2, b=0.75)
                retriever.index(_tokenize(texts), show_progress=False)
                retriever.save(str(tmp / "bm25"), show_progress=False)
            np.savez(
                tmp / "meta.npz",
                doc_ids=np.array(doc_ids, dtype=str),
                published_ts=np.array(stamps, dtype=np.int64),
                sources=np.array(sources, dtype=str),
                story_ids=np.array(stories, dtype=str),
                outlets=np.array(outlets, dtype=str),
            )
            dim = vectors[0].shape[0] if vectors else 0
            np.save(tmp / "vectors.npy", np.stack(vectors) if vectors else np.zeros((0, dim)))
            (tmp / "ids.json").write_text(json.dumps(ids))
            manifest = {
                "format": FORMAT,
                "generation": generation,
                "collection": store.name,
                "count": len(ids),
                "files": _digest(tmp),
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest))
            target = self.folder(generation)
            if target.exists():  # an invalid or half-replaced snapshot of this generation
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._prune(keep_from=generation)
        log.info(
            "BM25 snapshot %d built: %d chunks in %.1fs",
            generation,
            len(ids),
            time.perf_counter() - started,
        )
        return self.load(generation)

    def _prune(self, keep_from: int) -> None:
        gens = self.generations()
        for gen in gens[:-_KEEP]:
            if gen < keep_from:
                shutil.rmtree(self.folder(gen), ignore_errors=True)
        for legacy in ("ids.json", "meta.npz", "state.json", "dirty"):  # the old, single index
            (self.path / legacy).unlink(missing_ok=True)
        shutil.rmtree(self.path / "bm25", ignore_errors=True)

    # -- readers ---------------------------------------------------------------------------
    def load(self, generation: int) -> LexicalIndex:
        """The snapshot of ``generation``, checked; :class:`SnapshotInvalid` if it fails."""
        bm25s = _bm25s()
        folder = self.folder(generation)
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except FileNotFoundError:
            raise SnapshotInvalid(f"no BM25 snapshot for generation {generation}") from None
        except (OSError, ValueError) as exc:
            raise SnapshotInvalid(f"{folder}/manifest.json is unreadable ({exc})") from None
        if manifest.get("format") != FORMAT or manifest.get("generation") != generation:
            raise SnapshotInvalid(f"{folder} is of another format or generation")
        if _digest(folder) != manifest.get("files"):
            raise SnapshotInvalid(f"{folder}: files do not match their checksums")
        try:
            ids = json.loads((folder / "ids.json").read_text())
            meta = np.load(folder / "meta.npz")
            vectors = np.load(folder / "vectors.npy")
            retriever = bm25s.BM25.load(str(folder / "bm25"), show_progress=False) if ids else None
            arrays = (meta["doc_ids"], meta["published_ts"], meta["sources"])
            # snapshots built before stories were grouped lack these: every doc its own story
            extra = {k: meta[k] for k in ("story_ids", "outlets") if k in meta.files}
        except (OSError, ValueError, KeyError) as exc:
            raise SnapshotInvalid(f"{folder} cannot be read ({exc})") from None
        sizes = {len(ids), manifest["count"], vectors.shape[0], *(len(a) for a in arrays)}
        if retriever is not None:
            sizes.add(int(retriever.scores["num_docs"]))
        if len(sizes) != 1 or len(set(ids)) != len(ids):
            raise SnapshotInvalid(f"{folder}: ids, arrays and index disagree in size")
        return LexicalIndex(generation, retriever, ids, *arrays, vectors, **extra)
