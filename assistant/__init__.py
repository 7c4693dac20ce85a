"""newsdesk: answers about your news articles, with checked citations.

The one core call is :func:`answer`; every surface (CLI, chat, Slack, evals) goes through it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from assistant.errors import NewsdeskError
from assistant.settings import Settings, load_settings
from assistant.types import ABSTAIN_TEXT, Answer, Citation, Filters, Passage, TextDelta, Turn

__all__ = [
    "ABSTAIN_TEXT",
    "Answer",
    "Citation",
    "Filters",
    "NewsdeskError",
    "Passage",
    "Settings",
    "TextDelta",
    "Turn",
    "answer",
    "answer_stream",
    "load_settings",
]


@lru_cache(maxsize=4)
def _assistant(settings: Settings) -> Any:
    from assistant.answering.pipeline import Assistant

    return Assistant(settings)


def answer(
    question: str,
    history: Sequence[Turn] | None = None,
    filters: Filters | None = None,
    settings: Settings | None = None,
    **options: Any,
) -> Answer:
    """Answer ``question`` from the ingested articles (see ``Assistant.answer_stream``)."""
    return _assistant(settings or load_settings()).answer(question, history, filters, **options)


def answer_stream(
    question: str,
    history: Sequence[Turn] | None = None,
    filters: Filters | None = None,
    settings: Settings | None = None,
    **options: Any,
) -> Iterator[TextDelta | Answer]:
    """Text deltas, then the final checked :class:`Answer`."""
    return _assistant(settings or load_settings()).answer_stream(
        question, history, filters, **options
    )
