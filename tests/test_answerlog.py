"""The answer log: schema migrations, two processes writing at once, feedback, secrets kept out,
and the ``newsdesk log`` / ``eval add-case --log`` commands over real answers."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistant.answerlog import AnswerLog, LogError, migrations
from assistant.desk import Desk
from assistant.index.store import Store
from assistant.models.embeddings import MiniLMEmbeddings
from assistant.settings import load_settings
from assistant.surfaces.cli import main
from assistant.types import Conversation, Filters
from tests.conftest import ROOT, clean_settings
from tests.fake_openai import FakeOpenAI, Reply

WANG = "What did Wang Yi say about mediation?"

# The schema as version 1 shipped it: frozen here, so that editing migration 1 by mistake
# cannot make this test pass by migrating from the edited version.
V1 = """
CREATE TABLE answers (
    id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, surface TEXT NOT NULL,
    conversation_id TEXT, question TEXT NOT NULL, standalone_question TEXT, filters TEXT,
    retrieved TEXT, answer TEXT NOT NULL, mode TEXT NOT NULL, model TEXT, prompts TEXT,
    timings TEXT, usage TEXT
);
CREATE INDEX answers_created ON answers (created_at);
PRAGMA user_version = 1;
"""


@pytest.fixture(scope="module")
def desk(examples_home: Path, embedder: MiniLMEmbeddings) -> Desk:
    settings = clean_settings(examples_home)
    return Desk(settings, store=Store(settings, embedder))


def _v1_row(db: sqlite3.Connection, abstained: bool) -> None:
    answer = {"question": "q", "answer": "a", "mode": "extractive", "abstained": abstained,
              "citations": [], "passages": []}  # fmt: skip
    db.execute(
        "INSERT INTO answers (created_at, surface, question, answer, mode) VALUES (?,?,?,?,?)",
        ("2024-01-01T00:00:00+00:00", "ask", "q", json.dumps(answer), "extractive"),
    )


def test_an_old_log_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "logs.db"
    with sqlite3.connect(path) as db:
        db.executescript(V1)
        _v1_row(db, abstained=True)
        _v1_row(db, abstained=False)
    with AnswerLog(path) as log:
        assert log.schema_version == migrations.LATEST == 3
        old = log.list()
        assert [e.abstained for e in old] == [False, True]  # backfilled from the answer JSON
        log.feedback(old[1].id, "bad", "stale")  # the feedback table exists now
        assert log.get(old[1].id).verdict.note == "stale"  # type: ignore[union-attr]
    with AnswerLog(path) as again:  # reopening applies nothing twice
        assert again.schema_version == 3 and len(again.list()) == 2


def test_a_log_from_a_newer_newsdesk_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "logs.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    with pytest.raises(LogError, match="newer newsdesk") as err:
        AnswerLog(path)
    assert "\n" not in str(err.value)


def test_record_holds_what_the_issue_lists(tmp_path: Path, desk: Desk) -> None:
    first = desk.answer(WANG, filters=Filters(source="Eastbridge Daily"))
    conversation = Conversation()
    conversation.add(first)
    follow = desk.answer("What else did he say?", history=conversation)
    settings = load_settings(home=tmp_path / "home")
    with AnswerLog.open(settings) as log:  # type: ignore[union-attr]
        a = log.record(first, surface="chat", conversation_id=conversation.id,
                       filters=Filters(source="Eastbridge Daily"))  # fmt: skip
        b = log.record(follow, surface="chat", conversation_id=conversation.id)
        log.feedback(b, "bad", "wrong date", "ana")
        entry = log.get(a)
        assert entry is not None
        assert entry.answer == json.loads(json.dumps(first.as_json()))  # the --json contract
        assert entry.filters == {"source": "Eastbridge Daily"} and entry.mode == "extractive"
        assert [r["chunk_id"] for r in entry.retrieved] == [p.chunk_id for p in first.passages]
        assert entry.timings["total_ms"] > 0 and entry.collection == "news"
        assert entry.model is None and entry.prompts == {}  # no model, no prompt was used
        later = log.get(b)
        assert later is not None and later.standalone_question != later.question
        assert later.verdict is not None and (later.verdict.verdict, later.verdict.who) == (
            "bad", "ana",
        )  # fmt: skip
        resumed = log.conversation(conversation.id[:8])
        assert resumed is not None and [t.question for t in resumed.turns] == [
            WANG, "What else did he say?",
        ]  # fmt: skip
        carried = resumed.turns[0].answer  # rebuilt from the log: the follow-up's evidence
        assert [p.chunk_id for p in carried.passages] == [p.chunk_id for p in first.passages]
        assert [s.id for s in log.conversations()] == [conversation.id]
        with pytest.raises(LogError, match="no answer 999"):
            log.feedback(999, "good")
        with pytest.raises(LogError, match="verdict"):
            log.feedback(a, "meh")


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from assistant.answerlog import AnswerLog
    from assistant.types import Answer
    log = AnswerLog(Path(sys.argv[1]))
    sys.stdout.write("ready\\n"); sys.stdout.flush(); sys.stdin.readline()  # start together
    for i in range(int(sys.argv[3])):
        a = Answer(question=f"{sys.argv[2]} {i}", text="t", mode="extractive", abstained=False)
        log.record(a, surface=sys.argv[2], conversation_id=sys.argv[2])
    """
)


def test_two_processes_write_at_once_and_lose_nothing(tmp_path: Path) -> None:
    path, n = tmp_path / "logs.db", 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), name, str(n)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    for p in procs:  # both have opened (and migrated) the new database
        assert p.stdout is not None and p.stdout.readline() == "ready\n", p.stderr
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with AnswerLog(path) as log:
        entries = log.list(limit=10 * n)
        assert len(entries) == 2 * n and len({e.id for e in entries}) == 2 * n
        for name in ("one", "two"):
            mine = [e.question for e in log.list(10 * n, conversation_id=name)][::-1]
            assert mine == [f"{name} {i}" for i in range(n)]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_configured_api_key_never_reaches_the_database_file(
    tmp_path: Path, embedder: MiniLMEmbeddings, examples_home: Path, fake_openai: FakeOpenAI
) -> None:
    key = "sk-test-Zq81ssecretKEY0042"
    # the server's error echoes the key (it lands in the fallback notice), and the user pasted
    # the key into the question and the feedback note
    fake_openai.default = Reply(mode="echo-key", status=401)
    settings = load_settings(
        home=examples_home, openai_api_key=key, llm_base_url=fake_openai.base_url,
        llm_model="fake-model", llm_max_retries=0,
    )  # fmt: skip
    desk = Desk(settings, store=Store(settings, embedder))
    answer = desk.answer(WANG)
    assert answer.mode == "extractive" and "401" in answer.notice  # fell back after the 401
    pasted = desk.answer(f"Is {key} my key?")
    logged = settings.model_copy(update={"home": tmp_path / "home"})
    with AnswerLog.open(logged) as log:  # type: ignore[union-attr]
        log.record(answer, surface="ask")
        entry_id = log.record(pasted, surface="ask")
        log.feedback(entry_id, "bad", f"leaked {key}?", "ana")
        stored = log.get(entry_id)
        assert stored is not None and stored.question == "Is [redacted] my key?"
    files = list((tmp_path / "home").glob("logs.db*"))
    assert files and any(f.stat().st_size for f in files)
    for f in files:  # the database and its WAL, byte for byte
        assert key.encode() not in f.read_bytes(), f


def test_newsdesk_log_false_writes_no_log(
    tmp_path: Path,
    examples_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = _copy(examples_home, tmp_path, monkeypatch)
    monkeypatch.setenv("NEWSDESK_LOG", "false")
    assert load_settings().log is False
    assert main(["ask", WANG, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["citations"]
    assert not (home / "logs.db").exists()
    assert main(["log"]) == 1
    assert "NEWSDESK_LOG=false" in capsys.readouterr().err


def test_log_commands_and_add_case_from_the_log(
    tmp_path: Path,
    examples_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = _copy(examples_home, tmp_path, monkeypatch)
    assert main(["ask", WANG, "--json"]) == 0
    assert main(["ask", "Who won the 2022 FIFA World Cup final?"]) == 0
    capsys.readouterr()
    assert main(["log", "-n", "5"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listing] == ["#2", "#1"]
    assert "abstained" in listing[0] and WANG in listing[1]
    assert main(["log", "show", "1"]) == 0
    shown = capsys.readouterr().out
    assert WANG in shown and "Sources" in shown and "retrieved 6 passages" in shown
    assert main(["log", "--json", "-n", "1"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["entries"]
    assert entry["id"] == 2 and entry["abstained"] is True and entry["surface"] == "ask"
    assert main(["log", "show", "7"]) == 1
    assert "no answer 7" in capsys.readouterr().err

    with AnswerLog.open(load_settings()) as log:  # type: ignore[union-attr]
        log.feedback(1, "good", "right", "ana")
    cases = tmp_path / "cases.jsonl"
    assert main(["eval", "add-case", str(cases), "--log", "1"]) == 0  # verdict from feedback
    assert main(["eval", "add-case", str(cases), "--log", "2", "--verdict", "should-abstain",
                 "--id", "x"]) == 0  # fmt: skip
    capsys.readouterr()
    good, second = (json.loads(line) for line in cases.read_text().splitlines())
    assert good["question"] == WANG and good["tags"] == ["feedback", "good"]
    assert set(good["gold_doc_ids"]) == {c["doc_id"] for c in entry_citations(home, 1)}
    assert second["id"] == "x" and second["must_abstain"] is True
    assert main(["eval", "add-case", str(cases), "--log", "2"]) == 1  # no feedback, no verdict
    assert main(["eval", "add-case", str(cases), "--log", "1", "--answer", str(cases)]) == 1


def _copy(examples_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the example collection (the shared one is read-only), as the home."""
    home = tmp_path / "home"
    shutil.copytree(examples_home, home)
    monkeypatch.setenv("NEWSDESK_HOME", str(home))
    return home


def entry_citations(home: Path, entry_id: int) -> list[dict[str, str]]:
    with AnswerLog(home / "logs.db") as log:
        entry = log.get(entry_id)
    assert entry is not None
    return list(entry.answer["citations"])
