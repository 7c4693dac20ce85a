"""``Desk``: the one long-lived object every surface shares.

One per data home and collection. It owns the embedder, the Chroma connection, the live
lexical snapshot, the sentence-vector cache and the LLM client, and answers from many threads
at once while another process ingests into the same store::

    with Desk() as desk:
        conversation = Conversation()
        a = desk.answer("Will China mediate?", history=conversation)
        conversation.add(a)
        for event in desk.stream("What did Borrell say?", history=conversation):
            ...  # PassagesFound, TextDelta, Notice, then Final(answer)
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

from langchain_core.embeddings import Embeddings

from assistant.answering import when
from assistant.answering.pipeline import AnswerPipeline, Request
from assistant.answering.sentvec import SentenceVectors
from assistant.answering.verify import SupportChecker
from assistant.errors import EmptyCollectionError, NewsdeskError, UsageError
from assistant.index.lexical import LexicalIndex
from assistant.index.live import LiveIndex
from assistant.index.retriever import HybridRetriever, HybridSearch
from assistant.index.schema import ChunkMeta, chunk_id
from assistant.index.store import GENERATION, Store
from assistant.settings import Settings, load_settings
from assistant.types import (
    Answer,
    Conversation,
    Event,
    Filters,
    Final,
    Passage,
    PassageContext,
    SourceInfo,
    Stats,
    Turn,
)

log = logging.getLogger(__name__)
History = Conversation | Sequence[Turn] | None
__all__ = ["Desk", "History", "PassageContext", "SourceInfo", "Stats"]


def _with_as_of(filters: Filters | None, as_of: date | None) -> Filters | None:
    if as_of is None:
        return filters
    return (filters or Filters()).model_copy(update={"as_of": as_of})


def _day(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).date().isoformat()


def _turns(history: History) -> tuple[Turn, ...]:
    if history is None:
        return ()
    if isinstance(history, Conversation):
        return tuple(history.turns)
    return tuple(history)


class Desk:
    """Thread-safe; use one per data home and collection for the life of the process."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Embeddings | None = None,
        store: Store | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.store = store or Store(self.settings, embedder)
        self.index = LiveIndex(self.settings, self.store)
        self.search_engine = HybridSearch(self.settings, self.index)
        self.sentences = SentenceVectors(self.store.embedder)
        self.checker = SupportChecker(self.store.embedder, self.sentences)
        self.pipeline = AnswerPipeline(self.settings, self.search_engine, self.checker)
        self._closed = False
        self._lock = threading.Lock()

    # -- life cycle --------------------------------------------------------------------------
    def __enter__(self) -> Desk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the Chroma client and the embedder's memory. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        release = getattr(self.store.embedder, "release", None)
        if release is not None:
            release()
        self.store.connection.reopen(self.store.connection.epoch)

    def _ready(self) -> LexicalIndex:
        """Fails with one line when the desk cannot answer; else the current index view."""
        if self._closed:
            raise NewsdeskError("this Desk is closed")
        manifest = self.store.manifest()  # read once: embedder and generation both come from it
        self.store.check_embedder(manifest)
        if self.store.count() == 0:
            raise EmptyCollectionError(
                f"nothing is ingested in collection {self.store.name!r} yet; "
                "run `newsdesk ingest PATH...` first"
            )
        return self.index.current(int(manifest.get(GENERATION, 0)))

    def refresh(self) -> bool:
        """Pick up another process's completed ingest now (questions do this themselves)."""
        return self.index.refresh()

    # -- answers -----------------------------------------------------------------------------
    def stream(
        self,
        question: str,
        *,
        history: History = None,
        filters: Filters | None = None,
        k: int | None = None,
        extractive: bool | None = None,
        choices: Sequence[str] | None = None,
        timeline: bool | None = None,
        as_of: date | None = None,
    ) -> Iterator[Event]:
        """PassagesFound, then TextDelta/Notice events, then Final with the checked answer.
        ``as_of`` (or ``filters.as_of``; default today): nothing published after it is used,
        and "this week" is read against it. ``timeline``: evidence by date (None: when the
        question asks how something developed)."""
        lexical = self._ready()
        request = Request(
            question=question.strip(),
            history=_turns(history),
            filters=self._checked(_with_as_of(filters, as_of), lexical),
            k=k,
            extractive=extractive,
            choices=tuple(choices or ()),
            timeline=timeline,
        )
        return self.pipeline.run(request, lexical)

    def answer(
        self,
        question: str,
        *,
        history: History = None,
        filters: Filters | None = None,
        k: int | None = None,
        extractive: bool | None = None,
        choices: Sequence[str] | None = None,
        timeline: bool | None = None,
        as_of: date | None = None,
    ) -> Answer:
        events = self.stream(
            question, history=history, filters=filters, k=k, extractive=extractive,
            choices=choices, timeline=timeline, as_of=as_of,
        )  # fmt: skip
        for event in events:
            if isinstance(event, Final):
                return event.answer
        raise AssertionError("the answer pipeline ended without a final answer")

    async def aanswer(self, question: str, **options: Any) -> Answer:
        """``answer`` in a worker thread (the work is CPU-bound or blocking I/O)."""
        return await asyncio.to_thread(lambda: self.answer(question, **options))

    async def astream(self, question: str, **options: Any) -> AsyncIterator[Event]:
        """``stream`` produced in a worker thread; stopping early stops the producer."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        done = object()

        def produce() -> None:
            try:
                for event in self.stream(question, **options):
                    loop.call_soon_threadsafe(queue.put_nowait, event)
                    if stop.is_set():
                        break
            except BaseException as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, done)

        worker = loop.run_in_executor(None, produce)
        try:
            while (item := await queue.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            await worker

    # -- search, stats, sources --------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        filters: Filters | None = None,
        k: int | None = None,
        as_of: date | None = None,
        resolve_dates: bool = True,
    ) -> list[Passage]:
        """Passages for ``query``: as of ``as_of`` (default today), within the window its
        words name ("this week"), like an answer's (``resolve_dates=False``: the filters as
        given, e.g. an answer's own window)."""
        lexical = self._ready()
        filters = self._checked(filters, lexical)
        if not resolve_dates:
            filters = _with_as_of(filters, as_of) or Filters()
            scoped = filters.model_copy(update={"as_of": filters.as_of or date.today()})
            return self.search_engine.retrieve(query, scoped, k, lexical).passages
        scoped, _ = when.apply(
            query,
            _with_as_of(filters, as_of),
            date.today(),
            lambda f: self.search_engine.holds(f, lexical),
        )
        return self.search_engine.retrieve(query, scoped, k, lexical).passages

    def _checked(self, filters: Filters | None, lexical: LexicalIndex) -> Filters | None:
        """Filters as stored: the source's own spelling (matched case-insensitively). An
        unknown source or a range that ends before it starts is a ``UsageError``."""
        if filters is None:
            return None
        if filters.since and filters.until and filters.since > filters.until:
            raise UsageError(
                f"since {filters.since} is after until {filters.until}: no article can match"
            )
        if filters.source:
            known = lexical.known_sources
            wanted = filters.source.strip().casefold()
            match = next((s for s in known if s.casefold() == wanted), None)
            if match is None:
                shown = ", ".join(known[:20]) + (" …" if len(known) > 20 else "")
                raise UsageError(
                    f"no articles from source {filters.source!r}; sources: {shown or 'none'}"
                )
            if match != filters.source:
                filters = filters.model_copy(update={"source": match})
        return filters

    @property
    def retriever(self) -> HybridRetriever:
        """The hybrid retrieval as a LangChain ``BaseRetriever`` (composes into LCEL)."""
        return HybridRetriever(search=self.search_engine, k=self.settings.k)

    def passage_context(self, passage: Passage) -> PassageContext:
        """``passage`` with the text just before and after it in its article."""
        if self._closed:
            raise NewsdeskError("this Desk is closed")
        stored = self.store.get_chunks([passage.chunk_id])
        own = stored.get(passage.chunk_id)
        if own is None:  # re-ingested or removed since it was retrieved
            return PassageContext(passage=passage)
        meta = own.meta
        near = self.store.get_chunks(
            [chunk_id(meta.doc_id, meta.chunk_index + d) for d in (-1, 1)
             if 0 <= meta.chunk_index + d < meta.n_chunks]
        )  # fmt: skip
        before = after = ""
        prev = near.get(chunk_id(meta.doc_id, meta.chunk_index - 1))
        if prev is not None:
            p = ChunkMeta.from_chroma(prev.metadata)
            before = prev.text[: max(0, meta.start - p.start)]
        nxt = near.get(chunk_id(meta.doc_id, meta.chunk_index + 1))
        if nxt is not None:
            n = ChunkMeta.from_chroma(nxt.metadata)
            after = nxt.text[max(0, meta.end - n.start) :]
        return PassageContext(passage=passage, before=before, after=after, path=meta.path)

    def stats(self) -> Stats:
        manifest = self.store.manifest()
        chunks = self.store.count()
        documents = stories = 0
        if chunks:
            generation = int(manifest.get(GENERATION, 0))
            current = self.index.current(generation)
            documents = current.documents()
            stories = current.stories
        return Stats(
            documents=documents,
            chunks=chunks,
            collection=self.store.name,
            embedder=str(manifest.get("embedder", self.store.embedder_id)),
            chunker=str(manifest.get("chunker", "")),
            store=self.settings.describe_store(),
            llm=self.settings.llm_model if self.settings.llm_configured else None,
            generation=int(manifest.get("generation", 0)),
            stories=stories,
        )

    def sources(self) -> list[SourceInfo]:
        """Outlets with their article counts and date ranges, most articles first."""
        self._ready()
        lexical = self.index.current()
        out = [
            SourceInfo(
                source=span.source,
                articles=span.articles,
                first_published=_day(span.first_ts),
                last_published=_day(span.last_ts),
            )
            for span in lexical.source_spans
        ]
        return sorted(out, key=lambda s: (-s.articles, s.source))
