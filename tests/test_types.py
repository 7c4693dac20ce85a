"""Answers, turns and conversations survive JSON: the full model and the ``ask --json`` form."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.types import (
    Answer,
    Citation,
    Conversation,
    Event,
    Final,
    Notice,
    Passage,
    PassagesFound,
    RemovedSentence,
    TextDelta,
    Usage,
)

text = st.text(min_size=0, max_size=80)
floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def passages(draw: st.DrawFn) -> list[Passage]:
    n = draw(st.integers(min_value=0, max_value=5))
    return [
        Passage(
            rank=i + 1,
            chunk_id=f"{draw(st.text(min_size=1, max_size=12))}:{i}",
            doc_id=draw(st.text(min_size=1, max_size=12)),
            text=draw(text),
            score=round(draw(floats), 6),
            title=draw(text),
            source=draw(text),
            url=draw(text),
            published_at=draw(st.sampled_from(["", "2022-03-07", "2022-03-07T10:00:00+00:00"])),
            start=draw(st.integers(0, 10_000)),
            end=draw(st.integers(0, 10_000)),
            dense=draw(floats),
            lexical=draw(floats),
        )
        for i in range(n)
    ]


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    ps = draw(passages())
    cited = draw(st.lists(st.sampled_from(ps), unique_by=lambda p: p.chunk_id)) if ps else []
    abstained = draw(st.booleans())
    unknown = draw(st.booleans())
    return Answer(
        question=draw(st.text(min_size=1, max_size=60)),
        text=draw(text),
        mode=draw(st.sampled_from(["llm", "extractive"])),
        abstained=abstained,
        citations=[
            Citation(n=p.rank, passage=p, quote=draw(text), supported=draw(st.booleans()))
            for p in cited
        ],
        passages=ps,
        timings={k: round(draw(floats), 1) for k in draw(st.lists(text, max_size=3))},
        usage=Usage(prompt_tokens=None, completion_tokens=None)
        if unknown
        else Usage(prompt_tokens=draw(st.integers(0, 10**6)), completion_tokens=3),
        notice=draw(text),
        standalone_question=draw(text),
        choice=None if abstained else draw(st.none() | text),
        raw_text=draw(text),
        removed=[RemovedSentence(text=t, reason="no citation for a factual claim")
                 for t in draw(st.lists(text, max_size=2))],
    )  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(answers())
def test_answer_round_trips_through_json(answer: Answer) -> None:
    assert Answer.model_validate_json(answer.model_dump_json()) == answer


@settings(max_examples=150, deadline=None)
@given(answers())
def test_contract_json_reads_back_to_the_same_contract(answer: Answer) -> None:
    contract = json.loads(json.dumps(answer.as_json()))
    again = Answer.from_contract(contract)
    assert again.as_json() == contract
    assert [c.passage.chunk_id for c in again.citations] == [
        c["chunk_id"] for c in contract["citations"]
    ]


@settings(max_examples=50, deadline=None)
@given(st.lists(answers(), max_size=4))
def test_conversation_round_trips_with_its_turns(items: list[Answer]) -> None:
    conversation = Conversation()
    for a in items:
        conversation.add(a)
    again = Conversation.model_validate_json(conversation.model_dump_json())
    assert again == conversation
    assert [t.answer for t in again.turns] == items


@settings(max_examples=50, deadline=None)
@given(answers(), passages(), text)
def test_stream_events_round_trip_by_their_type(answer: Answer, ps: list[Passage], t: str) -> None:
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Event] = TypeAdapter(Event)
    for event in (
        PassagesFound(passages=ps),
        TextDelta(text=t),
        Notice(kind="fallback", text=t),
        Final(answer=answer),
    ):
        assert adapter.validate_json(adapter.dump_json(event)) == event
