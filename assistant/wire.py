"""The service's JSON, shared by ``newsdesk serve`` and :class:`~assistant.remote.RemoteDesk`.

An answer travels as its ``ask --json`` contract (``Answer.as_json`` / ``from_contract``); the
stream events as ``{"type": ...}`` objects named by their type (the server-sent event's name);
history as turns whose answers are contracts without passage texts (a follow-up needs the last
answer's passage ids, not their words; it keeps requests small).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assistant.errors import UsageError
from assistant.types import (
    Answer,
    Event,
    Filters,
    Final,
    Notice,
    Passage,
    PassagesFound,
    TextDelta,
    Turn,
)

MAX_QUESTION_CHARS = 4000  # longer is a usage error (a paste gone wrong), not a question
LOG_ID = "log_id"  # the answer's id in the service's answer log (for feedback)


class TurnIn(BaseModel):
    question: str
    answer: dict[str, Any]  # the ``ask --json`` contract of the earlier answer


class AnswerRequest(BaseModel):
    """``POST /v1/answer``."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    history: list[TurnIn] = Field(default_factory=list, max_length=100)
    filters: Filters | None = None
    k: int | None = Field(default=None, ge=1, le=50)
    extractive: bool | None = None
    timeline: bool | None = None
    choices: list[str] = Field(default_factory=list, max_length=20)
    stream: bool = False
    conversation_id: str | None = Field(default=None, max_length=100)
    surface: str | None = Field(default=None, max_length=20)  # the client's surface, logged


class FeedbackRequest(BaseModel):
    """``POST /v1/feedback``: 👍 (good) or 👎 (bad) on a logged answer, with a note."""

    model_config = ConfigDict(extra="forbid")

    answer_id: int = Field(ge=1)
    verdict: str  # good | bad (👍 | 👎 | up | down are read as such)
    note: str = Field(default="", max_length=2000)
    who: str = Field(default="", max_length=200)


VERDICT_WORDS = {"good": "good", "bad": "bad", "👍": "good", "👎": "bad", "up": "good",
                 "down": "bad"}  # fmt: skip


def history_json(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    out = []
    for turn in turns:
        contract = turn.answer.as_json()
        contract["passages"] = [{**p, "text": ""} for p in contract["passages"]]
        out.append({"question": turn.question, "answer": contract})
    return out


def history_from_json(turns: Sequence[TurnIn]) -> list[Turn]:
    out = []
    for i, t in enumerate(turns):
        try:
            out.append(Turn(question=t.question, answer=Answer.from_contract(t.answer)))
        except (KeyError, TypeError, ValueError):
            raise UsageError(
                f"history.{i}.answer: not an answer as /v1/answer returns it"
            ) from None
    return out


def event_json(event: Event, log_id: int | None = None) -> dict[str, Any]:
    """An event as the stream sends it; the final one carries the answer's contract."""
    if isinstance(event, Final):
        return {"type": "final", "answer": event.answer.as_json(), LOG_ID: log_id}
    return event.model_dump(mode="json")


def event_from_json(data: dict[str, Any]) -> tuple[Event, int | None]:
    """The event (and, for the final one, the answer's log id) from :func:`event_json`."""
    kind = data.get("type")
    if kind == "final":
        answer = Answer.from_contract(data["answer"])
        return Final(answer=answer), data.get(LOG_ID)
    if kind == "passages":
        return PassagesFound.model_validate(data), None
    if kind == "delta":
        return TextDelta.model_validate(data), None
    if kind == "notice":
        return Notice.model_validate(data), None
    raise ValueError(f"unknown event type {kind!r}")


def passages_from_json(items: Sequence[dict[str, Any]]) -> list[Passage]:
    """Passages from their ``search --json`` form."""
    return [
        Passage.model_validate({"path": "" if p.get("url") else p.get("location", ""), **p})
        for p in items
    ]


def error_json(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape, which every route of the service answers errors in."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
