"""Same-story grouping: copies of one article (syndicated wire copy, a reprint with another
outlet's header and footer, a trimmed version) share a story id.

Each article is reduced to the set of its word 5-gram shingles (lower-cased words, punctuation
and markup dropped), sketched by a ``datasketch`` MinHash (128 permutations) and looked up in a
MinHash LSH index tuned to find pairs from Jaccard ~0.3. A candidate joins the story when the
estimated *containment* of the shorter article in the longer one is at least
:data:`CONTAINMENT`: boilerplate added around a copy, or paragraphs cut from it, lower the
Jaccard similarity but not the share of the shorter text found in the longer one. Two
different reports on one event share few 5-grams and stay apart.

The sketches are kept per collection in ``<home>/stories/<collection>/stories.npz`` (written
atomically, by the ingest that holds the collection's writer lock; readers never need it: the
story id is in every chunk's metadata and in the lexical snapshot). A new article is matched
against the stories already there, so ingest stays incremental; a store ingested before
stories existed is grouped once from its stored text (:func:`regroup`).
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from datasketch import MinHash, MinHashLSH

from assistant.index.store import Store, StoredChunk
from assistant.settings import Settings

log = logging.getLogger(__name__)
NUM_PERM = 128
SHINGLE_WORDS = 5
LSH_THRESHOLD = 0.3
CONTAINMENT = 0.6
MIN_SHINGLES = 20  # shorter texts (a headline, a stub) are never grouped
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def shingles(text: str) -> set[bytes]:
    words = _WORD.findall(text.lower())
    n = SHINGLE_WORDS
    return {" ".join(words[i : i + n]).encode() for i in range(max(len(words) - n + 1, 0))}


def sketch(text: str) -> tuple[MinHash, int]:
    grams = shingles(text)
    m = MinHash(num_perm=NUM_PERM)
    m.update_batch(list(grams))
    return m, len(grams)


class StoryIndex:
    """The sketches of one collection's articles and the story each belongs to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.story: dict[str, str] = {}
        self.size: dict[str, int] = {}
        self.sketch: dict[str, MinHash] = {}
        self._lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM)

    @classmethod
    def beside(cls, settings: Settings, store: Store) -> StoryIndex:
        return cls(settings.home / "stories" / store.name / "stories.npz")

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> StoryIndex:
        if not self.exists:
            return self
        try:
            data = np.load(self.path)
            scheme = str(data["scheme"])
            rows = zip(
                data["doc_ids"], data["story_ids"], data["sizes"], data["hashes"], strict=True
            )
            for doc, story, size, hashes in rows:
                m = MinHash(num_perm=NUM_PERM, hashvalues=hashes, scheme=scheme)  # type: ignore[arg-type]
                self._insert(str(doc), str(story), int(size), m)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s is unreadable (%s); stories are grouped again", self.path, exc)
            self.__init__(self.path)  # type: ignore[misc]
            self.path.unlink(missing_ok=True)
        return self

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        docs = sorted(self.story)
        tmp = self.path.with_name(f".{uuid.uuid4().hex[:8]}.npz")
        some = next(iter(self.sketch.values()), None)
        hashes = [self.sketch[d].hashvalues for d in docs]
        np.savez(
            tmp,
            doc_ids=np.array(docs, dtype=str),
            story_ids=np.array([self.story[d] for d in docs], dtype=str),
            sizes=np.array([self.size[d] for d in docs], dtype=np.int64),
            hashes=np.stack(hashes) if hashes else np.zeros((0, NUM_PERM), dtype=np.uint64),
            scheme=np.array(getattr(some, "scheme", "affine32")),
        )
        os.replace(tmp, self.path)

    def _insert(self, doc_id: str, story: str, size: int, m: MinHash) -> None:
        self.story[doc_id], self.size[doc_id], self.sketch[doc_id] = story, size, m
        if size >= MIN_SHINGLES:
            self._lsh.insert(doc_id, m)

    def remove(self, doc_ids: Iterable[str]) -> None:
        for doc_id in doc_ids:
            if doc_id in self.story:
                if self.size[doc_id] >= MIN_SHINGLES:
                    self._lsh.remove(doc_id)
                del self.story[doc_id], self.size[doc_id], self.sketch[doc_id]

    def assign(self, doc_id: str, text: str) -> str:
        """The story ``doc_id`` belongs to (its own id when it is the first of its story)."""
        self.remove([doc_id])
        m, size = sketch(text)
        story = doc_id
        if size >= MIN_SHINGLES:
            best = 0.0
            for other in self._lsh.query(m):
                share = _containment(m.jaccard(self.sketch[other]), size, self.size[other])
                if share >= CONTAINMENT and share > best:
                    best, story = share, self.story[other]
        self._insert(doc_id, story, size, m)
        return story

    def count(self) -> int:
        return len(set(self.story.values()))


def _containment(jaccard: float, a: int, b: int) -> float:
    """Estimated share of the smaller shingle set found in the larger: |A∩B| = J(|A|+|B|)/(1+J)."""
    if jaccard <= 0 or min(a, b) == 0:
        return 0.0
    return min(1.0, jaccard * (a + b) / (1 + jaccard) / min(a, b))


def _doc_texts(store: Store) -> tuple[dict[str, str], dict[str, list[StoredChunk]]]:
    """Each stored document's text, put back together from its chunks (overlaps once)."""
    chunks: dict[str, list[StoredChunk]] = defaultdict(list)
    for item in store.iter_chunks():
        assert isinstance(item, StoredChunk)
        chunks[item.meta.doc_id].append(item)
    texts = {}
    for doc_id, parts in chunks.items():
        parts.sort(key=lambda c: c.meta.chunk_index)
        text, end = "", 0
        for c in parts:
            meta = c.meta
            skip = max(end - meta.start, 0)
            text += (" " if text else "") + c.text[skip:]
            end = max(end, meta.end)
        texts[doc_id] = text
    return texts, chunks


def regroup(index: StoryIndex, store: Store) -> int:
    """Group every stored document (a store from before stories, or a lost sketch file) and
    write each chunk's story id; returns the number of chunks whose story id changed."""
    texts, chunks = _doc_texts(store)
    ids: list[str] = []
    metas: list[dict[str, object]] = []
    for doc_id in sorted(texts):
        story = index.assign(doc_id, texts[doc_id])
        for c in chunks[doc_id]:
            if c.meta.story != story:
                ids.append(c.chunk_id)
                metas.append({**c.metadata, "story_id": story})
    if ids:
        store.update_metadata(ids, metas)  # type: ignore[arg-type]
    index.save()
    log.info("stories: %d documents form %d stories", len(texts), index.count())
    return len(ids)
