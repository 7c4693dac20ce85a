"""The adversarial suite: scripted replies with false claims, served by the loopback fake server.

Each case's reply (``evals/suites/adversarial/replies.jsonl``) mixes faithful cited sentences
with one false claim of a known kind. Verification (``verify_answer`` over the passages the
answer was given) must drop every false sentence and keep every true one. The suite also runs
end to end with ``newsdesk eval run --llm`` against the same scripted server.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from assistant.answering.verify import SupportChecker, strip_markers, verify_answer
from assistant.desk import Desk
from assistant.index.store import Store
from assistant.models.embeddings import MiniLMEmbeddings
from assistant.settings import load_settings
from assistant.surfaces.cli import main
from evals.dataset import load_suite
from evals.judge import OfflineJudge
from evals.metrics import delivered_scores
from tests.conftest import ROOT
from tests.fake_openai import FakeOpenAI
from tests.template_model import TemplateModel

SUITE = ROOT / "evals" / "suites" / "adversarial"
KINDS = {
    "speaker-swap", "negated-quote", "vote-flipped", "count-flipped", "opposite-stance",
    "city-moved", "invented-trip", "condemned", "invented-cause", "wrong-number",
    "date-of-report", "uncited-invention", "no-markers",
}  # fmt: skip


def scripted() -> dict[str, list[dict[str, Any]]]:
    lines = (SUITE / "replies.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["id"]: r["sentences"] for r in map(json.loads, lines)}


def templates() -> dict[str, str]:
    replies = scripted()
    cases = load_suite(SUITE).load_cases()
    return {c.question: " ".join(s["text"] for s in replies[c.id]) for c in cases}


def test_every_case_has_a_scripted_reply_of_its_kind() -> None:
    cases = load_suite(SUITE).load_cases()
    replies = scripted()
    assert {c.id for c in cases} == set(replies)
    assert {t for c in cases for t in c.tags} - {"adversarial"} == KINDS
    for case in cases:
        sentences = replies[case.id]
        assert any(not s["supported"] for s in sentences), case.id
        # a case's reply keeps at least one true sentence, except the reply with no marker
        assert any(s["supported"] for s in sentences) or "no-markers" in case.tags


@pytest.fixture(scope="module")
def home(examples_home: Path) -> Path:
    return examples_home


def test_verification_drops_every_false_sentence_and_keeps_the_true_ones(
    home: Path, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    model = TemplateModel(templates())
    fake_openai.default = model
    settings = load_settings(home=home, llm_base_url=fake_openai.base_url, llm_model="fake-model",
                             llm_max_retries=0)  # fmt: skip
    assistant = Desk(settings, store=Store(settings, embedder))
    checker = SupportChecker(embedder)
    judge = OfflineJudge(checker)
    replies = scripted()
    failures = []
    for case in load_suite(SUITE).load_cases():
        answer = assistant.answer(case.question)
        raw = model.rendered.get(case.question)
        assert raw is not None, f"{case.id}: the model was not asked (abstained early?)"
        verified = verify_answer(raw, answer.passages, checker)
        delivered = strip_markers(verified.text)
        for sentence in replies[case.id]:
            claim = strip_markers(re.sub(r"\s*\[@[^\]]+\]", "", sentence["text"]))
            if (claim in delivered) != sentence["supported"]:
                failures.append((case.id, sentence["supported"], claim))
        texts = [p.text for p in answer.passages]
        shown = delivered_scores(verified.text, raw, texts, judge)
        assert shown.unsupported.value in (0.0, None), (case.id, verified.text)
        if shown.supported_kept.value is not None:
            assert shown.supported_kept.value == 1.0, case.id
    assert model.missed == [], "anchors found in no passage: retrieval or articles changed"
    assert failures == []


def test_the_suite_runs_in_llm_mode_against_the_scripted_server(
    home: Path, tmp_path: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    fake_openai.default = TemplateModel(templates())
    monkeypatch.setenv("NEWSDESK_LLM_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("NEWSDESK_LLM_MODEL", "fake-model")
    out = tmp_path / "run"
    code = main(["eval", "run", str(SUITE), "--out", str(out), "--home", str(home), "--gate"])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["manifest"]["mode"] == "llm"
    assert summary["manifest"]["judge"] == "offline-proxy"  # no judge model configured
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == len(KINDS) and all(r["error"] is None for r in records)
    for r in records:
        # a reply without a single marker supports nothing: the reader gets the extractive
        # answer (the evidence was relevant), told why
        expected = "extractive" if r["id"] == "adv-no-markers" else "llm"
        assert r["mode"] == expected, r["id"]
        assert {"raw_text", "removed", "scores"} <= r.keys()
        assert "unsupported_delivered" in r["scores"] and "supported_kept" in r["scores"]
