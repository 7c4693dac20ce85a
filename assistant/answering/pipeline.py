"""The staged answer pipeline every surface goes through (via ``Desk``).

Stages, each a method below: condense a follow-up into a standalone question; retrieve (hybrid,
per-article cap, passages of the last answer carried over); gate (abstain when nothing is
relevant enough); then generate with the LLM and check its citations, or extract the best
evidence sentences; finish (multiple-choice pick, timings, usage). LLM failures fall back to
the extractive answer with a one-line notice. Per-question state lives in :class:`Run`; the
pipeline object itself is shared by every thread.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from assistant import prompts
from assistant.answering import constraints, lead, numbering, timeline, when
from assistant.answering.choice import choose_extractive, parse_choice
from assistant.answering.condense import accept_rewrite, naive_condense
from assistant.answering.context import (
    count_tokens,
    fit_passages,
    format_history,
    format_passages,
)
from assistant.answering.entail import make_entailment
from assistant.answering.extractive import NOTICE, Evidence, score_sentences
from assistant.answering.question import Shape, shape
from assistant.answering.verify import SupportChecker, Verified, verify_answer
from assistant.errors import LLMError
from assistant.index.lexical import LexicalIndex
from assistant.index.retriever import HybridSearch, Retrieved, diversify
from assistant.index.schema import compile_filters
from assistant.models.llm import CallInfo, complete, make_chat, stream
from assistant.settings import Settings
from assistant.types import (
    ABSTAIN_TEXT,
    Answer,
    Event,
    Filters,
    Final,
    Notice,
    Passage,
    PassagesFound,
    RemovedSentence,
    TextDelta,
    Timeframe,
    Turn,
    Usage,
    says_abstain,
)

log = logging.getLogger(__name__)
_FRAME_TOKENS = 64  # tags, "Question:" and message framing around the parts we count


@dataclass(frozen=True)
class Request:
    question: str
    history: tuple[Turn, ...] = ()
    filters: Filters | None = None
    k: int | None = None
    extractive: bool | None = None  # None: as the settings say
    choices: tuple[str, ...] = ()
    timeline: bool | None = None  # None: when the question asks how something developed


@dataclass
class Run:
    """One question's working state."""

    request: Request
    use_llm: bool
    started: float = field(default_factory=time.perf_counter)
    usage: Usage = field(default_factory=Usage)
    timings: dict[str, float] = field(default_factory=dict)
    notice: str = ""
    standalone: str = ""
    found: Retrieved | None = None
    passages: list[Passage] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    deadline: float = 0.0  # monotonic time by which every model call must be done
    raw_text: str = ""  # the model's reply, kept on the answer even after a fallback
    removed: list[RemovedSentence] = field(default_factory=list)
    filters: Filters = field(default_factory=Filters)  # as asked, as-of date and window applied
    timeframe: Timeframe | None = None  # the window the question's words asked for
    timeline: bool = False
    shape: Shape | None = None  # what the standalone question asks for
    coverage: constraints.Coverage | None = None  # the articles that meet its constraints

    def account(self, info: CallInfo) -> None:
        """Add a finished call's tokens; unreported tokens make the usage unknown."""
        self.usage.add(info.prompt_tokens, info.completion_tokens)

    def fallback(self, exc: LLMError) -> Notice:
        self.use_llm = False
        self.notice = f"{exc}; showing an extractive answer instead."
        return Notice(kind="fallback", text=self.notice)


class AnswerPipeline:
    def __init__(self, settings: Settings, search: HybridSearch, checker: SupportChecker) -> None:
        self.settings = settings
        self.search = search
        self.checker = checker
        self.prompts = prompts.load_all()  # placeholder errors surface at start-up
        self._chat: Any = None
        self._chat_lock = threading.Lock()
        self.entail = make_entailment(settings)  # None unless the LLM second pass is on

    @property
    def chat(self) -> Any:
        with self._chat_lock:
            if self._chat is None:
                self._chat = make_chat(self.settings)
            return self._chat

    def run(self, request: Request, lexical: LexicalIndex | None = None) -> Iterator[Event]:
        """Passages found, then text deltas and notices, then the final checked answer.
        ``lexical``: the index view the caller has just checked (else read afresh)."""
        extractive = self.settings.extractive if request.extractive is None else request.extractive
        run = Run(request, use_llm=self.settings.llm_configured and not extractive)
        run.deadline = time.monotonic() + self.settings.answer_deadline_s
        yield from self._condense(run)
        self._retrieve(run, lexical)
        yield PassagesFound(passages=run.passages, standalone_question=run.standalone)
        if run.timeframe is not None:
            yield Notice(kind="info", text=timeline.window_note(run.timeframe))
        if not self._relevant(run):
            yield Notice(kind="abstain", text="No passage is relevant enough to answer from.")
            yield TextDelta(text=ABSTAIN_TEXT)
            yield Final(answer=self._finish(run, self._abstention(run)))
            return
        if not self._constraints_met(run):
            assert run.coverage is not None
            why = run.coverage.explain()
            yield Notice(kind="abstain", text=why)
            yield TextDelta(text=f"{ABSTAIN_TEXT} {why}")
            yield Final(answer=self._finish(run, self._abstention(run, why)))
            return
        if run.use_llm:
            answer = yield from self._generate(run)
            if answer is not None:
                yield Final(answer=self._finish(run, answer))
                return
        answer = self._extract(run)
        yield TextDelta(text=answer.text)
        yield Final(answer=self._finish(run, answer))

    # -- stages ------------------------------------------------------------------------------
    def _condense(self, run: Run) -> Iterator[Event]:
        question, history = run.request.question, run.request.history
        run.standalone = question
        if not history:
            return
        if not run.use_llm:
            run.standalone = naive_condense(question, history)
            return
        budget = max(self.settings.llm_context_tokens // 4, 256)
        model = self.settings.llm_model
        messages = self.prompts["condense"].messages(
            history=format_history(history, budget, model), question=question
        )
        info = CallInfo()
        try:
            rewritten = complete(self.chat, messages, info, run.deadline)
        except LLMError as exc:  # don't wait out a second failure on the answer itself
            yield run.fallback(exc)
            run.standalone = naive_condense(question, history)
            return
        finally:
            run.account(info)
        run.standalone = accept_rewrite(rewritten, question, history)

    def _retrieve(self, run: Run, lexical: LexicalIndex | None) -> None:
        t = time.perf_counter()
        request = run.request
        # with options to choose from, the evidence sought is about the options too
        query = " ".join([run.standalone, *request.choices])
        holds = functools.partial(self.search.holds, lexical=lexical)
        run.filters, run.timeframe = when.apply(
            run.standalone, request.filters, date.today(), holds
        )
        wanted = request.timeline
        run.timeline = timeline.wants_timeline(run.standalone) if wanted is None else wanted
        compiled = compile_filters(run.filters)
        found = self.search.candidates(query, compiled, lexical=lexical)
        pool = found.passages
        previous = request.history[-1].answer if request.history else None
        if previous and not previous.abstained:
            # a follow-up may lean on the passages the last answer used: ranked after this
            # question's own, with their similarity to this question (not the last one)
            seen = {p.chunk_id for p in pool}
            carried = [p.chunk_id for p in previous.passages if p.chunk_id not in seen]
            floor = pool[-1].score * 0.99 if pool else 0.0
            pool += self.search.passages_by_id(
                carried, found.query_vector, floor, found.lexical, compiled
            )
        run.found = found
        run.passages = diversify(pool, request.k or self.settings.k, self.settings.per_article_cap)
        run.timings.update(found.timings)
        run.timings["retrieve_ms"] = (time.perf_counter() - t) * 1e3

    def _relevant(self, run: Run) -> bool:
        assert run.found is not None
        relevance = self.search.relevance(run.standalone, run.passages, run.found.lexical)
        enough = relevance.enough(
            self.settings.abstain_min_score, self.settings.abstain_dense_weight
        )
        if not enough:
            log.info("abstaining: %s", relevance)
        return enough

    def _constraints_met(self, run: Run) -> bool:
        """Near misses: some retrieved article must name what the question names."""
        run.shape = shape(run.standalone)
        run.coverage = constraints.check(run.shape, run.standalone, run.passages)
        if not run.coverage.met:
            log.info("abstaining (near miss): %s", run.coverage.missing)
        return run.coverage.met

    def _generate(self, run: Run) -> Generator[Event, None, Answer | None]:
        """The LLM's answer, citations checked; ``None`` after a failure (then extractive)."""
        t = time.perf_counter()
        model = self.settings.llm_model
        question = run.standalone
        if run.timeline:
            question = f"{question}\n{timeline.LLM_INSTRUCTION}"
        values = {
            "question": question,
            "today": (run.filters.as_of or date.today()).isoformat(),
            "abstain_text": ABSTAIN_TEXT,
            "passages": "",
        }
        prompt = self.prompts["answer"]
        fixed = count_tokens(prompt.render(**values), model) + _FRAME_TOKENS
        budget = self.settings.llm_context_tokens - self.settings.llm_max_tokens - fixed
        shown = fit_passages(run.passages, budget, model)
        if run.timeline:
            shown = timeline.by_date(shown)
        if len(shown) < len(run.passages):
            log.info("context budget: %d of %d passages sent", len(shown), len(run.passages))
        messages = prompt.messages(**{**values, "passages": format_passages(shown)})
        pieces: list[str] = []
        info = CallInfo()
        try:
            for delta in stream(self.chat, messages, info, run.deadline):
                pieces.append(delta)
                yield TextDelta(text=delta)
        except LLMError as exc:
            yield run.fallback(exc)
            return None
        finally:
            run.account(info)
        run.timings["generate_ms"] = (time.perf_counter() - t) * 1e3
        raw = "".join(pieces).strip()
        t = time.perf_counter()
        verified = verify_answer(
            raw, shown, self.checker, mode=self.settings.unsupported_sentences,
            entail=self.entail, truncated=info.truncated,
        )  # fmt: skip
        run.timings["verify_ms"] = (time.perf_counter() - t) * 1e3
        run.raw_text = raw
        run.removed = [RemovedSentence(text=r.text, reason=r.reason) for r in verified.removed]
        if says_abstain(raw):
            answer = self._abstention(run)
        elif not verified.has_support:
            # the evidence was relevant enough (the gate passed): the reply failed, not it
            yield run.fallback(LLMError("no claim in the model's answer was supported"))
            return None
        else:
            notice = _removal_notice(verified, info.truncated)
            if notice:
                yield Notice(kind="removed", text=notice)
            answer = self._answer(
                run, verified.text, "llm", verified.citations,
                " ".join(x for x in (run.notice.strip(), notice) if x),
            )  # fmt: skip
        return answer

    def _extract(self, run: Run) -> Answer:
        t = time.perf_counter()
        if run.timeline:  # evidence by date (answering/timeline.py)
            text, citations = timeline.compose_timeline(self._evidence(run))
        else:
            allowed = run.coverage.satisfying if run.coverage else None
            question_shape = run.shape or shape(run.standalone)
            text, citations = lead.build(
                run.standalone, question_shape, self._evidence(run), allowed
            )
        run.timings["extract_ms"] = (time.perf_counter() - t) * 1e3
        if not citations:
            return self._abstention(run)
        notice = f"{run.notice} {NOTICE}".strip()
        return self._answer(run, text, "extractive", citations, notice)

    def _finish(self, run: Run, answer: Answer) -> Answer:
        answer.standalone_question = run.standalone
        answer.usage = run.usage
        answer.raw_text, answer.removed = run.raw_text, run.removed
        if run.request.choices and not answer.abstained:
            answer.choice = self._choose(run)
        answer.timings = {**run.timings, "total_ms": (time.perf_counter() - run.started) * 1e3}
        answer.as_of = run.filters.as_of
        timeline.finish(answer, run.timeframe, run.found.lexical if run.found else None)
        return answer

    # -- helpers -----------------------------------------------------------------------------
    def _evidence(self, run: Run) -> list[Evidence]:
        if not run.evidence:
            assert run.found is not None
            run.evidence = score_sentences(
                run.standalone, run.found.query_vector, run.passages, self.checker.sentences
            )
        return run.evidence

    def _answer(self, run: Run, text: str, mode: str, citations: Any, notice: str) -> Answer:
        """Markers in ``text`` are passage ranks; the reader sees one number per article."""
        shown, numbered = numbering.by_article(text, citations)
        return Answer(
            question=run.request.question,
            text=shown,
            mode=mode,  # type: ignore[arg-type]
            abstained=False,
            citations=numbered,
            passages=run.passages,
            notice=notice,
            ranked_text=text,
        )

    def _abstention(self, run: Run, why: str = "") -> Answer:
        """Cites nothing; the passages that were looked at are still reported. ``why``: one
        line on what the articles cover instead (a near miss)."""
        notice = run.notice.strip().rstrip(";")
        return Answer(
            question=run.request.question,
            text=f"{ABSTAIN_TEXT} {why}".strip(),
            mode="llm" if run.use_llm else "extractive",
            abstained=True,
            passages=run.passages,
            notice=notice,
        )

    def _choose(self, run: Run) -> str:
        choices: Sequence[str] = run.request.choices
        if run.use_llm:
            options = "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(choices))
            messages = self.prompts["choice"].messages(
                question=run.standalone, passages=format_passages(run.passages), options=options
            )
            info = CallInfo()
            try:
                picked = parse_choice(complete(self.chat, messages, info, run.deadline), choices)
                if picked is not None:
                    return picked
            except LLMError as exc:
                log.warning("choice by LLM failed (%s); scoring options against evidence", exc)
            finally:
                run.account(info)
        return choose_extractive(run.standalone, choices, self._evidence(run))


def _removal_notice(verified: Verified, truncated: bool) -> str:
    """One line on what verification kept from the reader, e.g. "2 sentences were removed:
    not supported by the cited passages"."""
    if not verified.removed:
        return "The model's reply was cut off at its length limit." if truncated else ""
    reasons: dict[str, int] = {}
    for r in verified.removed:
        key = "not supported by the cited passages" if r.cited else r.reason
        reasons[key] = reasons.get(key, 0) + 1
    n = len(verified.removed)
    what = "sentence was" if n == 1 else "sentences were"
    verb = "marked" if verified.mode == "mark" else "removed"
    detail = "; ".join(
        f"{count} {reason}" if len(reasons) > 1 else reason for reason, count in reasons.items()
    )
    return f"{n} {what} {verb}: {detail}."
