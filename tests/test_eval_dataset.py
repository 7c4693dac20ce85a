"""Eval data: case and suite validation, the hand-written examples suite, RealTime QA adapter."""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from pathlib import Path

import pytest

from evals import realtimeqa
from evals.dataset import (
    Case,
    EvalDataError,
    Suite,
    load_cases,
    load_suite,
    resolve_gold,
)
from ingest.loaders import Article, load_path, path_doc_id

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "evals" / "suites"
# Read before conftest's autouse fixture clears NEWSDESK_* from each test's environment.
RTQA_ENV = os.environ.get(realtimeqa.ENV_DIR)


def _write(path: Path, lines: list[object]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def _error(path: Path) -> str:
    with pytest.raises(EvalDataError) as info:
        load_cases(path)
    return str(info.value)


# --- cases ---------------------------------------------------------------------------------


def test_load_cases_types_defaults_and_round_trip(tmp_path: Path) -> None:
    good = {"id": 7, "question": " Who? ", "answers": ["A"], "choices": ["A", "B"]}
    path = _write(
        tmp_path / "cases.jsonl", [good, "", {"id": "x", "question": "Q", "must_abstain": True}]
    )
    first, second = load_cases(path)
    assert first == Case(id="7", question="Who?", answers=["A"], choices=["A", "B"])
    assert second.must_abstain and second.answers == [] and second.history == []
    again = _write(tmp_path / "again.jsonl", [first.as_json(), second.as_json()])
    assert load_cases(again) == [first, second]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"id": "a", "question": ', ["malformed JSON"]),
        ({"id": "a", "answers": ["x"]}, ["field 'question' is missing"]),
        ({"id": "a", "question": "Q", "answers": "x"}, ["field 'answers'", "list of strings"]),
        ({"id": "a", "question": "Q", "answers": [3]}, ["field 'answers'"]),
        ({"id": True, "question": "Q", "answers": ["x"]}, ["field 'id'"]),
        ({"id": "a", "question": "Q", "must_abstain": "yes"}, ["field 'must_abstain'"]),
        ({"id": "a", "question": "Q", "answers": ["x"], "choices": ["x"]}, ["field 'choices'"]),
        ({"id": "a", "question": "Q", "answers": ["z"], "choices": ["x", "y"]}, ["not one of"]),
        (
            {"id": "a", "question": "Q", "must_abstian": True},
            ["field 'must_abstian' is not a known field", "did you mean 'must_abstain'"],
        ),
        (
            {"id": "a", "question": "Q", "must_abstain": True, "answers": ["x"]},
            ["field 'answers'", "must_abstain"],
        ),
        ({"id": "a", "question": "Q"}, ["nothing to score"]),
        ([1, 2], ["not a JSON object"]),
    ],
)
def test_case_errors_name_file_line_and_field(
    tmp_path: Path, line: object, expected: list[str]
) -> None:
    ok = {"id": "ok", "question": "Fine?", "answers": ["yes"]}
    message = _error(_write(tmp_path / "cases.jsonl", [ok, "", line]))
    assert "cases.jsonl:3: " in message
    for part in expected:
        assert part in message


def test_duplicate_ids_and_all_errors_listed(tmp_path: Path) -> None:
    lines: list[object] = [{"id": "a", "question": "Q", "answers": ["x"]}] * 2
    lines += [{"id": f"b{i}", "answers": ["x"]} for i in range(12)]
    with pytest.raises(EvalDataError) as info:
        load_cases(_write(tmp_path / "cases.jsonl", lines))
    message = str(info.value)
    assert "cases.jsonl:2: field 'id': duplicate id 'a' (first on line 1)" in message
    assert "13 problems" in message and "... and 3 more" in message
    assert len(info.value.problems) == 13


def test_missing_and_empty_case_files(tmp_path: Path) -> None:
    assert "cases file not found" in _error(tmp_path / "nope.jsonl")
    assert "no cases" in _error(_write(tmp_path / "empty.jsonl", [""]))


def test_resolve_gold_file_ids(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    case = Case(id="c", question="Q", gold_doc_ids=["file:a.txt", "plain-id"])
    assert resolve_gold(case, [tmp_path]).gold_doc_ids == [
        path_doc_id(tmp_path / "a.txt"),
        "plain-id",
    ]
    with pytest.raises(EvalDataError, match=r"'file:b\.txt' is not a file"):
        resolve_gold(Case(id="c", question="Q", gold_doc_ids=["file:b.txt"]), [tmp_path])


# --- suites --------------------------------------------------------------------------------


def _suite(tmp_path: Path, body: str, cases: bool = True) -> Path:
    (tmp_path / "articles").mkdir(exist_ok=True)
    if cases:
        _write(tmp_path / "cases.jsonl", [{"id": "a", "question": "Q", "answers": ["x"]}])
    path = tmp_path / "suite.toml"
    path.write_text('corpus = ["articles"]\ncases = "cases.jsonl"\n' + body)
    return path


def test_suite_minimal_defaults_fingerprint_and_gate(tmp_path: Path) -> None:
    path = _suite(tmp_path, "[settings]\nk = 4\n[thresholds]\nhit_at_5 = 0.5\np95_ms = 900\n")
    suite = load_suite(tmp_path)
    assert (suite.name, suite.kind, suite.mode, suite.k) == (tmp_path.name, "jsonl", "auto", 10)
    assert suite.corpus == [(tmp_path / "articles").resolve()] and suite.settings == {"k": 4}
    before = suite.fingerprint()
    assert len(before) == 64 and before == load_suite(path).fingerprint()
    (tmp_path / "cases.jsonl").write_text('{"id": "b", "question": "Q", "answers": ["y"]}\n')
    assert suite.fingerprint() != before
    assert suite.failures({"hit_at_5": 0.5, "p95_ms": 800}) == []
    failures = suite.failures({"hit_at_5": 0.4, "p95_ms": 901})
    assert len(failures) == 2 and "below" in failures[0] and "above" in failures[1]
    assert "no value" in suite.failures({})[0]


@pytest.mark.parametrize(
    ("body", "cases", "expected"),
    [
        (
            "[settings]\nkk = 3\n",
            True,
            ["suite.toml", "field 'settings.kk' is not", "mean 'settings.k'"],
        ),
        ("[settings]\nk = 99\n", True, ["suite.toml", "'settings.k'", "less than or equal"]),
        ("[settings]\nhome = '/tmp'\n", True, ["'settings.home' cannot be set"]),
        ("name = \n", True, ["suite.toml:3: invalid TOML"]),
        ("", False, ["suite.toml", "field 'cases'", "not found"]),
        ("mode = 'fast'\n", True, ["field 'mode' must be one of"]),
        ("[thresholds]\nhit_at_5 = 'high'\n", True, ["'thresholds.hit_at_5' must be a number"]),
        ("tresholds = 1\n", True, ["'tresholds' is not a known suite key"]),
        ("[realtimeqa]\nweeks = 2\n", True, ["'realtimeqa' is only for suites of kind"]),
    ],
)
def test_suite_errors(tmp_path: Path, body: str, cases: bool, expected: list[str]) -> None:
    _suite(tmp_path, body, cases)
    with pytest.raises(EvalDataError) as info:
        load_suite(tmp_path / "suite.toml")
    for part in expected:
        assert part in str(info.value)


def test_missing_suite_file(tmp_path: Path) -> None:
    with pytest.raises(EvalDataError, match="suite file not found"):
        load_suite(tmp_path)


# --- the examples suite ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def examples() -> tuple[Suite, list[Case]]:
    suite = load_suite(SUITES / "examples")
    return suite, suite.load_cases()


def _corpus_texts(suite: Suite) -> dict[str, str]:
    texts: dict[str, str] = {}
    for root in suite.corpus:
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            for item in load_path(path, 10**8):
                assert isinstance(item, Article), str(item)
                texts[item.doc_id] = item.text
    return texts


def test_examples_suite_shape(examples: tuple[Suite, list[Case]]) -> None:
    suite, cases = examples
    assert suite.kind == "jsonl" and suite.mode == "extractive" and suite.gate
    assert suite.corpus == [(ROOT / "examples" / "articles").resolve()]
    tags = Counter(t for c in cases for t in c.tags)
    assert len(cases) >= 30 and tags["who-said"] >= 6 and tags["date"] >= 5
    assert sum(bool(c.history) for c in cases) >= 3
    assert sum(c.must_abstain and not c.answers and not c.gold_doc_ids for c in cases) >= 5
    assert sum(bool(c.choices) for c in cases) >= 4
    assert any(c.question == "Will China mediate between Russia and Ukraine?" for c in cases)


def test_examples_gold_resolve_and_answers_occur(examples: tuple[Suite, list[Case]]) -> None:
    suite, cases = examples
    raw = {c.id: c for c in load_cases(suite.cases_path)} if suite.cases_path else {}
    for case in raw.values():
        for gold in case.gold_doc_ids:
            if gold.startswith("file:"):
                assert (suite.corpus[0] / gold.removeprefix("file:")).is_file(), gold
    texts = _corpus_texts(suite)
    for case in cases:
        assert all(g in texts for g in case.gold_doc_ids), case.id
        if case.must_abstain:
            continue
        assert case.gold_doc_ids, case.id
        gold_texts = [texts[g].casefold() for g in case.gold_doc_ids]
        for answer in case.answers:
            assert any(answer.casefold() in t for t in gold_texts), (case.id, answer)


# --- RealTime QA -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rtqa_dir() -> Path:
    try:
        return realtimeqa.data_dir(RTQA_ENV)
    except realtimeqa.BenchmarkMissing as exc:
        pytest.skip(str(exc))


def test_benchmark_missing_is_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(realtimeqa.ENV_DIR, str(tmp_path))
    with pytest.raises(realtimeqa.BenchmarkMissing) as info:
        realtimeqa.data_dir()
    assert str(tmp_path) in str(info.value) and "skipped" in str(info.value)


def test_realtimeqa_suite_and_all_questions(rtqa_dir: Path) -> None:
    suite = load_suite(SUITES / "realtimeqa-dev" / "suite.toml")
    assert suite.kind == "realtimeqa" and suite.cases_path is None and not suite.gate
    assert suite.thresholds["choice_accuracy"] == pytest.approx(0.705)
    cases = realtimeqa.load_cases(rtqa_dir)
    assert len(cases) == 369 and len({c.id for c in cases}) == 369
    out = [c for c in cases if c.must_abstain]
    assert len(out) == 50 and all(not c.answers and "out_of_corpus" in c.tags for c in out)
    inside = [c for c in cases if not c.must_abstain]
    assert all(c.answers and c.choices and c.answers[0] in c.choices for c in inside)
    assert sum("has_gold" in c.tags for c in cases) == 102
    assert len(realtimeqa.weeks_for(cases)) == 11
    assert all("" not in (c.choices or []) for c in cases)


def test_realtimeqa_selection_deterministic_and_mixed(rtqa_dir: Path) -> None:
    two = realtimeqa.load_cases(rtqa_dir, weeks=2)
    assert [c.id for c in two] == [c.id for c in realtimeqa.load_cases(rtqa_dir, weeks=2)]
    assert realtimeqa.weeks_for(two) == {"20221021", "20221104"}
    n_out = sum(c.must_abstain for c in two)
    assert n_out >= 5 and len(two) - n_out == 60
    limited = realtimeqa.load_cases(rtqa_dir, weeks=2, limit=20)
    assert [c.id for c in limited] == [c.id for c in realtimeqa.load_cases(rtqa_dir, 2, 20)]
    assert len(limited) == 20 and 1 <= sum(c.must_abstain for c in limited) < 20
    assert {c.id for c in limited} <= {c.id for c in two}
    small = realtimeqa.load_cases(rtqa_dir, limit=10)
    assert len(small) == 10 and 1 <= sum(c.must_abstain for c in small) <= 3


def test_realtimeqa_write_corpus_has_gold(rtqa_dir: Path, tmp_path: Path) -> None:
    cases = realtimeqa.load_cases(rtqa_dir, weeks=1, limit=15)
    weeks = realtimeqa.weeks_for(cases)
    path = realtimeqa.write_corpus(rtqa_dir, tmp_path / "work", weeks, cases)
    assert path.name.endswith(".jsonl.gz") and path.parent == tmp_path / "work"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    ids = {r["id"] for r in records}
    assert {g for c in cases for g in c.gold_doc_ids} <= ids and len(ids) == len(records)
    assert 100 < len(records) < 400
    assert set(records[0]) == {"id", "title", "url", "published_at", "text"}
    articles = [a for a in load_path(path, 10**9) if isinstance(a, Article)]
    assert len(articles) == len(records) and articles[0].published_at[4] == "-"


def test_realtimeqa_baselines(rtqa_dir: Path) -> None:
    table = realtimeqa.baselines(rtqa_dir)
    assert table["qa_open_gpt3_gcs"]["MC-acc"] == pytest.approx(0.705)
    assert table["qa_open_gpt3_gcs_gen"]["F1"] == pytest.approx(0.447)
    assert table["qa_closed_t5"]["n"] == 319
