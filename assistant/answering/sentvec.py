"""Sentence spans and vectors of passages, cached by chunk id (bounded LRU).

Extractive answers, citation checks and multiple-choice scoring all look at the sentences of
the same retrieved passages; embedding each passage's sentences once saves most of their cost.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.models.embeddings import embed_array
from assistant.text import sentence_spans
from assistant.types import Passage

Spans = list[tuple[int, int]]


class SentenceVectors:
    def __init__(self, embedder: Embeddings, max_passages: int = 4096) -> None:
        self.embedder = embedder
        self.max_passages = max_passages
        self._cache: OrderedDict[str, tuple[Spans, np.ndarray]] = OrderedDict()

    def get_many(self, passages: Sequence[Passage]) -> list[tuple[Spans, np.ndarray]]:
        """(sentence spans, unit vectors) per passage; missing ones embedded in one batch."""
        missing = [p for p in dict.fromkeys(passages) if p.chunk_id not in self._cache]
        if missing:
            spans = [sentence_spans(p.text) or [(0, len(p.text))] for p in missing]
            texts = [p.text[a:b] for p, ss in zip(missing, spans, strict=True) for a, b in ss]
            vectors = embed_array(self.embedder, texts)
            offset = 0
            for p, ss in zip(missing, spans, strict=True):
                self._cache[p.chunk_id] = (ss, vectors[offset : offset + len(ss)])
                offset += len(ss)
        out = []
        for p in passages:
            self._cache.move_to_end(p.chunk_id)
            out.append(self._cache[p.chunk_id])
        while len(self._cache) > self.max_passages:
            self._cache.popitem(last=False)
        return out

    def get(self, passage: Passage) -> tuple[Spans, np.ndarray]:
        return self.get_many([passage])[0]
