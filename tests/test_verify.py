"""Unit tests of citation checking: marker clean-up, claim splitting, support verdicts."""

from __future__ import annotations

import pytest

from assistant.answering.verify import (
    SEMANTIC_MIN,
    SupportChecker,
    check_citations,
    clean_markers,
    split_claims,
    strip_markers,
)
from assistant.models.embeddings import MiniLMEmbeddings
from assistant.types import Passage

WANG = (
    "Chinese Foreign Minister Wang Yi held his annual press conference in Beijing on March 7, "
    "2022. He said China was willing to work with the international community to carry out "
    "mediation when needed. Qin Gang later wrote that more than 6,000 Chinese citizens were in "
    "Ukraine."
)
OLYMPICS = (
    "Norway finished at the top of the medal table at the Beijing Winter Olympics, winning 16 "
    "gold medals. Germany was second with 12 golds."
)


def passage(rank: int, text: str) -> Passage:
    return Passage(rank=rank, chunk_id=f"doc{rank}:0", doc_id=f"doc{rank}", text=text, score=1.0)


@pytest.fixture
def checker(embedder: MiniLMEmbeddings) -> SupportChecker:
    return SupportChecker(embedder)


# -- markers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cleaned", "dropped"),
    [
        ("China will mediate [1].", "China will mediate [1].", 0),
        ("China will mediate [1, 3].", "China will mediate [1][3].", 0),
        ("China will mediate [2-3].", "China will mediate [2][3].", 0),
        ("China will mediate [2–3].", "China will mediate [2][3].", 0),  # en dash
        ("China will mediate [1][3].", "China will mediate [1][3].", 0),
        ("China will mediate [9].", "China will mediate.", 1),
        ("China will mediate [1, 9].", "China will mediate [1].", 1),
        ("China will mediate [0].", "China will mediate.", 1),
        ("China will mediate [5-8].", "China will mediate [5][6].", 2),
        pytest.param(
            "China will mediate [1, 1].",
            "China will mediate [1].",
            0,
        ),
        ("A [1]. B [7]. C [2; 6].", "A [1]. B. C [2][6].", 1),
        ("No markers at all.", "No markers at all.", 0),
    ],
)
def test_clean_markers(text: str, cleaned: str, dropped: int) -> None:
    assert clean_markers(text, 6) == (cleaned, dropped)


def test_strip_markers() -> None:
    assert strip_markers("China will mediate [1][2]. It said so [3, 4].") == (
        "China will mediate. It said so."
    )


def test_split_claims_with_markers_before_the_full_stop() -> None:
    claims = split_claims("China will mediate [1]. It said so [2, 3]. Nothing cited here.")
    assert [(c.text, c.cited) for c in claims] == [
        ("China will mediate.", [1]),
        ("It said so.", [2, 3]),
        ("Nothing cited here.", []),
    ]
    assert not any(c.supported for c in claims)


def test_split_claims_with_markers_after_the_full_stop() -> None:
    claims = split_claims("China will mediate. [1] It said so. [2]")
    assert [(c.text, c.cited) for c in claims] == [
        ("China will mediate.", [1]),
        ("It said so.", [2]),
    ]


# -- support ----------------------------------------------------------------------------------


def test_copied_sentence_is_supported(checker: SupportChecker) -> None:
    claim = (
        "Chinese Foreign Minister Wang Yi held his annual press conference in Beijing on "
        "March 7, 2022."
    )
    support = checker.check(claim, passage(1, WANG))
    assert support.supported and support.numbers_ok
    assert support.semantic >= SEMANTIC_MIN
    assert support.quote == claim
    assert support.quote in WANG


def test_date_not_in_passage_is_unsupported_despite_overlap(checker: SupportChecker) -> None:
    claim = (
        "Chinese Foreign Minister Wang Yi held his annual press conference in Beijing on "
        "March 9, 2022."
    )
    support = checker.check(claim, passage(1, WANG))
    # the words and the meaning match ...
    assert support.semantic >= SEMANTIC_MIN
    assert support.lexical >= 0.6
    # ... but the date does not, so it is not supported
    assert not support.numbers_ok
    assert not support.supported


def test_numbers_are_compared_normalised(checker: SupportChecker) -> None:
    good = checker.check("More than 6000 Chinese citizens were in Ukraine.", passage(1, WANG))
    bad = checker.check("More than 8,000 Chinese citizens were in Ukraine.", passage(1, WANG))
    assert good.supported and good.numbers_ok
    assert not bad.supported and not bad.numbers_ok


def test_unrelated_claim_is_unsupported(checker: SupportChecker) -> None:
    support = checker.check("Norway topped the Winter Olympics medal table.", passage(1, WANG))
    assert support.numbers_ok
    assert not support.supported


def test_paraphrase_is_supported(checker: SupportChecker) -> None:
    support = checker.check(
        "Wang Yi said China was willing to help mediate with the international community.",
        passage(1, WANG),
    )
    assert support.supported


# -- check_citations --------------------------------------------------------------------------


def test_check_citations_end_to_end(checker: SupportChecker) -> None:
    passages = [passage(1, WANG), passage(2, OLYMPICS)]
    text = (
        "Wang Yi said China was willing to carry out mediation when needed [1]. "
        "Norway won 16 gold medals at the Beijing Winter Olympics [2][7]. "
        "Germany won 14 golds [2]. "
        "China will send troops [4]."
    )
    cleaned, claims, citations, dropped = check_citations(text, passages, checker)

    assert dropped == 2
    assert "[7]" not in cleaned and "[4]" not in cleaned
    assert [(c.cited, c.supported) for c in claims] == [
        ([1], True),
        ([2], True),
        ([2], False),  # 14 is not in the passage
        ([], False),  # its only marker pointed at no passage
    ]
    # one citation per cited passage; [2] backs one supported and one unsupported claim
    assert [(c.n, c.supported) for c in citations] == [(1, True), (2, False)]
    assert citations[0].passage is passages[0]
    for c in citations:
        assert c.quote in c.passage.text


def test_check_citations_without_markers(checker: SupportChecker) -> None:
    cleaned, claims, citations, dropped = check_citations(
        "China will mediate.", [passage(1, WANG)], checker
    )
    assert cleaned == "China will mediate."
    assert citations == [] and dropped == 0
    assert [c.supported for c in claims] == [False]
