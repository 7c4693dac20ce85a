"""``newsdesk eval run / compare / add-case`` end to end, in-process through ``main()``.

Real parts only: the real ONNX MiniLM embedder, Chroma on disk, and for LLM mode the real
``langchain_openai`` client talking to ``tests.fake_openai.FakeOpenAI`` over loopback. The one
stand-in is a monkeypatched ``Desk.answer`` that raises for one question, to simulate a
case that fails (the core call is robust enough that no input makes it raise on its own).

The examples suite is the CI gate; it runs once per session (module fixture, ~20 s) and several
tests read its outputs. Everything else runs a six-case suite over three example articles.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from assistant import prompts
from assistant.desk import Desk
from assistant.surfaces.cli import main
from assistant.types import Answer
from evals.dataset import load_cases, load_suite
from evals.report import markdown
from ingest.loaders import path_doc_id
from tests.conftest import EXAMPLES
from tests.fake_openai import FakeOpenAI, Reply
from tests.prompt_reading import passages_in, prompt_of, quotable

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_SUITE = ROOT / "evals" / "suites" / "examples"
HEX16 = re.compile(r"^[0-9a-f]{16}$")
AGGREGATE_KEYS = {"mean", "n", "n_na", "n_error", "ci_low", "ci_high", "coverage"}
CITATION_METRICS = ("citation_recall", "citation_precision")
MANIFEST_KEYS = {
    "suite", "suite_hash", "dataset_hash", "corpus", "embedder", "chunker", "mode", "judge",
    "prompts", "package_version", "git_commit", "created",
}  # fmt: skip
RECORD_KEYS = {"id", "question", "retrieved", "answer", "scores", "timings", "error"}
JUDGE_MARK = "Reply with one word: yes or no"
MALFORMED = "maybe, it depends"

# -- the tiny suite: six cases over three example articles -----------------------------------

TINY_FILES = (
    "borrell-says-china-must-mediate.txt",
    "wang-yi-press-conference.html",
    "beijing-olympics-closing.txt",
)
BORREL_Q = "In which newspaper did Josep Borrell say China must mediate?"
WANG_Q = "When did Wang Yi hold his annual news conference?"
TINY_CASES: list[dict[str, Any]] = [
    {"id": "borrell-newspaper", "question": BORREL_Q, "answers": ["El Mundo"],
     "gold_doc_ids": ["file:borrell-says-china-must-mediate.txt"], "tags": ["who-said"]},
    {"id": "wang-yi-date", "question": WANG_Q, "answers": ["March 7, 2022", "March 7"],
     "gold_doc_ids": ["file:wang-yi-press-conference.html"], "tags": ["date"]},
    {"id": "olympics-medals",
     "question": "Which country topped the medal table at the Beijing 2022 Winter Olympics?",
     "answers": ["Norway"], "choices": ["Norway", "Germany", "China"],
     "gold_doc_ids": ["file:beijing-olympics-closing.txt"], "tags": ["multiple-choice"]},
    {"id": "followup-borrell-when", "question": "When did he say it?",
     "answers": ["March 5, 2022", "March 5"],
     "history": ["What did Josep Borrell say about China?"],
     "gold_doc_ids": ["file:borrell-says-china-must-mediate.txt"], "tags": ["followup", "date"]},
    {"id": "olympics-close", "question": "When did the Beijing Winter Olympics close?",
     "answers": ["February 20, 2022", "February 20"],
     "gold_doc_ids": ["file:beijing-olympics-closing.txt"], "tags": ["date"]},
    {"id": "abstain-world-cup", "question": "Who won the 2022 FIFA World Cup final?",
     "must_abstain": True, "tags": ["abstain"]},
]  # fmt: skip
TINY_TOML = """\
name = "tiny"
kind = "jsonl"
corpus = ["articles"]
cases = "cases.jsonl"
mode = "auto"
k = 10

[thresholds]
hit_at_5 = 0.5
"""


@dataclass
class Tiny:
    folder: Path  # suite.toml, cases.jsonl, articles/
    doc_ids: dict[str, str]  # file name -> doc id

    @property
    def suite(self) -> Path:
        return self.folder / "suite.toml"

    def variant(self, name: str, thresholds: str, extra: str = "") -> Path:
        """A second suite file over the same corpus and cases with other thresholds."""
        text = TINY_TOML.split("[thresholds]")[0] + extra + "\n[thresholds]\n" + thresholds
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    folder = tmp_path_factory.mktemp("tiny-suite")
    (folder / "articles").mkdir()
    for name in TINY_FILES:
        shutil.copy(EXAMPLES / name, folder / "articles" / name)
    (folder / "suite.toml").write_text(TINY_TOML, encoding="utf-8")
    lines = [json.dumps(c) for c in TINY_CASES]
    (folder / "cases.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    doc_ids = {name: path_doc_id(folder / "articles" / name) for name in TINY_FILES}
    return Tiny(folder, doc_ids)


# -- helpers ---------------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def results(out: Path) -> list[dict[str, Any]]:
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def summary_of(out: Path) -> dict[str, Any]:
    data = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in records}


def assert_score_json(score: dict[str, Any]) -> None:
    """A serialised Score: exactly a finite value, an error, or NA."""
    assert score in ({"na": True},) or set(score) in ({"value"}, {"error"}), score
    if "value" in score:
        assert isinstance(score["value"], float) and score["value"] == score["value"]


def assert_coverage(agg: dict[str, Any], cases: int) -> None:
    assert agg.keys() >= AGGREGATE_KEYS
    assert agg["n"] + agg["n_na"] + agg["n_error"] == cases
    assert agg["coverage"] == pytest.approx(agg["n"] / cases)
    if agg["n"] == 0:
        assert agg["mean"] is None and agg["ci_low"] is None and agg["ci_high"] is None
    else:
        assert agg["mean"] is not None
    if agg["n"] >= 2:
        assert agg["ci_low"] <= agg["mean"] <= agg["ci_high"]


# -- 1. the examples suite: the CI gate, run once ---------------------------------------------


@dataclass
class GateRun:
    code: int
    out: Path
    stdout: str
    stderr: str
    seconds: float


@pytest.fixture(scope="module")
def examples_run(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    base = tmp_path_factory.mktemp("examples-run")
    out = base / "run"
    with pytest.MonkeyPatch.context() as mp:  # the autouse env isolation is per test
        for key in [k for k in os.environ if k.startswith("NEWSDESK_")]:
            mp.delenv(key)
        for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            mp.delenv(key, raising=False)
        mp.setenv("NEWSDESK_HOME", str(base / "home"))
        mp.setenv("XDG_DATA_HOME", str(base / "xdg"))
        mp.setenv("NO_COLOR", "1")
        stdout, stderr = io.StringIO(), io.StringIO()
        started = time.perf_counter()
        with redirect_stdout(stdout), redirect_stderr(stderr):
            code = main(
                ["eval", "run", str(EXAMPLES_SUITE), "--out", str(out), "--extractive", "--gate"]
            )
        seconds = time.perf_counter() - started
    return GateRun(code, out, stdout.getvalue(), stderr.getvalue(), seconds)


def test_examples_gate_passes_and_writes_every_output(examples_run: GateRun) -> None:
    assert examples_run.code == 0, examples_run.stdout + examples_run.stderr
    for name in ("results.jsonl", "summary.json", "summary.md", "report.html"):
        assert (examples_run.out / name).is_file(), name
    assert "gate (enforced): passed" in examples_run.stdout
    assert "wrote " in examples_run.stdout
    summary = summary_of(examples_run.out)
    suite = load_suite(EXAMPLES_SUITE)
    assert summary["gate"] == {
        "enforced": True, "thresholds": suite.thresholds, "failures": [], "passed": True,
    }  # fmt: skip
    assert summary["errors"] == 0


def test_examples_results_have_one_complete_line_per_case(examples_run: GateRun) -> None:
    cases = load_suite(EXAMPLES_SUITE).load_cases()
    records = results(examples_run.out)
    assert 40 <= len(records) == len(cases)
    assert [r["id"] for r in records] == [c.id for c in cases]
    for record, case in zip(records, cases, strict=True):
        assert record.keys() >= RECORD_KEYS, record["id"]
        assert record["error"] is None, record["id"]
        assert record["mode"] == "extractive"
        assert record["gold_doc_ids"] == case.gold_doc_ids  # file: ids resolved
        assert 1 <= len(record["retrieved"]) <= 10
        for hit in record["retrieved"]:
            assert {"doc_id", "chunk_id", "score"} <= hit.keys()
        assert isinstance(record["answer"], str) and record["answer"]
        assert record["timings"]["total_ms"] > 0 and record["timings"]["search_ms"] > 0
        assert record["scores"], record["id"]
        for score in record["scores"].values():
            assert_score_json(score)
        if record["abstained"]:
            assert record["scores"]["citation_recall"] == {"na": True}
        # extractive briefs are sentences, not short answers: EM/F1 never apply
        assert record["scores"]["exact_match"] == {"na": True}
        assert record["scores"]["token_f1"] == {"na": True}
        if not case.gold_doc_ids:
            assert record["scores"]["hit_at_5"] == {"na": True}


def test_examples_manifest_pins_what_the_numbers_depend_on(examples_run: GateRun) -> None:
    man = summary_of(examples_run.out)["manifest"]
    assert man.keys() >= MANIFEST_KEYS
    assert man["suite"] == "examples"
    assert HEX16.match(man["suite_hash"]) and HEX16.match(man["dataset_hash"])
    assert re.match(r"^[0-9a-f]{16}:11docs$", man["corpus"]), man["corpus"]
    assert man["embedder"] and man["chunker"]
    assert man["mode"] == "extractive" and man["llm_model"] is None
    assert man["judge"] == "offline-proxy"
    assert man["prompts"] == {name: p.sha256 for name, p in prompts.load_all().items()}
    assert set(man["prompts"]) >= {"answer", "condense", "choice", "judge"}
    assert isinstance(man["package_version"], str) and man["package_version"]
    assert man["git_commit"] is None or re.match(r"^[0-9a-f]{40}$", man["git_commit"])
    assert datetime.fromisoformat(man["created"]).tzinfo is not None
    assert man["cases"] == len(results(examples_run.out))


def test_examples_metrics_carry_coverage_ci_and_judge(examples_run: GateRun) -> None:
    summary = summary_of(examples_run.out)
    records = results(examples_run.out)
    metrics = summary["metrics"]
    expected = {"hit_at_1", "hit_at_5", "hit_at_10", "recall_at_10", "mrr_at_10", "ndcg_at_10",
                "answer_bearing_at_5", "answer_first", "answer_recall", "choice_accuracy",
                "exact_match", "token_f1", *CITATION_METRICS, "uncited_factual", "out_of_range",
                "numbers_missing", "unsupported_delivered", "unsupported_delivered_rate",
                "supported_kept"}  # fmt: skip
    assert set(metrics) == expected
    for name, agg in metrics.items():
        assert_coverage(agg, len(records))
        assert agg["n_error"] == 0, name
        assert ("judge" in agg) == (name in CITATION_METRICS), name
        # the mean is over the values only, recomputed from results.jsonl
        values = [r["scores"][name]["value"] for r in records if "value" in r["scores"][name]]
        assert agg["n"] == len(values)
        if values:
            assert agg["mean"] == pytest.approx(sum(values) / len(values))
    for name in CITATION_METRICS:
        assert metrics[name]["judge"] == "offline-proxy"
        assert metrics[name]["n"] > 0
    # gold-less (must-abstain) cases are NA for retrieval, not misses
    no_gold = sum(not r["gold_doc_ids"] for r in records)
    assert no_gold > 0 and metrics["hit_at_5"]["n_na"] == no_gold
    assert metrics["exact_match"]["n"] == 0  # extractive mode
    assert set(summary["abstention"]) == {
        "abstain_precision", "abstain_recall", "answered_precision", "answer_rate",
    }  # fmt: skip
    for stage, lat in summary["latency_ms"].items():
        assert lat["p50"] <= lat["p95"], stage
    tags = Counter(t for r in records for t in r["tags"])
    assert {t: v["n"] for t, v in summary["by_tag"].items()} == dict(tags)


def test_examples_summary_md_and_self_contained_html(examples_run: GateRun) -> None:
    summary = summary_of(examples_run.out)
    md = (examples_run.out / "summary.md").read_text(encoding="utf-8")
    assert md == markdown(summary)
    assert "| metric | mean | 95% CI | n | n/a | errors |" in md
    assert "| citation_recall (offline-proxy) |" in md
    hit5 = summary["metrics"]["hit_at_5"]
    assert f"| hit_at_5 | {hit5['mean']:.3f} |" in md
    assert "gate (enforced): passed" in md
    html = (examples_run.out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert html.count("<svg") >= 2  # metric bars and latency histogram
    assert "<table>" in html and "Worst cases" in html
    external = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not external, external
    assert "<script" not in html.lower() and "<link" not in html.lower()


# -- 2. a failing case does not abort; the gate exits 3 --------------------------------------


def test_failing_case_is_recorded_as_errors_and_the_run_goes_on(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny: Tiny,
) -> None:
    real_answer = Desk.answer

    def failing(self: Desk, question: str, **kw: Any) -> Answer:
        if question == WANG_Q:
            raise RuntimeError("simulated failure")
        return real_answer(self, question, **kw)

    monkeypatch.setattr(Desk, "answer", failing)
    out = tmp_path / "run"
    code, stdout, _ = cli(capsys, "eval", "run", str(tiny.suite), "--out", str(out), "--gate")

    assert code == 0, stdout  # an errored case is not by itself a gate failure here
    records = results(out)
    assert [r["id"] for r in records] == [c["id"] for c in TINY_CASES]  # later cases ran too
    failed = by_id(records)["wang-yi-date"]
    assert failed["error"] == "RuntimeError: simulated failure"
    assert failed["scores"] == {}
    assert failed["question"] == WANG_Q and failed["gold_doc_ids"] == [
        tiny.doc_ids["wang-yi-press-conference.html"]
    ]
    others = [r for r in records if r["id"] != "wang-yi-date"]
    assert all(r["error"] is None and r["scores"] for r in others)
    summary = summary_of(out)
    assert summary["errors"] == 1
    for name, agg in summary["metrics"].items():
        assert agg["n_error"] == 1, name  # every metric of the failed case is an error
        assert_coverage(agg, len(TINY_CASES))
        assert agg["coverage"] <= 5 / 6
    # the abstention table and latency are over the cases that ran
    assert summary["latency_ms"]["total_ms"]["n"] == len(others)
    assert re.search(r"^\| hit_at_5 \|.*\| 1 \|$", stdout, re.M), stdout  # errors column
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "RuntimeError: simulated failure" in html


def test_gate_miss_exits_3_and_names_the_threshold(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny: Tiny
) -> None:
    # exact_match never applies in extractive mode, so a threshold on it has no value to meet
    strict = tiny.variant("strict.toml", "hit_at_5 = 0.5\nexact_match = 0.5\n")
    out = tmp_path / "gated"
    code, stdout, stderr = cli(
        capsys, "eval", "run", str(strict), "--out", str(out), "--extractive", "--gate"
    )
    assert code == 3, stdout + stderr
    assert "gate failed" in stderr and "exact_match: no value (threshold 0.5)" in stderr
    gate = summary_of(out)["gate"]
    assert gate["passed"] is False and gate["enforced"] is True
    assert gate["failures"] == ["exact_match: no value (threshold 0.5)"]  # hit_at_5 passed
    assert "gate (enforced): FAILED: exact_match: no value" in stdout

    # without --gate the same miss is reported but does not fail the command
    again = tmp_path / "reported"
    code, stdout, _ = cli(
        capsys, "eval", "run", str(strict), "--out", str(again), "--extractive",
        "--home", str(out / "home"),
    )  # fmt: skip
    assert code == 0
    assert "FAILED: exact_match: no value" in stdout
    assert summary_of(again)["gate"]["passed"] is False


# -- 3. LLM mode and the LLM judge against the fake server -----------------------------------


class Model:
    """A well-behaved model: condenses follow-ups, picks "A", answers by quoting passage [1]
    with " [1]", and judges "yes" (or ``MALFORMED`` for claims quoted for ``poisoned``)."""

    def __init__(self, poisoned: str | None = None) -> None:
        self.poisoned = poisoned
        self.poison: set[str] = set()  # claims (sentences) whose judgment is malformed
        self.quoted: dict[str, str] = {}  # question -> quoted sentence

    def __call__(self, request: dict[str, Any]) -> Reply | str:
        prompt = prompt_of(request)
        if JUDGE_MARK in prompt:
            claim = prompt.split("\nClaim: ", 1)[1].split("\n\n" + JUDGE_MARK)[0].strip()
            return MALFORMED if claim in self.poison else "yes"
        if "Follow-up question:" in prompt:
            users = re.findall(r"^User: (.*)$", prompt, re.M)
            follow = prompt.split("Follow-up question: ", 1)[1].strip()
            return f"{users[-1]} {follow}"
        if "\nOptions:\n" in prompt:
            return "A"
        question = prompt.rsplit("\nQuestion: ", 1)[1].strip()
        sentence = quotable(passages_in(prompt)[1])
        self.quoted[question] = sentence
        if question == self.poisoned:
            self.poison.add(sentence)
        return f"{sentence[:-1]} [1]."


def judge_requests(fake: FakeOpenAI) -> int:
    return sum(JUDGE_MARK in prompt_of(r) for r in fake.requests)


@pytest.fixture
def llm_env(monkeypatch: pytest.MonkeyPatch, fake_openai: FakeOpenAI) -> Iterator[FakeOpenAI]:
    monkeypatch.setenv("NEWSDESK_LLM_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("NEWSDESK_LLM_MODEL", "fake-model")
    monkeypatch.setenv("NEWSDESK_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("NEWSDESK_LLM_TIMEOUT_S", "20")
    monkeypatch.setenv("NEWSDESK_JUDGE_MODEL", "fake-judge")  # never the model under test
    yield fake_openai


def test_llm_judge_tier_values_and_cached_verdicts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny: Tiny, llm_env: FakeOpenAI
) -> None:
    fake = llm_env
    model = Model()
    fake.default = model
    first = tmp_path / "first"
    code, stdout, stderr = cli(capsys, "eval", "run", str(tiny.suite), "--out", str(first), "--llm")
    assert code == 0, stdout + stderr

    summary = summary_of(first)
    assert summary["manifest"]["mode"] == "llm"
    assert summary["manifest"]["judge"] == "llm:fake-judge"
    assert summary["manifest"]["judge_model"] == "fake-judge"
    assert summary["manifest"]["llm_model"] == "fake-model"
    # judge prompts went to the judge model, everything else to the model under test
    for request in fake.requests:
        judging = JUDGE_MARK in prompt_of(request)
        assert request["model"] == ("fake-judge" if judging else "fake-model")
        if judging:
            assert request["temperature"] == 0.0
    records = results(first)
    answered = [r for r in records if r["error"] is None and not r["abstained"]]
    assert len(answered) >= 4, [(r["id"], r["answer"]) for r in records]
    for r in answered:
        assert r["mode"] == "llm" and r["judge"] == "llm:fake-judge"
        assert r["answer"].endswith("[1]."), r["answer"]
        assert r["scores"]["citation_recall"] == {"value": 1.0}, r["id"]
        assert r["scores"]["citation_precision"] == {"value": 1.0}, r["id"]
        assert "value" in r["scores"]["exact_match"]  # short-answer metrics apply in LLM mode
    for name in CITATION_METRICS:
        agg = summary["metrics"][name]
        assert agg["judge"] == "llm:fake-judge"
        assert agg["mean"] == 1.0 and agg["n"] == len(answered) and agg["n_error"] == 0
    assert summary["usage"]["prompt_tokens"] > 0
    assert "llm:fake-judge" in (first / "summary.md").read_text(encoding="utf-8")
    # one judgment per distinct single-citation answer: repeats in the run hit the cache
    judged = judge_requests(fake)
    assert judged == len({r["answer"] for r in answered})
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "newsdesk" / "judge"  # shared by all runs
    entries = [json.loads(p.read_text()) for p in cache.glob("*.json")]
    assert len(entries) == judged and all(e["verdict"] is True for e in entries)

    # the same suite again over the same data home: every verdict comes from the cache
    answers_before = len(fake.requests) - judged
    second = tmp_path / "second"
    code, _, _ = cli(
        capsys, "eval", "run", str(tiny.suite), "--out", str(second), "--llm",
        "--home", str(first / "home"),
    )  # fmt: skip
    assert code == 0
    assert judge_requests(fake) == judged, "a cached verdict was asked again"
    assert len(fake.requests) - judged > answers_before  # the answers were asked again
    again = summary_of(second)
    for name in CITATION_METRICS:
        assert again["metrics"][name] == summary["metrics"][name]
    assert [r["scores"] for r in results(second)] == [r["scores"] for r in records]


def test_llm_run_without_a_judge_model_is_judged_offline(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny: Tiny,
    llm_env: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NEWSDESK_JUDGE_MODEL")
    llm_env.default = Model()
    out = tmp_path / "run"
    code, stdout, stderr = cli(capsys, "eval", "run", str(tiny.suite), "--out", str(out), "--llm")
    assert code == 0, stdout + stderr
    manifest = summary_of(out)["manifest"]
    assert manifest["mode"] == "llm" and manifest["llm_model"] == "fake-model"
    assert manifest["judge"] == "offline-proxy" and manifest["judge_model"] is None
    assert judge_requests(llm_env) == 0  # the model under test never judged itself
    answered = [r for r in results(out) if r["error"] is None and not r["abstained"]]
    assert answered and all(r["judge"] == "offline-proxy" for r in answered)
    for name in CITATION_METRICS:
        assert summary_of(out)["metrics"][name]["judge"] == "offline-proxy"


def test_malformed_judge_reply_is_an_error_never_a_zero(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny: Tiny, llm_env: FakeOpenAI
) -> None:
    model = Model(poisoned=WANG_Q)
    llm_env.default = model
    out = tmp_path / "run"
    code, stdout, stderr = cli(capsys, "eval", "run", str(tiny.suite), "--out", str(out), "--llm")
    assert code == 0, stdout + stderr
    poisoned = model.quoted[WANG_Q][:-1]  # the claim, as the answer quotes it before " [1]."

    records = by_id(results(out))
    bad = records["wang-yi-date"]
    assert bad["error"] is None and not bad["abstained"], bad["answer"]
    answered = [r for r in records.values() if not r["abstained"]]
    affected = {r["id"] for r in answered if poisoned in r["answer"]}  # same claim, same reply
    assert "wang-yi-date" in affected and len(affected) < len(answered)
    for r in answered:
        for name in CITATION_METRICS:
            if r["id"] in affected:
                assert set(r["scores"][name]) == {"error"}, (r["id"], name, r["scores"][name])
                assert "judge failed" in r["scores"][name]["error"]
            else:
                assert r["scores"][name] == {"value": 1.0}, (r["id"], name)

    summary = summary_of(out)
    for name in CITATION_METRICS:
        agg = summary["metrics"][name]
        assert agg["n_error"] == len(affected), (name, agg)
        assert agg["n"] == len(answered) - len(affected)
        assert agg["mean"] == 1.0  # the malformed replies did not count as "no"
        assert agg["coverage"] == pytest.approx(agg["n"] / len(TINY_CASES))
    assert summary["errors"] == 0  # a judge error is a metric error, not a failed case
    # a malformed reply is never cached (it may be transient)
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "newsdesk" / "judge"
    replies = [json.loads(p.read_text())["reply"] for p in cache.glob("*.json")]
    assert replies and MALFORMED not in replies
    asked = [prompt_of(r) for r in llm_env.requests if JUDGE_MARK in prompt_of(r)]
    assert sum(f"Claim: {poisoned}." in p for p in asked) == len(affected)  # asked each time


# -- 4. compare ------------------------------------------------------------------------------


def test_compare_two_runs_of_the_same_suite_finds_no_change(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny: Tiny
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli(capsys, "eval", "run", str(tiny.suite), "--out", str(a), "--extractive")[0] == 0
    code, _, _ = cli(
        capsys, "eval", "run", str(tiny.suite), "--out", str(b), "--extractive",
        "--home", str(a / "home"),
    )  # fmt: skip
    assert code == 0
    man_a, man_b = summary_of(a)["manifest"], summary_of(b)["manifest"]
    for key in ("dataset_hash", "corpus", "judge", "suite_hash"):
        assert man_a[key] == man_b[key], key

    code, stdout, stderr = cli(capsys, "eval", "compare", str(a), str(b))
    assert "warning" not in stderr
    rows = {line.split()[0]: line for line in stdout.splitlines()[1:] if line.strip()}
    assert {"hit_at_5", "mrr_at_10", "citation_recall", "total_ms"} <= rows.keys()
    for metric, line in rows.items():
        if metric == "total_ms":
            continue
        assert line.endswith(("no change", "no pairs")), line
        if line.endswith("no change"):
            assert " +0.000 " in line, line  # identical scores case by case
    # wall-clock total_ms is compared and reported too, but never gates
    assert not rows["total_ms"].endswith("REGRESSION"), rows["total_ms"]
    assert code == 0, stdout + stderr


def write_run(
    folder: Path,
    manifest: dict[str, Any],
    values: dict[str, Callable[[int], float | None]],
    n: int = 50,
    total_ms: Callable[[int], float] | None = None,
) -> Path:
    """A hand-written run folder: summary.json with a manifest, results.jsonl with scores."""
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"manifest": manifest}), encoding="utf-8")
    with (folder / "results.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(n):
            scores = {}
            for name, value_of in values.items():
                value = value_of(i)
                scores[name] = {"na": True} if value is None else {"value": value}
            record = {"id": f"case-{i:02d}", "scores": scores, "error": None}
            if total_ms is not None:
                record["timings"] = {"total_ms": total_ms(i)}
            fh.write(json.dumps(record) + "\n")
    return folder


MANIFEST = {"dataset_hash": "0123456789abcdef", "corpus": "feedbeef00000000:10docs",
            "judge": "offline-proxy"}  # fmt: skip


def test_compare_flags_a_significant_drop_as_regression(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = write_run(tmp_path / "base", MANIFEST, {
        "hit_at_5": lambda i: 1.0,
        "mrr_at_10": lambda i: 0.5,
        "uncited_factual": lambda i: 0.0,
        "answer_recall": lambda i: None,
    })  # fmt: skip
    new = write_run(tmp_path / "new", MANIFEST, {
        "hit_at_5": lambda i: 0.0 if i < 40 else 1.0,  # drops on 40 of 50 cases
        "mrr_at_10": lambda i: 1.0 if i < 30 else 0.5,  # better
        "uncited_factual": lambda i: 2.0 if i < 30 else 0.0,  # fewer is better: worse
        "answer_recall": lambda i: None,
    })  # fmt: skip
    code, stdout, stderr = cli(capsys, "eval", "compare", str(base), str(new))
    assert code == 3, stdout + stderr
    rows = {line.split()[0]: line for line in stdout.splitlines()[1:]}
    assert rows["hit_at_5"].endswith("REGRESSION")
    assert "-0.800" in rows["hit_at_5"] and " 50 " in rows["hit_at_5"]
    assert rows["mrr_at_10"].endswith("better")
    assert rows["uncited_factual"].endswith("REGRESSION")
    assert rows["answer_recall"].endswith("no pairs")

    # the same runs the other way round: the drop is an improvement, nothing regresses ...
    code, stdout, _ = cli(capsys, "eval", "compare", str(new), str(base))
    rows = {line.split()[0]: line for line in stdout.splitlines()[1:]}
    assert rows["hit_at_5"].endswith("better") and rows["uncited_factual"].endswith("better")
    # ... except mrr_at_10, which now drops
    assert rows["mrr_at_10"].endswith("REGRESSION") and code == 3

    # a run compared with itself never regresses
    code, stdout, _ = cli(capsys, "eval", "compare", str(base), str(base))
    assert code == 0 and "REGRESSION" not in stdout


def test_compare_refuses_runs_judged_differently_unless_forced(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    same = {"hit_at_5": lambda i: float(i % 2)}
    base = write_run(tmp_path / "base", MANIFEST, same)
    llm_judged = write_run(tmp_path / "llm", {**MANIFEST, "judge": "llm:fake-model"}, same)

    code, stdout, stderr = cli(capsys, "eval", "compare", str(base), str(llm_judged))
    assert code == 1
    assert "not comparable" in stderr and "judge differs" in stderr and "--force" in stderr
    assert "'offline-proxy' vs 'llm:fake-model'" in stderr
    assert "hit_at_5" not in stdout  # nothing compared

    code, stdout, stderr = cli(capsys, "eval", "compare", str(base), str(llm_judged), "--force")
    assert code == 0, stdout + stderr
    assert "warning" in stderr and "judge differs" in stderr
    assert re.search(r"^hit_at_5 .* no change$", stdout, re.M), stdout

    other_cases = write_run(tmp_path / "other", {**MANIFEST, "dataset_hash": "f" * 16}, same)
    code, _, stderr = cli(capsys, "eval", "compare", str(base), str(other_cases))
    assert code == 1 and "dataset_hash differs" in stderr

    code, _, stderr = cli(capsys, "eval", "compare", str(base), str(tmp_path / "missing"))
    assert code == 1 and "not an eval run folder" in stderr


# -- 5. add-case: from a logged answer to a regression case ----------------------------------


def test_add_case_from_a_logged_answer(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    for name in TINY_FILES:
        shutil.copy(EXAMPLES / name, articles / name)
    assert cli(capsys, "ingest", str(articles))[0] == 0
    code, stdout, _ = cli(capsys, "ask", BORREL_Q, "--json")
    assert code == 0
    logged = json.loads(stdout)
    assert not logged["abstained"] and logged["citations"], logged["answer"]
    answer_json = tmp_path / "answer.json"
    answer_json.write_text(json.dumps(logged, indent=2), encoding="utf-8")  # pretty-printed
    cases = tmp_path / "feedback.jsonl"

    code, stdout, stderr = cli(
        capsys, "eval", "add-case", str(cases), "--answer", str(answer_json),
        "--verdict", "good", "--expect", "El Mundo",
    )  # fmt: skip
    assert code == 0, stderr
    good = load_cases(cases)
    assert len(good) == 1
    case = good[0]
    assert f"added case {case.id}" in stdout
    assert case.question == BORREL_Q and case.answers == ["El Mundo"]
    assert case.gold_doc_ids == list(dict.fromkeys(c["doc_id"] for c in logged["citations"]))
    assert path_doc_id(articles / "borrell-says-china-must-mediate.txt") in case.gold_doc_ids
    assert case.must_abstain is False and case.tags == ["feedback", "good"]
    assert case.id.startswith("feedback-in-which-newspaper")

    # the same answer again: same id, refused, file unchanged
    before = cases.read_bytes()
    code, _, stderr = cli(
        capsys, "eval", "add-case", str(cases), "--answer", str(answer_json), "--verdict", "good"
    )
    assert code == 1 and "already exists" in stderr and case.id in stderr
    assert cases.read_bytes() == before

    # "wrong" needs the passages that were right
    code, _, stderr = cli(
        capsys, "eval", "add-case", str(cases), "--answer", str(answer_json), "--verdict", "wrong"
    )
    assert code == 1 and "needs --passage" in stderr
    code, _, stderr = cli(
        capsys, "eval", "add-case", str(cases), "--answer", str(answer_json), "--verdict", "wrong",
        "--passage", "no-such-chunk:0", "--id", "wrong-1",
    )  # fmt: skip
    assert code == 1 and "not among the answer's passages" in stderr
    right = next(p for p in logged["passages"] if p["doc_id"] not in case.gold_doc_ids[:1])
    code, _, stderr = cli(
        capsys, "eval", "add-case", str(cases), "--answer", str(answer_json), "--verdict", "wrong",
        "--passage", right["chunk_id"], "--id", "wrong-1",
    )  # fmt: skip
    assert code == 0, stderr
    code, _, stderr = cli(
        capsys, "eval", "add-case", str(cases), "--answer", str(answer_json),
        "--verdict", "should-abstain", "--id", "abstain-1", "--expect", "ignored",
    )  # fmt: skip
    assert code == 0, stderr
    code, _, stderr = cli(
        capsys, "eval", "add-case", str(cases), "--answer", str(answer_json), "--verdict", "meh"
    )
    assert code == 1 and "--verdict" in stderr
    assert cases.read_bytes().startswith(before)  # appended, never rewritten

    loaded = {c.id: c for c in load_cases(cases)}
    assert list(loaded) == [case.id, "wrong-1", "abstain-1"]
    assert loaded["wrong-1"].gold_doc_ids == [right["doc_id"]]
    assert loaded["wrong-1"].tags == ["feedback", "wrong"]
    abstain = loaded["abstain-1"]
    assert abstain.must_abstain is True and abstain.answers == [] and abstain.gold_doc_ids == []

    # the cases file runs as a suite over the same articles, gold ids line up with retrieval
    (tmp_path / "suite.toml").write_text(
        'name = "feedback"\ncorpus = ["articles"]\ncases = "feedback.jsonl"\n', encoding="utf-8"
    )
    out = tmp_path / "run"
    code, stdout, stderr = cli(capsys, "eval", "run", str(tmp_path), "--out", str(out))
    assert code == 0, stdout + stderr
    scored = by_id(results(out))
    assert scored[case.id]["scores"]["hit_at_5"] == {"value": 1.0}
    assert scored[case.id]["scores"]["answer_recall"] == {"value": 1.0}
    assert scored["abstain-1"]["scores"]["hit_at_5"] == {"na": True}


# -- once product bugs, kept as regression tests ----------------------------------------


def test_limit_caps_the_cases_of_a_jsonl_suite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny: Tiny
) -> None:
    out = tmp_path / "run"
    code, _, _ = cli(
        capsys, "eval", "run", str(tiny.suite), "--out", str(out), "--extractive", "--limit", "2"
    )
    assert code == 0
    assert len(results(out)) == 2  # the help says "At most N questions."


def test_latency_threshold_is_a_maximum(tiny: Tiny) -> None:
    suite = load_suite(tiny.variant("latency.toml", "total_ms_p95 = 60000\n"))
    assert suite.failures({"total_ms_p95": 120.0}) == []  # 120 ms is well under 60 s
    assert suite.failures({"total_ms_p95": 90000.0}) != []


def test_compare_does_not_gate_on_latency_noise(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Identical scores; every case 1 ms (1%) slower, as machine noise makes two runs of the
    # same code. Paired per-case latencies make such a shift "significant" at once.
    same = {"hit_at_5": lambda i: 1.0}
    base = write_run(tmp_path / "base", MANIFEST, same, total_ms=lambda i: 100.0 + i % 7)
    new = write_run(tmp_path / "new", MANIFEST, same, total_ms=lambda i: 101.0 + i % 7)
    code, stdout, _ = cli(capsys, "eval", "compare", str(base), str(new))
    assert code == 0, stdout
