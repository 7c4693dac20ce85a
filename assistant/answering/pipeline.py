"""The one core call every surface uses: ``Assistant.answer`` (and its streaming form).

Flow: condense a follow-up into a standalone question, retrieve (hybrid + per-article cap),
abstain when nothing is relevant enough, then answer with the LLM (checked citations) or
extractively. LLM failures fall back to the extractive answer with a one-line notice.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from assistant import prompts
from assistant.answering.choice import choose_extractive, parse_choice
from assistant.answering.extractive import NOTICE, Evidence, compose, score_sentences, select
from assistant.answering.verify import SupportChecker, check_citations
from assistant.errors import EmptyCollectionError, LLMError
from assistant.index.retrieval import Retriever, diversify
from assistant.index.store import Store
from assistant.models.llm import complete, make_chat, stream
from assistant.settings import Settings, load_settings
from assistant.types import (
    ABSTAIN_TEXT,
    Answer,
    Filters,
    Passage,
    TextDelta,
    Turn,
    Usage,
    says_abstain,
)

log = logging.getLogger(__name__)
_FOLLOW_UP = re.compile(
    r"^(and|but|also|what about|how about|why|so)\b|\b(it|its|they|them|their|he|him|his|she|her|"
    r"that|this|those|these|there)\b",
    re.I,
)


def format_passages(passages: Sequence[Passage]) -> str:
    blocks = []
    for p in passages:
        head = " · ".join(x for x in (p.title, p.source, p.published_at[:10]) if x)
        blocks.append(f"[{p.rank}] {head}\n{p.text}")
    return "\n\n".join(blocks)


class Assistant:
    """Holds the store, retriever and model client; cheap to call many times."""

    def __init__(self, settings: Settings | None = None, store: Store | None = None) -> None:
        self.settings = settings or load_settings()
        self.prompts = prompts.load_all()  # placeholder errors surface at start-up
        self.store = store or Store(self.settings)
        self.retriever = Retriever(self.settings, self.store)
        self.checker = SupportChecker(self.store.embedder)
        self._chat: Any = None

    @property
    def chat(self) -> Any:
        if self._chat is None:
            self._chat = make_chat(self.settings)
        return self._chat

    def _require_documents(self) -> None:
        self.store.check_embedder()
        if self.store.count() == 0:
            raise EmptyCollectionError(
                f"nothing is ingested in collection {self.store.name!r} yet; "
                "run `newsdesk ingest PATH...` first"
            )

    # -- search ------------------------------------------------------------------------------
    def search(
        self, query: str, filters: Filters | None = None, k: int | None = None
    ) -> list[Passage]:
        self._require_documents()
        return self.retriever.retrieve(query, filters, k).passages

    # -- answer ------------------------------------------------------------------------------
    def answer(
        self,
        question: str,
        history: Sequence[Turn] | None = None,
        filters: Filters | None = None,
        **options: Any,
    ) -> Answer:
        final: Answer | None = None
        for event in self.answer_stream(question, history, filters, **options):
            if isinstance(event, Answer):
                final = event
        assert final is not None
        return final

    def answer_stream(
        self,
        question: str,
        history: Sequence[Turn] | None = None,
        filters: Filters | None = None,
        *,
        k: int | None = None,
        extractive: bool | None = None,
        choices: Sequence[str] | None = None,
    ) -> Iterator[TextDelta | Answer]:
        """Text deltas as they are produced, then the final checked :class:`Answer`.

        The deltas are provisional: the model's raw text, before citation checks (which may drop
        markers or turn the reply into an abstention) and before a mid-stream failure switches
        to the extractive answer. Surfaces that stream must re-render from the final Answer.
        """
        started = time.perf_counter()
        question = question.strip()
        self._require_documents()
        use_llm = self.settings.llm_configured and not (
            self.settings.extractive if extractive is None else extractive
        )
        usage = Usage()
        timings: dict[str, float] = {}
        notice = ""

        standalone = question
        if history:
            try:
                standalone = self._condense(question, history, use_llm, usage)
            except LLMError as exc:  # don't wait out a second failure on the answer itself
                notice = f"{exc}; showing an extractive answer instead."
                standalone = _naive_condense(question, history)
                use_llm = False
        t = time.perf_counter()
        # with options to choose from, the evidence sought is about the options too
        query = " ".join([standalone, *(choices or [])])
        found = self.retriever.candidates(query, filters)
        pool = found.passages
        previous = history[-1].answer if history else None
        if previous and not previous.abstained and not (filters and filters.active):
            # a follow-up may lean on the passages the last answer used: ranked after this
            # question's own, with their similarity to this question (not the last one)
            seen = {p.chunk_id for p in pool}
            carried = [p.chunk_id for p in previous.passages if p.chunk_id not in seen]
            floor = pool[-1].score * 0.99 if pool else 0.0
            pool += self.retriever.passages_by_id(carried, found.query_vector, floor)
        passages = diversify(pool, k or self.settings.k, self.settings.per_article_cap)
        timings.update(found.timings)
        timings["retrieve_ms"] = (time.perf_counter() - t) * 1e3
        relevance = self.retriever.relevance(standalone, passages)
        evidence: list[Evidence] = []

        def finish(answer: Answer) -> Answer:
            answer.standalone_question = standalone
            answer.usage = usage
            if choices:
                if not evidence:
                    evidence.extend(
                        score_sentences(
                            standalone, found.query_vector, passages, self.checker.sentences
                        )
                    )
                answer.choice = self._choose(
                    standalone, choices, passages, use_llm, usage, evidence
                )
            answer.timings = {**timings, "total_ms": (time.perf_counter() - started) * 1e3}
            return answer

        if not relevance.enough(
            self.settings.abstain_min_score, self.settings.abstain_dense_weight
        ):
            log.info("abstaining: %s", relevance)
            yield TextDelta(ABSTAIN_TEXT)
            yield finish(
                _abstention(question, "llm" if use_llm else "extractive", notice, passages)
            )
            return

        if use_llm:
            t = time.perf_counter()
            try:
                pieces: list[str] = []
                prompt = self.prompts["answer"].render(
                    question=standalone,
                    passages=format_passages(passages),
                    today=date.today().isoformat(),
                    abstain_text=ABSTAIN_TEXT,
                )
                for delta in stream(self.chat, prompt, usage):
                    pieces.append(delta)
                    yield TextDelta(delta)
                timings["generate_ms"] = (time.perf_counter() - t) * 1e3
                yield finish(self._checked(question, "".join(pieces), passages, notice, timings))
                return
            except LLMError as exc:
                notice = f"{exc}; showing an extractive answer instead."

        t = time.perf_counter()
        evidence.extend(
            score_sentences(standalone, found.query_vector, passages, self.checker.sentences)
        )
        picked = select(evidence)
        text, citations = compose(picked)
        timings["extract_ms"] = (time.perf_counter() - t) * 1e3
        if not picked:
            yield TextDelta(ABSTAIN_TEXT)
            yield finish(_abstention(question, "extractive", notice, passages))
            return
        yield TextDelta(text)
        yield finish(
            Answer(
                question=question,
                text=text,
                mode="extractive",
                abstained=False,
                citations=citations,
                passages=passages,
                notice=(notice + " " + NOTICE).strip() if notice else NOTICE,
            )
        )

    # -- helpers -----------------------------------------------------------------------------
    def _checked(
        self,
        question: str,
        raw: str,
        passages: list[Passage],
        notice: str,
        timings: dict[str, float],
    ) -> Answer:
        t = time.perf_counter()
        text, claims, citations, dropped = check_citations(raw.strip(), passages, self.checker)
        timings["verify_ms"] = (time.perf_counter() - t) * 1e3
        if dropped:
            log.info("removed %d citation(s) to passages that do not exist", dropped)
        said_abstain = says_abstain(raw)
        if said_abstain or not any(c.supported for c in claims):
            reason = "" if said_abstain else "no claim in the model's answer was supported; "
            return _abstention(question, "llm", notice + reason, passages)
        return Answer(
            question=question,
            text=text,
            mode="llm",
            abstained=False,
            citations=citations,
            passages=passages,
            notice=notice.strip(),
        )

    def _condense(self, question: str, history: Sequence[Turn], use_llm: bool, usage: Usage) -> str:
        if not use_llm:
            return _naive_condense(question, history)
        lines = []
        for turn in history[-3:]:
            lines.append(f"User: {turn.question}")
            lines.append(f"Assistant: {turn.answer.text[:600]}")
        prompt = self.prompts["condense"].render(history="\n".join(lines), question=question)
        rewritten = complete(self.chat, prompt, usage)
        return rewritten.splitlines()[0].strip() if rewritten else question

    def _choose(
        self,
        question: str,
        choices: Sequence[str],
        passages: list[Passage],
        use_llm: bool,
        usage: Usage,
        evidence: list[Evidence],
    ) -> str:
        if use_llm:
            options = "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(choices))
            prompt = self.prompts["choice"].render(
                question=question, passages=format_passages(passages), options=options
            )
            try:
                picked = parse_choice(complete(self.chat, prompt, usage), choices)
                if picked is not None:
                    return picked
            except LLMError as exc:
                log.warning("choice by LLM failed (%s); scoring options against evidence", exc)
        return choose_extractive(question, choices, evidence)


def _naive_condense(question: str, history: Sequence[Turn]) -> str:
    """Without a model: prefix an elliptical follow-up with the previous standalone question."""
    last = history[-1]
    previous = last.answer.standalone_question or last.question
    if len(question.split()) <= 6 or _FOLLOW_UP.search(question):
        return f"{previous} {question}"
    return question


def _abstention(question: str, mode: str, notice: str, passages: list[Passage]) -> Answer:
    """Cites nothing; the passages that were looked at are still reported."""
    return Answer(
        question=question,
        text=ABSTAIN_TEXT,
        mode=mode,  # type: ignore[arg-type]
        abstained=True,
        passages=passages,
        notice=notice.strip().rstrip(";"),
    )
