"""``verify_answer``: every sentence of a reply kept, removed or flagged, with the reason."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from assistant.answering.verify import (
    CUT_OFF,
    FLAG,
    NO_CITATION,
    SupportChecker,
    verify_answer,
)
from assistant.models.embeddings import MiniLMEmbeddings
from assistant.types import ABSTAIN_TEXT, Passage

FERRY = (
    "Harbor commissioner Lena Ostrova said the new ferry terminal would open in May. "
    "“The pier is rock solid and ready for traffic,” Ostrova told reporters on Tuesday."
)
BUDGET = (
    "The city council approved the harbor budget of 4.2 million crowns on Monday. "
    "Councillor Mara Lind voted against the plan."
)
STOCK = "Shares of the streaming company Lumo fell 8% on Friday after it lost subscribers."


def passages(*texts: str) -> list[Passage]:
    return [
        Passage(rank=i, chunk_id=f"doc{i}:0", doc_id=f"doc{i}", text=t, score=1.0)
        for i, t in enumerate(texts, start=1)
    ]


@pytest.fixture(scope="module")
def checker(embedder: MiniLMEmbeddings) -> SupportChecker:
    return SupportChecker(embedder)


def test_each_kind_of_sentence(checker: SupportChecker) -> None:
    reply = (
        "Here is what the articles report:\n\n"
        "The new ferry terminal will open in May, according to Lena Ostrova [1]. "
        "The council approved the harbor budget on Monday [2][7]. "
        "Mara Lind voted in favor of the harbor budget [2]. "
        "Lumo shares fell 8% on Friday because Elon Musk bought the company last week [3]. "
        "The terminal cost 90 million crowns to build."
    )
    result = verify_answer(reply, passages(FERRY, BUDGET, STOCK), checker)

    assert result.text == (
        "Here is what the articles report:\n\n"
        "The new ferry terminal will open in May, according to Lena Ostrova [1]. "
        "The council approved the harbor budget on Monday [2]."
    )
    assert result.dropped_markers == 1  # [7]: there are three passages
    assert [s.kind for s in result.sentences] == [
        "connective", "supported", "supported", "unsupported", "unsupported", "uncited",
    ]  # fmt: skip
    assert [(r.reason, r.cited) for r in result.removed] == [
        ("not supported by the cited passage [2]", [2]),
        ("not supported by the cited passage [3]", [3]),
        (NO_CITATION, []),
    ]
    assert result.removed[0].text.startswith("Mara Lind voted in favor")
    assert "another vote" in result.removed[0].detail
    assert "Musk" in result.removed[1].detail
    assert result.supported_kept == 2 and result.has_support
    # one citation per passage the delivered text cites, all supported, quotes verbatim
    assert [(c.n, c.supported) for c in result.citations] == [(1, True), (2, True)]
    for c in result.citations:
        assert c.quote in c.passage.text


def test_mark_mode_keeps_and_flags_failing_sentences(checker: SupportChecker) -> None:
    reply = (
        "The council approved the harbor budget on Monday [2]. "
        "Mara Lind voted in favor of the harbor budget [2]. "
        "The terminal cost 90 million crowns to build."
    )
    result = verify_answer(reply, passages(FERRY, BUDGET), checker, mode="mark")

    assert result.text == (
        "The council approved the harbor budget on Monday [2]. "
        f"Mara Lind voted in favor of the harbor budget [2].{FLAG} "
        f"The terminal cost 90 million crowns to build.{FLAG}"
    )
    assert len(result.removed) == 2 and result.mode == "mark"
    # [2] backs one supported and one unsupported delivered sentence
    assert [(c.n, c.supported) for c in result.citations] == [(2, False)]


def test_removed_bullets_leave_no_empty_lines(checker: SupportChecker) -> None:
    reply = (
        "Key points:\n\n"
        "- Ostrova said the pier was “rock solid and ready for traffic” [1].\n"
        "- Ostrova said the pier was no longer rock solid [1].\n"
        "- The council approved the harbor budget on Monday [2].\n"
    )
    result = verify_answer(reply, passages(FERRY, BUDGET), checker)
    assert result.text == (
        "Key points:\n\n"
        "- Ostrova said the pier was “rock solid and ready for traffic” [1].\n"
        "- The council approved the harbor budget on Monday [2]."
    )
    assert [r.reason for r in result.removed] == ["not supported by the cited passage [1]"]


def test_markers_of_passages_that_do_not_support_a_kept_sentence_are_dropped(
    checker: SupportChecker,
) -> None:
    reply = "The council approved the harbor budget on Monday [1][2]."
    result = verify_answer(reply, passages(FERRY, BUDGET), checker)
    assert result.text == "The council approved the harbor budget on Monday [2]."
    assert [c.n for c in result.citations] == [2]


def test_a_sentence_joining_two_cited_passages_is_supported_by_both(
    checker: SupportChecker,
) -> None:
    reply = (
        "The council approved the 4.2 million crown harbor budget on Monday, and Lumo shares "
        "fell 8% on Friday [1][2]."
    )
    result = verify_answer(reply, passages(BUDGET, STOCK), checker)
    assert result.removed == []
    assert result.sentences[0].supported_by == [1, 2]
    assert result.text == reply


def test_reply_without_markers_loses_every_factual_sentence(checker: SupportChecker) -> None:
    reply = "Sure. The council approved the harbor budget on Monday. Mara Lind voted against it."
    result = verify_answer(reply, passages(BUDGET), checker)
    assert result.text == "Sure."
    assert [r.reason for r in result.removed] == [NO_CITATION, NO_CITATION]
    assert not result.has_support and result.citations == []


def test_abstention_sentence_is_kept_as_is(checker: SupportChecker) -> None:
    result = verify_answer(ABSTAIN_TEXT, passages(BUDGET), checker)
    assert result.text == ABSTAIN_TEXT and result.removed == []


class Entail:
    """A stand-in for the LLM second pass that answers from a fixed table and records."""

    def __init__(self, verdicts: dict[str, bool | None]) -> None:
        self.verdicts = verdicts
        self.asked: list[str] = []

    def __call__(self, premises: Sequence[str], claim: str) -> bool | None:
        self.asked.append(claim)
        return self.verdicts.get(claim)


def test_llm_second_pass_only_removes_more(checker: SupportChecker) -> None:
    kept = "The council approved the harbor budget on Monday"
    doubted = "Mara Lind voted against the plan"
    reply = f"{kept} [1]. {doubted} [1]. Mara Lind voted in favor of the harbor budget [1]."
    entail = Entail({f"{kept}.": None, f"{doubted}.": False})

    result = verify_answer(reply, passages(BUDGET), checker, entail=entail)

    # asked only about what the offline check kept; an error (None) keeps the sentence
    assert entail.asked == [f"{kept}.", f"{doubted}."]
    assert result.text == f"{kept} [1]."
    assert [r.text for r in result.removed] == [
        f"{doubted} [1].",
        "Mara Lind voted in favor of the harbor budget [1].",
    ]
    assert "LLM" in result.removed[0].detail


def test_a_reply_cut_at_the_token_budget_loses_its_unfinished_sentence(
    checker: SupportChecker,
) -> None:
    reply = "The council approved the harbor budget on Monday [2]. Councillor Mara Lind voted"
    cut = verify_answer(reply, passages(FERRY, BUDGET), checker, truncated=True)
    assert cut.text == "The council approved the harbor budget on Monday [2]."
    assert [r.reason for r in cut.removed] == [CUT_OFF]
    whole = verify_answer(reply, passages(FERRY, BUDGET), checker)
    assert [r.reason for r in whole.removed] == [NO_CITATION]
    # a reply that was cut right after a full sentence loses nothing
    done = verify_answer(reply.split(" Councillor")[0], passages(FERRY, BUDGET), checker,
                         truncated=True)  # fmt: skip
    assert done.removed == [] and done.supported_kept == 1


def test_saying_what_the_sources_leave_out_needs_no_citation(checker: SupportChecker) -> None:
    reply = (
        "The council approved the harbor budget on Monday [1]. The articles do not say whether "
        "the ferry terminal will be delayed."
    )
    result = verify_answer(reply, passages(BUDGET), checker)
    assert result.text == reply and result.removed == []
    assert [s.kind for s in result.sentences] == ["supported", "connective"]
