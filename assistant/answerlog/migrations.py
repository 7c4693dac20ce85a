"""The answer log's schema, as an ordered list of migrations (the ``logs.db`` pattern of
simonw/llm, with SQLite's ``user_version`` as the schema number).

A migration is never edited once released: a change to the schema is a new function appended
to :data:`MIGRATIONS`. Opening a database applies the missing ones in one ``BEGIN IMMEDIATE``
transaction, so two processes opening an old database at once migrate it exactly once.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

log = logging.getLogger(__name__)
Migration = Callable[[sqlite3.Connection], None]


def m001_answers(db: sqlite3.Connection) -> None:
    """One row per answer; the JSON columns hold what the surfaces showed and used."""
    db.execute(
        """
        CREATE TABLE answers (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,          -- ISO 8601, UTC
            surface TEXT NOT NULL,             -- ask | chat | slack | ...
            conversation_id TEXT,
            question TEXT NOT NULL,
            standalone_question TEXT,
            filters TEXT,                      -- JSON: since, until, source
            retrieved TEXT,                    -- JSON: [{chunk_id, doc_id, score}]
            answer TEXT NOT NULL,              -- JSON: exactly what `ask --json` prints
            mode TEXT NOT NULL,                -- llm | extractive
            model TEXT,                        -- the LLM, when one wrote the answer
            prompts TEXT,                      -- JSON: {prompt name: sha256 prefix}
            timings TEXT,                      -- JSON: stage -> ms
            usage TEXT                         -- JSON: prompt/completion tokens
        )
        """
    )
    db.execute("CREATE INDEX answers_created ON answers (created_at)")


def m002_feedback(db: sqlite3.Connection) -> None:
    """Verdicts on answers (several per answer allowed; the newest counts) and a conversation
    index for ``--continue`` and ``newsdesk log --conversation``."""
    db.execute(
        """
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            answer_id INTEGER NOT NULL REFERENCES answers (id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            verdict TEXT NOT NULL,             -- good | bad
            note TEXT NOT NULL DEFAULT '',
            who TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX feedback_answer ON feedback (answer_id)")
    db.execute("CREATE INDEX answers_conversation ON answers (conversation_id, id)")


def m003_collection_abstained(db: sqlite3.Connection) -> None:
    """Which collection answered, and whether the answer abstained (backfilled from the
    stored answer JSON), so both can be filtered on without parsing JSON."""
    db.execute("ALTER TABLE answers ADD COLUMN collection TEXT")
    db.execute("ALTER TABLE answers ADD COLUMN abstained INTEGER NOT NULL DEFAULT 0")
    db.execute(
        "UPDATE answers SET abstained = "
        "CASE WHEN json_extract(answer, '$.abstained') THEN 1 ELSE 0 END"
    )


MIGRATIONS: tuple[Migration, ...] = (m001_answers, m002_feedback, m003_collection_abstained)
LATEST = len(MIGRATIONS)


class NewerSchemaError(Exception):
    def __init__(self, found: int) -> None:
        super().__init__(
            f"the answer log was written by a newer newsdesk (schema {found}; this one knows "
            f"up to {LATEST}); upgrade newsdesk or set NEWSDESK_LOG=false"
        )


def version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, upto: int = LATEST) -> int:
    """Apply the migrations the database lacks (up to ``upto``); returns the new version.
    ``db`` must be in autocommit mode (``isolation_level=None``)."""
    if version(db) >= upto:
        if version(db) > LATEST:
            raise NewerSchemaError(version(db))
        return version(db)
    db.execute("BEGIN IMMEDIATE")  # the write lock first: another process may be migrating
    try:
        current = version(db)  # read again under the lock
        if current > LATEST:
            raise NewerSchemaError(current)
        for number, step in enumerate(MIGRATIONS[current:upto], start=current + 1):
            log.info("answer log: applying migration %d (%s)", number, step.__name__)
            step(db)
            db.execute(f"PRAGMA user_version = {number:d}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return version(db)
