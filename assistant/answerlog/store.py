"""``AnswerLog``: the SQLite log of every answer, shared by every surface and process.

One row per answer (see :mod:`assistant.answerlog.migrations` for the columns), plus feedback.
The database runs in WAL mode with a busy timeout, so an ``ask`` in one terminal, a chat in
another and a bot can all write at once. Secrets never reach it: every configured key or token
is masked in every stored string, and the notice (where a server's error text lands) is also
cleaned of anything shaped like a key.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from assistant.answerlog import migrations
from assistant.errors import NewsdeskError
from assistant.redact import MASK, redact, secrets_of
from assistant.settings import Settings
from assistant.types import Answer, Conversation, Filters, Turn

log = logging.getLogger(__name__)
VERDICTS = ("good", "bad")
BUSY_TIMEOUT_MS = 10_000


class LogError(NewsdeskError):
    """The answer log cannot be opened, read or written (one line)."""


class Feedback(BaseModel):
    verdict: str
    note: str = ""
    who: str = ""
    created_at: str = ""


class LogEntry(BaseModel):
    """One logged answer."""

    id: int
    created_at: str
    surface: str
    conversation_id: str | None = None
    collection: str | None = None
    question: str
    standalone_question: str = ""
    filters: dict[str, Any] = Field(default_factory=dict)
    retrieved: list[dict[str, Any]] = Field(default_factory=list)
    answer: dict[str, Any]  # the `ask --json` object
    mode: str
    model: str | None = None
    prompts: dict[str, str] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    usage: dict[str, Any] = Field(default_factory=dict)
    abstained: bool = False
    feedback: list[Feedback] = Field(default_factory=list)  # oldest first

    @property
    def verdict(self) -> Feedback | None:
        return self.feedback[-1] if self.feedback else None

    def to_answer(self) -> Answer:
        return Answer.from_contract(self.answer)


class ConversationSummary(BaseModel):
    id: str
    surface: str
    started_at: str
    last_at: str
    answers: int
    first_question: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _filters_json(filters: Filters | None) -> dict[str, Any]:
    return (filters or Filters()).model_dump(mode="json", exclude_none=True)


class AnswerLog:
    """Thread-safe; one per process is plenty (each write is its own short transaction)."""

    def __init__(self, path: Path, *, settings: Settings | None = None) -> None:
        self.path = Path(path)
        self.settings = settings
        self._secrets = secrets_of(settings)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            migrations.migrate(self._db)
        except migrations.NewerSchemaError as exc:
            raise LogError(str(exc)) from None
        except sqlite3.Error as exc:
            raise LogError(f"cannot open the answer log {self.path}: {exc}") from None

    @classmethod
    def open(cls, settings: Settings) -> AnswerLog | None:
        """The log of ``settings``' data home, or ``None`` when ``NEWSDESK_LOG=false``."""
        return cls(settings.log_path, settings=settings) if settings.log else None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> AnswerLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return migrations.version(self._db)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise LogError(f"cannot write the answer log {self.path}: {exc}") from None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise LogError(f"cannot read the answer log {self.path}: {exc}") from None

    # -- secrets -----------------------------------------------------------------------------
    def _clean(self, value: Any) -> Any:
        """``value`` with every configured secret masked in every string inside it."""
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, MASK)
            return value
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._clean(v) for v in value]
        return value

    def _json(self, value: Any) -> str:
        return json.dumps(self._clean(value), ensure_ascii=False)

    # -- writing -----------------------------------------------------------------------------
    def record(
        self,
        answer: Answer,
        *,
        surface: str,
        conversation_id: str | None = None,
        filters: Filters | None = None,
    ) -> int:
        """Log one answer; returns its id (for feedback)."""
        data = answer.as_json()
        data["notice"] = redact(data.get("notice", ""), self.settings)
        settings = self.settings
        llm = answer.mode == "llm"
        model = settings.llm_model if llm and settings is not None else None
        retrieved = [
            {"chunk_id": p.chunk_id, "doc_id": p.doc_id, "score": round(p.score, 6),
             "dense": round(p.dense, 6), "lexical": round(p.lexical, 6)}
            for p in answer.passages
        ]  # fmt: skip
        row = (
            _now(), surface, conversation_id, self._clean(answer.question),
            self._clean(answer.standalone_question or answer.question),
            self._json(_filters_json(filters)), self._json(retrieved), self._json(data),
            answer.mode, model, json.dumps(_prompt_hashes(answer) if llm else {}),
            json.dumps(data["timings"]), json.dumps(data["usage"]),
            settings.collection if settings is not None else None, int(answer.abstained),
        )  # fmt: skip
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO answers (created_at, surface, conversation_id, question, "
                "standalone_question, filters, retrieved, answer, mode, model, prompts, timings, "
                f"usage, collection, abstained) VALUES ({', '.join('?' * len(row))})",
                row,
            )
            return int(cursor.lastrowid or 0)

    def feedback(self, answer_id: int, verdict: str, note: str = "", who: str = "") -> None:
        if verdict not in VERDICTS:
            raise LogError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
        with self._write() as db:
            if db.execute("SELECT 1 FROM answers WHERE id = ?", (answer_id,)).fetchone() is None:
                raise LogError(f"no answer {answer_id} in the answer log")
            db.execute(
                "INSERT INTO feedback (answer_id, created_at, verdict, note, who) "
                "VALUES (?, ?, ?, ?, ?)",
                (answer_id, _now(), verdict, self._clean(note), self._clean(who)),
            )

    # -- reading -----------------------------------------------------------------------------
    def _entries(self, rows: list[sqlite3.Row]) -> list[LogEntry]:
        if not rows:
            return []
        ids = [int(r["id"]) for r in rows]
        marks = ",".join("?" * len(ids))
        notes: dict[int, list[Feedback]] = {}
        for f in self._read(
            f"SELECT * FROM feedback WHERE answer_id IN ({marks}) ORDER BY id", ids
        ):
            notes.setdefault(int(f["answer_id"]), []).append(
                Feedback(verdict=f["verdict"], note=f["note"], who=f["who"],
                         created_at=f["created_at"])
            )  # fmt: skip
        return [_entry(r, notes.get(int(r["id"]), [])) for r in rows]

    def get(self, answer_id: int) -> LogEntry | None:
        found = self._entries(self._read("SELECT * FROM answers WHERE id = ?", (answer_id,)))
        return found[0] if found else None

    def list(self, limit: int = 20, conversation_id: str | None = None) -> list[LogEntry]:
        """Newest first."""
        if conversation_id:
            rows = self._read(
                "SELECT * FROM answers WHERE conversation_id = ? ORDER BY id DESC LIMIT ?",
                (conversation_id, limit),
            )
        else:
            rows = self._read("SELECT * FROM answers ORDER BY id DESC LIMIT ?", (limit,))
        return self._entries(rows)

    def conversations(
        self, limit: int = 20, surface: str | None = None
    ) -> list[ConversationSummary]:
        """Conversations with their first question, most recently active first."""
        rows = self._read(
            "SELECT conversation_id, MIN(surface) AS surface, MIN(created_at) AS started_at, "
            "MAX(created_at) AS last_at, COUNT(*) AS answers, MAX(id) AS last_id, "
            "(SELECT question FROM answers f WHERE f.conversation_id = a.conversation_id "
            " ORDER BY id LIMIT 1) AS first_question "
            "FROM answers a WHERE conversation_id IS NOT NULL AND (? IS NULL OR surface = ?) "
            "GROUP BY conversation_id ORDER BY last_id DESC LIMIT ?",
            (surface, surface, limit),
        )
        return [
            ConversationSummary(
                id=r["conversation_id"],
                surface=r["surface"],
                started_at=r["started_at"],
                last_at=r["last_at"],
                answers=r["answers"],
                first_question=r["first_question"],
            )
            for r in rows
        ]

    def conversation(self, conversation_id: str) -> Conversation | None:
        """A logged conversation rebuilt with its turns (for ``chat --continue``); a unique
        prefix of the id is enough."""
        exact = self._read(
            "SELECT 1 FROM answers WHERE conversation_id = ? LIMIT 1", (conversation_id,)
        )
        rows = (exact and [(conversation_id,)]) or self._read(
            "SELECT DISTINCT conversation_id FROM answers "
            "WHERE substr(conversation_id, 1, ?) = ? LIMIT 2",
            (len(conversation_id), conversation_id),
        )
        if len(rows) != 1 or not conversation_id:
            return None
        full = str(rows[0][0])
        entries = self.list(limit=10_000, conversation_id=full)[::-1]
        if not entries:
            return None
        turns = [Turn(question=e.question, answer=e.to_answer()) for e in entries]
        started = datetime.fromisoformat(entries[0].created_at)
        return Conversation(id=full, created_at=started, turns=turns)


def _prompt_hashes(answer: Answer) -> dict[str, str]:
    from assistant import prompts

    names = ["answer", "condense"] if answer.standalone_question != answer.question else ["answer"]
    try:
        return {name: prompts.load(name).sha256 for name in names}
    except NewsdeskError:  # a broken prompt file failed the answer already; log what we have
        return {}


def _entry(row: sqlite3.Row, feedback: list[Feedback]) -> LogEntry:
    def js(name: str, default: Any) -> Any:
        raw = row[name]
        return json.loads(raw) if raw else default

    return LogEntry(
        id=row["id"], created_at=row["created_at"], surface=row["surface"],
        conversation_id=row["conversation_id"], collection=row["collection"],
        question=row["question"], standalone_question=row["standalone_question"] or "",
        filters=js("filters", {}), retrieved=js("retrieved", []), answer=js("answer", {}),
        mode=row["mode"], model=row["model"], prompts=js("prompts", {}),
        timings=js("timings", {}), usage=js("usage", {}), abstained=bool(row["abstained"]),
        feedback=feedback,
    )  # fmt: skip
