"""newsdesk: answers about your news articles, with checked citations.

The core is :class:`Desk` (one per data home and collection, shared by threads); every surface
(CLI, chat, Slack, evals) goes through it. :func:`answer` and :func:`answer_stream` are
conveniences over a default ``Desk`` per settings.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from assistant.errors import NewsdeskError
from assistant.settings import Settings, load_settings
from assistant.types import (
    ABSTAIN_TEXT,
    Answer,
    Citation,
    Conversation,
    Event,
    Filters,
    Final,
    Notice,
    Passage,
    PassagesFound,
    TextDelta,
    Turn,
)

if TYPE_CHECKING:
    from assistant.desk import Desk

__all__ = [
    "ABSTAIN_TEXT",
    "Answer",
    "Citation",
    "Conversation",
    "Desk",
    "Event",
    "Filters",
    "Final",
    "NewsdeskError",
    "Notice",
    "Passage",
    "PassagesFound",
    "Settings",
    "TextDelta",
    "Turn",
    "answer",
    "answer_stream",
    "close_default_desks",
    "default_desk",
    "load_settings",
]

_desks: dict[Settings, Desk] = {}
_desks_lock = threading.Lock()


def __getattr__(name: str) -> object:
    if name == "Desk":  # imported lazily: it pulls in Chroma and the model runtime
        from assistant.desk import Desk

        return Desk
    raise AttributeError(name)


def default_desk(settings: Settings | None = None) -> Desk:
    """The process's ``Desk`` for these settings (created once; closed at exit)."""
    from assistant.desk import Desk

    settings = settings or load_settings()
    with _desks_lock:
        desk = _desks.get(settings)
        if desk is None:
            desk = _desks[settings] = Desk(settings)
        return desk


def close_default_desks() -> None:
    with _desks_lock:
        desks = list(_desks.values())
        _desks.clear()
    for desk in desks:
        desk.close()


atexit.register(close_default_desks)


def answer(
    question: str,
    history: Sequence[Turn] | Conversation | None = None,
    filters: Filters | None = None,
    settings: Settings | None = None,
    *,
    k: int | None = None,
    extractive: bool | None = None,
    choices: Sequence[str] | None = None,
) -> Answer:
    """Answer ``question`` from the ingested articles (see :meth:`Desk.answer`)."""
    return default_desk(settings).answer(
        question, history=history, filters=filters, k=k, extractive=extractive, choices=choices
    )


def answer_stream(
    question: str,
    history: Sequence[Turn] | Conversation | None = None,
    filters: Filters | None = None,
    settings: Settings | None = None,
    *,
    k: int | None = None,
    extractive: bool | None = None,
    choices: Sequence[str] | None = None,
) -> Iterator[Event]:
    """Typed events, the last a :class:`Final` with the checked answer (see
    :meth:`Desk.stream`)."""
    return default_desk(settings).stream(
        question, history=history, filters=filters, k=k, extractive=extractive, choices=choices
    )
