"""``newsdesk chat`` driven as a user would: a real process under a pseudo-terminal (pexpect),
the example articles in a private copy of the shared collection, the scripted OpenAI-compatible
server over loopback for LLM mode; then what the screen showed and what the log holds."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from assistant.answerlog import AnswerLog
from tests.conftest import ROOT
from tests.fake_openai import FakeOpenAI, Reply
from tests.prompt_reading import passages_in, prompt_of, quotable

_ANSI = re.compile(r"\x1b\[[0-9;?<=>]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]|\r")
BIDEN = "What did Biden tell Xi in their video call?"
HOW_LONG = "How long did it last?"  # alone it abstains; after BIDEN it is about that call
BIDEN_TITLE = "Biden warns Xi of consequences"


def screen(text: str) -> str:
    """What the user read: terminal control sequences and carriage returns taken out."""
    return _ANSI.sub("", text)


def flat(text: str) -> str:
    """``text`` with its line breaks and runs of spaces as single spaces (the chat word-wraps
    to the terminal's width)."""
    return " ".join(text.split())


class Chat:
    """One ``newsdesk chat`` process on a pty, 200 columns wide."""

    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        environment = {
            **os.environ, "NEWSDESK_HOME": str(home), "NO_COLOR": "1", "TERM": "xterm",
            "PROMPT_TOOLKIT_NO_CPR": "1", **(env or {}),
        }  # fmt: skip
        self.child = pexpect.spawn(
            sys.executable, ["-m", "assistant.surfaces.cli", "chat", *args], cwd=str(ROOT),
            env=environment, encoding="utf-8", dimensions=(60, 200), timeout=60,
        )  # fmt: skip
        self.expect("Ctrl-D or /quit ends")

    def expect(self, pattern: str) -> str:
        """Wait for ``pattern`` (a regex) on the screen; the screen text up to it."""
        self.child.expect(pattern)
        return screen(self.child.before + self.child.after)

    def ask(self, question: str) -> str:
        """Type ``question``; the screen until the answer's footer (its log id)."""
        self.child.sendline(question)
        return self.expect(r"log #\d+")

    def command(self, line: str, first: str) -> str:
        """Type a command; the screen from ``first`` (a regex the output starts with: the echo
        of the typed line redraws the prompt) to the next prompt."""
        self.child.sendline(line)
        self.child.expect(first)
        start = screen(self.child.after)
        return start + self.expect("ask>")

    def quit(self) -> int:
        self.child.sendline("/quit")
        self.child.expect(pexpect.EOF)
        self.child.close()
        return int(self.child.exitstatus or 0)


@pytest.fixture
def home(examples_home: Path, tmp_path: Path) -> Path:
    """A private copy of the example collection: the chat writes its log and history here."""
    target = tmp_path / "home"
    shutil.copytree(examples_home, target)
    return target


def _entries(home: Path) -> list[Any]:
    with AnswerLog(home / "logs.db") as log:
        return log.list(100)[::-1]


def test_extractive_chat_session(home: Path) -> None:
    chat = Chat(home, "--extractive")
    first = chat.ask(BIDEN)
    first = flat(first)
    assert BIDEN_TITLE in first and "Sources" in first and "no language model was used" in first

    follow = chat.ask(HOW_LONG)  # needs the previous turn to mean anything
    assert f"→ searching: {BIDEN} {HOW_LONG}" in flat(follow)  # what was searched, shown
    assert "one hour and 50 minutes" in flat(follow)
    assert BIDEN_TITLE in flat(follow.split("Sources")[1])

    sources = flat(chat.command("/sources", "Sources"))
    assert sources.startswith("Sources [1] " + BIDEN_TITLE)
    quote = re.search(r"“(.*?)”", sources).group(1)  # type: ignore[union-attr]
    assert "one hour and 50 minutes" in quote  # the quoted span of source 1
    opened = flat(chat.command("/open 1", r"\[1\]"))
    assert opened.startswith("[1] " + BIDEN_TITLE) and "harborline-news.test/world" in opened
    assert quote in opened  # the passage whole, with the text after it in the article:
    assert "The two leaders also discussed Taiwan" in opened

    assert "unknown command /sorces; did you mean /sources?" in chat.command("/sorces", "unknown")
    assert "filters: since 2022-03-01" in chat.command("/since 2022-03-01", "filters")
    chat.ask("Where did the Winter Olympics close?")
    chat.command("/bad wrong date", r"marked log #\d+ bad \(wrong date\)")
    assert chat.quit() == 0

    entries = _entries(home)
    assert [e.question for e in entries] == [
        BIDEN, HOW_LONG, "Where did the Winter Olympics close?",
    ]  # fmt: skip
    assert len({e.conversation_id for e in entries}) == 1 and entries[0].surface == "chat"
    assert entries[1].standalone_question == f"{BIDEN} {HOW_LONG}"
    last = entries[2]
    assert last.filters == {"since": "2022-03-01"}
    assert all(p["published_at"] >= "2022-03-01" for p in last.answer["passages"])
    assert not any("Olympics" in p["title"] for p in last.answer["passages"])
    assert last.verdict is not None and (last.verdict.verdict, last.verdict.note) == (
        "bad", "wrong date",
    )  # fmt: skip
    assert (home / "chat_history").read_text().count(HOW_LONG) == 1  # input history persists


def _pick(passages: dict[int, str], *words: str) -> int:
    """The first passage that mentions one of ``words`` (else 1): what a model would cite."""
    for word in words:
        for n, text in passages.items():
            if word in text:
                return n
    return 1


class Model:
    """The scripted model of the LLM session: condenses follow-ups with the conversation, and
    answers each question as the test planned (``plan``: question word -> how)."""

    SLOW = " ".join(["Slowly"] + ["streaming"] * 60) + "."
    TAIWAN = " ".join(["Gradually"] + ["streaming"] * 60) + "."  # its own first word
    INVENTED = "The moon is made of green cheese [1]."
    CONDENSED = "How long did the video call between Biden and Xi last?"

    def __init__(self) -> None:
        self.condensed: list[str] = []

    def __call__(self, request: dict[str, Any]) -> Reply | str:
        prompt = prompt_of(request)
        if "Follow-up question:" in prompt:  # only HOW_LONG needs the conversation
            follow_up = prompt.rsplit("Follow-up question:", 1)[1].strip()
            condensed = self.CONDENSED if follow_up == HOW_LONG else follow_up
            self.condensed.append(condensed)
            return condensed
        question = prompt.rsplit("Question:", 1)[-1]
        ps = passages_in(prompt)
        if "restraint" in question:  # a stream cut off: no finish_reason, then it ends
            return Reply(text=self.SLOW, mode="no-finish")
        if "Taiwan" in question:
            return Reply(text=self.TAIWAN, interval_s=0.25)
        n = _pick(ps, "two-hour", "Biden")
        sentence = quotable(ps[n])
        if "Kuleba" in question:  # a citation the check removes
            return f"{sentence[:-1]} [{n}]. {self.INVENTED}"
        return f"{sentence[:-1]} [{n}]."


@pytest.fixture
def model_server() -> Iterator[tuple[FakeOpenAI, Model]]:
    with FakeOpenAI() as fake:
        model = Model()
        fake.default = model
        yield fake, model


def test_llm_chat_session(home: Path, model_server: tuple[FakeOpenAI, Model]) -> None:
    fake, model = model_server
    key = "sk-test-chat-Wq81secret"
    chat = Chat(home, env={
        "NEWSDESK_LLM_BASE_URL": fake.base_url, "NEWSDESK_LLM_MODEL": "fake-model",
        "OPENAI_API_KEY": key, "NEWSDESK_LLM_MAX_RETRIES": "0", "NEWSDESK_LLM_TIMEOUT_S": "20",
    })  # fmt: skip
    first = chat.ask(BIDEN)
    assert "llm ·" in first and BIDEN_TITLE in flat(first)
    follow = flat(chat.ask(HOW_LONG))
    assert "→ searching: How long did the video call between Biden and Xi last?" in follow
    assert "one hour and 50 minutes" in follow and BIDEN_TITLE in follow.split("Sources")[1]

    removed = flat(chat.ask("What did Kuleba ask?"))
    streamed, checked = removed.split("Checked answer:")
    assert "green cheese" in streamed and "green cheese" not in checked  # streamed, then checked
    assert "1 sentence was removed" in removed

    cut = flat(chat.ask("Did Xi urge restraint?"))
    assert "Slowly streaming" in cut  # the text as it came…
    assert "showing an extractive answer instead" in cut  # …then the fallback, said
    assert "no language model was used" in cut and "Sources" in cut

    chat.child.sendline("What did Biden and Xi say about Taiwan?")
    chat.expect("Gradually streaming streaming")  # this answer's, not an earlier one's
    chat.child.sendintr()  # Ctrl-C while the answer streams
    chat.expect("cancelled")
    chat.expect("ask>")
    after = chat.ask(BIDEN)  # the session goes on
    assert BIDEN_TITLE in flat(after)
    assert chat.quit() == 0

    entries = _entries(home)
    assert [e.question for e in entries] == [
        BIDEN, HOW_LONG, "What did Kuleba ask?", "Did Xi urge restraint?", BIDEN,
    ]  # the cancelled answer is not logged  # fmt: skip
    assert [e.mode for e in entries] == ["llm", "llm", "llm", "extractive", "llm"]
    assert entries[1].model == "fake-model" and set(entries[1].prompts) == {"answer", "condense"}
    assert entries[2].answer["removed"][0]["text"] == Model.INVENTED
    assert Model.CONDENSED in model.condensed  # the follow-up was condensed by the model
    for f in home.glob("logs.db*"):
        assert key.encode() not in f.read_bytes()


def test_piped_chat_and_an_empty_collection(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    """Not a terminal: plain lines in, plain text out. Nothing ingested: one line, go on."""
    import io

    from assistant.surfaces.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO('/k 0\n"""\nWill China\nmediate?\n"""\n/quit\n'))
    assert main(["chat"]) == 0
    out = capsys.readouterr().out
    assert "nothing is ingested in collection 'news' yet" in out
    assert "usage: /k N with N from 1 to 50" in out
    assert out.count("error: nothing is ingested") == 1  # the question, read as one block
    assert "Traceback" not in out


def test_piped_commands_save_history_and_continue(
    home: Path, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    """The commands the pty sessions do not type, then ``--continue`` in a new process."""
    import io

    from assistant.surfaces.cli import main

    monkeypatch.setenv("NEWSDESK_HOME", str(home))
    saved = tmp_path / "talk.md"
    script = [
        BIDEN, "/open 9", f"/save {saved}", "/history", "/until 5 March", "/until 2022-03-05",
        "/k 2", "/k 99", "/mode llm", "/mode extractive", "/filters",
        "What did Borrell say about China?", "/clear", "/sources", "/good", "/quit",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(script) + "\n"))
    assert main(["chat"]) == 0
    out = flat(capsys.readouterr().out)
    assert "the last answer has no source [9]" in out
    assert "saved 1 answer to" in out and "(this one)" in out
    assert "error: '5 March' is not a date like 2022-03-07 (or 'off')" in out
    assert "filters: until 2022-03-05 · k 2 · extractive mode" in out
    assert "usage: /k N with N from 1 to 50" in out and "no language model is configured" in out
    assert "new conversation" in out and "no answer yet: ask a question first" in out
    assert "no logged answer in this session to mark yet" in out
    markdown = saved.read_text()
    assert markdown.startswith("# newsdesk conversation") and f"## {BIDEN}" in markdown
    assert f"- **[1]** {BIDEN_TITLE}" in markdown and "   > " in markdown

    first, borrell = _entries(home)
    assert borrell.filters == {"until": "2022-03-05"} and len(borrell.answer["passages"]) <= 2
    assert all(p["published_at"] <= "2022-03-05" for p in borrell.answer["passages"])

    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{HOW_LONG}\n"))
    assert main(["chat", "--continue"]) == 0  # picks up the first conversation, not the cleared
    out = flat(capsys.readouterr().out)
    assert f"continuing conversation {first.conversation_id[:8]} (2 turns): {BIDEN}" in out
    assert re.search(rf"→ searching: [^→]*What did Borrell say about China\? {HOW_LONG}", out)
    assert _entries(home)[-1].conversation_id == first.conversation_id
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["chat", "--conversation", "nope"]) == 1
    assert "no conversation 'nope' in the answer log" in capsys.readouterr().err


def test_an_unreachable_model_and_a_failing_store_are_one_line_each(
    home: Path, embedder: Any
) -> None:
    import io

    from rich.console import Console

    from assistant.desk import Desk
    from assistant.index.store import Store
    from assistant.settings import load_settings
    from assistant.surfaces.chat import ChatSession

    with FakeOpenAI() as gone:
        url = gone.base_url  # a port nothing listens on once the server has stopped
    settings = load_settings(home=home, llm_base_url=url, llm_model="fake-model",
                             llm_max_retries=0, llm_timeout_s=5)  # fmt: skip
    buf = io.StringIO()
    session = ChatSession(
        desk=Desk(settings, store=Store(settings, embedder)), console=Console(file=buf),
        answer_log=None, extractive=False,
    )  # fmt: skip
    session.ask(BIDEN)
    said = buf.getvalue()
    assert "the language model could not be reached; showing an extractive answer" in said
    assert BIDEN_TITLE in flat(said) and session.last is not None
    Store(settings).drop()  # another process deletes the collection under the chat
    session.ask(HOW_LONG)
    session.ask(HOW_LONG)
    errors = [line for line in buf.getvalue().splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "Chroma" in errors[0] and "nothing is ingested" in errors[1]
    assert "Traceback" not in buf.getvalue() and len(session.conversation.turns) == 1


def test_the_chat_leaves_logging_as_it_found_it(tmp_path: Path, monkeypatch: Any) -> None:
    import io
    import logging

    from assistant.surfaces.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO("/quit\n"))
    before = logging.getLogger("assistant").level
    assert main(["chat"]) == 0
    assert logging.getLogger("assistant").level == before
