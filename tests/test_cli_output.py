"""The command line's small promises (issue 9's CLI side) and the one answer renderer (issue 11):
help and version, usage errors, exit codes, plurals, whole passages, and how an answer is shown
in a pipe, in a colour terminal and in a ``NO_COLOR`` terminal."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from assistant.desk import Desk
from assistant.index.store import Store
from assistant.models.embeddings import MiniLMEmbeddings
from assistant.settings import load_settings
from assistant.surfaces.cli import main
from assistant.surfaces.render import AnswerView, style_of
from tests.fake_openai import INVENTION, FakeOpenAI, Reply
from tests.prompt_reading import passages_in, prompt_of, quotable

WANG = "What did Wang Yi say about mediation?"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def home(examples_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "home"
    shutil.copytree(examples_home, target)
    monkeypatch.setenv("NEWSDESK_HOME", str(target))
    return target


def test_bare_newsdesk_prints_help_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 0 and "Usage: newsdesk" in out and "chat" in out and "log" in out
    assert "error" not in err.lower()
    assert run(capsys, "--version")[:2] == (0, "newsdesk 0.1.0\n")
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "-vv" in out  # -v is repeatable, and says so


@pytest.mark.parametrize("args", [("ask", "   "), ("ask", ""), ("search", " \t")])
def test_a_blank_question_or_query_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 1 and out == ""
    assert re.search(r"error: .*(question|query) is empty", err)
    assert "Traceback" not in err


def test_ask_file_exits_2_when_lines_failed_and_plurals_are_right(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "a", "question": WANG}) + "\n{broken\n")
    code, out, _ = run(capsys, "ask", "--file", str(questions), "--json", "-k", "1")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 2 and [x["id"] for x in lines] == ["a", "line-2"] and "error" in lines[1]
    plain = tmp_path / "q.txt"
    plain.write_text(WANG + "\n")
    assert run(capsys, "ask", "--file", str(plain), "-k", "1")[0] == 0
    code, out, _ = run(capsys, "ask", WANG, "-k", "1")
    assert code == 0 and "· 1 passage ·" in out and "1 passages" not in out


def test_search_shows_each_passage_whole(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    code, out, _ = run(capsys, "search", "Wang Yi six-point humanitarian initiative", "--json")
    longest = max(json.loads(out)["results"], key=lambda p: len(p["text"]))["text"]
    assert len(longest) > 700  # longer than the old 600-character cut
    code, out, _ = run(capsys, "search", "Wang Yi six-point humanitarian initiative")
    shown = " ".join(re.sub(r"[│╭╮╰╯─]", " ", out).split())
    assert code == 0 and " ".join(longest.split()) in shown and " …" not in shown


def test_ask_logs_its_answers(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    assert run(capsys, "ask", WANG)[0] == 0
    assert run(capsys, "ask", WANG, "--json")[0] == 0
    out = run(capsys, "log", "--json")[1]
    entries = json.loads(out)["entries"]
    assert [e["surface"] for e in entries] == ["ask", "ask"]
    assert entries[0]["answer"]["citations"] and entries[0]["conversation_id"] is None


# -- the renderer --------------------------------------------------------------------------
def _consoles() -> dict[str, tuple[Console, io.StringIO]]:
    out: dict[str, tuple[Console, io.StringIO]] = {}
    for name, options in {
        "final": {},  # a pipe
        "plain": {"force_terminal": True, "no_color": True},
        "live": {"force_terminal": True, "no_color": False, "color_system": "standard"},
    }.items():
        buf = io.StringIO()
        out[name] = (Console(file=buf, width=200, **options), buf)  # type: ignore[arg-type]
    return out


def test_each_console_gets_its_style() -> None:
    assert {name: style_of(c) for name, (c, _) in _consoles().items()} == {
        "final": "final", "plain": "plain", "live": "live",
    }  # fmt: skip


def test_an_llm_answer_streams_then_shows_the_checked_answer(
    examples_home: Path, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    def model(request: dict[str, Any]) -> Reply:
        ps = passages_in(prompt_of(request))
        return Reply(text=f"{quotable(ps[1])[:-1]} [1]. {INVENTION}")

    fake_openai.default = model
    settings = load_settings(home=examples_home, llm_base_url=fake_openai.base_url,
                             llm_model="fake-model", llm_max_retries=0)  # fmt: skip
    desk = Desk(settings, store=Store(settings, embedder))
    seen: dict[str, str] = {}
    for name, (console, buf) in _consoles().items():
        answer = AnswerView(console).show(desk.stream(WANG), WANG, on_final=lambda a: "log #7")
        seen[name] = buf.getvalue()
        assert answer.mode == "llm" and INVENTION not in answer.text
        assert "1 sentence was removed" in seen[name] and "Sources" in seen[name]
        assert "log #7" in seen[name]
    assert INVENTION not in seen["final"] and "Checked answer" not in seen["final"]
    streamed, checked = seen["plain"].split("Checked answer:")
    assert INVENTION in streamed and INVENTION not in checked  # said as it came, then checked
    live = seen["live"]  # the live region showed the raw text; the checked answer replaced it
    assert "\x1b[" in live and "Checked answer" not in live
    assert live.rindex(INVENTION) < live.index("1 sentence was removed") < live.index("Sources")
