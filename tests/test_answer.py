"""End-to-end tests of ``Desk.answer`` over the example articles, with real clients.

The example articles are ingested once per module with the real MiniLM embedder into a Chroma
store on disk. LLM-mode tests talk to ``tests.fake_openai.FakeOpenAI`` over loopback through the
real ``langchain_openai.ChatOpenAI`` (streaming); nothing is mocked.
"""

from __future__ import annotations

import json
import re
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from assistant import prompts
from assistant.answering.verify import check_citations
from assistant.desk import Desk
from assistant.errors import PromptError, UsageError
from assistant.index.store import Store
from assistant.models.embeddings import MiniLMEmbeddings
from assistant.settings import Settings
from assistant.types import (
    ABSTAIN_TEXT,
    Answer,
    Filters,
    Final,
    Notice,
    PassagesFound,
    TextDelta,
    Turn,
)
from tests.conftest import StoreAt, backend, clean_settings, on_both_stores
from tests.fake_openai import FakeOpenAI, Reply
from tests.prompt_reading import passages_in, prompt_of, quotable, system_of

MEDIATION = "Will China mediate between Russia and Ukraine?"
# The articles about China and the war; the Olympics piece and the wire stories are not.
CHINA_FILES = {
    "analysis-can-china-broker-peace.html",
    "borrell-says-china-must-mediate.txt",
    "kuleba-asks-china-to-use-influence.md",
    "wang-yi-press-conference.html",
    "xi-macron-scholz-video-call.md",
    "biden-xi-video-call.md",
}
UNCOVERED = [
    "Who won the 2022 FIFA World Cup final?",
    "What was Apple's revenue last quarter?",
    "Who won the Academy Award for Best Picture in March 2022?",
]
ANSWER_KEYS = {
    "question", "answer", "mode", "abstained", "citations", "passages", "timings", "usage",
}  # fmt: skip
CITATION_KEYS = {
    "n", "rank", "doc_id", "chunk_id", "title", "source", "location", "published_at", "quote",
    "supported",
}  # fmt: skip
PASSAGE_KEYS = {
    "rank", "doc_id", "chunk_id", "score", "title", "source", "location", "published_at", "text",
}  # fmt: skip
CONDENSED = "What did Josep Borrell say about China mediating between Russia and Ukraine?"


# -- fixtures --------------------------------------------------------------------------------


class Corpus:
    """The ingested example articles: where they live and which file each doc_id came from."""

    def __init__(self, at: StoreAt, files: dict[str, str]) -> None:
        self.at = at  # the embedded store (a data home) or a collection on a Chroma server
        self.files = files  # doc_id -> file name

    @property
    def home(self) -> Path:
        return self.at.home

    def doc_ids(self, names: set[str]) -> set[str]:
        return {doc for doc, name in self.files.items() if name in names}


@pytest.fixture(scope="module")
def corpus(request: pytest.FixtureRequest, embedder: MiniLMEmbeddings) -> Corpus:
    """The example articles; ``on_both_stores("corpus")`` runs a test on both backends."""
    if backend(request) == "server":
        at = request.getfixturevalue("examples_on_server").at
    else:
        at = StoreAt(request.getfixturevalue("examples_home"))
    store = Store(clean_settings(at.home, **at.overrides), embedder)
    files = {
        str(c.metadata["doc_id"]): Path(str(c.metadata["path"])).name
        for c in store.iter_chunks(include_text=False)
    }
    others = {"beijing-olympics-closing.txt", "wire.jsonl", "vellmark-tram-extension.txt"}
    assert set(files.values()) == CHINA_FILES | others
    return Corpus(at, files)


def make_assistant(corpus: Corpus, embedder: MiniLMEmbeddings, **overrides: Any) -> Desk:
    settings: Settings = corpus.at.settings(**overrides)
    return Desk(settings, store=Store(settings, embedder))


@pytest.fixture
def extractive(corpus: Corpus, embedder: MiniLMEmbeddings) -> Desk:
    return make_assistant(corpus, embedder)


def llm_assistant(
    corpus: Corpus,
    embedder: MiniLMEmbeddings,
    fake: FakeOpenAI,
    timeout_s: float = 10.0,
    retries: int = 0,
) -> Desk:
    return make_assistant(
        corpus,
        embedder,
        llm_base_url=fake.base_url,
        llm_model="fake-model",
        llm_timeout_s=timeout_s,
        llm_max_retries=retries,
    )


# -- a model stand-in that answers from the prompt it is sent ---------------------------------


def cite(sentence: str, n: int) -> str:
    """``"A claim."`` -> ``"A claim [n]."`` as the answer prompt asks."""
    return f"{sentence[:-1]} [{n}]."


class Model:
    """Replies like a well-behaved model: condenses, picks "B", or quotes passage [1] cited."""

    def __init__(self, answer: Any = None, condensed: str = CONDENSED, choice: str = "B") -> None:
        self.answer = answer or (lambda ps: cite(quotable(ps[1]), 1))
        self.condensed = condensed
        self.choice = choice
        self.answers: list[str] = []  # raw replies to answer prompts, in order

    def __call__(self, request: dict[str, Any]) -> Reply | str:
        prompt = prompt_of(request)
        if "Follow-up question:" in prompt:
            return self.condensed
        if "\nOptions:\n" in prompt:
            return self.choice
        text = self.answer(passages_in(prompt))
        self.answers.append(text)
        return text


def chat_prompts(fake: FakeOpenAI, marker: str) -> list[str]:
    return [prompt_of(r) for r in fake.requests if marker in prompt_of(r)]


def assert_quotes_verbatim(answer: Answer) -> None:
    """Each quoted sentence of each citation is verbatim text of the passage it cites.

    ``extractive.compose`` joins two sentences from one passage as ``"s1 … s2"``, so the quote is
    checked piece by piece (reported to the lead: the brief expected whole-quote verbatim).
    """
    for c in answer.citations:
        assert c.passage.rank == c.rank
        for piece in c.quote.split(" … "):
            assert piece and piece in c.passage.text, (c.n, piece)
    assert_numbered_by_article(answer)


def assert_numbered_by_article(answer: Answer) -> None:
    """Markers are one number per cited article, 1..N in order of first use, no gaps."""
    first_use = list(dict.fromkeys(int(n) for n in re.findall(r"\[(\d+)\]", answer.text)))
    assert first_use == list(range(1, len(first_use) + 1)), answer.text
    article_of: dict[int, str] = {}
    for c in answer.citations:
        assert article_of.setdefault(c.n, c.passage.doc_id) == c.passage.doc_id
    assert len(set(article_of.values())) == len(article_of)  # one number per article
    assert not re.search(r"\[(\d+)\]\s*\[\1\]", answer.text)  # never "[1][1]"


# -- extractive mode --------------------------------------------------------------------------


@on_both_stores("corpus")
def test_extractive_answer_is_cited_from_the_mediation_articles(
    extractive: Desk, corpus: Corpus
) -> None:
    answer = extractive.answer(MEDIATION)

    assert not answer.abstained
    assert answer.mode == "extractive"
    assert "no language model" in answer.notice
    assert answer.question == MEDIATION
    assert len(answer.citations) >= 3
    sentences = [line for line in answer.text.splitlines() if line.startswith("- ")]
    assert len(sentences) >= 3
    assert all(re.search(r"\[\d+\]$", line) for line in sentences)
    assert_quotes_verbatim(answer)
    china_docs = corpus.doc_ids(CHINA_FILES)
    assert {c.passage.doc_id for c in answer.citations} <= china_docs
    assert all(c.supported for c in answer.citations)
    # every [n] in the text is one of the citations, and every citation is used in the text
    used = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
    assert used == {c.n for c in answer.citations}
    # the cited passages are the ones reported, numbered 1..k
    assert [p.rank for p in answer.passages] == list(range(1, len(answer.passages) + 1))
    assert len(answer.passages) == 6
    assert answer.timings["total_ms"] > 0 and "extract_ms" in answer.timings
    assert answer.usage.total_tokens == 0


def test_as_json_has_the_documented_shape(extractive: Desk) -> None:
    data = extractive.answer(MEDIATION).as_json()
    json.dumps(data)  # serialisable as is

    assert data.keys() >= ANSWER_KEYS
    assert data.keys() - ANSWER_KEYS <= {
        "notice", "standalone_question", "choice", "as_of", "timeframe",
    }  # fmt: skip
    assert data["citations"] and data["passages"]
    for c in data["citations"]:
        assert c.keys() >= CITATION_KEYS
        assert c.keys() - CITATION_KEYS <= {"url", "also_reported_by"}
        assert isinstance(c["n"], int) and isinstance(c["supported"], bool)
    for p in data["passages"]:
        assert p.keys() >= PASSAGE_KEYS and p.keys() - PASSAGE_KEYS <= {"url"}
        assert isinstance(p["score"], float) and p["text"]
    assert data["mode"] == "extractive" and data["abstained"] is False
    assert data["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert all(isinstance(v, float) for v in data["timings"].values())


@pytest.mark.parametrize("question", UNCOVERED)
def test_uncovered_questions_abstain(extractive: Desk, question: str) -> None:
    answer = extractive.answer(question)

    assert answer.abstained
    assert answer.text == ABSTAIN_TEXT
    assert answer.citations == []
    assert answer.passages  # what was looked at is still reported
    data = answer.as_json()
    assert data["abstained"] is True and data["citations"] == []


def test_who_said_question_finds_borrell(extractive: Desk, corpus: Corpus) -> None:
    question = "Who said China is the only possible mediator?"
    borrell = corpus.doc_ids({"borrell-says-china-must-mediate.txt"})

    top = extractive.search(question)[:3]
    assert any(p.doc_id in borrell for p in top)
    assert any("Borrell" in p.text for p in top)

    answer = extractive.answer(question)
    assert not answer.abstained
    assert "Borrell" in answer.text
    assert_quotes_verbatim(answer)


@on_both_stores("corpus")
def test_since_filter_keeps_only_later_articles(extractive: Desk) -> None:
    since = date(2022, 3, 10)
    passages = extractive.search("China mediation Russia Ukraine", filters=Filters(since=since))
    assert passages
    assert all(p.published_at[:10] >= since.isoformat() for p in passages)

    answer = extractive.answer(MEDIATION, filters=Filters(since=since))
    assert answer.passages
    assert all(p.published_at[:10] >= since.isoformat() for p in answer.passages)
    assert all(c.passage.published_at[:10] >= since.isoformat() for c in answer.citations)


def test_until_filter_keeps_only_earlier_articles(extractive: Desk) -> None:
    until = date(2022, 3, 6)
    passages = extractive.search("China mediation Russia Ukraine", filters=Filters(until=until))
    assert passages
    assert all(p.published_at[:10] <= until.isoformat() for p in passages)
    # the day itself is included
    assert any(p.published_at[:10] == until.isoformat() for p in passages)


@on_both_stores("corpus")
def test_source_filter(extractive: Desk) -> None:
    passages = extractive.search("China mediation", filters=Filters(source="Harbor Line News"))
    assert passages
    assert {p.source for p in passages} == {"Harbor Line News"}
    # matched case-insensitively, reported in the outlet's own spelling
    shouted = extractive.search("China mediation", filters=Filters(source="  harbor LINE news"))
    assert [p.chunk_id for p in shouted] == [p.chunk_id for p in passages]


def test_unknown_source_or_backwards_dates_are_usage_errors(extractive: Desk) -> None:
    with pytest.raises(UsageError, match=r"'No Such Paper'.*sources: .*Harbor Line News"):
        extractive.search("interest rates", filters=Filters(source="No Such Paper"))
    with pytest.raises(UsageError, match=r"'No Such Paper'"):
        extractive.answer(MEDIATION, filters=Filters(source="No Such Paper"))
    backwards = Filters(since=date(2022, 3, 10), until=date(2022, 3, 1))
    with pytest.raises(UsageError, match=r"2022-03-10 is after until 2022-03-01"):
        extractive.answer(MEDIATION, filters=backwards)


def test_filter_that_matches_nothing_abstains(extractive: Desk) -> None:
    for filters in (Filters(since=date(2030, 1, 1)), Filters(until=date(1999, 1, 1))):
        answer = extractive.answer(MEDIATION, filters=filters)
        assert answer.abstained and answer.text == ABSTAIN_TEXT
        assert answer.passages == [] and answer.citations == []


# -- LLM mode against the fake server ---------------------------------------------------------


def test_llm_answer_with_supported_citation(
    corpus: Corpus, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    model = Model()
    fake_openai.default = model
    assistant = llm_assistant(corpus, embedder, fake_openai)

    answer = assistant.answer(MEDIATION)

    assert answer.mode == "llm"
    assert not answer.abstained
    assert answer.notice == ""
    assert answer.text == model.answers[0]
    assert "[1]" in answer.text
    assert [c.n for c in answer.citations] == [1]
    assert answer.citations[0].supported
    assert answer.citations[0].quote in answer.citations[0].passage.text
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert answer.as_json()["usage"]["total_tokens"] == answer.usage.total_tokens
    assert "generate_ms" in answer.timings and "verify_ms" in answer.timings

    assert len(fake_openai.requests) == 1
    request = fake_openai.requests[0]
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    assert request["model"] == "fake-model"
    prompt = prompt_of(request)
    assert f"Question: {MEDIATION}" in prompt
    assert ABSTAIN_TEXT in system_of(request) and ABSTAIN_TEXT not in prompt
    assert len(passages_in(prompt)) == len(answer.passages) == 6


def test_llm_marker_to_missing_passage_is_removed(
    corpus: Corpus, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = Model(
        answer=lambda ps: f"{cite(quotable(ps[1]), 1)} {cite(quotable(ps[2]), 9)}"
    )
    answer = llm_assistant(corpus, embedder, fake_openai).answer(MEDIATION)

    assert len(answer.passages) == 6
    assert not answer.abstained
    assert "[9]" not in answer.text
    assert "[1]" in answer.text
    assert [c.n for c in answer.citations] == [1]
    assert all(1 <= c.n <= len(answer.passages) for c in answer.citations)


def test_llm_reply_without_a_supported_claim_falls_back_to_extractive(
    corpus: Corpus, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    """The evidence was relevant (the gate passed); the reply failed, so the reader gets the
    extractive answer, told why, and never the invented sentence."""
    raw = "China will send 500,000 troops to Kyiv on June 3 [1]."
    fake_openai.default = Model(answer=lambda ps: raw)
    assistant = llm_assistant(corpus, embedder, fake_openai)

    answer = assistant.answer(MEDIATION)

    assert not answer.abstained
    assert answer.mode == "extractive"
    assert "500,000" not in answer.text and answer.citations
    assert "no claim in the model's answer was supported" in answer.notice
    assert answer.raw_text == raw
    assert [r.text for r in answer.removed] == [raw]
    assert "removed" not in answer.as_json()  # an extractive answer has none of its own
    # the same check, looked at directly: the one citation is marked unsupported
    _, claims, citations, dropped = check_citations(raw, answer.passages, assistant.checker)
    assert dropped == 0
    assert [(c.n, c.supported) for c in citations] == [(1, False)]
    assert [c.supported for c in claims] == [False]


def test_llm_rate_limit_is_retried(
    corpus: Corpus, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(status=429, headers={"retry-after-ms": "1"}))
    fake_openai.default = Model()
    assistant = llm_assistant(corpus, embedder, fake_openai, retries=2)

    answer = assistant.answer(MEDIATION)

    assert answer.mode == "llm"
    assert not answer.abstained
    assert answer.notice == ""
    assert answer.citations and answer.citations[0].supported
    assert len(fake_openai.requests) == 2


def test_llm_timeout_falls_back_to_extractive(
    corpus: Corpus, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(text="too late [1].", delay_s=30))
    fake_openai.default = Model()
    assistant = llm_assistant(corpus, embedder, fake_openai, timeout_s=0.5, retries=0)

    started = time.perf_counter()
    answer = assistant.answer(MEDIATION)
    elapsed = time.perf_counter() - started

    assert elapsed < 20  # gave up after the 0.5 s timeout instead of waiting for the 30 s reply
    assert answer.mode == "extractive"
    assert not answer.abstained
    assert "timed out" in answer.notice
    assert "extractive" in answer.notice.lower()
    assert answer.citations
    assert_quotes_verbatim(answer)
    assert len(fake_openai.requests) == 1


def test_llm_server_errors_exhaust_retries_then_extractive(
    corpus: Corpus, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(*[Reply(status=500, headers={"retry-after-ms": "1"})] * 3)
    fake_openai.default = Model()  # a fourth request would succeed; there must not be one
    assistant = llm_assistant(corpus, embedder, fake_openai, retries=2)

    answer = assistant.answer(MEDIATION)

    assert len(fake_openai.requests) == 3
    assert answer.mode == "extractive"
    assert not answer.abstained
    assert "HTTP 500" in answer.notice
    assert answer.citations


def test_llm_abstain_reply_is_an_abstention(
    corpus: Corpus, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = Model(answer=lambda ps: ABSTAIN_TEXT)
    answer = llm_assistant(corpus, embedder, fake_openai).answer(MEDIATION)

    assert answer.abstained
    assert answer.mode == "llm"
    assert answer.text == ABSTAIN_TEXT
    assert answer.citations == []
    assert answer.notice == ""


def test_llm_not_called_when_nothing_is_relevant(
    corpus: Corpus, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = Model()
    answer = llm_assistant(corpus, embedder, fake_openai).answer(UNCOVERED[0])

    assert answer.abstained and answer.text == ABSTAIN_TEXT and answer.mode == "llm"
    assert fake_openai.requests == []


def test_answer_stream_yields_deltas_then_answer(
    corpus: Corpus, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    model = Model(answer=lambda ps: f"{cite(quotable(ps[1]), 1)} {cite(quotable(ps[2]), 2)}")
    fake_openai.default = model
    assistant = llm_assistant(corpus, embedder, fake_openai)

    events = list(assistant.stream(MEDIATION))

    assert isinstance(events[0], PassagesFound) and events[0].passages
    final = events[-1]
    assert isinstance(final, Final)
    deltas = events[1:-1]
    assert len(deltas) >= 2
    assert all(isinstance(e, TextDelta) for e in deltas)
    assert "".join(e.text for e in deltas if isinstance(e, TextDelta)) == model.answers[0]
    answer = final.answer
    assert answer.mode == "llm" and not answer.abstained
    assert answer.text == model.answers[0]
    assert [c.n for c in answer.citations] == [1, 2]
    assert [p.chunk_id for p in answer.passages] == [p.chunk_id for p in events[0].passages]


def test_extractive_stream_yields_text_then_answer(extractive: Desk) -> None:
    events = list(extractive.stream(MEDIATION))

    assert isinstance(events[0], PassagesFound)
    final = events[-1]
    assert isinstance(final, Final)
    deltas = [e for e in events[1:-1] if isinstance(e, TextDelta)]
    assert len(deltas) == len(events) - 2 >= 1
    assert "".join(d.text for d in deltas) == final.answer.text


def test_stream_of_an_abstention_says_why(extractive: Desk) -> None:
    events = list(extractive.stream(UNCOVERED[0]))

    assert isinstance(events[0], PassagesFound)
    assert any(isinstance(e, Notice) and e.kind == "abstain" for e in events)
    final = events[-1]
    assert isinstance(final, Final) and final.answer.abstained


def test_llm_follow_up_is_condensed(
    corpus: Corpus, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = Model()
    assistant = llm_assistant(corpus, embedder, fake_openai)
    first = assistant.answer(MEDIATION)
    assert first.mode == "llm" and not first.abstained
    assert chat_prompts(fake_openai, "Follow-up question") == []

    follow_up = "And what did Borrell say?"
    answer = assistant.answer(follow_up, history=[Turn(MEDIATION, first)])

    condense = chat_prompts(fake_openai, "Follow-up question")
    assert len(condense) == 1
    assert f"User: {MEDIATION}" in condense[0]
    assert f"Follow-up question: {follow_up}" in condense[0]
    assert answer.standalone_question == CONDENSED
    assert answer.question == follow_up
    assert answer.as_json()["standalone_question"] == CONDENSED
    answer_prompts = chat_prompts(fake_openai, "<passages>")
    assert len(answer_prompts) == 2
    assert f"Question: {CONDENSED}" in answer_prompts[1]
    assert answer.mode == "llm" and not answer.abstained
    # usage counts both calls of this answer (condense + answer), 50 + 50 prompt tokens each
    assert answer.usage.prompt_tokens == 2 * first.usage.prompt_tokens


def test_extractive_follow_up_carries_the_earlier_question(
    extractive: Desk, corpus: Corpus
) -> None:
    first = extractive.answer(MEDIATION)
    answer = extractive.answer("And what did Borrell say?", history=[Turn(MEDIATION, first)])

    assert MEDIATION in answer.standalone_question
    assert "Borrell" in answer.standalone_question
    assert not answer.abstained
    borrell = corpus.doc_ids({"borrell-says-china-must-mediate.txt"})
    assert any(c.passage.doc_id in borrell for c in answer.citations)
    assert_quotes_verbatim(answer)


def test_extractive_standalone_follow_up_is_left_alone(extractive: Desk) -> None:
    first = extractive.answer(MEDIATION)
    question = "Which country topped the medal table at the Beijing Winter Olympics?"
    answer = extractive.answer(question, history=[Turn(MEDIATION, first)])
    assert answer.standalone_question == question


_BAD_CHOOSER = (
    "choice.choose_extractive sums option mentions over every retrieved sentence with a 0.5 "
    "floor, so an option named often in unrelated passages (China) or in the top-ranked chunk "
    "beats the one the evidence supports"
)


@pytest.mark.parametrize(
    ("question", "choices", "right"),
    [
        (
            "Where did Sergei Lavrov and Dmytro Kuleba meet on March 10, 2022?",
            ["Rome", "Antalya", "Minsk", "Istanbul"],
            "Antalya",
        ),
        (
            "Which organization did Wang say would send humanitarian supplies to Ukraine?",
            ["UNICEF", "World Food Programme", "The Red Cross Society of China", "Oxfam"],
            "The Red Cross Society of China",
        ),
        (
            "Who wrote a Washington Post op-ed on China's Ukraine position on March 15, 2022?",
            ["Wang Yi", "Qin Gang", "Yang Jiechi", "Hua Chunying"],
            "Qin Gang",
        ),
        (
            "Which country topped the medal table at the Beijing Winter Olympics?",
            ["Norway", "Germany", "China", "United States"],
            "Norway",
        ),
        (
            "Who dissented from the Fed's March 2022 decision?",
            ["Jerome Powell", "James Bullard", "Janet Yellen", "Lael Brainard"],
            "James Bullard",
        ),
        (
            "Where will the 2026 Winter Olympics be held?",
            ["Beijing", "Milan and Cortina d'Ampezzo", "Salt Lake City", "Sapporo"],
            "Milan and Cortina d'Ampezzo",
        ),
    ],
)
def test_extractive_multiple_choice(
    extractive: Desk, question: str, choices: list[str], right: str
) -> None:
    answer = extractive.answer(question, choices=choices)
    assert answer.choice == right
    assert answer.as_json()["choice"] == right


def test_llm_multiple_choice_uses_the_letter(
    corpus: Corpus, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = Model(choice="B")
    assistant = llm_assistant(corpus, embedder, fake_openai)
    question = "Which country topped the medal table at the Beijing Winter Olympics?"
    choices = ["Norway", "Germany", "China", "United States"]

    answer = assistant.answer(question, choices=choices)

    assert answer.choice == choices[1]
    choice_prompts = chat_prompts(fake_openai, "\nOptions:\n")
    assert len(choice_prompts) == 1
    assert "A. Norway\nB. Germany\nC. China\nD. United States" in choice_prompts[0]
    assert f"Question: {question}" in choice_prompts[0]
    assert answer.mode == "llm"


# -- a real model style the checker must not punish -------------------------------------------


def test_llm_marker_after_full_stop_still_counts(
    corpus: Corpus, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = Model(answer=lambda ps: f"{quotable(ps[1])} [1]")
    answer = llm_assistant(corpus, embedder, fake_openai).answer(MEDIATION)

    assert not answer.abstained
    assert [(c.n, c.supported) for c in answer.citations] == [(1, True)]


# -- prompts ----------------------------------------------------------------------------------


def test_prompt_without_placeholders_names_the_missing_ones() -> None:
    with pytest.raises(PromptError) as info:
        prompts.validate("answer", "no placeholders")
    message = str(info.value)
    assert "prompts/answer.md" in message
    assert "missing" in message
    for name in ("question", "passages", "today", "abstain_text"):
        assert name in message


def test_prompt_with_unknown_placeholder_names_it() -> None:
    with pytest.raises(PromptError) as info:
        prompts.validate("condense", "{history} {question} {qestion}")
    message = str(info.value)
    assert "unknown" in message and "qestion" in message
    assert "missing" not in message


def test_prompt_with_malformed_braces_is_a_prompt_error() -> None:
    with pytest.raises(PromptError, match="malformed"):
        prompts.validate("choice", "{question} {passages} {options")


def test_shipped_prompts_load_and_render() -> None:
    loaded = prompts.load_all()
    assert set(loaded) == {"answer", "condense", "choice", "judge"}
    for name, prompt in loaded.items():
        assert prompts.placeholders(prompt.template) == prompts.EXPECTED[name]
        rendered = prompt.render(**{key: f"<{key}>" for key in prompts.EXPECTED[name]})
        assert all(f"<{key}>" in rendered for key in prompts.EXPECTED[name])
    with pytest.raises(PromptError, match="no value"):
        loaded["answer"].render(question="q")
    with pytest.raises(PromptError, match="no prompt named"):
        prompts.load("nonexistent")


def test_follow_up_keeps_the_filters(extractive: Desk) -> None:
    """Passages carried over from the last turn must not slip past this turn's filters."""
    first = extractive.answer("What did Kuleba ask China to do?")
    assert not first.abstained
    follow = extractive.answer(
        "What else did he say?",
        history=[Turn(first.question, first)],
        filters=Filters(source="Atlas Wire"),
    )
    assert {p.source for p in follow.passages} <= {"Atlas Wire"}
    for c in follow.citations:
        assert c.passage.source == "Atlas Wire"


def test_follow_up_rescores_carried_passages(extractive: Desk) -> None:
    first = extractive.answer("What did Kuleba ask China to do?")
    follow = extractive.answer("What did he ask?", history=[Turn(first.question, first)])
    fresh = {p.chunk_id: p.dense for p in extractive.search(follow.standalone_question, k=50)}
    for p in follow.passages:
        if p.chunk_id in fresh:
            assert abs(p.dense - fresh[p.chunk_id]) < 1e-4  # similarity to this question
