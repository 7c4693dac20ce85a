"""BM25 over the chunks Chroma holds, in a tantivy index that is updated in place.

Every chunk is one tantivy document: its stemmed terms (BM25, k1 1.2, b 0.75), the fields
filters and stories need (publication time, source, story, outlet, document), and its dense
vector (float16), so chunks that only BM25 found get their similarity to the question without
asking Chroma for vectors. Writers add and delete documents in place
(:mod:`assistant.index.lexical_store`); a reader holds a :class:`LexicalIndex`, a point-in-time
tantivy searcher that a writer's commit never changes, and swaps in a new one when the
collection's generation advances. Nothing is rebuilt on a question's path.

Why tantivy: on the RealTime QA dev corpus grown to 400k chunks a filtered query takes 1-4 ms
(SQLite FTS5's ``bm25()`` took 160-340 ms; bm25s rebuilt its whole index on every change).
Measurements in docs/benchmarks.md.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from assistant.index.schema import NO_TIMESTAMP, CompiledFilters
from assistant.text import STOPWORDS, canonical_months

log = logging.getLogger(__name__)
_STOP = sorted(STOPWORDS - {"new"})
FORMAT = 3  # the lexical index's layout; another value is rebuilt from the collection
_MANY = 1_000_000  # "all" for tantivy searches that must not truncate


class SnapshotInvalid(Exception):
    """A lexical index that is missing, of another format, or behind the collection."""


def index_text(title: str, text: str) -> str:
    """What BM25 and the embedder see for a chunk: the headline gives every chunk its topic."""
    return f"{title}\n{text}" if title else text


@cache
def _bm25s() -> Any:
    """bm25s (only its tokenizer is used), imported once. On import it sets its own logger to
    DEBUG; hand that back to the application's logging configuration."""
    level = logging.getLogger("bm25s").level
    import bm25s

    logging.getLogger("bm25s").setLevel(level)
    return bm25s


def tokenize(texts: list[str]) -> list[list[str]]:
    """Stemmed, stopword-free terms of each text (the same terms the index holds)."""
    from assistant.text import stemmer

    tokens = _bm25s().tokenize(
        texts, stopwords=_STOP, stemmer=stemmer().stemWords, show_progress=False, return_ids=False
    )
    return [list(t) for t in tokens]


def terms(text: str) -> list[str]:
    """The stemmed terms BM25 indexes for ``text``."""
    return tokenize([text])[0]


def outlet(source: str, url: str) -> str:
    """Who published an article: its source, else its URL's host without ``www.``."""
    if source:
        return source
    host = urlsplit(url).hostname or "" if url else ""
    return host.removeprefix("www.")


@cache
def tantivy_module() -> Any:
    import tantivy

    return tantivy


@cache
def schema() -> Any:
    """One tantivy document per chunk."""
    tv = tantivy_module()
    b = tv.SchemaBuilder()
    b.add_text_field("chunk_id", stored=True, tokenizer_name="raw")
    b.add_text_field("doc_id", stored=True, tokenizer_name="raw", fast=True)
    b.add_text_field("content_hash", stored=True, tokenizer_name="raw")
    b.add_text_field("source", stored=True, tokenizer_name="raw", fast=True)
    b.add_text_field("story_id", stored=True, tokenizer_name="raw", fast=True)
    b.add_text_field("outlet", stored=True, tokenizer_name="raw")
    b.add_text_field("terms", tokenizer_name="whitespace", index_option="freq")
    b.add_integer_field("ts", stored=True, indexed=True, fast=True)  # NO_TIMESTAMP: undated
    b.add_integer_field("lead", indexed=True, fast=True)  # 1 on a document's first chunk
    b.add_bytes_field("vector", stored=True)
    return b.build()


def filter_query(compiled: CompiledFilters | None) -> Any | None:
    """The tantivy query selecting what ``compiled`` admits (``None``: everything). Undated
    chunks never match a date bound; ``as_of`` keeps them (as :meth:`CompiledFilters.mask`)."""
    if compiled is None or not compiled.active:
        return None
    tv, sc = tantivy_module(), schema()
    integer = tv.FieldType.Integer
    parts = []
    if compiled.since_ts is not None:
        parts.append(tv.Query.range_query(sc, "ts", integer, max(compiled.since_ts, 0), None))
    if compiled.until_ts is not None:
        parts.append(
            tv.Query.range_query(sc, "ts", integer, NO_TIMESTAMP, compiled.until_ts, False)
        )
    if compiled.as_of_ts is not None:
        parts.append(tv.Query.range_query(sc, "ts", integer, None, compiled.as_of_ts))
    if compiled.source is not None:
        parts.append(tv.Query.term_query(sc, "source", compiled.source))
    if len(parts) == 1:
        return parts[0]
    return tv.Query.boolean_query([(tv.Occur.Must, p) for p in parts])


def _and(*queries: Any) -> Any:
    tv = tantivy_module()
    real = [q for q in queries if q is not None]
    if not real:
        return tv.Query.all_query()
    if len(real) == 1:
        return real[0]
    return tv.Query.boolean_query([(tv.Occur.Must, q) for q in real])


@dataclass(frozen=True)
class SourceSpan:
    source: str
    articles: int
    first_ts: int | None
    last_ts: int | None


class LexicalIndex:
    """One point-in-time view of the lexical index: what the collection held at
    ``generation``. Read-only, so threads share it freely."""

    def __init__(self, generation: int, searcher: Any) -> None:
        self.generation = generation
        self.searcher = searcher

    @property
    def size(self) -> int:
        return int(self.searcher.num_docs)

    # -- counting and filtering --------------------------------------------------------------
    def count(self, compiled: CompiledFilters | None = None) -> int:
        """Chunks that pass the filters."""
        query = filter_query(compiled)
        if query is None or not self.size:
            return self.size
        return int(self.searcher.search(query, 1, count=True).count)

    def holds(self, compiled: CompiledFilters | None) -> bool:
        return self.count(compiled) > 0

    @cached_property
    def latest_ts(self) -> int:
        """The newest publication time held (NO_TIMESTAMP when nothing is dated)."""
        if not self.size:
            return NO_TIMESTAMP
        hits = self.searcher.search(tantivy_module().Query.all_query(), 1, order_by_field="ts")
        return int(hits.hits[0][0]) if hits.hits else NO_TIMESTAMP

    @cached_property
    def undated(self) -> int:
        if not self.size:
            return 0
        tv = tantivy_module()
        query = tv.Query.range_query(schema(), "ts", tv.FieldType.Integer, None, NO_TIMESTAMP)
        return int(self.searcher.search(query, 1, count=True).count)

    def _leads(self, extra: Any | None = None) -> Any:
        lead = tantivy_module().Query.term_query(schema(), "lead", 1)
        return _and(lead, extra)

    def documents(self) -> int:
        if not self.size:
            return 0
        return int(self.searcher.search(self._leads(), 1, count=True).count)

    @cached_property
    def stories(self) -> int:
        return self.story_count()

    def story_count(self) -> int:
        if not self.size:
            return 0
        found = self.searcher.aggregate(
            self._leads(), {"s": {"terms": {"field": "story_id", "size": _MANY}}}
        )
        return len(found["s"]["buckets"])

    @cached_property
    def source_spans(self) -> list[SourceSpan]:
        """Each source's article count and first/last publication (source "" included)."""
        if not self.size:
            return []
        tv = tantivy_module()
        by_source = {"terms": {"field": "source", "size": _MANY, "missing": ""}}
        counts = self.searcher.aggregate(self._leads(), {"s": by_source})["s"]["buckets"]
        dated = tv.Query.range_query(
            schema(), "ts", tv.FieldType.Integer, NO_TIMESTAMP, None, False
        )
        spans = {"lo": {"min": {"field": "ts"}}, "hi": {"max": {"field": "ts"}}}
        ranges = self.searcher.aggregate(self._leads(dated), {"s": {**by_source, "aggs": spans}})[
            "s"
        ]["buckets"]
        lo_hi = {b["key"]: (int(b["lo"]["value"]), int(b["hi"]["value"])) for b in ranges}
        return [
            SourceSpan(str(b["key"]), int(b["doc_count"]), *lo_hi.get(b["key"], (None, None)))
            for b in counts
        ]

    @cached_property
    def known_sources(self) -> list[str]:
        return sorted(s.source for s in self.source_spans if s.source)

    # -- stories -----------------------------------------------------------------------------
    def story_members(self, story_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """``story id -> {doc id: outlet}`` for these stories (one entry per article)."""
        wanted = sorted({s for s in story_ids if s})
        if not wanted or not self.size:
            return {}
        query = self._leads(tantivy_module().Query.term_set_query(schema(), "story_id", wanted))
        out: dict[str, dict[str, str]] = {}
        for _, address in self.searcher.search(query, _MANY, count=False).hits:
            doc = self.searcher.doc(address)
            out.setdefault(doc["story_id"][0], {})[doc["doc_id"][0]] = _first(doc, "outlet")
        return out

    # -- BM25 --------------------------------------------------------------------------------
    def doc_freq(self, term: str) -> int:
        return int(self.searcher.doc_freq("terms", term)) if self.size else 0

    def coverage(self, query: str, texts: list[str]) -> float:
        """IDF-weighted share of the query's terms that occur in ``texts``. Rare terms (names,
        places) weigh most; a term the corpus has never seen weighs most of all."""
        wanted = set(terms(canonical_months(query)))
        if not wanted:
            return 0.0
        present = set(terms(canonical_months("\n".join(texts))))
        size = self.size
        weight = {t: math.log(1 + size / (1 + self.doc_freq(t))) for t in wanted}
        total = sum(weight.values())
        return sum(weight[t] for t in wanted & present) / total if total else 0.0

    def search(
        self, query: str, n: int, filters: CompiledFilters | None = None
    ) -> list[tuple[str, float]]:
        """The ``n`` best chunks by BM25 under the filters: ``(chunk id, score)``."""
        words = sorted(set(terms(query)))
        if not words or not self.size:
            return []
        tv, sc = tantivy_module(), schema()
        should = [
            (tv.Occur.Should, tv.Query.term_query(sc, "terms", w, index_option="freq"))
            for w in words
        ]
        bm25 = tv.Query.boolean_query(should)
        where = filter_query(filters)
        if where is not None:  # a filter selects; it adds nothing to the score
            bm25 = tv.Query.boolean_query(
                [(tv.Occur.Must, bm25), (tv.Occur.Must, tv.Query.const_score_query(where, 0.0))]
            )
        hits = self.searcher.search(bm25, n, count=False).hits
        return [
            (self.searcher.doc(address)["chunk_id"][0], float(score))
            for score, address in hits
            if score > 0
        ]

    # -- vectors -----------------------------------------------------------------------------
    def vectors(self, chunk_ids: Iterable[str]) -> dict[str, np.ndarray]:
        """The stored dense vectors of these chunks (ids not held are left out)."""
        wanted = sorted(set(chunk_ids))
        if not wanted or not self.size:
            return {}
        query = tantivy_module().Query.term_set_query(schema(), "chunk_id", wanted)
        out = {}
        for _, address in self.searcher.search(query, len(wanted), count=False).hits:
            doc = self.searcher.doc(address)
            out[doc["chunk_id"][0]] = np.frombuffer(doc["vector"][0], np.float16).astype(np.float32)
        return out

    def vector(self, chunk_id: str) -> np.ndarray | None:
        return self.vectors([chunk_id]).get(chunk_id)

    def all_docs(self) -> dict[str, tuple[str, int]]:
        """``doc id -> (content hash, chunks held)`` for every document (writers' reconcile)."""
        out: dict[str, tuple[str, int]] = {}
        if not self.size:
            return out
        hits = self.searcher.search(tantivy_module().Query.all_query(), _MANY, count=False).hits
        for _, address in hits:
            doc = self.searcher.doc(address)
            key = doc["doc_id"][0]
            content = _first(doc, "content_hash")
            held = out.get(key)
            if held is None:
                out[key] = (content, 1)
            else:  # two versions of one document: never equal to a stored state
                out[key] = (held[0] if held[0] == content else "", held[1] + 1)
        return out


def _first(doc: Any, field: str) -> str:
    values = doc.to_dict().get(field) or [""]
    return str(values[0])
