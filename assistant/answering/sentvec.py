"""Sentence spans and vectors of passages, cached by the passage's text (bounded LRU).

Extractive answers, citation checks and multiple-choice scoring all look at the sentences of
the same retrieved passages; embedding each passage's sentences once saves most of their cost.
The key is a hash of the text itself, never the chunk id: ids are reused when an article
changes, and a cache keyed by them would quote the new text cut at the old sentence bounds.
Safe to share between threads.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.models.embeddings import embed_array
from assistant.text import sentence_spans
from assistant.types import Passage

Spans = list[tuple[int, int]]


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class SentenceVectors:
    def __init__(self, embedder: Embeddings, max_passages: int = 4096) -> None:
        self.embedder = embedder
        self.max_passages = max_passages
        self._cache: OrderedDict[bytes, tuple[Spans, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._cache)

    def get_many(self, passages: Sequence[Passage]) -> list[tuple[Spans, np.ndarray]]:
        """(sentence spans, unit vectors) per passage; missing ones embedded in one batch."""
        keys = [_key(p.text) for p in passages]
        found: dict[bytes, tuple[Spans, np.ndarray]] = {}
        with self._lock:
            for key in keys:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    found[key] = self._cache[key]
        missing = {k: p.text for k, p in zip(keys, passages, strict=True) if k not in found}
        if missing:  # embedded outside the lock; two threads may both embed one text (harmless)
            spans = {k: sentence_spans(t) or [(0, len(t))] for k, t in missing.items()}
            texts = [t[a:b] for k, t in missing.items() for a, b in spans[k]]
            vectors = embed_array(self.embedder, texts)
            offset = 0
            with self._lock:
                for k in missing:
                    n = len(spans[k])
                    found[k] = self._cache[k] = (spans[k], vectors[offset : offset + n])
                    offset += n
                while len(self._cache) > self.max_passages:
                    self._cache.popitem(last=False)
        return [found[k] for k in keys]

    def get(self, passage: Passage) -> tuple[Spans, np.ndarray]:
        return self.get_many([passage])[0]
