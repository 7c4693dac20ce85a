"""Hybrid retrieval: dense (Chroma) + BM25, fused by reciprocal rank, diversified by article.

:class:`HybridSearch` is what the answer pipeline calls; :class:`HybridRetriever` wraps it as a
LangChain ``BaseRetriever``, so the same retrieval composes into LCEL chains and other
LangChain apps (``retriever.invoke(question)`` gives ``Document`` objects).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.index.lexical import LexicalIndex
from assistant.index.live import LiveIndex
from assistant.index.recency import DAY, RecencyPrior, load_prior
from assistant.index.schema import NO_TIMESTAMP, CompiledFilters, compile_filters
from assistant.index.store import StoredChunk
from assistant.models.embeddings import embed_array
from assistant.settings import Settings
from assistant.types import Filters, Passage

log = logging.getLogger(__name__)
RRF_K = 60


@dataclass
class Retrieved:
    passages: list[Passage]
    query_vector: np.ndarray
    timings: dict[str, float]
    lexical: LexicalIndex  # the snapshot this question was answered from


@dataclass(frozen=True)
class Relevance:
    """How well the chosen passages match the question; decides abstention."""

    dense: float  # best cosine similarity of a passage to the question
    coverage: float  # IDF-weighted share of the question's terms found in the best passage

    def score(self, dense_weight: float) -> float:
        return dense_weight * self.dense + self.coverage

    def enough(self, min_score: float, dense_weight: float) -> bool:
        return self.score(dense_weight) >= min_score


def to_passage(chunk: StoredChunk, dense: float, score: float, lexical: float) -> Passage:
    meta = chunk.meta
    return Passage(
        rank=0,
        chunk_id=chunk.chunk_id,
        doc_id=meta.doc_id,
        text=chunk.text,
        score=score,
        title=meta.title,
        source=meta.source,
        url=meta.url,
        author=meta.author,
        path=meta.path,
        published_at=meta.published_at,
        start=meta.start,
        end=meta.end,
        dense=dense,
        lexical=lexical,
        story_id=meta.story,
    )


def diversify(passages: list[Passage], k: int, per_article: int) -> list[Passage]:
    """Keep rank order but at most ``per_article`` chunks of one story (an article and its
    copies from other outlets), then fill up. Returns copies numbered 1..k (the inputs are
    not changed)."""
    picked: list[Passage] = []
    count: dict[str, int] = defaultdict(int)
    rest: list[Passage] = []
    for p in passages:
        story = p.story_id or p.doc_id
        if count[story] < per_article:
            picked.append(p)
            count[story] += 1
        else:
            rest.append(p)
        if len(picked) == k:
            break
    if len(picked) < k:
        picked.extend(rest[: k - len(picked)])
    return [p.model_copy(update={"rank": rank}) for rank, p in enumerate(picked, start=1)]


class HybridSearch:
    """Thread-safe: all state is the live index (swapped whole) and the shared store."""

    def __init__(self, settings: Settings, index: LiveIndex) -> None:
        self.settings = settings
        self.index = index
        self.store = index.store
        prior = load_prior() if settings.recency_prior else RecencyPrior.flat()
        self.prior = prior.with_weight(settings.recency_weight)

    def holds(self, filters: Filters, lexical: LexicalIndex | None = None) -> bool:
        """Whether any stored chunk passes ``filters``."""
        lexical = lexical or self.index.current()
        return lexical.holds(compile_filters(filters))

    def embed_query(self, query: str) -> np.ndarray:
        return embed_array(self.store.embedder, [query])[0]

    def candidates(
        self,
        query: str,
        filters: Filters | CompiledFilters | None = None,
        n: int | None = None,
        lexical: LexicalIndex | None = None,
    ) -> Retrieved:
        """All fused candidates (best first), before the per-article cap."""
        compiled = filters if isinstance(filters, CompiledFilters) else compile_filters(filters)
        n = n or self.settings.candidates
        lexical = lexical or self.index.current()
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        qvec = self.embed_query(query)
        as_of_ts = compiled.as_of_ts if compiled.as_of_ts is not None else int(time.time())
        if compiled.as_of_ts is not None and lexical.latest_ts <= compiled.as_of_ts:
            compiled = replace(compiled, as_of_ts=None)  # nothing later to leave out
        t1 = time.perf_counter()
        dense = self._dense(qvec, n, compiled, lexical)
        t2 = time.perf_counter()
        lex_hits = lexical.search(query, n, compiled)
        t3 = time.perf_counter()
        timings |= {
            "embed_ms": (t1 - t0) * 1e3,
            "dense_ms": (t2 - t1) * 1e3,
            "bm25_ms": (t3 - t2) * 1e3,
        }
        recent = self._recent(compiled, as_of_ts, lexical)
        if recent is not None:  # the ages the prior favours get their own candidates
            dense = _merge(dense, self.store.query(qvec, n, recent.chroma_where()))
            lex_hits = _merge(lex_hits, lexical.search(query, n, recent))
            timings["recent_ms"] = (time.perf_counter() - t3) * 1e3
            t3 = time.perf_counter()
        fused: dict[str, float] = defaultdict(float)
        for rank, (chunk, _) in enumerate(dense):
            fused[chunk.chunk_id] += 1.0 / (RRF_K + rank + 1)
        for rank, (cid, _) in enumerate(lex_hits):
            fused[cid] += 1.0 / (RRF_K + rank + 1)
        dense_by_id = {c.chunk_id: (c, s) for c, s in dense}
        lex_by_id = dict(lex_hits)
        fetched = self._with_similarity(
            [cid for cid in fused if cid not in dense_by_id], qvec, lexical
        )
        passages, stamps = [], []
        for cid, score in sorted(fused.items(), key=lambda kv: -kv[1]):
            found = dense_by_id.get(cid) or fetched.get(cid)
            if found is None:  # deleted by a writer since the snapshot was built: skip
                continue
            passages.append(to_passage(found[0], found[1], score, lex_by_id.get(cid, 0.0)))
            ts = found[0].meta.published_ts
            stamps.append(NO_TIMESTAMP if ts is None else ts)
        passages = self._with_prior(passages, stamps, as_of_ts)
        timings["fuse_ms"] = (time.perf_counter() - t3) * 1e3
        return Retrieved(passages, qvec, timings, lexical)

    def _dense(
        self, qvec: np.ndarray, n: int, compiled: CompiledFilters, lexical: LexicalIndex
    ) -> list[tuple[StoredChunk, float]]:
        """Nearest chunks under the filters. Chroma cannot select chunks without a date, so
        with an as-of bound the undated ones come from a query without it."""
        dense = self.store.query(qvec, n, compiled.chroma_where())
        if compiled.as_of_ts is not None and lexical.undated:
            wider = self.store.query(qvec, n, replace(compiled, as_of_ts=None).chroma_where())
            dense = _merge(dense, [(c, s) for c, s in wider if c.meta.published_ts is None])
        return dense

    def _recent(
        self, compiled: CompiledFilters, as_of_ts: int, lexical: LexicalIndex
    ) -> CompiledFilters | None:
        """The filters narrowed to the prior's window, when that window holds some but not
        all of the chunks the filters admit (else the first lists already cover it)."""
        if not (self.prior.weight and self.prior.window_days):
            return None
        start = as_of_ts - self.prior.window_days * DAY
        if compiled.since_ts is not None and compiled.since_ts >= start:
            return None
        until = min(compiled.until_ts or as_of_ts, as_of_ts)
        recent = replace(compiled, since_ts=start, until_ts=until)
        n_inside = lexical.count(recent)
        return recent if 0 < n_inside < lexical.count(compiled) else None

    def _with_prior(
        self, passages: list[Passage], stamps: list[int], as_of_ts: int
    ) -> list[Passage]:
        """Fused scores times the recency prior, re-sorted (unchanged when it is flat)."""
        if not (self.prior.active and passages):
            return passages
        factors = self.prior.factors(np.array(stamps, dtype=np.int64), as_of_ts)
        weighted = [
            p.model_copy(update={"score": p.score * float(f)})
            for p, f in zip(passages, factors, strict=True)
        ]
        return sorted(weighted, key=lambda p: -p.score)

    def _with_similarity(
        self, ids: list[str], qvec: np.ndarray, lexical: LexicalIndex
    ) -> dict[str, tuple[StoredChunk, float]]:
        """Stored chunks with their similarity to the query, from the snapshot's vectors."""
        out = {}
        vectors = lexical.vectors(ids)
        for cid, chunk in self.store.get_chunks(ids).items():
            vector = vectors.get(cid)
            if vector is not None:
                out[cid] = (chunk, float(np.dot(vector, qvec)))
        return out

    def passages_by_id(
        self,
        ids: list[str],
        qvec: np.ndarray,
        score: float,
        lexical: LexicalIndex,
        filters: CompiledFilters | None = None,
    ) -> list[Passage]:
        """Stored chunks as passages with the given fused score and a fresh similarity."""
        fetched = self._with_similarity(ids, qvec, lexical)
        return [
            to_passage(*fetched[cid], score, 0.0)
            for cid in ids
            if cid in fetched and (filters is None or filters.admits(fetched[cid][0].meta))
        ]

    def relevance(self, query: str, passages: list[Passage], lexical: LexicalIndex) -> Relevance:
        if not passages:
            return Relevance(0.0, 0.0)
        # the best single passage: terms scattered over several stories don't make an answer
        coverage = max(lexical.coverage(query, [f"{p.title}\n{p.text}"]) for p in passages)
        return Relevance(max(p.dense for p in passages), coverage)

    def retrieve(
        self,
        query: str,
        filters: Filters | None = None,
        k: int | None = None,
        lexical: LexicalIndex | None = None,
    ) -> Retrieved:
        found = self.candidates(query, filters, lexical=lexical)
        found.passages = diversify(
            found.passages, k or self.settings.k, self.settings.per_article_cap
        )
        return found


def _merge(first: list[Any], second: list[Any]) -> list[Any]:
    """Two best-first lists of ``(item, score)`` as one, by score, each item once."""
    seen: dict[str, Any] = {}
    for item in (*first, *second):
        key = item[0] if isinstance(item[0], str) else item[0].chunk_id
        seen.setdefault(key, item)
    return sorted(seen.values(), key=lambda pair: -pair[1])


class HybridRetriever(BaseRetriever):
    """LangChain face of :class:`HybridSearch`: ``Document`` per passage, best first, with the
    passage's fields (rank, score, chunk id, title, source, date, url) as metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    search: Any  # HybridSearch
    k: int = 6
    filters: Filters | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        found = self.search.retrieve(query, self.filters, self.k)
        return [
            Document(
                id=p.chunk_id,
                page_content=p.text,
                metadata=p.model_dump(exclude={"text"}),
            )
            for p in found.passages
        ]
