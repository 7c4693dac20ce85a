"""Hybrid retrieval: dense (Chroma) + BM25, fused by reciprocal rank, diversified by article."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from assistant.index.lexical import LexicalStore
from assistant.index.store import Store, StoredChunk
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


@dataclass(frozen=True)
class Relevance:
    """How well the chosen passages match the question; decides abstention."""

    dense: float  # best cosine similarity of a passage to the question
    coverage: float  # IDF-weighted share of the question's terms found in the best passage

    def score(self, dense_weight: float) -> float:
        return dense_weight * self.dense + self.coverage

    def enough(self, min_score: float, dense_weight: float) -> bool:
        return self.score(dense_weight) >= min_score


def _passage(chunk: StoredChunk, dense: float, score: float, lexical: float) -> Passage:
    meta = chunk.metadata
    return Passage(
        rank=0,
        chunk_id=chunk.chunk_id,
        doc_id=str(meta.get("doc_id", "")),
        text=chunk.text,
        score=score,
        title=str(meta.get("title", "")),
        source=str(meta.get("source", "")),
        url=str(meta.get("url", "")),
        author=str(meta.get("author", "")),
        published_at=str(meta.get("published_at", "")),
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        dense=dense,
        lexical=lexical,
    )


def diversify(passages: list[Passage], k: int, per_article: int) -> list[Passage]:
    """Keep rank order but at most ``per_article`` chunks of one article, then fill up."""
    picked: list[Passage] = []
    count: dict[str, int] = defaultdict(int)
    rest: list[Passage] = []
    for p in passages:
        if count[p.doc_id] < per_article:
            picked.append(p)
            count[p.doc_id] += 1
        else:
            rest.append(p)
        if len(picked) == k:
            break
    if len(picked) < k:
        picked.extend(rest[: k - len(picked)])
    for rank, p in enumerate(picked, start=1):
        p.rank = rank
    return picked


class Retriever:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or Store(settings)
        self.lexical = LexicalStore.beside(settings, self.store)

    def embed_query(self, query: str) -> np.ndarray:
        return embed_array(self.store.embedder, [query])[0]

    def candidates(
        self, query: str, filters: Filters | None = None, n: int | None = None
    ) -> Retrieved:
        """All fused candidates (best first), before the per-article cap."""
        filters = filters or Filters()
        n = n or self.settings.candidates
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        qvec = self.embed_query(query)
        t1 = time.perf_counter()
        dense = self.store.query(qvec, n, filters.chroma_where())
        t2 = time.perf_counter()
        index = self.lexical.load(self.store)
        lexical = index.search(query, n, filters.since_ts, filters.until_ts, filters.source)
        t3 = time.perf_counter()
        timings.update(embed_ms=(t1 - t0) * 1e3, dense_ms=(t2 - t1) * 1e3, bm25_ms=(t3 - t2) * 1e3)

        fused: dict[str, float] = defaultdict(float)
        for rank, (chunk, _) in enumerate(dense):
            fused[chunk.chunk_id] += 1.0 / (RRF_K + rank + 1)
        for rank, (cid, _) in enumerate(lexical):
            fused[cid] += 1.0 / (RRF_K + rank + 1)
        dense_by_id = {c.chunk_id: (c, s) for c, s in dense}
        lex_by_id = dict(lexical)
        missing = [cid for cid in fused if cid not in dense_by_id]
        fetched = self._fetch_with_similarity(missing, qvec)
        passages = []
        for cid, score in sorted(fused.items(), key=lambda kv: -kv[1]):
            if cid in dense_by_id:
                chunk, sim = dense_by_id[cid]
            elif cid in fetched:
                chunk, sim = fetched[cid]
            else:  # BM25 index briefly ahead of Chroma (concurrent ingest): skip
                continue
            passages.append(_passage(chunk, sim, score, lex_by_id.get(cid, 0.0)))
        timings["fuse_ms"] = (time.perf_counter() - t3) * 1e3
        return Retrieved(passages, qvec, timings)

    def _fetch_with_similarity(
        self, ids: list[str], qvec: np.ndarray
    ) -> dict[str, tuple[StoredChunk, float]]:
        if not ids:
            return {}
        page = self.store.collection.get(ids=ids, include=["metadatas", "documents", "embeddings"])
        out = {}
        for cid, text, meta, emb in zip(
            page["ids"], page["documents"], page["metadatas"], page["embeddings"], strict=True
        ):
            sim = float(np.dot(np.asarray(emb, dtype=np.float32), qvec))
            out[cid] = (StoredChunk.from_chroma(cid, text, meta), sim)
        return out

    def passages_by_id(self, ids: list[str], qvec: np.ndarray, score: float) -> list[Passage]:
        """Stored chunks as passages with the given fused score and a fresh similarity."""
        fetched = self._fetch_with_similarity(ids, qvec)
        return [_passage(*fetched[cid], score, 0.0) for cid in ids if cid in fetched]

    def relevance(self, query: str, passages: list[Passage]) -> Relevance:
        if not passages:
            return Relevance(0.0, 0.0)
        index = self.lexical.load(self.store)
        # the best single passage: terms scattered over several stories don't make an answer
        coverage = max(index.coverage(query, [f"{p.title}\n{p.text}"]) for p in passages)
        return Relevance(max(p.dense for p in passages), coverage)

    def retrieve(
        self, query: str, filters: Filters | None = None, k: int | None = None
    ) -> Retrieved:
        found = self.candidates(query, filters)
        found.passages = diversify(
            found.passages, k or self.settings.k, self.settings.per_article_cap
        )
        return found
