"""Follow-ups made to stand alone: by the LLM when there is one, checked; else by a rule."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from assistant.types import Turn

log = logging.getLogger(__name__)
_FOLLOW_UP = re.compile(
    r"^(and|but|also|what about|how about|why|so)\b|\b(it|its|they|them|their|he|him|his|she|her|"
    r"that|this|those|these|there)\b",
    re.I,
)
_NOT_A_REWRITE = re.compile(
    r"\b(sorry|apolog|i can(?:'|no)t|i'm unable|i am unable|as an ai|rewritten question|"
    r"here is|here's|i will|i'll|confusion)\b",
    re.I,
)


def naive_condense(question: str, history: Sequence[Turn]) -> str:
    """Without a model: prefix an elliptical follow-up with the previous standalone question."""
    last = history[-1]
    previous = last.answer.standalone_question or last.question
    if len(question.split()) <= 6 or _FOLLOW_UP.search(question):
        return f"{previous} {question}"
    return question


def accept_rewrite(rewritten: str, question: str, history: Sequence[Turn]) -> str:
    """The model's rewrite when it looks like one question; else the rule-based rewrite.

    Refused: empty, more than one line of text, much longer than the question and the last
    question together, an apology, a refusal or talk about the rewrite itself.
    """
    lines = [line.strip() for line in rewritten.strip().splitlines() if line.strip()]
    candidate = lines[0].strip().strip('"“”') if lines else ""
    previous = history[-1].answer.standalone_question or history[-1].question
    limit = 2 * (len(question.split()) + len(previous.split())) + 10
    problem = ""
    if not candidate:
        problem = "empty"
    elif len(lines) > 1:
        problem = "more than one line"
    elif len(candidate.split()) > limit:
        problem = "too long"
    elif _NOT_A_REWRITE.search(candidate):
        problem = "not a question"
    if problem:
        log.info("follow-up rewrite refused (%s): %r", problem, rewritten[:200])
        return naive_condense(question, history)
    return candidate
