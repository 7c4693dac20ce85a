"""Eval metrics: every expected number below is worked out by hand in the comment next to it."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence

import pytest

from assistant.text import content_terms
from assistant.types import ABSTAIN_TEXT
from evals.metrics import (
    Aggregate,
    Score,
    abstention_scores,
    aggregate,
    answer_bearing_at_k,
    answer_recall,
    audit_answer,
    choice_accuracy,
    citation_scores,
    exact_match,
    hit_at_k,
    mrr_at_k,
    ndcg_at_k,
    normalize_answer,
    percentile,
    recall_at_k,
    token_f1,
)

NA = Score.na()
RetrievalMetric = Callable[[Sequence[str], Collection[str], int], Score]


def value(score: Score) -> float:
    assert score.ok, score
    assert score.value is not None
    return score.value


# --- Score ---------------------------------------------------------------------------------


def test_score_states_and_json_round_trip() -> None:
    for s, js in [
        (Score.of(0.5), {"value": 0.5}),
        (NA, {"na": True}),
        (Score.fail("judge down"), {"error": "judge down"}),
    ]:
        assert s.as_json() == js
        assert Score.from_json(js) == s
    assert Score.of(1).ok and not NA.ok and not Score.fail("x").ok


def test_score_rejects_nan_and_mixed_states() -> None:
    with pytest.raises(ValueError):
        Score.of(math.nan)
    with pytest.raises(ValueError):
        Score(value=1.0, error="x")
    with pytest.raises(ValueError):
        Score.from_json({"value": 1.0, "na": True})


# --- retrieval -----------------------------------------------------------------------------

# chunks of d3 and d1 repeat; distinct docs in order: d3, d1, d2, d5
RANKED = ["d3", "d1", "d3", "d2", "d5", "d1"]


def test_hit_at_k_dedupes_repeated_docs_before_cutting() -> None:
    # top-2 distinct = d3, d1 -> no d2; top-3 distinct = d3, d1, d2 -> hit
    # (without dedupe the top-3 would be d3, d1, d3 and miss)
    assert value(hit_at_k(RANKED, {"d2"}, 2)) == 0.0
    assert value(hit_at_k(RANKED, {"d2"}, 3)) == 1.0


def test_recall_at_k() -> None:
    gold = {"d1", "d5", "d9"}
    # top-2 = d3, d1 -> 1 of 3 gold; top-4 = d3, d1, d2, d5 -> 2 of 3 (d9 never retrieved)
    assert value(recall_at_k(RANKED, gold, 2)) == pytest.approx(1 / 3)
    assert value(recall_at_k(RANKED, gold, 4)) == pytest.approx(2 / 3)
    # a repeated doc is counted once: d1 appears twice, recall stays 1/1
    assert value(recall_at_k(["d1", "d1"], {"d1"}, 2)) == 1.0


def test_mrr_first_gold_only_when_several_gold() -> None:
    assert value(mrr_at_k(RANKED, {"d2"})) == pytest.approx(1 / 3)  # d2 is 3rd distinct
    # gold d1 (rank 2) and d5 (rank 4): the best rank counts, no summing: 1/2, not 1/2 + 1/4
    assert value(mrr_at_k(RANKED, {"d1", "d5"})) == pytest.approx(0.5)
    # gold d3 and d1 tie for "some gold doc in the top 2": the first, d3, gives 1/1
    assert value(mrr_at_k(RANKED, {"d3", "d1"})) == 1.0
    # k cut-off: d5 is 4th distinct, outside k=3 -> 0
    assert value(mrr_at_k(RANKED, {"d5"}, k=3)) == 0.0


def test_ndcg_binary_gains() -> None:
    # gold d2 at distinct rank 3: DCG = 1/log2(4) = 0.5; IDCG = 1/log2(2) = 1 -> 0.5
    assert value(ndcg_at_k(RANKED, {"d2"})) == pytest.approx(0.5)
    gold = {"d1", "d5", "d9"}
    # k=4: DCG = 1/log2(3) + 1/log2(5) = 0.630930 + 0.430677 = 1.061606
    #      IDCG (3 gold) = 1 + 0.630930 + 0.5 = 2.130930 -> 0.498189
    assert value(ndcg_at_k(RANKED, gold, k=4)) == pytest.approx(0.498189, abs=1e-6)
    # k=2: DCG = 1/log2(3) = 0.630930; IDCG (min(3, 2) = 2 ones) = 1.630930 -> 0.386853
    assert value(ndcg_at_k(RANKED, gold, k=2)) == pytest.approx(0.386853, abs=1e-6)
    # all gold at the top: 1
    assert value(ndcg_at_k(["d1", "d5", "d9", "x"], gold)) == pytest.approx(1.0)


@pytest.mark.parametrize("metric", [hit_at_k, recall_at_k, mrr_at_k, ndcg_at_k])
def test_retrieval_edge_cases(metric: RetrievalMetric) -> None:
    assert value(metric(RANKED, {"nowhere"}, 10)) == 0.0  # gold not retrieved
    assert value(metric([], {"d1"}, 10)) == 0.0  # empty retrieval
    assert metric(RANKED, set(), 10) == NA  # no gold: not applicable
    assert metric([], [], 10) == NA
    with pytest.raises(ValueError):
        metric(RANKED, {"d1"}, 0)


def test_answer_bearing_at_k() -> None:
    passages = ["The vote was held in 19945 BC.", "It happened in “1994”, officials said."]
    assert value(answer_bearing_at_k(passages, ["1994"], 1)) == 0.0  # 19945 is not 1994
    assert value(answer_bearing_at_k(passages, ["1994"], 2)) == 1.0  # quotes stripped
    assert value(answer_bearing_at_k(passages, ["in 1994", "2001"], 2)) == 1.0
    assert value(answer_bearing_at_k([], ["1994"], 3)) == 0.0
    assert answer_bearing_at_k(passages, [], 2) == NA
    assert answer_bearing_at_k(passages, ["The"], 2).error  # normalises to nothing


# --- answers -------------------------------------------------------------------------------


def test_normalize_answer() -> None:
    assert normalize_answer("  The  Eiffel Tower! ") == "eiffel tower"
    assert normalize_answer("“A” ‘quoted’ answer — an aside") == "quoted answer aside"
    assert normalize_answer("6,000 U.S. troops") == "6000 us troops"
    assert normalize_answer("theatre and anthem") == "theatre and anthem"  # whole words only


def test_exact_match() -> None:
    assert value(exact_match("The Eiffel Tower!", ["eiffel tower"])) == 1.0
    assert value(exact_match("“Eiffel Tower”", ["Eiffel tower"])) == 1.0
    assert value(exact_match("Paris, France", ["Paris", "Paris France"])) == 1.0  # 2nd one
    assert value(exact_match("Paris", ["Lyon", "Marseille"])) == 0.0
    assert value(exact_match("", [""])) == 1.0
    assert value(exact_match("", ["Paris"])) == 0.0
    assert exact_match("Paris", []) == NA


def test_token_f1() -> None:
    # pred "cat sat on mat" (4), gold "cat on mat" (3), common 3: P = 3/4, R = 1
    # F1 = 2 * 0.75 * 1 / 1.75 = 0.857143
    assert value(token_f1("the cat sat on the mat", ["a cat on a mat"])) == pytest.approx(6 / 7)
    # max over answers: vs "york": P = 1/3, R = 1 -> 0.5; vs "new york": P = 2/3, R = 1 -> 0.8
    assert value(token_f1("New York City", ["york", "New York"])) == pytest.approx(0.8)
    # tokens count with multiplicity: pred "go go" vs gold "go": common 1, P = 1/2, R = 1
    # F1 = 2 * 0.5 * 1 / 1.5 = 2/3
    assert value(token_f1("go go", ["go"])) == pytest.approx(2 / 3)
    assert value(token_f1("", [""])) == 1.0  # both empty
    assert value(token_f1("the", ["an"])) == 1.0  # both empty after normalisation
    assert value(token_f1("", ["Paris"])) == 0.0  # one empty
    assert value(token_f1("Paris", [""])) == 0.0
    assert value(token_f1("Lyon", ["Paris"])) == 0.0
    assert token_f1("Paris", []) == NA


def test_answer_recall_token_boundaries() -> None:
    assert value(answer_recall("It was founded in 19945.", ["1994"])) == 0.0
    assert value(answer_recall("Founded in 1994, it grew.", ["1994"])) == 1.0
    assert value(answer_recall("He met Wang Yi in Beijing.", ["wang yi", "Qin"])) == 1.0
    assert value(answer_recall("", ["1994"])) == 0.0
    assert answer_recall("anything", []) == NA
    assert answer_recall("anything", ["the", "?"]).error


def test_choice_accuracy() -> None:
    assert value(choice_accuracy("Beijing", ["beijing"])) == 1.0
    assert value(choice_accuracy("The Beijing Olympics", ["Beijing Olympics"])) == 1.0
    assert value(choice_accuracy("Tokyo", ["Beijing"])) == 0.0
    assert value(choice_accuracy(None, ["Beijing"])) == 0.0  # no choice made
    assert value(choice_accuracy("A", ["a"])) == 1.0  # option "A" does not vanish as an article
    assert value(choice_accuracy("A", ["B"])) == 0.0
    assert choice_accuracy("Beijing", []) == NA


# --- abstention ----------------------------------------------------------------------------


def test_abstention_scores() -> None:
    # (abstained, must_abstain): 3 right abstentions, 1 wrong, 2 missed, 4 right answers
    pairs = [(True, True)] * 3 + [(True, False)] + [(False, True)] * 2 + [(False, False)] * 4
    s = abstention_scores(pairs)
    assert value(s["abstain_precision"]) == pytest.approx(3 / 4)  # 3 of 4 abstentions
    assert value(s["abstain_recall"]) == pytest.approx(3 / 5)  # 3 of 5 must-abstain
    assert value(s["answered_precision"]) == pytest.approx(4 / 6)  # 4 of 6 answered
    assert value(s["answer_rate"]) == pytest.approx(4 / 5)  # 4 of 5 answerable


def test_abstention_scores_zero_denominators() -> None:
    s = abstention_scores([(False, False), (False, False)])  # never abstained, none must
    assert s["abstain_precision"] == NA and s["abstain_recall"] == NA
    assert value(s["answered_precision"]) == 1.0 and value(s["answer_rate"]) == 1.0
    s = abstention_scores([(True, True)])  # nothing answered, nothing answerable
    assert value(s["abstain_precision"]) == 1.0 and value(s["abstain_recall"]) == 1.0
    assert s["answered_precision"] == NA and s["answer_rate"] == NA
    assert all(v == NA for v in abstention_scores([]).values())


# --- citations -----------------------------------------------------------------------------

P1 = "The central bank raised interest rates by 50 basis points on Tuesday."
P2 = "Inflation reached 7 percent in March, the highest level in decades."
P3 = "Analysts expect further increases later this year."
PASSAGES = [P1, P2, P3]


class FakeJudge:
    """Entailed iff every content term of the claim is in the joined premises; a claim that
    mentions unicorns makes the judge fail (None). Records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], str]] = []

    def __call__(self, premises: Sequence[str], claim: str) -> bool | None:
        self.calls.append((tuple(premises), claim))
        if "unicorn" in claim.lower():
            return None
        return set(content_terms(claim)) <= set(content_terms(" ".join(premises)))


def cite(text: str) -> tuple[float | None, float | None, int, int, int]:
    r = citation_scores(text, PASSAGES, FakeJudge())
    return r.recall.value, r.precision.value, r.n_sentences, r.n_citations, r.judge_errors


def test_citation_fully_supported_sentence() -> None:
    assert cite("The central bank raised interest rates by 50 basis points [1].") == (
        1.0,
        1.0,
        1,
        1,
        0,
    )


def test_citation_one_of_two_irrelevant() -> None:
    # {P1, P2} entails; P1 alone entails -> relevant; P2 alone does not, and the rest {P1}
    # does -> irrelevant. recall 1/1, precision 1/2
    assert cite("The central bank raised interest rates [1][2].") == (1.0, 0.5, 1, 2, 0)


def test_citation_both_needed_are_relevant() -> None:
    # neither passage alone entails, together they do; leaving either out breaks the
    # support, so both are relevant: precision 2/2
    text = "Inflation reached 7 percent and analysts expect further increases [2][3]."
    assert cite(text) == (1.0, 1.0, 1, 2, 0)


def test_citation_set_not_entailing_makes_all_irrelevant() -> None:
    # "rate cuts" is in no passage: recall 0; ALCE counts every citation irrelevant: 0/2
    text = "Inflation reached 7 percent and analysts expect rate cuts [2][3]."
    assert cite(text) == (0.0, 0.0, 1, 2, 0)
    assert cite("Inflation reached 9 percent [2].") == (0.0, 0.0, 1, 1, 0)


def test_citation_sentence_without_citations_counts_zero() -> None:
    # sentence 1 supported, sentence 2 has no marker: recall (1 + 0) / 2; precision 1/1
    text = "The central bank raised interest rates [1]. Inflation reached 7 percent."
    judge = FakeJudge()
    r = citation_scores(text, PASSAGES, judge)
    assert (value(r.recall), value(r.precision), r.n_sentences, r.n_citations) == (0.5, 1, 2, 1)
    assert len(judge.calls) == 1  # the uncited sentence is never sent to the judge


def test_citation_out_of_range_markers_ignored() -> None:
    # [7] dropped, [1] kept: recall 1, precision 1/1
    assert cite("The central bank raised interest rates [1][7].") == (1.0, 1.0, 1, 1, 0)
    # only [9]: no valid citation -> recall 0, precision NA (no citations)
    r = citation_scores("Inflation reached 7 percent [9].", PASSAGES, FakeJudge())
    assert value(r.recall) == 0.0 and r.precision == NA and r.n_citations == 0


def test_citation_judge_error_excludes_sentence() -> None:
    # sentence 1 errors -> left out; sentence 2 supported: recall 1/1, precision 1/1
    text = "Unicorns attended the meeting [1]. The central bank raised interest rates [1]."
    assert cite(text) == (1.0, 1.0, 2, 2, 1)
    r = citation_scores("Unicorns attended the meeting [1].", PASSAGES, FakeJudge())
    assert r.recall.error and r.precision.error and r.judge_errors == 1


def test_citation_empty_answer_and_abstention_are_na() -> None:
    for text in ["", "   ", ABSTAIN_TEXT]:
        r = citation_scores(text, PASSAGES, FakeJudge())
        assert r.recall == NA and r.precision == NA
        assert (r.n_sentences, r.n_citations, r.judge_errors) == (0, 0, 0)


def test_citation_judge_error_on_single_citation_checks() -> None:
    # the pair {P1, P2} entails; each single-passage check fails (None), so both citations
    # drop out of precision (2 judge errors) and precision is an error; recall is still 1/1
    def judge(premises: Sequence[str], claim: str) -> bool | None:
        return None if len(premises) == 1 else FakeJudge()(premises, claim)

    r = citation_scores("The central bank raised interest rates [1][2].", PASSAGES, judge)
    assert value(r.recall) == 1.0 and r.precision.error and r.judge_errors == 2


BRIEF = (
    "Rates rise again (Reuters · 2024-03-07)\n"
    "- The central bank raised interest rates by 50 basis points on Tuesday. [1]\n"
    "- Inflation reached 7 percent in March. [2]\n"
    "\n"
    "Outlook (Example News)\n"
    "- Analysts expect further increases later this year. [3]"
)


def test_citation_extractive_brief_headers_are_not_sentences() -> None:
    # 3 bullet sentences, each entailed by its own passage; the 2 header lines are skipped
    assert cite(BRIEF) == (1.0, 1.0, 3, 3, 0)


# --- audit ---------------------------------------------------------------------------------


def test_audit_counts() -> None:
    text = (
        "The central bank raised rates by 75 basis points [1]. "  # 75 not in P1: numbers
        "Inflation reached 7 percent in March [2][5]. "  # [5] out of range; 7 in P2: fine
        "Analysts expect more increases this year. "  # uncited, 3 content terms: factual
        "Prices rose. "  # uncited, 2 content terms: not factual
        "Markets fell on 3 March [0]. "  # [0] out of range -> uncited with a number: factual
        "Officials declined to comment [3]."  # passage 3 not available: unretrieved
    )
    audit = audit_answer(text, 3, [P1, P2])
    assert (audit.uncited_factual, audit.out_of_range, audit.unretrieved) == (2, 2, 1)
    assert (audit.numbers_missing, audit.sentences) == (1, 6)


def test_audit_marker_lists_and_number_support_across_cited_passages() -> None:
    # "[2, 9]": 9 out of range (1); "7" and "50" each appear in one of the cited passages
    audit = audit_answer("Rates went up 50 basis points; inflation hit 7 [1][2, 9].", 3, PASSAGES)
    assert (audit.out_of_range, audit.numbers_missing, audit.uncited_factual) == (1, 0, 0)


def test_audit_brief_headers_and_abstention() -> None:
    audit = audit_answer(BRIEF, 3, PASSAGES)  # the header with a date is not uncited
    assert (audit.uncited_factual, audit.out_of_range, audit.sentences) == (0, 0, 3)
    assert audit_answer(ABSTAIN_TEXT, 0, []).uncited_factual == 0
    assert audit_answer("", 0, []).sentences == 0


# --- percentile and aggregate --------------------------------------------------------------


def test_percentile_linear_interpolation() -> None:
    xs = [4.0, 1.0, 3.0, 2.0]  # sorted 1, 2, 3, 4
    assert percentile(xs, 50) == 2.5  # h = 3 * 0.5 = 1.5 -> 2 + 0.5 * (3 - 2)
    assert percentile(xs, 90) == pytest.approx(3.7)  # h = 2.7 -> 3 + 0.7 * (4 - 3)
    assert (percentile(xs, 0), percentile(xs, 100)) == (1.0, 4.0)
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(xs, 101)
    with pytest.raises(ValueError):
        percentile([1.0, math.nan], 50)


def test_aggregate_counts_na_and_errors_apart() -> None:
    scores = [Score.of(1), Score.of(0), Score.of(1), Score.of(1), NA, Score.fail("judge")]
    agg = aggregate(scores, bootstrap=500, seed=3)
    assert agg.mean == pytest.approx(0.75)  # (1 + 0 + 1 + 1) / 4: NA and error not averaged
    assert (agg.n, agg.n_na, agg.n_error) == (4, 1, 1)
    assert agg.coverage == pytest.approx(4 / 6)
    assert agg.ci_low is not None and agg.ci_high is not None and agg.mean is not None
    assert 0.0 <= agg.ci_low <= agg.mean <= agg.ci_high <= 1.0
    assert agg.as_json()["coverage"] == pytest.approx(4 / 6)
    assert aggregate(scores, bootstrap=500, seed=3) == agg  # seeded: reproducible


def test_aggregate_small_and_empty() -> None:
    one = aggregate([Score.of(0.4), Score.fail("timeout")])
    assert (one.mean, one.n, one.n_error, one.ci_low, one.ci_high) == (0.4, 1, 1, None, None)
    assert one.coverage == 0.5
    assert aggregate([NA]) == Aggregate(None, 0, 1, 0, None, None)
    assert aggregate([]).coverage is None


def test_aggregate_ci_of_spread_values() -> None:
    scores = [Score.of(x / 10) for x in range(11)]  # 0.0 .. 1.0, mean 0.5
    agg = aggregate(scores, bootstrap=2000, seed=0)
    assert agg.mean == pytest.approx(0.5)
    assert agg.ci_low is not None and agg.ci_high is not None
    # standard error = sd / sqrt(n) = 0.3162 / 3.317 = 0.095; 95% CI about 0.5 ± 0.19
    assert 0.25 < agg.ci_low < 0.45 and 0.55 < agg.ci_high < 0.75
