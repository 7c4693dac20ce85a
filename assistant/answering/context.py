"""What goes into the model's context: passages as delimited data, within a token budget.

Passages are wrapped in ``<passage n="…">`` blocks. Article text that imitates those tags or
our ``[n]`` citation markers is neutralised first, so an article cannot forge a passage, a
source or a citation. Passages and conversation history are budgeted with the model's own
tiktoken encoding (see ``offline.encoding_for_model``) so the prompt and the reply fit the
context window.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from assistant.offline import encoding_for_model
from assistant.types import Passage, Turn

_TAG = re.compile(r"<\s*(/?)\s*(passages?)\b", re.I)
_MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;–-]\s*\d{1,3})*)\]")
_QUOTE_CHARS = str.maketrans({'"': "'", "\n": " "})


def neutralise(text: str) -> str:
    """Article text with look-alikes of our passage tags and citation markers defused:
    ``<passage`` becomes ``‹passage``, ``[2]`` becomes ``(2)``."""
    text = _TAG.sub(lambda m: f"‹{m.group(1)}{m.group(2)}", text)
    return _MARKER.sub(r"(\1)", text)


def passage_block(p: Passage) -> str:
    attrs = [f'n="{p.rank}"']
    for name, value in (("title", p.title), ("source", p.source), ("date", p.published_at[:10])):
        if value:
            attrs.append(f'{name}="{neutralise(value).translate(_QUOTE_CHARS)}"')
    return f"<passage {' '.join(attrs)}>\n{neutralise(p.text)}\n</passage>"


def format_passages(passages: Sequence[Passage]) -> str:
    return "\n\n".join(passage_block(p) for p in passages)


@cache
def _encoding(model: str) -> Any:
    return encoding_for_model(model)


def count_tokens(text: str, model: str) -> int:
    return len(_encoding(model).encode(text, disallowed_special=()))


def truncate_tokens(text: str, limit: int, model: str) -> str:
    enc = _encoding(model)
    ids = enc.encode(text, disallowed_special=())
    if len(ids) <= limit:
        return text
    return enc.decode(ids[: max(limit, 0)]).rstrip() + " …"


def fit_passages(passages: list[Passage], budget: int, model: str) -> list[Passage]:
    """The best-ranked passages whose blocks fit in ``budget`` tokens (at least one)."""
    kept: list[Passage] = []
    used = 0
    for p in passages:
        cost = count_tokens(passage_block(p), model) + 2
        if kept and used + cost > budget:
            break
        kept.append(p)
        used += cost
    return kept


def format_history(history: Sequence[Turn], budget: int, model: str) -> str:
    """The latest turns that fit in ``budget`` tokens, oldest first; an answer that does not
    fit whole is cut (the question never is)."""
    lines: list[str] = []
    left = budget
    for turn in reversed(history):
        question = f"User: {turn.question}"
        left -= count_tokens(question, model)
        if left <= 0:
            break
        reply = turn.answer.text
        if turn.answer.citations:  # strip the [n] markers: they mean nothing to the rewrite
            reply = _MARKER.sub("", reply)
        reply = truncate_tokens(reply, min(left, 400), model)
        left -= count_tokens(reply, model)
        lines[:0] = [question, f"Assistant: {reply}"]
    return "\n".join(lines)
