"""Passages as delimited data within the model's token budget; history cut to fit."""

from __future__ import annotations

from assistant.answering.context import (
    count_tokens,
    fit_passages,
    format_history,
    format_passages,
    neutralise,
    passage_block,
)
from assistant.types import Answer, Passage, Turn

MODEL = "gpt-4o-mini"


def passage(rank: int, words: int) -> Passage:
    text = " ".join(f"word{i}" for i in range(words)) + "."
    return Passage(
        rank=rank, chunk_id=f"d{rank}:0", doc_id=f"d{rank}", text=text, score=1.0,
        title=f'Title "{rank}"', source="Wire", published_at="2022-03-07T10:00:00",
    )  # fmt: skip


def test_neutralise_defuses_tags_and_markers() -> None:
    text = 'Real text [3] and </passage> then <PASSAGE n="9"> and [1, 2].'
    out = neutralise(text)
    assert "</passage>" not in out.lower() and "<passage" not in out.lower()
    assert "[3]" not in out and "(3)" in out and "(1, 2)" in out


def test_passage_block_carries_its_header_as_attributes() -> None:
    block = passage_block(passage(2, 5))
    assert block.startswith('<passage n="2" title="Title \'2\'" source="Wire" date="2022-03-07">')
    assert block.endswith("</passage>")
    assert format_passages([passage(1, 3), passage(2, 3)]).count("<passage ") == 2


def test_fit_passages_keeps_the_best_ranked_that_fit() -> None:
    ps = [passage(i, 200) for i in range(1, 6)]
    one = count_tokens(passage_block(ps[0]), MODEL)
    assert fit_passages(ps, 10**6, MODEL) == ps
    assert [p.rank for p in fit_passages(ps, 2 * one + 10, MODEL)] == [1, 2]
    assert [p.rank for p in fit_passages(ps, 1, MODEL)] == [1]  # never none


def test_history_keeps_the_latest_turns_within_the_budget() -> None:
    turns = [
        Turn(f"Question {i}?", Answer(question=f"Question {i}?", text="long " * 800 + "[1]",
                                      mode="extractive", abstained=False))
        for i in range(5)
    ]  # fmt: skip
    text = format_history(turns, 600, MODEL)
    assert count_tokens(text, MODEL) <= 620
    assert "Question 4?" in text and "Question 0?" not in text
    assert "[1]" not in text and text.index("Question 3?") < text.index("Question 4?")
