"""BM25 over the same chunks Chroma holds, persisted beside Chroma and kept in step with it.

The index is rebuilt from the collection itself (the single source of truth) at the end of each
ingest that changed something. ``state.json`` records how many chunks it was built from; a query
that finds the collection's count changed, or an ingest's ``dirty`` marker left behind by a
killed run, rebuilds it first.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.index.store import Store
from assistant.settings import Settings
from assistant.text import STOPWORDS

log = logging.getLogger(__name__)
_STOP = sorted(STOPWORDS - {"new"})


def index_text(title: str, text: str) -> str:
    """What BM25 and the embedder see for a chunk: the headline gives every chunk its topic."""
    return f"{title}\n{text}" if title else text


def _tokenize(texts: list[str], return_ids: bool = True) -> Any:
    import bm25s

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
    retriever: Any
    ids: list[str]
    doc_ids: np.ndarray
    published_ts: np.ndarray  # -1 when unknown
    sources: np.ndarray

    @property
    def size(self) -> int:
        return len(self.ids)

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
        wanted = set(terms(query))
        if not wanted:
            return 0.0
        present = set(terms("\n".join(texts)))
        weight = {t: math.log(1 + self.size / (1 + self.doc_freq(t))) for t in wanted}
        total = sum(weight.values())
        return sum(weight[t] for t in wanted & present) / total if total else 0.0

    def search(
        self,
        query: str,
        n: int,
        since: int | None = None,
        until: int | None = None,
        source: str | None = None,
    ) -> list[tuple[str, float]]:
        if not self.ids:
            return []
        mask = np.ones(len(self.ids), dtype=bool)
        if since is not None:
            mask &= self.published_ts >= since
        if until is not None:
            mask &= (self.published_ts >= 0) & (self.published_ts <= until)
        if source is not None:
            mask &= self.sources == source
        tokens = _tokenize([query])
        if not tokens.ids or not tokens.ids[0]:
            return []
        k = min(n, len(self.ids))
        weight = None if mask.all() else mask.astype(np.float32)
        docs, scores = self.retriever.retrieve(
            tokens, k=k, show_progress=False, weight_mask=weight, n_threads=1
        )
        return [
            (self.ids[int(i)], float(s))
            for i, s in zip(docs[0], scores[0], strict=True)
            if s > 0 and mask[int(i)]
        ]


class LexicalStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._index: LexicalIndex | None = None
        self._loaded_state: dict[str, Any] | None = None

    @classmethod
    def beside(cls, settings: Settings, store: Store) -> LexicalStore:
        return cls(settings.home / "bm25" / store.name)

    @property
    def dirty_marker(self) -> Path:
        return self.path / "dirty"

    def mark_dirty(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.dirty_marker.touch()

    def state(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / "state.json").read_text())
        except (OSError, ValueError):
            return None

    def is_current(self, store: Store) -> bool:
        state = self.state()
        return (
            state is not None
            and not self.dirty_marker.exists()
            and state.get("count") == store.count()
            and state.get("collection") == store.name
        )

    def rebuild(self, store: Store) -> None:
        import bm25s

        started = time.perf_counter()
        ids: list[str] = []
        texts: list[str] = []
        doc_ids: list[str] = []
        stamps: list[int] = []
        sources: list[str] = []
        for chunk in store.iter_chunks():
            meta = chunk.metadata
            ids.append(chunk.chunk_id)
            texts.append(index_text(str(meta.get("title", "")), chunk.text))
            doc_ids.append(str(meta.get("doc_id", "")))
            stamps.append(int(meta.get("published_ts", -1)))
            sources.append(str(meta.get("source", "")))
        tmp = self.path.with_name(self.path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if ids:
            retriever = bm25s.BM25(k1=1.2, b=0.75)
            retriever.index(_tokenize(texts), show_progress=False)
            retriever.save(str(tmp / "bm25"), show_progress=False)
        np.savez(
            tmp / "meta.npz",
            doc_ids=np.array(doc_ids, dtype=str),
            published_ts=np.array(stamps, dtype=np.int64),
            sources=np.array(sources, dtype=str),
        )
        (tmp / "ids.json").write_text(json.dumps(ids))
        (tmp / "state.json").write_text(json.dumps({"count": len(ids), "collection": store.name}))
        old = self.path.with_name(self.path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.path.exists():
            self.path.rename(old)
        tmp.rename(self.path)
        shutil.rmtree(old, ignore_errors=True)
        self._index = None
        log.info("BM25 index rebuilt: %d chunks in %.1fs", len(ids), time.perf_counter() - started)

    def load(self, store: Store) -> LexicalIndex:
        """The index, rebuilt first if it is missing or behind the collection."""
        if (
            self._index is not None
            and self._loaded_state == self.state()
            and not self.dirty_marker.exists()
            and len(self._index.ids) == store.count()
        ):
            return self._index
        if not self.is_current(store):
            log.warning("BM25 index out of step with collection %r; rebuilding", store.name)
            self.rebuild(store)
        import bm25s

        ids = json.loads((self.path / "ids.json").read_text())
        meta = np.load(self.path / "meta.npz")
        retriever = bm25s.BM25.load(str(self.path / "bm25"), show_progress=False) if ids else None
        self._index = LexicalIndex(
            retriever, ids, meta["doc_ids"], meta["published_ts"], meta["sources"]
        )
        self._loaded_state = self.state()
        return self._index
