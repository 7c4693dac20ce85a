"""The CLI end to end, in-process through ``main()`` (exit codes, JSON contract, errors)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from assistant.surfaces.cli import main
from tests.conftest import EXAMPLES

PASSAGE_KEYS = {
    "rank", "doc_id", "chunk_id", "score", "title", "source", "location", "published_at", "text",
}  # fmt: skip
CITATION_KEYS = {
    "n", "rank", "doc_id", "chunk_id", "title", "source", "location", "published_at", "quote",
    "supported",
}  # fmt: skip
CHINA_DOCS_HINT = ("china", "beijing", "wang yi", "xi ", "mediat")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def ingested(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    articles = tmp_path / "articles"
    shutil.copytree(EXAMPLES, articles)
    code, out, _ = run(capsys, "ingest", str(articles))
    assert code == 0, out
    return articles


def test_ingest_summary_and_rerun_embeds_nothing(
    capsys: pytest.CaptureFixture[str], ingested: Path
) -> None:
    code, out, _ = run(capsys, "ingest", str(ingested), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["added"] == 0 and report["unchanged"] == 11 and report["chunks"] == 0


def test_ask_json_contract_extractive(capsys: pytest.CaptureFixture[str], ingested: Path) -> None:
    code, out, _ = run(capsys, "ask", "Will China mediate between Russia and Ukraine?", "--json")
    assert code == 0
    data = json.loads(out)
    assert {"question", "answer", "mode", "abstained", "citations", "passages", "timings",
            "usage"} <= data.keys()  # fmt: skip
    assert data["mode"] == "extractive" and data["abstained"] is False
    assert data["citations"], "an answerable question must cite passages"
    for c in data["citations"]:
        assert c.keys() >= CITATION_KEYS
        passage = next(p for p in data["passages"] if p["rank"] == c["rank"])
        assert passage["chunk_id"] == c["chunk_id"]
        assert c["quote"].split(" … ")[0] in passage["text"]
        assert f"[{c['n']}]" in data["answer"]
    for p in data["passages"]:
        assert p.keys() >= PASSAGE_KEYS
    top = data["passages"][0]
    assert any(h in (top["title"] + top["text"]).lower() for h in CHINA_DOCS_HINT)
    assert [p["rank"] for p in data["passages"]] == list(range(1, len(data["passages"]) + 1))


def test_ask_abstains_on_uncovered_question(
    capsys: pytest.CaptureFixture[str], ingested: Path
) -> None:
    code, out, _ = run(capsys, "ask", "Who won the 2022 FIFA World Cup final?", "--json")
    data = json.loads(out)
    assert code == 0 and data["abstained"] is True and data["citations"] == []
    assert data["answer"] == "I couldn't find this in the ingested articles."


def test_ask_human_output_lists_sources(capsys: pytest.CaptureFixture[str], ingested: Path) -> None:
    code, out, _ = run(capsys, "ask", "What did Wang Yi say about mediation?")
    assert code == 0
    assert "no language model was used" in out and "Sources" in out and "[1]" in out
    assert "\x1b[" not in out  # NO_COLOR is set by the test environment


def test_ask_file_jsonl_with_choices_and_bad_line(
    capsys: pytest.CaptureFixture[str], ingested: Path, tmp_path: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    rows = [
        {"id": "olympics", "question": "Which country topped the medal table at the Beijing "
         "Winter Olympics?", "choices": ["Germany", "Norway", "China", "United States"]},
        {"id": "fed", "question": "By how much did the Federal Reserve raise rates in March?"},
    ]  # fmt: skip
    bad_choices = {"id": "bad", "question": "Who won?", "choices": "Norway"}
    questions.write_text(
        json.dumps(rows[0])
        + "\n{not json\n"
        + json.dumps(rows[1])
        + "\n"
        + json.dumps(bad_choices)
        + "\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "ask", "--file", str(questions), "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [x["id"] for x in lines] == ["olympics", "line-2", "fed", "bad"]
    assert lines[3]["error"].endswith("q.jsonl:4: field 'choices' must be a list of strings")
    assert lines[0]["choice"] == "Norway"
    assert "error" in lines[1] and "q.jsonl:2" in lines[1]["error"]
    assert lines[2]["abstained"] is False and "choice" not in lines[2]
    assert "q.jsonl:2" in err


def test_ask_file_plain_text(
    capsys: pytest.CaptureFixture[str], ingested: Path, tmp_path: Path
) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("Will China mediate?\n\nWhen did Artemis I reach the pad?\n")
    code, out, _ = run(capsys, "ask", "-f", str(questions), "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [x["id"] for x in lines] == ["line-1", "line-3"]


def test_search_json_and_filters(capsys: pytest.CaptureFixture[str], ingested: Path) -> None:
    code, out, _ = run(capsys, "search", "China mediation", "-k", "3", "--json")
    data = json.loads(out)
    assert code == 0 and data["query"] == "China mediation" and len(data["results"]) == 3
    code, out, _ = run(capsys, "search", "China", "--since", "2022-03-15", "--json")
    results = json.loads(out)["results"]
    assert results and all(r["published_at"] >= "2022-03-15" for r in results)
    code, out, _ = run(capsys, "search", "China", "--source", "Eastbridge Daily", "--json")
    results = json.loads(out)["results"]
    assert results and {r["source"] for r in results} == {"Eastbridge Daily"}


def test_stats_json(capsys: pytest.CaptureFixture[str], ingested: Path) -> None:
    code, out, _ = run(capsys, "stats", "--json")
    data = json.loads(out)
    assert code == 0 and data["documents"] == 11 and data["chunks"] > 11
    assert data["collection"] == "news" and data["embedder"] == "all-MiniLM-L6-v2-onnx-int8"


def test_usage_errors_exit_1_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ask", "x", "--since", "yesterday")
    assert code == 1 and "'yesterday' is not a date" in err
    code, _, err = run(capsys, "ask")
    assert code == 1 and "QUESTION or --file" in err
    code, _, err = run(capsys, "frobnicate")
    assert code == 1


def test_nothing_ingested_is_a_friendly_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ask", "Will China mediate?")
    assert code == 1
    assert "nothing is ingested" in err and "newsdesk ingest" in err
    assert "Traceback" not in err


def test_bad_settings_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSDESK_K", "lots")
    code, _, err = run(capsys, "stats")
    assert code == 1 and "NEWSDESK_K" in err
    monkeypatch.delenv("NEWSDESK_K")
    monkeypatch.setenv("NEWSDESK_EMBEDDER", "openai")
    code, _, err = run(capsys, "stats")
    assert code == 1 and "OPENAI_API_KEY" in err


def test_ingest_with_skips_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = tmp_path / "good.md"
    good.write_text("---\ntitle: A test story\n---\nThe council approved the new bridge on "
                    "Tuesday. Construction starts in May.\n")  # fmt: skip
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    code, out, err = run(capsys, "ingest", str(good), str(bad), str(tmp_path / "missing.txt"))
    assert code == 2
    assert "1 added" in out and "2 skipped" in out
    assert "bad.jsonl:1" in err and "missing.txt" in err


def test_seed_article(
    capsys: pytest.CaptureFixture[str], seed_article: Path, tmp_path: Path
) -> None:
    code, _, _ = run(capsys, "ingest", str(seed_article), str(EXAMPLES))
    assert code == 0
    code, out, _ = run(capsys, "ask", "Will China mediate between Russia and Ukraine?", "--json")
    data = json.loads(out)
    assert code == 0 and not data["abstained"]
    assert any(p["text"] for p in data["passages"])
