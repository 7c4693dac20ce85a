"""Evals that cannot flatter the model: option order, who judges, what verification let through.

Also the LLM entailment pass and the verdict cache it shares with the judge, against the
loopback fake server with the real langchain-openai client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.answering.entail import (
    LLMEntailment,
    check_template,
    load_prompt,
    make_entailment,
)
from assistant.answering.support import SupportChecker
from assistant.answering.verdicts import parse_verdict
from assistant.answering.verify import verify_answer
from assistant.errors import PromptError
from assistant.models.embeddings import MiniLMEmbeddings
from assistant.settings import load_settings
from assistant.types import ABSTAIN_TEXT, Passage
from evals.dataset import Case, load_cases, load_suite, place_choices
from evals.judge import OfflineJudge, judge_settings, make_judge
from evals.metrics import delivered_scores
from tests.conftest import ROOT
from tests.fake_openai import FakeOpenAI, Reply
from tests.prompt_reading import prompt_of

EXAMPLES_SUITE = ROOT / "evals" / "suites" / "examples"
BUDGET = (
    "The city council approved the harbor budget of 4.2 million crowns on Monday. "
    "Councillor Mara Lind voted against the plan."
)
FERRY = "Harbor commissioner Lena Ostrova said the new ferry terminal would open in May."


# -- multiple-choice order ------------------------------------------------------------------


def test_examples_gold_answer_sits_in_every_position() -> None:
    suite = load_suite(EXAMPLES_SUITE)
    loaded = [c for c in suite.load_cases() if c.choices and c.answers]
    on_file = {c.id: c for c in load_cases(suite.cases_path)}  # type: ignore[arg-type]
    assert len(loaded) >= 4
    positions = [c.choices.index(c.answers[0]) for c in loaded]  # type: ignore[union-attr]
    assert set(positions) == set(range(4)), positions
    for case in loaded:
        original = on_file[case.id]
        assert sorted(case.choices or []) == sorted(original.choices or [])
        assert case.answers == original.answers and case.question == original.question
    assert [c.choices for c in suite.load_cases()] == [c.choices for c in suite.load_cases()]


def test_place_choices_rotates_the_gold_and_keeps_the_rest() -> None:
    cases = [
        Case(id=f"q{i}", question="Which?", answers=["right"], choices=["right", "b", "c", "d"])
        for i in range(5)
    ]
    cases.insert(2, Case(id="open", question="Why?", answers=["because"]))
    cases.insert(3, Case(id="none", question="Who?", must_abstain=True, choices=["x", "y"]))
    placed = place_choices(cases)
    mc = [c for c in placed if c.answers and c.choices]
    assert [c.choices.index("right") for c in mc] == [0, 1, 2, 3, 0]  # type: ignore[union-attr]
    assert placed[2].choices is None
    assert sorted(placed[3].choices or []) == ["x", "y"]
    assert place_choices(cases) == placed  # deterministic
    assert all(sorted(c.choices or []) == ["b", "c", "d", "right"] for c in mc)


def test_a_count_threshold_is_a_maximum() -> None:
    suite = load_suite(EXAMPLES_SUITE)
    assert suite.thresholds["unsupported_delivered"] == 0
    good = {k: 1.0 for k in suite.thresholds} | {"unsupported_delivered": 0.0}
    assert suite.failures(good) == []
    bad = good | {"unsupported_delivered": 0.5}
    assert suite.failures(bad) == ["unsupported_delivered = 0.5 is above the maximum 0"]


# -- the judge is never the model under test -------------------------------------------------


def test_judge_settings_are_the_judge_models_own(tmp_path: Path) -> None:
    plain = load_settings(home=tmp_path, llm_base_url="http://127.0.0.1:9/v1", llm_model="m")
    assert judge_settings(plain) is None
    judged = judge_settings(plain.model_copy(update={"judge_model": "j", "llm_temperature": 0.7}))
    assert judged is not None
    assert (judged.llm_model, judged.llm_base_url, judged.llm_temperature) == (
        "j", "http://127.0.0.1:9/v1", 0.0,
    )  # fmt: skip
    other = load_settings(home=tmp_path, judge_model="j", judge_base_url="http://127.0.0.1:8/v1")
    assert judge_settings(other).llm_base_url == "http://127.0.0.1:8/v1"  # type: ignore[union-attr]
    # no server for the judge at all: offline
    assert judge_settings(load_settings(home=tmp_path, judge_model="j")) is None


def test_make_judge_without_a_judge_model_is_offline(
    tmp_path: Path, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    settings = load_settings(home=tmp_path, llm_base_url=fake_openai.base_url, llm_model="m")
    judge = make_judge(settings, SupportChecker(embedder), tmp_path / "cache")
    assert isinstance(judge, OfflineJudge) and judge.tier == "offline-proxy"
    assert judge([BUDGET], "The council approved the harbor budget on Monday.") is True
    assert fake_openai.requests == []


# -- what verification let through -----------------------------------------------------------


@pytest.fixture(scope="module")
def offline(embedder: MiniLMEmbeddings) -> OfflineJudge:
    return OfflineJudge(SupportChecker(embedder))


def test_delivered_scores_count_unsupported_and_uncited(offline: OfflineJudge) -> None:
    texts = [FERRY, BUDGET]
    answer = (
        "The council approved the harbor budget on Monday [2]. "
        "Mara Lind voted in favor of the harbor budget [2]. "
        "The terminal cost 90 million crowns to build."
    )
    shown = delivered_scores(answer, None, texts, offline)
    assert shown.unsupported.value == 2.0
    assert shown.unsupported_rate.value == pytest.approx(2 / 3)
    assert shown.supported_kept.value is None and shown.supported_kept.error is None  # NA

    clean = "The council approved the harbor budget on Monday [2]."
    assert delivered_scores(clean, None, texts, offline).unsupported.value == 0.0
    abstained = delivered_scores(ABSTAIN_TEXT, ABSTAIN_TEXT, texts, offline)
    assert abstained.unsupported.value is None and abstained.supported_kept.value is None


def test_supported_kept_is_the_share_of_supported_raw_sentences_delivered(
    offline: OfflineJudge,
) -> None:
    texts = [FERRY, BUDGET]
    raw = (
        "The council approved the harbor budget on Monday [1][2]. "
        "Lena Ostrova said the ferry terminal would open in May [1]. "
        "Mara Lind voted in favor of the harbor budget [2]."
    )
    delivered = "The council approved the harbor budget on Monday [2]."
    kept = delivered_scores(delivered, raw, texts, offline).supported_kept
    assert kept.value == 0.5  # 2 supported in the raw reply, 1 delivered (the vote was false)
    assert delivered_scores(raw, raw, texts, offline).supported_kept.value == 1.0


def test_verify_answer_output_scores_clean(
    embedder: MiniLMEmbeddings, offline: OfflineJudge
) -> None:
    raw = (
        "The council approved the harbor budget on Monday [2]. "
        "Mara Lind voted in favor of the harbor budget [2]. "
        "Elon Musk opened the ferry terminal [1]. Lind resigned in protest."
    )
    passages = [
        Passage(rank=i, chunk_id=f"h{i}", doc_id=f"h{i}", text=t, score=1.0)
        for i, t in enumerate([FERRY, BUDGET], start=1)
    ]
    verified = verify_answer(raw, passages, SupportChecker(embedder))
    shown = delivered_scores(verified.text, raw, [FERRY, BUDGET], offline)
    assert shown.unsupported.value == 0.0 and shown.supported_kept.value == 1.0
    assert len(verified.removed) == 3


# -- the LLM entailment pass and its cache ---------------------------------------------------


def test_entail_prompt_placeholders_are_checked() -> None:
    assert "{premise}" in load_prompt() and "{claim}" in load_prompt()
    with pytest.raises(PromptError, match="missing placeholder"):
        check_template("entail", "Passages: {premise}")
    with pytest.raises(PromptError, match="unknown placeholder"):
        check_template("entail", "{premise} {claim} {question}")


def test_parse_verdict() -> None:
    assert parse_verdict("Yes.") is True and parse_verdict("no - the date differs") is False
    assert parse_verdict("maybe") is None and parse_verdict("") is None


class Verdicts:
    """A fake model that answers entailment prompts from a table of sentences."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table

    def __call__(self, request: dict[str, Any]) -> Reply | str:
        prompt = prompt_of(request)
        sentence = prompt.split("\nSentence: ", 1)[1].split("\n", 1)[0]
        return self.table.get(sentence, "yes")


def test_llm_entailment_is_cached_and_only_removes_more(
    tmp_path: Path, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    settings = load_settings(
        home=tmp_path, llm_base_url=fake_openai.base_url, llm_model="fake-model",
        llm_temperature=0.9, llm_max_retries=0, verify_with_llm=True,
    )  # fmt: skip
    doubted = "Mara Lind voted against the plan."
    fake_openai.default = Verdicts({doubted: "No.", "Lind spoke.": "unclear"})
    entail = LLMEntailment(settings, cache_dir=tmp_path / "entail")
    passages = [Passage(rank=1, chunk_id="b", doc_id="b", text=BUDGET, score=1.0)]
    reply = (
        "The council approved the harbor budget on Monday [1]. Mara Lind voted against the "
        "plan [1]. Mara Lind voted in favor of the harbor budget [1]."
    )

    result = verify_answer(reply, passages, SupportChecker(embedder), entail=entail)

    assert result.text == "The council approved the harbor budget on Monday [1]."
    assert len(fake_openai.requests) == 2  # the offline rejection was never asked about
    for request in fake_openai.requests:
        assert request["temperature"] == 0.0 and request["model"] == "fake-model"
        assert "Councillor Mara Lind voted against the plan." in prompt_of(request)
    entries = [json.loads(p.read_text()) for p in (tmp_path / "entail").glob("*.json")]
    assert sorted(e["verdict"] for e in entries) == [False, True]

    # the same reply again: every verdict from the cache
    again = verify_answer(reply, passages, SupportChecker(embedder), entail=entail)
    assert again.text == result.text and len(fake_openai.requests) == 2

    # an unclear reply is an error: the sentence stays, nothing is cached
    assert entail([BUDGET], "Lind spoke.") is None
    assert entail([BUDGET], "Lind spoke.") is None
    assert len(fake_openai.requests) == 4 and entail.asker.errors == 2


def test_make_entailment_needs_the_setting_and_a_model(tmp_path: Path) -> None:
    base = {"home": tmp_path, "llm_base_url": "http://127.0.0.1:9/v1"}
    assert make_entailment(load_settings(**base)) is None
    assert make_entailment(load_settings(home=tmp_path, verify_with_llm=True)) is None
    assert make_entailment(load_settings(**base, verify_with_llm=True, extractive=True)) is None
    assert isinstance(make_entailment(load_settings(**base, verify_with_llm=True)), LLMEntailment)
